// AUTOMATIC1111's handling of the positive prompt before emphasis parsing (modules/prompt_parser.py,
// get_multicond_prompt_list): the prompt is split on the word AND into sub-prompts, and each may end in
// `:weight`, its weight in the guidance sum (composable diffusion):
//   denoised = uncond + cfgScale * sum_i weight_i * (cond_i - uncond)
// A prompt without AND is one sub-prompt, so a trailing `:1.2` on an ordinary prompt is a guidance weight
// in A1111, not text. The negative prompt never goes through this step.
import { encodePrompt, type EncodePromptOptions, type EncodedPrompt } from './chunks.js';
import { PY_SPACE_CLASS } from './normalize.js';
import { asciiDigits, extractExtraNetworks, type ExtraNetworkTag } from './prompt.js';

const W = '[\\p{L}\\p{N}_]';
const S = PY_SPACE_CLASS;
const RE_AND = new RegExp(`(?<!${W})AND(?!${W})`, 'u');
// `^((?:\s|.)*?)(?:\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+)))?\s*$` with Python's Unicode \s and \d.
const RE_WEIGHT = new RegExp(`^([\\s\\S]*?)(?:${S}*:${S}*([-+]?(?:\\p{Nd}+\\.?|\\p{Nd}*\\.\\p{Nd}+)))?${S}*$`, 'u');
export interface SubPrompt {
  text: string;
  weight: number;
}

/** Splits a positive prompt (extra-network tags already removed) into A1111's weighted sub-prompts. */
export function parseComposablePrompt(prompt: string): SubPrompt[] {
  if (typeof prompt !== 'string') throw new TypeError(`prompt must be a string, got ${prompt === null ? 'null' : typeof prompt}`);
  return prompt.split(RE_AND).map((sub) => {
    const m = RE_WEIGHT.exec(sub)!; // always matches: the lazy text group can take everything
    return { text: m[1]!, weight: m[2] === undefined ? 1.0 : Number(asciiDigits(m[2])) };
  });
}

export interface EncodedComposablePrompt {
  parts: Array<SubPrompt & { encoded: EncodedPrompt }>;
  loras: ExtraNetworkTag[];
  extraNetworks: ExtraNetworkTag[];
}

/**
 * The positive prompt in A1111's order: extra-network tags out, AND / `:weight` split, then each sub-prompt
 * through encodePrompt. One part with weight 1 is the ordinary case.
 */
export function encodeComposablePrompt(prompt: string, options: EncodePromptOptions = {}): EncodedComposablePrompt {
  const { prompt: text, tags } = extractExtraNetworks(prompt);
  const parts = parseComposablePrompt(text).map((p) => ({ ...p, encoded: encodePrompt(p.text, options) }));
  return { parts, loras: tags.filter((t) => t.type === 'lora' || t.type === 'lyco'), extraNetworks: tags };
}
