// quantize/dequantize through the public API against bytes made by GGML itself
// (test/fixtures/quant; provenance in ../shared/fixtures/quant/README.md): 64 rows x 256 values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { quantize, dequantize, quantizedSize, native } from '../dist/index.js';

const dir = new URL('./fixtures/quant/', import.meta.url);
const bytes = (name) => new Uint8Array(readFileSync(new URL(name, dir)));
const floats = (name) => {
  const b = bytes(name);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};
const ROWS = 64, COLS = 256;
const rows = floats('rows.f32');

// First difference as "row r byte i" so a failure points at the fixture row (rows.desc.json).
function assertBytesEqual(got, want, rowBytes, what) {
  assert.equal(got.length, want.length, `${what}: length`);
  const i = got.findIndex((v, k) => v !== want[k]);
  assert.equal(i, -1, i < 0 ? '' : `${what}: row ${Math.floor(i / rowBytes)} byte ${i % rowBytes}: ${got[i]} vs ${want[i]}`);
}

// Bitwise, except that any NaN equals any NaN (GGML's come from inf * 0 in q4_0 row 37).
function assertFloatsBitwise(got, want, what) {
  assert.equal(got.length, want.length, `${what}: length`);
  const gb = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const wb = new Uint32Array(want.buffer.slice(want.byteOffset, want.byteOffset + want.byteLength));
  for (let i = 0; i < got.length; i++) {
    if (gb[i] !== wb[i] && !(Number.isNaN(got[i]) && Number.isNaN(want[i]))) {
      assert.fail(`${what}: row ${Math.floor(i / COLS)} col ${i % COLS}: ${got[i]} vs ${want[i]}`);
    }
  }
}

test('fixture rows have the documented shape', () => {
  assert.equal(rows.length, ROWS * COLS);
});

for (const [type, file, rowBytes] of [['q8_0', 'rows.q8_0', 272], ['q4_0', 'rows.q4_0', 144], ['f16', 'rows.f16', 512]]) {
  test(`quantize ${type} is byte-identical to GGML`, () => {
    assertBytesEqual(quantize(rows, type), bytes(file), rowBytes, type);
  });

  test(`quantize ${type} row by row equals the whole-buffer result (subarray views)`, () => {
    const want = bytes(file);
    for (const r of [0, 22, 37, 46, 63]) {
      const got = quantize(rows.subarray(r * COLS, (r + 1) * COLS), type);
      assertBytesEqual(got, want.subarray(r * rowBytes, (r + 1) * rowBytes), rowBytes, `${type} row ${r}`);
    }
  });

  test(`dequantize ${type} is bit-identical to GGML's to_float`, () => {
    assertFloatsBitwise(dequantize(bytes(file), type, ROWS * COLS), floats(`${file}.deq.f32`), type);
  });
}

test('dequantize accepts a view at an odd byte offset', () => {
  const q = bytes('rows.q8_0');
  const shifted = new Uint8Array(q.length + 1);
  shifted.set(q, 1);
  const got = dequantize(shifted.subarray(1), 'q8_0', ROWS * COLS);
  assertFloatsBitwise(got, floats('rows.q8_0.deq.f32'), 'q8_0 unaligned');
});

test('quantizedSize gives GGML block sizes', () => {
  assert.equal(quantizedSize('q8_0', 64), 68);
  assert.equal(quantizedSize('q4_0', 64), 36);
  assert.equal(quantizedSize('f16', 3), 6);
  assert.throws(() => quantizedSize('q4_0', 33), RangeError);
});

test('empty input gives empty output', () => {
  assert.equal(quantize(new Float32Array(0), 'q4_0').length, 0);
  assert.equal(dequantize(new Uint8Array(0), 'q8_0', 0).length, 0);
});

test('f16 accepts any length; block types need multiples of 32', () => {
  assert.equal(quantize(new Float32Array(7), 'f16').length, 14);
  assert.throws(() => quantize(new Float32Array(33), 'q8_0'), { name: 'RangeError', message: /values\.length/ });
  assert.throws(() => quantize(new Float32Array(48), 'q4_0'), { name: 'RangeError', message: /values\.length/ });
  assert.throws(() => dequantize(new Uint8Array(34), 'q8_0', 31), { name: 'RangeError', message: /count/ });
});

test('bad arguments throw TypeError/RangeError naming the argument', () => {
  assert.throws(() => quantize([1, 2, 3], 'f16'), { name: 'TypeError', message: /values/ });
  assert.throws(() => quantize(new Float64Array(32), 'q8_0'), { name: 'TypeError', message: /values/ });
  assert.throws(() => quantize(new Float32Array(32), 8), { name: 'TypeError', message: /type/ });
  assert.throws(() => quantize(new Float32Array(32), 'q5_1'), { name: 'RangeError', message: /type/ });
  assert.throws(() => quantize(new Float32Array(32), 'f32'), { name: 'RangeError', message: /type/ });
  assert.throws(() => dequantize(new Float32Array(34), 'q8_0', 32), { name: 'TypeError', message: /bytes/ });
  assert.throws(() => dequantize(new Uint8Array(34), 'q8_0', '32'), { name: 'TypeError', message: /count/ });
  assert.throws(() => dequantize(new Uint8Array(34), 'q8_0', -32), { name: 'RangeError', message: /count/ });
  assert.throws(() => dequantize(new Uint8Array(34), 'q8_0', 1.5), { name: 'RangeError', message: /count/ });
  assert.throws(() => dequantize(new Uint8Array(35), 'q8_0', 32), { name: 'RangeError', message: /bytes\.length/ });
  assert.throws(() => dequantize(new Uint8Array(17), 'q4_0', 32), { name: 'RangeError', message: /bytes\.length/ });
});

test('the raw addon functions validate too (no crash when called past lib/quant.ts)', () => {
  const addon = native();
  assert.throws(() => addon.quantize(), { name: 'TypeError', message: /values/ });
  assert.throws(() => addon.quantize(new Float32Array(33), 'q4_0'), { name: 'RangeError', message: /values\.length/ });
  assert.throws(() => addon.quantize(new Float32Array(32), 'f32'), { name: 'RangeError', message: /type/ });
  assert.throws(() => addon.dequantize(new Uint8Array(18), 'q4_0'), { name: 'TypeError', message: /count/ });
  assert.throws(() => addon.dequantize(new Uint8Array(18), 'q4_0', NaN), { name: 'RangeError', message: /count/ });
  assert.throws(() => addon.dequantize(new Uint8Array(18), 'q4_0', 64), { name: 'RangeError', message: /bytes\.length/ });
  assert.throws(() => addon.dequantize(new Uint8Array(18), 'q4_0', 2 ** 60), { name: 'RangeError' });
});
