// generate() options: every field checked up front, so a bad value fails before any network runs,
// with a TypeError (wrong type) or RangeError (wrong value) that names the field.
import { checkRng, checkSeed, MAX_SEED, randomSeed, type RngName } from '../rng/index.js';
import { checkSamplerName, checkScheduleName, type SamplerName, type ScheduleName } from '../samplers/index.js';
import type { EmphasisMode } from '../tokenizer/index.js';
import type { GenerateOptions, ImageInput, Progress, Tensor } from './types.js';

export const DEFAULTS = {
  width: 512, height: 512, steps: 20, cfgScale: 7.5, sampler: 'euler_a' as SamplerName,
  schedule: 'discrete' as ScheduleName, rng: 'philox' as RngName, batchSize: 1, clipSkip: 1 as const, strength: 0.75,
};
export const MAX_SIDE = 8192;
export const MAX_BATCH = 64;
export const MAX_STEPS = 1000;

export interface ResolvedOptions {
  prompt: string;
  negativePrompt: string;
  /** undefined: take the init image's size (decided once it is decoded). */
  width: number | undefined;
  height: number | undefined;
  steps: number;
  cfgScale: number;
  sampler: SamplerName;
  schedule: ScheduleName;
  seed: number;
  seedWasRandom: boolean;
  rng: RngName;
  noiseSeedDelta: number;
  batchSize: number;
  clipSkip: 1 | 2;
  eta: number | undefined;
  emphasis: EmphasisMode;
  initImage: ImageInput | undefined;
  strength: number;
  mask: ImageInput | undefined;
  noise: Float32Array | undefined;
  latents: Float32Array | undefined;
  loraTags: 'error' | 'warn';
  vaeTileSize: number | undefined;
  vaeTileOverlap: number | undefined;
  modelName: string | undefined;
  modelHash: string | undefined;
  onProgress: ((p: Progress) => void | Promise<void>) | undefined;
  signal: AbortSignal | undefined;
}

const KNOWN = new Set([
  'prompt', 'negativePrompt', 'width', 'height', 'steps', 'cfgScale', 'sampler', 'schedule', 'seed', 'rng', 'noiseSeedDelta', 'batchSize',
  'clipSkip', 'eta', 'emphasis', 'initImage', 'strength', 'mask', 'noise', 'latents', 'loraTags', 'vaeTileSize', 'vaeTileOverlap', 'modelName', 'modelHash',
  'onProgress', 'signal',
]);

function num(o: Record<string, unknown>, field: string): number | undefined {
  const v = o[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'number') throw new TypeError(`generate: "${field}" must be a number, got ${typeof v}`);
  if (Number.isNaN(v)) throw new RangeError(`generate: "${field}" is NaN`);
  return v;
}

function int(o: Record<string, unknown>, field: string, min: number, max: number, def: number): number {
  const v = num(o, field) ?? def;
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`generate: "${field}" must be an integer from ${min} to ${max}, got ${v}`);
  return v;
}

function side(o: Record<string, unknown>, field: string): number | undefined {
  const v = num(o, field);
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v <= 0 || v > MAX_SIDE || v % 8 !== 0) {
    throw new RangeError(`generate: "${field}" must be a positive multiple of 8 up to ${MAX_SIDE}, got ${v}`);
  }
  return v;
}

function str(o: Record<string, unknown>, field: string): string | undefined {
  const v = o[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new TypeError(`generate: "${field}" must be a string, got ${v === null ? 'null' : typeof v}`);
  return v;
}

/** Image inputs are checked for kind here and for content when decoded (images.ts). */
function imageInput(o: Record<string, unknown>, field: string): ImageInput | undefined {
  const v = o[field];
  if (v === undefined) return undefined;
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'object' && v !== null && (v as Tensor).data instanceof Float32Array && Array.isArray((v as Tensor).shape)) return v as Tensor;
  throw new TypeError(`generate: "${field}" must be PNG bytes (Uint8Array / Buffer) or a tensor { data: Float32Array, shape }`);
}

function floatInput(o: Record<string, unknown>, field: string): Float32Array | undefined {
  const v = o[field];
  if (v === undefined) return undefined;
  if (v instanceof Float32Array) return v;
  if (typeof v === 'object' && v !== null && (v as Tensor).data instanceof Float32Array) return (v as Tensor).data;
  throw new TypeError(`generate: "${field}" must be a Float32Array or a tensor { data: Float32Array, shape }`);
}

