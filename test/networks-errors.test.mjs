// Argument errors of the StableDiffusion API: TypeError / RangeError naming the argument, and a
// disposed model gives an Error, never a crash.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { StableDiffusion } from '../dist/sd.js';
import { cleanup, g, relErr, tinyModelPath } from './helpers/tiny-model.mjs';

let path;
before(() => { path = tinyModelPath('f16'); });
after(cleanup);

describe('StableDiffusion.load', () => {
  test('rejects bad arguments by name', async () => {
    await assert.rejects(StableDiffusion.load(42), { name: 'TypeError', message: /path/ });
    await assert.rejects(StableDiffusion.load(path, { backend: 'tpu' }), { name: 'RangeError', message: /options\.backend/ });
    await assert.rejects(StableDiffusion.load(path, { weights: 'q2_k' }), { name: 'RangeError', message: /options\.weights/ });
    await assert.rejects(StableDiffusion.load(path, { weights: 8 }), { name: 'TypeError', message: /options\.weights/ });
    await assert.rejects(StableDiffusion.load(path, { threads: 0 }), { name: 'RangeError', message: /options\.threads/ });
    await assert.rejects(StableDiffusion.load(path, { threads: '2' }), { name: 'TypeError', message: /options\.threads/ });
  });
  test("backend 'auto' picks a backend and says why", async () => {
    const sd = await StableDiffusion.load(path, { backend: 'auto', threads: 2 });
    assert.ok(['cpu', 'cuda'].includes(sd.info.backend));
    assert.equal(typeof sd.info.backendReason, 'string');
    await sd.dispose();
  });
  test('a missing file is an Error naming it', async () => {
    await assert.rejects(StableDiffusion.load('/nonexistent/model.safetensors'), /nonexistent/);
  });
});

describe('forward arguments', () => {
  let sd;
  before(async () => { sd = await StableDiffusion.load(path, { backend: 'cpu', threads: 2 }); });
  after(async () => { await sd?.dispose(); });

  test('encodeText', async () => {
    await assert.rejects(sd.encodeText({ data: new Float32Array(77), shape: [1, 77] }), { name: 'TypeError', message: /tokens\.data/ });
    await assert.rejects(sd.encodeText({ data: new Int32Array(70), shape: [1, 70] }), { name: 'RangeError', message: /multiple of 77/ });
    await assert.rejects(sd.encodeText({ data: new Int32Array(76), shape: [1, 77] }), { name: 'RangeError', message: /tokens\.data has 76/ });
    await assert.rejects(sd.encodeText({ data: new Int32Array(77).fill(49408), shape: [1, 77] }), { name: 'RangeError', message: /outside/ });
    await assert.rejects(sd.encodeText(g('clip.tokens'), { clipSkip: 3 }), { name: 'RangeError', message: /clipSkip/ });
  });

  test('unet', async () => {
    const x = g('unet.x'), t = g('unet.t').data, c = g('unet.ctx');
    await assert.rejects(sd.unet({ data: new Float32Array(3 * 64 * 2), shape: [2, 3, 8, 8] }, t, c), { name: 'RangeError', message: /x\.shape\[1\]/ });
    await assert.rejects(sd.unet(x, [999, 1], c), { name: 'TypeError', message: /\bt must be a Float32Array/ });
    await assert.rejects(sd.unet(x, Float32Array.of(999), c), { name: 'RangeError', message: /\bt must hold 2/ });
    await assert.rejects(sd.unet(x, Float32Array.of(999, 1000), c), { name: 'RangeError', message: /t\[1\]/ });
    await assert.rejects(sd.unet(x, t, { data: c.data, shape: [2, 77, 64, 2] }), { name: 'RangeError', message: /context\.shape/ });
    await assert.rejects(sd.unet(x, t, { data: new Float32Array(2 * 77 * 64), shape: [2, 77, 64] }), { name: 'RangeError', message: /context\.shape\[2\]/ });
    await assert.rejects(sd.unet(x, t, 'ctx'), { name: 'TypeError', message: /context/ });
  });

  test('vaeDecode / vaeEncode', async () => {
    await assert.rejects(sd.vaeDecode({ data: new Float32Array(3 * 64), shape: [1, 3, 8, 8] }), { name: 'RangeError', message: /z\.shape\[1\]/ });
    await assert.rejects(sd.vaeDecode(g('vae.z'), { tileSize: 100 }), { name: 'RangeError', message: /tileSize/ });
    await assert.rejects(sd.vaeEncode({ data: new Float32Array(3 * 60 * 64), shape: [1, 3, 60, 64] }), { name: 'RangeError', message: /multiples of 8/ });
    await assert.rejects(sd.vaeEncode({ data: new Float64Array(3 * 64 * 64), shape: [1, 3, 64, 64] }), { name: 'TypeError', message: /image\.data/ });
  });
});

describe('dispose', () => {
  test('a call in flight completes; calls after dispose are Errors', async () => {
    const sd = await StableDiffusion.load(path, { backend: 'cpu', threads: 2 });
    const pending = sd.vaeDecode(g('vae.z'));
    await sd.dispose();
    const out = await pending;
    assert.deepEqual(out.shape, [1, 3, 64, 64]);
    assert.equal(sd.disposed, true);
    await assert.rejects(sd.unet(g('unet.x'), g('unet.t').data, g('unet.ctx')), (e) => e.constructor === Error && /disposed/.test(e.message));
    await assert.rejects(sd.encodeText(g('clip.tokens')), /disposed/);
    await sd.dispose();  // twice is fine
  });

  test('calls queued before dispose all complete, with the inputs they were given', async () => {
    const sd = await StableDiffusion.load(path, { backend: 'cpu', threads: 2 });
    const z = g('vae.z');
    const a = sd.vaeDecode(z);
    const b = sd.encodeText(g('clip.tokens'));
    z.data.fill(0);  // the queued call must not see this
    const gone = sd.dispose();
    const [ra, rb] = await Promise.all([a, b, gone]);
    assert.ok(relErr(ra.data, g('vae.dec').data) <= 2e-5);
    assert.deepEqual(rb.shape, [2, 77, 128]);
  });
});
