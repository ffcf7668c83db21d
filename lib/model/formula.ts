// The tiny-sd15 weight formula (../shared/fixtures/tiny-sd15/README.md, "The weight formula"):
// every weight value is an integer hash of (tensor name, flat index, seed) mapped to [-1, 1),
// scaled in float64, rounded float64 -> float32 -> float16 (nearest even at each step, subnormals
// and signed zero kept). Used by tests to rebuild the tiny model bit for bit, and by benchmarks to
// build full-size SD 1.5-shaped models (`fullSizeKeys`).
import { f16BitsToF32, f32ToF16Bits } from '../formats/half.js';

export const FORMULA_SEED = 1234;

export function fmix32(x: number): number {
  x ^= x >>> 16; x = Math.imul(x, 0x85ebca6b); x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35); x ^= x >>> 16;
  return x >>> 0;
}

export function fnv1a32(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

/** float16 bits of the formula values of one tensor (row-major flat index 0..n-1). */
export function generateF16(name: string, n: number, s: number, m: number, seed = FORMULA_SEED): Uint16Array {
  const key = fmix32((fnv1a32(new TextEncoder().encode(name)) ^ seed) >>> 0);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const u = (fmix32((key + Math.imul(i, 0x9e3779b9)) >>> 0) >>> 8) / 16777216;
    out[i] = f32ToF16Bits(Math.fround(s * (2 * u - 1) + m));
  }
  return out;
}

export type FormulaRule = 'TOK' | 'POS' | 'W' | 'NW' | 'NB' | 'B';
export interface RuleParams { rule: FormulaRule; s: number; m: number }
const SQRT3 = Math.sqrt(3);
const GAINS: Record<string, number> = {
  'model.diffusion_model.time_embed.0.weight': 2, 'model.diffusion_model.out.2.weight': 1.5,
};

/** The (s, m) rule of a weight tensor; `rankOf` gives the rank of a sibling tensor (NB vs B). */
export function formulaRule(name: string, shape: readonly number[], rankOf: (name: string) => number | undefined): RuleParams {
  if (name.endsWith('embeddings.token_embedding.weight')) return { rule: 'TOK', s: SQRT3, m: 0 };
  if (name.endsWith('embeddings.position_embedding.weight')) return { rule: 'POS', s: 0.5 * SQRT3, m: 0 };
  if (shape.length >= 2) {
    const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
    return { rule: 'W', s: (GAINS[name] ?? 1) * Math.sqrt(3 / fanIn), m: 0 };
  }
  if (name.endsWith('.weight')) return { rule: 'NW', s: 0.1 * SQRT3, m: 1 };
  if (rankOf(name.slice(0, -'.bias'.length) + '.weight') === 1) return { rule: 'NB', s: 0.1 * SQRT3, m: 0 };
  return { rule: 'B', s: 0.05 * SQRT3, m: 0 };
}

/** One row of keys.json (the key table). */
export interface KeyEntry {
  name: string;
  shape: number[];
  dtype: 'F32' | 'I64' | 'I32';
  rule: FormulaRule | 'special';
  s?: number;
  m?: number;
  special?: 'schedule' | 'position_ids' | 'ema_decay' | 'ema_num_updates';
  sha256_f16?: string;
  sha256?: string;
}

/** The 12 CompVis schedule buffers (ldm register_schedule, scaled_linear), float64 rounded to float32. */
export function scheduleBuffers(steps = 1000, start = 0.00085, end = 0.012): Record<string, Float32Array> {
  const a = Math.sqrt(start), b = Math.sqrt(end);
  const step = (b - a) / (steps - 1);
  const betas = new Float64Array(steps);
  for (let i = 0; i < steps; i++) { const x = i === steps - 1 ? b : i * step + a; betas[i] = x * x; }
  const ac = new Float64Array(steps), prev = new Float64Array(steps);
  let p = 1;
  for (let i = 0; i < steps; i++) { prev[i] = p; p *= 1 - betas[i]!; ac[i] = p; }
  const f = (fn: (i: number) => number) => Float32Array.from({ length: steps }, (_, i) => fn(i));
  return {
    betas: f((i) => betas[i]!),
    alphas_cumprod: f((i) => ac[i]!),
    alphas_cumprod_prev: f((i) => prev[i]!),
    sqrt_alphas_cumprod: f((i) => Math.sqrt(ac[i]!)),
    sqrt_one_minus_alphas_cumprod: f((i) => Math.sqrt(1 - ac[i]!)),
    log_one_minus_alphas_cumprod: f((i) => Math.log(1 - ac[i]!)),
    sqrt_recip_alphas_cumprod: f((i) => Math.sqrt(1 / ac[i]!)),
    sqrt_recipm1_alphas_cumprod: f((i) => Math.sqrt(1 / ac[i]! - 1)),
    posterior_variance: f((i) => (betas[i]! * (1 - prev[i]!)) / (1 - ac[i]!)),
    posterior_log_variance_clipped: f((i) => Math.log(Math.max((betas[i]! * (1 - prev[i]!)) / (1 - ac[i]!), 1e-20))),
    posterior_mean_coef1: f((i) => (betas[i]! * Math.sqrt(prev[i]!)) / (1 - ac[i]!)),
    posterior_mean_coef2: f((i) => ((1 - prev[i]!) * Math.sqrt(1 - betas[i]!)) / (1 - ac[i]!)),
  };
}

