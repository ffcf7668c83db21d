// Text clean-up before BPE, in the two flavours SD front ends use (see the fixtures README):
//  - 'fast': Hugging Face `tokenizers` (transformers 5, diffusers): NFC, whitespace runs -> one space,
//    per-character lowercase. This is what golden.json holds and the default.
//  - 'slow': transformers 4.x slow CLIPTokenizer without ftfy (BERT BasicTokenizer clean-up).

import { NEWER_LETTERS_AND_DIGITS, nfcReference } from './unicode-compat.js';

export type TokenizerVariant = 'fast' | 'slow';

// Rust `char::to_lowercase` maps one character at a time, so a word-final capital sigma becomes σ, not
// the ς that context-aware lowercasing (JS toLowerCase, Python str.lower) gives. Final_Sigma is the only
// context-dependent rule in locale-independent lowercasing, so pre-mapping Σ is enough.
function lowerPerChar(s: string): string {
  return (s.includes('\u03a3') ? s.replace(/\u03a3/g, '\u03c3') : s).toLowerCase();
}

const WHITE_RUN = /\p{White_Space}+/gu;

export function normalizeFast(piece: string): string {
  return lowerPerChar(nfcReference(piece).replace(WHITE_RUN, ' '));
}

// Python `str.isspace()` (used by str.split()): bidi classes WS/B/S plus Zs.
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
export const PY_SPACE_CLASS = `[${PY_SPACE}]`;
const PY_SPLIT = new RegExp(`${PY_SPACE_CLASS}+`, 'u');
const ZS = /\p{Zs}/u;
const OTHER = /\p{C}/u;

/** BERT's `_is_chinese_char`: CJK ideographs only (no kana, no hangul). */
function isCjk(cp: number): boolean {
  return (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x20000 && cp <= 0x2a6df) || (cp >= 0x2a700 && cp <= 0x2b73f) || (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) || (cp >= 0x2f800 && cp <= 0x2fa1f);
}

export function normalizeSlow(piece: string): string {
  let out = '';
  for (const ch of piece) {
    const cp = ch.codePointAt(0)!;
    if (cp === 0 || cp === 0xfffd) continue;
    if (ch === '\t' || ch === '\n' || ch === '\r' || ch === ' ' || ZS.test(ch)) out += ' ';
    else if (OTHER.test(ch)) continue;
    else if (isCjk(cp)) out += ` ${ch} `;
    else out += ch;
  }
  const words = out.normalize('NFC').split(PY_SPLIT).filter((w) => w !== '');
  // Python lowercases word by word with str.lower(), which applies Final_Sigma like toLowerCase().
  return words.map((w) => w.toLowerCase()).join(' ');
}

// The pre-tokenizer pattern. The slow tokenizer also lists the special tokens (its input still holds them
// after lower-casing, so `<|ENDOFTEXT|>` ends up special there) and matches case-insensitively.
// `\s` is spelled \p{White_Space}: JS `\s` also holds U+FEFF, which Rust/Python keep as a symbol.
const CORE = "'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|[^\\p{White_Space}\\p{L}\\p{N}]+";
// The fast pattern treats NEWER_LETTERS_AND_DIGITS as unassigned, so as symbols (`v` flag set syntax).
export const PRETOKEN_FAST = new RegExp(
  "'s|'t|'re|'ve|'m|'ll|'d|" +
  `[\\p{L}--[${NEWER_LETTERS_AND_DIGITS}]]+|[\\p{N}--[${NEWER_LETTERS_AND_DIGITS}]]|` +
  `[[^\\p{White_Space}\\p{L}\\p{N}][${NEWER_LETTERS_AND_DIGITS}]]+`,
  'gv',
);
export const PRETOKEN_SLOW = new RegExp(`<\\|startoftext\\|>|<\\|endoftext\\|>|${CORE}`, 'giu');
