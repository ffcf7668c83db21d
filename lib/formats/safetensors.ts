// safetensors: u64 header length, a JSON header {name: {dtype, shape, data_offsets}, __metadata__},
// then the data section. Offsets in the header are relative to the data section.
import { writeSync } from 'node:fs';
import { Cursor, withFile, writeFileAtomically, type ByteSource } from './io.js';
import { byteLengthOf, ModelFileError, validateTable, type DType, type TensorEntry, type TensorTable } from './tensor-table.js';

/** Headers beyond this are refused before allocation (the reference implementation uses 100 MB). */
export const SAFETENSORS_MAX_HEADER = 100 * 1024 * 1024;

const FROM_ST: Record<string, DType> = {
  F64: 'f64', F32: 'f32', F16: 'f16', BF16: 'bf16', F8_E4M3: 'f8_e4m3', F8_E5M2: 'f8_e5m2',
  I64: 'i64', I32: 'i32', I16: 'i16', I8: 'i8', U64: 'u64', U32: 'u32', U16: 'u16', U8: 'u8', BOOL: 'bool',
};
const TO_ST: Partial<Record<DType, string>> = Object.fromEntries(Object.entries(FROM_ST).map(([k, v]) => [v, k]));

export function readSafetensors(path: string): TensorTable {
  return withFile(path, (src) => parseSafetensors(src));
}

export function parseSafetensors(src: ByteSource): TensorTable {
  const file = src.file;
  const cur = new Cursor(src);
  if (src.size < 8) throw new ModelFileError(file, `too small for safetensors (${src.size} bytes)`);
  const n = cur.u64();
  if (n > BigInt(SAFETENSORS_MAX_HEADER)) throw new ModelFileError(file, `safetensors header of ${n} bytes exceeds the ${SAFETENSORS_MAX_HEADER}-byte limit`);
  if (n > BigInt(src.size - 8)) throw new ModelFileError(file, `safetensors header length ${n} runs past the end of the file (${src.size} bytes)`);
  const headerLen = Number(n);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(cur.bytes(headerLen));
  } catch (e) {
    if (e instanceof ModelFileError) throw e;
    throw new ModelFileError(file, 'safetensors header is not valid UTF-8');
  }
  const dup = firstDuplicateKey(text);
  if (dup !== undefined) throw new ModelFileError(file, 'duplicate tensor name in the safetensors header', dup);
  let header: unknown;
  try { header = JSON.parse(text); } catch (e) {
    throw new ModelFileError(file, `safetensors header is not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(header)) throw new ModelFileError(file, 'safetensors header is not a JSON object');
  const dataStart = 8 + headerLen;
  const dataLen = src.size - dataStart;
  const metadata: Record<string, unknown> = {};
  const tensors: TensorEntry[] = [];
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isObject(v)) throw new ModelFileError(file, '__metadata__ is not an object');
      for (const [k, mv] of Object.entries(v)) {
        if (typeof mv !== 'string') throw new ModelFileError(file, `__metadata__ value for '${k}' is not a string`);
        metadata[k] = mv;
      }
      continue;
    }
    if (!isObject(v)) throw new ModelFileError(file, 'header entry is not an object', name);
    const { dtype, shape, data_offsets: offs } = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof dtype !== 'string') throw new ModelFileError(file, 'missing dtype', name);
    const dt = FROM_ST[dtype];
    if (!dt) throw new ModelFileError(file, `unsupported safetensors dtype ${JSON.stringify(dtype)}`, name);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new ModelFileError(file, `shape ${JSON.stringify(shape)} is not a list of non-negative integers`, name);
    }
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0) || offs[1] < offs[0]) {
      throw new ModelFileError(file, `data_offsets ${JSON.stringify(offs)} is not [begin, end] with begin <= end`, name);
    }
    const [begin, end] = offs as [number, number];
    if (end > dataLen) throw new ModelFileError(file, `data_offsets [${begin}, ${end}] run past the data section (${dataLen} bytes)`, name);
    const expect = byteLengthOf(dt, shape as number[], file, name);
    if (end - begin !== expect) {
      throw new ModelFileError(file, `data_offsets cover ${end - begin} bytes but ${dtype} [${(shape as number[]).join(', ')}] needs ${expect}`, name);
    }
    tensors.push({ name, dtype: dt, shape: [...(shape as number[])], offset: dataStart + begin, byteLength: expect });
  }
  const table: TensorTable = { format: 'safetensors', path: file, fileSize: src.size, metadata, tensors };
  validateTable(table, { dataStart });
  return table;
}

export interface TensorToWrite {
  name: string;
  dtype: DType;
  shape: number[];
  /** The bytes, or a function producing them when it is this tensor's turn (keeps memory low). */
  data: Uint8Array | (() => Uint8Array);
}

/**
 * Writes a safetensors file. Tensors are laid out in the given order unless `order: 'aligned'`,
 * which sorts by (element size desc, name) so every tensor is aligned to its element size
 * (the header is padded with spaces to a multiple of 8).
 */
export function writeSafetensors(path: string, tensors: TensorToWrite[], metadata?: Record<string, string>, opts: { order?: 'given' | 'aligned' } = {}): void {
  const list = [...tensors];
  if (opts.order === 'aligned') {
    list.sort((a, b) => (elemBytes(b) - elemBytes(a)) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let pos = 0;
  const names = new Set<string>();
  for (const t of list) {
    if (names.has(t.name)) throw new ModelFileError(path, 'duplicate tensor name', t.name);
    names.add(t.name);
    const st = TO_ST[t.dtype];
    if (!st) throw new ModelFileError(path, `dtype ${t.dtype} cannot be stored in safetensors`, t.name);
    const len = byteLengthOf(t.dtype, t.shape, path, t.name);
    header[t.name] = { dtype: st, shape: t.shape, data_offsets: [pos, pos + len] };
    pos += len;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  writeFileAtomically(path, (fd) => {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeSync(fd, len);
    writeSync(fd, json);
    for (const t of list) {
      const bytes = typeof t.data === 'function' ? t.data() : t.data;
      const want = byteLengthOf(t.dtype, t.shape, path, t.name);
      if (bytes.byteLength !== want) throw new ModelFileError(path, `has ${bytes.byteLength} bytes of data, ${t.dtype} [${t.shape.join(', ')}] needs ${want}`, t.name);
      writeAll(fd, bytes);
    }
  });
}

export function writeAll(fd: number, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.byteLength) off += writeSync(fd, bytes, off, bytes.byteLength - off);
}

function elemBytes(t: TensorToWrite): number {
  return { f64: 8, i64: 8, u64: 8, f32: 4, i32: 4, u32: 4, f16: 2, bf16: 2, i16: 2, u16: 2 }[t.dtype as string] ?? 1;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * JSON.parse keeps the last of duplicate keys silently; a header with two entries of one name is
 * ambiguous, so scan the top-level object's keys first. Returns the first repeated key.
 */
export function firstDuplicateKey(text: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
      if (depth === 1 && expectKey) {
        let key: string;
        try { key = JSON.parse(text.slice(start, i + 1)) as string; } catch { return undefined; }
        if (seen.has(key)) return key;
        seen.add(key);
        expectKey = false;
      }
    } else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth === 1 && c === 0x7b) expectKey = true;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    } else if (c === 0x2c && depth === 1) {
      expectKey = true;
    }
  }
  return undefined;
}
