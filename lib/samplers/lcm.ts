// LCM sampling loop (AUTOMATIC1111 / ComfyUI sample_lcm): jump to the model's x0 prediction, then
// re-noise to the next sigma with fresh noise (none after the last step).
// Only the loop: an LCM checkpoint also needs its own denoiser wrapper (c_skip / c_out boundary
// condition, LCM timesteps), which is the model side's business.
import { callModel, checkSigmas, copyOf, drawNoise, like, type Denoiser, type NoisySampleOptions, type Vec } from './types.js';

export async function sampleLcm(model: Denoiser, x0: Vec, sigmas: ArrayLike<number>, options: NoisySampleOptions = {}): Promise<Vec> {
  checkSigmas(sigmas, 'lcm');
  let x = copyOf(x0);
  const total = sigmas.length - 1;
  for (let i = 0; i < total; i++) {
    const denoised = await callModel(model, x, sigmas[i]!, { step: i, call: 0 }, options.signal);
    x = like(x0); // keeps the caller's precision even if the model answers in another array type
    x.set(denoised);
    const next = sigmas[i + 1]!;
    if (next > 0) {
      const z = drawNoise(options.noise, i, x.length, 'lcm');
      for (let j = 0; j < x.length; j++) x[j] = x[j]! + next * z[j]!;
    }
    await options.onStep?.({ step: i, total, x, denoised });
  }
  return x;
}
