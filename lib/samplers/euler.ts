// Euler (k-diffusion sample_euler, s_churn = 0): one model call per step, no noise.
import { callModel, checkSigmas, copyOf, type Denoiser, type SampleOptions, type Vec } from './types.js';

/** x <- x + (x - D(x, s_i)) / s_i * (s_{i+1} - s_i). Starts from x as given (already scaled by sigmas[0]). */
export async function sampleEuler(model: Denoiser, x0: Vec, sigmas: ArrayLike<number>, options: SampleOptions = {}): Promise<Vec> {
  checkSigmas(sigmas, 'euler');
  const x = copyOf(x0);
  const total = sigmas.length - 1;
  for (let i = 0; i < total; i++) {
    const sigma = sigmas[i]!;
    const denoised = await callModel(model, x, sigma, { step: i, call: 0 }, options.signal);
    const dt = sigmas[i + 1]! - sigma;
    for (let j = 0; j < x.length; j++) {
      const d = (x[j]! - denoised[j]!) / sigma;
      x[j] = x[j]! + d * dt;
    }
    await options.onStep?.({ step: i, total, x, denoised });
  }
  return x;
}
