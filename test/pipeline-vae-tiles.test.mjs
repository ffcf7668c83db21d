// generate()'s vaeTileSize reaches the VAE calls (decode, img2img encode) and is validated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generate } from '../dist/index.js';
import { fakeModel } from './helpers/pipeline-ref.mjs';

function recording() {
  const m = fakeModel();
  const seen = { decode: [], encode: [] };
  const dec = m.vaeDecode.bind(m), enc = m.vaeEncode.bind(m);
  m.vaeDecode = (z, o) => { seen.decode.push(o); return dec(z); };
  m.vaeEncode = (x, o) => { seen.encode.push(o); return enc(x); };
  return { m, seen };
}

const base = { prompt: 'a cat', width: 24, height: 16, steps: 2, cfgScale: 7, sampler: 'euler', seed: 1, rng: 'cpu' };

test('vaeTileSize is passed to vaeDecode and vaeEncode; omitted, no options are passed', async () => {
  const a = recording();
  await generate(a.m, { ...base, vaeTileSize: 256 });
  assert.deepEqual(a.seen.decode, [{ tileSize: 256 }]);
  const init = { data: new Float32Array(3 * 16 * 24).fill(0.25), shape: [1, 3, 16, 24] };
  const b = recording();
  await generate(b.m, { ...base, initImage: init, strength: 0.5, vaeTileSize: 0 });
  assert.deepEqual(b.seen.encode, [{ tileSize: 0 }]);
  assert.deepEqual(b.seen.decode, [{ tileSize: 0 }]);
  const c = recording();
  await generate(c.m, base);
  assert.deepEqual(c.seen.decode, [undefined]);
});

test('vaeTileSize must be 0 or a multiple of 8 >= 64', async () => {
  for (const bad of [8, 65, -64, 1.5, NaN]) {
    await assert.rejects(generate(fakeModel(), { ...base, vaeTileSize: bad }), RangeError, `vaeTileSize ${bad}`);
  }
  await assert.rejects(generate(fakeModel(), { ...base, vaeTileSize: '256' }), TypeError);
});

test('vaeTileOverlap is passed with vaeTileSize and validated', async () => {
  const a = recording();
  await generate(a.m, { ...base, vaeTileSize: 320, vaeTileOverlap: 64 });
  assert.deepEqual(a.seen.decode, [{ tileSize: 320, tileOverlap: 64 }]);
  for (const bad of [0, 4, 12, 320, 400]) {
    await assert.rejects(generate(fakeModel(), { ...base, vaeTileSize: 320, vaeTileOverlap: bad }), RangeError, `vaeTileOverlap ${bad}`);
  }
});
