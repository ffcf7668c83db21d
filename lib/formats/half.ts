// float16 / bfloat16 conversions and decoding of tensor bytes to float32 (for tests, `info`, and the
// converter). Rounding is IEEE round-to-nearest-even with subnormals and signed zero, as ggml does.
import type { DType } from './tensor-table.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float16 bits of a number, rounded first to float32 (as a C cast would), then to float16. */
export function f32ToF16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const q = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (rem > mid || (rem === mid && (q & 1)) ? q + 1 : q);
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1))) r++;
  return sign | r;
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

export function bf16BitsToF32(h: number): number {
  u32[0] = (h << 16) >>> 0;
  return f32[0]!;
}

let F16_LUT: Float32Array | undefined;
function f16Table(): Float32Array {
  if (!F16_LUT) {
    F16_LUT = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) F16_LUT[h] = f16BitsToF32(h);
  }
  return F16_LUT;
}

/** Decodes a contiguous tensor's bytes into float32 (dequantizing q8_0/q4_0 as ggml's to_float does). */
export function toFloat32(dtype: DType, bytes: Uint8Array): Float32Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'f32': {
      // Copy into an aligned buffer (the source may start at any byte offset).
      const copy = new Uint8Array(bytes.byteLength);
      copy.set(bytes);
      return new Float32Array(copy.buffer);
    }
    case 'f64': return Float32Array.from({ length: bytes.byteLength / 8 }, (_, i) => dv.getFloat64(i * 8, true));
    case 'f16': {
      const lut = f16Table();
      const out = new Float32Array(bytes.byteLength / 2);
      for (let i = 0; i < out.length; i++) out[i] = lut[bytes[2 * i]! | (bytes[2 * i + 1]! << 8)]!;
      return out;
    }
    case 'bf16': return Float32Array.from({ length: bytes.byteLength / 2 }, (_, i) => bf16BitsToF32(dv.getUint16(i * 2, true)));
    case 'q8_0': {
      const nb = bytes.byteLength / 34;
      const out = new Float32Array(nb * 32);
      for (let b = 0; b < nb; b++) {
        const d = f16BitsToF32(dv.getUint16(b * 34, true));
        for (let j = 0; j < 32; j++) out[b * 32 + j] = dv.getInt8(b * 34 + 2 + j) * d;
      }
      return out;
    }
    case 'q4_0': {
      const nb = bytes.byteLength / 18;
      const out = new Float32Array(nb * 32);
      for (let b = 0; b < nb; b++) {
        const d = f16BitsToF32(dv.getUint16(b * 18, true));
        for (let j = 0; j < 16; j++) {
          const q = bytes[b * 18 + 2 + j]!;
          out[b * 32 + j] = ((q & 0x0f) - 8) * d;
          out[b * 32 + j + 16] = ((q >> 4) - 8) * d;
        }
      }
      return out;
    }
    case 'i64': return Float32Array.from({ length: bytes.byteLength / 8 }, (_, i) => Number(dv.getBigInt64(i * 8, true)));
    case 'i32': return Float32Array.from({ length: bytes.byteLength / 4 }, (_, i) => dv.getInt32(i * 4, true));
    case 'i16': return Float32Array.from({ length: bytes.byteLength / 2 }, (_, i) => dv.getInt16(i * 2, true));
    case 'i8': return Float32Array.from({ length: bytes.byteLength }, (_, i) => dv.getInt8(i));
    case 'u8': case 'bool': return Float32Array.from(bytes);
    default: throw new RangeError(`decoding ${dtype} to float32 is not supported`);
  }
}

/** float32 values to float16 bytes (little-endian). */
export function toF16Bytes(values: Float32Array): Uint8Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f32ToF16Bits(values[i]!);
  return new Uint8Array(out.buffer);
}