/** Checks every option and fills defaults. The seed is drawn here when none is given. */
export function resolveOptions(options: GenerateOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError('generate: options must be an object');
  const o = options as unknown as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!KNOWN.has(k) && o[k] !== undefined) throw new TypeError(`generate: unknown option "${k}"`);
  }
  const prompt = str(o, 'prompt');
  if (prompt === undefined) throw new TypeError('generate: "prompt" is required (a string; "" is allowed)');
  const negativePrompt = str(o, 'negativePrompt') ?? '';

  const steps = int(o, 'steps', 1, MAX_STEPS, DEFAULTS.steps);
  const cfgScale = num(o, 'cfgScale') ?? DEFAULTS.cfgScale;
  if (!Number.isFinite(cfgScale)) throw new RangeError(`generate: "cfgScale" must be a finite number, got ${cfgScale}`);
  const sampler = o.sampler === undefined ? DEFAULTS.sampler : checkSamplerName(o.sampler, 'sampler');
  const schedule = o.schedule === undefined ? DEFAULTS.schedule : checkScheduleName(o.schedule, 'schedule');
  const batchSize = int(o, 'batchSize', 1, MAX_BATCH, DEFAULTS.batchSize);

  let seed: number;
  let seedWasRandom = false;
  if (o.seed === undefined || o.seed === -1) {
    seed = randomSeed();
    seedWasRandom = true;
  } else {
    if (typeof o.seed !== 'number') throw new TypeError(`generate: "seed" must be a number, got ${typeof o.seed}`);
    seed = checkSeed(o.seed, 'seed');
    if (seed > MAX_SEED - (batchSize - 1)) throw new RangeError(`generate: "seed" + batchSize - 1 exceeds ${MAX_SEED}`);
  }
  const rng = o.rng === undefined ? DEFAULTS.rng : checkRng(o.rng, 'rng');

  const noiseSeedDelta = int(o, 'noiseSeedDelta', 0, MAX_SEED, 0);
  if (seed > MAX_SEED - (batchSize - 1) - noiseSeedDelta) throw new RangeError(`generate: "seed" + batchSize - 1 + "noiseSeedDelta" exceeds ${MAX_SEED}`);
  const clipSkip = int(o, 'clipSkip', 1, 2, DEFAULTS.clipSkip) as 1 | 2;
  const eta = num(o, 'eta');
  if (eta !== undefined && !(Number.isFinite(eta) && eta >= 0)) throw new RangeError(`generate: "eta" must be a finite number >= 0, got ${eta}`);
  const emphasis = (str(o, 'emphasis') ?? 'original') as EmphasisMode;
  if (!['original', 'no-norm', 'ignore', 'none'].includes(emphasis)) {
    throw new RangeError(`generate: "emphasis" must be 'original', 'no-norm', 'ignore' or 'none', got '${emphasis}'`);
  }

  const initImage = imageInput(o, 'initImage');
  const mask = imageInput(o, 'mask');
  if (mask !== undefined && initImage === undefined) throw new TypeError('generate: "mask" needs "initImage" (the image to inpaint)');
  const s = num(o, 'strength');
  if (s !== undefined && initImage === undefined) throw new TypeError('generate: "strength" applies to img2img only; pass "initImage" too');
  const strength = s ?? (initImage ? DEFAULTS.strength : 1);
  if (!(strength > 0 && strength <= 1)) throw new RangeError(`generate: "strength" must be in (0, 1], got ${strength}`);
  if (Math.trunc(steps * strength) < 1) {
    throw new RangeError(`generate: "strength" ${strength} with ${steps} steps runs no step (int(steps * strength) = 0); raise strength or steps`);
  }

  const width = side(o, 'width');
  const height = side(o, 'height');
  const noise = floatInput(o, 'noise');
  const latents = floatInput(o, 'latents');
  if (noise && latents) throw new TypeError('generate: give "noise" or "latents", not both');

  const loraTags = (str(o, 'loraTags') ?? 'error') as 'error' | 'warn';
  if (loraTags !== 'error' && loraTags !== 'warn') throw new RangeError(`generate: "loraTags" must be 'error' or 'warn', got '${loraTags}'`);
  const vaeTileSize = num(o, 'vaeTileSize');
  if (vaeTileSize !== undefined && !(Number.isSafeInteger(vaeTileSize) && vaeTileSize >= 0 && vaeTileSize % 8 === 0 && (vaeTileSize === 0 || vaeTileSize >= 64))) {
    throw new RangeError(`generate: "vaeTileSize" must be 0 or a multiple of 8 that is at least 64, got ${vaeTileSize}`);
  }
  const vaeTileOverlap = num(o, 'vaeTileOverlap');
  if (vaeTileOverlap !== undefined && !(Number.isSafeInteger(vaeTileOverlap) && vaeTileOverlap >= 8 && vaeTileOverlap % 8 === 0 &&
      (!vaeTileSize || vaeTileOverlap < vaeTileSize))) {
    throw new RangeError(`generate: "vaeTileOverlap" must be a multiple of 8, at least 8 and below vaeTileSize, got ${vaeTileOverlap}`);
  }
  const modelName = str(o, 'modelName');
  const modelHash = str(o, 'modelHash');
  const onProgress = o.onProgress;
  if (onProgress !== undefined && typeof onProgress !== 'function') throw new TypeError('generate: "onProgress" must be a function');
  const signal = o.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError('generate: "signal" must be an AbortSignal');

  return {
    prompt, negativePrompt, width, height, steps, cfgScale, sampler, schedule, seed, seedWasRandom, rng, noiseSeedDelta, batchSize, clipSkip,
    eta, emphasis, initImage, strength, mask, noise, latents, loraTags, vaeTileSize, vaeTileOverlap, modelName, modelHash,
    onProgress: onProgress as ResolvedOptions['onProgress'], signal: signal as AbortSignal | undefined,
  };
}
