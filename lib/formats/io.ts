// Bounds-checked reading of file headers without loading whole files.
// Every length read from a file is checked against what is left of the file before anything is
// allocated, so a corrupt length can never make us allocate more than the file's size.
import { closeSync, fstatSync, openSync, readSync, renameSync, unlinkSync } from 'node:fs';
import { ModelFileError } from './tensor-table.js';

export interface ByteSource {
  readonly file: string;
  readonly size: number;
  /** `len` bytes at absolute `pos`; throws ModelFileError when the range is past the end. */
  read(pos: number, len: number): Buffer;
  /** Like read, for scattered small reads (zip local headers): reads exactly `len` bytes, no read-ahead. */
  readExact(pos: number, len: number): Buffer;
}

export class BufferSource implements ByteSource {
  readonly size: number;
  constructor(readonly file: string, private readonly buf: Buffer) { this.size = buf.length; }
  read(pos: number, len: number): Buffer {
    checkRange(this, pos, len);
    return this.buf.subarray(pos, pos + len);
  }
  readExact(pos: number, len: number): Buffer { return this.read(pos, len); }
}

/** Reads through a cached window so that parsing a header makes few system calls. */
export class FileSource implements ByteSource {
  readonly size: number;
  private fd: number;
  private win: Buffer = Buffer.alloc(0);
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
    const buf = this.fill(pos, Math.min(Math.max(len, this.windowSize), this.size - pos));
    this.win = buf;
    this.winPos = pos;
    return buf.subarray(0, len);
  }
  readExact(pos: number, len: number): Buffer {
    checkRange(this, pos, len);
    if (pos >= this.winPos && pos + len <= this.winPos + this.win.length) return this.read(pos, len);
    return this.fill(pos, len);
  }
  private fill(pos: number, n: number): Buffer {
    const buf = Buffer.alloc(n);
    let done = 0;
    while (done < n) {
      const r = readSync(this.fd, buf, done, n - done, pos + done);
      if (r === 0) throw new ModelFileError(this.file, `unexpected end of file at byte ${pos + done}`);
      done += r;
    }
    return buf;
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

/** Sequential little-endian reader over a ByteSource (reads through a cached chunk: headers are many small reads). */
export class Cursor {
  private chunk: Buffer = Buffer.alloc(0);
  private chunkPos = 0;
  constructor(readonly src: ByteSource, public pos = 0) {}
  get remaining(): number { return this.src.size - this.pos; }
  /** Offset into `chunk` of `n` bytes at `pos`, refilling the chunk when needed. */
  private at(n: number): number {
    const off = this.pos - this.chunkPos;
    if (off >= 0 && off + n <= this.chunk.length) return off;
    this.chunk = this.src.read(this.pos, Math.max(n, Math.min(1 << 16, this.src.size - this.pos)));
    this.chunkPos = this.pos;
    return 0;
  }
  bytes(n: number): Buffer {
    if (n > 1 << 16) { const b = this.src.read(this.pos, n); this.pos += n; return b; }
    const o = this.at(n); this.pos += n; return this.chunk.subarray(o, o + n);
  }
  u8(): number { const o = this.at(1); this.pos += 1; return this.chunk[o]!; }
  i8(): number { const o = this.at(1); this.pos += 1; return this.chunk.readInt8(o); }
  u16(): number { const o = this.at(2); this.pos += 2; return this.chunk.readUInt16LE(o); }
  i16(): number { const o = this.at(2); this.pos += 2; return this.chunk.readInt16LE(o); }
  u32(): number { const o = this.at(4); this.pos += 4; return this.chunk.readUInt32LE(o); }
  i32(): number { const o = this.at(4); this.pos += 4; return this.chunk.readInt32LE(o); }
  u64(): bigint { const o = this.at(8); this.pos += 8; return this.chunk.readBigUInt64LE(o); }
  i64(): bigint { const o = this.at(8); this.pos += 8; return this.chunk.readBigInt64LE(o); }
  f32(): number { const o = this.at(4); this.pos += 4; return this.chunk.readFloatLE(o); }
  f64(): number { const o = this.at(8); this.pos += 8; return this.chunk.readDoubleLE(o); }
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

/**
 * Writes `path` through a temporary file in the same folder that is renamed over it at the end.
 * A process that has the old file mapped (a loaded model) keeps its pages, and a failed write leaves
 * no half-written file behind.
 */
export function writeFileAtomically(path: string, write: (fd: number) => void): void {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  const fd = openSync(tmp, 'wx');
  let ok = false;
  try {
    write(fd);
    ok = true;
  } finally {
    closeSync(fd);
    if (ok) renameSync(tmp, path);
    else try { unlinkSync(tmp); } catch { /* already gone */ }
  }
}
