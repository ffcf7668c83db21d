// NVIDIA's MUFU.SIN / MUFU.COS special-function unit (what __sincosf runs on), bit for bit.
//
// Measured on an H100 (Hopper, sm_90), by test/fixtures/rng/mufu-probe.cu: the unit takes the angle as a
// 25-bit fraction of a turn X (__sincosf first computes FMUL.RZ(v, 1/2pi); X = floor(that * 2^25)).
// With Y = X mod 2^23 (the position in the quadrant) and one table T of 2^23 float32 values:
//   quadrant 0: sin = T[Y],  cos = T[~Y];   quadrant 1: sin = T[~Y], cos = -T[Y];
//   quadrant 2: sin = -T[Y], cos = -T[~Y];  quadrant 3: sin = -T[~Y], cos = T[Y]
// (~Y = 2^23 - 1 - Y; every reachable angle of the other quadrants was checked against these rules).
// T is a hardware quadratic interpolation (64 segments of 2^17 inputs, error up to 2^-22.4 against the
// true sine), not a libm sine, so it is shipped as data: assets/rng/mufu-sin-sm90.br holds the first
// differences of T's bit patterns (int8, or 0x80 then an int32 LE), brotli-compressed (~170 KB).
// It is decoded on first use (32 MiB in memory). The goldens come from an H200 and match exactly;
// other GPU generations are unverified.
import { readFileSync } from 'node:fs';
import { brotliDecompressSync } from 'node:zlib';

const SIZE = 1 << 23;
const MASK = SIZE - 1;
let table: Float32Array | undefined;

function decode(packed: Uint8Array): Float32Array {
  const bits = new Uint32Array(SIZE);
  let acc = 0;
  let i = 0;
  for (let y = 0; y < SIZE; y++) {
    const b = packed[i++];
    if (b === undefined) throw new Error('MUFU table is truncated');
    let d: number;
    if (b === 0x80) {
      d = packed[i]! | (packed[i + 1]! << 8) | (packed[i + 2]! << 16) | (packed[i + 3]! << 24);
      i += 4;
    } else {
      d = (b << 24) >> 24;
    }
    acc = (acc + d) | 0;
    bits[y] = acc;
  }
  if (i !== packed.length) throw new Error('MUFU table has trailing bytes');
  return new Float32Array(bits.buffer);
}

/** The quadrant table T, loaded on first use. */
export function mufuTable(): Float32Array {
  if (!table) {
    const url = new URL('../../assets/rng/mufu-sin-sm90.br', import.meta.url);
    let packed: Uint8Array;
    try {
      packed = brotliDecompressSync(readFileSync(url));
    } catch (e) {
      throw new Error(`cannot read the GPU sine table ${url.pathname} needed by rng "philox": ${(e as Error).message}`);
    }
    table = decode(packed);
  }
  return table;
}

/** MUFU.SIN of an angle of `turns` * 2^-25 revolutions (0 <= turns < 2^25). */
export function mufuSin(turns: number): number {
  const t = table ?? mufuTable();
  const y = turns & MASK;
  const v = turns & SIZE ? t[MASK - y]! : t[y]!;
  return turns & (2 * SIZE) ? -v : v;
}

/** MUFU.COS of an angle of `turns` * 2^-25 revolutions (0 <= turns < 2^25). */
export function mufuCos(turns: number): number {
  const t = table ?? mufuTable();
  const y = turns & MASK;
  const q = turns >>> 23;
  const v = q & 1 ? t[y]! : t[MASK - y]!;
  return q === 1 || q === 2 ? -v : v;
}
