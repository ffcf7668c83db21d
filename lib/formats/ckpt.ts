// PyTorch checkpoints, read through the restricted unpickler:
// - zip (torch >= 1.6): `<prefix>/data.pkl` + one stored entry `<prefix>/data/<key>` per storage;
//   tensor bytes are used in place inside the zip.
// - legacy (torch < 1.6 or _use_new_zipfile_serialization=False): pickles for the magic number,
//   protocol version and sys info, the object pickle, the list of storage keys, then each storage's
//   raw bytes as `i64 numel` + data, in key-list order.
// The state dict is `obj['state_dict']` when present, else the top-level dict. Top-level scalar
// values (global_step, epoch, ...) go into metadata.
import { BufferSource, Cursor, withFile, type ByteSource } from './io.js';
import { PyDict, PyGlobal, PyInstance, unpickle, type Callables } from './pickle.js';
import { DTYPE_INFO, isContiguous, ModelFileError, numelOf, validateTable, type DType, type TensorEntry, type TensorTable } from './tensor-table.js';
import { isZip, readZipDirectory, readZipEntry } from './zip.js';
import { looksLikePickle } from './pickle.js';

const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: 'f32', HalfStorage: 'f16', BFloat16Storage: 'bf16', DoubleStorage: 'f64', LongStorage: 'i64',
  IntStorage: 'i32', ShortStorage: 'i16', CharStorage: 'i8', ByteStorage: 'u8', BoolStorage: 'bool',
};
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

class StorageRef {
  /** Absolute file offset of element 0; set once the storage's location in the file is known. */
  offset = -1;
  constructor(readonly key: string, readonly dtype: DType, readonly numel: number, readonly base?: { key: string; elemOffset: number }) {}
}
class TensorRef {
  constructor(readonly storage: StorageRef, readonly storageOffset: number, readonly shape: number[], readonly strides: number[]) {}
}

function checkpointCallables(file: string): Callables {
  const ints = (v: unknown, what: string): number[] => {
    if (!Array.isArray(v) || !v.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) throw new ModelFileError(file, `${what} is not a tuple of non-negative integers`);
    return v as number[];
  };
  const rebuild = (a: unknown[]): TensorRef => {
    const [storage, offset, size, stride] = a;
    if (!(storage instanceof StorageRef)) throw new ModelFileError(file, 'tensor without a storage');
    if (!Number.isSafeInteger(offset) || (offset as number) < 0) throw new ModelFileError(file, 'bad tensor storage offset');
    const shape = ints(size, 'tensor size'), strides = ints(stride, 'tensor stride');
    if (shape.length !== strides.length) throw new ModelFileError(file, 'tensor size and stride differ in length');
    return new TensorRef(storage, offset as number, [...shape], [...strides]);
  };
  const inert = (name: string) => (a: unknown[]) => new PyInstance(new PyGlobal('', name), a);
  const c: Callables = {
    'collections.OrderedDict': () => new PyDict(),
    'torch._utils._rebuild_tensor_v2': rebuild,
    'torch._utils._rebuild_tensor': rebuild,
    'torch._utils._rebuild_parameter': (a) => a[0],
    'torch._utils._rebuild_parameter_with_state': (a) => a[0],
    'torch._tensor._rebuild_from_type_v2': (a) => {
      const [fn, , args] = a;
      const impl = fn instanceof PyGlobal ? c[fn.qualname] : undefined;
      if (!impl || !Array.isArray(args)) throw new ModelFileError(file, 'refusing to load: _rebuild_from_type_v2 of a function not on the allow-list');
      return impl(args);
    },
    'torch.Size': (a) => Object.freeze(Array.isArray(a[0]) ? [...(a[0] as unknown[])] : []),
    'torch.device': (a) => String(a[0]),
    '_codecs.encode': (a) => Buffer.from(String(a[0]), a[1] === 'latin1' || a[1] === 'latin-1' ? 'latin1' : 'utf8'),
    'builtins.set': (a) => new Set(Array.isArray(a[0]) ? a[0] : []),
    'builtins.frozenset': (a) => new Set(Array.isArray(a[0]) ? a[0] : []),
    'builtins.bytearray': (a) => (Buffer.isBuffer(a[0]) ? a[0] : Buffer.alloc(0)),
    'copyreg._reconstructor': (a) => new PyInstance(a[0], []),
    'numpy.core.multiarray.scalar': inert('numpy.scalar'),
    'numpy._core.multiarray.scalar': inert('numpy.scalar'),
    'numpy.dtype': inert('numpy.dtype'),
    'numpy.core.multiarray._reconstruct': inert('numpy.ndarray'),
    'numpy._core.multiarray._reconstruct': inert('numpy.ndarray'),
  };
  return c;
}

