// Writes a PyTorch zip checkpoint the way torch.save does: `{ 'state_dict': OrderedDict(name ->
// tensor), ...scalars }` pickled with protocol 2 (`_rebuild_tensor_v2`, typed storage classes, one
// storage per tensor), each storage a stored zip entry aligned to 64 bytes, zip64 records when the
// file passes 4 GB, real CRC-32s (Python's zipfile checks them). Used by tests and benchmarks.
import { writeSync } from 'node:fs';
import { writeFileAtomically } from './io.js';
import { crc32 } from 'node:zlib';
import { writeAll, type TensorToWrite } from './safetensors.js';
import { byteLengthOf, contiguousStrides, ModelFileError, type DType } from './tensor-table.js';

const STORAGE_CLASS: Partial<Record<DType, string>> = {
  f32: 'FloatStorage', f16: 'HalfStorage', bf16: 'BFloat16Storage', f64: 'DoubleStorage', i64: 'LongStorage',
  i32: 'IntStorage', i16: 'ShortStorage', i8: 'CharStorage', u8: 'ByteStorage', bool: 'BoolStorage',
};

class PickleOut {
  parts: Buffer[] = [];
  raw(s: string | Buffer): void { this.parts.push(typeof s === 'string' ? Buffer.from(s, 'latin1') : s); }
  str(s: string): void { const b = Buffer.from(s, 'utf8'); const h = Buffer.alloc(5); h[0] = 0x58; h.writeUInt32LE(b.length, 1); this.raw(h); this.raw(b); }
  int(v: number): void {
    if (v >= 0 && v < 256) this.raw(Buffer.from([0x4b, v]));
    else if (v >= 0 && v < 65536) { const b = Buffer.alloc(3); b[0] = 0x4d; b.writeUInt16LE(v, 1); this.raw(b); }
    else if (v >= -(2 ** 31) && v < 2 ** 31) { const b = Buffer.alloc(5); b[0] = 0x4a; b.writeInt32LE(v, 1); this.raw(b); }
    else { const b = Buffer.alloc(10); b[0] = 0x8a; b[1] = 8; b.writeBigInt64LE(BigInt(v), 2); this.raw(b); }
  }
  tuple(vals: number[]): void { this.raw('('); for (const v of vals) this.int(v); this.raw('t'); }
}

function statePickle(tensors: TensorToWrite[], extra: Record<string, number | string>): Buffer {
  const p = new PickleOut();
  p.raw('\x80\x02}(');
  p.str('state_dict');
  p.raw('ccollections\nOrderedDict\n)R(');
  tensors.forEach((t, i) => {
    const cls = STORAGE_CLASS[t.dtype]!;
    const numel = t.shape.reduce((a, b) => a * b, 1);
    p.str(t.name);
    p.raw('ctorch._utils\n_rebuild_tensor_v2\n((');
    p.str('storage');
    p.raw(`ctorch\n${cls}\n`);
    p.str(String(i));
    p.str('cpu');
    p.int(numel);
    p.raw('tQ');
    p.int(0);
    p.tuple(t.shape);
    p.tuple(contiguousStrides(t.shape));
    p.raw('\x89ccollections\nOrderedDict\n)RtR');
  });
  p.raw('u');
  for (const [k, v] of Object.entries(extra)) { p.str(k); if (typeof v === 'number') p.int(v); else p.str(v); }
  p.raw('u.');
  return Buffer.concat(p.parts);
}

interface Central { name: Buffer; crc: number; size: number; offset: number }

/**
 * Writes `tensors` as a torch zip checkpoint. `forceZip64` writes zip64 records even for small files
 * (tests use it to exercise the reader's zip64 path without writing 4 GB).
 */
