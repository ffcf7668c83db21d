// generate(): the tiny-sd15 4-step Euler golden end to end (README tolerances), and txt2img on a fake
// model against an independent float64 re-computation (test/helpers/pipeline-ref.mjs).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generate } from '../dist/pipeline/index.js';
import { readPngText } from '../dist/image.js';
import { randn } from '../dist/rng/index.js';
import { encodePrompt, flattenChunks } from '../dist/tokenizer/index.js';
import { g, relErr, tinyModelPath, cleanup } from './helpers/tiny-model.mjs';
import { fakeModel, maxRel, refContext, refEuler, refSigmas, fakeDecode, pseudoNoise } from './helpers/pipeline-ref.mjs';

let StableDiffusion;
try {
  ({ StableDiffusion } = await import('../dist/sd.js'));
  (await import('../dist/native.js')).native();
} catch {
  StableDiffusion = undefined;
}

describe('tiny-sd15 e2e golden through generate() (f32 weights, CPU)', { skip: StableDiffusion ? false : 'addon not built' }, () => {
  let sd, res;
  const taps = [], steps = [];
  before(async () => {
    sd = await StableDiffusion.load(tinyModelPath('f32'), { backend: 'cpu', weights: 'f32', threads: 2 });
    res = await generate(sd, {
      prompt: 'a photo of a cat', negativePrompt: '', width: 64, height: 64, steps: 4, cfgScale: 7.5,
      sampler: 'euler', schedule: 'discrete', seed: 1234, noise: g('e2e.noise').data, modelName: 'tiny-sd15',
    }, {
      tap: (i) => taps.push({ t: i.t, cond: Float32Array.from(i.cond), uncond: Float32Array.from(i.uncond) }),
      onStep: (i) => steps.push({ x: Float32Array.from(i.x), denoised: Float32Array.from(i.denoised) }),
    });
  });
  after(async () => { await sd?.dispose(); cleanup(); });

  test('tokens, timesteps and per-step UNet outputs match', () => {
    assert.equal(taps.length, 4);
    const ts = g('e2e.timesteps').data;
    for (let i = 0; i < 4; i++) {
      assert.ok(Math.abs(taps[i].t - ts[i]) <= 1e-3, `t[${i}] ${taps[i].t} vs ${ts[i]}`);
      const ec = relErr(taps[i].cond, g(`e2e.eps_cond.${i}`).data);
      const eu = relErr(taps[i].uncond, g(`e2e.eps_uncond.${i}`).data);
      console.log(`# step ${i}: eps_cond err ${ec.toExponential(2)}, eps_uncond err ${eu.toExponential(2)}`);
      assert.ok(ec <= 2e-5 && eu <= 2e-5, `step ${i}: ${ec}, ${eu}`);
    }
  });

  test('per-step denoised and x match (latent tolerance 5e-5)', () => {
    assert.equal(steps.length, 4);
    for (let i = 0; i < 4; i++) {
      const ed = relErr(steps[i].denoised, g(`e2e.denoised.${i}`).data);
      const ex = relErr(steps[i].x, g(`e2e.x.${i}`).data);
      console.log(`# step ${i}: denoised err ${ed.toExponential(2)}, x err ${ex.toExponential(2)}`);
      assert.ok(ed <= 5e-5 && ex <= 5e-5, `step ${i}: ${ed}, ${ex}`);
    }
  });

  test('the final latent and image meet the README tolerances (5e-5, 2e-4)', () => {
    const el = relErr(res.latent.data, g('e2e.latent').data);
    const ei = relErr(res.image.data, g('e2e.image').data);
    console.log(`# e2e.latent err ${el.toExponential(2)}, e2e.image err ${ei.toExponential(2)}`);
    assert.deepEqual(res.latent.shape, [1, 4, 8, 8]);
    assert.deepEqual(res.image.shape, [1, 3, 64, 64]);
    assert.ok(el <= 5e-5, `latent err ${el}`);
    assert.ok(ei <= 2e-4, `image err ${ei}`);
  });

  test('the PNG carries the A1111 parameters text', () => {
    assert.equal(res.seed, 1234);
    assert.equal(res.images.length, 1);
    assert.equal(readPngText(res.png).parameters,
      'a photo of a cat\nSteps: 4, Sampler: Euler, CFG scale: 7.5, Seed: 1234, Size: 64x64, Model: tiny-sd15, Version: sdnode 0.1.0');
  });

  test('an f16 file loaded as stored meets the same tolerances (its weights are fp16-exact)', async () => {
    const sd16 = await StableDiffusion.load(tinyModelPath('f16'), { backend: 'cpu', threads: 2 });
    try {
      const r = await sd16.generate({ prompt: 'a photo of a cat', width: 64, height: 64, steps: 4, cfgScale: 7.5, sampler: 'euler', noise: g('e2e.noise').data });
      const el = relErr(r.latent.data, g('e2e.latent').data);
      const ei = relErr(r.image.data, g('e2e.image').data);
      console.log(`# f16 file: e2e.latent err ${el.toExponential(2)}, e2e.image err ${ei.toExponential(2)}`);
      assert.ok(el <= 5e-5 && ei <= 2e-4, `${el}, ${ei}`);
    } finally {
      await sd16.dispose();
    }
  });

  test('the model stays usable after a cancelled run', async () => {
    const ac = new AbortController();
    await assert.rejects(generate(sd, {
      prompt: 'a photo of a cat', width: 64, height: 64, steps: 4, sampler: 'euler', seed: 1, signal: ac.signal,
      onProgress: ({ step }) => { if (step === 1) ac.abort(); },
    }), { name: 'AbortError' });
    const again = await generate(sd, { prompt: 'a photo of a cat', width: 64, height: 64, steps: 4, cfgScale: 7.5, sampler: 'euler', noise: g('e2e.noise').data });
    assert.ok(relErr(again.latent.data, g('e2e.latent').data) <= 5e-5);
  });
});

