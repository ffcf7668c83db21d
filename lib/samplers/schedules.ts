// Noise schedules of SD 1.x: the training schedule (scaled_linear betas), the k-diffusion sigma lists
// (discrete and Karras) and the DDIM / DDPM timestep lists. Everything is float64.

/** torch.linspace as torch computes it in float64: the first half counts up from start, the second down from end. */
export function linspace(start: number, end: number, steps: number): Float64Array {
  const out = new Float64Array(steps);
  if (steps === 1) {
    out[0] = start;
    return out;
  }
  const step = (end - start) / (steps - 1);
  const half = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) out[i] = i < half ? start + step * i : end - step * (steps - i - 1);
  return out;
}

/** The training schedule: alphas_cumprod and the k-diffusion sigma table derived from it. */
export interface TrainingSchedule {
  /** Cumulative products of (1 - beta), index = DDPM timestep 0..T-1. */
  readonly alphasCumprod: Float64Array;
  /** sqrt((1 - ac) / ac) per timestep, increasing. */
  readonly sigmas: Float64Array;
  /** log of `sigmas`. */
  readonly logSigmas: Float64Array;
  readonly sigmaMin: number;
  readonly sigmaMax: number;
}

/** SD 1.x: scaled_linear betas, linspace(sqrt(0.00085), sqrt(0.012), 1000)^2. */
export function scaledLinearSchedule(betaStart = 0.00085, betaEnd = 0.012, timesteps = 1000): TrainingSchedule {
  if (!Number.isInteger(timesteps) || timesteps < 2) throw new RangeError(`"timesteps" must be an integer >= 2 (got ${timesteps})`);
  if (!(betaStart > 0 && betaEnd > betaStart && betaEnd < 1)) {
    throw new RangeError(`"betaStart"/"betaEnd" must satisfy 0 < betaStart < betaEnd < 1 (got ${betaStart}, ${betaEnd})`);
  }
  const roots = linspace(Math.sqrt(betaStart), Math.sqrt(betaEnd), timesteps);
  const ac = new Float64Array(timesteps);
  let prod = 1;
  for (let i = 0; i < timesteps; i++) {
    const beta = roots[i]! * roots[i]!;
    prod *= 1 - beta;
    ac[i] = prod;
  }
  return scheduleFromAlphasCumprod(ac);
}

export function scheduleFromAlphasCumprod(alphasCumprod: Float64Array): TrainingSchedule {
  const n = alphasCumprod.length;
  const sigmas = new Float64Array(n);
  const logSigmas = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const a = alphasCumprod[i]!;
    sigmas[i] = Math.sqrt((1 - a) / a);
    logSigmas[i] = Math.log(sigmas[i]!);
  }
  return { alphasCumprod, sigmas, logSigmas, sigmaMin: sigmas[0]!, sigmaMax: sigmas[n - 1]! };
}

let sd1: TrainingSchedule | undefined;
/** The SD 1.x schedule, computed once. */
export function sd1Schedule(): TrainingSchedule {
  return (sd1 ??= scaledLinearSchedule());
}

/** k-diffusion DiscreteSchedule.t_to_sigma: log-sigma interpolation between neighbouring timesteps. */
export function tToSigma(schedule: TrainingSchedule, t: number): number {
  const low = Math.floor(t);
  const high = Math.ceil(t);
  const w = t - low;
  const ls = schedule.logSigmas;
  return Math.exp((1 - w) * ls[low]! + w * ls[high]!);
}

/**
 * k-diffusion DiscreteSchedule.sigma_to_t (quantize=False): the fractional timestep of a sigma,
 * piecewise linear in log sigma, clamped to [0, T-1].
 */