function makePersistentLoad(file: string, storages: Map<string, StorageRef>) {
  return (pid: unknown): StorageRef => {
    if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) throw new ModelFileError(file, 'unsupported persistent id in the pickle');
    const [, type, key, , numel, view] = pid as unknown[];
    const cls = type instanceof PyGlobal ? type.name : '';
    const dtype = STORAGE_DTYPES[cls];
    if (!dtype) throw new ModelFileError(file, `unsupported storage type ${type instanceof PyGlobal ? type.qualname : String(type)}`);
    if (typeof key !== 'string' || !Number.isSafeInteger(numel) || (numel as number) < 0) throw new ModelFileError(file, 'malformed storage reference');
    let base: StorageRef['base'];
    if (Array.isArray(view) && view.length >= 3) {
      // Legacy view storage: (view_key, element offset into root `key`, view size).
      const [viewKey, off] = view as unknown[];
      if (typeof viewKey !== 'string' || !Number.isSafeInteger(off)) throw new ModelFileError(file, 'malformed storage view');
      const id = `view:${viewKey}`;
      const have = storages.get(id);
      if (have) return have;
      const ref = new StorageRef(id, dtype, view[2] as number, { key, elemOffset: off as number });
      storages.set(id, ref);
      if (!storages.has(key)) storages.set(key, new StorageRef(key, dtype, numel as number));
      return ref;
    }
    const have = storages.get(key);
    if (have) {
      if (have.dtype !== dtype) throw new ModelFileError(file, `storage '${key}' is used with two dtypes`);
      return have;
    }
    const ref = new StorageRef(key, dtype, numel as number);
    storages.set(key, ref);
    return ref;
  };
}

export function readCkpt(path: string): TensorTable {
  return withFile(path, (src) => parseCkpt(src));
}

export function parseCkpt(src: ByteSource): TensorTable {
  return isZip(src) ? parseZipCkpt(src) : parseLegacyCkpt(src);
}

function parseZipCkpt(src: ByteSource): TensorTable {
  const file = src.file;
  const entries = readZipDirectory(src);
  const pkl = [...entries.values()].find((e) => /^[^/]*\/data\.pkl$/.test(e.name)) ?? entries.get('data.pkl');
  if (!pkl) throw new ModelFileError(file, 'zip has no data.pkl: not a PyTorch checkpoint');
  const prefix = pkl.name.slice(0, -'data.pkl'.length);
  const storages = new Map<string, StorageRef>();
  const pickled = readZipEntry(src, pkl, src.size * 16);
  const root = unpickle(new Cursor(new BufferSource(file, pickled)), { callables: checkpointCallables(file), persistentLoad: makePersistentLoad(file, storages) });
  for (const s of storages.values()) {
    const e = entries.get(`${prefix}data/${s.key}`);
    if (!e) throw new ModelFileError(file, `storage '${s.key}' has no zip entry ${prefix}data/${s.key}`);
    const es = DTYPE_INFO[s.dtype].blockBytes;
    if (e.method !== 0) throw new ModelFileError(file, `zip entry '${e.name}' is compressed; tensors must be stored`);
    if (e.size < s.numel * es) throw new ModelFileError(file, `zip entry '${e.name}' has ${e.size} bytes but its ${s.numel} ${s.dtype} elements need ${s.numel * es}`);
    s.offset = e.dataOffset;
  }
  return buildTable(file, src.size, 'ckpt-zip', root);
}

