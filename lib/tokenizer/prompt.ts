// AUTOMATIC1111 prompt syntax: emphasis brackets (modules/prompt_parser.py, parse_prompt_attention) and
// extra-network tags such as <lora:name:0.8> (modules/extra_networks.py, parse_prompt). Written from the
// documented behaviour and checked against the examples in A1111's docstring; Python's Unicode regex
// classes (\s, \d, \w, \b) are spelled out so the two engines agree beyond ASCII.
import { PY_SPACE_CLASS } from './normalize.js';

/** One run of prompt text with its attention weight; `['BREAK', -1]` marks a chunk break. */
export type WeightedText = [text: string, weight: number];

const W = '[\\p{L}\\p{N}_]'; // Python's Unicode \w
const S = PY_SPACE_CLASS; // Python's Unicode \s

// Alternatives in A1111's order: escapes, a lone backslash, openers, `:weight)`, closers, plain text, ':'.
const RE_ATTENTION = new RegExp(
  `\\\\\\(|\\\\\\)|\\\\\\[|\\\\\\]|\\\\\\\\|\\\\|\\(|\\[|:${S}*([+-]?[.\\p{Nd}]+)${S}*\\)|\\)|\\]|[^\\\\()\\[\\]:]+|:`,
  'gu',
);
// `\s*\bBREAK\b\s*`; the \b on both sides only ever sits next to the word BREAK, so look-arounds express it.
const RE_BREAK = new RegExp(`${S}*(?<!${W})BREAK(?!${W})${S}*`, 'u');
const ND = /\p{Nd}/u;

const ROUND = 1.1;
const SQUARE = 1 / 1.1;

/** Python's \d is any decimal digit and float() reads them all: map them to ASCII before Number(). */
export function asciiDigits(s: string): string {
  let out = '';
  for (const ch of s) {
    if (ch >= '0' && ch <= '9') out += ch;
    else if (ND.test(ch)) {
      // Unicode encodes every decimal digit set as a contiguous 0..9 run: its value is the distance to
      // the start of the run (runs of several sets, like the math digits, stay aligned to 10).
      const cp = ch.codePointAt(0)!;
      let start = cp;
      while (ND.test(String.fromCodePoint(start - 1))) start--;
      out += String((cp - start) % 10);
    } else out += ch;
  }
  return out;
}

/** Python float() of the `[+-]?[.\d]+` capture. */
function parseWeight(s: string): number {
  const v = Number(asciiDigits(s));
  if (!Number.isFinite(v)) {
    // A1111 raises ValueError here and the generation fails; say which part of the prompt is wrong.
    throw new RangeError(`prompt: emphasis weight "${s}" is not a number (in "(text:${s})")`);
  }
  return v;
}

/**
 * Splits a prompt into runs of text and weight the way A1111 does:
 * `(a)` x1.1, `[a]` /1.1, `(a:1.3)` x1.3, `\(` `\)` `\[` `\]` `\\` literals, a lone `\` dropped, unclosed
 * brackets applied up to the end, stray closers kept as text, `BREAK` -> `['BREAK', -1]`, equal adjacent
 * weights merged.
 */
export function parsePromptAttention(text: string): WeightedText[] {
  if (typeof text !== 'string') throw new TypeError(`prompt must be a string, got ${text === null ? 'null' : typeof text}`);
  const res: WeightedText[] = [];
  const round: number[] = [];
  const square: number[] = [];
  const multiplyRange = (start: number, m: number): void => {
    for (let p = start; p < res.length; p++) res[p]![1] *= m;
  };

  RE_ATTENTION.lastIndex = 0;
  for (let m = RE_ATTENTION.exec(text); m !== null; m = RE_ATTENTION.exec(text)) {
    const tok = m[0];
    const weight = m[1];
    if (tok.startsWith('\\')) res.push([tok.slice(1), 1.0]);
    else if (tok === '(') round.push(res.length);
    else if (tok === '[') square.push(res.length);
    else if (weight !== undefined && round.length > 0) multiplyRange(round.pop()!, parseWeight(weight));
    else if (tok === ')' && round.length > 0) multiplyRange(round.pop()!, ROUND);
    else if (tok === ']' && square.length > 0) multiplyRange(square.pop()!, SQUARE);
    else {
      tok.split(RE_BREAK).forEach((part, i) => {
        if (i > 0) res.push(['BREAK', -1]);
        res.push([part, 1.0]);
      });
    }
  }
  for (const pos of round) multiplyRange(pos, ROUND);
  for (const pos of square) multiplyRange(pos, SQUARE);

  if (res.length === 0) res.push(['', 1.0]);
  for (let i = 0; i + 1 < res.length; ) {
    if (res[i]![1] === res[i + 1]![1]) {
      res[i]![0] += res[i + 1]![0];
      res.splice(i + 1, 1);
    } else i++;
  }
  return res;
}

/** An extra-network tag `<type:item:item...>`, e.g. `<lora:name:0.8>`. */
export interface ExtraNetworkTag {
  /** 'lora', 'hypernet', ... (the word before the first colon) */
  type: string;
  /** the first item (the network's name) */
  name: string;
  /** every colon-separated item after the type, as A1111 splits them */
  items: string[];
  /** items without '=' in order, and `key=value` items (e.g. `te=0.5`) */
  positional: string[];
  named: Record<string, string>;
  /** the text as written, for messages */
  raw: string;
}

const RE_EXTRA_NET = new RegExp(`<(${W}+):([^>]+)>`, 'gu');

/** Removes every `<type:args>` tag from the prompt (A1111 does this before any other parsing). */
export function extractExtraNetworks(prompt: string): { prompt: string; tags: ExtraNetworkTag[] } {
  if (typeof prompt !== 'string') throw new TypeError(`prompt must be a string, got ${prompt === null ? 'null' : typeof prompt}`);
  const tags: ExtraNetworkTag[] = [];
  const stripped = prompt.replace(RE_EXTRA_NET, (raw: string, type: string, args: string) => {
    const items = args.split(':');
    const positional: string[] = [];
    const named: Record<string, string> = {};
    for (const item of items) {
      const eq = item.indexOf('=');
      if (eq >= 0) named[item.slice(0, eq)] = item.slice(eq + 1);
      else positional.push(item);
    }
    tags.push({ type, name: positional[0] ?? items[0]!, items, positional, named, raw });
    return '';
  });
  return { prompt: stripped, tags };
}

/**
 * Syntax this engine does not implement yet (so it would be read as plain text): prompt editing
 * `[from:to:when]`, alternation `[a|b]` and composable `AND`. Returned as messages for the caller to show.
 */
export function unsupportedSyntax(prompt: string): string[] {
  const found: string[] = [];
  const unescaped = prompt.replace(/\\./gsu, '');
  if (/\[[^[\]]*:[^[\]]*\]/u.test(unescaped)) found.push('prompt editing [from:to:when] is not supported; it is read as plain text');
  if (/\[[^[\]]*\|[^[\]]*\]/u.test(unescaped)) found.push('alternation [a|b] is not supported; it is read as plain text');
  if (new RegExp(`(?<!${W})AND(?!${W})`, 'u').test(unescaped)) found.push('composable diffusion (AND) is not supported; "AND" is read as a word');
  return found;
}