export function sigmaToT(schedule: TrainingSchedule, sigma: number): number {
  const ls = schedule.logSigmas;
  const logSigma = Math.log(sigma);
  // low = last index with log_sigmas[idx] <= log sigma (0 if none), at most T-2.
  let low = 0;
  for (let i = 0; i < ls.length; i++) if (logSigma - ls[i]! >= 0) low = i;
  low = Math.min(low, ls.length - 2);
  const high = low + 1;
  const lo = ls[low]!;
  const hi = ls[high]!;
  let w = (lo - logSigma) / (lo - hi);
  w = Math.min(Math.max(w, 0), 1);
  return (1 - w) * low + w * high;
}

/** The k-diffusion "discrete" sigmas for n steps: t = linspace(T-1, 0, n) mapped through t_to_sigma, then 0 appended. */
export function discreteSigmas(steps: number, schedule: TrainingSchedule = sd1Schedule()): Float64Array {
  checkSteps(steps);
  const ts = linspace(schedule.sigmas.length - 1, 0, steps);
  const out = new Float64Array(steps + 1);
  for (let i = 0; i < steps; i++) out[i] = tToSigma(schedule, ts[i]!);
  return out;
}

/** Karras et al. (2022) sigmas, k-diffusion get_sigmas_karras, then 0 appended. */
export function karrasSigmas(
  steps: number,
  sigmaMin: number = sd1Schedule().sigmaMin,
  sigmaMax: number = sd1Schedule().sigmaMax,
  rho = 7,
): Float64Array {
  checkSteps(steps);
  if (!(sigmaMin > 0 && sigmaMax > sigmaMin && Number.isFinite(sigmaMax))) {
    throw new RangeError(`Karras sigmas need 0 < sigmaMin < sigmaMax (got ${sigmaMin}, ${sigmaMax})`);
  }
  if (!(rho > 0 && Number.isFinite(rho))) throw new RangeError(`"rho" must be a positive number (got ${rho})`);
  const ramp = linspace(0, 1, steps);
  const minInvRho = sigmaMin ** (1 / rho);
  const maxInvRho = sigmaMax ** (1 / rho);
  const out = new Float64Array(steps + 1);
  for (let i = 0; i < steps; i++) out[i] = (maxInvRho + ramp[i]! * (minInvRho - maxInvRho)) ** rho;
  return out;
}

export type ScheduleName = 'discrete' | 'karras';
export const SCHEDULE_NAMES: readonly ScheduleName[] = ['discrete', 'karras'];

export function sigmasFor(schedule: ScheduleName, steps: number, training: TrainingSchedule = sd1Schedule()): Float64Array {
  if (schedule === 'discrete') return discreteSigmas(steps, training);
  if (schedule === 'karras') return karrasSigmas(steps, training.sigmaMin, training.sigmaMax);
  throw new RangeError(`unknown schedule "${String(schedule)}" (expected one of: ${SCHEDULE_NAMES.join(', ')})`);
}

/**
 * diffusers DDIMScheduler timesteps, "leading" spacing with steps_offset = 1 (SD 1.x config):
 * (arange(n) * (T // n)) reversed, plus 1. N = 20 gives 951, 901, ..., 1.
 */
export function ddimTimesteps(steps: number, trainSteps = 1000): number[] {
  checkSteps(steps, trainSteps);
  const ratio = Math.floor(trainSteps / steps);
  const out: number[] = [];
  for (let i = steps - 1; i >= 0; i--) out.push(i * ratio + 1);
  return out;
}

/** The seed project's DDPM timesteps: (arange(n) * (T // n)) reversed. N = 20 gives 950, 900, ..., 0. */
export function ddpmTimesteps(steps: number, trainSteps = 1000): number[] {
  checkSteps(steps, trainSteps);
  const ratio = Math.floor(trainSteps / steps);
  const out: number[] = [];
  for (let i = steps - 1; i >= 0; i--) out.push(i * ratio);
  return out;
}

function checkSteps(steps: number, max = Infinity): void {
  if (!Number.isInteger(steps) || steps < 1 || steps > max) {
    throw new RangeError(`"steps" must be an integer from 1 to ${max === Infinity ? 'any' : max} (got ${steps})`);
  }
}
