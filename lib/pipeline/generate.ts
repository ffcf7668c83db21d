// generate(): prompt (and optionally an init image and mask) to PNGs, on any PipelineModel.
//   txt2img:  x = noise * sigma_0, full schedule
//   img2img:  initImage -> VAE mean * 0.18215, noised to the start of the last `strength` part
//   inpaint:  + mask: latent blending (4-channel UNet) or the 9-channel UNet input (inpainting models)
import { encodePng, formatParameters } from '../image.js';
import { batchSeeds, ImageRng } from '../rng/index.js';
import { planSampling, SAMPLERS, type StepInfo } from '../samplers/index.js';
import { encodeConditioning } from './conditioning.js';
import { guidedEps, type EpsTap } from './guidance.js';
import { LATENT_SCALE, latentMask, readImage, readMask, resizeBilinear } from './images.js';
import { encodeImage, repeatBatch } from './img2img.js';
import { inpaintChannels, latentBlender } from './inpaint.js';
import { resolveOptions, type ResolvedOptions } from './options.js';
import { sampleLatent } from './txt2img.js';
import type { GenerateOptions, GenerateResult, PipelineModel, Tensor, VaeTiling } from './types.js';

export const PIPELINE_VERSION = 'sdnode 0.1.0';

/** Test hooks: see every raw UNet answer. Not part of the public options. */
export interface GenerateInternals {
  tap?: EpsTap;
  /** After each step (and inpainting's blend): the sampler's x and denoised, its own arrays. */
  onStep?: (info: StepInfo) => void;
}

// Passed only when set, so models (and test fakes) that take no options see the same call as before.
function vaeOptions(tileSize: number | undefined, tileOverlap: number | undefined): VaeTiling | undefined {
  if (tileSize === undefined && tileOverlap === undefined) return undefined;
  const o: VaeTiling = {};
  if (tileSize !== undefined) o.tileSize = tileSize;
  if (tileOverlap !== undefined) o.tileOverlap = tileOverlap;
  return o;
}

function checkModel(model: unknown): PipelineModel {
  const m = model as PipelineModel;
  if (typeof m !== 'object' || m === null || typeof m.encodeText !== 'function' || typeof m.unet !== 'function' ||
      typeof m.vaeDecode !== 'function' || typeof m.vaeEncode !== 'function') {
    throw new TypeError('generate: the model must be a loaded StableDiffusion (encodeText, unet, vaeDecode, vaeEncode)');
  }
  return m;
}

function checkLength(arr: Float32Array | undefined, n: number, field: string, shape: string): void {
  if (arr && arr.length !== n) throw new RangeError(`generate: "${field}" must hold ${n} values (${shape}), got ${arr.length}`);
}

/** A1111 "parameters" text for one image. */
export function parametersText(r: ResolvedOptions, seed: number, W: number, H: number, img2img: boolean): string {
  const s: Record<string, string | number> = {
    Steps: r.steps,
    Sampler: SAMPLERS[r.sampler].label,
  };
  if (r.schedule === 'karras') s['Schedule type'] = 'Karras';
  s['CFG scale'] = r.cfgScale;
  s.Seed = seed;
  s.Size = `${W}x${H}`;
  if (r.modelHash) s['Model hash'] = r.modelHash;
  if (r.modelName) s.Model = r.modelName;
  if (img2img) s['Denoising strength'] = r.strength;
  if (r.clipSkip !== 1) s['Clip skip'] = r.clipSkip;
  if (r.eta !== undefined) s.Eta = r.eta;
  if (r.rng === 'cpu') s.RNG = 'CPU';
  if (r.noiseSeedDelta) s.ENSD = r.noiseSeedDelta;
  s.Version = PIPELINE_VERSION;
  // Prompts are single-line in A1111's format only by convention; newlines would break readers.
  return formatParameters(r.prompt, r.negativePrompt, s);
}

function afterStep(a?: (i: StepInfo) => void, b?: (i: StepInfo) => void): ((i: StepInfo) => void) | undefined {
  if (!a || !b) return a ?? b;
  return (i) => { a(i); b(i); };
}

