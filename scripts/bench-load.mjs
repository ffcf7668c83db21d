#!/usr/bin/env node
// npm run bench:load [-- --size full|tiny --weights q8_0|f16|f32|file --gguf q8_0|q4_0|f16 --dir .bench/load --keep --use]
//
// Time to load an SD 1.5-shaped checkpoint from .ckpt (fp32 torch zip), .safetensors (fp16) and
// .gguf (q8_0, made by sdnode convert), relative to just reading the file, and peak RSS.
// The model is generated here with random values (never committed): `--size full` is the real
// SD 1.5 shape (1145 tensors, 4.3 GB as fp32), `--size tiny` the 985-tensor test model.
// Each measurement runs in a fresh child process so its peak RSS is its own. "read" reads the
// whole file sequentially (page cache warm, after one untimed read); "load" is
// StableDiffusion.load when the native addon has it, else the header parse + reading every tensor;
// "header" is readTensorTable alone (module import excluded). "cpu" is the load's user + system
// CPU time (steadier than wall time on a shared machine). Weights whose file dtype is the target
// are used in place from the mapping: their pages become resident when a network first runs, so
// peak RSS of such a load is small and the first step pays the (page-cache) reads. --use runs
// every network once at its smallest size after loading (CLIP 1x77, UNet and VAE on an 8x8 latent,
// VAE encode of 64x64) so every weight is touched: "use" is that time and "peak RSS (use)" the peak
// of the whole process (weights + the small activations). --weights file keeps the file dtypes.
import { spawnSync } from 'node:child_process';
import { mkdirSync, openSync, readSync, closeSync, statSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeModelFiles } from './bench-model.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => join(root, 'dist', p);
const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : dflt; };

if (args[0] === '--child') await child(args[1], args[2], args[3]);
else await main();

async function main() {
  const size = opt('size', 'full');
  const weights = opt('weights', 'q8_0');
  const dir = opt('dir', join(root, '.bench', 'load'));
  mkdirSync(dir, { recursive: true });
  const files = await generate(size, dir, weights);
  const rows = [];
  for (const [fmt, file] of files) {
    run('read', file); // warm the page cache so both timings see the same cache state
    const read = run('read', file);
    const load = run(args.includes('--use') ? 'use' : 'load', file, weights);
    const header = run('header', file);
    rows.push({ format: fmt, file, bytes: statSync(file).size, headerMs: header.ms, readMs: read.ms, loadMs: load.ms, cpuMs: load.cpuMs, useMs: load.useMs, useRssMiB: load.useRssMiB, ratio: load.ms / read.ms, peakRssMiB: load.maxRssMiB, readRssMiB: read.maxRssMiB, weightMiB: load.weightMiB, loader: load.loader });
  }
  console.log(`\nSD 1.5-shaped model (${size}), load with weights=${weights}, ${new Date().toISOString()}`);
  console.log('format        size     header      read      load  load cpu   load/read  peak RSS (load)   weights       use  peak RSS (use)  loader');
  for (const r of rows) {
    const w = r.weightMiB === undefined ? '-' : `${r.weightMiB.toFixed(0)} MiB`;
    const use = r.useMs === undefined ? ['-', '-'] : [ms(r.useMs), `${r.useRssMiB.toFixed(0)} MiB`];
    console.log(`${r.format.padEnd(12)} ${mib(r.bytes).padStart(9)} ${ms(r.headerMs).padStart(9)} ${ms(r.readMs).padStart(9)} ${ms(r.loadMs).padStart(9)} ${ms(r.cpuMs).padStart(9)} ${r.ratio.toFixed(2).padStart(9)}x ${(r.peakRssMiB.toFixed(0) + ' MiB').padStart(14)} ${w.padStart(9)} ${use[0].padStart(9)} ${use[1].padStart(14)}  ${r.loader}`);
  }
  console.log(JSON.stringify(rows));
  if (!args.includes('--keep')) rmSync(dir, { recursive: true, force: true });
}

function run(mode, file, weights = '') {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', mode, file, weights], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${mode} ${file} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

async function child(mode, file, weights) {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let loader = 'fs read', weightMiB, useMs, useRssMiB, loadRssMiB, loadCpu;
  if (mode === 'read') {
    const fd = openSync(file, 'r');
    const buf = Buffer.allocUnsafe(16 << 20);
    let pos = 0, n;
    while ((n = readSync(fd, buf, 0, buf.length, pos)) > 0) pos += n;
    closeSync(fd);
  } else if (mode === 'header') {
    loader = 'readTensorTable';
    const { readTensorTable } = await import(dist('formats/index.js'));
    const t1 = performance.now();
    readTensorTable(file);
    console.log(JSON.stringify({ ms: performance.now() - t1, maxRssMiB: process.resourceUsage().maxRSS / 1024, loader }));
    return;
  } else {
    let sd;
    try { ({ StableDiffusion: sd } = await import(dist('sd.js'))); } catch { sd = undefined; }
    if (sd) {
      loader = `StableDiffusion.load(weights=${weights})`;
      const m = await sd.load(file, weights === 'file' ? { backend: 'cpu' } : { weights, backend: 'cpu' });
      weightMiB = m.info.weightBytes / 1048576;
      if (mode === 'use') {
        loadRssMiB = process.resourceUsage().maxRSS / 1024;
        loadCpu = process.cpuUsage(c0);
        const t1 = performance.now();
        const f32 = (shape) => ({ data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.1), shape });
        const ctx = await m.encodeText({ data: new Int32Array(77).fill(1), shape: [1, 77] });
        await m.unet(f32([1, m.info.unet.inChannels, 8, 8]), new Float32Array([500]), ctx);
        await m.vaeDecode(f32([1, 4, 8, 8]));
        await m.vaeEncode(f32([1, 3, 64, 64]));
        useMs = performance.now() - t1;
        useRssMiB = process.resourceUsage().maxRSS / 1024;
      }
      await m.dispose();
    } else {
      loader = 'readTensorTable + readTensorBytes (no native loader)';
      const { readTensorTable, readTensorBytes } = await import(dist('formats/index.js'));
      const table = readTensorTable(file);
      for (const t of table.tensors) readTensorBytes(table, t);
    }
  }
  const ms = performance.now() - t0 - (useMs ?? 0);
  const c = loadCpu ?? process.cpuUsage(c0);
  console.log(JSON.stringify({ ms, cpuMs: (c.user + c.system) / 1000, maxRssMiB: loadRssMiB ?? process.resourceUsage().maxRSS / 1024, weightMiB, useMs, useRssMiB, loader }));
}

async function generate(size, dir, weights) {
  const ggType = opt('gguf', weights === 'file' ? 'q8_0' : weights);
  const f = await makeModelFiles({ size, dir, ggType, formats: ['ckpt', 'safetensors', 'gguf'] });
  return [['ckpt (f32)', f.ckpt], ['safetensors', f.safetensors], [`gguf (${f.ggType})`, f.gguf]];
}

function mib(n) { return `${(n / 1048576).toFixed(0)} MiB`; }
function ms(v) { return v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(0)} ms`; }
