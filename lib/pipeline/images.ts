// Image inputs for img2img / inpainting (decode, resize) and the cheap latent preview.
import { decodeMaskPng, decodePng } from '../image.js';
import type { ImageInput, Tensor } from './types.js';

/** SD 1.x latent scale factor. */
export const LATENT_SCALE = 0.18215;

function checkTensorInput(t: Tensor, field: string, channels: number): [number, number] {
  const s = t.shape;
  if (s.length !== 4 || s[0] !== 1 || s[1] !== channels || !s.every((d) => Number.isInteger(d) && d > 0)) {
    throw new RangeError(`generate: "${field}" tensor must have shape [1, ${channels}, H, W], got [${s.join(', ')}]`);
  }
  const [, , H, W] = s as [number, number, number, number];
  if (t.data.length !== channels * H * W) throw new RangeError(`generate: "${field}".data has ${t.data.length} values, shape needs ${channels * H * W}`);
  return [H, W];
}

/** An init image as [1, 3, H, W] in [-1, 1]. */
export function readImage(input: ImageInput, field = 'initImage'): Tensor {
  if (input instanceof Uint8Array) return decodePng(Buffer.from(input.buffer, input.byteOffset, input.byteLength));
  checkTensorInput(input, field, 3);
  return input;
}

/** A mask as [1, 1, H, W] in [0, 1] (1 = repaint). */
export function readMask(input: ImageInput, field = 'mask'): Tensor {
  if (input instanceof Uint8Array) {
    try {
      return decodeMaskPng(Buffer.from(input.buffer, input.byteOffset, input.byteLength));
    } catch (e) {
      throw new TypeError(`generate: "${field}" is not a readable PNG image: ${(e as Error).message}`);
    }
  }
  checkTensorInput(input, field, 1);
  for (let i = 0; i < input.data.length; i++) {
    const v = input.data[i]!;
    if (!(v >= 0 && v <= 1)) throw new RangeError(`generate: "${field}".data[${i}] = ${v} is outside [0, 1]`);
  }
  return input;
}

/**
 * Bilinear resize of [1, C, H, W] to [1, C, outH, outW], half-pixel centres, edge clamped, no
 * antialiasing (torch interpolate(mode='bilinear', align_corners=False)). Identity when sizes match.
 */
export function resizeBilinear(t: Tensor, outH: number, outW: number): Tensor {
  const [, C, H, W] = t.shape as [number, number, number, number];
  if (H === outH && W === outW) return t;
  const out = new Float32Array(C * outH * outW);
  const sy = H / outH;
  const sx = W / outW;
  for (let y = 0; y < outH; y++) {
    const fy = Math.max((y + 0.5) * sy - 0.5, 0);
    const y0 = Math.min(Math.floor(fy), H - 1);
    const y1 = Math.min(y0 + 1, H - 1);
    const wy = fy - y0;
    for (let x = 0; x < outW; x++) {
      const fx = Math.max((x + 0.5) * sx - 0.5, 0);
      const x0 = Math.min(Math.floor(fx), W - 1);
      const x1 = Math.min(x0 + 1, W - 1);
      const wx = fx - x0;
      for (let c = 0; c < C; c++) {
        const p = t.data.subarray(c * H * W);
        const top = p[y0 * W + x0]! * (1 - wx) + p[y0 * W + x1]! * wx;
        const bot = p[y1 * W + x0]! * (1 - wx) + p[y1 * W + x1]! * wx;
        out[c * outH * outW + y * outW + x] = top * (1 - wy) + bot * wy;
      }
    }
  }
  return { data: out, shape: [1, C, outH, outW] };
}

/** Pixel mask [1, 1, H, W] -> binary (>= 0.5 repaints) -> mean over each 8x8 block: [h * w] at latent size. */
export function latentMask(mask: Tensor): Float32Array {
  const [, , H, W] = mask.shape as [number, number, number, number];
  const h = H / 8;
  const w = W / 8;
  const out = new Float32Array(h * w);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) if (mask.data[y * W + x]! >= 0.5) out[(y >> 3) * w + (x >> 3)]! += 1 / 64;
  }
  return out;
}

// The standard linear latent -> RGB approximation (AUTOMATIC1111's "Approx cheap"), rows = latent channels.
const PREVIEW = [
  [0.298, 0.207, 0.208],
  [0.187, 0.286, 0.173],
  [-0.158, 0.189, 0.264],
  [-0.184, -0.271, -0.473],
];

/** [B, 4, h, w] latent -> [B, 3, h, w] RGB in about [-1, 1]. */
export function previewLatent(latent: ArrayLike<number>, B: number, h: number, w: number): Tensor {
  const plane = h * w;
  const out = new Float32Array(B * 3 * plane);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < plane; i++) {
        let v = 0;
        for (let k = 0; k < 4; k++) v += latent[(b * 4 + k) * plane + i]! * PREVIEW[k]![c]!;
        out[(b * 3 + c) * plane + i] = v;
      }
    }
  }
  return { data: out, shape: [B, 3, h, w] };
}
