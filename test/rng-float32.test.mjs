// float32 helpers used to reproduce GPU/AVX2 arithmetic, against an exact BigInt reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fmaf, fmulRz } from '../dist/rng/float32.js';

// Exact value of a float64 as [mantissa BigInt, exponent]: x = m * 2^e.
function exact(x) {
  if (x === 0) return [0n, 0];
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, x);
  const hi = dv.getUint32(0), lo = dv.getUint32(4);
  const sign = hi >>> 31 ? -1n : 1n;
  const bexp = (hi >>> 20) & 0x7ff;
  let m = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let e;
  if (bexp === 0) e = -1074;
  else { m |= 1n << 52n; e = bexp - 1075; }
  return [sign * m, e];
}

// Round the exact rational m * 2^e to float32 (normal range), ties to even, or toward zero.
function roundF32([m, e], mode = 'nearest') {
  if (m === 0n) return 0;
  const neg = m < 0n;
  let a = neg ? -m : m;
  const bits = a.toString(2).length;
  const shift = bits - 24; // keep 24 significant bits
  let q, rem, half;
  if (shift > 0) {
    q = a >> BigInt(shift);
    rem = a - (q << BigInt(shift));
    half = 1n << BigInt(shift - 1);
  } else {
    q = a << BigInt(-shift);
    rem = 0n;
    half = 1n;
  }
  if (mode === 'nearest' && (rem > half || (rem === half && (q & 1n) === 1n))) q += 1n;
  const v = Number(q) * 2 ** (e + Math.max(shift, 0) + Math.min(shift, 0));
  return neg ? -v : v;
}

function exactFma(a, b, c) {
  const [ma, ea] = exact(a), [mb, eb] = exact(b), [mc, ec] = exact(c);
  const mp = ma * mb, ep = ea + eb;
  const e = Math.min(ep, ec);
  return [(mp << BigInt(ep - e)) + (mc << BigInt(ec - e)), e];
}

test('fmaf rounds once on the double-rounding ties', () => {
  const a = Math.fround(1 + 2 ** -12);
  // a * a = 1 + 2^-11 + 2^-24: exactly halfway between two float32 values.
  const up = 1 + 2 ** -11 + 2 ** -23, down = 1 + 2 ** -11;
  assert.equal(fmaf(a, a, 2 ** -60), up); // above the tie: up (fround(a*a + c) would give down)
  assert.equal(fmaf(a, a, -(2 ** -60)), down); // below the tie: down
  assert.equal(fmaf(a, a, 0), down); // a true tie: to even
  assert.equal(fmaf(-a, a, -(2 ** -60)), -up);
});

test('fmaf and fmulRz equal the exact BigInt reference on random float32 inputs', () => {
  let seed = 12345;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
  const f32 = (x) => Math.fround(x);
  for (let i = 0; i < 20000; i++) {
    const a = f32((rnd() - 0.5) * 2 ** Math.floor(rnd() * 20 - 10));
    const b = f32((rnd() - 0.5) * 2 ** Math.floor(rnd() * 20 - 10));
    // c near -a*b half of the time, to exercise cancellation and ties
    const c = rnd() < 0.5 ? f32(-(a * b) * (1 + (rnd() - 0.5) * 2 ** -20)) : f32((rnd() - 0.5) * 4);
    assert.equal(fmaf(a, b, c), roundF32(exactFma(a, b, c)), `fmaf(${a}, ${b}, ${c})`);
    if (a !== 0 && b !== 0) assert.equal(fmulRz(a, b), roundF32(exactFma(a, b, 0), 'zero'), `fmulRz(${a}, ${b})`);
  }
});
