// img2img: where a shortened run starts and how the init latent is noised to that start.
// Rule: diffusers' StableDiffusionImg2ImgPipeline.get_timesteps (for k-diffusion and DDIM) and the seed
// project's DDPMSampler.set_strength (for DDPM); both give the same start index:
//   init_timestep = min(int(N * strength), N), t_start = max(N - init_timestep, 0).
// Not this rule: A1111's k-diffusion img2img, which runs one step more (sigmas[N - t_enc - 1:]).
import type { Vec } from './types.js';

/** Index into the full N-step list where img2img starts (the run has N - index steps). */
export function img2imgStartIndex(steps: number, strength: number): number {
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`"steps" must be an integer >= 1 (got ${steps})`);
  if (typeof strength !== 'number' || !(strength > 0 && strength <= 1)) {
    throw new RangeError(`"strength" must be a number in (0, 1] (got ${String(strength)})`);
  }
  const initTimestep = Math.min(Math.trunc(steps * strength), steps);
  if (initTimestep < 1) {
    throw new RangeError(
      `"strength" ${strength} with ${steps} steps leaves no step to run (int(steps * strength) = 0): raise strength or steps`,
    );
  }
  return Math.max(steps - initTimestep, 0);
}

/** k-diffusion start: x = x0 + sigma * noise. */
export function noiseToSigma(x0: ArrayLike<number>, noise: ArrayLike<number>, sigma: number, out: Vec): Vec {
  checkLengths(x0, noise, out);
  for (let i = 0; i < out.length; i++) out[i] = x0[i]! + sigma * noise[i]!;
  return out;
}

/** DDPM/DDIM start (scheduler.add_noise): x = sqrt(ac) x0 + sqrt(1 - ac) noise. */
export function noiseToAlpha(x0: ArrayLike<number>, noise: ArrayLike<number>, alphaCumprod: number, out: Vec): Vec {
  checkLengths(x0, noise, out);
  const a = Math.sqrt(alphaCumprod);
  const b = Math.sqrt(1 - alphaCumprod);
  for (let i = 0; i < out.length; i++) out[i] = a * x0[i]! + b * noise[i]!;
  return out;
}

function checkLengths(x0: ArrayLike<number>, noise: ArrayLike<number>, out: Vec): void {
  if (x0.length !== out.length || noise.length !== out.length) {
    throw new RangeError(`init latent (${x0.length}) and noise (${noise.length}) must have the same length`);
  }
}

