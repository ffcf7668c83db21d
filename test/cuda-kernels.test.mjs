// Source invariants of the CUDA backend that its GPU tests could miss (they run only on a GPU, and
// a race shows only now and then): every kernel is launched through cuda::enqueue (launch.h), which
// may give it the programmatic-dependent-launch attribute, so every kernel must begin with
// cuda::pdl_entry() or cuda::pdl_wait() (pdl.cuh), the wait for the kernel before it, ahead of any
// memory access.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('../native/cuda/', import.meta.url));
const sources = readdirSync(dir)
  .filter((f) => /\.(cu|cuh)$/.test(f))
  .map((f) => ({ name: f, text: readFileSync(join(dir, f), 'utf8').replace(/\/\/[^\n]*/g, '') }));

test('the CUDA sources have kernels to check', () => {
  assert.ok(sources.length > 5);
  assert.ok(sources.some((s) => s.text.includes('__global__')));
});

test('every CUDA kernel begins with cuda::pdl_entry() or cuda::pdl_wait()', () => {
  const missing = [];
  let kernels = 0;
  for (const { name, text } of sources) {
    for (let i = text.indexOf('__global__'); i >= 0; i = text.indexOf('__global__', i + 1)) {
      const body = text.indexOf('{', i);
      const head = text.slice(i, body).replace(/\s+/g, ' ');
      kernels++;
      if (!/^\s*cuda::pdl_(entry|wait)\(\);/.test(text.slice(body + 1))) missing.push(`${name}: ${head.slice(0, 100)}`);
    }
  }
  assert.ok(kernels >= 20, `found only ${kernels} kernels`);
  assert.deepEqual(missing, [], 'kernels that do not wait for their predecessor first');
});

test('no CUDA kernel is launched with <<<>>> (cuda::enqueue sets the launch attributes)', () => {
  const direct = sources.filter((s) => s.text.includes('<<<')).map((s) => s.name);
  assert.deepEqual(direct, []);
});