function parseLegacyCkpt(src: ByteSource): TensorTable {
  const file = src.file;
  const head = src.read(0, Math.min(src.size, 3));
  if (head.length < 3 || !looksLikePickle(head[0]!) || (head[0] === 0x80 && head[1]! > 5)) {
    throw new ModelFileError(file, 'not a recognised model file (neither safetensors, GGUF, a torch zip nor a legacy torch pickle)');
  }
  const cur = new Cursor(src);
  const magic = unpickle(cur);
  if (magic !== LEGACY_MAGIC) {
    throw new ModelFileError(file, 'a pickle, but not a torch checkpoint (wrong magic number)');
  }
  const proto = unpickle(cur);
  if (proto !== 1001) throw new ModelFileError(file, `legacy torch protocol ${String(proto)} is not supported`);
  const sys = unpickle(cur);
  if (sys instanceof PyDict && sys.get('little_endian') === false) throw new ModelFileError(file, 'big-endian checkpoints are not supported');
  const storages = new Map<string, StorageRef>();
  const root = unpickle(cur, { callables: checkpointCallables(file), persistentLoad: makePersistentLoad(file, storages) });
  const keys = unpickle(cur);
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) throw new ModelFileError(file, 'legacy storage key list is malformed');
  let pos = cur.pos;
  for (const key of keys as string[]) {
    const s = storages.get(key);
    if (!s) throw new ModelFileError(file, `legacy storage '${key}' is not referenced by the pickle`);
    const es = DTYPE_INFO[s.dtype].blockBytes;
    const n = src.readExact(pos, 8).readBigInt64LE(0);
    if (n !== BigInt(s.numel)) throw new ModelFileError(file, `legacy storage '${key}' holds ${n} elements, the pickle says ${s.numel}`);
    s.offset = pos + 8;
    pos += 8 + s.numel * es;
    if (pos > src.size) throw new ModelFileError(file, `legacy storage '${key}' runs past the end of the file`);
  }
  for (const s of storages.values()) {
    if (s.base) {
      const b = storages.get(s.base.key);
      if (!b || b.offset < 0) throw new ModelFileError(file, `storage view '${s.key}' has no root storage`);
      if (s.base.elemOffset + s.numel > b.numel) throw new ModelFileError(file, `storage view '${s.key}' runs past its root storage`);
      s.offset = b.offset + s.base.elemOffset * DTYPE_INFO[s.dtype].blockBytes;
    } else if (s.offset < 0) {
      throw new ModelFileError(file, `storage '${s.key}' is missing from the legacy storage list`);
    }
  }
  return buildTable(file, src.size, 'ckpt-legacy', root);
}

function buildTable(file: string, fileSize: number, format: 'ckpt-zip' | 'ckpt-legacy', root: unknown): TensorTable {
  if (!(root instanceof PyDict)) throw new ModelFileError(file, 'checkpoint top level is not a dict');
  const inner = root.get('state_dict');
  const sd = inner instanceof PyDict ? inner : root;
  const metadata: Record<string, unknown> = {};
  for (const [k, v] of root.map) {
    if (typeof k === 'string' && (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean')) metadata[k] = v;
    else if (typeof k === 'string' && typeof v === 'bigint') metadata[k] = v.toString();
  }
  const tensors: TensorEntry[] = [];
  const skipped: string[] = [];
  for (const [k, v] of sd.map) {
    if (typeof k !== 'string') continue;
    if (!(v instanceof TensorRef)) { skipped.push(k); continue; }
    const s = v.storage;
    const es = DTYPE_INFO[s.dtype].blockBytes;
    const n = numelOf(v.shape, file, k);
    let last = v.storageOffset;
    for (let i = 0; i < v.shape.length; i++) if (v.shape[i]! > 0) last += (v.shape[i]! - 1) * v.strides[i]!;
    if (n > 0 && last >= s.numel) throw new ModelFileError(file, `view [${v.storageOffset}..${last}] runs past its storage of ${s.numel} elements`, k);
    const entry: TensorEntry = { name: k, dtype: s.dtype, shape: v.shape, offset: s.offset + v.storageOffset * es, byteLength: n * es };
    if (!isContiguous(v.shape, v.strides)) entry.strides = v.strides;
    tensors.push(entry);
  }
  if (skipped.length) metadata['sdnode.skipped_non_tensors'] = skipped.join(',');
  const table: TensorTable = { format, path: file, fileSize, metadata, tensors };
  // Views may share a storage, so overlap is legal here; bounds were checked per storage.
  validateTable(table, { allowOverlap: true });
  return table;
}
