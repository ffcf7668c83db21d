// Deterministic fuzzing of the model-file readers: thousands of seeded mutations (bit flips,
// truncations, byte runs, boundary integers in length fields, insertions/deletions) of each
// fixture. Every outcome must be a parsed table whose tensors lie inside the file, or a
// ModelFileError: no other exception, no hang, and no Buffer allocation larger than the file.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAny, ModelFileError, writeSafetensors } from '../dist/formats/index.js';
import { BufferSource } from '../dist/formats/io.js';
import { readZipDirectory } from '../dist/formats/zip.js';
import { FIX, tmpDir } from './formats-helpers.mjs';

const CASES = Number(process.env.SDNODE_FUZZ_CASES ?? 3000);

function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 4294967296; };
}

const BOUNDARY = [0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff];

function mutate(src, r) {
  const b = Buffer.from(src);
  const at = () => Math.floor(r() * b.length);
  const kind = Math.floor(r() * 7);
  switch (kind) {
    case 0: { const n = 1 + Math.floor(r() * 8); for (let i = 0; i < n; i++) { const p = at(); b[p] ^= 1 << Math.floor(r() * 8); } return b; }
    case 1: return b.subarray(0, at());
    case 2: { const p = at(), n = 1 + Math.floor(r() * 64), v = r() < 0.5 ? 0xff : Math.floor(r() * 256); b.fill(v, p, Math.min(b.length, p + n)); return b; }
    case 3: { // boundary integer over a 4- or 8-byte field (lengths, counts, offsets)
      const p = at(), v = BOUNDARY[Math.floor(r() * BOUNDARY.length)];
      if (p + 8 <= b.length) { b.writeUInt32LE(v >>> 0, p); if (r() < 0.5) b.writeUInt32LE(r() < 0.5 ? 0 : 0xffffffff, p + 4); }
      return b;
    }
    case 4: { const p = at(), n = 1 + Math.floor(r() * 16); return Buffer.concat([b.subarray(0, p), Buffer.from(Array.from({ length: n }, () => Math.floor(r() * 256))), b.subarray(p)]); }
    case 5: { const p = at(), n = 1 + Math.floor(r() * 16); return Buffer.concat([b.subarray(0, p), b.subarray(Math.min(b.length, p + n))]); }
    default: { const p = at(); b[p] = Math.floor(r() * 256); return b; }
  }
}

/** Tracks the largest Buffer allocation made while `fn` runs. */
function withAllocWatch(fn) {
  const orig = { alloc: Buffer.alloc, allocUnsafe: Buffer.allocUnsafe, allocUnsafeSlow: Buffer.allocUnsafeSlow };
  let max = 0;
  for (const k of Object.keys(orig)) {
    Buffer[k] = function (size, ...rest) { if (size > max) max = size; return orig[k].call(Buffer, size, ...rest); };
  }
  try { fn(); } finally { Object.assign(Buffer, orig); }
  return max;
}

function fuzz(name, original, seed) {
  const r = rng(seed);
  const counts = { ok: 0, rejected: 0 };
  let slowest = 0;
  for (let i = 0; i < CASES; i++) {
    const data = mutate(original, r);
    const t0 = performance.now();
    let maxAlloc = 0;
    try {
      maxAlloc = withAllocWatch(() => {
        const table = parseAny(new BufferSource(`${name}#${i}`, data));
        for (const t of table.tensors) assert.ok(t.offset >= 0 && t.offset + t.byteLength <= data.length, `${name}#${i} ${t.name} inside the file`);
        counts.ok++;
      });
    } catch (e) {
      if (!(e instanceof ModelFileError)) {
        throw new Error(`${name} case ${i} (seed ${seed}): ${e?.constructor?.name}: ${e?.message}`, { cause: e });
      }
      counts.rejected++;
    }
    assert.ok(maxAlloc <= Math.max(data.length, 1 << 16), `${name} case ${i}: allocated ${maxAlloc} bytes for a ${data.length}-byte file`);
    slowest = Math.max(slowest, performance.now() - t0);
  }
  assert.ok(slowest < 2000, `${name}: slowest case took ${slowest.toFixed(0)} ms`);
  assert.ok(counts.rejected > CASES / 10, `${name}: mutations are mostly rejected (${JSON.stringify(counts)})`);
  return counts;
}

test('fuzz: safetensors', (t) => {
  const f = join(tmpDir(t), 'small.safetensors');
  writeSafetensors(f, [
    { name: 'a.weight', dtype: 'f32', shape: [4, 8], data: new Uint8Array(128) },
    { name: 'a.bias', dtype: 'f16', shape: [4], data: new Uint8Array(8) },
    { name: 'ids', dtype: 'i64', shape: [1, 7], data: new Uint8Array(56) },
  ], { format: 'pt' });
  fuzz('safetensors', readFileSync(f), 1);
});

test('fuzz: GGUF (ggml-written, every metadata type)', () => {
  fuzz('gguf', readFileSync(join(FIX, 'ggml-written.gguf')), 2);
});

test('fuzz: torch zip checkpoint (foreign-class.ckpt)', () => {
  fuzz('ckpt-zip', readFileSync(join(FIX, 'foreign-class.ckpt')), 3);
});

test('fuzz: legacy torch checkpoint (legacy-small.ckpt)', () => {
  fuzz('ckpt-legacy', readFileSync(join(FIX, 'legacy-small.ckpt')), 4);
});

test('fuzz: the pickle inside the zip checkpoint, mutated alone', () => {
  // Mutating data.pkl in place keeps the zip valid, so the unpickler sees every mutation.
  const zip = readFileSync(join(FIX, 'foreign-class.ckpt'));
  const entry = readZipDirectory(new BufferSource('foreign-class.ckpt', zip)).get('archive/data.pkl');
  const start = entry.dataOffset, len = entry.size;
  assert.ok(len > 1000);
  const r = rng(5);
  let rejected = 0;
  for (let i = 0; i < CASES; i++) {
    const pkl = mutate(zip.subarray(start, start + len), r);
    if (pkl.length !== len) continue;
    const data = Buffer.from(zip);
    pkl.copy(data, start);
    try { parseAny(new BufferSource(`pkl#${i}`, data)); } catch (e) {
      if (!(e instanceof ModelFileError)) throw new Error(`pickle case ${i}: ${e?.constructor?.name}: ${e?.message}`, { cause: e });
      rejected++;
    }
  }
  assert.ok(rejected > 0);
});
