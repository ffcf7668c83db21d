// `sdnode convert`: any supported model file -> GGUF with sdnode's metadata.
//
// Quantization policy (what --type q8_0 / q4_0 quantizes, and what it leaves alone):
//  1. Non-weight keys are dropped: the 12 schedule buffers, CLIP position_ids and model_ema.*
//     (sdnode computes the schedule and positions; EMA copies are not used for inference).
//  2. A tensor is quantized only when it is a floating-point matrix used as GEMM weights:
//     rank >= 2, K = elements per output row (in for a linear, in*kh*kw for a conv) a multiple of 32,
//     and not one of the precision-sensitive / lookup tensors: token and position embeddings
//     (rows are looked up, not multiplied) and the UNet time embedding MLP (`time_embed.`, as in
//     stable-diffusion.cpp). Conv kernels are stored 2-D as [out, K] (GGUF ne = [K, out]) so that
//     ggml's "ne[0] is whole blocks" rule holds; `sdnode.torch_shapes` records the 4-D shape.
//  3. Everything else that is floating point is stored f16, except rank-1 tensors (norm scales and
//     shifts, biases), which stay f32: they are tiny and feed normalisation/accumulation directly.
//  4. --type f16 / f32 store every float tensor in that type (rank-1 stays f32 with f16 as well).
//  5. Integer tensors keep their type.
// Quantized bytes come from the core's quantizers (byte-identical to ggml's reference ones), passed
// in as `quantize`. Tensors are converted one at a time, so memory stays near one tensor's size.
import { rmSync } from 'node:fs';
import { readTensorBytes, type DType, type TensorEntry, type TensorTable, DTYPE_INFO, ModelFileError } from '../formats/tensor-table.js';
import { writeGguf, type GgufKV, type GgufTensorToWrite } from '../formats/gguf.js';
import { toF16Bytes, toFloat32 } from '../formats/half.js';
import { readTensorTable } from '../formats/index.js';
import { detectModel, type Detection } from './detect.js';
import { encodeTorchShape, isNonWeightKey, TORCH_SHAPES_KEY } from './keys.js';

export type ConvertType = 'f32' | 'f16' | 'q8_0' | 'q4_0';
export const CONVERT_TYPES: readonly ConvertType[] = ['f32', 'f16', 'q8_0', 'q4_0'];
export type QuantizeFn = (values: Float32Array, type: 'q8_0' | 'q4_0') => Uint8Array;

export interface PlanEntry {
  name: string;
  source: TensorEntry;
  outDtype: DType;
  /** Torch shape of the stored tensor (2-D [out, K] for a quantized conv). */
  storedShape: number[];
  reason: string;
}

/** The per-tensor decisions of the policy above; `dropped` lists the tensors left out and why. */
export function planConversion(table: TensorTable, type: ConvertType): { plan: PlanEntry[]; dropped: { name: string; reason: string }[] } {
  const plan: PlanEntry[] = [];
  const dropped: { name: string; reason: string }[] = [];
  for (const t of table.tensors) {
    if (isNonWeightKey(t.name)) { dropped.push({ name: t.name, reason: 'non-weight key' }); continue; }
    const info = DTYPE_INFO[t.dtype];
    if (!info.float) { plan.push({ name: t.name, source: t, outDtype: t.dtype, storedShape: t.shape, reason: 'integer tensor kept' }); continue; }
    if (info.blockSize > 1 && t.dtype !== type) {
      // Re-quantizing already quantized data compounds the error: refuse rather than degrade silently.
      if (type === 'q8_0' || type === 'q4_0') throw new ModelFileError(table.path, `is already ${t.dtype}; convert from an f16/f32 source`, t.name);
    }
    const rank = t.shape.length;
    const k = rank >= 2 ? t.shape.slice(1).reduce((a, b) => a * b, 1) : 0;
    const quantizable = rank >= 2 && k % 32 === 0 && !/embedding|time_embed\./.test(t.name);
    if ((type === 'q8_0' || type === 'q4_0') && quantizable) {
      plan.push({ name: t.name, source: t, outDtype: type, storedShape: [t.shape[0]!, k], reason: `GEMM weight, K=${k}` });
    } else if (rank <= 1) {
      plan.push({ name: t.name, source: t, outDtype: 'f32', storedShape: t.shape, reason: 'rank-1 (norm/bias) kept f32' });
    } else {
      const out: DType = type === 'f32' ? 'f32' : 'f16';
      const why = type === 'q8_0' || type === 'q4_0'
        ? (/embedding|time_embed\./.test(t.name) ? 'embedding/time embedding kept f16' : `K=${k} not a multiple of 32, kept f16`)
        : `--type ${type}`;
      plan.push({ name: t.name, source: t, outDtype: out, storedShape: t.shape, reason: why });
    }
  }
  return { plan, dropped };
}

export interface ConvertOptions {
  type: ConvertType;
  /** The core's quantizer; required for q8_0/q4_0. */
  quantize?: QuantizeFn;
  /** Called after each tensor is written. */
  onProgress?: (done: number, total: number, name: string) => void;
}

export interface ConvertResult {
  detection: Detection;
  tensors: number;
  dropped: number;
  histogram: Record<string, number>;
  outputBytes: number;
}

/** Bytes a plan entry occupies in the output. */
export function plannedBytes(p: PlanEntry): number {
  const n = p.storedShape.reduce((a, b) => a * b, 1);
  const i = DTYPE_INFO[p.outDtype];
  return (n / i.blockSize) * i.blockBytes;
}

