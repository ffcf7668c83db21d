// img2img and inpainting on the fake model, against the float64 re-computation.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generate } from '../dist/pipeline/index.js';
import { encodePng } from '../dist/image.js';
import { encodePrompt, flattenChunks } from '../dist/tokenizer/index.js';
import { alphasCumprod, fakeEncode, fakeModel, maxRel, pseudoNoise, refContext, refEuler, refSigmas } from './helpers/pipeline-ref.mjs';

const H = 16, W = 24, h = 2, w = 3, n = 4 * h * w, plane = h * w;
const ctx = (p) => refContext(flattenChunks(encodePrompt(p).chunks).tokens);

function testImage(height = H, width = W) {
  const data = new Float32Array(3 * height * width);
  for (let c = 0; c < 3; c++) for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    data[(c * height + y) * width + x] = Math.sin(0.3 * x + 0.7 * y + c) * 0.9;
  }
  return { data, shape: [1, 3, height, width] };
}
const initLatent = (img) => {
  const out = new Float64Array(n);
  for (let c = 0; c < 4; c++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    out[(c * h + y) * w + x] = Math.fround(fakeEncode(img.data, 0, c, y, x, H, W)) * 0.18215;
  }
  return out;
};
// Repaint the left third (latent column 0), keep the rest.
function leftMask() {
  const data = new Float32Array(H * W);
  for (let y = 0; y < H; y++) for (let x = 0; x < 8; x++) data[y * W + x] = 1;
  return { data, shape: [1, 1, H, W] };
}
const repaint = (i) => i % w === 0;

describe('img2img', () => {
  test('euler, strength 0.5 of 4 steps: starts at sigma[2] from the encoded image', async () => {
    const img = testImage();
    const noise = pseudoNoise(n, 3);
    const m = fakeModel();
    const res = await generate(m, { prompt: 'a cat', negativePrompt: '', initImage: img, strength: 0.5, steps: 4, cfgScale: 7, sampler: 'euler', noise });
    const sig = refSigmas(4).slice(2);
    const init = initLatent(img);
    const want = refEuler({
      conds: [{ ctx: ctx('a cat'), weight: 1 }], uncond: ctx(''),
      x: Array.from(init, (v, i) => v + sig[0] * noise[i]), sigmas: sig, cfg: 7, h, w,
    });
    assert.equal(m.calls.filter((c) => c.fn === 'unet').length, 2);
    assert.ok(maxRel(res.latent.data, want) < 1e-5);
    assert.deepEqual(res.image.shape, [1, 3, H, W]);
    assert.match(res.parameters, /Size: 24x16, Denoising strength: 0\.5, Version/);
  });

  test('ddim, strength 0.5 of 4 steps: the first UNet input is sqrt(ac) init + sqrt(1 - ac) noise at t = 251', async () => {
    const img = testImage();
    const noise = pseudoNoise(n, 4);
    const m = fakeModel();
    await generate(m, { prompt: 'a cat', initImage: img, strength: 0.5, steps: 4, sampler: 'ddim', noise });
    const first = m.calls.find((c) => c.fn === 'unet');
    assert.equal(first.t[0], 251);
    const ac = alphasCumprod[251];
    const init = initLatent(img);
    const want = Array.from(init, (v, i) => Math.sqrt(ac) * v + Math.sqrt(1 - ac) * noise[i]);
    assert.ok(maxRel(first.x.subarray(0, n), want) < 1e-6);
  });

  test('a PNG init image of another size is resized (bilinear) to width x height; size defaults to the image', async () => {
    const big = testImage(32, 48);
    const png = encodePng(big, 0);
    const m = fakeModel();
    await generate(m, { prompt: 'x', initImage: png, width: W, height: H, steps: 2, sampler: 'euler', seed: 1 });
    const enc = m.calls.find((c) => c.fn === 'vaeEncode');
    assert.deepEqual(enc.shape, [1, 3, H, W]);
    // 2x downscale with half-pixel centres: the mean of each 2x2 block (of the 8-bit image)
    const q = (v) => (Math.trunc(255 * Math.min(1, Math.max(0, (v + 1) / 2))) / 255) * 2 - 1;
    const at = (c, y, x) => q(big.data[(c * 32 + y) * 48 + x]);
    const want = (at(1, 6, 10) + at(1, 6, 11) + at(1, 7, 10) + at(1, 7, 11)) / 4;
    assert.ok(Math.abs(enc.data[(1 * H + 3) * W + 5] - want) < 1e-6);
    const m2 = fakeModel();
    const res = await generate(m2, { prompt: 'x', initImage: testImage(20, 30), steps: 2, sampler: 'euler', seed: 1 });
    assert.deepEqual(res.image.shape, [1, 3, 16, 24]);
  });
});

