// The per-step model interface scripts use: load an SD 1.x checkpoint and run its three networks
// (CLIP text encoder, UNet, VAE) one call at a time. Every forward runs on a native worker thread;
// tensors cross the API as { data, shape } in row-major NCHW order.
import type { TensorEntry } from './formats/tensor-table.js';
import { isNonWeightKey } from './model/keys.js';
import { openModel } from './model/open.js';
import { native } from './native.js';
import { generate as runGenerate, type GenerateOptions, type GenerateResult } from './pipeline/index.js';

export type BackendKind = 'auto' | 'cpu' | 'cuda';
export type WeightType = 'f32' | 'f16' | 'q8_0' | 'q4_0';

export interface LoadOptions {
  /** 'auto' takes CUDA when a device answers, else the CPU. Default 'auto'. */
  backend?: BackendKind;
  /** Weight storage type; omitted keeps each tensor's file dtype. Norms and biases stay f32. */
  weights?: WeightType;
  /** CPU threads (default: physical cores). */
  threads?: number;
  /**
   * generate() gives memory back between its phases: the text encoder's weights after encoding, the
   * UNet's and the activations after sampling, the VAE's and the activations at the end (see
   * `release()`). Costs page faults (from the page cache) when a network runs again; only weights
   * used in place from a file whose dtype is kept are dropped. Default true.
   */
  lowMemory?: boolean;
  /**
   * 'q8_0' quantizes the inputs of convolutions with q8_0/q4_0 weights to q8_0 blocks, as GGML does
   * for its matrix products, and multiplies with integer dot products: on CPUs with AVX-512 VNNI /
   * AVX2 / ARM dotprod the convs run 1.3-2.2x faster, at about twice the error against fp32 (still
   * within the networks' q8_0/q4_0 tolerances; BENCHMARKS.md). Default 'f32' (exact inputs).
   */
  convActivations?: 'f32' | 'q8_0';
}

/** What `release()` gives back: a network's weight pages, or the activation memory. */
export type ReleasePart = 'clip' | 'unet' | 'vae' | 'activations';
const PARTS: readonly string[] = ['clip', 'unet', 'vae', 'activations'];

/** A tensor crossing the API: row-major data and its shape (NCHW for images and latents). */
export interface Tensor<T extends Float32Array | Int32Array = Float32Array> {
  data: T;
  shape: number[];
}

export interface ModelInfo {
  backend: string;
  /** Why this backend was chosen (for 'auto'). */
  backendReason: string;
  weightBytes: number;
  clip?: { hidden: number; layers: number; vocab: number; positions: number };
  unet?: { inChannels: number; outChannels: number; modelChannels: number; contextDim: number };
  vae?: { zChannels: number; factor: number; decoder: boolean; encoder: boolean };
}

export interface VaeOptions {
  /**
   * Largest tile side in pixels (multiple of 8). Images with a side above it are processed in
   * overlapping tiles (linear blending), so memory is bounded by the tile: per side, the fewest
   * tiles of at most tileSize that overlap by tileOverlap, all shrunk to the same shortest length
   * that covers the side. 0 disables. Default 512.
   */
  tileSize?: number;
  /** Least overlap of neighbouring tiles in pixels (multiple of 8, below tileSize). Default tileSize / 4. */
  tileOverlap?: number;
}

/** The addon's Model class (native/addon/model.cpp). */
interface NativeModel {
  load(path: string, tensors: TensorEntry[], options: { backend: string; weights?: string; threads?: number; convActivations?: string }): Promise<ModelInfo>;
  encodeText(ids: Int32Array, B: number, L: number, skip: number): Promise<Float32Array>;
  unet(x: Float32Array, B: number, C: number, h: number, w: number, t: Float32Array, ctx: Float32Array, L: number, D: number): Promise<Float32Array>;
  vaeDecode(z: Float32Array, B: number, h: number, w: number, tile: number, overlap: number): Promise<Float32Array>;
  vaeEncode(img: Float32Array, B: number, H: number, W: number, tile: number, overlap: number): Promise<Float32Array>;
  release(part: string): Promise<Float32Array>;
  dispose(): void;
}

const BACKENDS: readonly string[] = ['auto', 'cpu', 'cuda'];
const WEIGHTS: readonly string[] = ['f32', 'f16', 'q8_0', 'q4_0'];
const CHUNK = 77;

function isPosInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
}

