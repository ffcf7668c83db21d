// torch.randn on CUDA (torch.Generator("cuda").manual_seed(seed)), reproduced on the CPU: what
// AUTOMATIC1111 draws with its default GPU RNG.
//
// torch's normal kernel (aten/src/ATen/native/cuda/DistributionTemplates.h) launches
// grid = min(ceil(numel / 256), SMs * maxThreadsPerSM / 256) blocks of 256 threads; thread idx runs
// curand_init(seed, subsequence = idx, offset = philox_offset) and, per loop iteration k, one
// curand_normal4: Philox4x32-10 on the counter (offset/4 + k, 0, idx, 0) with key (seed lo, seed hi),
// then curand's Box-Muller on (out0, out1) and (out2, out3). Element idx + T*ii + 4*T*k (T = threads)
// takes component ii. Below one wave (numel <= T, every SD latent on any current GPU) element i is
// component 0 of thread i: r * sin(theta). After the call torch advances philox_offset by
// ((numel - 1) / (4 T) + 1) * 4.
//
// curand's Box-Muller in float32, as nvcc compiles it (verified on an H100 from the SASS):
//   u = fmaf(float(x0), 2^-32, 2^-33); s = sqrtf(-2 logf(u))     (libdevice logf, ported exactly)
//   v = fmaf(float(x1), 2pi 2^-32, pi 2^-32)                        (contracted multiply-add)
//   __sincosf(v): FMUL.RZ v * (1/2pi), then the MUFU.SIN / MUFU.COS hardware units on that angle in
//   revolutions, quantized to 2^-25 of a turn (a measured table, see mufu.ts).
//   s * sin is rounded once (FMUL); sqrtf is correctly rounded.
import { fmaf, fmulRz, floatBits, bitsToFloat, fround } from './float32.js';
import { mufuCos, mufuSin, mufuTable } from './mufu.js';

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/**
 * High 32 bits of the 64-bit product of two uint32. The float64 product is within 2^11 of the exact
 * one, so after removing the exact low word the quotient is within 2^-20 of the high word.
 */
function mulhi(a: number, b: number): number {
  return Math.round((a * b - (Math.imul(a, b) >>> 0)) * 2.3283064365386963e-10) >>> 0;
}

