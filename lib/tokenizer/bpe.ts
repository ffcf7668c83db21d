// CLIP byte-level BPE over vocab.json + merges.txt (the Hugging Face layout of OpenAI's CLIP vocabulary).
// Symbols are kept as vocabulary ids rather than strings: every merge result is itself a vocabulary
// entry, so a merge is a lookup of the id pair and the inner loop never builds strings.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const BOS_ID = 49406;
export const EOS_ID = 49407;
/** SD 1.x pads with <|endoftext|>; unknown symbols (never produced by byte-level input) map to it too. */
export const PAD_ID = EOS_ID;
const END_OF_WORD = '</w>';

/** GPT-2/CLIP `bytes_to_unicode`: printable bytes map to themselves, the other 68 to U+0100 onwards. */
function byteToUnicode(): string[] {
  const table = new Array<string>(256);
  let next = 0x100;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table[b] = String.fromCodePoint(printable ? b : next++);
  }
  return table;
}
export const BYTE_CHARS: readonly string[] = byteToUnicode();

/**
 * Merge ranks keyed by the (left id, right id) pair: an open-addressing table in typed arrays. A Map with
 * `left * 65536 + right` keys would need heap numbers (beyond the small-integer range) on every lookup.
 */
export class MergeTable {
  readonly #mask: number;
  readonly #left: Int32Array;
  readonly #right: Int32Array;
  readonly #rank: Int32Array;
  readonly #merged: Int32Array;

  constructor(capacity: number) {
    let size = 1;
    while (size < capacity * 2) size *= 2;
    this.#mask = size - 1;
    this.#left = new Int32Array(size).fill(-1);
    this.#right = new Int32Array(size);
    this.#rank = new Int32Array(size);
    this.#merged = new Int32Array(size);
  }

  #slot(l: number, r: number): number {
    let h = (Math.imul(l, 0x9e3779b1) ^ Math.imul(r, 0x85ebca6b)) & this.#mask;
    while (this.#left[h] !== -1 && (this.#left[h] !== l || this.#right[h] !== r)) h = (h + 1) & this.#mask;
    return h;
  }

  /** Returns false if the pair is already present. */
  add(l: number, r: number, rank: number, merged: number): boolean {
    const h = this.#slot(l, r);
    if (this.#left[h] !== -1) return false;
    this.#left[h] = l;
    this.#right[h] = r;
    this.#rank[h] = rank;
    this.#merged[h] = merged;
    return true;
  }

  /** Rank of the pair, or -1 when it never merges. */
  rank(l: number, r: number): number {
    const h = this.#slot(l, r);
    return this.#left[h] === -1 ? -1 : this.#rank[h]!;
  }

  merged(l: number, r: number): number {
    return this.#merged[this.#slot(l, r)]!;
  }
}

export interface BpeData {
  /** token string -> id */
  readonly vocab: Map<string, number>;
  /** id -> token string */
  readonly tokens: string[];
  /** id of the byte symbol, and of the byte symbol with `</w>` (the last symbol of a word) */
  readonly byteIds: Int32Array;
  readonly byteEndIds: Int32Array;
  readonly merges: MergeTable;
}

function fail(file: string, why: string): never {
  throw new Error(`CLIP tokenizer: ${file}: ${why}`);
}

/** Parses the two files; throws an Error naming the file when either is malformed. */
export function parseBpeData(vocabJson: string, mergesTxt: string, where = ''): BpeData {
  const vocabFile = join(where, 'vocab.json');
  const mergesFile = join(where, 'merges.txt');
  let obj: unknown;
  try {
    obj = JSON.parse(vocabJson);
  } catch (e) {
    fail(vocabFile, `not valid JSON (${(e as Error).message})`);
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) fail(vocabFile, 'expected a JSON object of token -> id');
  const vocab = new Map<string, number>();
  const entries = obj as Record<string, unknown>;
  for (const tok in entries) {
    const id = entries[tok];
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= 65536) fail(vocabFile, `bad id for ${JSON.stringify(tok)}`);
    vocab.set(tok, id);
  }
  // Filled in id order after sizing, so the array stays dense.
  const tokens = new Array<string>(65536).fill('');
  for (const [tok, id] of vocab) tokens[id] = tok;
  const byteIds = new Int32Array(256);
  const byteEndIds = new Int32Array(256);
  for (let b = 0; b < 256; b++) {
    const c = BYTE_CHARS[b]!;
    const a = vocab.get(c);
    const e = vocab.get(c + END_OF_WORD);
    if (a === undefined || e === undefined) fail(vocabFile, `missing byte symbol ${JSON.stringify(c)}`);
    byteIds[b] = a;
    byteEndIds[b] = e;
  }

