// Bad and hostile model files: each must give a clear Error naming the file (and the tensor where
// there is one); a pickle that reaches for code execution is refused and nothing runs.
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readTensorTable, readSafetensors, writeGguf, ModelFileError, PickleError } from '../dist/formats/index.js';
import { FIX, tmpDir } from './formats-helpers.mjs';

/** A zip with stored entries (CRCs left 0: the reader does not need them). */
export function makeZip(entries) {
  const locals = [], central = [];
  let off = 0;
  for (const [name, data] of entries) {
    const n = Buffer.from(name);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0); lh.writeUInt16LE(20, 4);
    lh.writeUInt32LE(data.length, 18); lh.writeUInt32LE(data.length, 22); lh.writeUInt16LE(n.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0); ch.writeUInt16LE(20, 4); ch.writeUInt16LE(20, 6);
    ch.writeUInt32LE(data.length, 20); ch.writeUInt32LE(data.length, 24); ch.writeUInt16LE(n.length, 28);
    ch.writeUInt32LE(off, 42);
    locals.push(lh, n, data);
    central.push(ch, n);
    off += 30 + n.length + data.length;
  }
  const cd = Buffer.concat(central);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0); eocd.writeUInt16LE(entries.length, 8); eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12); eocd.writeUInt32LE(off, 16);
  return Buffer.concat([...locals, cd, eocd]);
}

const pk = (s) => Buffer.from(s, 'latin1');
const binunicode = (s) => { const b = Buffer.from(s); const h = Buffer.alloc(5); h[0] = 0x58; h.writeUInt32LE(b.length, 1); return Buffer.concat([h, b]); };
const ckptWith = (pickle, extra = []) => makeZip([['archive/data.pkl', pickle], ...extra, ['archive/version', pk('3\n')]]);

/** A valid one-tensor pickle: {'w': _rebuild_tensor_v2(storage '0' Float numel, 0, (n,), (1,), False, OrderedDict())}. */
function tensorPickle(numel, n = numel) {
  return Buffer.concat([
    pk('\x80\x02}('), binunicode('w'), pk('ctorch._utils\n_rebuild_tensor_v2\n(('), binunicode('storage'),
    pk('ctorch\nFloatStorage\n'), binunicode('0'), binunicode('cpu'), pk('J'), int32(numel), pk('tQK\x00J'), int32(n),
    pk('\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRu.'),
  ]);
}
function int32(v) { const b = Buffer.alloc(4); b.writeInt32LE(v); return b; }

function expectError(file, pattern, tensor) {
  assert.throws(() => readTensorTable(file), (e) => {
    assert.ok(e instanceof ModelFileError, `ModelFileError, got ${e?.constructor?.name}: ${e?.message}`);
    assert.ok(e.message.includes(file), `message names the file: ${e.message}`);
    assert.match(e.message, pattern);
    if (tensor) assert.ok(e.message.includes(`'${tensor}'`), `message names tensor ${tensor}: ${e.message}`);
    return true;
  });
}

test('pickles that reach for code execution are refused and nothing runs', (t) => {
  const dir = tmpDir(t);
  const marker = join(dir, 'pwned');
  const attacks = [
    ['os.system', pk(`cos\nsystem\n(S'touch ${marker}'\ntR.`)],
    ['posix.system', Buffer.concat([pk('\x80\x02cposix\nsystem\n'), binunicode(`touch ${marker}`), pk('\x85R.')])],
    ['builtins.eval', Buffer.concat([pk('\x80\x02cbuiltins\neval\n'), binunicode('1+1'), pk('\x85R.')])],
    ['builtins.exec', Buffer.concat([pk('\x80\x04\x8c\x08builtins\x8c\x04exec\x93'), binunicode('0'), pk('\x85R.')])],
    ['subprocess.Popen', Buffer.concat([pk('\x80\x02csubprocess\nPopen\n'), binunicode('true'), pk('\x85R.')])],
    ['__builtin__.getattr', pk('c__builtin__\ngetattr\n(S"x"\nS"y"\ntR.')],
    ['torch.hub.load', Buffer.concat([pk('\x80\x02ctorch.hub\nload\n'), binunicode('evil/repo'), pk('\x85R.')])],
    ['timeit.timeit', Buffer.concat([pk('\x80\x02ctimeit\ntimeit\n'), binunicode('0'), pk('\x85R.')])],
    ['runpy._run_code', Buffer.concat([pk('\x80\x02crunpy\n_run_code\n'), binunicode('0'), pk('\x85R.')])],
  ];
  for (const [what, p] of attacks) {
    for (const [kind, bytes] of [['zip', ckptWith(p)], ['legacy', p]]) {
      const f = join(dir, `${what}.${kind}.ckpt`);
      writeFileSync(f, bytes);
      assert.throws(() => readTensorTable(f), (e) => e instanceof PickleError && e.message.includes(what) && /refusing/.test(e.message), `${what} (${kind})`);
    }
  }
  assert.equal(existsSync(marker), false);
});

