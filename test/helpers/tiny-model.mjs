// Shared by the network tests: rebuilds the tiny-sd15 formula model (keys.json + the README's
// weight formula, lib/model/formula.ts) into a temporary .safetensors, and reads golden tensors.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildTensor } from '../../dist/model/formula.js';
import { readTensorTable, readTensorBytes, writeSafetensors } from '../../dist/formats/index.js';

const here = dirname(fileURLToPath(import.meta.url));
export const fixtures = join(here, '..', 'fixtures', 'tiny-sd15');
export const sharedFixtures = join(here, '..', '..', '..', 'shared', 'fixtures', 'tiny-sd15');

let dir;
/** Path of the tiny model written as 'f16' or 'f32' safetensors (built once per process). */
export function tinyModelPath(float = 'f32') {
  dir ??= mkdtempSync(join(tmpdir(), 'sdnode-nets-'));
  const path = join(dir, `tiny.${float}.safetensors`);
  if (existsSync(path)) return path;
  const keys = JSON.parse(readFileSync(join(fixtures, 'keys.json'), 'utf8')).tensors;
  const tensors = keys.map((k) => {
    const t = buildTensor(k, { float });
    return { name: t.name, dtype: t.dtype, shape: t.shape, data: t.data };
  });
  writeSafetensors(path, tensors, { model: 'tiny-sd15' }, { order: 'aligned' });
  return path;
}

/** A path inside this process's scratch folder. */
export function scratchPath(name) {
  dir ??= mkdtempSync(join(tmpdir(), 'sdnode-nets-'));
  return join(dir, name);
}

export function cleanup() {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
}

let golden;
/** A golden tensor as { data: Float32Array | Int32Array, shape }. */
export function g(name) {
  golden ??= readTensorTable(join(fixtures, 'golden.safetensors'));
  const t = golden.tensors.find((e) => e.name === name);
  if (!t) throw new Error(`golden has no ${name}`);
  const b = readTensorBytes(golden, t);
  const ab = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  return { data: t.dtype === 'i32' ? new Int32Array(ab) : new Float32Array(ab), shape: t.shape };
}

/** max|a - ref| / max|ref| (the README's metric). */
export function relErr(a, ref) {
  if (a.length !== ref.length) return Infinity;
  let scale = 1e-6, err = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]));
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(a[i] - ref[i]);
    if (!(d <= err)) err = Number.isNaN(d) ? Infinity : d;
  }
  return err / scale;
}
