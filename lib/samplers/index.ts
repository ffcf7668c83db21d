// The sampler registry: names (API and CLI alike), plans (sigmas or timesteps for a run, img2img
// included), and one entry point that drives any sampler with an epsilon model.
import { sampleDdim, type DdimOptions } from './ddim.js';
import { sampleDdpm } from './ddpm.js';
import { epsToDenoiser } from './denoiser.js';
import { sampleDpmpp2m } from './dpmpp-2m.js';
import { sampleDpmpp2sAncestral } from './dpmpp-2s-ancestral.js';
import { sampleEuler } from './euler.js';
import { sampleEulerAncestral } from './euler-ancestral.js';
import { sampleHeun } from './heun.js';
import { img2imgStartIndex, noiseToAlpha, noiseToSigma } from './img2img.js';
import { sampleLcm } from './lcm.js';
import {
  ddimTimesteps,
  ddpmTimesteps,
  sd1Schedule,
  sigmasFor,
  SCHEDULE_NAMES,
  type ScheduleName,
  type TrainingSchedule,
} from './schedules.js';
import { like, type Denoiser, type EpsModel, type NoiseSource, type StepInfo, type Vec } from './types.js';

export * from './types.js';
export * from './schedules.js';
export { epsToDenoiser } from './denoiser.js';
export { img2imgStartIndex, noiseToAlpha, noiseToSigma } from './img2img.js';
export { sampleEuler } from './euler.js';
export { sampleEulerAncestral, ancestralStep } from './euler-ancestral.js';
export { sampleHeun } from './heun.js';
export { sampleDpmpp2m } from './dpmpp-2m.js';
export { sampleDpmpp2sAncestral } from './dpmpp-2s-ancestral.js';
export { sampleLcm } from './lcm.js';
export { sampleDdim } from './ddim.js';
export { sampleDdpm } from './ddpm.js';
export { didYouMean } from './did-you-mean.js';
import { didYouMean } from './did-you-mean.js';

export type SamplerName = 'ddpm' | 'ddim' | 'euler' | 'euler_a' | 'heun' | 'dpm++2m' | 'dpm++2s_a' | 'lcm';

export interface SamplerInfo {
  name: SamplerName;
  /** The AUTOMATIC1111 name, for the PNG "parameters" text. */
  label: string;
  /** 'k-diffusion' samplers walk a sigma list; 'ddim' and 'ddpm' walk DDPM timesteps. */
  family: 'k-diffusion' | 'ddim' | 'ddpm';
  /** Whether the run needs a NoiseSource (ddim only with eta > 0). */
  usesNoise: boolean;
  /** Model calls per step (the last step of heun and dpm++2s_a makes one). */
  callsPerStep: 1 | 2;
  description: string;
}

export const SAMPLERS: Readonly<Record<SamplerName, SamplerInfo>> = {
  ddpm: { name: 'ddpm', label: 'DDPM', family: 'ddpm', usesNoise: true, callsPerStep: 1,
    description: 'Ancestral DDPM posterior sampling, as the seed project does it; needs many steps.' },
  ddim: { name: 'ddim', label: 'DDIM', family: 'ddim', usesNoise: false, callsPerStep: 1,
    description: 'Deterministic DDIM (diffusers); eta > 0 adds DDPM-like noise.' },
  euler: { name: 'euler', label: 'Euler', family: 'k-diffusion', usesNoise: false, callsPerStep: 1,
    description: 'First-order ODE solver; deterministic, converges as steps grow.' },
  euler_a: { name: 'euler_a', label: 'Euler a', family: 'k-diffusion', usesNoise: true, callsPerStep: 1,
    description: 'Euler ancestral: adds fresh noise every step; varied images, does not converge.' },
  heun: { name: 'heun', label: 'Heun', family: 'k-diffusion', usesNoise: false, callsPerStep: 2,
    description: 'Second-order ODE solver; two model calls per step, more accurate than Euler.' },
  'dpm++2m': { name: 'dpm++2m', label: 'DPM++ 2M', family: 'k-diffusion', usesNoise: false, callsPerStep: 1,
    description: 'Second-order multistep DPM-Solver++; sharp results in 20-30 steps, best with karras.' },
  'dpm++2s_a': { name: 'dpm++2s_a', label: 'DPM++ 2S a', family: 'k-diffusion', usesNoise: true, callsPerStep: 2,
    description: 'Second-order single-step DPM-Solver++ with ancestral noise; two model calls per step.' },
  lcm: { name: 'lcm', label: 'LCM', family: 'k-diffusion', usesNoise: true, callsPerStep: 1,
    description: 'Latent Consistency sampling loop (for LCM-distilled models); 2-8 steps.' },
};

