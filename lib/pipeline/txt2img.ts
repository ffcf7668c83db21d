// The sampling run shared by txt2img, img2img and inpainting: seeded noise per batch image, the
// start latent, the sampler loop with guidance, progress and cancellation.
import {
  runSampler, SAMPLERS, startLatent, throwIfAborted, type EpsModel, type NoiseSource, type SamplingPlan, type StepInfo,
} from '../samplers/index.js';
import { previewLatent } from './images.js';
import type { Progress } from './types.js';

export interface SampleRun {
  plan: SamplingPlan;
  eps: EpsModel;
  /** The noise the start latent was made from, [B * 4 * h * w]. */
  noise: Float32Array;
  /** img2img: the clean init latent, repeated per image. */
  init?: Float32Array;
  /** Use this start latent as is (overrides noise and init). */
  latents?: Float32Array;
  stepNoise: NoiseSource;
  eta?: number;
  batchSize: number;
  h: number;
  w: number;
  /** Runs after each step, before progress (inpainting's latent blending). */
  afterStep?: (info: StepInfo) => void;
  onProgress?: (p: Progress) => void | Promise<void>;
  signal?: AbortSignal;
  startedAt: number;
}

/** Runs the plan and returns the final latent [B * 4 * h * w] (float32 between steps, as torch keeps it). */
export async function sampleLatent(run: SampleRun): Promise<Float32Array> {
  const { plan } = run;
  const x0 = run.latents ? Float32Array.from(run.latents) : (startLatent(plan, run.noise, run.init) as Float32Array);
  throwIfAborted(run.signal);
  const samplingStart = Date.now();
  const usesNoise = SAMPLERS[plan.sampler].usesNoise || (plan.sampler === 'ddim' && (run.eta ?? 0) > 0);
  const out = await runSampler(plan, run.eps, x0, {
    noise: usesNoise ? run.stepNoise : undefined,
    eta: run.eta,
    signal: run.signal,
    onStep: async (info) => {
      run.afterStep?.(info);
      if (run.onProgress) {
        const now = Date.now();
        const denoised = info.denoised;
        await run.onProgress({
          step: info.step + 1,
          total: info.total,
          elapsed: now - run.startedAt,
          samplingElapsed: now - samplingStart,
          preview: () => previewLatent(denoised, run.batchSize, run.h, run.w),
        });
      }
      throwIfAborted(run.signal);
    },
  });
  return out instanceof Float32Array ? out : Float32Array.from(out);
}