/** Philox4x32-10 block: writes the 4 outputs for counter (c0..c3) and key (k0, k1) into out. */
export function philox4x32(c0: number, c1: number, c2: number, c3: number, k0: number, k1: number, out: Uint32Array): void {
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi(M0, c0);
    const lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi(M1, c2);
    const lo1 = Math.imul(M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

// libdevice __nv_logf coefficients (float32).
const L0 = -0.13018856942653656;
const L1 = 0.1408461034297943;
const L2 = -0.12148627638816833;
const L3 = 0.1398061066865921;
const L4 = -0.16684235632419586;
const L5 = 0.20012299716472626;
const L6 = -0.24999669194221497;
const L7 = 0.333331823348999;
const LN2_F = 0.6931471824645996;

/** CUDA's logf (libdevice __nv_logf, no fast math) for finite a > 0. */
export function cudaLogf(a: number): number {
  let i = 0;
  if (a < 1.1754943508222875e-38) {
    a = fround(a * 8388608);
    i = -23;
  }
  const bits = floatBits(a);
  const e = ((bits - 0x3f2aaaab) & 0xff800000) | 0;
  const m = bitsToFloat((bits - e) >>> 0);
  i = fmaf(fround(e), 1.1920928955078125e-7, i);
  const f = fround(m - 1);
  let r = fmaf(L0, f, L1);
  r = fmaf(r, f, L2);
  r = fmaf(r, f, L3);
  r = fmaf(r, f, L4);
  r = fmaf(r, f, L5);
  r = fmaf(r, f, L6);
  r = fmaf(r, f, L7);
  r = fmaf(r, f, -0.5);
  r = fround(r * f);
  r = fmaf(r, f, f);
  return fmaf(i, LN2_F, r);
}

const INV_2POW32 = 2 ** -32;
const INV_2POW32_2PI = fround(2 ** -32 * fround(6.2831855));
const HALF_INV_2POW32_2PI = fround(INV_2POW32_2PI / 2);
const INV_2PI_F = fround(0.15915494309189535);

/** s = sqrtf(-2 logf(u)) of curand's Box-Muller, u = (float(x0) + 0.5) * 2^-32 (exact before rounding). */
function radius(x0: number): number {
  const u = fround((fround(x0) + 0.5) * INV_2POW32);
  return fround(Math.sqrt(fround(-2 * cudaLogf(u))));
}

/** The angle of curand's Box-Muller for x1, in 2^-25 turns as MUFU sees it. */
function turnsOf(x1: number): number {
  const v = fmaf(fround(x1), INV_2POW32_2PI, HALF_INV_2POW32_2PI);
  return Math.floor(fmulRz(v, INV_2PI_F) * 33554432);
}

/** curand's _curand_box_muller(x0, x1): [s sin, s cos] into out[o], out[o+1]. */
export function boxMuller(x0: number, x1: number, out: Float32Array | Float64Array, o: number): void {
  const s = radius(x0);
  const turns = turnsOf(x1);
  out[o] = fround(mufuSin(turns) * s);
  out[o + 1] = fround(mufuCos(turns) * s);
}

/**
 * One wave: element i = component 0 (s sin) of thread i's first curand_normal4. Three simple passes
 * (Philox, radius, angle) so that V8 optimizes and inlines each loop whole.
 */
function fillOneWave(out: Float32Array, numel: number, c0: number, c1: number, key0: number, key1: number): void {
  const r0 = new Uint32Array(numel);
  const r1 = new Uint32Array(numel);
  philoxWave(r0, r1, numel, c0, c1, key0, key1);
  for (let i = 0; i < numel; i++) out[i] = radius(r0[i]!);
  for (let i = 0; i < numel; i++) out[i] = fround(mufuSin(turnsOf(r1[i]!)) * out[i]!);
}

/** Outputs 0 and 1 of Philox4x32-10 for counters (c0, c1, i, 0), i < numel. */
function philoxWave(r0: Uint32Array, r1: Uint32Array, numel: number, c0: number, c1: number, key0: number, key1: number): void {
  // int32 state (| 0) keeps V8 on machine integers; the high word of each product is taken from the
  // float64 product of the unsigned values.
  const w0 = W0 | 0;
  const w1 = W1 | 0;
  for (let i = 0; i < numel; i++) {
    let x0 = c0 | 0;
    let x1 = c1 | 0;
    let x2 = i | 0;
    let x3 = 0;
    let k0 = key0 | 0;
    let k1 = key1 | 0;
    for (let r = 0; r < 10; r++) {
      const lo0 = Math.imul(M0, x0);
      const hi0 = Math.round((M0 * (x0 >>> 0) - (lo0 >>> 0)) * 2.3283064365386963e-10) | 0;
      const lo1 = Math.imul(M1, x2);
      const hi1 = Math.round((M1 * (x2 >>> 0) - (lo1 >>> 0)) * 2.3283064365386963e-10) | 0;
      x0 = hi1 ^ x1 ^ k0;
      x1 = lo1;
      x2 = hi0 ^ x3 ^ k1;
      x3 = lo0;
      k0 = (k0 + w0) | 0;
      k1 = (k1 + w1) | 0;
    }
    r0[i] = x0;
    r1[i] = x1;
  }
}

export interface PhiloxOptions {
  /**
   * Threads in one wave of torch's launch on the GPU to imitate: multiProcessorCount *
   * maxThreadsPerMultiProcessor (torch.cuda.get_device_properties; H100: 132 * 2048, checked against
   * torch for 1.2M elements). Only tensors with more elements than this depend on it.
   * Default: unlimited (as if every tensor fit in one wave).
   */
  maxThreads?: number;
}

/** A torch CUDA generator state: seed and Philox offset (advances like torch's after each randn). */
export class PhiloxGenerator {
  private readonly k0: number;
  private readonly k1: number;
  /** torch's philox_offset_per_thread, in 32-bit draws (a multiple of 4). */
  offset = 0;
  private readonly maxThreads: number;

  constructor(seed: number | bigint, options: PhiloxOptions = {}) {
    const s = BigInt(seed);
    this.k0 = Number(s & 0xffffffffn);
    this.k1 = Number((s >> 32n) & 0xffffffffn);
    const mt = options.maxThreads ?? Infinity;
    if (!(mt === Infinity || (Number.isInteger(mt) && mt >= 256))) {
      throw new RangeError(`"maxThreads" must be an integer >= 256 (got ${mt})`);
    }
    this.maxThreads = mt;
  }

  /** The next numel values of torch.randn(..., device="cuda", generator=this), float32. */
  randn(numel: number, out: Float32Array = new Float32Array(numel)): Float32Array {
    if (numel === 0) return out;
    const blocks = Math.min(Math.ceil(numel / 256), Math.floor(this.maxThreads / 256));
    const threads = blocks * 256;
    const base = this.offset / 4;
    const block = new Uint32Array(4);
    const pair = new Float32Array(4);
    mufuTable(); // decode once before the loop
    if (numel <= threads) {
      // One wave: element i = component 0 (s sin) of thread i's first curand_normal4.
      const c0 = base >>> 0;
      const c1 = Math.floor(base / 4294967296) >>> 0;
      fillOneWave(out, numel, c0, c1, this.k0, this.k1);
    } else {
      const perIter = threads * 4;
      for (let k = 0; k * perIter < numel; k++) {
        const ctr = base + k;
        for (let idx = 0; idx < threads; idx++) {
          const first = idx + k * perIter;
          if (first >= numel) break;
          philox4x32(ctr >>> 0, Math.floor(ctr / 4294967296), idx, 0, this.k0, this.k1, block);
          boxMuller(block[0]!, block[1]!, pair, 0);
          boxMuller(block[2]!, block[3]!, pair, 2);
          for (let ii = 0; ii < 4; ii++) {
            const li = first + ii * threads;
            if (li < numel) out[li] = pair[ii]!;
          }
        }
      }
    }
    this.offset += (Math.floor((numel - 1) / (threads * 4)) + 1) * 4;
    return out;
  }
}
