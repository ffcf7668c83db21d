// CLIP tokenizer for the SD 1.x text encoder. Default behaviour equals Hugging Face's CLIPTokenizer as
// diffusers runs it today (test/fixtures/clip-tokenizer/golden.json); `variant: 'slow'` reproduces the
// transformers 4.x slow tokenizer without ftfy (what AUTOMATIC1111 runs when ftfy is absent).
import { fileURLToPath } from 'node:url';
import { BOS_ID, EOS_ID, PAD_ID, bpeWord, loadBpeData, symbolsToText, type BpeData } from './bpe.js';
import { PRETOKEN_FAST, PRETOKEN_SLOW, normalizeFast, normalizeSlow, type TokenizerVariant } from './normalize.js';

export { BOS_ID, EOS_ID, PAD_ID } from './bpe.js';
export type { TokenizerVariant } from './normalize.js';

/** SD 1.x context: 75 content tokens + bos + eos. */
export const CONTEXT_LENGTH = 77;

/** vocab.json + merges.txt shipped in the package (assets/clip, OpenAI's CLIP vocabulary, MIT). */
export const BUNDLED_VOCAB_DIR: string = fileURLToPath(new URL('../../assets/clip/', import.meta.url));

export interface ClipTokenizerOptions {
  /** Directory holding vocab.json and merges.txt; the bundled copy when omitted. */
  dir?: string;
  /** 'fast' (default, Hugging Face tokenizers) or 'slow' (transformers 4.x without ftfy). */
  variant?: TokenizerVariant;
}

const SPECIAL_SPLIT = /(<\|startoftext\|>|<\|endoftext\|>)/;
const CACHE_LIMIT = 100_000;

function checkText(text: unknown, field: string): asserts text is string {
  if (typeof text !== 'string') {
    throw new TypeError(`${field} must be a string, got ${text === null ? 'null' : typeof text}`);
  }
}

export class ClipTokenizer {
  readonly dir: string;
  readonly variant: TokenizerVariant;
  #data: BpeData | null = null;
  // BPE result per pre-token: prompts repeat words constantly, and BPE dominates the cost.
  readonly #cache = new Map<string, readonly number[]>();

  /** Cheap: the vocabulary is read on first use (and parsed once per process per directory). */
  constructor(options: ClipTokenizerOptions = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    const { dir, variant = 'fast' } = options;
    if (dir !== undefined && typeof dir !== 'string') throw new TypeError('options.dir must be a string');
    if (variant !== 'fast' && variant !== 'slow') {
      throw new RangeError(`options.variant must be 'fast' or 'slow', got ${JSON.stringify(variant)}`);
    }
    this.dir = dir ?? BUNDLED_VOCAB_DIR;
    this.variant = variant;
  }

  /** A tokenizer with its files already read (throws here, not at first use, if they are bad). */
  static load(dir?: string, options: Omit<ClipTokenizerOptions, 'dir'> = {}): ClipTokenizer {
    const t = new ClipTokenizer({ ...options, ...(dir === undefined ? {} : { dir }) });
    t.#bpe();
    return t;
  }

  #bpe(): BpeData {
    return (this.#data ??= loadBpeData(this.dir));
  }

  get vocabSize(): number {
    return this.#bpe().vocab.size;
  }

  /** Id of a vocabulary entry (e.g. ',</w>'), or undefined. */
  tokenId(token: string): number | undefined {
    return this.#bpe().vocab.get(token);
  }

  /** Content ids only: no bos/eos, no truncation. Literal `<|endoftext|>` in the text gives 49407. */
  tokenize(text: string): number[] {
    checkText(text, 'text');
    const data = this.#bpe();
    const slow = this.variant === 'slow';
    const ids: number[] = [];
    for (const piece of text.split(SPECIAL_SPLIT)) {
      if (piece === '<|startoftext|>') ids.push(BOS_ID);
      else if (piece === '<|endoftext|>') ids.push(EOS_ID);
      else if (piece !== '') this.#tokenizePiece(data, slow ? normalizeSlow(piece) : normalizeFast(piece), slow, ids);
    }
    return ids;
  }

  #tokenizePiece(data: BpeData, text: string, slow: boolean, out: number[]): void {
    const re = slow ? PRETOKEN_SLOW : PRETOKEN_FAST;
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const word = m[0];
      if (slow && word.startsWith('<|')) {
        // The slow tokenizer's BPE cache is seeded with the two special tokens.
        if (word === '<|startoftext|>') { out.push(BOS_ID); continue; }
        if (word === '<|endoftext|>') { out.push(EOS_ID); continue; }
      }
      let ids = this.#cache.get(word);
      if (ids === undefined) {
        ids = bpeWord(data, word);
        if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
        this.#cache.set(word, ids);
      }
      for (const id of ids) out.push(id);
    }
  }

  /** bos + content ids + eos, never truncated (the `ids` of the golden files). */
  encode(text: string): number[] {
    return [BOS_ID, ...this.tokenize(text), EOS_ID];
  }

  /** The SD 1.x text-encoder input: first 75 content ids, bos/eos, padded with 49407 to 77. */
  encode77(text: string): number[] {
    const content = this.tokenize(text).slice(0, CONTEXT_LENGTH - 2);
    const out = [BOS_ID, ...content, EOS_ID];
    while (out.length < CONTEXT_LENGTH) out.push(PAD_ID);
    return out;
  }

  /** Text back from ids, for messages and debugging (bos/eos dropped, word ends become spaces). */
  decode(ids: readonly number[]): string {
    return symbolsToText(this.#bpe(), ids);
  }
}

let bundled: ClipTokenizer | undefined;
/** The process-wide tokenizer on the bundled vocabulary (default variant), created on first call. */
export function defaultTokenizer(): ClipTokenizer {
  return (bundled ??= new ClipTokenizer());
}
