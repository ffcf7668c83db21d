// DPM++ 2M (k-diffusion sample_dpmpp_2m): multistep, one model call per step, no noise. The first step,
// and the last one (to sigma 0), are first order; the others extrapolate from the previous denoised.
import { callModel, checkSigmas, copyOf, type Denoiser, type SampleOptions, type Vec } from './types.js';

const tOf = (sigma: number): number => -Math.log(sigma);
const sigmaOf = (t: number): number => Math.exp(-t);

export async function sampleDpmpp2m(model: Denoiser, x0: Vec, sigmas: ArrayLike<number>, options: SampleOptions = {}): Promise<Vec> {
  checkSigmas(sigmas, 'dpm++2m');
  const x = copyOf(x0);
  const n = x.length;
  let old: Vec | undefined;
  const total = sigmas.length - 1;
  for (let i = 0; i < total; i++) {
    const denoised = await callModel(model, x, sigmas[i]!, { step: i, call: 0 }, options.signal);
    const t = tOf(sigmas[i]!);
    const tNext = tOf(sigmas[i + 1]!); // +Infinity for sigma 0: ratio 0, expm1(-inf) = -1, so x <- denoised
    const h = tNext - t;
    const ratio = sigmaOf(tNext) / sigmaOf(t);
    const em1 = Math.expm1(-h);
    if (old === undefined || sigmas[i + 1] === 0) {
      for (let j = 0; j < n; j++) x[j] = ratio * x[j]! - em1 * denoised[j]!;
    } else {
      const hLast = t - tOf(sigmas[i - 1]!);
      const r = hLast / h;
      const a = 1 + 1 / (2 * r);
      const b = 1 / (2 * r);
      for (let j = 0; j < n; j++) {
        const dd = a * denoised[j]! - b * old[j]!;
        x[j] = ratio * x[j]! - em1 * dd;
      }
    }
    old = denoised;
    await options.onStep?.({ step: i, total, x, denoised });
  }
  return x;
}
