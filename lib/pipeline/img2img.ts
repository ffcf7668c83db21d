// img2img: the init image through the VAE encoder to a latent, which the plan then noises to its
// first sigma / timestep (samplers' img2img rule: start at index N - int(N * strength)).
import { LATENT_SCALE } from './images.js';
import type { PipelineModel, Tensor, VaeTiling } from './types.js';

/**
 * The scaled latent (mean of the encoder's distribution times 0.18215) of a [1, 3, H, W] image.
 * The mean, not a sample: the result depends only on the image (diffusers' `latent_dist.mode()`;
 * A1111 samples, which adds noise of std exp(logvar / 2), tiny for SD's VAE).
 */
export async function encodeImage(model: PipelineModel, image: Tensor, tiling?: VaeTiling): Promise<Float32Array> {
  const [, , H, W] = image.shape as [number, number, number, number];
  const m = await (tiling === undefined ? model.vaeEncode(image) : model.vaeEncode(image, tiling));
  const n = 4 * (H / 8) * (W / 8);
  if (!m || m.data.length !== 2 * n) {
    throw new Error(`vaeEncode returned ${m?.data?.length ?? 'no'} values, expected ${2 * n} ([1, 8, ${H / 8}, ${W / 8}])`);
  }
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = m.data[i]! * LATENT_SCALE;
  return out;
}

/** Repeats one image's latent for a batch of B. */
export function repeatBatch(one: Float32Array, B: number): Float32Array {
  const out = new Float32Array(one.length * B);
  for (let b = 0; b < B; b++) out.set(one, b * one.length);
  return out;
}
