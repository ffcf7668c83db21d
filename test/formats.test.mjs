// Model-file readers and writers against independent references: the tiny-sd15 weight formula
// (keys.json sha256 per tensor), the JSON that ggml's own reader produced for the GGUF fixtures,
// and byte-exact round trips through sdnode's writers.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import {
  readTensorTable, readTensorBytes, readGguf, writeGguf, writeSafetensors, readSafetensors, readCkpt, writeTorchZip,
} from '../dist/formats/index.js';
import { toFloat32, toF16Bytes } from '../dist/formats/half.js';
import { buildTensor, scheduleBuffers } from '../dist/model/formula.js';
import { FIX, keys, keyByName, sha256, sharedPath, tmpDir, bigIntValues, refQuantizeQ8_0, refQuantizeQ4_0 } from './formats-helpers.mjs';

/** Checks a float tensor read from a file against the formula: narrowing to f16 must give keys.json's sha256. */
function assertFormulaValues(table, t) {
  const k = keyByName.get(t.name);
  assert.ok(k, `${t.name} is in keys.json`);
  assert.deepEqual(t.shape, k.shape, `${t.name} shape`);
  const bytes = readTensorBytes(table, t);
  if (k.rule === 'special') {
    assert.equal(sha256(bytes), k.sha256, `${t.name} special value bytes`);
    return;
  }
  const vals = toFloat32(t.dtype, bytes);
  const h = toF16Bytes(vals);
  // f32 copies must be the f16 values widened exactly: narrowing loses nothing.
  assert.deepEqual(toFloat32('f16', h), vals, `${t.name} holds f16-exact values`);
  assert.equal(sha256(h), k.sha256_f16, `${t.name} values equal the formula`);
}

test('foreign-class.ckpt: 12 formula tensors through inert stubs for the pytorch_lightning class', () => {
  const t = readCkpt(join(FIX, 'foreign-class.ckpt'));
  assert.equal(t.format, 'ckpt-zip');
  assert.equal(t.tensors.length, 12);
  assert.equal(t.metadata.global_step, 470000);
  assert.equal(t.metadata.epoch, 6);
  assert.equal(t.metadata['pytorch-lightning_version'], '1.4.2');
  for (const e of t.tensors) assertFormulaValues(t, e);
  const scalar = t.tensors.find((e) => e.name === 'model_ema.decay');
  assert.deepEqual(scalar.shape, []);
  assert.equal(toFloat32('f32', readTensorBytes(t, scalar))[0], Math.fround(0.9999));
});

test('legacy-small.ckpt: legacy format, storage-sharing views (offset and transposed)', () => {
  const t = readTensorTable(join(FIX, 'legacy-small.ckpt'));
  assert.equal(t.format, 'ckpt-legacy');
  assert.equal(t.tensors.length, 14);
  for (const e of t.tensors.filter((x) => !x.name.startsWith('test.'))) assertFormulaValues(t, e);
  const v8 = t.tensors.find((x) => x.name === 'test.shared_storage.view_offset8');
  assert.deepEqual(v8.shape, [3, 4]);
  assert.equal(v8.strides, undefined, 'contiguous view maps in place');
  assert.deepEqual([...toFloat32(v8.dtype, readTensorBytes(t, v8))], Array.from({ length: 12 }, (_, i) => i + 8));
  const vt = t.tensors.find((x) => x.name === 'test.shared_storage.view_transposed');
  assert.deepEqual(vt.shape, [4, 3]);
  assert.deepEqual(vt.strides, [1, 4]);
  // arange(12).view(3,4).t(): element (i, j) = 4j + i.
  const want = [];
  for (let i = 0; i < 4; i++) for (let j = 0; j < 3; j++) want.push(4 * j + i);
  assert.deepEqual([...toFloat32(vt.dtype, readTensorBytes(t, vt))], want);
});

