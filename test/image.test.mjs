import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { PNG } from 'pngjs';
import { encodePng, decodePng, readPngText, formatParameters, decodeMaskPng } from '../dist/image.js';

test('encodePng maps [-1, 1] to bytes as A1111 does and pngjs reads it back', () => {
  const h = 2, w = 3, plane = h * w;
  const data = new Float32Array(3 * plane);
  const vals = [-1, -0.5, 0, 0.5, 1, 2];
  for (let c = 0; c < 3; c++) for (let i = 0; i < plane; i++) data[c * plane + i] = vals[(i + c) % vals.length];
  const png = PNG.sync.read(encodePng({ data, shape: [1, 3, h, w] }));
  assert.equal(png.width, w);
  assert.equal(png.height, h);
  const expected = (v) => Math.trunc(255 * Math.min(1, Math.max(0, (v + 1) / 2)));
  for (let c = 0; c < 3; c++)
    for (let i = 0; i < plane; i++) assert.equal(png.data[i * 4 + c], expected(vals[(i + c) % vals.length]));
});

test('the parameters chunk has a valid CRC (checked with zlib) and round-trips', () => {
  const text = formatParameters('a cat', 'blurry', { Steps: 20, Sampler: 'Euler a', Seed: 42 });
  assert.equal(text, 'a cat\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, Seed: 42');
  const buf = encodePng({ data: new Float32Array(3 * 4), shape: [1, 3, 2, 2] }, 0, text);
  assert.deepEqual(readPngText(buf), { parameters: text });
  let p = 8, found = 0;
  while (p < buf.length) {
    const len = buf.readUInt32BE(p);
    const crc = buf.readUInt32BE(p + 8 + len);
    assert.equal(crc, zlib.crc32(buf.subarray(p + 4, p + 8 + len)), `CRC of chunk at ${p}`);
    found++;
    p += 12 + len;
  }
  assert.ok(found >= 4);
  PNG.sync.read(buf); // pngjs checks CRCs too
});

test('decodePng inverts encodePng within one 8-bit step; bad input is a TypeError', () => {
  const data = Float32Array.from({ length: 3 * 16 }, (_, i) => (i / 47) * 2 - 1);
  const back = decodePng(encodePng({ data, shape: [1, 3, 4, 4] }));
  assert.deepEqual(back.shape, [1, 3, 4, 4]);
  for (let i = 0; i < data.length; i++) assert.ok(Math.abs(back.data[i] - data[i]) <= 2 / 255 + 1e-6);
  assert.throws(() => decodePng(Buffer.from('not a png')), TypeError);
  assert.throws(() => encodePng({ data, shape: [1, 3, 4, 4] }, 1), RangeError);
});

test('decodeMaskPng: white and transparent are 1, black opaque is 0', () => {
  const png = new PNG({ width: 3, height: 1 });
  png.data.set([255, 255, 255, 255, 0, 0, 0, 255, 0, 0, 0, 0]);
  const m = decodeMaskPng(PNG.sync.write(png));
  assert.deepEqual(Array.from(m.data), [1, 0, 1]);
});
