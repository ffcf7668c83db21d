// The tensor table: what every model-file reader yields and what the native loader consumes.
//
// A reader parses only the headers of a file (safetensors JSON header, zip central directory +
// pickle, GGUF header + tensor infos) and describes where each tensor's bytes live:
//
//   { format, path, fileSize, metadata, tensors: [{ name, dtype, shape, offset, byteLength }] }
//
// - `shape` is always in PyTorch order (outermost dimension first, the row length last).
//   GGUF stores ne[] fastest-first; its reader reverses it.
// - `offset` is the ABSOLUTE byte offset of the first element in the file, `byteLength` the
//   exact size of the tensor's bytes. The bytes are row-major and little-endian, so a consumer can
//   mmap/pread them in place. For block-quantized dtypes (q8_0, q4_0, ...) the elements are
//   grouped into consecutive blocks of `blockSize` values in row-major order.
// - `strides` is present only for a non-contiguous view (possible in legacy torch files). Such a
//   tensor cannot be read in place: `readTensorBytes` copies it into contiguous order, and
//   `assertInPlace` gives the error to show when a consumer cannot copy.
// Readers validate the table before returning it: every tensor lies inside the file, byte sizes
// match dtype x shape, names are unique, and tensors that must not overlap do not.
import { closeSync, openSync, readSync } from 'node:fs';

export type DType =
  | 'f64' | 'f32' | 'f16' | 'bf16' | 'f8_e4m3' | 'f8_e5m2'
  | 'i64' | 'i32' | 'i16' | 'i8' | 'u64' | 'u32' | 'u16' | 'u8' | 'bool'
  | 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1' | 'q8_0' | 'q8_1'
  | 'q2_k' | 'q3_k' | 'q4_k' | 'q5_k' | 'q6_k' | 'q8_k';

export type FileFormat = 'safetensors' | 'ckpt-zip' | 'ckpt-legacy' | 'gguf';

export interface TensorEntry {
  name: string;
  dtype: DType;
  /** PyTorch order, outermost first; [] for a 0-dim scalar. */
  shape: number[];
  /** Absolute byte offset of the first element in the file. */
  offset: number;
  byteLength: number;
  /** Element strides (PyTorch order); only set when the tensor is a non-contiguous view. */
  strides?: number[];
}

export interface TensorTable {
  format: FileFormat;
  path: string;
  fileSize: number;
  /** Plain-value metadata (safetensors __metadata__, GGUF key/values, ckpt top-level scalars). */
  metadata: Record<string, unknown>;
  tensors: TensorEntry[];
}

/** Bytes per block and values per block; block 1 for plain element types. */
export const DTYPE_INFO: Record<DType, { blockSize: number; blockBytes: number; float: boolean }> = {
  f64: { blockSize: 1, blockBytes: 8, float: true },
  f32: { blockSize: 1, blockBytes: 4, float: true },
  f16: { blockSize: 1, blockBytes: 2, float: true },
  bf16: { blockSize: 1, blockBytes: 2, float: true },
  f8_e4m3: { blockSize: 1, blockBytes: 1, float: true },
  f8_e5m2: { blockSize: 1, blockBytes: 1, float: true },
  i64: { blockSize: 1, blockBytes: 8, float: false },
  i32: { blockSize: 1, blockBytes: 4, float: false },
  i16: { blockSize: 1, blockBytes: 2, float: false },
  i8: { blockSize: 1, blockBytes: 1, float: false },
  u64: { blockSize: 1, blockBytes: 8, float: false },
  u32: { blockSize: 1, blockBytes: 4, float: false },
  u16: { blockSize: 1, blockBytes: 2, float: false },
  u8: { blockSize: 1, blockBytes: 1, float: false },
  bool: { blockSize: 1, blockBytes: 1, float: false },
  q4_0: { blockSize: 32, blockBytes: 18, float: true },
  q4_1: { blockSize: 32, blockBytes: 20, float: true },
  q5_0: { blockSize: 32, blockBytes: 22, float: true },
  q5_1: { blockSize: 32, blockBytes: 24, float: true },
  q8_0: { blockSize: 32, blockBytes: 34, float: true },
  q8_1: { blockSize: 32, blockBytes: 36, float: true },
  q2_k: { blockSize: 256, blockBytes: 84, float: true },
  q3_k: { blockSize: 256, blockBytes: 110, float: true },
  q4_k: { blockSize: 256, blockBytes: 144, float: true },
  q5_k: { blockSize: 256, blockBytes: 176, float: true },
  q6_k: { blockSize: 256, blockBytes: 210, float: true },
  q8_k: { blockSize: 256, blockBytes: 292, float: true },
};

/** A malformed or unsupported model file. The message names the file and, where known, the tensor. */
export class ModelFileError extends Error {
  constructor(readonly file: string, message: string, readonly tensor?: string) {
    super(`${file}: ${tensor !== undefined ? `tensor '${tensor}': ` : ''}${message}`);
    this.name = 'ModelFileError';
  }
}

