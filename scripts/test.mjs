#!/usr/bin/env node
// `npm test`: compiles the TypeScript, builds and runs the native core tests (op tests against the
// scalar reference on every ISA this CPU has), then runs the node:test suites in test/.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const jobs = String(Math.max(1, cpus().length));

function run(cmd, args, opts = {}) {
  console.log(`> ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.status !== 0) {
    console.error(`test: '${cmd} ${args.join(' ')}' failed (${r.error?.message ?? `exit ${r.status}`})`);
    process.exit(r.status || 1);
  }
}

const only = process.argv.slice(2);
run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json']);

if (!process.env.SDNODE_SKIP_NATIVE_TESTS) {
  run('cmake', ['-S', '.', '-B', 'build-tests', '-DSDNODE_TESTS=ON', '-DCMAKE_BUILD_TYPE=Release']);
  run('cmake', ['--build', 'build-tests', '-j', jobs]);
  run(join(root, 'build-tests/sdcore_tests'), []);
}

const files = only.length ? only : readdirSync(join(root, 'test'))
  .filter((f) => f.endsWith('.test.mjs')).sort().map((f) => join('test', f));
run(process.execPath, ['--test', '--test-concurrency=1', ...files]);
