// What the pipeline needs from a model, and what generate() takes and returns.
// StableDiffusion (lib/sd.ts) satisfies PipelineModel; tests pass a fake with the same methods.
import type { EmphasisMode } from '../tokenizer/index.js';

/** A tensor crossing the API: row-major data and its shape (NCHW for images and latents). */
export interface Tensor<T extends Float32Array | Int32Array = Float32Array> {
  data: T;
  shape: number[];
}

/** Tiled VAE options in pixels (StableDiffusion's VaeOptions). */
export interface VaeTiling {
  tileSize?: number;
  tileOverlap?: number;
}

/** The per-step network interface generate() drives (issue 4's API). */
export interface PipelineModel {
  readonly info?: {
    unet?: { inChannels: number; contextDim?: number };
    clip?: { hidden: number };
  };
  encodeText(tokens: Tensor<Int32Array>, options?: { clipSkip?: 1 | 2 }): Promise<Tensor>;
  unet(x: Tensor, t: Float32Array, context: Tensor): Promise<Tensor>;
  vaeDecode(z: Tensor, options?: VaeTiling): Promise<Tensor>;
  vaeEncode(image: Tensor, options?: VaeTiling): Promise<Tensor>;
  /** When true (and release exists), generate() releases each network's memory when done with it. */
  readonly lowMemory?: boolean;
  release?(...parts: Array<'clip' | 'unet' | 'vae' | 'activations'>): Promise<void>;
}

/** Image input: a PNG file's bytes, or a tensor ([1, 3, H, W] in [-1, 1] for images, [1, 1, H, W] in [0, 1] for masks). */
export type ImageInput = Uint8Array | Tensor;

export interface Progress {
  /** 1-based number of the step just finished. */
  step: number;
  total: number;
  /** Milliseconds since generate() started. */
  elapsed: number;
  /** Milliseconds spent in sampling steps so far (for it/s). */
  samplingElapsed: number;
  /**
   * A cheap RGB preview [B, 3, h, w] in about [-1, 1] at latent resolution (1/8 of the image side),
   * from the current x0 prediction through the standard linear latent-to-RGB approximation.
   * Computed only when called.
   */
  preview(): Tensor;
}

export interface GenerateOptions {
  prompt: string;
  negativePrompt?: string;
  /** Image size in pixels, multiples of 8. Default 512, or the init image's size for img2img. */
  width?: number;
  height?: number;
  /** Steps of the full schedule (img2img runs the last `strength` part of it). Default 20. */
  steps?: number;
  /** Classifier-free guidance scale. Default 7.5. 1 skips the unconditional pass. */
  cfgScale?: number;
  /** ddpm, ddim, euler, euler_a (default), heun, dpm++2m, dpm++2s_a, lcm. */
  sampler?: string;
  /** 'discrete' (default) or 'karras' (k-diffusion samplers only). */
  schedule?: string;
  /** Integer seed; image b of a batch uses seed + b. Omitted (or -1): random, reported back. */
  seed?: number;
  /** 'philox' (default): torch CUDA randn, like AUTOMATIC1111 on NVIDIA. 'cpu': torch CPU randn. */
  rng?: string;
  /** A1111's "Eta noise seed delta" (ENSD): step noise of image b comes from seed + b + delta. Default 0. */
  noiseSeedDelta?: number;
  /** Images generated together in one UNet batch. Default 1. */
  batchSize?: number;
  /** 1 (default) or 2 (penultimate CLIP layer). */
  clipSkip?: number;
  /** ddim / euler_a / dpm++2s_a eta (sampler defaults when omitted). */
  eta?: number;
  /** A1111 emphasis mode for (word:1.2) weights. Default 'original'. */
  emphasis?: EmphasisMode;
  /** img2img / inpainting source image. */
  initImage?: ImageInput;
  /** img2img strength in (0, 1]: the fraction of the schedule that is run. Default 0.75 with initImage. */
  strength?: number;
  /** Inpainting mask (needs initImage): white / 1 = repaint, black / 0 = keep. */
  mask?: ImageInput;
  /** Initial standard-normal noise [B, 4, h, w] instead of the seeded draw (reproduces a foreign run). */
  noise?: Float32Array | Tensor;
  /** The sampler's start latent [B, C, h, w] as is (no noise is drawn or scaled for the start). */
  latents?: Float32Array | Tensor;
  /** `<lora:...>` tags: LoRA is not implemented. 'error' (default) rejects the prompt; 'warn' drops the tag and reports it in `warnings`. */
  loraTags?: 'error' | 'warn';
  /**
   * VAE tile size in pixels (0 = whole image; a multiple of 8, at least 64). Smaller tiles bound the
   * decoder's memory (256 suits a Raspberry Pi); omitted: the model's default (512).
   */
  vaeTileSize?: number;
  /**
   * Least overlap of neighbouring VAE tiles in pixels (a multiple of 8, below the tile size);
   * omitted: a quarter of the tile. Smaller overlaps cost fewer pixels (a 512x512 image in 320 px
   * tiles overlapping by 64 px decodes 1.27x the pixels of a whole decode) but blend over less.
   */
  vaeTileOverlap?: number;
  /** For the PNG "parameters" text. */
  modelName?: string;
  modelHash?: string;
  onProgress?: (progress: Progress) => void | Promise<void>;
  /** Cancels before the next network call; the model stays usable. */
  signal?: AbortSignal;
}

export interface GeneratedImage {
  png: Buffer;
  seed: number;
  parameters: string;
}

export interface GenerateResult {
  /** One entry per batch image. */
  images: GeneratedImage[];
  /** The first image's PNG, seed and parameters (the common batch-1 case). */
  png: Buffer;
  pngs: Buffer[];
  seed: number;
  seeds: number[];
  parameters: string;
  /** [B, 3, H, W], clamped to [-1, 1]. */
  image: Tensor;
  /** [B, 4, h, w]: the final latent, before the 1 / 0.18215 scaling. */
  latent: Tensor;
  /** Unsupported prompt syntax, dropped LoRA tags, and the like. */
  warnings: string[];
  /** Milliseconds per phase. */
  timings: { conditioning: number; sampling: number; decoding: number; total: number };
}
