// GGUF v3 (ggml/src/gguf.cpp): "GGUF", u32 version, i64 n_tensors, i64 n_kv, the key/values,
// the tensor infos (name, u32 n_dims, i64 ne[n_dims] fastest-first, i32 type, u64 offset relative to
// the data section), zero padding to `general.alignment` (default 32), then the data, every tensor
// padded to the alignment. The writer reproduces ggml's layout byte for byte.
import { writeSync } from 'node:fs';
import { Cursor, withFile, writeFileAtomically, type ByteSource } from './io.js';
import { writeAll } from './safetensors.js';
import { byteLengthOf, DTYPE_INFO, ModelFileError, validateTable, type DType, type TensorEntry, type TensorTable } from './tensor-table.js';

export type GgufScalarType = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'bool' | 'str' | 'u64' | 'i64' | 'f64';
export type GgufType = GgufScalarType | 'arr';
/** Number for <= 32-bit ints and floats, bigint for u64/i64, boolean, string; arrays hold those. */
export type GgufScalar = number | bigint | boolean | string;
export interface GgufKV {
  key: string;
  type: GgufType;
  /** Element type when `type` is 'arr'. */
  arrType?: GgufScalarType;
  value: GgufScalar | GgufScalar[];
}

const TYPE_IDS: GgufType[] = ['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'str', 'arr', 'u64', 'i64', 'f64'];
const FIXED_SIZE: Partial<Record<GgufType, number>> = { u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, bool: 1, u64: 8, i64: 8, f64: 8 };

/** ggml_type ids. Names of the types we cannot size are kept so errors can name them. */
export const GGML_TYPE_NAMES: Record<number, string> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 6: 'Q5_0', 7: 'Q5_1', 8: 'Q8_0', 9: 'Q8_1', 10: 'Q2_K', 11: 'Q3_K',
  12: 'Q4_K', 13: 'Q5_K', 14: 'Q6_K', 15: 'Q8_K', 16: 'IQ2_XXS', 17: 'IQ2_XS', 18: 'IQ3_XXS', 19: 'IQ1_S',
  20: 'IQ4_NL', 21: 'IQ3_S', 22: 'IQ2_S', 23: 'IQ4_XS', 24: 'I8', 25: 'I16', 26: 'I32', 27: 'I64', 28: 'F64',
  29: 'IQ1_M', 30: 'BF16', 34: 'TQ1_0', 35: 'TQ2_0', 39: 'MXFP4',
};
const GGML_TO_DTYPE: Record<number, DType> = {
  0: 'f32', 1: 'f16', 2: 'q4_0', 3: 'q4_1', 6: 'q5_0', 7: 'q5_1', 8: 'q8_0', 9: 'q8_1', 10: 'q2_k', 11: 'q3_k',
  12: 'q4_k', 13: 'q5_k', 14: 'q6_k', 15: 'q8_k', 24: 'i8', 25: 'i16', 26: 'i32', 27: 'i64', 28: 'f64', 30: 'bf16',
};
export const DTYPE_TO_GGML: Partial<Record<DType, number>> = Object.fromEntries(
  Object.entries(GGML_TO_DTYPE).map(([k, v]) => [v, Number(k)]));

export const GGUF_DEFAULT_ALIGNMENT = 32;
const GGML_MAX_DIMS = 4;

export interface GgufTensorInfo { name: string; ne: number[]; typeId: number; relOffset: number }
export interface GgufTable extends TensorTable {
  format: 'gguf';
  gguf: { version: number; alignment: number; dataOffset: number; kv: GgufKV[]; infos: GgufTensorInfo[] };
}

export function readGguf(path: string): GgufTable {
  return withFile(path, (src) => parseGguf(src));
}

