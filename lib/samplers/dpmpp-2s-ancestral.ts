// DPM++ 2S ancestral (k-diffusion sample_dpmpp_2s_ancestral): a second-order single step down to
// sigma_down through the midpoint in log sigma, then fresh noise of size sigma_up.
// 2 model calls per step, 1 on the last step.
import { ancestralStep, checkEta, type AncestralOptions } from './euler-ancestral.js';
import { callModel, checkSigmas, copyOf, drawNoise, like, type Denoiser, type Vec } from './types.js';

const tOf = (sigma: number): number => -Math.log(sigma);
const sigmaOf = (t: number): number => Math.exp(-t);

export async function sampleDpmpp2sAncestral(
  model: Denoiser,
  x0: Vec,
  sigmas: ArrayLike<number>,
  options: AncestralOptions = {},
): Promise<Vec> {
  checkSigmas(sigmas, 'dpm++2s_a');
  const eta = options.eta ?? 1;
  const sNoise = options.sNoise ?? 1;
  checkEta(eta, 'dpm++2s_a');
  const x = copyOf(x0);
  const n = x.length;
  const x2 = like(x);
  const total = sigmas.length - 1;
  for (let i = 0; i < total; i++) {
    const sigma = sigmas[i]!;
    const next = sigmas[i + 1]!;
    const denoised = await callModel(model, x, sigma, { step: i, call: 0 }, options.signal);
    const { sigmaDown, sigmaUp } = ancestralStep(sigma, next, eta);
    if (sigmaDown === 0) {
      const dt = sigmaDown - sigma;
      for (let j = 0; j < n; j++) x[j] = x[j]! + ((x[j]! - denoised[j]!) / sigma) * dt;
    } else {
      const t = tOf(sigma);
      const tNext = tOf(sigmaDown);
      const h = tNext - t;
      const s = t + 0.5 * h;
      const ratioMid = sigmaOf(s) / sigmaOf(t);
      const em1Half = Math.expm1(-h * 0.5);
      for (let j = 0; j < n; j++) x2[j] = ratioMid * x[j]! - em1Half * denoised[j]!;
      const denoised2 = await callModel(model, x2, sigmaOf(s), { step: i, call: 1 }, options.signal);
      const ratio = sigmaOf(tNext) / sigmaOf(t);
      const em1 = Math.expm1(-h);
      for (let j = 0; j < n; j++) x[j] = ratio * x[j]! - em1 * denoised2[j]!;
    }
    if (next > 0) {
      const z = drawNoise(options.noise, i, n, 'dpm++2s_a');
      const scale = sNoise * sigmaUp;
      for (let j = 0; j < n; j++) x[j] = x[j]! + z[j]! * scale;
    }
    await options.onStep?.({ step: i, total, x, denoised });
  }
  return x;
}