/** Checks `{ data, shape }`: data of the given array type, a shape of `rank` positive integers, matching length. */
function checkTensor(fn: string, arg: string, v: unknown, rank: number, kind: 'Float32Array' | 'Int32Array'): number[] {
  if (typeof v !== 'object' || v === null) throw new TypeError(`${fn}: ${arg} must be an object { data, shape }`);
  const { data, shape } = v as { data?: unknown; shape?: unknown };
  const ok = kind === 'Float32Array' ? data instanceof Float32Array : data instanceof Int32Array;
  if (!ok) throw new TypeError(`${fn}: ${arg}.data must be a ${kind}`);
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number')) throw new TypeError(`${fn}: ${arg}.shape must be an array of numbers`);
  if (shape.length !== rank || !shape.every(isPosInt)) {
    throw new RangeError(`${fn}: ${arg}.shape must be ${rank} positive integers, got [${shape.join(', ')}]`);
  }
  const n = shape.reduce((a: number, b: number) => a * b, 1);
  const len = (data as Float32Array | Int32Array).length;
  if (len !== n) throw new RangeError(`${fn}: ${arg}.data has ${len} elements but ${arg}.shape [${shape.join(', ')}] needs ${n}`);
  return shape as number[];
}

/** [tile, overlap] in pixels from VaeOptions (overlap 0 = the native default, tile / 4). */
function tileOption(fn: string, options: VaeOptions | undefined): [number, number] {
  if (options === undefined) return [512, 0];
  if (typeof options !== 'object' || options === null) throw new TypeError(`${fn}: options must be an object`);
  const t = options.tileSize ?? 512;
  if (typeof t !== 'number') throw new TypeError(`${fn}: options.tileSize must be a number`);
  if (!Number.isSafeInteger(t) || t < 0 || t % 8 !== 0 || (t > 0 && t < 64)) {
    throw new RangeError(`${fn}: options.tileSize must be 0 or a multiple of 8 that is at least 64, got ${t}`);
  }
  const o = options.tileOverlap;
  if (o === undefined) return [t, 0];
  if (typeof o !== 'number') throw new TypeError(`${fn}: options.tileOverlap must be a number`);
  if (!Number.isSafeInteger(o) || o < 8 || o % 8 !== 0 || (t > 0 && o >= t)) {
    throw new RangeError(`${fn}: options.tileOverlap must be a multiple of 8, at least 8 and below tileSize (${t}), got ${o}`);
  }
  return [t, o];
}

export class StableDiffusion {
  #model: NativeModel | null;
  // Calls run one after another: the native model serialises them anyway, and queueing here keeps
  // waiting jobs from occupying libuv's worker threads (which fs and dns also need).
  #queue: Promise<unknown> = Promise.resolve();
  /** What was loaded: backend, weight bytes and the widths read from the weights. */
  readonly info: ModelInfo;
  /** Whether generate() releases memory between phases (LoadOptions.lowMemory). */
  readonly lowMemory: boolean;

  private constructor(model: NativeModel, info: ModelInfo, lowMemory: boolean) {
    this.#model = model;
    this.info = info;
    this.lowMemory = lowMemory;
  }