describe('inpainting', () => {
  test('4-channel model: latent blending after each step; the kept region ends as the init latent', async () => {
    const img = testImage();
    const noise = pseudoNoise(n, 6);
    const res = await generate(fakeModel(), {
      prompt: 'a dog', initImage: img, mask: leftMask(), strength: 1, steps: 3, cfgScale: 5, sampler: 'euler', noise,
    });
    const sig = refSigmas(3);
    const init = initLatent(img);
    const want = refEuler({
      conds: [{ ctx: ctx('a dog'), weight: 1 }], uncond: ctx(''),
      x: Array.from(init, (v, i) => v + sig[0] * noise[i]), sigmas: sig, cfg: 5, h, w,
      blend: (s, x) => { for (let i = 0; i < n; i++) if (!repaint(i % plane)) x[i] = init[i] + sig[s + 1] * noise[i]; },
    });
    assert.ok(maxRel(res.latent.data, want) < 1e-5);
    for (let i = 0; i < n; i++) if (!repaint(i % plane)) assert.equal(res.latent.data[i], Math.fround(init[i]));
  });

  test('9-channel model: UNet input is cat(x, mask, masked-image latent), no blending', async () => {
    const img = testImage();
    const noise = pseudoNoise(n, 7);
    const m = fakeModel({ inChannels: 9 });
    const res = await generate(m, { prompt: 'a dog', initImage: img, mask: leftMask(), strength: 1, steps: 3, cfgScale: 5, sampler: 'euler', noise });
    const masked = { data: Float32Array.from(img.data), shape: img.shape };
    for (let c = 0; c < 3; c++) for (let y = 0; y < H; y++) for (let x = 0; x < 8; x++) masked.data[(c * H + y) * W + x] = 0;
    const concat = new Float64Array(5 * plane);
    for (let i = 0; i < plane; i++) concat[i] = repaint(i) ? 1 : 0;
    concat.set(initLatent(masked), plane);
    const first = m.calls.find((c) => c.fn === 'unet');
    assert.deepEqual(first.shape, [2, 9, h, w]);
    assert.ok(maxRel(first.x.subarray(4 * plane, 9 * plane), concat) < 1e-6);
    const sig = refSigmas(3);
    const want = refEuler({
      conds: [{ ctx: ctx('a dog'), weight: 1 }], uncond: ctx(''),
      x: Array.from(initLatent(img), (v, i) => v + sig[0] * noise[i]), sigmas: sig, cfg: 5, h, w, concat,
    });
    assert.ok(maxRel(res.latent.data, want) < 1e-5);
  });

  test('9-channel model without a mask: mask of ones and the latent of a zero (grey) image', async () => {
    const m = fakeModel({ inChannels: 9 });
    await generate(m, { prompt: 'x', width: W, height: H, steps: 1, sampler: 'euler', seed: 2 });
    const first = m.calls.find((c) => c.fn === 'unet');
    const zero = initLatent({ data: new Float32Array(3 * H * W) });
    for (let i = 0; i < plane; i++) assert.equal(first.x[4 * plane + i], 1);
    assert.ok(maxRel(first.x.subarray(5 * plane, 9 * plane), zero) < 1e-6);
  });
});
