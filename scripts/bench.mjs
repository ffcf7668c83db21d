#!/usr/bin/env node
// `npm run bench`: the three networks at full SD 1.5 size, weights generated in memory from the
// tiny-sd15 weight formula (nothing is downloaded or written). One process per weight type so peak
// RSS is per type. Prints a markdown table of medians (the first UNet call of a shape is excluded:
// it plans the arena).
//   npm run bench -- [--types f16,q8_0] [--sizes 256,512] [--threads 2] [--reps 3] [--backend cpu|cuda] [--build dir]
// A type 'q8_0+int8conv' (or q4_0+...) runs that type with convActivations 'q8_0' (SDNODE_CONV_INT8=1).
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : def;
};
const types = opt('types', 'f32,f16,q8_0,q4_0').split(',');
const sizes = opt('sizes', '256,512');
const threads = opt('threads', '2');
const reps = opt('reps', '3');
const backend = opt('backend', 'cpu');

function run(cmd, argv, env) {
  const r = spawnSync(cmd, argv, { cwd: root, encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) {
    console.error(r.stdout, r.stderr);
    throw new Error(`bench: '${cmd} ${argv.join(' ')}' failed`);
  }
  return r.stdout;
}

const build = join(root, opt('build', 'build-bench'));
const jobs = String(Math.max(1, Math.min(cpus().length, 8)));
run('cmake', ['-S', '.', '-B', build, '-DSDNODE_TESTS=ON', '-DCMAKE_BUILD_TYPE=Release', ...(backend === 'cuda' ? ['-DSDNODE_CUDA=ON'] : [])]);
run('cmake', ['--build', build, '-j', jobs]);

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};
const rows = [];
for (const type of types) {
  process.stderr.write(`bench: ${type} ...\n`);
  const [dtype, extra] = type.split('+');
  const out = run(join(build, 'sdcore_tests'), ['models_bench'], {
    ...(extra === 'int8conv' ? { SDNODE_CONV_INT8: '1' } : {}),
    SDNODE_BENCH: '1', SDNODE_BENCH_DTYPE: dtype, SDNODE_BENCH_SIZES: sizes, SDNODE_BENCH_THREADS: threads,
    SDNODE_BENCH_REPS: reps, SDNODE_TEST_BACKEND: backend,
  });
  const row = { type, unet: {}, vae: {}, clip: NaN, rss: NaN, weights: NaN };
  for (const line of out.split('\n')) {
    let m;
    if ((m = /UNet (\d+)x\d+ batch 2 .* run (\d+): ([\d.]+) s/.exec(line)) && m[2] !== '1') (row.unet[m[1]] ??= []).push(Number(m[3]));
    else if ((m = /VAE decode (\d+)x\d+: ([\d.]+) s/.exec(line))) row.vae[m[1]] = Number(m[2]);
    else if ((m = /CLIP batch 2: ([\d.]+) s/.exec(line))) row.clip = Number(m[1]);
    else if ((m = /peak RSS so far ([\d.]+) GiB/.exec(line))) row.rss = Number(m[1]);
    else if ((m = /weights ([\d.]+) GiB/.exec(line))) row.weights = Number(m[1]);
  }
  rows.push(row);
}
const sz = sizes.split(',');
console.log(`\nnetworks, ${backend}, ${threads} threads (median of ${Number(reps) - 1} UNet calls after the first; batch 2 = one CFG step)\n`);
console.log(`| weights | GiB | ${sz.map((s) => `UNet ${s} s`).join(' | ')} | ${sz.map((s) => `VAE dec ${s} s`).join(' | ')} | CLIP s | peak RSS GiB |`);
console.log(`|---|---|${sz.map(() => '---|').join('')}${sz.map(() => '---|').join('')}---|---|`);
for (const r of rows) {
  console.log(`| ${r.type} | ${r.weights.toFixed(2)} | ${sz.map((s) => median(r.unet[s] ?? []).toFixed(2)).join(' | ')} | ` +
    `${sz.map((s) => (r.vae[s] ?? NaN).toFixed(2)).join(' | ')} | ${r.clip.toFixed(2)} | ${r.rss.toFixed(2)} |`);
}
