// Model detection, key layouts, the conversion policy and the convert/info commands.
import test from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { readGguf, readTensorBytes, writeSafetensors, ModelFileError } from '../dist/formats/index.js';
import { toFloat32 } from '../dist/formats/half.js';
import { detectModel, requireSd1 } from '../dist/model/detect.js';
import { canonicalName, normalizeTable, isNonWeightKey, SDCPP_UNUSED_KEYS } from '../dist/model/keys.js';
import { buildTensor, fullSizeKeys } from '../dist/model/formula.js';
import { convertModel, planConversion } from '../dist/model/convert.js';
import { openModel } from '../dist/model/open.js';
import { runInfo, modelInfo } from '../dist/cli/info.js';
import { runConvert } from '../dist/cli/convert.js';
import { FIX, keys, keyByName, sha256, sharedPath, tmpDir, refQuantize, refQuantizeQ8_0, refQuantizeQ4_0 } from './formats-helpers.mjs';

const tiny = keys.tensors.map((k) => ({ name: k.name, shape: k.shape }));
const replace = (list, from, to) => list.map((t) => (t.name === from ? { ...t, ...to } : t));

test('detects the tiny SD 1.5 model and its widths from names and shapes', () => {
  const d = detectModel(tiny);
  assert.equal(d.family, 'sd1');
  assert.equal(d.variant, 'txt2img');
  assert.equal(d.complete, true);
  assert.deepEqual(d.unet, { inChannels: 4, outChannels: 4, modelChannels: 32, channelMult: [1, 2, 4, 4], timeEmbedDim: 128, contextDim: 128, numResBlocks: 2, transformerDepth: 1 });
  assert.deepEqual(d.clip, { hidden: 128, layers: 2, heads: 2, mlp: 512, vocab: 49408, positions: 77 });
  assert.deepEqual(d.vae, { ch: 32, channelMult: [1, 2, 4, 4], zChannels: 4, embedDim: 4, encoder: true, decoder: true });
});

test('detects full-size SD 1.5 shapes (1145 keys, 859.5M UNet parameters)', () => {
  const full = fullSizeKeys(keys.tensors);
  assert.equal(full.length, 1145);
  const params = (p) => full.filter((k) => k.name.startsWith(p) && k.rule !== 'special').reduce((a, k) => a + k.shape.reduce((x, y) => x * y, 1), 0);
  assert.equal(params('model.diffusion_model.'), 859520964);
  assert.equal(params('first_stage_model.'), 83653863);
  assert.equal(params('cond_stage_model.'), 123060480);
  const d = detectModel(full);
  assert.equal(d.family, 'sd1');
  assert.equal(d.unet.modelChannels, 320);
  assert.equal(d.unet.contextDim, 768);
  assert.deepEqual(d.clip, { hidden: 768, layers: 12, heads: 12, mlp: 3072, vocab: 49408, positions: 77 });
  assert.equal(d.vae.ch, 128);
});

test('inpainting UNet (9 input channels) is SD 1.x and accepted', () => {
  const d = detectModel(replace(tiny, 'model.diffusion_model.input_blocks.0.0.weight', { shape: [32, 9, 3, 3] }));
  assert.equal(d.family, 'sd1');
  assert.equal(d.variant, 'inpaint');
  assert.equal(d.complete, true);
  assert.match(d.message, /inpainting/);
});