test('REDUCE on a global outside the allow-list is refused; NEWOBJ/BUILD of an unknown class stays inert', (t) => {
  const dir = tmpDir(t);
  const f = join(dir, 'reduce.ckpt');
  writeFileSync(f, ckptWith(pk('\x80\x02cmypkg.mod\nFactory\n)R.')));
  expectError(f, /REDUCE calls mypkg\.mod\.Factory, which is not on the allow-list/);
  const g = join(dir, 'newobj.ckpt');
  const inert = Buffer.concat([pk('\x80\x02}('), binunicode('cb'), pk('cmypkg.mod\nThing\n)\x81}bu.')]);
  writeFileSync(g, ckptWith(inert));
  assert.deepEqual(readTensorTable(g).tensors, []);
});

test('a valid hand-made zip checkpoint reads; a storage entry shorter than its tensor is an error', (t) => {
  const dir = tmpDir(t);
  const ok = join(dir, 'ok.ckpt');
  writeFileSync(ok, ckptWith(tensorPickle(3), [['archive/data/0', Buffer.from(new Float32Array([1, 2, 3]).buffer)]]));
  const tab = readTensorTable(ok);
  assert.deepEqual(tab.tensors.map((e) => [e.name, e.dtype, e.shape, e.byteLength]), [['w', 'f32', [3], 12]]);
  const short = join(dir, 'short.ckpt');
  writeFileSync(short, ckptWith(tensorPickle(3), [['archive/data/0', Buffer.alloc(8)]]));
  expectError(short, /has 8 bytes but its 3 f32 elements need 12/);
  const view = join(dir, 'view.ckpt');
  writeFileSync(view, ckptWith(tensorPickle(3, 5), [['archive/data/0', Buffer.alloc(12)]]));
  expectError(view, /runs past its storage/, 'w');
  const missing = join(dir, 'missing.ckpt');
  writeFileSync(missing, ckptWith(tensorPickle(3)));
  expectError(missing, /no zip entry archive\/data\/0/);
});

test('truncated checkpoints (zip and legacy) give errors naming the file', (t) => {
  const dir = tmpDir(t);
  for (const name of ['foreign-class.ckpt', 'legacy-small.ckpt']) {
    const src = readFileSync(join(FIX, name));
    for (const cut of [10, 100, src.length >> 1, src.length - 30]) {
      const f = join(dir, `${cut}-${name}`);
      writeFileSync(f, src.subarray(0, cut));
      expectError(f, /./);
    }
  }
});

function st(header, dataLen = 0, rawHeader) {
  const json = Buffer.from(rawHeader ?? JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, Buffer.alloc(dataLen)]);
}