export function parseGguf(src: ByteSource): GgufTable {
  const file = src.file;
  const cur = new Cursor(src);
  if (src.size < 24 || src.read(0, 4).toString('latin1') !== 'GGUF') throw new ModelFileError(file, 'not a GGUF file (no "GGUF" magic)');
  cur.pos = 4;
  const version = cur.u32();
  if (version !== 3 && version !== 2) throw new ModelFileError(file, `GGUF version ${version} is not supported (expected 3)`);
  // The smallest possible KV is 13 bytes and tensor info 24: bounds the counts by the file size.
  const nTensors = count(cur.i64(), 'tensor count', Math.floor(src.size / 24), file);
  const nKv = count(cur.i64(), 'key/value count', Math.floor(src.size / 13), file);
  const kv: GgufKV[] = [];
  const keys = new Set<string>();
  for (let i = 0; i < nKv; i++) {
    const key = readStr(cur);
    if (keys.has(key)) throw new ModelFileError(file, `duplicate metadata key '${key}'`);
    keys.add(key);
    const type = typeOf(cur.i32(), file, key);
    if (type === 'arr') {
      const arrType = typeOf(cur.i32(), file, key);
      if (arrType === 'arr') throw new ModelFileError(file, `metadata '${key}': nested arrays are not valid GGUF`);
      const min = FIXED_SIZE[arrType] ?? 8;
      const n = cur.u64n(`metadata '${key}' array length`, Math.floor(cur.remaining / min));
      const value: GgufScalar[] = new Array(n);
      for (let j = 0; j < n; j++) value[j] = readScalar(cur, arrType, key);
      kv.push({ key, type, arrType, value });
    } else {
      kv.push({ key, type, value: readScalar(cur, type, key) });
    }
  }
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const al = kv.find((k) => k.key === 'general.alignment');
  if (al) {
    const v = al.value;
    if (al.type !== 'u32' || typeof v !== 'number' || v === 0 || (v & (v - 1)) !== 0) {
      throw new ModelFileError(file, `general.alignment must be a u32 power of two, got ${al.type} ${String(v)}`);
    }
    alignment = v;
  }
  const infos: GgufTensorInfo[] = [];
  for (let i = 0; i < nTensors; i++) {
    const name = readStr(cur);
    const nDims = cur.u32();
    if (nDims > GGML_MAX_DIMS) throw new ModelFileError(file, `has ${nDims} dimensions (GGUF allows at most ${GGML_MAX_DIMS})`, name);
    const ne: number[] = [];
    for (let d = 0; d < nDims; d++) {
      const v = cur.i64();
      if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ModelFileError(file, `dimension ${d} is ${v}`, name);
      ne.push(Number(v));
    }
    const typeId = cur.i32();
    const relOffset = cur.u64n(`tensor '${name}' offset`, src.size);
    infos.push({ name, ne, typeId, relOffset });
  }
  const dataOffset = alignUp(cur.pos, alignment);
  if (dataOffset > src.size && nTensors > 0) throw new ModelFileError(file, `data section would start at ${dataOffset}, past the end of the file (${src.size} bytes)`);
  const tensors: TensorEntry[] = infos.map((ti) => {
    const dtype = GGML_TO_DTYPE[ti.typeId];
    if (!dtype) {
      const nm = GGML_TYPE_NAMES[ti.typeId];
      throw new ModelFileError(file, nm ? `ggml type ${nm} (${ti.typeId}) is not supported` : `unknown ggml type id ${ti.typeId}`, ti.name);
    }
    const bs = DTYPE_INFO[dtype].blockSize;
    if (bs > 1 && (ti.ne[0] ?? 1) % bs !== 0) throw new ModelFileError(file, `row length ne[0]=${ti.ne[0]} is not a multiple of the ${dtype} block size ${bs}`, ti.name);
    if (ti.relOffset % alignment !== 0) throw new ModelFileError(file, `offset ${ti.relOffset} is not aligned to ${alignment}`, ti.name);
    const shape = [...ti.ne].reverse();
    const byteLength = byteLengthOf(dtype, shape, file, ti.name);
    return { name: ti.name, dtype, shape, offset: dataOffset + ti.relOffset, byteLength };
  });
  const metadata: Record<string, unknown> = {};
  for (const k of kv) metadata[k.key] = k.value;
  const table: GgufTable = {
    format: 'gguf', path: file, fileSize: src.size, metadata, tensors,
    gguf: { version, alignment, dataOffset, kv, infos },
  };
  validateTable(table, { dataStart: dataOffset });
  return table;
}

