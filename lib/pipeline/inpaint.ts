// Inpainting, two ways:
// - ordinary checkpoints (4-channel UNet): latent blending. After every step the kept region is reset
//   to the init latent noised to the level x is now at (sigma_{i+1}, or the next DDIM/DDPM timestep;
//   the clean init after the last step): x = x * m + noised_init * (1 - m), m = repaint mask.
// - inpainting checkpoints (9-channel UNet, detected from its first conv): the UNet gets
//   cat(x, m, masked_image_latent) and no blending is done (diffusers StableDiffusionInpaintPipeline).
//   masked image = image * (1 - binary mask); without a mask (txt2img / img2img on such a model) the
//   mask is all ones and the masked image all zero (mid-grey), as A1111 does.
// Mask at latent size: binarized at 0.5, then the mean of each 8x8 pixel block (soft edges).
import type { SamplingPlan, StepInfo } from '../samplers/index.js';
import { encodeImage } from './img2img.js';
import type { PipelineModel, Tensor, VaeTiling } from './types.js';

/** An onStep hook that blends the kept region back (4-channel models). */
export function latentBlender(
  plan: SamplingPlan, init: Float32Array, noise: Float32Array, mask: Float32Array, B: number,
): (info: StepInfo) => void {
  const n = init.length / B;
  const plane = mask.length;
  return ({ step, x }) => {
    let a: number; // noised = a * init + b * noise
    let b: number;
    if (plan.sigmas) {
      a = 1;
      b = plan.sigmas[step + 1]!;
    } else {
      const next = plan.timesteps![step + 1];
      const ac = next === undefined ? 1 : plan.training.alphasCumprod[next]!;
      a = Math.sqrt(ac);
      b = Math.sqrt(1 - ac);
    }
    for (let i = 0; i < x.length; i++) {
      const m = mask[(i % n) % plane]!;
      x[i] = x[i]! * m + (a * init[i]! + b * noise[i]!) * (1 - m);
    }
  };
}

/** The 5 extra input channels per image for a 9-channel UNet: [B, 5, h, w] = mask, masked-image latent. */
export async function inpaintChannels(
  model: PipelineModel, image: Tensor | undefined, mask: Float32Array | undefined, pixelMask: Tensor | undefined,
  H: number, W: number, B: number, tiling?: VaeTiling,
): Promise<Float32Array> {
  const plane = (H / 8) * (W / 8);
  const masked = new Float32Array(3 * H * W);
  if (image && pixelMask) {
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < H * W; i++) masked[c * H * W + i] = pixelMask.data[i]! >= 0.5 ? 0 : image.data[c * H * W + i]!;
    }
  }
  const lat = await encodeImage(model, { data: masked, shape: [1, 3, H, W] }, tiling);
  const one = new Float32Array(5 * plane);
  if (mask) one.set(mask, 0);
  else one.fill(1, 0, plane);
  one.set(lat, plane);
  const out = new Float32Array(B * 5 * plane);
  for (let b = 0; b < B; b++) out.set(one, b * 5 * plane);
  return out;
}
