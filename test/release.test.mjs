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

describe("convActivations: 'q8_0'", () => {
  test('takes the integer conv path: q8_0 outputs change, stay within the golden tolerances; f32 weights are unaffected', async () => {
    const path = tinyModelPath('f32');
    const load = (o) => StableDiffusion.load(path, { backend: 'cpu', threads: 2, ...o });
    await assert.rejects(load({ convActivations: 'q4_0' }), RangeError);
    const [a, b, c, d] = await Promise.all([
      load({ weights: 'q8_0' }), load({ weights: 'q8_0', convActivations: 'q8_0' }),
      load({ weights: 'f32' }), load({ weights: 'f32', convActivations: 'q8_0' }),
    ]);
    try {
      const rel = (x, ref) => { let m = 0, s = 0; for (let i = 0; i < x.length; i++) { m = Math.max(m, Math.abs(x[i] - ref[i])); s = Math.max(s, Math.abs(ref[i])); } return m / s; };
      const dec = async (sd) => (await sd.vaeDecode(g('vae.z'))).data;
      const [da, db, dc, dd] = [await dec(a), await dec(b), await dec(c), await dec(d)];
      assert.deepEqual(dd, dc, 'f32 weights never take the integer path');
      // The integer path only exists on some ISA levels (AVX2 has it for q4_0 only); where q8_0 has
      // none the outputs are equal, which this machine's AVX-512 / dotprod levels do not allow.
      const cpu = (await import('../dist/native.js')).native().cpuInfo();
      if (cpu.isaActive === 'avx512' || cpu.isaActive === 'dotprod') assert.notDeepEqual(db, da);
      assert.ok(rel(db, g('vae.dec').data) <= 5e-2, `q8_0 vae.dec err ${rel(db, g('vae.dec').data)} (tolerance 5e-2)`);
    } finally {
      await Promise.all([a, b, c, d].map((m) => m.dispose()));
    }
  });
});