test('specific messages for SD 2.x, SDXL, LoRA, VAE-only, pix2pix, diffusers and unrelated files', () => {
  const sd2 = tiny.map((t) => ({ ...t, name: t.name.replace('cond_stage_model.transformer.text_model.', 'cond_stage_model.model.') }));
  assert.equal(detectModel(sd2).family, 'sd2');
  assert.match(detectModel(sd2).message, /SD 2\.x/);
  const ctx1024 = tiny.filter((t) => !t.name.startsWith('cond_stage_model.')).map((t) => (/attn2\.to_[kv]\.weight$/.test(t.name) ? { ...t, shape: [t.shape[0], 1024] } : t));
  assert.equal(detectModel(ctx1024).family, 'sd2');
  const xl = [...tiny, { name: 'conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight', shape: [49408, 768] }];
  assert.match(detectModel(xl).message, /SDXL/);
  const lora = [{ name: 'lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight', shape: [4, 320, 1, 1] }, { name: 'lora_unet_down_blocks_0_attentions_0_proj_in.alpha', shape: [] }];
  assert.equal(detectModel(lora).family, 'lora');
  assert.match(detectModel(lora).message, /LoRA/);
  const vae = tiny.filter((t) => t.name.startsWith('first_stage_model.'));
  assert.equal(detectModel(vae).family, 'vae');
  assert.match(detectModel(vae).message, /VAE only \(encoder \+ decoder\)/);
  const bareVae = vae.map((t) => ({ ...t, name: t.name.slice('first_stage_model.'.length) }));
  assert.equal(detectModel(bareVae).family, 'vae');
  const p2p = replace(tiny, 'model.diffusion_model.input_blocks.0.0.weight', { shape: [32, 8, 3, 3] });
  assert.match(detectModel(p2p).message, /8 input channels \(instruct-pix2pix\)/);
  assert.match(detectModel([{ name: 'down_blocks.0.resnets.0.conv1.weight', shape: [320, 320, 3, 3] }]).message, /diffusers/);
  assert.match(detectModel([{ name: 'tok_embeddings.weight', shape: [10, 10] }]).message, /not a Stable Diffusion model/);
  const noClip = tiny.filter((t) => !t.name.startsWith('cond_stage_model.'));
  assert.equal(detectModel(noClip).complete, false);
  assert.match(detectModel(noClip).message, /missing: text encoder/);
});

test('old CLIP key spelling (no text_model.) maps to the original layout', () => {
  assert.equal(canonicalName('cond_stage_model.transformer.encoder.layers.0.mlp.fc1.weight'), 'cond_stage_model.transformer.text_model.encoder.layers.0.mlp.fc1.weight');
  assert.equal(canonicalName('model.diffusion_model.out.2.weight'), 'model.diffusion_model.out.2.weight');
  const old = tiny.map((t) => ({ ...t, name: t.name.replace('transformer.text_model.', 'transformer.') }));
  assert.equal(detectModel(old).complete, true);
  for (const k of SDCPP_UNUSED_KEYS) assert.ok(isNonWeightKey(k), k);
  assert.equal(isNonWeightKey('model.diffusion_model.out.2.weight'), false);
});

test('files: the sd.cpp GGUF and model-vae.ckpt are VAE-only; requireSd1 says why they cannot generate', () => {
  const g = openModel(join(FIX, 'tiny-vae.sdcpp-q4_0.gguf'));
  assert.equal(g.detection.family, 'vae');
  assert.deepEqual(g.detection.vae, { ch: 32, channelMult: [1, 2, 4, 4], zChannels: 4, embedDim: 4, encoder: true, decoder: false });
  assert.throws(() => requireSd1(g.table), (e) => e instanceof ModelFileError && /VAE only \(encoder\)/.test(e.message));
  assert.throws(() => openModel(join(FIX, 'tiny-vae.sdcpp-q4_0.gguf'), { requireComplete: true }), /cannot be used for generation/);
  const vaeCkpt = sharedPath('tiny-sd15/model-vae.ckpt');
  if (vaeCkpt) assert.equal(openModel(vaeCkpt).detection.family, 'vae');
});

const f32Cache = new Map();
const formulaF32 = (k) => {
  if (!f32Cache.has(k.name)) f32Cache.set(k.name, new Float32Array(buildTensor(k, { float: 'f32' }).data.buffer));
  return f32Cache.get(k.name);
};

/** The tiny model as an f16 safetensors file (formula values), written through our writer. */
let builtTiny;
function writeTinySafetensors(dir) {
  const file = join(dir, 'tiny.safetensors');
  builtTiny ??= keys.tensors.map((k) => buildTensor(k));
  writeSafetensors(file, builtTiny, undefined, { order: 'aligned' });
  return file;
}