test('model-vae.ckpt (shared fixture): 263 tensors in checkpoint order equal the formula and specials', { skip: !sharedPath('tiny-sd15/model-vae.ckpt') }, () => {
  const t = readTensorTable(sharedPath('tiny-sd15/model-vae.ckpt'));
  assert.equal(t.format, 'ckpt-zip');
  assert.equal(t.tensors.length, 263);
  assert.equal(t.metadata.global_step, 840000);
  const order = keys.tensors.map((k) => k.name).filter((n) => t.tensors.some((e) => e.name === n));
  assert.deepEqual(t.tensors.map((e) => e.name), order);
  for (const e of t.tensors) assertFormulaValues(t, e);
});

test('schedule buffers computed in float64 match model-vae.ckpt within 1 ulp', { skip: !sharedPath('tiny-sd15/model-vae.ckpt') }, () => {
  const t = readTensorTable(sharedPath('tiny-sd15/model-vae.ckpt'));
  const mine = scheduleBuffers();
  for (const [name, vals] of Object.entries(mine)) {
    const e = t.tensors.find((x) => x.name === name);
    const ref = toFloat32('f32', readTensorBytes(t, e));
    for (let i = 0; i < ref.length; i++) {
      const ulp = Math.abs(ref[i]) * 2 ** -23 + 1e-45;
      assert.ok(Math.abs(vals[i] - ref[i]) <= ulp, `${name}[${i}]: ${vals[i]} vs ${ref[i]}`);
    }
  }
});

let tinyCache;
const tinyF16 = () => (tinyCache ??= keys.tensors.map((k) => buildTensor(k)));

function checkGgufAgainstJson(file, jsonFile, { values = true } = {}) {
  const j = JSON.parse(readFileSync(jsonFile, 'utf8'));
  const text = readFileSync(jsonFile, 'utf8');
  const t = readGguf(file);
  assert.equal(t.gguf.version, j.version);
  assert.equal(t.gguf.alignment, j.alignment);
  assert.equal(t.gguf.dataOffset, j.data_offset);
  assert.equal(t.fileSize, j.file_size);
  assert.equal(t.gguf.kv.length, j.n_kv);
  j.kv.forEach((want, i) => {
    const got = t.gguf.kv[i];
    assert.equal(got.key, want.key);
    assert.equal(got.type, want.type, want.key);
    if (want.type === 'arr') assert.equal(got.arrType, want.arr_type, want.key);
    const et = want.type === 'arr' ? want.arr_type : want.type;
    const wantVal = et === 'u64' || et === 'i64' ? bigIntValues(text, want.key) : want.value;
    const norm = (v) => (et === 'f32' ? Math.fround(v) : v);
    if (Array.isArray(wantVal)) assert.deepEqual(got.value, wantVal.map(norm), want.key);
    else assert.equal(got.value, norm(wantVal), want.key);
  });
  assert.equal(t.tensors.length, j.n_tensors);
  j.tensors.forEach((want, i) => {
    const e = t.tensors[i];
    assert.equal(e.name, want.name);
    assert.equal(e.dtype, want.type);
    assert.deepEqual(e.shape, [...want.ne].reverse(), want.name);
    assert.equal(e.offset, want.abs_offset, want.name);
    assert.equal(e.byteLength, want.nbytes, want.name);
    const v = toFloat32(e.dtype, readTensorBytes(t, e));
    if (values && want.values) {
      assert.deepEqual([...v], want.values.map((x) => Math.fround(x)), `${want.name} values`);
    }
    let sum = 0, min = Infinity, max = -Infinity;
    for (const x of v) { sum += x; min = Math.min(min, x); max = Math.max(max, x); }
    assert.ok(Math.abs(sum - want.sum) <= 1e-9 * Math.max(1, want.sum_abs), `${want.name} sum ${sum} vs ${want.sum}`);
    assert.equal(min, Math.fround(want.min), `${want.name} min`);
    assert.equal(max, Math.fround(want.max), `${want.name} max`);
  });
  return { t, j };
}