  /** Loads a .safetensors, .ckpt or .gguf SD 1.x checkpoint (a VAE-only or UNet-only file works for its parts). */
  static async load(path: string, options: LoadOptions = {}): Promise<StableDiffusion> {
    if (typeof path !== 'string' || path.length === 0) throw new TypeError('StableDiffusion.load: path must be a non-empty string');
    if (typeof options !== 'object' || options === null) throw new TypeError('StableDiffusion.load: options must be an object');
    const { backend = 'auto', weights, threads, lowMemory = true, convActivations } = options;
    if (convActivations !== undefined && convActivations !== 'f32' && convActivations !== 'q8_0') {
      throw new RangeError(`StableDiffusion.load: options.convActivations must be 'f32' or 'q8_0', got '${String(convActivations)}'`);
    }
    if (typeof lowMemory !== 'boolean') throw new TypeError('StableDiffusion.load: options.lowMemory must be a boolean');
    if (typeof backend !== 'string') throw new TypeError('StableDiffusion.load: options.backend must be a string');
    if (!BACKENDS.includes(backend)) throw new RangeError(`StableDiffusion.load: options.backend must be 'auto', 'cpu' or 'cuda', got '${backend}'`);
    if (weights !== undefined) {
      if (typeof weights !== 'string') throw new TypeError('StableDiffusion.load: options.weights must be a string');
      if (!WEIGHTS.includes(weights)) throw new RangeError(`StableDiffusion.load: options.weights must be 'f32', 'f16', 'q8_0' or 'q4_0', got '${weights}'`);
    }
    if (threads !== undefined) {
      if (typeof threads !== 'number') throw new TypeError('StableDiffusion.load: options.threads must be a number');
      if (!Number.isSafeInteger(threads) || threads < 1 || threads > 1024) throw new RangeError(`StableDiffusion.load: options.threads must be an integer in 1..1024, got ${threads}`);
    }
    // Headers only: names in the original layout, PyTorch shapes, absolute offsets.
    const { table, detection } = openModel(path);
    if (detection.family !== 'sd1' && detection.family !== 'vae') {
      throw new Error(`StableDiffusion.load: ${path} is ${detection.message}`);
    }
    const tensors = table.tensors.filter((t) => !isNonWeightKey(t.name));
    for (const t of tensors) {
      if (t.strides) {
        throw new Error(`StableDiffusion.load: ${path}: tensor '${t.name}' is a non-contiguous view; convert the file first (sdnode convert)`);
      }
    }
    const Model = native().Model as new () => NativeModel;
    const model = new Model();
    const opts: { backend: string; weights?: string; threads?: number; convActivations?: string } = { backend };
    if (convActivations !== undefined) opts.convActivations = convActivations;
    if (weights !== undefined) opts.weights = weights;
    if (threads !== undefined) opts.threads = threads;
    const info = await model.load(path, tensors, opts);
    return new StableDiffusion(model, info, lowMemory);
  }

  /**
   * Prompt to PNG: txt2img, img2img (initImage + strength) and inpainting (mask), with CFG, any of
   * the samplers, torch-compatible noise and the A1111 "parameters" text in each PNG.
   */
  generate(options: GenerateOptions): Promise<GenerateResult> {
    return runGenerate(this, options);
  }

  /** Text embeddings [B, 77k, D] of token ids [B, 77k] (each 77-token chunk encoded on its own). */
  async encodeText(tokens: Tensor<Int32Array>, options: { clipSkip?: 1 | 2 } = {}): Promise<Tensor> {
    const fn = 'encodeText';
    const m = this.#live(fn);
    if (!this.info.clip) throw new Error(`${fn}: this model has no CLIP text encoder`);
    const [B, L] = checkTensor(fn, 'tokens', tokens, 2, 'Int32Array') as [number, number];
    if (L % CHUNK !== 0) throw new RangeError(`${fn}: tokens.shape[1] must be a multiple of 77, got ${L}`);
    if (typeof options !== 'object' || options === null) throw new TypeError(`${fn}: options must be an object`);
    const skip = options.clipSkip ?? 1;
    if (typeof skip !== 'number') throw new TypeError(`${fn}: options.clipSkip must be a number`);
    if (skip !== 1 && skip !== 2) throw new RangeError(`${fn}: options.clipSkip must be 1 or 2, got ${skip}`);
    const vocab = this.info.clip.vocab;
    for (let i = 0; i < tokens.data.length; i++) {
      const id = tokens.data[i]!;
      if (id < 0 || id >= vocab) throw new RangeError(`${fn}: tokens.data[${i}] = ${id} is outside [0, ${vocab})`);
    }
    const ids = tokens.data.slice();
    const data = await this.#run(() => m.encodeText(ids, B, L, skip));
    return { data, shape: [B, L, this.info.clip.hidden] };
  }

  /** Predicted noise [B, 4, h, w] for latents x [B, C, h, w] at timesteps t (B values in 0..999) with context [B, L, D]. */
  async unet(x: Tensor, t: Float32Array, context: Tensor): Promise<Tensor> {
    const fn = 'unet';
    const m = this.#live(fn);
    const u = this.info.unet;
    if (!u) throw new Error(`${fn}: this model has no UNet`);
    const [B, C, h, w] = checkTensor(fn, 'x', x, 4, 'Float32Array') as [number, number, number, number];
    if (C !== u.inChannels) throw new RangeError(`${fn}: x.shape[1] must be ${u.inChannels} (the UNet's input channels), got ${C}`);
    if (!(t instanceof Float32Array)) throw new TypeError(`${fn}: t must be a Float32Array`);
    if (t.length !== B) throw new RangeError(`${fn}: t must hold ${B} timesteps (one per batch item), got ${t.length}`);
    for (let i = 0; i < B; i++) {
      if (!(t[i]! >= 0 && t[i]! <= 999)) throw new RangeError(`${fn}: t[${i}] = ${t[i]} is outside 0..999`);
    }
    const [Bc, L, D] = checkTensor(fn, 'context', context, 3, 'Float32Array') as [number, number, number];
    if (Bc !== B) throw new RangeError(`${fn}: context.shape[0] (${Bc}) must equal x.shape[0] (${B})`);
    if (L % CHUNK !== 0) throw new RangeError(`${fn}: context.shape[1] must be a multiple of 77, got ${L}`);
    if (D !== u.contextDim) throw new RangeError(`${fn}: context.shape[2] must be ${u.contextDim}, got ${D}`);
    const [xd, td, cd] = [x.data.slice(), t.slice(), context.data.slice()];
    const data = await this.#run(() => m.unet(xd, B, C, h, w, td, cd, L, D));
    return { data, shape: [B, u.outChannels, h, w] };
  }

