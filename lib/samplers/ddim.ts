// DDIM as diffusers' DDIMScheduler.step does it for SD 1.x (epsilon prediction, clip_sample off,
// set_alpha_to_one = False so the step after t = 1 uses ac[0]), with eta >= 0.
import { sd1Schedule, type TrainingSchedule } from './schedules.js';
import { callModel, copyOf, drawNoise, like, type EpsModel, type NoisySampleOptions, type Vec } from './types.js';

export interface DdimOptions extends NoisySampleOptions {
  /** 0 = deterministic DDIM; 1 = DDPM-like variance. With eta > 0, noise is drawn at EVERY step, the last included. */
  eta?: number;
  /**
   * Distance to the previous timestep (diffusers: T // num_inference_steps). It stays that of the full
   * run when img2img shortens the list. Default: timesteps[0] - timesteps[1], or T for a single step.
   */
  stepRatio?: number;
  schedule?: TrainingSchedule;
}

export interface DdimStep {
  prev: Vec;
  predX0: Vec;
  /** eta * sqrt(variance) of this step. */
  std: number;
}

/** Validates a DDPM timestep list against a schedule of T steps. */
export function checkTimesteps(timesteps: ArrayLike<number>, trainSteps: number, who: string): void {
  if (!timesteps || timesteps.length < 1) throw new RangeError(`${who}: "timesteps" must not be empty`);
  for (let i = 0; i < timesteps.length; i++) {
    const t = timesteps[i]!;
    if (!Number.isInteger(t) || t < 0 || t >= trainSteps) {
      throw new RangeError(`${who}: timesteps[${i}] = ${t} is not an integer in [0, ${trainSteps - 1}]`);
    }
  }
}

export function defaultStepRatio(timesteps: ArrayLike<number>, trainSteps: number): number {
  return timesteps.length > 1 ? timesteps[0]! - timesteps[1]! : trainSteps;
}

/** What DDIM and DDPM share before stepping: the schedule's alphas_cumprod and the checked step ratio. */
export function timestepSetup(
  timesteps: ArrayLike<number>,
  options: { schedule?: TrainingSchedule; stepRatio?: number },
  who: string,
): { ac: ArrayLike<number>; ratio: number } {
  const ac = (options.schedule ?? sd1Schedule()).alphasCumprod;
  checkTimesteps(timesteps, ac.length, who);
  const ratio = options.stepRatio ?? defaultStepRatio(timesteps, ac.length);
  if (!Number.isInteger(ratio) || ratio < 1) throw new RangeError(`${who}: "stepRatio" must be a positive integer (got ${ratio})`);
  return { ac, ratio };
}

export async function sampleDdim(model: EpsModel, x0: Vec, timesteps: ArrayLike<number>, options: DdimOptions = {}): Promise<Vec> {
  const { ac, ratio } = timestepSetup(timesteps, options, 'ddim');
  const eta = options.eta ?? 0;
  if (!Number.isFinite(eta) || eta < 0) throw new RangeError(`ddim: "eta" must be a finite number >= 0 (got ${eta})`);
  let x = copyOf(x0);
  const total = timesteps.length;
  for (let i = 0; i < total; i++) {
    const t = timesteps[i]!;
    const eps = await callModel(model, x, t, { step: i, call: 0 }, options.signal);
    const prevT = t - ratio;
    const aT = ac[t]!;
    const aPrev = prevT >= 0 ? ac[prevT]! : ac[0]!;
    const sqrtBeta = Math.sqrt(1 - aT);
    const sqrtA = Math.sqrt(aT);
    const variance = ((1 - aPrev) / (1 - aT)) * (1 - aT / aPrev);
    const std = eta * Math.sqrt(variance);
    const dirCoef = Math.sqrt(1 - aPrev - std * std);
    const sqrtAPrev = Math.sqrt(aPrev);
    const predX0 = like(x);
    const next = like(x);
    for (let j = 0; j < x.length; j++) {
      const p = (x[j]! - sqrtBeta * eps[j]!) / sqrtA;
      predX0[j] = p;
      next[j] = sqrtAPrev * p + dirCoef * eps[j]!;
    }
    if (eta > 0) {
      const z = drawNoise(options.noise, i, x.length, 'ddim (eta > 0)');
      for (let j = 0; j < x.length; j++) next[j] = next[j]! + std * z[j]!;
    }
    x = next;
    await options.onStep?.({ step: i, total, x, denoised: predX0 });
  }
  return x;
}
