// DDPM ancestral sampling as the seed project (hkproj's pytorch-stable-diffusion, ddpm.py) does it:
// posterior mean of q(x_{t-1} | x_t, x0) plus sqrt(max(variance, 1e-20)) * noise, for t > 0.
// Steps from t to t - T // N; the step after the last timestep uses alpha = 1.
import { timestepSetup } from './ddim.js';
import type { TrainingSchedule } from './schedules.js';
import { callModel, copyOf, drawNoise, like, type EpsModel, type NoisySampleOptions, type Vec } from './types.js';

export interface DdpmOptions extends NoisySampleOptions {
  /** T // num_inference_steps of the full run (kept by img2img). Default: timesteps[0] - timesteps[1]. */
  stepRatio?: number;
  schedule?: TrainingSchedule;
}

/** Noise is drawn on every step with t > 0 (so not on the t = 0 step). */
export async function sampleDdpm(model: EpsModel, x0: Vec, timesteps: ArrayLike<number>, options: DdpmOptions = {}): Promise<Vec> {
  const { ac, ratio } = timestepSetup(timesteps, options, 'ddpm');
  let x = copyOf(x0);
  const total = timesteps.length;
  for (let i = 0; i < total; i++) {
    const t = timesteps[i]!;
    const eps = await callModel(model, x, t, { step: i, call: 0 }, options.signal);
    const prevT = t - ratio;
    const aT = ac[t]!;
    const aPrev = prevT >= 0 ? ac[prevT]! : 1;
    const betaT = 1 - aT;
    const betaPrev = 1 - aPrev;
    const curAlpha = aT / aPrev;
    const curBeta = 1 - curAlpha;
    const cX0 = (Math.sqrt(aPrev) * curBeta) / betaT;
    const cX = (Math.sqrt(curAlpha) * betaPrev) / betaT;
    const sqrtBeta = Math.sqrt(betaT);
    const sqrtA = Math.sqrt(aT);
    const predX0 = like(x);
    const next = like(x);
    for (let j = 0; j < x.length; j++) {
      const p = (x[j]! - sqrtBeta * eps[j]!) / sqrtA;
      predX0[j] = p;
      next[j] = cX0 * p + cX * x[j]!;
    }
    if (t > 0) {
      const std = Math.sqrt(Math.max((betaPrev / betaT) * curBeta, 1e-20));
      const z = drawNoise(options.noise, i, x.length, 'ddpm');
      for (let j = 0; j < x.length; j++) next[j] = next[j]! + std * z[j]!;
    }
    x = next;
    await options.onStep?.({ step: i, total, x, denoised: predX0 });
  }
  return x;
}
