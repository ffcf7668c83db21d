// A1111 prompt syntax, chunking and emphasis. Expected values come from A1111's parse_prompt_attention
// docstring and from working its rules (prompt_parser.py, sd_hijack_clip.py, sd_emphasis.py) by hand;
// token ids come from the golden-checked tokenizer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  parsePromptAttention, extractExtraNetworks, encodePrompt, emptyChunk, flattenChunks, applyEmphasis,
  defaultTokenizer, ClipTokenizer, BOS_ID, EOS_ID, parseComposablePrompt, encodeComposablePrompt,
} from '../dist/tokenizer/index.js';

const tok = defaultTokenizer();
const COMMA = 267;
const f32 = (x) => Math.fround(x);
const ids = (s) => tok.tokenize(s);
/** Expected 77-token chunk from content ids (bos, content, eos padding). */
const chunkOf = (content) => [BOS_ID, ...content, ...new Array(76 - content.length).fill(EOS_ID)];
const tokensOf = (enc) => enc.chunks.map((c) => Array.from(c.tokens));

test('parsePromptAttention: the examples in A1111 docstring', () => {
  assert.deepEqual(parsePromptAttention('normal text'), [['normal text', 1.0]]);
  assert.deepEqual(parsePromptAttention('an (important) word'), [['an ', 1.0], ['important', 1.1], [' word', 1.0]]);
  assert.deepEqual(parsePromptAttention('(unbalanced'), [['unbalanced', 1.1]]);
  assert.deepEqual(parsePromptAttention('\\(literal\\]'), [['(literal]', 1.0]]);
  assert.deepEqual(parsePromptAttention('(unnecessary)(parens)'), [['unnecessaryparens', 1.1]]);
  assert.deepEqual(parsePromptAttention('a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).'), [
    ['a ', 1.0], ['house', 1.5730000000000004], [' ', 1.1], ['on', 1.0], [' a ', 1.1], ['hill', 0.55],
    [', sun, ', 1.1], ['sky', 1.4641000000000006], ['.', 1.1],
  ]);
});

test('parsePromptAttention: brackets, weights, escapes and strays', () => {
  assert.deepEqual(parsePromptAttention('[word]'), [['word', 1 / 1.1]]);
  assert.deepEqual(parsePromptAttention('((word))'), [['word', 1.1 * 1.1]]);
  assert.deepEqual(parsePromptAttention('(word:1.3)'), [['word', 1.3]]);
  assert.deepEqual(parsePromptAttention('(word: 0.5 )'), [['word', 0.5]]);
  assert.deepEqual(parsePromptAttention('(word:-1)'), [['word', -1]]);
  assert.deepEqual(parsePromptAttention('[[a]]'), [['a', (1 / 1.1) * (1 / 1.1)]]);
  assert.deepEqual(parsePromptAttention('([a])'), [['a', (1 / 1.1) * 1.1]]);
  // stray closers and weights without an open bracket stay text
  assert.deepEqual(parsePromptAttention('a)b]c'), [['a)b]c', 1.0]]);
  assert.deepEqual(parsePromptAttention('x:1.2)'), [['x:1.2)', 1.0]]);
  // a weight that never closes is text inside the unclosed bracket
  assert.deepEqual(parsePromptAttention('(a:1.2'), [['a:1.2', 1.1]]);
  assert.deepEqual(parsePromptAttention('(a:b)'), [['a:b', 1.1]]);
  // escapes; a lone backslash is dropped
  assert.deepEqual(parsePromptAttention('\\\\ \\) \\['), [['\\ ) [', 1.0]]);
  assert.deepEqual(parsePromptAttention('x\\y'), [['xy', 1.0]]);
  assert.deepEqual(parsePromptAttention(''), [['', 1.0]]);
  // Python's \d is any decimal digit: fullwidth digits are a valid weight
  assert.deepEqual(parsePromptAttention('(w:\uff11.\uff15)'), [['w', 1.5]]);
  // A1111 fails on float('1.2.3'); here a RangeError that quotes it
  assert.throws(() => parsePromptAttention('(a:1.2.3)'), { name: 'RangeError', message: /1\.2\.3/ });
  assert.throws(() => parsePromptAttention(7), { name: 'TypeError', message: /prompt must be a string/ });
});

