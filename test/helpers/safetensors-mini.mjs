// Minimal safetensors reader for test fixtures (F32 only): 8-byte LE header length, JSON header, data.
import { readFileSync } from 'node:fs';

export function readSafetensorsF32(path) {
  const buf = readFileSync(path);
  const headerLen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8'));
  const base = 8 + headerLen;
  const out = new Map();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (info.dtype !== 'F32') throw new Error(`${name}: only F32 is supported, got ${info.dtype}`);
    const [start, end] = info.data_offsets;
    const bytes = buf.subarray(base + start, base + end);
    const data = new Float32Array(bytes.byteLength / 4);
    new Uint8Array(data.buffer).set(bytes); // copy: the slice may be unaligned
    out.set(name, { shape: info.shape, data });
  }
  return { tensors: out, metadata: header.__metadata__ ?? {} };
}
