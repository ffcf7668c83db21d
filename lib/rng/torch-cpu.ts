// torch.randn on the CPU (torch.Generator("cpu").manual_seed(seed)), bit for bit, as diffusers gets it.
//
// torch draws from MT19937 and, for float32 tensors:
// * numel >= 16: fills the tensor with uniforms u = (mt() & 0xffffff) * 2^-24, then turns each block of
//   16 into normals with Box-Muller (u1 = 1 - data[j], u2 = data[j + 8], j < 8; data[j] = r cos,
//   data[j + 8] = r sin). If numel % 16 != 0 the last 16 values are redrawn and transformed again.
//   torch's x86-64 builds do this with AVX2 (normal_fill_16_AVX2: log256_ps / sincos256_ps of
//   avx_mathfun.h, Cephes polynomials), compiled with FMA contraction; reproduced below operation by
//   operation, including which multiply-adds are fused. (torch without AVX2, e.g. on ARM, uses libm
//   and gives slightly different values: not reproduced.)
// * numel < 16: one value at a time from at::normal_distribution<double>: u1, u2 from 53-bit uniforms
//   (two mt() calls each), r = sqrt(-2 log(1 - u2)), returns r cos(2 pi u1) and caches r sin(2 pi u1)
//   in the generator for the next call. float64 math, then rounded to float32.
import { fmaf, fround, floatBits, bitsToFloat } from './float32.js';
import { Mt19937 } from './mt19937.js';

const TWO_PI_F = fround(2 * Math.PI);

// avx_mathfun.h constants (as float32).
const SQRTHF = fround(0.707106781186547524);
const LOG_P = [
  7.0376836292e-2, -1.151461031e-1, 1.167699874e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1,
  2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1,
].map(fround);
const LOG_Q1 = fround(-2.12194440e-4);
const LOG_Q2 = fround(0.693359375);
const FOPI = fround(1.27323954473516);
const DP1 = fround(-0.78515625);
const DP2 = fround(-2.4187564849853515625e-4);
const DP3 = fround(-3.77489497744594108e-8);
const SINCOF = [-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1].map(fround);
const COSCOF = [2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2].map(fround);

/** log256_ps for one lane (x > 0, normal), with the multiply-adds GCC fuses. */
function logAvx(x: number): number {
  const bits = floatBits(x);
  let e = fround((bits >>> 23) - 0x7f + 1);
  let m = bitsToFloat((bits & ~0x7f800000) | 0x3f000000); // mantissa in [0.5, 1)
  const small = m < SQRTHF;
  const tmp = small ? m : 0;
  m = fround(m - 1);
  if (small) e = fround(e - 1);
  m = fround(m + tmp);
  const z = fround(m * m);
  let y = LOG_P[0]!;
  for (let i = 1; i < 9; i++) y = fmaf(y, m, LOG_P[i]!);
  y = fround(y * m);
  y = fmaf(y, z, fround(e * LOG_Q1)); // y*z + e*q1, fused on the y*z side
  y = fmaf(-z, 0.5, y); // exact either way: z * 0.5 is exact
  m = fround(m + y);
  return fmaf(e, LOG_Q2, m);
}

/** sincos256_ps for one lane; writes sin to out[0], cos to out[1]. */
function sinCosAvx(xIn: number, out: Float64Array): void {
  const signIn = xIn < 0;
  let x = Math.abs(xIn);
  let j = Math.trunc(fround(x * FOPI));
  j = (j + 1) & ~1;
  const y = fround(j);
  const swapSin = (j & 4) !== 0;
  const polySin = (j & 2) === 0; // sin comes from the sine polynomial
  x = fmaf(y, DP1, x);
  x = fmaf(y, DP2, x);
  x = fmaf(y, DP3, x);
  const cosNeg = (~(j - 2) & 4) !== 0;
  const sinNeg = signIn !== swapSin;
  const z = fround(x * x);
  let yc = COSCOF[0]!;
  yc = fmaf(yc, z, COSCOF[1]!);
  yc = fmaf(yc, z, COSCOF[2]!);
  yc = fround(yc * z);
  yc = fmaf(yc, z, -fround(z * 0.5));
  yc = fround(yc + 1);
  let ys = SINCOF[0]!;
  ys = fmaf(ys, z, SINCOF[1]!);
  ys = fmaf(ys, z, SINCOF[2]!);
  ys = fround(ys * z);
  ys = fmaf(ys, x, x);
  const s = polySin ? ys : yc;
  const c = polySin ? yc : ys;
  out[0] = sinNeg ? -s : s;
  out[1] = cosNeg ? -c : c;
}

const sc = new Float64Array(2);

/** normal_fill_16_AVX2 on data[o .. o+16). */
function normalFill16(data: Float32Array, o: number): void {
  for (let j = 0; j < 8; j++) {
    const u1 = fround(1 - data[o + j]!);
    const u2 = data[o + j + 8]!;
    const radius = fround(Math.sqrt(fround(-2 * logAvx(u1))));
    sinCosAvx(fround(TWO_PI_F * u2), sc);
    data[o + j] = fround(radius * sc[1]!);
    data[o + j + 8] = fround(radius * sc[0]!);
  }
}

/** A torch CPU generator: MT19937 plus the cached second Box-Muller value of normal_distribution<double>. */
export class TorchCpuGenerator {
  private readonly mt: Mt19937;
  private nextDoubleNormal: number | undefined;

  /** seed: an integer in [0, 2^64); torch seeds MT19937 with its low 32 bits. */
  constructor(seed: number | bigint) {
    this.mt = new Mt19937(Number(BigInt(seed) & 0xffffffffn));
  }

  private uniform24(): number {
    return (this.mt.next() & 0xffffff) * 2 ** -24;
  }

  private uniform53(): number {
    const hi = this.mt.next(); // random64() = (first << 32) | second
    const lo = this.mt.next();
    return ((hi & 0x1fffff) * 2 ** 32 + lo) * 2 ** -53;
  }

  private normalDouble(): number {
    if (this.nextDoubleNormal !== undefined) {
      const v = this.nextDoubleNormal;
      this.nextDoubleNormal = undefined;
      return v;
    }
    const u1 = this.uniform53();
    const u2 = this.uniform53();
    const r = Math.sqrt(-2 * Math.log1p(-u2));
    const theta = 2 * Math.PI * u1;
    this.nextDoubleNormal = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** The next numel values of torch.randn(..., generator=this), float32. */
  randn(numel: number, out: Float32Array = new Float32Array(numel)): Float32Array {
    if (numel < 16) {
      for (let i = 0; i < numel; i++) out[i] = fround(this.normalDouble());
      return out;
    }
    for (let i = 0; i < numel; i++) out[i] = this.uniform24();
    for (let i = 0; i + 16 <= numel; i += 16) normalFill16(out, i);
    if (numel % 16 !== 0) {
      const o = numel - 16;
      for (let i = 0; i < 16; i++) out[o + i] = this.uniform24();
      normalFill16(out, o);
    }
    return out;
  }
}