export async function generate(model: PipelineModel, options: GenerateOptions, internals: GenerateInternals = {}): Promise<GenerateResult> {
  const t0 = Date.now();
  const sd = checkModel(model);
  const r = resolveOptions(options);
  const { signal } = r;
  signal?.throwIfAborted();
  const B = r.batchSize;

  // Sizes: explicit, else the init image's (rounded down to multiples of 8), else 512.
  let image: Tensor | undefined;
  let pixelMask: Tensor | undefined;
  if (r.initImage) image = readImage(r.initImage);
  const W = r.width ?? (image ? Math.floor(image.shape[3]! / 8) * 8 : 512);
  const H = r.height ?? (image ? Math.floor(image.shape[2]! / 8) * 8 : 512);
  if (W < 8 || H < 8) throw new RangeError(`generate: the init image (${image?.shape[3]}x${image?.shape[2]}) is smaller than 8x8`);
  if (image) image = resizeBilinear(image, H, W);
  if (r.mask) pixelMask = resizeBilinear(readMask(r.mask), H, W);
  const h = H / 8;
  const w = W / 8;
  const n = 4 * h * w;
  checkLength(r.noise, B * n, 'noise', `[${B}, 4, ${h}, ${w}]`);
  checkLength(r.latents, B * n, 'latents', `[${B}, 4, ${h}, ${w}]`);
  const inChannels = sd.info?.unet?.inChannels ?? 4;
  if (inChannels !== 4 && inChannels !== 9) throw new Error(`generate: a UNet with ${inChannels} input channels is not supported (4 or 9)`);

  const plan = planSampling(r.sampler, { steps: r.steps, schedule: r.schedule, strength: image ? r.strength : 1 });

  // Each phase's weights and activations are given back when the next phase starts (lowMemory), so
  // a generation peaks at one network's weights plus its activations, not all three.
  const release = sd.lowMemory === true && typeof sd.release === 'function'
    ? (...parts: Array<'clip' | 'unet' | 'vae' | 'activations'>) => sd.release!(...parts)
    : async () => undefined;
  const cond = await encodeConditioning(sd, r.prompt, r.negativePrompt, {
    clipSkip: r.clipSkip, emphasis: r.emphasis, cfgScale: r.cfgScale, loraTags: r.loraTags,
  });
  await release('clip');
  signal?.throwIfAborted();

  const seeds = batchSeeds(r.seed, B);
  // A1111's ImageRNG: per-image streams; the first draw is the start noise, later draws the step noise.
  // The seeded start noise is drawn even when `noise` / `latents` replace it, so step noise stays the seed's.
  const rng = new ImageRng([4, h, w], seeds, r.rng, { noiseSeedDelta: r.noiseSeedDelta });
  const seeded = rng.first();
  const noise = r.noise ?? seeded;
  let init: Float32Array | undefined;
  if (image) init = repeatBatch(await encodeImage(sd, image, vaeOptions(r.vaeTileSize, r.vaeTileOverlap)), B);
  const mask = pixelMask ? latentMask(pixelMask) : undefined;
  const concat = inChannels === 9 ? await inpaintChannels(sd, image, mask, pixelMask, H, W, B, vaeOptions(r.vaeTileSize, r.vaeTileOverlap)) : undefined;
  if (image) await release('vae', 'activations');
  signal?.throwIfAborted();
  const tCond = Date.now();

  const eps = guidedEps(sd, cond, { batchSize: B, h, w, cfgScale: r.cfgScale, concat, concatChannels: 5 }, internals.tap);
  const latent = await sampleLatent({
    plan, eps, noise, init, latents: r.latents, stepNoise: () => rng.next(), eta: r.eta, batchSize: B, h, w,
    afterStep: afterStep(mask && init && inChannels === 4 ? latentBlender(plan, init, noise, mask, B) : undefined, internals.onStep),
    onProgress: r.onProgress, signal, startedAt: t0,
  });
  const tSample = Date.now();
  await release('unet', 'activations');

  const imgData = new Float32Array(B * 3 * H * W);
  for (let b = 0; b < B; b++) {
    signal?.throwIfAborted();
    const z = new Float32Array(n);
    for (let i = 0; i < n; i++) z[i] = latent[b * n + i]! / LATENT_SCALE;
    const out = await sd.vaeDecode({ data: z, shape: [1, 4, h, w] }, vaeOptions(r.vaeTileSize, r.vaeTileOverlap));
    if (!out || out.data.length !== 3 * H * W) throw new Error(`vaeDecode returned ${out?.data?.length ?? 'no'} values, expected ${3 * H * W}`);
    for (let i = 0; i < 3 * H * W; i++) {
      const v = out.data[i]!;
      imgData[b * 3 * H * W + i] = v > 1 ? 1 : v < -1 ? -1 : v;
    }
  }
  await release('vae', 'activations');
  const imageTensor = { data: imgData, shape: [B, 3, H, W] as [number, number, number, number] };
  const images = seeds.map((seed, b) => {
    const parameters = parametersText(r, seed, W, H, image !== undefined);
    return { png: encodePng(imageTensor, b, parameters), seed, parameters };
  });
  const tEnd = Date.now();
  return {
    images,
    png: images[0]!.png,
    pngs: images.map((i) => i.png),
    seed: r.seed,
    seeds,
    parameters: images[0]!.parameters,
    image: imageTensor,
    latent: { data: latent, shape: [B, 4, h, w] },
    warnings: cond.warnings,
    timings: { conditioning: tCond - t0, sampling: tSample - tCond, decoding: tEnd - tSample, total: tEnd - t0 },
  };
}