export const SAMPLER_NAMES = Object.keys(SAMPLERS) as SamplerName[];

// Names people type from other tools, mapped to ours for the did-you-mean hint only.
const ALIASES: Record<string, SamplerName> = {
  euler_ancestral: 'euler_a', euler_a: 'euler_a', eulera: 'euler_a', k_euler_a: 'euler_a', k_euler: 'euler',
  dpmpp_2m: 'dpm++2m', dpmpp2m: 'dpm++2m', 'dpm++_2m': 'dpm++2m', dpm_2m: 'dpm++2m',
  dpmpp_2s_a: 'dpm++2s_a', dpmpp_2s_ancestral: 'dpm++2s_a', 'dpm++_2s_a': 'dpm++2s_a', dpmpp2sa: 'dpm++2s_a',
  k_heun: 'heun', k_lms: 'euler', plms: 'ddim', pndm: 'ddim',
};

/** Checks a sampler name; unknown names get a RangeError with the closest known name. */
export function checkSamplerName(name: unknown, field = 'sampler'): SamplerName {
  if (typeof name !== 'string') throw new TypeError(`"${field}" must be a string (one of: ${SAMPLER_NAMES.join(', ')})`);
  if (Object.prototype.hasOwnProperty.call(SAMPLERS, name)) return name as SamplerName;
  const key = name.trim().toLowerCase().replace(/[\s-]+/g, '_');
  const guess = (ALIASES[key] as SamplerName | undefined) ?? (SAMPLERS[key as SamplerName] ? (key as SamplerName) : didYouMean(name, SAMPLER_NAMES));
  const hint = guess ? ` Did you mean "${guess}"?` : '';
  throw new RangeError(`unknown ${field} "${name}".${hint} Known samplers: ${SAMPLER_NAMES.join(', ')}`);
}

export function checkScheduleName(name: unknown, field = 'schedule'): ScheduleName {
  if (typeof name !== 'string') throw new TypeError(`"${field}" must be a string (one of: ${SCHEDULE_NAMES.join(', ')})`);
  if ((SCHEDULE_NAMES as readonly string[]).includes(name)) return name as ScheduleName;
  const guess = didYouMean(name, SCHEDULE_NAMES);
  throw new RangeError(`unknown ${field} "${name}".${guess ? ` Did you mean "${guess}"?` : ''} Known schedules: ${SCHEDULE_NAMES.join(', ')}`);
}

/** What a run walks: the (possibly img2img-shortened) sigma or timestep list. */
export interface SamplingPlan {
  sampler: SamplerName;
  schedule: ScheduleName;
  /** Steps of the full (txt2img) run. */
  steps: number;
  strength: number;
  /** Index into the full list where the run starts (0 for txt2img). */
  startIndex: number;
  /** k-diffusion samplers: the sigmas to run, final 0 included. */
  sigmas?: Float64Array;
  /** ddim / ddpm: the timesteps to run. */
  timesteps?: number[];
  /** ddim / ddpm: T // steps of the full run. */
  stepRatio?: number;
  training: TrainingSchedule;
}

export interface PlanOptions {
  steps: number;
  /** 'discrete' (default) or 'karras'; k-diffusion samplers only. */
  schedule?: ScheduleName;
  /** img2img strength in (0, 1]; 1 (default) is a full txt2img run. */
  strength?: number;
  training?: TrainingSchedule;
}

