// float32 arithmetic helpers for reproducing other machines' float32 results bit for bit.
// JavaScript numbers are float64; Math.fround rounds to float32. A float32 product is exact in float64,
// so fround(a * b) and fround(a + b) are correctly rounded float32 operations. A fused multiply-add
// needs care: a * b + c rounded to float64 first can land exactly on a float32 tie and round wrongly.

export const fround = Math.fround;

/** float32 fmaf(a, b, c) with a single rounding, for float32 a, b, c. */
export function fmaf(a: number, b: number, c: number): number {
  const p = a * b; // exact: 24 + 24 bits
  const s = p + c;
  const r = Math.fround(s);
  if (r === s) return r;
  // Only a float64 sum that sits exactly halfway between two float32 values can round wrongly. Then
  // the neighbour on the other side, s + (s - r), is itself a float32; otherwise it is not.
  const other = s + (s - r);
  if (Math.fround(other) !== other) return r;
  const bv = s - p;
  const err = p - (s - bv) + (c - bv); // s + err == p + c exactly (TwoSum)
  if (err === 0) return r; // a true tie: fround's ties-to-even is right
  return err > 0 ? Math.max(r, other) : Math.min(r, other);
}

const f32 = new Float32Array(1);
const b32 = new Uint32Array(f32.buffer);

/** float32 a * b rounded toward zero. */
export function fmulRz(a: number, b: number): number {
  const p = a * b; // exact
  const r = Math.fround(p);
  if (Math.abs(r) <= Math.abs(p)) return r;
  f32[0] = r;
  b32[0] = b32[0]! - 1; // one step toward zero (r is finite and non-zero here)
  return f32[0]!;
}

export function floatBits(x: number): number {
  f32[0] = x;
  return b32[0]!;
}

export function bitsToFloat(bits: number): number {
  b32[0] = bits >>> 0;
  return f32[0]!;
}
