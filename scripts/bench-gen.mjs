#!/usr/bin/env node
// npm run bench:gen [-- --type q4_0 --size 512 --steps 20 --threads 2 --tiles 0,320/64 --dir .bench/gen --keep]
//
// A whole txt2img generation the way a user runs one: a fresh process loads the SD 1.5-shaped
// .gguf (random weights, made once by scripts/bench-model.mjs and used in place), generate() with
// Euler, CFG 7.5, the given steps and size, then the PNG is written. One child per VAE tile
// setting (0 = whole-image decode), so each peak RSS is its own. Reports per phase the wall time
// and the peak RSS of that phase, and
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
  // VAE tiling per run: 'T' (tile side T px, overlap T/4), 'T/O' (overlap O px), 0 = whole image.
  const tiles = opt('tiles', '0,320/64').split(',').map((t) => t.split('/').map(Number));
  const dir = opt('dir', join(root, '.bench', 'gen'));
  mkdirSync(dir, { recursive: true });
  const files = await makeModelFiles({ size: 'full', dir, ggType: type, formats: ['gguf'] });
  const rows = [];
  for (const [tile, overlap] of tiles) {
    process.stderr.write(`bench:gen ${type} ${size}x${size} ${steps} steps, vaeTileSize ${tile}${overlap ? ` overlap ${overlap}` : ''} ...\n`);
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child',
      JSON.stringify({ file: files.gguf, size, steps, threads, tile, overlap, out: join(dir, `gen-${type}-${size}-tile${tile}.png`) })],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (r.status !== 0) throw new Error(`bench:gen child failed (${r.status})`);
    rows.push({ tile, overlap, ...JSON.parse(r.stdout.trim().split('\n').pop()) });
  }
  const s = (ms) => (ms / 1000).toFixed(2);
  const g = (kib) => (kib * 1024 / 1e9).toFixed(3);
  const pk = (p) => (p ? `${(p.total / 1e3).toFixed(3)} (${(p.anon / 1e3).toFixed(2)} + ${(p.file / 1e3).toFixed(2)})` : '-');
  console.log(`\nwhole generation: ${type} .gguf (in place), ${size}x${size}, ${steps} Euler steps, CFG 7.5, batch 1, ${threads} threads, ${new Date().toISOString()}`);
  console.log('| VAE tiles | load s | encode s | sampling s (per step) | decode s | PNG s | total s | peak RSS GB (anon + file): encode | sampling | decode+PNG | whole process (maxRSS) |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.tile ? `${r.tile} px${r.overlap ? `, overlap ${r.overlap}` : ''}` : 'whole'} | ${s(r.loadMs)} | ${s(r.t.conditioning)} | ${s(r.t.sampling)} (${s(r.t.sampling / steps)}) | ${s(r.decodeMs)} | ${s(r.pngMs)} | ${s(r.totalMs)} | ${pk(r.peaks.encode)} | ${pk(r.peaks.sampling)} | ${pk(r.peaks.decode)} | ${g(r.maxRssKiB)} |`);
  }
  // Each tiled run against the whole-image run closest before it (alternate '0,320/64,0,320/64'
  // on a noisy machine so each pair ran back to back).
  let whole;
  for (const r of rows) if (r.tile === 0) whole = r; else if (whole) console.log(`tiled (${r.tile} px${r.overlap ? `, overlap ${r.overlap} px` : ''}) decode / whole decode: ${(r.decodeMs / whole.decodeMs).toFixed(2)}x wall, ${(r.decodeCpuMs / whole.decodeCpuMs).toFixed(2)}x CPU time`);
  console.log(JSON.stringify(rows));
  if (!args.includes('--keep')) rmSync(dir, { recursive: true, force: true });
}

// Resident memory now (MB): total, anonymous, file-backed (the weights used in place from the file).
function rss() {
  const s = readFileSync('/proc/self/status', 'utf8');
  const kib = (k) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN);
  return { total: kib('VmRSS') * 1024 / 1e6, anon: kib('RssAnon') * 1024 / 1e6, file: kib('RssFile') * 1024 / 1e6 };
}

async function child({ file, size, steps, threads, tile, overlap, out }) {
  const { StableDiffusion } = await import(join(root, 'dist', 'sd.js'));
  // The native work runs off the main thread, so a timer sees memory while each phase runs.
  let phase = 'load';
  const peaks = {};
  const sample = () => {
    const r = rss();
    r.heap = process.memoryUsage().heapUsed / 1e6;
    if (!(r.total <= (peaks[phase]?.total ?? 0))) peaks[phase] = r;
  };
  const timer = setInterval(sample, 10);
  const t0 = performance.now();
  const sd = await StableDiffusion.load(file, { backend: 'cpu', threads });
  const loadMs = performance.now() - t0;
  sample();
  phase = 'encode';
  // Phases switch when generate() first calls the UNet and the VAE decoder (after it released the
  // previous phase's memory), so each peak is that phase's own.
  let tDecode0 = 0, cDecode0;
  const unet = sd.unet.bind(sd), vaeDecode = sd.vaeDecode.bind(sd);
  sd.unet = (...a) => { if (phase === 'encode') { sample(); phase = 'sampling'; } return unet(...a); };
  sd.vaeDecode = (...a) => { if (phase !== 'decode') { sample(); phase = 'decode'; tDecode0 = performance.now(); cDecode0 = process.cpuUsage(); } return vaeDecode(...a); };
  const res = await sd.generate({
    prompt: 'a photograph of an astronaut riding a horse', negativePrompt: 'blurry', width: size, height: size,
    steps, cfgScale: 7.5, sampler: 'euler', seed: 42, vaeTileSize: tile, ...(overlap ? { vaeTileOverlap: overlap } : {}),
  });
  const tPng = performance.now();
  const cDecode = process.cpuUsage(cDecode0);
  writeFileSync(out, res.png);
  const tEnd = performance.now();
  sample();
  clearInterval(timer);
  await sd.dispose();
  console.log(JSON.stringify({
    loadMs, t: res.timings, decodeMs: tPng - tDecode0, decodeCpuMs: (cDecode.user + cDecode.system) / 1000, pngMs: tEnd - tPng, totalMs: tEnd - t0,
    peaks, maxRssKiB: process.resourceUsage().maxRSS,
  }));
}