for (const name of ['ggml-written', 'ggml-written-align64']) {
  test(`${name}.gguf: every KV type, tensors and dequantized values as ggml reads them`, () => {
    checkGgufAgainstJson(join(FIX, `${name}.gguf`), join(FIX, `${name}.json`));
  });

  test(`${name}.gguf: rewriting through writeGguf reproduces the file byte for byte`, (t) => {
    const src = join(FIX, `${name}.gguf`);
    const table = readGguf(src);
    const out = join(tmpDir(t), 'rt.gguf');
    writeGguf(out, table.gguf.kv, table.tensors.map((e) => ({ name: e.name, dtype: e.dtype, shape: e.shape, data: readTensorBytes(table, e) })));
    assert.equal(sha256(readFileSync(out)), sha256(readFileSync(src)));
  });

  test(`${name}.gguf: q8_0/q4_0 payloads equal an independent transcription of ggml's reference quantizers`, () => {
    const j = JSON.parse(readFileSync(join(FIX, `${name}.json`), 'utf8'));
    const table = readGguf(join(FIX, `${name}.gguf`));
    let n = 0;
    for (const want of j.tensors) {
      if (want.type !== 'q8_0' && want.type !== 'q4_0') continue;
      const e = table.tensors.find((x) => x.name === want.name);
      const src = Float32Array.from(want.source_values);
      const mine = want.type === 'q8_0' ? refQuantizeQ8_0(src) : refQuantizeQ4_0(src);
      assert.deepEqual(Buffer.from(mine), readTensorBytes(table, e), want.name);
      n++;
    }
    assert.ok(n >= 4);
  });
}

for (const type of ['q4_0', 'q8_0', 'f16']) {
  const committed = type === 'q4_0' ? join(FIX, 'tiny-vae.sdcpp-q4_0.gguf') : undefined;
  const file = committed ?? sharedPath(`gguf/tiny-vae.sdcpp-${type}.gguf`);
  test(`tiny-vae.sdcpp-${type}.gguf (stable-diffusion.cpp): header as ggml reads it, f16 tensors equal the formula`, { skip: !file }, () => {
    const { t } = checkGgufAgainstJson(file, join(FIX, `tiny-vae.sdcpp-${type}.json`), { values: false });
    for (const e of t.tensors) {
      const k = keyByName.get(e.name);
      assert.ok(k, e.name);
      assert.deepEqual(e.shape, k.shape, `${e.name}: GGUF ne reversed is the torch shape`);
      const bytes = readTensorBytes(t, e);
      if (e.dtype === 'f16') {
        assert.equal(sha256(bytes), k.sha256_f16, e.name);
      } else {
        const f = buildTensor(k, { float: 'f32' });
        const src = new Float32Array(f.data.buffer);
        const deq = toFloat32(e.dtype, bytes);
        // The gguf README's maxima (0.0050 / 0.077) are rounded to 2 digits; the exact q4_0 maximum is 0.0771484375.
        const bound = e.dtype === 'q8_0' ? 0.0050 : 0.0771484375;
        for (let i = 0; i < src.length; i++) assert.ok(Math.abs(deq[i] - src[i]) <= bound, `${e.name}[${i}]`);
        if (e.dtype === 'q8_0') assert.deepEqual(Buffer.from(refQuantizeQ8_0(src)), bytes, `${e.name} q8_0 bytes`);
      }
    }
  });
}

