// Writers go through a temporary file renamed at the end: a failed write leaves the old file as it
// was (a loaded model may have it mapped) and no temporary behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formats } from '../dist/index.js';

const good = [{ name: 'a', dtype: 'f32', shape: [2], data: new Uint8Array(8) }];
const bad = [{ name: 'a', dtype: 'f32', shape: [2], data: new Uint8Array(5) }];

for (const [label, write] of [
  ['safetensors', (p, t) => formats.writeSafetensors(p, t)],
  ['gguf', (p, t) => formats.writeGguf(p, [], t)],
  ['torch zip', (p, t) => formats.writeTorchZip(p, t)],
]) {
  test(`${label}: a failed write keeps the old file and leaves no temporary`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'sdnode-atomic-'));
    try {
      const p = join(dir, 'model');
      writeFileSync(p, 'old contents');
      assert.throws(() => write(p, bad), /bytes/);
      assert.equal(readFileSync(p, 'utf8'), 'old contents');
      assert.deepEqual(readdirSync(dir), ['model']);
      write(p, good);
      assert.notEqual(readFileSync(p, 'utf8'), 'old contents');
      assert.deepEqual(readdirSync(dir), ['model']);
      assert.equal(formats.readTensorTable(p).tensors[0].name, 'a');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