export function planSampling(samplerName: SamplerName, options: PlanOptions): SamplingPlan {
  const sampler = checkSamplerName(samplerName);
  const schedule = checkScheduleName(options.schedule ?? 'discrete');
  const training = options.training ?? sd1Schedule();
  const T = training.alphasCumprod.length;
  const { steps } = options;
  if (!Number.isInteger(steps) || steps < 1 || steps > T) throw new RangeError(`"steps" must be an integer from 1 to ${T} (got ${steps})`);
  const strength = options.strength ?? 1;
  const startIndex = strength === 1 ? 0 : img2imgStartIndex(steps, strength);
  const family = SAMPLERS[sampler].family;
  if (family === 'k-diffusion') {
    const sigmas = sigmasFor(schedule, steps, training).slice(startIndex);
    return { sampler, schedule, steps, strength, startIndex, sigmas, training };
  }
  if (schedule !== 'discrete') throw new RangeError(`schedule "${schedule}" applies to k-diffusion samplers only, not to "${sampler}"`);
  const full = family === 'ddim' ? ddimTimesteps(steps, T) : ddpmTimesteps(steps, T);
  return { sampler, schedule, steps, strength, startIndex, timesteps: full.slice(startIndex), stepRatio: Math.floor(T / steps), training };
}

/**
 * The x a run starts from. txt2img (no init): sigmas[0] * noise for k-diffusion, the noise itself for
 * ddim/ddpm. img2img: the init latent noised to the first sigma / timestep of the plan.
 * The result has the type of `out` (default Float32Array).
 */
export function startLatent(plan: SamplingPlan, noise: ArrayLike<number>, init?: ArrayLike<number>, out?: Vec): Vec {
  const x = out ?? new Float32Array(noise.length);
  if (plan.sigmas) {
    const s0 = plan.sigmas[0]!;
    if (init) return noiseToSigma(init, noise, s0, x);
    if (noise.length !== x.length) throw new RangeError(`noise (${noise.length}) and output (${x.length}) lengths differ`);
    for (let i = 0; i < x.length; i++) x[i] = noise[i]! * s0;
    return x;
  }
  if (init) return noiseToAlpha(init, noise, plan.training.alphasCumprod[plan.timesteps![0]!]!, x);
  x.set(noise);
  return x;
}

export interface RunOptions {
  /** Per-step noise for the samplers that add noise. */
  noise?: NoiseSource;
  /** ddim eta (default 0), euler_a / dpm++2s_a eta (default 1). */
  eta?: number;
  /** Use this denoiser for k-diffusion samplers instead of wrapping the eps model (e.g. an LCM wrapper). */
  denoiser?: Denoiser;
  signal?: AbortSignal;
  onStep?: (info: StepInfo) => void | Promise<void>;
}

/** Runs the plan's sampler from x with an epsilon model (k-diffusion samplers get it wrapped by epsToDenoiser). */
export async function runSampler(plan: SamplingPlan, eps: EpsModel, x: Vec, options: RunOptions = {}): Promise<Vec> {
  const common = { noise: options.noise, signal: options.signal, onStep: options.onStep };
  if (plan.timesteps) {
    if (plan.sampler === 'ddim') {
      const o: DdimOptions = { ...common, eta: options.eta ?? 0, stepRatio: plan.stepRatio, schedule: plan.training };
      return sampleDdim(eps, x, plan.timesteps, o);
    }
    return sampleDdpm(eps, x, plan.timesteps, { ...common, stepRatio: plan.stepRatio, schedule: plan.training });
  }
  const sigmas = plan.sigmas!;
  const model = options.denoiser ?? epsToDenoiser(eps, { schedule: plan.training });
  switch (plan.sampler) {
    case 'euler': return sampleEuler(model, x, sigmas, common);
    case 'euler_a': return sampleEulerAncestral(model, x, sigmas, { ...common, eta: options.eta ?? 1 });
    case 'heun': return sampleHeun(model, x, sigmas, common);
    case 'dpm++2m': return sampleDpmpp2m(model, x, sigmas, common);
    case 'dpm++2s_a': return sampleDpmpp2sAncestral(model, x, sigmas, { ...common, eta: options.eta ?? 1 });
    case 'lcm': return sampleLcm(model, x, sigmas, common);
    default: throw new RangeError(`sampler "${plan.sampler}" has no sigma-based implementation`);
  }
}