test('parsePromptAttention: BREAK', () => {
  assert.deepEqual(parsePromptAttention('a BREAK b'), [['a', 1.0], ['BREAK', -1], ['b', 1.0]]);
  assert.deepEqual(parsePromptAttention('a\nBREAK\tb'), [['a', 1.0], ['BREAK', -1], ['b', 1.0]]);
  assert.deepEqual(parsePromptAttention('BREAKfast break BREAK_'), [['BREAKfast break BREAK_', 1.0]]);
  assert.deepEqual(parsePromptAttention('x,BREAK,y'), [['x,', 1.0], ['BREAK', -1], [',y', 1.0]]);
  // inside brackets the BREAK marker is multiplied too, so it is no longer a break (A1111 quirk)
  assert.deepEqual(parsePromptAttention('(a BREAK b)'), [['a', 1.1], ['BREAK', -1.1], ['b', 1.1]]);
});

test('extractExtraNetworks: <lora:...> and other tags are taken out and reported', () => {
  const r = extractExtraNetworks('<lora:add_detail:0.7> a cat, <hypernet:h:1:te=0.5>x');
  assert.equal(r.prompt, ' a cat, x');
  assert.equal(r.tags.length, 2);
  assert.deepEqual(r.tags[0], {
    type: 'lora', name: 'add_detail', items: ['add_detail', '0.7'], positional: ['add_detail', '0.7'], named: {}, raw: '<lora:add_detail:0.7>',
  });
  assert.deepEqual(r.tags[1].named, { te: '0.5' });
  assert.equal(extractExtraNetworks('<not a tag> <:x>').tags.length, 0);
});

test('encodePrompt: empty prompt is one chunk of bos + eos padding with weights 1', () => {
  const e = encodePrompt('');
  assert.equal(e.chunks.length, 1);
  assert.deepEqual(Array.from(e.chunks[0].tokens), chunkOf([]));
  assert.deepEqual(Array.from(e.chunks[0].weights), new Array(77).fill(1));
  assert.deepEqual(e.chunks[0], emptyChunk());
  assert.equal(e.tokenCount, 0);
});

test('encodePrompt: plain prompts give the golden 77-token ids; long ones keep every token', () => {
  const golden = JSON.parse(readFileSync(new URL('./fixtures/clip-tokenizer/golden.json', import.meta.url), 'utf8')).results;
  let checked = 0;
  let long = 0;
  for (const r of golden) {
    if (/[()[\]\\:<>]|BREAK/.test(r.prompt)) continue; // A1111 syntax changes these on purpose
    const e = encodePrompt(r.prompt);
    const content = r.ids.slice(1, -1);
    if (content.length <= 75) assert.deepEqual(tokensOf(e), [r.truncated77], r.prompt);
    else long++;
    const flat = e.chunks.flatMap((c) => Array.from(c.tokens.subarray(1, 76)).filter((t) => t !== EOS_ID));
    assert.deepEqual(flat, content, r.prompt);
    assert.ok(e.chunks.every((c) => c.weights.every((w) => w === 1)));
    checked++;
  }
  assert.ok(checked > 200 && long >= 10, `${checked} prompts, ${long} long`);
});

test('encodePrompt: weights follow the runs; runs are tokenized separately', () => {
  const e = encodePrompt('a (red:1.5) [cat]');
  const content = [...ids('a '), ...ids('red'), ...ids(' '), ...ids('cat')];
  assert.deepEqual(tokensOf(e), [chunkOf(content)]);
  const w = Array.from(e.chunks[0].weights);
  assert.deepEqual(w.slice(0, 4), [1, 1, f32(1.5), f32(1 / 1.1)]);
  assert.ok(w.slice(4).every((x) => x === 1));
  // BPE never joins across a bracket: "(wo)rd" is "wo" + "rd", not "word"
  assert.deepEqual(tokensOf(encodePrompt('(wo)rd')), [chunkOf([...ids('wo'), ...ids('rd')])]);
  assert.notDeepEqual(ids('word'), [...ids('wo'), ...ids('rd')]);
});

