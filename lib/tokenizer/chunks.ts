// Prompt -> 77-token chunks with per-token weights, following AUTOMATIC1111's
// FrozenCLIPEmbedderWithCustomWords.tokenize_line (modules/sd_hijack_clip.py): 75 content tokens per
// chunk between bos and eos, padded with eos; BREAK closes the current chunk; a chunk that fills up
// within `commaPaddingBacktrack` tokens after a comma is cut after that comma instead.
import { BOS_ID, EOS_ID, PAD_ID, defaultTokenizer, type ClipTokenizer } from './clip.js';
import { extractExtraNetworks, parsePromptAttention, unsupportedSyntax, type ExtraNetworkTag, type WeightedText } from './prompt.js';

/** Content tokens per chunk (A1111 `chunk_length`); each chunk holds CHUNK_LENGTH + 2 ids. */
export const CHUNK_LENGTH = 75;
export const CHUNK_TOKENS = CHUNK_LENGTH + 2;

/** A1111 `opts.emphasis`: 'original' (default), 'no-norm', 'ignore' (parse brackets, drop weights),
 * 'none' (brackets are plain text). */
export type EmphasisMode = 'original' | 'no-norm' | 'ignore' | 'none';
const EMPHASIS_MODES: readonly EmphasisMode[] = ['original', 'no-norm', 'ignore', 'none'];

export interface PromptChunk {
  tokens: Int32Array; // [77]: bos, 75 content/pad, eos
  weights: Float32Array; // [77]: 1 at bos/eos/padding
}

export interface EncodedPrompt {
  chunks: PromptChunk[];
  /** A1111's token count (what its UI shows as n/75): 75 per full chunk plus the tokens of the last. */
  tokenCount: number;
  /** The emphasis mode used; pass it on to applyEmphasis. */
  emphasis: EmphasisMode;
  /** The prompt after extra-network tags were taken out, and how it was split into weighted runs. */
  text: string;
  parsed: WeightedText[];
  /** `<lora:...>` (and `<lyco:...>`) tags: LoRA is not implemented yet, so callers must report them. */
  loras: ExtraNetworkTag[];
  /** Every `<type:...>` tag found, LoRA ones included. */
  extraNetworks: ExtraNetworkTag[];
  /** Messages for A1111 syntax that is read as plain text here (prompt editing, alternation, AND). */
  unsupported: string[];
}

export interface EncodePromptOptions {
  /** Tokenizer to use; the bundled default when omitted. */
  tokenizer?: ClipTokenizer;
  emphasis?: EmphasisMode;
  /** A1111 `comma_padding_backtrack` (0..74, default 20; 0 disables the rule). */
  commaPaddingBacktrack?: number;
  /**
   * 'extract' (default): `<type:...>` tags are taken out of the text, as A1111 does for the positive
   * prompt. 'keep': they stay in the text and are tokenized, as A1111 does for the negative prompt;
   * they are still listed in `loras` / `extraNetworks`.
   */
  extraNetworks?: 'extract' | 'keep';
}

function finishChunk(tokens: number[], weights: number[]): PromptChunk {
  const t = new Int32Array(CHUNK_TOKENS).fill(PAD_ID);
  const w = new Float32Array(CHUNK_TOKENS).fill(1);
  t[0] = BOS_ID;
  t.set(tokens, 1);
  w.set(weights, 1);
  t[CHUNK_TOKENS - 1] = EOS_ID;
  return { tokens: t, weights: w };
}

/** The chunk A1111 uses for an empty prompt or to fill a shorter prompt in a batch: bos, 76 x eos. */
export function emptyChunk(): PromptChunk {
  return finishChunk([], []);
}

