// Shared types and small vector helpers for the samplers.
//
// Samplers keep their state in the array type of the x they are given: pass a Float64Array to get
// float64 math end to end (the golden tests do), a Float32Array to store x in float32 between steps
// (the pipeline does, as torch does). Schedule math (sigmas, alphas, ratios) is always float64.

/** A latent or any other flat tensor the samplers step. */
export type Vec = Float32Array | Float64Array;

/** What a model call is told besides x and its noise level. */
export interface CallInfo {
  /** Index of the sampler step making the call (0-based, in the list the sampler was given). */
  step: number;
  /** 0 for the first model call of a step, 1 for the second (Heun, DPM++ 2S). */
  call: number;
}

/**
 * k-diffusion style denoiser: returns D(x, sigma), the prediction of the clean sample x0 for the
 * input x = x0 + sigma * noise. Used by euler, euler_a, heun, dpm++2m, dpm++2s_a and lcm.
 * The returned array must have x's length; it is not modified by the sampler.
 */
export type Denoiser = (x: Vec, sigma: number, info: CallInfo) => Vec | Promise<Vec>;

/**
 * Epsilon (noise) predictor on the DDPM time axis: eps(x_t, t) for x_t = sqrt(ac[t]) x0 + sqrt(1 - ac[t]) eps.
 * `t` is a timestep in [0, 999]; k-diffusion wrappers pass fractional t. Used by ddpm and ddim, and,
 * wrapped by `epsToDenoiser`, by every k-diffusion sampler (that is how an SD UNet is driven).
 */
export type EpsModel = (x: Vec, t: number, info: CallInfo) => Vec | Promise<Vec>;

/**
 * Standard-normal noise for a sampler step: returns `length` N(0, 1) values.
 * A sampler calls it only on the steps that use noise (see each sampler), at most once per step,
 * in step order, so a stateful generator advances exactly as the reference implementations do.
 */
export type NoiseSource = (step: number, length: number) => Vec | ArrayLike<number>;

/** Progress report after each step. Arrays are the sampler's own: copy them to keep them. */
export interface StepInfo {
  step: number;
  total: number;
  /** x after this step. */
  x: Vec;
  /** The x0 prediction of the step's first model call. */
  denoised: Vec;
}

export interface SampleOptions {
  /** Called after every step (may be async; the sampler awaits it). */
  onStep?: (info: StepInfo) => void | Promise<void>;
  /** Checked before every model call: an aborted signal stops the run with its reason. */
  signal?: AbortSignal;
}

export interface NoisySampleOptions extends SampleOptions {
  /** Required by samplers that add noise (ancestral ones, lcm, ddpm, ddim with eta > 0). */
  noise?: NoiseSource;
}

/** A new zeroed array of the same type and length as x. */
export function like(x: Vec): Vec {
  return x instanceof Float64Array ? new Float64Array(x.length) : new Float32Array(x.length);
}

/** A copy of x in its own array type. */
export function copyOf(x: Vec): Vec {
  return x instanceof Float64Array ? Float64Array.from(x) : Float32Array.from(x);
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw signal.reason ?? new DOMException('The operation was aborted', 'AbortError');
  }
}

/** Calls a model, then checks that its answer has x's length. */
export async function callModel(
  model: (x: Vec, level: number, info: CallInfo) => Vec | Promise<Vec>,
  x: Vec,
  level: number,
  info: CallInfo,
  signal: AbortSignal | undefined,
): Promise<Vec> {
  throwIfAborted(signal);
  const out = await model(x, level, info);
  if (!out || typeof out.length !== 'number' || out.length !== x.length) {
    throw new TypeError(`the model returned ${out?.length ?? 'no'} values for an input of ${x.length}`);
  }
  return out;
}

/** Draws the noise for a step and checks it. */
export function drawNoise(noise: NoiseSource | undefined, step: number, length: number, who: string): ArrayLike<number> {
  if (!noise) throw new TypeError(`${who} needs the "noise" option (a NoiseSource)`);
  const n = noise(step, length);
  if (!n || n.length !== length) {
    throw new TypeError(`the noise source returned ${n?.length ?? 'no'} values for step ${step}, expected ${length}`);
  }
  return n;
}

/** Validates a sigma list: finite, non-negative, at least two entries (the last is usually 0). */
export function checkSigmas(sigmas: ArrayLike<number>, who: string): void {
  if (!sigmas || sigmas.length < 2) throw new RangeError(`${who}: "sigmas" needs at least 2 values (got ${sigmas?.length ?? 0})`);
  for (let i = 0; i < sigmas.length; i++) {
    const s = sigmas[i]!;
    if (!Number.isFinite(s) || s < 0) throw new RangeError(`${who}: sigmas[${i}] = ${s} is not a finite number >= 0`);
  }
  for (let i = 0; i + 1 < sigmas.length; i++) {
    if (!(sigmas[i]! > 0)) throw new RangeError(`${who}: sigmas[${i}] must be > 0 (only the last sigma may be 0)`);
  }
}
