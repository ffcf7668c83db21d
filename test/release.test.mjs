// StableDiffusion.release() and generate()'s lowMemory: memory given back between phases must not
// change any output, and the kernel's own accounting (RssFile in /proc/self/status) must show the
// weight pages gone. The e2e golden in pipeline.test.mjs also runs with lowMemory on (the default).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { StableDiffusion } from '../dist/sd.js';
import { readTensorTable } from '../dist/formats/index.js';
import { cleanup, g, tinyModelPath } from './helpers/tiny-model.mjs';

const rssFileKiB = () => Number(/RssFile:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
const linux = existsSync('/proc/self/status') && Number.isFinite(rssFileKiB());

describe('release()', () => {
  let path, sd;
  before(async () => {
    path = tinyModelPath('f32');
    sd = await StableDiffusion.load(path, { backend: 'cpu', weights: 'f32', threads: 2 });
  });
  after(async () => { await sd?.dispose(); cleanup(); });

  test('rejects unknown parts with a RangeError, non-strings with a TypeError', async () => {
    await assert.rejects(sd.release('weights'), (e) => e instanceof RangeError && /clip', 'unet', 'vae' or 'activations'/.test(e.message));
    await assert.rejects(sd.release(3), TypeError);
    await assert.rejects(StableDiffusion.load(path, { lowMemory: 'yes' }), /lowMemory must be a boolean/);
  });

  test('outputs are bit-identical after each part is released', async () => {
    const run = async () => [
      (await sd.encodeText(g('clip.tokens'))).data,
      (await sd.unet(g('unet.x'), g('unet.t').data, g('unet.ctx'))).data,
      (await sd.vaeDecode(g('vae.z'))).data,
    ];
    const before = await run();
    await sd.release('clip', 'unet', 'vae', 'activations');
    const again = await run();
    for (let i = 0; i < before.length; i++) assert.deepEqual(again[i], before[i], `output ${i}`);
  });

  test('the UNet weights used in place leave the resident set', { skip: linux ? false : 'needs /proc/self/status' }, async () => {
    const table = readTensorTable(path);
    const unetBytes = table.tensors.filter((t) => t.name.startsWith('model.diffusion_model.'))
      .reduce((a, t) => a + t.byteLength, 0);
    await sd.unet(g('unet.x'), g('unet.t').data, g('unet.ctx')); // every UNet weight page touched
    const resident = rssFileKiB() * 1024;
    await sd.release('unet');
    const dropped = resident - rssFileKiB() * 1024;
    // Pages shared with a neighbouring tensor stay, so a little less than all of it.
    assert.ok(dropped > 0.9 * unetBytes, `dropped ${dropped} of ${unetBytes} bytes`);
    await sd.unet(g('unet.x'), g('unet.t').data, g('unet.ctx'));
    assert.ok(rssFileKiB() * 1024 - (resident - dropped) > 0.9 * unetBytes, 'faulted back in by the next call');
  });

  test('generate() gives the same image with lowMemory on and off', async () => {
    const off = await StableDiffusion.load(path, { backend: 'cpu', weights: 'f32', threads: 2, lowMemory: false });
    try {
      assert.equal(sd.lowMemory, true);
      assert.equal(off.lowMemory, false);
      const opts = { prompt: 'a photo of a cat', width: 64, height: 64, steps: 3, cfgScale: 7.5, sampler: 'euler', seed: 5 };
      const a = await sd.generate(opts), b = await off.generate(opts);
      assert.deepEqual(a.latent.data, b.latent.data);
      assert.deepEqual(a.png, b.png);
    } finally {
      await off.dispose();
    }
  });
});

describe('vaeDecode tiles', () => {
  let sd;
  before(async () => { sd = await StableDiffusion.load(tinyModelPath('f32'), { backend: 'cpu', weights: 'f32', threads: 2 }); });
  after(async () => { await sd?.dispose(); cleanup(); });

  test('tileOverlap reaches the native tiler and is validated', async () => {
    // 32 x 24 latents (256 x 192 px) in 128 px tiles: overlap 32 px (default) and 64 px differ.
    const z = { data: Float32Array.from({ length: 4 * 32 * 24 }, (_, i) => Math.sin(i * 0.37)), shape: [1, 4, 32, 24] };
    const whole = (await sd.vaeDecode(z, { tileSize: 0 })).data;
    const a = (await sd.vaeDecode(z, { tileSize: 128 })).data;
    const b = (await sd.vaeDecode(z, { tileSize: 128, tileOverlap: 64 })).data;
    assert.notDeepEqual(a, b);
    const rel = (x) => { let m = 0, s = 0; for (let i = 0; i < x.length; i++) { m = Math.max(m, Math.abs(x[i] - whole[i])); s = Math.max(s, Math.abs(whole[i])); } return m / s; };
    // Not exact (GroupNorm statistics per tile): the wider overlap must come closer to the whole decode.
    assert.ok(rel(b) < rel(a), `overlap 64 px err ${rel(b)}, 32 px err ${rel(a)}`);
    await assert.rejects(sd.vaeDecode(z, { tileSize: 128, tileOverlap: 128 }), RangeError);
    await assert.rejects(sd.vaeDecode(z, { tileSize: 128, tileOverlap: 12 }), RangeError);
  });
});