// ---- fake model: the pipeline's logic against plain loops ----

function tokensOf(prompt) {
  return flattenChunks(encodePrompt(prompt).chunks);
}

describe('txt2img on a fake model', () => {
  const h = 2, w = 3, n = 4 * h * w;

  test('euler + CFG equals the README algorithm in float64; noise is torch randn of the seed', async () => {
    const m = fakeModel();
    const res = await generate(m, { prompt: 'a red (fox:1.3)', negativePrompt: 'blurry', width: 8 * w, height: 8 * h, steps: 5, cfgScale: 6, sampler: 'euler', seed: 77, rng: 'cpu' });
    const noise = randn([1, 4, h, w], 77, 'cpu');
    const sig = refSigmas(5);
    const pos = tokensOf('a red (fox:1.3)');
    const want = refEuler({
      conds: [{ ctx: refContext(pos.tokens, pos.weights), weight: 1 }],
      uncond: refContext(tokensOf('blurry').tokens, undefined),
      x: Array.from(noise, (v) => v * sig[0]), sigmas: sig, cfg: 6, h, w,
    });
    const e = maxRel(res.latent.data, want);
    assert.ok(e < 1e-5, `latent err ${e}`);
    // one batch-2 UNet call per step, cond then uncond
    const unets = m.calls.filter((c) => c.fn === 'unet');
    assert.equal(unets.length, 5);
    assert.deepEqual(unets[0].shape, [2, 4, h, w]);
    // decode of latent / 0.18215, clamped
    const img = res.image.data;
    for (const [c, y, x] of [[0, 0, 0], [2, 15, 23], [1, 9, 4]]) {
      const z = res.latent.data[(c * h + (y >> 3)) * w + (x >> 3)] / 0.18215;
      const v = Math.max(-1, Math.min(1, fakeDecode(Math.fround(z), y, x)));
      assert.ok(Math.abs(img[(c * 8 * h + y) * 8 * w + x] - v) < 1e-6);
    }
    assert.match(res.parameters, /^a red \(fox:1\.3\)\nNegative prompt: blurry\nSteps: 5, Sampler: Euler, CFG scale: 6, Seed: 77, Size: 24x16, RNG: CPU, Version: sdnode/);
  });

  test('cfg 1 skips the uncond half and the negative prompt CLIP pass', async () => {
    const m = fakeModel();
    const noise = pseudoNoise(n);
    const res = await generate(m, { prompt: 'a cat', negativePrompt: 'ugly', width: 24, height: 16, steps: 3, cfgScale: 1, sampler: 'euler', noise });
    assert.equal(m.calls.filter((c) => c.fn === 'encodeText').length, 1);
    const unets = m.calls.filter((c) => c.fn === 'unet');
    assert.ok(unets.every((c) => c.shape[0] === 1));
    const sig = refSigmas(3);
    const want = refEuler({ conds: [{ ctx: refContext(tokensOf('a cat').tokens), weight: 1 }], x: Array.from(noise, (v) => v * sig[0]), sigmas: sig, cfg: 1, h, w });
    assert.ok(maxRel(res.latent.data, want) < 1e-5);
  });

  test('AND sub-prompts with weights: one batch of P + 1, A1111 combination', async () => {
    const m = fakeModel();
    const noise = pseudoNoise(n, 5);
    const res = await generate(m, { prompt: 'a cat AND a dog:0.5', width: 24, height: 16, steps: 3, cfgScale: 7, sampler: 'euler', noise });
    assert.deepEqual(m.calls.filter((c) => c.fn === 'unet')[0].shape, [3, 4, h, w]);
    const sig = refSigmas(3);
    const want = refEuler({
      conds: [{ ctx: refContext(tokensOf('a cat').tokens), weight: 1 }, { ctx: refContext(tokensOf('a dog').tokens), weight: 0.5 }],
      uncond: refContext(tokensOf('').tokens), x: Array.from(noise, (v) => v * sig[0]), sigmas: sig, cfg: 7, h, w,
    });
    assert.ok(maxRel(res.latent.data, want) < 1e-5);
  });

  test('a long prompt against a short negative: 154 vs 77 tokens run as two UNet calls', async () => {
    const m = fakeModel();
    const long = Array.from({ length: 30 }, (_, i) => `word${i % 7} thing`).join(' ');
    const pos = tokensOf(long);
    assert.equal(pos.tokens.length, 154);
    const noise = pseudoNoise(n, 9);
    const res = await generate(m, { prompt: long, width: 24, height: 16, steps: 2, cfgScale: 7.5, sampler: 'euler', noise, clipSkip: 2 });
    const unets = m.calls.filter((c) => c.fn === 'unet');
    assert.equal(unets.length, 4);
    assert.deepEqual([unets[0].L, unets[1].L], [pos.tokens.length, 77]);
    assert.ok(m.calls.filter((c) => c.fn === 'encodeText').every((c) => c.clipSkip === 2));
    const sig = refSigmas(2);
    const want = refEuler({
      conds: [{ ctx: refContext(pos.tokens, pos.weights, 2), weight: 1 }], uncond: refContext(tokensOf('').tokens, undefined, 2),
      x: Array.from(noise, (v) => v * sig[0]), sigmas: sig, cfg: 7.5, h, w,
    });
    assert.ok(maxRel(res.latent.data, want) < 1e-5);
  });

  test('batches: image b equals a single run with seed s + b (euler_a: per-image generators)', async () => {
    const opts = { prompt: 'a cat', width: 24, height: 16, steps: 4, cfgScale: 5, sampler: 'euler_a' };
    const batch = await generate(fakeModel(), { ...opts, seed: 100, batchSize: 3 });
    assert.deepEqual(batch.seeds, [100, 101, 102]);
    assert.deepEqual(batch.images.map((i) => i.seed), [100, 101, 102]);
    assert.match(readPngText(batch.images[2].png).parameters, /Seed: 102,/);
    for (const b of [0, 2]) {
      const single = await generate(fakeModel(), { ...opts, seed: 100 + b });
      assert.deepEqual(single.latent.data, batch.latent.data.subarray(b * n, (b + 1) * n));
    }
  });

  test('injected noise equal to the seed draw reproduces the seeded run (step noise stays the seed stream); ENSD', async () => {
    const opts = { prompt: 'a cat', width: 24, height: 16, steps: 3, cfgScale: 5, sampler: 'euler_a', seed: 5 };
    const seeded = await generate(fakeModel(), opts);
    const injected = await generate(fakeModel(), { ...opts, noise: randn([1, 4, h, w], 5, 'philox') });
    assert.deepEqual(injected.latent.data, seeded.latent.data);
    const ensd = await generate(fakeModel(), { ...opts, noiseSeedDelta: 31337 });
    assert.notDeepEqual(ensd.latent.data, seeded.latent.data);
    assert.match(ensd.parameters, /Seed: 5, Size: 24x16, ENSD: 31337, Version/);
    const euler = await generate(fakeModel(), { ...opts, sampler: 'euler' });
    const eulerEnsd = await generate(fakeModel(), { ...opts, sampler: 'euler', noiseSeedDelta: 31337 });
    assert.deepEqual(eulerEnsd.latent.data, euler.latent.data, 'ENSD changes only step noise');
  });

  test('no seed: a random one is used and reported', async () => {
    const res = await generate(fakeModel(), { prompt: 'x', width: 8, height: 8, steps: 1, sampler: 'euler' });
    assert.ok(Number.isInteger(res.seed) && res.seed >= 0 && res.seed < 2 ** 32);
    const again = await generate(fakeModel(), { prompt: 'x', width: 8, height: 8, steps: 1, sampler: 'euler', seed: res.seed });
    assert.deepEqual(again.latent.data, res.latent.data);
  });

  test('progress: one call per step with timings and a latent preview', async () => {
    const seen = [];
    await generate(fakeModel(), {
      prompt: 'x', width: 24, height: 16, steps: 3, sampler: 'dpm++2m', schedule: 'karras', seed: 3,
      onProgress: (p) => { seen.push({ step: p.step, total: p.total, ok: p.elapsed >= p.samplingElapsed, shape: p.preview().shape }); },
    });
    assert.deepEqual(seen.map((s) => s.step), [1, 2, 3]);
    assert.ok(seen.every((s) => s.total === 3 && s.ok));
    assert.deepEqual(seen[0].shape, [1, 3, h, w]);
  });

  test('every sampler runs; ddim / ddpm get integer timesteps', async () => {
    for (const sampler of ['ddpm', 'ddim', 'euler', 'euler_a', 'heun', 'dpm++2m', 'dpm++2s_a', 'lcm']) {
      const m = fakeModel();
      const res = await generate(m, { prompt: 'x', width: 8, height: 8, steps: 3, sampler, seed: 1 });
      assert.ok(res.latent.data.every(Number.isFinite), sampler);
      if (sampler.startsWith('dd')) assert.ok(m.calls.filter((c) => c.fn === 'unet').every((c) => Number.isInteger(c.t[0])));
    }
  });

  test('a NaN from the UNet is a clear error naming the step', async () => {
    await assert.rejects(generate(fakeModel({ nanAt: 1 }), { prompt: 'x', width: 8, height: 8, steps: 3, sampler: 'euler', seed: 1 }),
      /step 2: the UNet produced non-finite values/);
  });

  test('LoRA tags: an error by default, a warning with loraTags: warn', async () => {
    await assert.rejects(generate(fakeModel(), { prompt: 'a cat <lora:film:0.8>', width: 8, height: 8, steps: 1, seed: 1 }),
      (e) => e instanceof RangeError && /<lora:film:0\.8>: LoRA is not supported/.test(e.message));
    const m = fakeModel();
    const res = await generate(m, { prompt: 'a cat <lora:film:0.8>', width: 8, height: 8, steps: 1, seed: 1, loraTags: 'warn' });
    assert.ok(res.warnings.some((s) => /<lora:film:0\.8> ignored/.test(s)));
    assert.deepEqual(m.calls[0].ids.subarray(0, 77), tokensOf('a cat').tokens);
  });

  test('cancellation rejects with the signal reason within one step', async () => {
    const m = fakeModel();
    const ac = new AbortController();
    await assert.rejects(generate(m, {
      prompt: 'x', width: 8, height: 8, steps: 10, sampler: 'euler', seed: 1, signal: ac.signal,
      onProgress: ({ step }) => { if (step === 2) ac.abort(); },
    }), { name: 'AbortError' });
    assert.equal(m.calls.filter((c) => c.fn === 'unet').length, 2);
    assert.equal(m.calls.filter((c) => c.fn === 'vaeDecode').length, 0);
  });
});

