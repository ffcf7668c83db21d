import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpuInfo, native } from '../dist/index.js';

test('the addon loads and reports its CPU dispatch level', () => {
  const info = cpuInfo();
  assert.ok(['scalar', 'avx2', 'avx512', 'neon', 'dotprod'].includes(info.isaActive));
  assert.ok(info.physicalCores >= 1 && info.defaultThreads >= 1);
});

test('setIsa rejects unknown levels with a RangeError and bad types with a TypeError', () => {
  assert.throws(() => native().setIsa('avx9000'), RangeError);
  assert.throws(() => native().setIsa(3), TypeError);
  assert.equal(native().setIsa('scalar'), true);
  assert.equal(native().cpuInfo().isaActive, 'scalar');
  native().setIsa(native().cpuInfo().isaBest);
});
