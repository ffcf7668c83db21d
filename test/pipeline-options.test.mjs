// generate() option checks: every bad value is a TypeError or RangeError naming the field, raised
// before any network runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generate } from '../dist/pipeline/index.js';
import { fakeModel } from './helpers/pipeline-ref.mjs';

const base = { prompt: 'a cat', width: 8, height: 8, steps: 2, seed: 1 };
const img = { data: new Float32Array(3 * 64), shape: [1, 3, 8, 8] };

const cases = [
  [{ prompt: undefined }, TypeError, /"prompt" is required/],
  [{ prompt: 5 }, TypeError, /"prompt" must be a string/],
  [{ negativePrompt: null }, TypeError, /"negativePrompt" must be a string/],
  [{ width: 100 }, RangeError, /"width" must be a positive multiple of 8/],
  [{ height: 0 }, RangeError, /"height" must be a positive multiple of 8/],
  [{ width: '512' }, TypeError, /"width" must be a number/],
  [{ steps: 0 }, RangeError, /"steps" must be an integer from 1/],
  [{ steps: 2.5 }, RangeError, /"steps"/],
  [{ cfgScale: Infinity }, RangeError, /"cfgScale" must be a finite number/],
  [{ cfgScale: NaN }, RangeError, /"cfgScale" is NaN/],
  [{ sampler: 'euler_ancestral' }, RangeError, /unknown sampler "euler_ancestral"\. Did you mean "euler_a"\?/],
  [{ sampler: 'dpmpp_2m' }, RangeError, /Did you mean "dpm\+\+2m"/],
  [{ schedule: 'karas' }, RangeError, /unknown schedule "karas"\. Did you mean "karras"/],
  [{ sampler: 'ddim', schedule: 'karras' }, RangeError, /schedule "karras" applies to k-diffusion samplers only/],
  [{ seed: 1.5 }, RangeError, /"seed" must be an integer/],
  [{ seed: -2 }, RangeError, /"seed" must be an integer/],
  [{ seed: '1' }, TypeError, /"seed" must be a number/],
  [{ seed: Number.MAX_SAFE_INTEGER, batchSize: 2 }, RangeError, /"seed" \+ batchSize/],
  [{ rng: 'gpu' }, RangeError, /"rng" must be "philox" or "cpu" \("philox" is the GPU one\)/],
  [{ noiseSeedDelta: -1 }, RangeError, /"noiseSeedDelta" must be an integer from 0/],
  [{ batchSize: 0 }, RangeError, /"batchSize" must be an integer from 1/],
  [{ clipSkip: 3 }, RangeError, /"clipSkip" must be an integer from 1 to 2/],
  [{ eta: -1 }, RangeError, /"eta" must be a finite number >= 0/],
  [{ emphasis: 'loud' }, RangeError, /"emphasis"/],
  [{ strength: 0.5 }, TypeError, /"strength" applies to img2img only/],
  [{ initImage: img, strength: 0 }, RangeError, /"strength" must be in \(0, 1\]/],
  [{ initImage: img, strength: 1.5 }, RangeError, /"strength" must be in \(0, 1\]/],
  [{ initImage: img, strength: 0.1, steps: 5 }, RangeError, /"strength" 0\.1 with 5 steps runs no step/],
  [{ initImage: 'cat.png' }, TypeError, /"initImage" must be PNG bytes/],
  [{ initImage: { data: new Float32Array(10), shape: [1, 3, 2, 5] } }, RangeError, /"initImage" tensor must have shape|"initImage".data/],
  [{ initImage: new Uint8Array([1, 2, 3]) }, TypeError, /not a readable PNG/],
  [{ mask: img }, TypeError, /"mask" needs "initImage"/],
  [{ initImage: img, mask: { data: new Float32Array(64).fill(2), shape: [1, 1, 8, 8] } }, RangeError, /"mask".data\[0\] = 2 is outside \[0, 1\]/],
  [{ noise: new Float32Array(5) }, RangeError, /"noise" must hold 4 values/],
  [{ noise: [1, 2] }, TypeError, /"noise" must be a Float32Array/],
  [{ noise: new Float32Array(4), latents: new Float32Array(4) }, TypeError, /"noise" or "latents", not both/],
  [{ loraTags: 'ignore' }, RangeError, /"loraTags" must be 'error' or 'warn'/],
  [{ onProgress: 1 }, TypeError, /"onProgress" must be a function/],
  [{ signal: {} }, TypeError, /"signal" must be an AbortSignal/],
  [{ stpes: 20 }, TypeError, /unknown option "stpes"/],
];

for (const [patch, Type, re] of cases) {
  test(`rejects ${JSON.stringify(patch, (k, v) => (v instanceof Float32Array || v instanceof Uint8Array ? `[${v.constructor.name}]` : Number.isNaN(v) ? 'NaN' : v === Infinity ? 'Infinity' : v))}`, async () => {
    const m = fakeModel();
    await assert.rejects(generate(m, { ...base, ...patch }), (e) => {
      assert.ok(e instanceof Type, `${e.constructor.name}: ${e.message}`);
      assert.match(e.message, re);
      return true;
    });
    assert.equal(m.calls.length, 0, 'no network ran');
  });
}

test('a model without the network methods is a TypeError', async () => {
  await assert.rejects(generate({}, base), /the model must be a loaded StableDiffusion/);
});

test('an already aborted signal rejects before any network runs', async () => {
  const m = fakeModel();
  await assert.rejects(generate(m, { ...base, signal: AbortSignal.abort() }), { name: 'AbortError' });
  assert.equal(m.calls.length, 0);
});