export function convertModel(inPath: string, outPath: string, opts: ConvertOptions): ConvertResult {
  if (!CONVERT_TYPES.includes(opts.type)) throw new RangeError(`type must be one of ${CONVERT_TYPES.join(', ')}, got ${String(opts.type)}`);
  if ((opts.type === 'q8_0' || opts.type === 'q4_0') && typeof opts.quantize !== 'function') {
    throw new TypeError(`--type ${opts.type} needs the native quantizer (quantize), which is not available`);
  }
  const table = readTensorTable(inPath);
  const detection = detectModel(table.tensors);
  if (detection.family !== 'sd1' && detection.family !== 'vae') {
    throw new ModelFileError(inPath, `cannot be converted: it is ${detection.message}`);
  }
  const { plan, dropped } = planConversion(table, opts.type);
  const kv = metadataFor(table, detection, opts.type, plan);
  const histogram: Record<string, number> = {};
  let done = 0, outputBytes = 0;
  const tensors: GgufTensorToWrite[] = plan.map((p) => ({
    name: p.name,
    dtype: p.outDtype,
    shape: p.storedShape,
    data: () => {
      const bytes = convertTensor(table, p, opts.quantize);
      histogram[p.outDtype] = (histogram[p.outDtype] ?? 0) + 1;
      outputBytes += bytes.byteLength;
      opts.onProgress?.(++done, plan.length, p.name);
      return bytes;
    },
  }));
  try {
    writeGguf(outPath, kv, tensors);
  } catch (e) {
    rmSync(outPath, { force: true });
    throw e;
  }
  return { detection, tensors: plan.length, dropped: dropped.length, histogram, outputBytes };
}

function convertTensor(table: TensorTable, p: PlanEntry, quantize?: QuantizeFn): Uint8Array {
  const raw = readTensorBytes(table, p.source);
  if (p.outDtype === p.source.dtype) return raw;
  let values: Float32Array;
  try {
    values = toFloat32(p.source.dtype, raw);
  } catch (e) {
    throw new ModelFileError(table.path, `cannot convert ${p.source.dtype} data (${(e as Error).message})`, p.name);
  }
  switch (p.outDtype) {
    case 'f32': return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    case 'f16': return toF16Bytes(values);
    case 'q8_0': case 'q4_0': {
      const q = quantize!(values, p.outDtype);
      const want = plannedBytes(p);
      if (q.byteLength !== want) throw new ModelFileError(table.path, `quantizer returned ${q.byteLength} bytes, expected ${want}`, p.name);
      return q;
    }
    default: throw new ModelFileError(table.path, `cannot convert ${p.source.dtype} to ${p.outDtype}`, p.name);
  }
}

function metadataFor(table: TensorTable, det: Detection, type: ConvertType, plan: PlanEntry[]): GgufKV[] {
  const u32 = (key: string, value: number): GgufKV => ({ key, type: 'u32', value });
  const kv: GgufKV[] = [
    { key: 'general.architecture', type: 'str', value: 'sdnode-sd1' },
    { key: 'general.name', type: 'str', value: table.path.split(/[\\/]/).pop()!.replace(/\.[^.]*$/, '') },
    { key: 'sdnode.format_version', type: 'u32', value: 1 },
    { key: 'sdnode.model', type: 'str', value: det.family === 'sd1' ? (det.variant === 'inpaint' ? 'sd1-inpaint' : 'sd1') : det.family },
    { key: 'sdnode.type', type: 'str', value: type },
    { key: 'sdnode.source_format', type: 'str', value: table.format },
    { key: 'sdnode.key_layout', type: 'str', value: 'original (model.diffusion_model.*, cond_stage_model.transformer.text_model.*, first_stage_model.*)' },
  ];
  if (det.unet) {
    const u = det.unet;
    kv.push(u32('sdnode.unet.in_channels', u.inChannels), u32('sdnode.unet.out_channels', u.outChannels), u32('sdnode.unet.model_channels', u.modelChannels),
      { key: 'sdnode.unet.channel_mult', type: 'arr', arrType: 'u32', value: u.channelMult },
      u32('sdnode.unet.time_embed_dim', u.timeEmbedDim), u32('sdnode.unet.context_dim', u.contextDim), u32('sdnode.unet.transformer_depth', u.transformerDepth));
  }
  if (det.clip) {
    const c = det.clip;
    kv.push(u32('sdnode.clip.hidden', c.hidden), u32('sdnode.clip.layers', c.layers), u32('sdnode.clip.heads', c.heads), u32('sdnode.clip.mlp', c.mlp), u32('sdnode.clip.vocab', c.vocab), u32('sdnode.clip.positions', c.positions));
  }
  if (det.vae) {
    const v = det.vae;
    kv.push(u32('sdnode.vae.ch', v.ch), { key: 'sdnode.vae.channel_mult', type: 'arr', arrType: 'u32', value: v.channelMult }, u32('sdnode.vae.z_channels', v.zChannels), u32('sdnode.vae.embed_dim', v.embedDim));
  }
  const reshaped = plan.filter((p) => p.storedShape.length !== p.source.shape.length || p.storedShape.some((d, i) => d !== p.source.shape[i]));
  kv.push({ key: TORCH_SHAPES_KEY, type: 'arr', arrType: 'str', value: reshaped.map((p) => encodeTorchShape(p.name, p.source.shape)) });
  return kv;
}
