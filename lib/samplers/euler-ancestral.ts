// Euler ancestral (k-diffusion sample_euler_ancestral): an Euler step down to sigma_down, then fresh
// noise of size sigma_up, so that sigma_down^2 + sigma_up^2 = s_{i+1}^2.
import { callModel, checkSigmas, copyOf, drawNoise, type Denoiser, type NoisySampleOptions, type Vec } from './types.js';

export interface AncestralOptions extends NoisySampleOptions {
  /** Share of the step that is re-noised (1 = full ancestral, 0 = plain Euler). Default 1. */
  eta?: number;
  /** Scale of the added noise. Default 1. */
  sNoise?: number;
}

/** k-diffusion get_ancestral_step. */
export function ancestralStep(sigmaFrom: number, sigmaTo: number, eta = 1): { sigmaDown: number; sigmaUp: number } {
  if (!eta) return { sigmaDown: sigmaTo, sigmaUp: 0 };
  const sigmaUp = Math.min(sigmaTo, eta * Math.sqrt((sigmaTo ** 2 * (sigmaFrom ** 2 - sigmaTo ** 2)) / sigmaFrom ** 2));
  const sigmaDown = Math.sqrt(sigmaTo ** 2 - sigmaUp ** 2);
  return { sigmaDown, sigmaUp };
}

export function checkEta(eta: number, who: string): void {
  if (!Number.isFinite(eta) || eta < 0) throw new RangeError(`${who}: "eta" must be a finite number >= 0 (got ${eta})`);
}

/** Noise is drawn on every step whose s_{i+1} > 0 (not on the last one), as upstream k-diffusion does. */
export async function sampleEulerAncestral(
  model: Denoiser,
  x0: Vec,
  sigmas: ArrayLike<number>,
  options: AncestralOptions = {},
): Promise<Vec> {
  checkSigmas(sigmas, 'euler_a');
  const eta = options.eta ?? 1;
  const sNoise = options.sNoise ?? 1;
  checkEta(eta, 'euler_a');
  const x = copyOf(x0);
  const total = sigmas.length - 1;
  for (let i = 0; i < total; i++) {
    const sigma = sigmas[i]!;
    const next = sigmas[i + 1]!;
    const denoised = await callModel(model, x, sigma, { step: i, call: 0 }, options.signal);
    const { sigmaDown, sigmaUp } = ancestralStep(sigma, next, eta);
    const dt = sigmaDown - sigma;
    for (let j = 0; j < x.length; j++) {
      const d = (x[j]! - denoised[j]!) / sigma;
      x[j] = x[j]! + d * dt;
    }
    if (next > 0) {
      const n = drawNoise(options.noise, i, x.length, 'euler_a');
      const scale = sNoise * sigmaUp;
      for (let j = 0; j < x.length; j++) x[j] = x[j]! + n[j]! * scale;
    }
    await options.onStep?.({ step: i, total, x, denoised });
  }
  return x;
}
