// The `sdnode` command: generate end to end on the tiny model (a PNG whose parameters read back),
// no overwriting, bad command lines (exit 2, one line, no stack), batches and progress on a fake model.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { main } from '../dist/cli.js';
import { generate } from '../dist/pipeline/index.js';
import { readPngText } from '../dist/image.js';
import { fakeModel } from './helpers/pipeline-ref.mjs';
import { cleanup, tinyModelPath } from './helpers/tiny-model.mjs';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sdnode-cli-'));
after(() => { rmSync(dir, { recursive: true, force: true }); cleanup(); });
const run = (...args) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

let addon = true;
try { (await import('../dist/native.js')).native(); } catch { addon = false; }

describe('sdnode generate on the tiny model', { skip: addon ? false : 'addon not built' }, () => {
  test('writes a PNG whose parameters chunk reads back; never overwrites without --force', () => {
    const model = tinyModelPath('f16');
    const out = join(dir, 'cat.png');
    const args = ['generate', '-m', model, '-p', 'a photo of a (cat:1.2)', '-n', 'blurry', '-W', '64', '-H', '48', '--steps', '3',
      '--cfg-scale', '7', '--sampling-method', 'dpm++2m', '--schedule', 'karras', '-s', '42', '--rng', 'cpu', '-t', '2', '--type', 'f32', '-o', out];
    const r = run(...args);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /cat\.png \(seed 42\)/);
    assert.match(r.stderr, /step 3\/3/); // plain progress lines when stderr is not a TTY
    const png = readFileSync(out);
    const img = PNG.sync.read(png);
    assert.deepEqual([img.width, img.height], [64, 48]);
    const hash = createHash('sha256').update(readFileSync(model)).digest('hex').slice(0, 10);
    assert.equal(readPngText(png).parameters,
      'a photo of a (cat:1.2)\nNegative prompt: blurry\nSteps: 3, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 42, ' +
      `Size: 64x48, Model hash: ${hash}, Model: tiny.f16, RNG: CPU, Version: sdnode 0.1.0`);

    const again = run(...args);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /cat\.png exists \(use --force to overwrite/);
    assert.deepEqual(readFileSync(out), png);
    const forced = run(...args, '--force', '-q');
    assert.equal(forced.status, 0, forced.stderr);
    assert.deepEqual(readFileSync(out), png, 'same seed, same image');
  });
});

describe('sdnode generate: bad command lines exit 2 with one line and no stack', () => {
  const model = join(dir, 'm.safetensors');
  writeFileSync(model, 'x');
  const cases = [
    [['generate', '-p', 'a'], /-m\/--model is required/],
    [['generate', '-m', model], /-p\/--prompt is required/],
    [['generate', '-m', model, '-p', 'a', '--stpes', '3'], /Unknown option '--stpes' \(did you mean --steps\?\)/],
    [['generate', '-m', model, '-p', 'a', '--steps', 'ten'], /--steps must be a number, got 'ten'/],
    [['generate', '-m', model, '-p', 'a', '--steps', '0'], /--steps must be an integer from 1/],
    [['generate', '-m', model, '-p', 'a', '-W', '500'], /--width must be a positive multiple of 8/],
    [['generate', '-m', model, '-p', 'a', '--cfg-scale', 'Infinity'], /--cfg-scale must be a finite number/],
    [['generate', '-m', model, '-p', 'a', '--sampling-method', 'dpmpp_2m'], /unknown sampler "dpmpp_2m"\. Did you mean "dpm\+\+2m"\?/],
    [['generate', '-m', model, '-p', 'a', '--strength', '0.5'], /--strength applies to img2img only/],
    [['generate', '-m', model, '-p', 'a', '--mask', 'm.png'], /--mask needs --init-img/],
    [['generate', '-m', model, '-p', 'a', '--rng', 'gpu'], /--rng must be "philox" or "cpu"/],
    [['generate', '-m', model, '-p', 'a', 'stray'], /unexpected argument 'stray'/],
    [['generate', '-m', join(dir, 'missing.ckpt'), '-p', 'a'], /model file not found/],
    [['generate', '-m', model, '-p', 'a', '-i', join(dir, 'nope.png')], /--init-img file not found/],
    [['frobnicate'], /unknown command 'frobnicate'/],
  ];
  for (const [argv, re] of cases) {
    test(argv.slice(1).join(' ') || argv[0], () => {
      const r = run(...argv);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, re);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    });
  }

  test('--help teaches and exits 0', () => {
    const r = run('generate', '--help');
    assert.equal(r.status, 0);
    assert.match(r.stdout, /--sampling-method S/);
    assert.match(r.stdout, /Example:/);
    assert.equal(run('--help').status, 0);
    assert.equal(run().status, 2);
  });
});