test('encodePrompt: 75 tokens per chunk; token count as A1111 reports it', () => {
  const cat = ids('cat');
  assert.equal(cat.length, 1);
  const e75 = encodePrompt('cat '.repeat(75));
  assert.deepEqual(tokensOf(e75), [chunkOf(new Array(75).fill(cat[0]))]);
  assert.equal(e75.tokenCount, 75);
  const e = encodePrompt('cat '.repeat(100));
  assert.deepEqual(tokensOf(e), [chunkOf(new Array(75).fill(cat[0])), chunkOf(new Array(25).fill(cat[0]))]);
  assert.equal(e.tokenCount, 100);
  const { tokens, weights } = flattenChunks(e.chunks);
  assert.equal(tokens.length, 154);
  assert.equal(weights.length, 154);
});

test('encodePrompt: text after a comma within the last 20 tokens moves to the next chunk', () => {
  const [c] = ids('cat');
  const [d] = ids('dog');
  const build = (n) => `${'cat '.repeat(n)}, ${'dog '.repeat(80 - n)}`;
  // comma at index 70: chunk 1 = 70 cats + comma, chunk 2 = all 10 dogs
  assert.deepEqual(tokensOf(encodePrompt(build(70))), [
    chunkOf([...new Array(70).fill(c), COMMA]), chunkOf(new Array(10).fill(d)),
  ]);
  // comma at 55: 75 - 55 = 20, still within reach
  assert.deepEqual(tokensOf(encodePrompt(build(55))), [
    chunkOf([...new Array(55).fill(c), COMMA]), chunkOf(new Array(25).fill(d)),
  ]);
  // comma at 54: 21 back, too far: a plain split at 75
  const plain = [...new Array(54).fill(c), COMMA, ...new Array(26).fill(d)];
  assert.deepEqual(tokensOf(encodePrompt(build(54))), [chunkOf(plain.slice(0, 75)), chunkOf(plain.slice(75))]);
  // the rule can be turned off
  const off = [...new Array(70).fill(c), COMMA, ...new Array(10).fill(d)];
  assert.deepEqual(tokensOf(encodePrompt(build(70), { commaPaddingBacktrack: 0 })), [chunkOf(off.slice(0, 75)), chunkOf(off.slice(75))]);
  // a comma arriving as the 76th token opens the next chunk (and no earlier comma is remembered)
  const e = encodePrompt(`${'cat '.repeat(75)}, dog`);
  assert.deepEqual(tokensOf(e), [chunkOf(new Array(75).fill(c)), chunkOf([COMMA, d])]);
  // weights travel with the moved tokens
  const w = encodePrompt(`${'cat '.repeat(70)}, (dog:1.25) dog dog dog dog dog`);
  assert.deepEqual(Array.from(w.chunks[1].weights.subarray(0, 4)), [1, 1.25, 1, 1]);
});

test('encodePrompt: BREAK closes the current chunk', () => {
  const e = encodePrompt('a cat BREAK a dog');
  assert.deepEqual(tokensOf(e), [chunkOf(ids('a cat')), chunkOf(ids('a dog'))]);
  assert.equal(e.tokenCount, 75 + 2);
  assert.deepEqual(tokensOf(encodePrompt('a cat BREAK')), [chunkOf(ids('a cat'))]);
  assert.deepEqual(tokensOf(encodePrompt('BREAK')), [chunkOf([])]);
  assert.deepEqual(tokensOf(encodePrompt('a BREAK BREAK b')), [chunkOf(ids('a')), chunkOf([]), chunkOf(ids('b'))]);
});