export function writeTorchZip(path: string, tensors: TensorToWrite[], opts: { archive?: string; extra?: Record<string, number | string>; forceZip64?: boolean } = {}): void {
  const archive = opts.archive ?? 'archive';
  for (const t of tensors) {
    if (!STORAGE_CLASS[t.dtype]) throw new ModelFileError(path, `dtype ${t.dtype} has no torch storage type`, t.name);
  }
  writeFileAtomically(path, (fd) => {
    const central: Central[] = [];
    let pos = 0;
    const z64 = (n: number) => opts.forceZip64 || n >= 0xffffffff;
    const entry = (name: string, produce: () => Uint8Array, expectSize?: number) => {
      const n = Buffer.from(`${archive}/${name}`);
      const data = produce();
      if (expectSize !== undefined && data.byteLength !== expectSize) throw new ModelFileError(path, `has ${data.byteLength} bytes, expected ${expectSize}`, name);
      const big = z64(data.byteLength) || z64(pos);
      // Local header + zip64 extra (sizes) + padding extra ('FB') so the data starts 64-byte aligned.
      const z64Extra = big ? 20 : 0;
      const base = pos + 30 + n.length + z64Extra + 4;
      const pad = (64 - (base % 64)) % 64;
      const lh = Buffer.alloc(30);
      lh.writeUInt32LE(0x04034b50, 0); lh.writeUInt16LE(big ? 45 : 20, 4);
      const crc = crc32(data);
      lh.writeUInt32LE(crc, 14);
      lh.writeUInt32LE(big ? 0xffffffff : data.byteLength, 18); lh.writeUInt32LE(big ? 0xffffffff : data.byteLength, 22);
      lh.writeUInt16LE(n.length, 26); lh.writeUInt16LE(z64Extra + 4 + pad, 28);
      const ex = Buffer.alloc(z64Extra + 4 + pad);
      if (big) { ex.writeUInt16LE(1, 0); ex.writeUInt16LE(16, 2); ex.writeBigUInt64LE(BigInt(data.byteLength), 4); ex.writeBigUInt64LE(BigInt(data.byteLength), 12); }
      ex.writeUInt16LE(0x4246, z64Extra); ex.writeUInt16LE(pad, z64Extra + 2);
      central.push({ name: n, crc, size: data.byteLength, offset: pos });
      for (const b of [lh, n, ex]) writeAll(fd, b);
      writeAll(fd, data);
      pos += 30 + n.length + ex.length + data.byteLength;
    };
    entry('data.pkl', () => statePickle(tensors, opts.extra ?? {}));
    entry('byteorder', () => Buffer.from('little'));
    tensors.forEach((t, i) => {
      const want = byteLengthOf(t.dtype, t.shape, path, t.name);
      entry(`data/${i}`, () => (typeof t.data === 'function' ? t.data() : t.data), want);
    });
    entry('version', () => Buffer.from('3\n'));
    const cdStart = pos;
    for (const c of central) {
      const big = z64(c.size) || z64(c.offset);
      const ex = Buffer.alloc(big ? 28 : 0);
      if (big) { ex.writeUInt16LE(1, 0); ex.writeUInt16LE(24, 2); ex.writeBigUInt64LE(BigInt(c.size), 4); ex.writeBigUInt64LE(BigInt(c.size), 12); ex.writeBigUInt64LE(BigInt(c.offset), 20); }
      const h = Buffer.alloc(46);
      h.writeUInt32LE(0x02014b50, 0); h.writeUInt16LE(big ? 45 : 20, 4); h.writeUInt16LE(big ? 45 : 20, 6);
      h.writeUInt32LE(c.crc, 16);
      h.writeUInt32LE(big ? 0xffffffff : c.size, 20); h.writeUInt32LE(big ? 0xffffffff : c.size, 24);
      h.writeUInt16LE(c.name.length, 28); h.writeUInt16LE(ex.length, 30);
      h.writeUInt32LE(big ? 0xffffffff : c.offset, 42);
      for (const b of [h, c.name, ex]) writeAll(fd, b);
      pos += 46 + c.name.length + ex.length;
    }
    const cdSize = pos - cdStart;
    const big = z64(cdStart) || central.length >= 0xffff;
    if (big) {
      const rec = Buffer.alloc(56);
      rec.writeUInt32LE(0x06064b50, 0); rec.writeBigUInt64LE(44n, 4); rec.writeUInt16LE(45, 12); rec.writeUInt16LE(45, 14);
      rec.writeBigUInt64LE(BigInt(central.length), 24); rec.writeBigUInt64LE(BigInt(central.length), 32);
      rec.writeBigUInt64LE(BigInt(cdSize), 40); rec.writeBigUInt64LE(BigInt(cdStart), 48);
      const loc = Buffer.alloc(20);
      loc.writeUInt32LE(0x07064b50, 0); loc.writeBigUInt64LE(BigInt(pos), 8); loc.writeUInt32LE(1, 16);
      writeAll(fd, rec); writeAll(fd, loc);
    }
    const eocd = Buffer.alloc(22);
    eocd.writeUInt32LE(0x06054b50, 0);
    eocd.writeUInt16LE(big ? 0xffff : central.length, 8); eocd.writeUInt16LE(big ? 0xffff : central.length, 10);
    eocd.writeUInt32LE(big ? 0xffffffff : cdSize, 12); eocd.writeUInt32LE(big ? 0xffffffff : cdStart, 16);
    writeSync(fd, eocd);
  });
}
