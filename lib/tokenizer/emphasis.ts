// Prompt weights applied to the text encoder output, as AUTOMATIC1111's emphasis modes do
// (modules/sd_emphasis.py). 'original': scale each token's vector by its weight, then rescale the whole
// chunk so its mean equals the mean before weighting. Each 77-token chunk is one encoder call in A1111,
// so the mean is taken per chunk (over all 77 x D values of that chunk).
import { CHUNK_TOKENS, type EmphasisMode } from './chunks.js';

/**
 * Returns a new [rows, dim] array (rows = 77 * chunks) with the weights applied; `z` is not changed.
 * Float32 results like torch's float32 math; the means are summed in float64 (torch's CPU accumulator).
 * If weighting makes a chunk's mean exactly 0 (A1111 would divide by zero), that chunk is left unrescaled.
 */
export function applyEmphasis(z: Float32Array, dim: number, weights: Float32Array, mode: EmphasisMode = 'original'): Float32Array {
  if (!(z instanceof Float32Array)) throw new TypeError('z must be a Float32Array');
  if (!(weights instanceof Float32Array)) throw new TypeError('weights must be a Float32Array');
  if (!Number.isInteger(dim) || dim <= 0) throw new RangeError(`dim must be a positive integer, got ${String(dim)}`);
  const rows = weights.length;
  if (rows === 0 || rows % CHUNK_TOKENS !== 0) throw new RangeError(`weights.length must be a multiple of ${CHUNK_TOKENS}, got ${rows}`);
  if (z.length !== rows * dim) throw new RangeError(`z.length must be weights.length * dim = ${rows * dim}, got ${z.length}`);
  if (mode !== 'original' && mode !== 'no-norm' && mode !== 'ignore' && mode !== 'none') {
    throw new RangeError(`mode must be 'original', 'no-norm', 'ignore' or 'none', got ${JSON.stringify(mode)}`);
  }

  const out = new Float32Array(z);
  if (mode === 'ignore' || mode === 'none') return out;
  const chunkSize = CHUNK_TOKENS * dim;
  for (let c = 0; c < rows / CHUNK_TOKENS; c++) {
    const base = c * chunkSize;
    let before = 0;
    let after = 0;
    for (let r = 0; r < CHUNK_TOKENS; r++) {
      const w = weights[c * CHUNK_TOKENS + r]!;
      const off = base + r * dim;
      for (let i = 0; i < dim; i++) {
        const v = out[off + i]!;
        before += v;
        out[off + i] = v * w; // rounds to float32 on store
        after += out[off + i]!;
      }
    }
    if (mode === 'no-norm') continue;
    const n = chunkSize;
    const ratio = Math.fround(Math.fround(before / n) / Math.fround(after / n));
    if (after === 0 || !Number.isFinite(ratio)) continue;
    for (let i = base; i < base + chunkSize; i++) out[i] = out[i]! * ratio;
  }
  return out;
}