test('encodePrompt: loras are returned, not dropped silently; other options', () => {
  const e = encodePrompt('<lora:film:0.6> photo of a cat, <lyco:x> [a:b:0.5] AND dog');
  assert.deepEqual(e.loras.map((l) => [l.type, l.name]), [['lora', 'film'], ['lyco', 'x']]);
  assert.equal(e.extraNetworks.length, 2);
  assert.equal(e.unsupported.length, 2);
  assert.deepEqual(encodePrompt('cat').unsupported, []);
  // extraNetworks 'keep' (A1111's negative prompt): the tag stays text but is still reported
  const keep = encodePrompt('blurry <lora:x:1>', { extraNetworks: 'keep' });
  assert.deepEqual(tokensOf(keep), [chunkOf([...ids('blurry '), ...ids('<lora:x:1>')])]);
  assert.equal(keep.loras.length, 1);
  // emphasis 'none': brackets are plain text with weight 1
  const n = encodePrompt('(cat)', { emphasis: 'none' });
  assert.deepEqual(tokensOf(n), [chunkOf(ids('(cat)'))]);
  assert.ok(n.chunks[0].weights.every((w) => w === 1));
  // another tokenizer instance (slow variant) is honoured
  const slow = encodePrompt('桜', { tokenizer: new ClipTokenizer({ variant: 'slow' }) });
  assert.deepEqual(tokensOf(slow), [chunkOf(new ClipTokenizer({ variant: 'slow' }).tokenize('桜'))]);
});

test('encodePrompt: bad input names the field', () => {
  assert.throws(() => encodePrompt(undefined), { name: 'TypeError', message: /prompt must be a string, got undefined/ });
  assert.throws(() => encodePrompt({}), { name: 'TypeError', message: /prompt must be a string/ });
  assert.throws(() => encodePrompt('a', { emphasis: 'loud' }), { name: 'RangeError', message: /options\.emphasis/ });
  assert.throws(() => encodePrompt('a', { commaPaddingBacktrack: 80 }), { name: 'RangeError', message: /options\.commaPaddingBacktrack/ });
  assert.throws(() => encodePrompt('a', { commaPaddingBacktrack: 1.5 }), { name: 'RangeError', message: /options\.commaPaddingBacktrack/ });
  assert.throws(() => encodePrompt('a', { extraNetworks: 'drop' }), { name: 'RangeError', message: /options\.extraNetworks/ });
  assert.throws(() => encodePrompt('a', null), { name: 'TypeError', message: /options must be an object/ });
});

test('parseComposablePrompt: AND and a trailing :weight (A1111 get_multicond_prompt_list)', () => {
  const P = (s) => parseComposablePrompt(s).map(({ text, weight }) => [text, weight]);
  assert.deepEqual(P('a cat'), [['a cat', 1]]);
  assert.deepEqual(P('a cat:1.5'), [['a cat', 1.5]]);
  assert.deepEqual(P('a cat : 1.5  '), [['a cat', 1.5]]);
  assert.deepEqual(P('a cat  '), [['a cat', 1]]); // trailing space goes with the optional weight group
  assert.deepEqual(P('a:1.5:2'), [['a:1.5', 2]]);
  assert.deepEqual(P('a:.5'), [['a', 0.5]]);
  assert.deepEqual(P('a:5.'), [['a', 5]]);
  assert.deepEqual(P('a:-1'), [['a', -1]]);
  assert.deepEqual(P('(x:1.2)'), [['(x:1.2)', 1]]);
  assert.deepEqual(P('1.5'), [['1.5', 1]]);
  assert.deepEqual(P('a cat AND a dog:0.5'), [['a cat', 1], [' a dog', 0.5]]);
  assert.deepEqual(P('ANDROID and ANDY AND x'), [['ANDROID and ANDY', 1], [' x', 1]]);
  assert.deepEqual(P('a\nb:3\n'), [['a\nb', 3]]);
  assert.throws(() => parseComposablePrompt(1), { name: 'TypeError', message: /prompt must be a string/ });
  // tags come out first, so a weight before a tag still counts, as in A1111
  const e = encodeComposablePrompt('a cat:1.2 <lora:x:1>');
  assert.deepEqual(e.parts.map((p) => [p.text, p.weight]), [['a cat', 1.2]]);
  assert.deepEqual(tokensOf(e.parts[0].encoded), [chunkOf(ids('a cat'))]);
  assert.deepEqual(e.loras.map((l) => l.name), ['x']);
});