export interface BuiltTensor { name: string; dtype: 'f16' | 'f32' | 'i64' | 'i32'; shape: number[]; data: Uint8Array }

/**
 * Builds one tensor of the key table: formula tensors as float16 (or float32 widened exactly),
 * specials as the README defines them.
 */
export function buildTensor(k: KeyEntry, opts: { float?: 'f16' | 'f32'; seed?: number } = {}): BuiltTensor {
  const n = k.shape.reduce((a, b) => a * b, 1);
  if (k.rule === 'special') {
    if (k.special === 'position_ids') {
      const v = BigInt64Array.from({ length: n }, (_, i) => BigInt(i));
      return { name: k.name, dtype: 'i64', shape: k.shape, data: new Uint8Array(v.buffer) };
    }
    if (k.special === 'ema_num_updates') return { name: k.name, dtype: 'i32', shape: k.shape, data: new Uint8Array(4) };
    if (k.special === 'ema_decay') return { name: k.name, dtype: 'f32', shape: k.shape, data: new Uint8Array(Float32Array.of(0.9999).buffer) };
    const buf = scheduleBuffers()[k.name];
    if (!buf) throw new RangeError(`unknown special tensor '${k.name}'`);
    return { name: k.name, dtype: 'f32', shape: k.shape, data: new Uint8Array(buf.buffer) };
  }
  if (k.s === undefined || k.m === undefined) throw new RangeError(`key table entry '${k.name}' has no s/m`);
  const h = generateF16(k.name, n, k.s, k.m, opts.seed ?? FORMULA_SEED);
  if ((opts.float ?? 'f16') === 'f16') return { name: k.name, dtype: 'f16', shape: k.shape, data: new Uint8Array(h.buffer) };
  const f = new Float32Array(n);
  for (let i = 0; i < n; i++) f[i] = f16BitsToF32(h[i]!);
  return { name: k.name, dtype: 'f32', shape: k.shape, data: new Uint8Array(f.buffer) };
}

/**
 * Full-size SD 1.5 key table (1145 tensors, checkpoint order) derived from the tiny one: the tiny
 * model is SD 1.5 with UNet channels /10, VAE channels /4, CLIP 128 wide with 2 of 12 layers, and
 * context 128 instead of 768. Formula rules are recomputed for the new shapes.
 */
export function fullSizeKeys(tiny: KeyEntry[]): KeyEntry[] {
  const scaleShape = (k: KeyEntry): number[] => {
    const n = k.name;
    if (k.rule === 'special') return k.shape;
    return k.shape.map((d, i) => {
      if (k.shape.length === 4 && i >= 2) return d; // conv kernel
      if (n.startsWith('model.diffusion_model.')) {
        if (d === 4) return 4; // latent channels
        if (i === 1 && /attn2\.to_[kv]\.weight$/.test(n)) return 768; // context dim
        return d * 10;
      }
      if (n.startsWith('first_stage_model.')) return d >= 32 ? d * 4 : d;
      if (n.startsWith('cond_stage_model.')) return d === 128 ? 768 : d === 512 ? 3072 : d;
      return d;
    });
  };
  const out: KeyEntry[] = [];
  const layerRe = /^(cond_stage_model\.transformer\.text_model\.encoder\.layers\.)1(\..*)$/;
  const pending: KeyEntry[] = [];
  const flush = () => {
    for (let l = 2; l < 12; l++) for (const k of pending) out.push({ ...k, name: k.name.replace(layerRe, `$1${l}$2`) });
    pending.length = 0;
  };
  for (const k of tiny) {
    const scaled: KeyEntry = { name: k.name, shape: scaleShape(k), dtype: k.dtype, rule: k.rule, ...(k.special ? { special: k.special } : {}) };
    if (layerRe.test(k.name)) pending.push(scaled);
    else if (pending.length) flush();
    out.push(scaled);
  }
  if (pending.length) flush();
  const rank = new Map(out.map((k) => [k.name, k.shape.length]));
  for (const k of out) {
    if (k.rule === 'special') continue;
    const r = formulaRule(k.name, k.shape, (nm) => rank.get(nm));
    k.rule = r.rule; k.s = r.s; k.m = r.m;
  }
  return out;
}