describe('sdnode generate with an injected model', () => {
  const io = () => {
    const lines = { out: [], err: [], progress: [] };
    const m = fakeModel();
    return { lines, m, io: { out: (s) => lines.out.push(s), err: (s) => lines.err.push(s), progress: { write: (s) => lines.progress.push(s), isTTY: false }, load: async () => Object.assign(m, { dispose: async () => {} }) } };
  };
  const model = join(dir, 'fake.safetensors');
  writeFileSync(model, 'not read');

  test('a batch writes out.png, out_2.png, ... with seeds s, s+1 and the same pixels as the API', async () => {
    const { lines, io: ioo } = io();
    const out = join(dir, 'batch.png');
    const code = await main(['generate', '-m', model, '-p', 'a cat', '-W', '16', '-H', '8', '--steps', '2', '-s', '9', '-b', '2', '--no-model-hash', '-o', out], ioo);
    assert.equal(code, 0, lines.err.join('\n'));
    assert.deepEqual(lines.out, [`${out} (seed 9)`, `${join(dir, 'batch_2.png')} (seed 10)`]);
    assert.deepEqual(lines.progress, lines.progress.filter((s) => /^step \d\/2 /.test(s)));
    const api = await generate(fakeModel(), { prompt: 'a cat', width: 16, height: 8, steps: 2, seed: 9, batchSize: 2, modelName: 'fake' });
    assert.deepEqual(PNG.sync.read(readFileSync(join(dir, 'batch_2.png'))).data, PNG.sync.read(api.images[1].png).data);
    assert.match(readPngText(readFileSync(join(dir, 'batch_2.png'))).parameters, /Seed: 10, Size: 16x8, Model: fake,/);
  });

  test('LoRA tags fail with a hint, and warn with --lora-tags warn', async () => {
    const a = io();
    const out = join(dir, 'lora.png');
    assert.equal(await main(['generate', '-m', model, '-p', 'a cat <lora:x:1>', '-W', '8', '-H', '8', '--steps', '1', '-o', out], a.io), 2);
    assert.match(a.lines.err.join('\n'), /LoRA is not supported yet.*--lora-tags warn/);
    assert.equal(existsSync(out), false);
    const b = io();
    assert.equal(await main(['generate', '-m', model, '-p', 'a cat <lora:x:1>', '-W', '8', '-H', '8', '--steps', '1', '--lora-tags', 'warn', '-q', '-o', out], b.io), 0);
    assert.match(b.lines.err.join('\n'), /warning: prompt: <lora:x:1> ignored/);
  });

  test('img2img and inpainting flags read PNG files', async () => {
    const { lines, m, io: ioo } = io();
    const png = new PNG({ width: 16, height: 8 });
    png.data.fill(255);
    const init = join(dir, 'init.png');
    writeFileSync(init, PNG.sync.write(png));
    const out = join(dir, 'inpaint.png');
    const code = await main(['generate', '-m', model, '-p', 'x', '-i', init, '--mask', init, '--strength', '0.5', '--steps', '4', '-q', '-o', out], ioo);
    assert.equal(code, 0, lines.err.join('\n'));
    assert.deepEqual(m.calls.find((c) => c.fn === 'vaeEncode').shape, [1, 3, 8, 16]);
    assert.equal(m.calls.filter((c) => c.fn === 'unet').length, 2);
    assert.match(readPngText(readFileSync(out)).parameters, /Denoising strength: 0\.5/);
  });
});

describe('sdnode info', { skip: addon ? false : 'addon not built' }, () => {
  test('--cpu and --backends print JSON', () => {
    const cpu = run('info', '--cpu');
    assert.equal(cpu.status, 0);
    assert.equal(typeof JSON.parse(cpu.stdout).isaActive, 'string');
    const b = run('info', '--backends');
    assert.equal(b.status, 0);
    assert.equal(JSON.parse(b.stdout)[0].backend, 'cpu');
  });
});
