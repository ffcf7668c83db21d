// Checkpoint key layouts.
//
// sdnode works with the ORIGINAL CompVis/LDM key names (`model.diffusion_model.*`,
// `cond_stage_model.transformer.text_model.*`, `first_stage_model.*`) and PyTorch shapes.
// stable-diffusion.cpp writes exactly these names into GGUF (no renaming without --convert-name);
// what differs there is only the shape order (GGUF ne[] is the torch shape reversed, which the GGUF
// reader undoes) and that it drops the non-weight keys below. sdnode's own GGUF files may store a
// quantized conv kernel as a 2-D [out, in*kh*kw] matrix (so that ggml's "ne[0] is whole blocks"
// rule holds); they list the original shapes in `sdnode.torch_shapes`, which `normalizeTable` applies.
import { ModelFileError, numelOf, type TensorTable } from '../formats/tensor-table.js';

export const UNET_PREFIX = 'model.diffusion_model.';
export const CLIP_PREFIX = 'cond_stage_model.transformer.text_model.';
export const VAE_PREFIX = 'first_stage_model.';

export const SCHEDULE_KEYS = [
  'betas', 'alphas_cumprod', 'alphas_cumprod_prev', 'sqrt_alphas_cumprod', 'sqrt_one_minus_alphas_cumprod',
  'log_one_minus_alphas_cumprod', 'sqrt_recip_alphas_cumprod', 'sqrt_recipm1_alphas_cumprod', 'posterior_variance',
  'posterior_log_variance_clipped', 'posterior_mean_coef1', 'posterior_mean_coef2',
] as const;

/** stable-diffusion.cpp's `unused_tensors` (src/model_loader.cpp): it drops these; it keeps alphas_cumprod. */
export const SDCPP_UNUSED_KEYS = [
  ...SCHEDULE_KEYS.filter((k) => k !== 'alphas_cumprod'),
  `${CLIP_PREFIX}embeddings.position_ids`, 'model_ema.decay', 'model_ema.num_updates',
];

/**
 * Keys an inference engine does not load: the schedule buffers (sdnode computes the schedule), the
 * CLIP position_ids (always 0..76), and everything under model_ema. (EMA bookkeeping, and in
 * non-pruned checkpoints a second copy of the UNet).
 */
export function isNonWeightKey(name: string): boolean {
  return (SCHEDULE_KEYS as readonly string[]).includes(name) || name === `${CLIP_PREFIX}embeddings.position_ids` ||
    name.startsWith('model_ema.') || name.endsWith('.position_ids');
}

/**
 * Maps known spellings of the original layout to it: older `transformers` versions saved the CLIP
 * text model without the `text_model.` level (`cond_stage_model.transformer.encoder...`).
 */
export function canonicalName(name: string): string {
  const old = 'cond_stage_model.transformer.';
  if (name.startsWith(old) && !name.startsWith(CLIP_PREFIX)) {
    const rest = name.slice(old.length);
    if (/^(embeddings|encoder|final_layer_norm)\./.test(rest)) return CLIP_PREFIX + rest;
  }
  return name;
}

/** GGUF ne[] (fastest first) <-> PyTorch shape (outermost first). */
export const torchShapeFromNe = (ne: readonly number[]): number[] => [...ne].reverse();
export const neFromTorchShape = (shape: readonly number[]): number[] => (shape.length === 0 ? [1] : [...shape].reverse());

export const TORCH_SHAPES_KEY = 'sdnode.torch_shapes';

/** Encodes `name -> torch shape` for tensors stored with another shape (one string per tensor). */
export function encodeTorchShape(name: string, shape: readonly number[]): string {
  return `${name}=${shape.join(',')}`;
}

/**
 * Canonical names and original shapes for any table: renames old CLIP keys and applies sdnode's
 * `sdnode.torch_shapes`. Returns a new table; tensor offsets are unchanged.
 */
export function normalizeTable(table: TensorTable): TensorTable {
  const shapes = new Map<string, number[]>();
  const raw = table.metadata[TORCH_SHAPES_KEY];
  if (Array.isArray(raw)) {
    for (const s of raw) {
      const m = typeof s === 'string' ? /^(.*)=([\d,]*)$/.exec(s) : null;
      if (!m) throw new ModelFileError(table.path, `malformed ${TORCH_SHAPES_KEY} entry ${JSON.stringify(s)}`);
      shapes.set(m[1]!, m[2] === '' ? [] : m[2]!.split(',').map(Number));
    }
  }
  const seen = new Set<string>();
  const tensors = table.tensors.map((t) => {
    const name = canonicalName(t.name);
    if (seen.has(name)) throw new ModelFileError(table.path, 'appears twice after renaming to the original layout', name);
    seen.add(name);
    const shape = shapes.get(t.name);
    if (shape) {
      if (numelOf(shape, table.path, t.name) !== numelOf(t.shape, table.path, t.name)) {
        throw new ModelFileError(table.path, `${TORCH_SHAPES_KEY} gives [${shape.join(', ')}], which does not match stored [${t.shape.join(', ')}]`, t.name);
      }
      return { ...t, name, shape };
    }
    return name === t.name ? t : { ...t, name };
  });
  return { ...table, tensors };
}
