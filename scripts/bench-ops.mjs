#!/usr/bin/env node
// `npm run bench:ops`: GFLOP/s per op and weight dtype at SD 1.5 shapes (512x512, CFG batch 2), and
// as a fraction of the machine's measured FMA peak (issue 2). The measurements live in the native
// test runner as `<op>_bench` cases that only run with SDNODE_BENCH=1; this script builds the runner
// in build-bench/ (Release) and runs them one after another.
//   npm run bench:ops                 every op bench
//   npm run bench:ops -- gemm         only the benches whose name contains "gemm"
// Env passed through: SDNODE_BENCH_REPS (runs per median), SDNODE_BENCH_THREADS (default 2),
// SDNODE_BENCH_CLOCK=cpu (CPU time of the threads instead of wall time, for a busy machine),
// SDNODE_ISA (limit the level).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const build = join(root, 'build-bench');
// Each op area adds its native bench case here (bench_misc: attention, norms, pointwise ops).
const benches = ['gemm_bench', 'conv_bench', 'bench_misc'];

function run(cmd, args, env = process.env) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env });
  if (r.status !== 0) {
    console.error(`bench:ops: ${cmd} ${args.join(' ')} failed (${r.status ?? r.signal})`);
    process.exit(1);
  }
}

run('cmake', ['-S', root, '-B', build, '-DSDNODE_TESTS=ON', '-DCMAKE_BUILD_TYPE=Release']);
run('cmake', ['--build', build, '-j', '2', '--target', 'sdcore_tests']);
const exe = join(build, 'sdcore_tests');
if (!existsSync(exe)) {
  console.error(`bench:ops: ${exe} was not built`);
  process.exit(1);
}
const filters = process.argv.slice(2);
// conv_bench runs only when SDNODE_BENCH mentions "conv"; the others only need it set.
const env = { ...process.env, SDNODE_BENCH: '1,conv' };
for (const name of benches) {
  if (filters.length && !filters.some((f) => name.includes(f))) continue;
  console.log(`\n### ${name}`);
  run(exe, [name], env);
}