function count(v: bigint, what: string, max: number, file: string): number {
  if (v < 0n || v > BigInt(max)) throw new ModelFileError(file, `GGUF ${what} ${v} is impossible for a file of this size`);
  return Number(v);
}

function typeOf(id: number, file: string, key: string): GgufType {
  const t = TYPE_IDS[id];
  if (!t) throw new ModelFileError(file, `metadata '${key}' has invalid GGUF type ${id}`);
  return t;
}

function readStr(cur: Cursor): string {
  const n = cur.u64n('string length', cur.remaining - 8);
  return cur.bytes(n).toString('utf8');
}

function readScalar(cur: Cursor, t: GgufScalarType, key: string): GgufScalar {
  switch (t) {
    case 'u8': return cur.u8();
    case 'i8': return cur.i8();
    case 'u16': return cur.u16();
    case 'i16': return cur.i16();
    case 'u32': return cur.u32();
    case 'i32': return cur.i32();
    case 'f32': return cur.f32();
    case 'u64': return cur.u64();
    case 'i64': return cur.i64();
    case 'f64': return cur.f64();
    case 'str': return readStr(cur);
    case 'bool': {
      const b = cur.u8();
      if (b > 1) throw new ModelFileError(cur.src.file, `metadata '${key}': bool byte ${b} is not 0 or 1`);
      return b === 1;
    }
  }
}

export function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

// ---------------------------------------------------------------------------------------------
// Writer

export interface GgufTensorToWrite {
  name: string;
  dtype: DType;
  /** PyTorch order (outermost first); written reversed as ne[]. A 0-dim tensor is written as [1]. */
  shape: number[];
  data: Uint8Array | (() => Uint8Array);
}

