// Heun (k-diffusion sample_heun, s_churn = 0): Euler predictor, trapezoidal corrector; 2 model calls
// per step, 1 on the last step (to sigma 0). No noise is drawn.
import { callModel, checkSigmas, copyOf, like, type Denoiser, type SampleOptions, type Vec } from './types.js';

export async function sampleHeun(model: Denoiser, x0: Vec, sigmas: ArrayLike<number>, options: SampleOptions = {}): Promise<Vec> {
  checkSigmas(sigmas, 'heun');
  const x = copyOf(x0);
  const n = x.length;
  const d = new Float64Array(n);
  const x2 = like(x);
  const total = sigmas.length - 1;
  for (let i = 0; i < total; i++) {
    const sigma = sigmas[i]!;
    const next = sigmas[i + 1]!;
    const denoised = await callModel(model, x, sigma, { step: i, call: 0 }, options.signal);
    const dt = next - sigma;
    for (let j = 0; j < n; j++) d[j] = (x[j]! - denoised[j]!) / sigma;
    if (next === 0) {
      for (let j = 0; j < n; j++) x[j] = x[j]! + d[j]! * dt;
    } else {
      for (let j = 0; j < n; j++) x2[j] = x[j]! + d[j]! * dt;
      const denoised2 = await callModel(model, x2, next, { step: i, call: 1 }, options.signal);
      for (let j = 0; j < n; j++) {
        const d2 = (x2[j]! - denoised2[j]!) / next;
        x[j] = x[j]! + ((d[j]! + d2) / 2) * dt;
      }
    }
    await options.onStep?.({ step: i, total, x, denoised });
  }
  return x;
}
