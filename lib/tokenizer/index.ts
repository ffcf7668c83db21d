// Text side of SD 1.x conditioning: CLIP BPE, A1111 prompt syntax, 77-token chunks, emphasis weighting.
// The A1111 flow, for the pipeline:
//   positive: encodeComposablePrompt(prompt) -> parts (usually one, weight 1; report loras / unsupported)
//   negative: encodePrompt(negative, { extraNetworks: 'keep' })
//   per chunk: CLIP(tokens[77]) -> z[77, 768]; concatenate the chunks of one prompt along the sequence;
//   then applyEmphasis(z, 768, flattenChunks(chunks).weights, encoded.emphasis).
export {
  ClipTokenizer, defaultTokenizer, BUNDLED_VOCAB_DIR, CONTEXT_LENGTH, BOS_ID, EOS_ID, PAD_ID,
  type ClipTokenizerOptions, type TokenizerVariant,
} from './clip.js';
export { parsePromptAttention, extractExtraNetworks, unsupportedSyntax, type WeightedText, type ExtraNetworkTag } from './prompt.js';
export {
  encodePrompt, emptyChunk, flattenChunks, CHUNK_LENGTH, CHUNK_TOKENS,
  type EncodedPrompt, type EncodePromptOptions, type PromptChunk, type EmphasisMode,
} from './chunks.js';
export { applyEmphasis } from './emphasis.js';
export {
  parseComposablePrompt, encodeComposablePrompt, type SubPrompt, type EncodedComposablePrompt,
} from './composable.js';