test('whole tiny model (985 tensors from the formula) round-trips through writeSafetensors and writeGguf', (t) => {
  const dir = tmpDir(t);
  const built = tinyF16();
  for (const b of built) {
    const k = keyByName.get(b.name);
    if (k.rule !== 'special') assert.equal(sha256(b.data), k.sha256_f16, `${b.name} generator`);
    else if (k.special !== 'schedule') assert.equal(sha256(b.data), k.sha256, `${b.name} special`);
  }
  const st = join(dir, 'tiny.safetensors');
  writeSafetensors(st, built, { format: 'pt', source: 'formula' }, { order: 'aligned' });
  const gg = join(dir, 'tiny.gguf');
  writeGguf(gg, [{ key: 'general.architecture', type: 'str', value: 'sdnode-test' }], built);
  for (const [file, fmt] of [[st, 'safetensors'], [gg, 'gguf']]) {
    const table = readTensorTable(file);
    assert.equal(table.format, fmt);
    assert.equal(table.tensors.length, 985);
    const byName = new Map(table.tensors.map((e) => [e.name, e]));
    for (const b of built) {
      const e = byName.get(b.name);
      assert.ok(e, `${fmt}: ${b.name}`);
      assert.equal(e.dtype, b.dtype, `${fmt}: ${b.name} dtype`);
      // GGUF has no 0-dim tensors: a scalar is stored as [1].
      assert.deepEqual(e.shape, fmt === 'gguf' && b.shape.length === 0 ? [1] : b.shape, `${fmt}: ${b.name} shape`);
      assert.ok(Buffer.from(b.data).equals(readTensorBytes(table, e)), `${fmt}: ${b.name} bytes`);
      if (fmt === 'gguf') assert.equal(e.offset % 32, 0);
      else assert.equal(e.offset % (b.dtype === 'i64' ? 8 : b.dtype === 'f16' ? 2 : 4), 0, `${b.name} aligned`);
    }
  }
  assert.equal(readSafetensors(st).metadata.source, 'formula');
});

test('golden.safetensors (shared fixture) reads with its metadata and 43 tensors', { skip: !sharedPath('tiny-sd15/golden.safetensors') }, () => {
  const t = readSafetensors(sharedPath('tiny-sd15/golden.safetensors'));
  assert.equal(t.tensors.length, 43);
  assert.equal(t.metadata.weights_seed, '1234');
  const tok = t.tensors.find((e) => e.name === 'clip.tokens');
  assert.equal(tok.dtype, 'i32');
  const v = toFloat32('i32', readTensorBytes(t, tok));
  assert.deepEqual([...v.slice(0, 7)], [49406, 320, 1125, 539, 320, 2368, 49407]);
});

test('writeTorchZip: tiny model as a fp32 torch zip (and zip64) reads back identically; Python zipfile accepts it', (t) => {
  const dir = tmpDir(t);
  // fp32 like real checkpoints: the f16 formula values widened exactly.
  const built = tinyF16().map((b) => (b.dtype === 'f16' ? { ...b, dtype: 'f32', data: new Uint8Array(toFloat32('f16', b.data).buffer) } : b));
  for (const zip64 of [false, true]) {
    const f = join(dir, `tiny${zip64 ? '-z64' : ''}.ckpt`);
    writeTorchZip(f, built, { extra: { global_step: 840000 }, forceZip64: zip64 });
    const table = readTensorTable(f);
    assert.equal(table.format, 'ckpt-zip');
    assert.equal(table.metadata.global_step, 840000);
    assert.deepEqual(table.tensors.map((e) => e.name), built.map((b) => b.name));
    for (const [i, e] of table.tensors.entries()) {
      assert.equal(e.offset % 64, 0, `${e.name} 64-byte aligned like torch`);
      assert.deepEqual(e.shape, built[i].shape);
      assert.ok(Buffer.from(built[i].data).equals(readTensorBytes(table, e)), e.name);
    }
    for (const e of table.tensors) if (keyByName.get(e.name).rule !== 'special') { assertFormulaValues(table, e); break; }
    const py = spawnSync('python3', ['-c', 'import sys,zipfile,pickletools; z=zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; pickletools.dis(z.read("archive/data.pkl"), out=open("/dev/null","w"))', f]);
    if (!py.error) assert.equal(py.status, 0, String(py.stderr));
  }
});
