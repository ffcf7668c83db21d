#!/usr/bin/env node
// npm run bench:gen [-- --type q4_0 --size 512 --steps 20 --threads 2 --tiles 0,384 --dir .bench/gen --keep]
//
// A whole txt2img generation the way a user runs one: a fresh process loads the SD 1.5-shaped
// .gguf (random weights, made once by scripts/bench-model.mjs and used in place), generate() with
// Euler, CFG 7.5, the given steps and size, then the PNG is written. One child per VAE tile
// setting (0 = whole-image decode), so each peak RSS is its own. Reports per phase the wall time
// and the peak RSS of that phase (VmHWM, reset between phases through /proc/self/clear_refs), and
// the whole process's peak (getrusage maxRSS, which includes everything since exec).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeModelFiles } from './bench-model.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : dflt; };

if (args[0] === '--child') await child(JSON.parse(args[1]));
else await main();

async function main() {
  const type = opt('type', 'q4_0');
  const size = Number(opt('size', '512'));
  const steps = Number(opt('steps', '20'));
  const threads = Number(opt('threads', '2'));
  const tiles = opt('tiles', '0,384').split(',').map(Number);
  const dir = opt('dir', join(root, '.bench', 'gen'));
  mkdirSync(dir, { recursive: true });
  const files = await makeModelFiles({ size: 'full', dir, ggType: type, formats: ['gguf'] });
  const rows = [];
  for (const tile of tiles) {
    process.stderr.write(`bench:gen ${type} ${size}x${size} ${steps} steps, vaeTileSize ${tile} ...\n`);
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child',
      JSON.stringify({ file: files.gguf, size, steps, threads, tile, out: join(dir, `gen-${type}-${size}-tile${tile}.png`) })],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (r.status !== 0) throw new Error(`bench:gen child failed (${r.status})`);
    rows.push({ tile, ...JSON.parse(r.stdout.trim().split('\n').pop()) });
  }
  const s = (ms) => (ms / 1000).toFixed(2);
  const g = (kib) => (kib * 1024 / 1e9).toFixed(3);
  console.log(`\nwhole generation: ${type} .gguf (in place), ${size}x${size}, ${steps} Euler steps, CFG 7.5, batch 1, ${threads} threads, ${new Date().toISOString()}`);
  console.log('| VAE tiles | load s | encode s | sampling s (per step) | decode s | PNG s | total s | peak RSS GB: load+encode | sampling | decode+PNG | whole process |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.tile ? `${r.tile} px` : 'whole'} | ${s(r.loadMs)} | ${s(r.t.conditioning)} | ${s(r.t.sampling)} (${s(r.t.sampling / steps)}) | ${s(r.decodeMs)} | ${s(r.pngMs)} | ${s(r.totalMs)} | ${g(r.hwm.encode)} | ${g(r.hwm.sampling)} | ${g(r.hwm.decode)} | ${g(r.maxRssKiB)} |`);
  }
  const whole = rows.find((r) => r.tile === 0);
  for (const r of rows) if (whole && r !== whole) console.log(`tiled (${r.tile} px) decode / whole decode: ${(r.decodeMs / whole.decodeMs).toFixed(2)}x`);
  console.log(JSON.stringify(rows));
  if (!args.includes('--keep')) rmSync(dir, { recursive: true, force: true });
}

// VmHWM of this process in KiB, then reset it to the current RSS (Linux: clear_refs "5").
function phasePeak() {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  try { writeFileSync('/proc/self/clear_refs', '5'); } catch { /* not Linux: the peak keeps growing */ }
  return m ? Number(m[1]) : NaN;
}

async function child({ file, size, steps, threads, tile, out }) {
  const { StableDiffusion } = await import(join(root, 'dist', 'sd.js'));
  const hwm = {};
  const t0 = performance.now();
  const sd = await StableDiffusion.load(file, { backend: 'cpu', threads });
  const loadMs = performance.now() - t0;
  let tDecode0 = 0;
  const t1 = performance.now();
  const res = await sd.generate({
    prompt: 'a photograph of an astronaut riding a horse', negativePrompt: 'blurry', width: size, height: size,
    steps, cfgScale: 7.5, sampler: 'euler', seed: 42, vaeTileSize: tile,
    onProgress: (p) => {
      if (p.step === 1) hwm.encode = phasePeak(); // load + CLIP + the first step's planning
      if (p.step === p.total) { hwm.sampling = phasePeak(); tDecode0 = performance.now(); }
    },
  });
  const tPng = performance.now();
  writeFileSync(out, res.png);
  const tEnd = performance.now();
  hwm.decode = phasePeak();
  await sd.dispose();
  console.log(JSON.stringify({
    loadMs, t: res.timings, decodeMs: tPng - tDecode0, pngMs: tEnd - tPng, totalMs: tEnd - t0 - 0 + 0, genMs: tEnd - t1,
    hwm, maxRssKiB: process.resourceUsage().maxRSS,
  }));
}