  const lines = mergesTxt.split('\n');
  const merges = new MergeTable(lines.length);
  let rank = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    // The first line is the `#version` header; the slow and fast tokenizers both skip it.
    if (i === 0 && line.startsWith('#version')) continue;
    if (line === '') continue;
    const sp = line.indexOf(' ');
    if (sp <= 0 || sp === line.length - 1 || line.indexOf(' ', sp + 1) !== -1) fail(mergesFile, `line ${i + 1} is not "left right"`);
    const left = line.slice(0, sp);
    const right = line.slice(sp + 1);
    const l = vocab.get(left);
    const r = vocab.get(right);
    // CLIP numbers merge k's result 512 + k: check that by comparing strings, which is much cheaper
    // than hashing the concatenation; any other layout falls back to the lookup.
    const guess = tokens[512 + rank];
    const m = guess !== undefined && guess.length === left.length + right.length && guess.startsWith(left) &&
      guess.endsWith(right) ? 512 + rank : vocab.get(left + right);
    if (l === undefined || r === undefined || m === undefined) fail(mergesFile, `line ${i + 1} uses a symbol missing from vocab.json`);
    // The references disagree on which rank a repeated pair keeps; CLIP's file has none, so refuse.
    if (!merges.add(l, r, rank, m)) fail(mergesFile, `line ${i + 1} repeats an earlier merge`);
    rank++;
  }
  return { vocab, tokens, byteIds, byteEndIds, merges };
}

const loaded = new Map<string, BpeData>();

/** Reads and parses a directory's vocab.json + merges.txt once per process. */
export function loadBpeData(dir: string): BpeData {
  let data = loaded.get(dir);
  if (data === undefined) {
    const read = (name: string): string => {
      try {
        return readFileSync(join(dir, name), 'utf8');
      } catch (e) {
        throw new Error(`CLIP tokenizer: cannot read ${join(dir, name)} (${(e as Error).message})`);
      }
    };
    data = parseBpeData(read('vocab.json'), read('merges.txt'), dir);
    loaded.set(dir, data);
  }
  return data;
}

const utf8 = new TextEncoder();

/**
 * BPE of one pre-token: its UTF-8 bytes become symbols, `</w>` joins the last one, then the
 * lowest-ranked adjacent pair is merged (every non-overlapping occurrence, left to right) until no pair
 * has a rank. Same result as the reference `bpe()` loops of the slow and fast tokenizers.
 */
export function bpeWord(data: BpeData, word: string): number[] {
  const bytes = utf8.encode(word);
  const n = bytes.length;
  let syms: number[] = new Array<number>(n);
  for (let i = 0; i < n - 1; i++) syms[i] = data.byteIds[bytes[i]!]!;
  if (n > 0) syms[n - 1] = data.byteEndIds[bytes[n - 1]!]!;
  const merges = data.merges;
  while (syms.length > 1) {
    // The lowest rank wins; the pair of a rank is unique, so its first position is where scanning starts.
    let bestRank = -1;
    let bestPos = -1;
    for (let i = 0; i + 1 < syms.length; i++) {
      const r = merges.rank(syms[i]!, syms[i + 1]!);
      if (r >= 0 && (bestRank < 0 || r < bestRank)) {
        bestRank = r;
        bestPos = i;
      }
    }
    if (bestRank < 0) break;
    const first = syms[bestPos]!;
    const second = syms[bestPos + 1]!;
    const merged = merges.merged(first, second);
    const out: number[] = syms.slice(0, bestPos);
    for (let i = bestPos; i < syms.length; ) {
      if (syms[i] === first && i + 1 < syms.length && syms[i + 1] === second) {
        out.push(merged);
        i += 2;
      } else {
        out.push(syms[i]!);
        i += 1;
      }
    }
    syms = out;
  }
  return syms;
}

/** Inverse of the byte-level mapping for decode(): symbol characters back to bytes. */
export function symbolsToText(data: BpeData, ids: readonly number[]): string {
  const charToByte = new Map<string, number>();
  BYTE_CHARS.forEach((c, b) => charToByte.set(c, b));
  const bytes: number[] = [];
  for (const id of ids) {
    if (id === BOS_ID || id === EOS_ID) continue;
    const tok = data.tokens[id];
    if (tok === undefined || tok === '') continue;
    const body = tok.endsWith(END_OF_WORD) ? tok.slice(0, -END_OF_WORD.length) : tok;
    for (const ch of body) {
      const b = charToByte.get(ch);
      if (b !== undefined) bytes.push(b);
    }
    if (body !== tok) bytes.push(0x20);
  }
  return new TextDecoder().decode(Uint8Array.from(bytes)).trimEnd();
}