/** Straight float64 restatement of A1111's 'Original' emphasis, per 77-row chunk. */
function emphasisRef(z, dim, w) {
  const out = new Float64Array(z.length);
  for (let c = 0; c < w.length / 77; c++) {
    let before = 0;
    let after = 0;
    for (let r = 0; r < 77; r++) {
      for (let i = 0; i < dim; i++) {
        const k = (c * 77 + r) * dim + i;
        before += z[k];
        out[k] = z[k] * w[c * 77 + r];
        after += out[k];
      }
    }
    for (let k = c * 77 * dim; k < (c + 1) * 77 * dim; k++) out[k] *= before / after;
  }
  return out;
}

test('applyEmphasis: scale by weight, then restore each chunk mean', () => {
  const dim = 8;
  let s = 12345;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 0.5;
  const z = Float32Array.from({ length: 2 * 77 * dim }, rnd);
  const { weights } = flattenChunks(encodePrompt(`${'(cat:1.4) [dog] '.repeat(50)}`).chunks);
  assert.equal(weights.length, 154);
  const got = applyEmphasis(z, dim, weights);
  const ref = emphasisRef(z, dim, weights);
  for (let k = 0; k < z.length; k++) assert.ok(Math.abs(got[k] - ref[k]) <= 1e-6 * (1 + Math.abs(ref[k])), `at ${k}`);
  // each chunk keeps its own mean
  for (let c = 0; c < 2; c++) {
    const mean = (a) => a.subarray(c * 77 * dim, (c + 1) * 77 * dim).reduce((x, y) => x + y, 0) / (77 * dim);
    assert.ok(Math.abs(mean(got) - mean(z)) < 1e-6);
  }
  // hand example: all ones, one token at weight 2 -> ratio 77/78
  const ones = new Float32Array(77).fill(1);
  const w = new Float32Array(77).fill(1);
  w[1] = 2;
  const h = applyEmphasis(ones, 1, w);
  assert.equal(h[0], f32(f32(77 / 78)));
  assert.equal(h[1], f32(2 * f32(77 / 78)));
  // weights of 1 change nothing; z itself is never modified
  assert.deepEqual(applyEmphasis(z, dim, new Float32Array(154).fill(1)), z);
  assert.deepEqual(applyEmphasis(z, dim, weights, 'ignore'), z);
  const noNorm = applyEmphasis(ones, 1, w, 'no-norm');
  assert.deepEqual([noNorm[0], noNorm[1], noNorm[2]], [1, 2, 1]);
  assert.equal(ones[1], 1);
});

test('applyEmphasis: shape and type errors', () => {
  const w = new Float32Array(77).fill(1);
  assert.throws(() => applyEmphasis([1, 2], 1, w), { name: 'TypeError', message: /z must be a Float32Array/ });
  assert.throws(() => applyEmphasis(new Float32Array(77), 1, [1]), { name: 'TypeError', message: /weights/ });
  assert.throws(() => applyEmphasis(new Float32Array(76), 1, new Float32Array(76)), { name: 'RangeError', message: /multiple of 77/ });
  assert.throws(() => applyEmphasis(new Float32Array(77), 2, w), { name: 'RangeError', message: /z\.length/ });
  assert.throws(() => applyEmphasis(new Float32Array(77), 0, w), { name: 'RangeError', message: /dim/ });
  assert.throws(() => applyEmphasis(new Float32Array(77), 1, w, 'x'), { name: 'RangeError', message: /mode/ });
});