  /** Image [B, 3, 8h, 8w] (about -1..1, unclamped) of latents z [B, 4, h, w] already divided by 0.18215. */
  async vaeDecode(z: Tensor, options?: VaeOptions): Promise<Tensor> {
    const fn = 'vaeDecode';
    const m = this.#live(fn);
    const v = this.info.vae;
    if (!v?.decoder) throw new Error(`${fn}: this model has no VAE decoder`);
    const [B, C, h, w] = checkTensor(fn, 'z', z, 4, 'Float32Array') as [number, number, number, number];
    if (C !== v.zChannels) throw new RangeError(`${fn}: z.shape[1] must be ${v.zChannels}, got ${C}`);
    const [tile, overlap] = tileOption(fn, options).map((px) => px / v.factor) as [number, number];
    const zd = z.data.slice();
    const data = await this.#run(() => m.vaeDecode(zd, B, h, w, tile, overlap));
    return { data, shape: [B, 3, h * v.factor, w * v.factor] };
  }

  /** Moments [B, 8, H/8, W/8] (mean then logvar, unclamped) of images [B, 3, H, W] in -1..1. */
  async vaeEncode(image: Tensor, options?: VaeOptions): Promise<Tensor> {
    const fn = 'vaeEncode';
    const m = this.#live(fn);
    const v = this.info.vae;
    if (!v?.encoder) throw new Error(`${fn}: this model has no VAE encoder`);
    const [B, C, H, W] = checkTensor(fn, 'image', image, 4, 'Float32Array') as [number, number, number, number];
    if (C !== 3) throw new RangeError(`${fn}: image.shape[1] must be 3, got ${C}`);
    if (H % v.factor !== 0 || W % v.factor !== 0) {
      throw new RangeError(`${fn}: image height and width must be multiples of ${v.factor}, got ${H}x${W}`);
    }
    const [tile, overlap] = tileOption(fn, options).map((px) => px / v.factor) as [number, number];
    const id = image.data.slice();
    const data = await this.#run(() => m.vaeEncode(id, B, H, W, tile, overlap));
    return { data, shape: [B, 2 * v.zChannels, H / v.factor, W / v.factor] };
  }

  /**
   * Gives memory back until it is next needed, after the calls already made: 'clip', 'unet' or 'vae'
   * drop the resident pages of that network's weights where they are used in place from the model
   * file (the next call faults them back in from the page cache or the file; converted weights
   * stay), 'activations' frees the activation arena (the next call allocates it again).
   */
  async release(...parts: ReleasePart[]): Promise<void> {
    const m = this.#live('release');
    for (const p of parts) {
      if (typeof p !== 'string') throw new TypeError('release: each part must be a string');
      if (!PARTS.includes(p)) throw new RangeError(`release: part must be 'clip', 'unet', 'vae' or 'activations', got '${p}'`);
    }
    for (const p of parts) await this.#run(() => m.release(p));
  }

  /** Frees the weights and activations once the calls already made finish. Later calls throw an Error. */
  async dispose(): Promise<void> {
    const m = this.#model;
    if (!m) return;
    this.#model = null;
    await this.#queue;
    m.dispose();
  }

  get disposed(): boolean {
    return this.#model === null;
  }

  #live(fn: string): NativeModel {
    if (!this.#model) throw new Error(`StableDiffusion.${fn}: the model has been disposed`);
    return this.#model;
  }

  // Inputs are copied when the call is made (the job may start later), so callers may reuse buffers.
  #run<T>(job: () => Promise<T>): Promise<T> {
    const p = this.#queue.then(job);
    this.#queue = p.catch(() => undefined);
    return p;
  }
}
