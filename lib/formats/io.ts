// Bounds-checked reading of file headers without loading whole files.
// Every length read from a file is checked against what is left of the file before anything is
// allocated, so a corrupt length can never make us allocate more than the file's size.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { ModelFileError } from './tensor-table.js';

export interface ByteSource {
  readonly file: string;
  readonly size: number;
  /** `len` bytes at absolute `pos`; throws ModelFileError when the range is past the end. */
  read(pos: number, len: number): Buffer;
}

export class BufferSource implements ByteSource {
  readonly size: number;
  constructor(readonly file: string, private readonly buf: Buffer) { this.size = buf.length; }
  read(pos: number, len: number): Buffer {
    checkRange(this, pos, len);
    return this.buf.subarray(pos, pos + len);
  }
}

/** Reads through a cached window so that parsing a header makes few system calls. */
export class FileSource implements ByteSource {
  readonly size: number;
  private fd: number;
  private win = Buffer.alloc(0);
  private winPos = 0;
  constructor(readonly file: string, private readonly windowSize = 1 << 20) {
    this.fd = openSync(file, 'r');
    this.size = fstatSync(this.fd).size;
  }
  read(pos: number, len: number): Buffer {
    checkRange(this, pos, len);
    if (pos >= this.winPos && pos + len <= this.winPos + this.win.length) {
      return this.win.subarray(pos - this.winPos, pos - this.winPos + len);
    }
    const n = Math.min(Math.max(len, this.windowSize), this.size - pos);
    const buf = Buffer.alloc(n);
    let done = 0;
    while (done < n) {
      const r = readSync(this.fd, buf, done, n - done, pos + done);
      if (r === 0) throw new ModelFileError(this.file, `unexpected end of file at byte ${pos + done}`);
      done += r;
    }
    this.win = buf;
    this.winPos = pos;
    return buf.subarray(0, len);
  }
  close(): void {
    if (this.fd >= 0) { closeSync(this.fd); this.fd = -1; }
  }
}

function checkRange(src: ByteSource, pos: number, len: number): void {
  if (!Number.isSafeInteger(pos) || !Number.isSafeInteger(len) || pos < 0 || len < 0 || pos + len > src.size) {
    throw new ModelFileError(src.file, `truncated or corrupt: needs bytes [${pos}, ${pos + len}) but the file has ${src.size}`);
  }
}

/** Sequential little-endian reader over a ByteSource. */
export class Cursor {
  constructor(readonly src: ByteSource, public pos = 0) {}
  get remaining(): number { return this.src.size - this.pos; }
  bytes(n: number): Buffer { const b = this.src.read(this.pos, n); this.pos += n; return b; }
  u8(): number { return this.bytes(1)[0]!; }
  i8(): number { return this.bytes(1).readInt8(0); }
  u16(): number { return this.bytes(2).readUInt16LE(0); }
  i16(): number { return this.bytes(2).readInt16LE(0); }
  u32(): number { return this.bytes(4).readUInt32LE(0); }
  i32(): number { return this.bytes(4).readInt32LE(0); }
  u64(): bigint { return this.bytes(8).readBigUInt64LE(0); }
  i64(): bigint { return this.bytes(8).readBigInt64LE(0); }
  f32(): number { return this.bytes(4).readFloatLE(0); }
  f64(): number { return this.bytes(8).readDoubleLE(0); }
  /** A u64 that must also be a safe JS integer no larger than `max` (e.g. the bytes left). */
  u64n(what: string, max: number): number {
    const v = this.u64();
    if (v > BigInt(max)) throw new ModelFileError(this.src.file, `${what} ${v} is larger than possible (${max}) at byte ${this.pos - 8}`);
    return Number(v);
  }
}

/** Opens a file source, runs `fn`, always closes. */
export function withFile<T>(path: string, fn: (src: FileSource) => T): T {
  const src = new FileSource(path);
  try { return fn(src); } finally { src.close(); }
}