test('planConversion states the policy per tensor', () => {
  const table = { path: 'x', tensors: keys.tensors.map((k) => ({ name: k.name, shape: k.shape, dtype: k.dtype === 'F32' ? 'f16' : k.dtype.toLowerCase(), offset: 0, byteLength: 0 })) };
  const { plan, dropped } = planConversion(table, 'q8_0');
  assert.equal(dropped.length, 15);
  const by = new Map(plan.map((p) => [p.name, p]));
  const at = (n) => by.get(n).outDtype;
  assert.equal(at('model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight'), 'q8_0');
  assert.equal(at('model.diffusion_model.input_blocks.1.0.in_layers.2.weight'), 'q8_0'); // 3x3 conv, K = 32*9
  assert.deepEqual(by.get('model.diffusion_model.input_blocks.1.0.in_layers.2.weight').storedShape, [32, 288]);
  assert.equal(at('model.diffusion_model.input_blocks.0.0.weight'), 'f16'); // K = 4*9 = 36
  assert.equal(at('model.diffusion_model.time_embed.0.weight'), 'f16');
  assert.equal(at('cond_stage_model.transformer.text_model.embeddings.token_embedding.weight'), 'f16');
  assert.equal(at('model.diffusion_model.out.0.weight'), 'f32'); // GroupNorm scale
  assert.equal(at('model.diffusion_model.out.2.bias'), 'f32');
  assert.equal(at('first_stage_model.quant_conv.weight'), 'f16'); // K = 8
});

test('convert tiny model to q8_0 / q4_0 / f16 GGUF: ggml layout rules, policy, values, detection', (t) => {
  const dir = tmpDir(t);
  const src = writeTinySafetensors(dir);
  for (const type of ['q8_0', 'q4_0', 'f16']) {
    const out = join(dir, `tiny.${type}.gguf`);
    const r = convertModel(src, out, { type, quantize: refQuantize });
    assert.equal(r.tensors, 970);
    assert.equal(r.dropped, 15);
    const raw = readGguf(out);
    // ggml's reader: offsets packed in info order at the running sum of padded sizes, ne[0] whole blocks, <= 4 dims.
    let expect = 0;
    raw.gguf.infos.forEach((info, i) => {
      assert.equal(info.relOffset, expect, info.name);
      expect += Math.ceil(raw.tensors[i].byteLength / 32) * 32;
      assert.ok(info.ne.length >= 1 && info.ne.length <= 4);
      if (raw.tensors[i].dtype.startsWith('q')) assert.equal(info.ne[0] % 32, 0, info.name);
      assert.ok(info.name.length < 160);
    });
    assert.equal(raw.fileSize, raw.gguf.dataOffset + expect);
    assert.equal(raw.metadata['general.architecture'], 'sdnode-sd1');
    const { table, detection } = openModel(out, { requireComplete: true });
    assert.deepEqual(detection.unet, detectModel(tiny).unet);
    for (const e of table.tensors) {
      const k = keyByName.get(e.name);
      assert.deepEqual(e.shape, k.shape, `${type} ${e.name} torch shape restored`);
      const bytes = readTensorBytes(table, e);
      const f32 = formulaF32(k);
      if (e.dtype === 'q8_0') assert.deepEqual(Buffer.from(refQuantizeQ8_0(f32)), bytes, e.name);
      else if (e.dtype === 'q4_0') assert.deepEqual(Buffer.from(refQuantizeQ4_0(f32)), bytes, e.name);
      else if (e.dtype === 'f16') assert.equal(sha256(bytes), k.sha256_f16, e.name);
      else assert.deepEqual(toFloat32('f32', bytes), f32, e.name);
    }
    const hist = Object.fromEntries(Object.entries(r.histogram).sort());
    // 602 rank-1 tensors (166 norm scales, 166 norm shifts, 270 biases) stay f32.
    if (type === 'f16') assert.deepEqual(hist, { f16: 368, f32: 602 });
    else assert.deepEqual(hist, { f16: 9, f32: 602, [type]: 359 });
  }
});

test('convert refuses: q types without a quantizer, re-quantizing, non-SD files', (t) => {
  const dir = tmpDir(t);
  assert.throws(() => convertModel(join(FIX, 'legacy-small.ckpt'), join(dir, 'a.gguf'), { type: 'q8_0' }), TypeError);
  assert.throws(() => convertModel(join(FIX, 'tiny-vae.sdcpp-q4_0.gguf'), join(dir, 'b.gguf'), { type: 'q8_0', quantize: refQuantize }), /already q4_0/);
  assert.equal(existsSync(join(dir, 'b.gguf')), false, 'no partial output');
  assert.throws(() => convertModel(join(FIX, 'ggml-written.gguf'), join(dir, 'c.gguf'), { type: 'f16' }), /cannot be converted: it is UNet keys found but/);
  assert.throws(() => convertModel(join(FIX, 'legacy-small.ckpt'), join(dir, 'd.gguf'), { type: 'q5' }), RangeError);
});