/** Element count of a shape, or an error when a dimension is not a safe integer or the count overflows. */
export function numelOf(shape: readonly number[], file: string, tensor: string): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new ModelFileError(file, `invalid dimension ${String(d)} in shape [${shape.join(', ')}]`, tensor);
    n *= d;
    if (!Number.isSafeInteger(n)) throw new ModelFileError(file, `shape [${shape.join(', ')}] has too many elements`, tensor);
  }
  return n;
}

/** Exact byte size of a tensor; errors for overflow and for block types whose count is not whole blocks. */
export function byteLengthOf(dtype: DType, shape: readonly number[], file: string, tensor: string): number {
  const n = numelOf(shape, file, tensor);
  const info = DTYPE_INFO[dtype];
  if (n % info.blockSize !== 0) {
    throw new ModelFileError(file, `${n} elements is not a whole number of ${dtype} blocks of ${info.blockSize}`, tensor);
  }
  const bytes = (n / info.blockSize) * info.blockBytes;
  if (!Number.isSafeInteger(bytes)) throw new ModelFileError(file, `byte size of shape [${shape.join(', ')}] overflows`, tensor);
  return bytes;
}

/** Row-major strides in elements for a shape. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]!; }
  return s;
}

/** True when strides describe row-major order (dimensions of size 1 may have any stride). */
export function isContiguous(shape: readonly number[], strides: readonly number[]): boolean {
  const want = contiguousStrides(shape);
  for (let i = 0; i < shape.length; i++) if (shape[i] !== 1 && strides[i] !== want[i]) return false;
  return true;
}

/**
 * Checks what every reader promises: unique names, tensors inside [dataStart, fileSize), and, unless
 * `allowOverlap` (torch files, where views may share one storage), no two tensors overlapping.
 */
export function validateTable(table: TensorTable, opts: { dataStart?: number; allowOverlap?: boolean } = {}): void {
  const { path: file, fileSize } = table;
  const lo = opts.dataStart ?? 0;
  const seen = new Set<string>();
  for (const t of table.tensors) {
    if (seen.has(t.name)) throw new ModelFileError(file, 'duplicate tensor name', t.name);
    seen.add(t.name);
    if (!Number.isSafeInteger(t.offset) || !Number.isSafeInteger(t.byteLength) || t.offset < lo || t.byteLength < 0 || t.offset + t.byteLength > fileSize) {
      throw new ModelFileError(file, `data [${t.offset}, ${t.offset + t.byteLength}) lies outside the file's data (${lo}..${fileSize} bytes)`, t.name);
    }
  }
  if (opts.allowOverlap) return;
  const sorted = table.tensors.filter((t) => t.byteLength > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1]!, b = sorted[i]!;
    if (b.offset < a.offset + a.byteLength) {
      throw new ModelFileError(file, `data [${b.offset}, ${b.offset + b.byteLength}) overlaps tensor '${a.name}' [${a.offset}, ${a.offset + a.byteLength})`, b.name);
    }
  }
}

/** The error a consumer that maps tensors in place gives for a non-contiguous view. */
export function assertInPlace(table: TensorTable, t: TensorEntry): void {
  if (t.strides) {
    throw new ModelFileError(table.path, `is a non-contiguous view (strides [${t.strides.join(', ')}]); it must be copied, not mapped`, t.name);
  }
}

/** Reads one tensor's bytes (contiguous, row-major). Non-contiguous views are gathered element by element. */
export function readTensorBytes(table: TensorTable, t: TensorEntry): Buffer {
  const fd = openSync(table.path, 'r');
  try {
    if (!t.strides) {
      const buf = Buffer.alloc(t.byteLength);
      readFully(fd, buf, t.offset, table.path, t.name);
      return buf;
    }
    const es = DTYPE_INFO[t.dtype].blockBytes;
    if (t.shape.some((d) => d === 0)) return Buffer.alloc(0);
    let span = 1;
    for (let i = 0; i < t.shape.length; i++) span += (t.shape[i]! - 1) * t.strides[i]!;
    const src = Buffer.alloc(span * es);
    readFully(fd, src, t.offset, table.path, t.name);
    const n = t.shape.reduce((a, b) => a * b, 1);
    const out = Buffer.alloc(n * es);
    const idx = new Array<number>(t.shape.length).fill(0);
    for (let k = 0; k < n; k++) {
      let off = 0;
      for (let i = 0; i < idx.length; i++) off += idx[i]! * t.strides[i]!;
      src.copy(out, k * es, off * es, off * es + es);
      for (let i = idx.length - 1; i >= 0; i--) { if (++idx[i]! < t.shape[i]!) break; idx[i] = 0; }
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

function readFully(fd: number, buf: Buffer, position: number, file: string, tensor: string): void {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) throw new ModelFileError(file, `file ends before the tensor's data (offset ${position + done})`, tensor);
    done += n;
  }
}
