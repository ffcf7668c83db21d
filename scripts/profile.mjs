#!/usr/bin/env node
// `npm run profile`: where the time of one UNet step and one VAE decode goes, by op kind (conv 3x3,
// conv 1x1, linear, attention, norms, elementwise, layout) with time, share and GFLOP/s, on a
// full-size SD 1.5-shaped model built in memory from the weight formula.
//   npm run profile -- [--weights q8_0] [--size 512] [--threads 2] [--by-shape]
// --by-shape: conv and linear rows per shape and weight type (find the layer a change slowed).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : def;
};
const build = join(root, 'build-bench');
function run(cmd, argv, env = process.env) {
  const r = spawnSync(cmd, argv, { cwd: root, stdio: 'inherit', env });
  if (r.status !== 0) {
    console.error(`profile: ${cmd} ${argv.join(' ')} failed (${r.status ?? r.signal})`);
    process.exit(1);
  }
}
run('cmake', ['-S', root, '-B', build, '-DSDNODE_TESTS=ON', '-DCMAKE_BUILD_TYPE=Release']);
run('cmake', ['--build', build, '-j', '2', '--target', 'sdcore_tests']);
run(join(build, 'sdcore_tests'), ['profile_bench'], {
  ...process.env,
  SDNODE_BENCH: '1',
  SDNODE_PROFILE_DTYPE: opt('weights', 'q8_0'),
  SDNODE_PROFILE_SIZE: opt('size', '512'),
  SDNODE_BENCH_THREADS: opt('threads', '2'),
  ...(args.includes('--by-shape') ? { SDNODE_PROFILE_BY_SHAPE: '1' } : {}),
});