test('convert a torch checkpoint (model-vae.ckpt, fp32) to f16', { skip: !sharedPath('tiny-sd15/model-vae.ckpt') }, (t) => {
  const out = join(tmpDir(t), 'vae.gguf');
  const r = convertModel(sharedPath('tiny-sd15/model-vae.ckpt'), out, { type: 'f16' });
  assert.equal(r.tensors, 248);
  const { table } = openModel(out);
  for (const e of table.tensors) {
    const k = keyByName.get(e.name);
    const bytes = readTensorBytes(table, e);
    if (e.dtype === 'f16') assert.equal(sha256(bytes), k.sha256_f16, e.name);
    else assert.deepEqual(toFloat32('f32', bytes), new Float32Array(buildTensor(k, { float: 'f32' }).data.buffer), e.name);
  }
});

test('native quantize (when built) is byte-identical to the reference transcription', async () => {
  let quantize;
  try { ({ quantize } = await import('../dist/quant.js')); quantize(new Float32Array(32), 'q8_0'); } catch { quantize = undefined; }
  if (!quantize) return;
  for (const name of ['model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight', 'first_stage_model.encoder.down.1.block.0.norm2.weight']) {
    const f32 = new Float32Array(buildTensor(keyByName.get(name), { float: 'f32' }).data.buffer);
    assert.deepEqual(Buffer.from(quantize(f32, 'q8_0')), Buffer.from(refQuantizeQ8_0(f32)), name);
    assert.deepEqual(Buffer.from(quantize(f32, 'q4_0')), Buffer.from(refQuantizeQ4_0(f32)), name);
  }
});

test('sdnode info / convert commands', async (t) => {
  const dir = tmpDir(t);
  const lines = [];
  assert.equal(runInfo([join(FIX, 'tiny-vae.sdcpp-q4_0.gguf')], (s) => lines.push(s)), 0);
  assert.match(lines.join('\n'), /format: +gguf/);
  assert.match(lines.join('\n'), /VAE only/);
  assert.match(lines.join('\n'), /q4_0 +22 tensors/);
  const info = modelInfo(join(FIX, 'foreign-class.ckpt'));
  assert.equal(info.tensors, 12);
  assert.equal(info.dtypes.f32.count, 10);
  const errs = [];
  assert.equal(runInfo([join(dir, 'nope.gguf')], () => {}, (s) => errs.push(s)), 1);
  assert.equal(runInfo([], () => {}, (s) => errs.push(s)), 2);
  assert.equal(await runConvert([join(FIX, 'legacy-small.ckpt'), '--type', 'q3'], { err: (s) => errs.push(s) }), 2);
  assert.match(errs.at(-1), /--type must be one of/);
  const src = writeTinySafetensors(dir);
  const out = [];
  assert.equal(await runConvert([src, '--type=q8_0', '-o', join(dir, 'o.gguf'), '--quiet'], { quantize: refQuantize, out: (s) => out.push(s) }), 0);
  assert.match(out[0], /SD 1\.x .*970 tensors/);
  assert.equal(await runConvert([src, '--type', 'q8_0', '-o', join(dir, 'o.gguf')], { quantize: refQuantize, err: (s) => errs.push(s) }), 1);
  assert.match(errs.at(-1), /exists/);
  const j = [];
  assert.equal(runInfo([join(dir, 'o.gguf'), '--json'], (s) => j.push(s)), 0);
  const parsed = JSON.parse(j[0]);
  assert.equal(parsed.complete, true);
  assert.equal(parsed.loadBytes.stored, parsed.dtypes.q8_0.bytes + parsed.dtypes.f16.bytes + parsed.dtypes.f32.bytes);
});

test('normalizeTable rejects a malformed sdnode.torch_shapes entry', () => {
  const table = { path: 'f.gguf', metadata: { 'sdnode.torch_shapes': ['a=2,3'] }, tensors: [{ name: 'a', shape: [5], dtype: 'f32', offset: 0, byteLength: 20 }] };
  assert.throws(() => normalizeTable(table), /does not match stored/);
});