test('malformed safetensors', (t) => {
  const dir = tmpDir(t);
  const cases = [
    ['giant header', (() => { const b = Buffer.alloc(16); b.writeBigUInt64LE(1n << 40n); b[8] = 0x7b; return b; })(), /exceeds the 104857600-byte limit/],
    ['header past end', (() => { const b = Buffer.alloc(16); b.writeBigUInt64LE(1000n); b[8] = 0x7b; return b; })(), /runs past the end/],
    ['bad json', st(null, 0, '{"a": {"dtype": "F32",'), /not valid JSON/],
    ['duplicate', st(null, 8, '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}'), /duplicate/, 'a'],
    ['offsets past end', st({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8), /run past the data section/, 'w'],
    ['length mismatch', st({ w: { dtype: 'F16', shape: [4], data_offsets: [0, 16] } }, 16), /cover 16 bytes but F16 \[4\] needs 8/, 'w'],
    ['overlap', st({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12), /overlaps tensor 'a'/, 'b'],
    ['unknown dtype', st({ w: { dtype: 'F4', shape: [2], data_offsets: [0, 1] } }, 1), /unsupported safetensors dtype "F4"/, 'w'],
    ['overflowing shape', st({ w: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 4] } }, 4), /too many elements|overflow/, 'w'],
    ['negative dim', st({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4), /non-negative/, 'w'],
  ];
  for (const [what, bytes, re, tensor] of cases) {
    const f = join(dir, `${what.replace(/ /g, '_')}.safetensors`);
    writeFileSync(f, bytes);
    expectError(f, re, tensor);
  }
  const arr = join(dir, 'array.safetensors');
  writeFileSync(arr, st(null, 0, '[1,2,3]  '));
  assert.throws(() => readSafetensors(arr), /not a JSON object/);
});

/** Offset of a tensor info's fields in a GGUF buffer (the name is found by its bytes). */
function infoAt(buf, name) {
  const n = Buffer.from(name);
  const at = buf.indexOf(Buffer.concat([(() => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n.length)); return b; })(), n]));
  const nd = at + 8 + n.length;
  const dims = buf.readUInt32LE(nd);
  return { nDims: nd, ne: nd + 4, type: nd + 4 + 8 * dims, offset: nd + 8 + 8 * dims };
}

test('malformed GGUF', (t) => {
  const dir = tmpDir(t);
  const base = join(dir, 'base.gguf');
  writeGguf(base, [{ key: 'general.name', type: 'str', value: 'x' }], [
    { name: 'a', dtype: 'f32', shape: [8], data: new Uint8Array(32) },
    { name: 'b', dtype: 'q8_0', shape: [2, 32], data: new Uint8Array(68) },
  ]);
  const good = readFileSync(base);
  assert.equal(readTensorTable(base).tensors.length, 2);
  const variant = (what, mutate, re, tensor) => {
    const b = Buffer.from(good);
    mutate(b);
    const f = join(dir, `${what.replace(/ /g, '_')}.gguf`);
    writeFileSync(f, b);
    expectError(f, re, tensor);
  };
  variant('unsupported type', (b) => b.writeInt32LE(16, infoAt(b, 'b').type), /IQ2_XXS \(16\) is not supported/, 'b');
  variant('unknown type', (b) => b.writeInt32LE(99, infoAt(b, 'b').type), /unknown ggml type id 99/, 'b');
  variant('misaligned', (b) => b.writeBigUInt64LE(40n, infoAt(b, 'b').offset), /not aligned to 32/, 'b');
  variant('past end', (b) => b.writeBigUInt64LE(4096n, infoAt(b, 'b').offset), /larger than possible|outside the file/, 'b');
  variant('overlap', (b) => b.writeBigUInt64LE(0n, infoAt(b, 'b').offset), /overlaps tensor 'a'/, 'b');
  variant('ne0 not blocks', (b) => b.writeBigInt64LE(16n, infoAt(b, 'b').ne), /not a multiple of the q8_0 block size/, 'b');
  variant('too many dims', (b) => b.writeUInt32LE(5, infoAt(b, 'a').nDims), /5 dimensions/, 'a');
  variant('huge n_kv', (b) => b.writeBigInt64LE(1n << 50n, 16), /key\/value count .* impossible/);
  variant('huge n_tensors', (b) => b.writeBigInt64LE(-1n, 8), /tensor count -1 is impossible/);
  variant('bad kv type', (b) => b.writeInt32LE(77, 24 + 8 + 'general.name'.length), /invalid GGUF type 77/);
  variant('duplicate names', (b) => { b.write('a', infoAt(b, 'b').nDims - 1); }, /duplicate tensor name/, 'a');
  for (const cut of [5, 30, 60, good.length - 40]) {
    const f = join(dir, `cut${cut}.gguf`);
    writeFileSync(f, good.subarray(0, cut));
    expectError(f, /./);
  }
  const al = join(dir, 'align48.gguf');
  assert.throws(() => writeGguf(al, [{ key: 'general.alignment', type: 'u32', value: 48 }], []), /power of two/);
});

test('unrecognised files and bad arguments', (t) => {
  const dir = tmpDir(t);
  const f = join(dir, 'junk.bin');
  writeFileSync(f, Buffer.from('hello world, not a model'));
  expectError(f, /not a recognised model file/);
  assert.throws(() => readTensorTable(''), TypeError);
});
