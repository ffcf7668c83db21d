// Where Node's Unicode data (17 in Node 20.20) and the reference tokenizer's disagree. golden.json comes
// from Hugging Face `tokenizers` (Rust): its regex tables (Oniguruma) stop at Unicode 16 and its NFC tables
// (unicode-normalization-alignments) are older still. Both lists were found by running every code point,
// and every combining mark and canonical pair in several contexts, through the Rust tokenizer (npm
// `tokenizers` 0.23.2 set up as CLIPTokenizerFast, which reproduces golden.json exactly) and comparing
// ids; with them applied no probe differs. Rust's lowercasing and whitespace agree with Node already.

/** Letters and digits newer than the reference's regex tables: there they are unassigned symbols. */
export const NEWER_LETTERS_AND_DIGITS =
  '\\u{88F}\\u{C5C}\\u{CDC}\\u{A7CE}-\\u{A7CF}\\u{A7F1}\\u{10940}-\\u{10959}\\u{10EC5}-\\u{10EC7}' +
  '\\u{11DB0}-\\u{11DDB}\\u{11DE0}-\\u{11DE9}\\u{16EA0}-\\u{16EB8}\\u{16EBB}-\\u{16ED3}\\u{16FF2}-\\u{16FF6}\\u{187F8}-\\u{187FF}' +
  '\\u{18D09}-\\u{18D1E}\\u{18D80}-\\u{18DF2}\\u{1E6C0}-\\u{1E6DE}\\u{1E6E0}-\\u{1E6E2}\\u{1E6E4}-\\u{1E6E5}\\u{1E6E7}-\\u{1E6ED}' +
  '\\u{1E6F0}-\\u{1E6F4}\\u{1E6FE}-\\u{1E6FF}\\u{2B73A}-\\u{2B73F}\\u{2CEA2}-\\u{2CEAD}\\u{323B0}-\\u{33479}';

// Characters the reference's NFC does not know: combining marks it gives combining class 0 (so marks are
// not reordered across them) and the first halves of canonical pairs it does not compose. Normalizing the
// text between them separately, and leaving them alone, is what an unknown starter amounts to.
const NFC_OPAQUE =
  '\\u{7FD}\\u{897}-\\u{89F}\\u{8CA}-\\u{8D3}\\u{9FE}\\u{C3C}\\u{D3B}-\\u{D3C}\\u{EBA}\\u{1715}\\u{1ABF}-\\u{1ADD}' +
  '\\u{1AE0}-\\u{1AEB}\\u{1DF6}-\\u{1DFA}\\u{A82C}\\u{105D2}\\u{105DA}\\u{10D24}-\\u{10D27}\\u{10D69}-\\u{10D6D}' +
  '\\u{10EAB}-\\u{10EAC}\\u{10EFA}-\\u{10EFB}\\u{10EFD}-\\u{10EFF}\\u{10F46}-\\u{10F50}\\u{10F82}-\\u{10F85}\\u{11070}' +
  '\\u{1133B}\\u{11382}\\u{11384}\\u{1138B}\\u{11390}\\u{113C2}\\u{113CE}-\\u{113D0}\\u{1145E}\\u{11839}-\\u{1183A}' +
  '\\u{11935}\\u{1193D}-\\u{1193E}\\u{11943}\\u{119E0}\\u{11A34}\\u{11A47}\\u{11A99}\\u{11D42}\\u{11D44}-\\u{11D45}' +
  '\\u{11D97}\\u{11F41}-\\u{11F42}\\u{1611E}\\u{16129}\\u{1612F}\\u{16D63}\\u{16D67}\\u{16FF0}-\\u{16FF1}\\u{1E08F}' +
  '\\u{1E130}-\\u{1E136}\\u{1E2AE}\\u{1E2EC}-\\u{1E2EF}\\u{1E4EC}-\\u{1E4EF}\\u{1E5EE}-\\u{1E5EF}\\u{1E6E3}\\u{1E6E6}' +
  '\\u{1E6EE}-\\u{1E6EF}\\u{1E6F5}';
const HAS_OPAQUE = new RegExp(`[${NFC_OPAQUE}]`, 'u');
const SPLIT_OPAQUE = new RegExp(`([${NFC_OPAQUE}])`, 'u');

/** NFC as the reference computes it. */
export function nfcReference(s: string): string {
  if (!HAS_OPAQUE.test(s)) return s.normalize('NFC');
  return s.split(SPLIT_OPAQUE).map((part) => part.normalize('NFC')).join('');
}
