// A minimal zip reader for PyTorch checkpoints: the central directory (with zip64, which torch
// writes for files over 4 GB) and each entry's data offset from its local header. torch writes
// every entry stored (method 0), so tensor bytes are used in place; only small entries such as
// data.pkl may be inflated, with a cap on the output size.
import { inflateRawSync } from 'node:zlib';
import type { ByteSource } from './io.js';
import { ModelFileError } from './tensor-table.js';

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
  /** Absolute offset of the entry's (stored) bytes; computed from the local header. */
  dataOffset: number;
}

const EOCD_SIG = 0x06054b50, Z64_LOC_SIG = 0x07064b50, Z64_EOCD_SIG = 0x06064b50, CEN_SIG = 0x02014b50, LOC_SIG = 0x04034b50;

export function isZip(src: ByteSource): boolean {
  return src.size >= 4 && src.read(0, 4).readUInt32LE(0) === LOC_SIG;
}

export function readZipDirectory(src: ByteSource): Map<string, ZipEntry> {
  const file = src.file;
  const bad = (msg: string): never => { throw new ModelFileError(file, `zip: ${msg}`); };
  // The end-of-central-directory record is in the last 22 + 65535 bytes.
  const tailLen = Math.min(src.size, 22 + 0xffff);
  const tail = src.read(src.size - tailLen, tailLen);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) if (tail.readUInt32LE(i) === EOCD_SIG) { eocd = i; break; }
  if (eocd < 0) bad('no end-of-central-directory record (truncated file?)');
  const eocdAbs = src.size - tailLen + eocd;
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    if (eocdAbs < 20) bad('zip64 locator missing');
    const loc = src.read(eocdAbs - 20, 20);
    if (loc.readUInt32LE(0) !== Z64_LOC_SIG) bad('zip64 locator missing');
    const z64 = safe(loc.readBigUInt64LE(8), src.size, 'zip64 record offset', bad);
    const rec = src.read(z64, 56);
    if (rec.readUInt32LE(0) !== Z64_EOCD_SIG) bad('zip64 end record missing');
    count = safe(rec.readBigUInt64LE(32), src.size, 'entry count', bad);
    cdSize = safe(rec.readBigUInt64LE(40), src.size, 'central directory size', bad);
    cdOffset = safe(rec.readBigUInt64LE(48), src.size, 'central directory offset', bad);
  }
  if (cdOffset + cdSize > src.size) bad(`central directory [${cdOffset}, ${cdOffset + cdSize}) is past the end of the file`);
  if (count * 46 > cdSize) bad(`${count} entries cannot fit in a ${cdSize}-byte central directory`);
  const cd = src.read(cdOffset, cdSize);
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== CEN_SIG) bad(`central directory entry ${i} is corrupt`);
    const method = cd.readUInt16LE(p + 10);
    let csize = cd.readUInt32LE(p + 20);
    let usize = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28), extraLen = cd.readUInt16LE(p + 30), commentLen = cd.readUInt16LE(p + 32);
    let local = cd.readUInt32LE(p + 42);
    if (p + 46 + nameLen + extraLen + commentLen > cd.length) bad(`central directory entry ${i} is truncated`);
    const name = cd.subarray(p + 46, p + 46 + nameLen).toString('utf8');
    // zip64 extra field: the 64-bit values appear only for fields that are 0xffffffff, in this order.
    let e = p + 46 + nameLen;
    const eEnd = e + extraLen;
    while (e + 4 <= eEnd) {
      const id = cd.readUInt16LE(e), len = cd.readUInt16LE(e + 2);
      if (id === 0x0001) {
        let q = e + 4;
        const next = (): number => {
          if (q + 8 > e + 4 + len || q + 8 > eEnd) bad(`zip64 extra field of '${name}' is truncated`);
          const v = safe(cd.readBigUInt64LE(q), Number.MAX_SAFE_INTEGER, 'zip64 field', bad);
          q += 8;
          return v;
        };
        if (usize === 0xffffffff) usize = next();
        if (csize === 0xffffffff) csize = next();
        if (local === 0xffffffff) local = next();
      }
      e += 4 + len;
    }
    p = eEnd + commentLen;
    if (entries.has(name)) bad(`duplicate entry '${name}'`);
    if (local + 30 > src.size) bad(`entry '${name}' local header is past the end of the file`);
    const lh = src.readExact(local, 30);
    if (lh.readUInt32LE(0) !== LOC_SIG) bad(`entry '${name}' has no local header at ${local}`);
    const dataOffset = local + 30 + lh.readUInt16LE(26) + lh.readUInt16LE(28);
    const stored = method === 0 ? usize : csize;
    if (method === 0 && csize !== usize) bad(`stored entry '${name}' has different sizes ${csize} and ${usize}`);
    if (dataOffset + stored > src.size) bad(`entry '${name}' data [${dataOffset}, ${dataOffset + stored}) is past the end of the file (${src.size} bytes)`);
    entries.set(name, { name, method, compressedSize: csize, size: usize, localHeaderOffset: local, dataOffset });
  }
  return entries;
}

/** An entry's bytes (small entries only: the pickle, the version). Deflated entries are inflated with a cap. */
export function readZipEntry(src: ByteSource, e: ZipEntry, maxSize = 1 << 30): Buffer {
  if (e.method === 0) return src.read(e.dataOffset, e.size);
  if (e.method !== 8) throw new ModelFileError(src.file, `zip: entry '${e.name}' uses compression method ${e.method}`);
  if (e.size > maxSize) throw new ModelFileError(src.file, `zip: entry '${e.name}' is too large (${e.size} bytes)`);
  try {
    const out = inflateRawSync(src.read(e.dataOffset, e.compressedSize), { maxOutputLength: Math.max(1, e.size) });
    if (out.length !== e.size) throw new Error(`inflated to ${out.length} bytes, expected ${e.size}`);
    return out;
  } catch (err) {
    throw new ModelFileError(src.file, `zip: entry '${e.name}' cannot be inflated (${(err as Error).message})`);
  }
}

function safe(v: bigint, max: number, what: string, bad: (m: string) => never): number {
  if (v > BigInt(max)) bad(`${what} ${v} is impossible for this file`);
  return Number(v);
}