/** Size of the GGUF header + KVs + tensor infos, before alignment padding. */
function encodeHeader(kv: GgufKV[], tensors: GgufTensorToWrite[], alignment: number, path: string): { head: Buffer; sizes: number[] } {
  const parts: Buffer[] = [];
  const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); parts.push(b); };
  const i32 = (v: number) => { const b = Buffer.alloc(4); b.writeInt32LE(v); parts.push(b); };
  const u64 = (v: bigint | number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); parts.push(b); };
  const str = (s: string) => { const b = Buffer.from(s, 'utf8'); u64(b.length); parts.push(b); };
  const scalar = (t: GgufScalarType, v: GgufScalar, key: string) => {
    const bad = () => new ModelFileError(path, `metadata '${key}': value ${String(v)} does not fit type ${t}`);
    const b = Buffer.alloc(FIXED_SIZE[t] ?? 0);
    try {
      switch (t) {
        case 'u8': b.writeUInt8(v as number); break;
        case 'i8': b.writeInt8(v as number); break;
        case 'u16': b.writeUInt16LE(v as number); break;
        case 'i16': b.writeInt16LE(v as number); break;
        case 'u32': b.writeUInt32LE(v as number); break;
        case 'i32': b.writeInt32LE(v as number); break;
        case 'f32': if (typeof v !== 'number') throw bad(); b.writeFloatLE(v); break;
        case 'f64': if (typeof v !== 'number') throw bad(); b.writeDoubleLE(v); break;
        case 'u64': b.writeBigUInt64LE(BigInt(v as bigint)); break;
        case 'i64': b.writeBigInt64LE(BigInt(v as bigint)); break;
        case 'bool': if (typeof v !== 'boolean') throw bad(); b.writeUInt8(v ? 1 : 0); break;
        case 'str': if (typeof v !== 'string') throw bad(); str(v); return;
      }
    } catch (e) {
      if (e instanceof ModelFileError) throw e;
      throw bad();
    }
    parts.push(b);
  };
  parts.push(Buffer.from('GGUF', 'latin1'));
  u32(3);
  u64(tensors.length);
  u64(kv.length);
  const keys = new Set<string>();
  for (const k of kv) {
    if (keys.has(k.key)) throw new ModelFileError(path, `duplicate metadata key '${k.key}'`);
    keys.add(k.key);
    str(k.key);
    i32(TYPE_IDS.indexOf(k.type));
    if (k.type === 'arr') {
      if (!k.arrType || k.arrType === ('arr' as string) || !Array.isArray(k.value)) throw new ModelFileError(path, `metadata '${k.key}': an array needs arrType and an array value`);
      i32(TYPE_IDS.indexOf(k.arrType));
      u64(k.value.length);
      for (const v of k.value) scalar(k.arrType, v, k.key);
    } else {
      if (Array.isArray(k.value)) throw new ModelFileError(path, `metadata '${k.key}': array value for scalar type ${k.type}`);
      scalar(k.type, k.value, k.key);
    }
  }
  const sizes: number[] = [];
  let off = 0;
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new ModelFileError(path, 'duplicate tensor name', t.name);
    names.add(t.name);
    const id = DTYPE_TO_GGML[t.dtype];
    if (id === undefined) throw new ModelFileError(path, `dtype ${t.dtype} has no ggml type`, t.name);
    const ne = t.shape.length === 0 ? [1] : [...t.shape].reverse();
    if (ne.length > GGML_MAX_DIMS) throw new ModelFileError(path, `has ${ne.length} dimensions (GGUF allows ${GGML_MAX_DIMS})`, t.name);
    const bs = DTYPE_INFO[t.dtype].blockSize;
    if (ne[0]! % bs !== 0) throw new ModelFileError(path, `row length ${ne[0]} is not a multiple of the ${t.dtype} block size ${bs}`, t.name);
    const size = byteLengthOf(t.dtype, t.shape, path, t.name);
    str(t.name);
    u32(ne.length);
    for (const d of ne) u64(d);
    i32(id);
    u64(off);
    sizes.push(size);
    off += alignUp(size, alignment);
  }
  return { head: Buffer.concat(parts), sizes };
}

/**
 * Writes GGUF v3 exactly as ggml's gguf_write_to_file does: KVs in the given order, tensor data in the
 * given order at the running sum of sizes padded to the alignment, zero padding after every tensor.
 * The alignment is `general.alignment` when present (it must be a u32 power of two), else 32.
 */
export function writeGguf(path: string, kv: GgufKV[], tensors: GgufTensorToWrite[]): void {
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const al = kv.find((k) => k.key === 'general.alignment');
  if (al) {
    if (al.type !== 'u32' || typeof al.value !== 'number' || al.value <= 0 || (al.value & (al.value - 1)) !== 0) {
      throw new ModelFileError(path, 'general.alignment must be a u32 power of two');
    }
    alignment = al.value;
  }
  const { head, sizes } = encodeHeader(kv, tensors, alignment, path);
  writeFileAtomically(path, (fd) => {
    writeAll(fd, head);
    const zeros = Buffer.alloc(alignment);
    writeAll(fd, zeros.subarray(0, alignUp(head.length, alignment) - head.length));
    tensors.forEach((t, i) => {
      const bytes = typeof t.data === 'function' ? t.data() : t.data;
      if (bytes.byteLength !== sizes[i]) {
        throw new ModelFileError(path, `has ${bytes.byteLength} bytes of data, ${t.dtype} [${t.shape.join(', ')}] needs ${sizes[i]}`, t.name);
      }
      writeAll(fd, bytes);
      writeSync(fd, zeros, 0, alignUp(bytes.byteLength, alignment) - bytes.byteLength);
    });
  });
}