function checkOptions(options: EncodePromptOptions): Required<Omit<EncodePromptOptions, 'tokenizer'>> {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const { emphasis = 'original', commaPaddingBacktrack = 20, extraNetworks = 'extract' } = options;
  if (extraNetworks !== 'extract' && extraNetworks !== 'keep') {
    throw new RangeError(`options.extraNetworks must be 'extract' or 'keep', got ${JSON.stringify(extraNetworks)}`);
  }
  if (!EMPHASIS_MODES.includes(emphasis)) {
    throw new RangeError(`options.emphasis must be one of ${EMPHASIS_MODES.join(', ')}, got ${JSON.stringify(emphasis)}`);
  }
  if (typeof commaPaddingBacktrack !== 'number' || !Number.isInteger(commaPaddingBacktrack) ||
      commaPaddingBacktrack < 0 || commaPaddingBacktrack >= CHUNK_LENGTH) {
    throw new RangeError(`options.commaPaddingBacktrack must be an integer in [0, ${CHUNK_LENGTH - 1}], got ${String(commaPaddingBacktrack)}`);
  }
  return { emphasis, commaPaddingBacktrack, extraNetworks };
}

/** Parses A1111 prompt syntax and splits the result into 77-token chunks with weights. */
export function encodePrompt(prompt: string, options: EncodePromptOptions = {}): EncodedPrompt {
  if (typeof prompt !== 'string') throw new TypeError(`prompt must be a string, got ${prompt === null ? 'null' : typeof prompt}`);
  const { emphasis, commaPaddingBacktrack, extraNetworks } = checkOptions(options);
  const tokenizer = options.tokenizer ?? defaultTokenizer();
  const commaId = tokenizer.tokenId(',</w>') ?? -1;

  const { prompt: stripped, tags } = extractExtraNetworks(prompt);
  const text = extraNetworks === 'extract' ? stripped : prompt;
  const parsed: WeightedText[] = emphasis === 'none' ? [[text, 1.0]] : parsePromptAttention(text);

  const chunks: PromptChunk[] = [];
  let tokens: number[] = [];
  let weights: number[] = [];
  let tokenCount = 0;
  let lastComma = -1;
  const nextChunk = (isLast = false): void => {
    tokenCount += isLast ? tokens.length : CHUNK_LENGTH;
    chunks.push(finishChunk(tokens, weights));
    tokens = [];
    weights = [];
    lastComma = -1;
  };

  for (const [segment, weight] of parsed) {
    if (segment === 'BREAK' && weight === -1) {
      nextChunk();
      continue;
    }
    // Each run is tokenized on its own, as A1111 does: BPE words never span an emphasis boundary.
    for (const id of tokenizer.tokenize(segment)) {
      if (id === commaId) {
        lastComma = tokens.length;
      } else if (commaPaddingBacktrack !== 0 && tokens.length === CHUNK_LENGTH && lastComma !== -1 &&
                 tokens.length - lastComma <= commaPaddingBacktrack) {
        // Move what follows the last comma into the next chunk.
        const cut = lastComma + 1;
        const movedTokens = tokens.slice(cut);
        const movedWeights = weights.slice(cut);
        tokens = tokens.slice(0, cut);
        weights = weights.slice(0, cut);
        nextChunk();
        tokens = movedTokens;
        weights = movedWeights;
      }
      if (tokens.length === CHUNK_LENGTH) nextChunk();
      tokens.push(id);
      weights.push(weight);
    }
  }
  if (tokens.length > 0 || chunks.length === 0) nextChunk(true);

  return {
    chunks,
    tokenCount,
    emphasis,
    text,
    parsed,
    loras: tags.filter((t) => t.type === 'lora' || t.type === 'lyco'),
    extraNetworks: tags,
    unsupported: emphasis === 'none' ? [] : unsupportedSyntax(text),
  };
}

/** All chunks as one [77*k] token array and one [77*k] weight array (the text encoder's input order). */
export function flattenChunks(chunks: readonly PromptChunk[]): { tokens: Int32Array; weights: Float32Array } {
  const tokens = new Int32Array(chunks.length * CHUNK_TOKENS);
  const weights = new Float32Array(chunks.length * CHUNK_TOKENS);
  chunks.forEach((c, i) => {
    tokens.set(c.tokens, i * CHUNK_TOKENS);
    weights.set(c.weights, i * CHUNK_TOKENS);
  });
  return { tokens, weights };
}
