// Prompt -> CLIP context, the AUTOMATIC1111 way (modules/sd_hijack_clip.py, prompt_parser.py):
// - positive: extra-network tags out, AND / ":weight" split into sub-prompts, each parsed for emphasis
//   and cut into 77-token chunks; sub-prompts with fewer chunks are padded with empty chunks
//   (bos, 76 x eos; weight 1) because A1111 encodes them as one batch;
// - negative: one prompt, tags kept as text;
// - each 77-token chunk goes through CLIP on its own (the encoder does that for [B, 77k] input),
//   the chunks are joined along the sequence, then the emphasis weights are applied per chunk.
// The cond and uncond contexts may differ in length; guidance.ts then runs them as separate batches,
// as A1111 does when pad_cond_uncond is off (its default).
import {
  applyEmphasis, CHUNK_TOKENS, emptyChunk, encodeComposablePrompt, encodePrompt, flattenChunks,
  type EmphasisMode, type PromptChunk,
} from '../tokenizer/index.js';
import { skipsUncond } from './guidance.js';
import type { PipelineModel, Tensor } from './types.js';

export interface Conditioning {
  /** One context [1, L, D] per positive sub-prompt (all the same L). */
  cond: Tensor[];
  /** The composable-diffusion weight of each sub-prompt (1 for an ordinary prompt). */
  weights: number[];
  /** The negative prompt's context [1, L', D]. */
  uncond: Tensor;
  /** Token ids actually encoded, for debugging and tests: [P, L] and [1, L']. */
  condTokens: Tensor<Int32Array>;
  uncondTokens: Tensor<Int32Array>;
  warnings: string[];
  /** `<lora:...>` tags found in the positive prompt (LoRA is not implemented). */
  loras: string[];
}

export interface ConditioningOptions {
  clipSkip: 1 | 2;
  emphasis?: EmphasisMode;
  /** The negative prompt's CLIP pass is skipped when guidance never uses it (see skipsUncond). */
  cfgScale: number;
  /** `<lora:...>` tags: 'error' (default) throws before any network runs; 'warn' drops them with a warning. */
  loraTags?: 'error' | 'warn';
}

function padChunks(chunks: PromptChunk[], count: number): PromptChunk[] {
  const out = chunks.slice();
  while (out.length < count) out.push(emptyChunk());
  return out;
}

/** Runs CLIP on P token sequences of equal length and applies each one's emphasis weights. */
async function encodeBatch(
  model: PipelineModel, seqs: PromptChunk[][], mode: EmphasisMode, clipSkip: 1 | 2,
): Promise<{ contexts: Tensor[]; tokens: Tensor<Int32Array> }> {
  const L = seqs[0]!.length * CHUNK_TOKENS;
  const flat = seqs.map((c) => flattenChunks(c));
  const ids = new Int32Array(seqs.length * L);
  flat.forEach((f, i) => ids.set(f.tokens, i * L));
  const tokens = { data: ids, shape: [seqs.length, L] };
  const z = await model.encodeText(tokens, { clipSkip });
  const D = z.shape[2]!;
  if (z.shape.length !== 3 || z.shape[0] !== seqs.length || z.shape[1] !== L || z.data.length !== seqs.length * L * D) {
    throw new Error(`encodeText returned shape [${z.shape.join(', ')}] for tokens [${seqs.length}, ${L}]`);
  }
  const contexts = flat.map((f, i) => ({
    data: applyEmphasis(z.data.subarray(i * L * D, (i + 1) * L * D), D, f.weights, mode),
    shape: [1, L, D],
  }));
  return { contexts, tokens };
}

export async function encodeConditioning(
  model: PipelineModel, prompt: string, negativePrompt: string, options: ConditioningOptions,
): Promise<Conditioning> {
  const emphasis = options.emphasis ?? 'original';
  const pos = encodeComposablePrompt(prompt, { emphasis });
  const neg = encodePrompt(negativePrompt, { emphasis, extraNetworks: 'keep' });
  const warnings: string[] = [];
  for (const part of pos.parts) warnings.push(...part.encoded.unsupported.map((m) => `prompt: ${m}`));
  warnings.push(...neg.unsupported.map((m) => `negative prompt: ${m}`));
  const others = pos.extraNetworks.filter((t) => t.type !== 'lora' && t.type !== 'lyco');
  for (const t of others) warnings.push(`prompt: <${t.type}:${t.items.join(':')}> extra networks are not supported; the tag was removed`);

  const loras = pos.loras.map((t) => `<${t.type}:${t.items.join(':')}>`);
  if (loras.length > 0) {
    if (options.loraTags !== 'warn') {
      throw new RangeError(
        `generate: "prompt" has ${loras.join(' ')}: LoRA is not supported yet. Remove the tag, or pass loraTags: 'warn' ` +
        '(CLI: --lora-tags warn) to generate without it',
      );
    }
    warnings.push(`prompt: ${loras.join(' ')} ignored: LoRA is not supported yet`);
  }

  const count = Math.max(...pos.parts.map((p) => p.encoded.chunks.length));
  const seqs = pos.parts.map((p) => padChunks(p.encoded.chunks, count));
  const c = await encodeBatch(model, seqs, emphasis, options.clipSkip);
  let uncond: Tensor;
  let uncondTokens: Tensor<Int32Array>;
  if (skipsUncond(pos.parts.map((p) => p.weight), options.cfgScale)) {
    uncond = { data: new Float32Array(0), shape: [1, 0, c.contexts[0]!.shape[2]!] };
    uncondTokens = { data: new Int32Array(0), shape: [1, 0] };
  } else {
    const u = await encodeBatch(model, [neg.chunks], emphasis, options.clipSkip);
    uncond = u.contexts[0]!;
    uncondTokens = u.tokens;
  }
  return {
    cond: c.contexts,
    weights: pos.parts.map((p) => p.weight),
    uncond,
    condTokens: c.tokens,
    uncondTokens,
    warnings,
    loras,
  };
}
