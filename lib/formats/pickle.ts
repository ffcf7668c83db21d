// A restricted unpickler that executes nothing.
//
// It understands every opcode of pickle protocols 0-5 and builds plain JS values. Python callables
// never exist here: a GLOBAL becomes either one of the few allow-listed constructors a PyTorch
// checkpoint needs (implemented below in JS, producing data) or an inert `PyGlobal` stub.
// - GLOBAL of a module that only an attack would name (os, subprocess, builtins.eval, ...) is
//   refused at once.
// - REDUCE / INST / OBJ (a call) on anything that is not allow-listed is refused.
// - NEWOBJ / BUILD on a stub make an inert `PyInstance` holding its state (real SD 1.4 checkpoints
//   pickle a pytorch_lightning ModelCheckpoint this way); nothing is ever called.
// Every length is checked against the input before use, so malformed input gives a PickleError.
import { Cursor, type ByteSource } from './io.js';
import { ModelFileError } from './tensor-table.js';

export class PickleError extends ModelFileError {
  constructor(file: string, message: string) { super(file, message); this.name = 'PickleError'; }
}

/** A Python global the pickle named; never callable. Hashable by identity (one per name). */
export class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get qualname(): string { return `${this.module}.${this.name}`; }
}
/** An object of a non-allow-listed class, created by NEWOBJ/BUILD without running any code. */
export class PyInstance {
  state: unknown = undefined;
  constructor(readonly cls: unknown, readonly args: unknown[]) {}
}
/** A dict (or OrderedDict); keys may be any pickled value, compared by identity for objects. */
export class PyDict {
  readonly map = new Map<unknown, unknown>();
  get(key: unknown): unknown { return this.map.get(key); }
}
/** Tuples are frozen arrays (lists are plain arrays): cheap to build, and APPEND can tell them apart. */
export const isTuple = (v: unknown): boolean => Array.isArray(v) && Object.isFrozen(v);

/** Allow-listed constructors: `qualname -> implementation` (arguments are pickled values). */
export type Callables = Record<string, (args: unknown[], kw?: unknown) => unknown>;
export type PersistentLoad = (pid: unknown) => unknown;

const MAX_LONG_BYTES = 64;
const MAX_LINE = 1 << 16;

const DENIED_MODULES = new Set([
  'os', 'posix', 'nt', 'subprocess', 'sys', 'shutil', 'socket', 'importlib', 'runpy', 'pty', 'commands',
  'webbrowser', 'code', 'codeop', 'pickle', '_pickle', 'marshal', 'ctypes', 'types', 'signal',
  'multiprocessing', 'threading', 'asyncio', 'pdb', 'timeit', 'platform', 'tempfile', 'io', '_io', 'pathlib',
  'urllib', 'http', 'ftplib', 'telnetlib', 'smtplib', 'requests', 'cProfile', 'profile', 'trace', 'bdb',
  'site', 'operator', 'functools', 'inspect', 'gc', 'posixpath', 'ntpath', 'zipimport', 'imp', 'dill',
  'pip', 'setuptools', 'distutils', 'ensurepip', 'venv', 'glob', 'fileinput', 'sqlite3', 'xmlrpc',
]);
const SAFE_BUILTINS = new Set(['set', 'frozenset', 'slice', 'complex', 'bytearray', 'bytes', 'list', 'dict', 'tuple', 'int', 'float', 'str', 'bool', 'object', 'range']);

function refuseReason(module: string, name: string): string | undefined {
  const root = module.split('.')[0]!;
  if (root === 'builtins' || root === '__builtin__') {
    return SAFE_BUILTINS.has(name) ? undefined : `${module}.${name}`;
  }
  if (DENIED_MODULES.has(root)) return `${module}.${name}`;
  if (root === 'torch' && /(^|\.)(hub|jit|_C|ops|load|package|_dynamo|compile|classes|utils\.cpp_extension)($|\.)/.test(`${module}.${name}`.slice(6))) {
    return `${module}.${name}`;
  }
  return undefined;
}

export interface UnpickleOptions {
  callables?: Callables;
  persistentLoad?: PersistentLoad;
}

/** Unpickles one pickle starting at `cur.pos`; leaves `cur.pos` after its STOP. */
export function unpickle(cur: Cursor, opts: UnpickleOptions = {}): unknown {
  const file = cur.src.file;
  const fail = (msg: string): never => { throw new PickleError(file, `pickle at byte ${cur.pos}: ${msg}`); };
  const callables = opts.callables ?? {};
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  const globals = new Map<string, PyGlobal>();
  const pop = (): unknown => (stack.length > 0 ? stack.pop() : fail('stack underflow'));
  const top = (): unknown => (stack.length > 0 ? stack[stack.length - 1] : fail('stack underflow'));
  const popMark = (): unknown[] => {
    const m = marks.pop();
    if (m === undefined) return fail('MARK expected');
    return stack.splice(m);
  };
  const line = (): string => {
    const start = cur.pos;
    const max = Math.min(cur.remaining, MAX_LINE);
    const buf = cur.src.read(start, max);
    const nl = buf.indexOf(0x0a);
    if (nl < 0) fail('unterminated text line');
    cur.pos = start + nl + 1;
    return buf.subarray(0, nl).toString('latin1');
  };
  const global = (module: string, name: string): unknown => {
    const q = `${module}.${name}`;
    let g = globals.get(q);
    if (!g) {
      const reason = refuseReason(module, name);
      if (reason) fail(`refusing to load: the pickle references ${reason}, which a model checkpoint never needs (possible malicious file)`);
      g = new PyGlobal(module, name);
      globals.set(q, g);
    }
    return g;
  };
  const call = (fn: unknown, args: unknown, what: string): unknown => {
    if (!(fn instanceof PyGlobal)) return fail(`${what} on a non-class value`);
    const impl = callables[fn.qualname];
    if (!impl) return fail(`refusing to load: ${what} calls ${fn.qualname}, which is not on the allow-list`);
    if (!Array.isArray(args)) return fail(`${what} arguments are not a tuple`);
    try {
      return impl(args);
    } catch (e) {
      if (e instanceof ModelFileError) throw e;
      return fail(`${fn.qualname}: ${(e as Error).message}`);
    }
  };
  const newobj = (cls: unknown, args: unknown, what: string): unknown => {
    if (!Array.isArray(args)) return fail(`${what} arguments are not a tuple`);
    if (cls instanceof PyGlobal && callables[cls.qualname]) return call(cls, args, what);
    return new PyInstance(cls, args);
  };
  const setItems = (d: unknown, items: unknown[]): void => {
    if (items.length % 2 !== 0) fail('SETITEMS with an odd number of items');
    if (d instanceof PyDict) for (let i = 0; i < items.length; i += 2) d.map.set(items[i], items[i + 1]);
    else if (!(d instanceof PyInstance)) fail('SETITEM on a non-dict');
  };
  const append = (l: unknown, items: unknown[]): void => {
    if (Array.isArray(l) && !Object.isFrozen(l)) { for (const i of items) l.push(i); }
    else if (!(l instanceof PyInstance)) fail('APPEND on a non-list');
  };
  const memoGet = (i: number): unknown => (memo.has(i) ? memo.get(i) : fail(`memo key ${i} missing`));
  const tuple = (items: unknown[]): readonly unknown[] => Object.freeze(items);
  const sized = (n: number | bigint): number => {
    if (BigInt(n) > BigInt(cur.remaining)) fail(`length ${n} runs past the end of the data`);
    return Number(n);
  };
  const long = (bytes: Buffer): number | bigint => {
    if (bytes.length > MAX_LONG_BYTES) fail(`integer of ${bytes.length} bytes is too large`);
    if (bytes.length === 0) return 0;
    let v = 0n;
    for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
    if (bytes[bytes.length - 1]! & 0x80) v -= 1n << BigInt(8 * bytes.length);
    return small(v);
  };

  for (;;) {
    const op = cur.u8();
    switch (op) {
      case 0x80: { const p = cur.u8(); if (p > 5) fail(`unsupported pickle protocol ${p}`); break; } // PROTO
      case 0x95: cur.u64(); break; // FRAME: framing is transparent here
      case 0x2e: { // STOP
        if (stack.length !== 1 || marks.length !== 0) fail(`STOP with ${stack.length} values on the stack`);
        return stack[0];
      }
      case 0x28: marks.push(stack.length); break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break;
      case 0x89: stack.push(false); break;
      case 0x4a: stack.push(cur.i32()); break; // BININT
      case 0x4b: stack.push(cur.u8()); break; // BININT1
      case 0x4d: stack.push(cur.u16()); break; // BININT2
      case 0x8a: stack.push(long(cur.bytes(sized(cur.u8())))); break; // LONG1
      case 0x8b: { const n = cur.i32(); if (n < 0) fail('negative LONG4 length'); stack.push(long(cur.bytes(sized(n)))); break; }
      case 0x49: { // INT (text); "01"/"00" are the protocol-0 booleans
        const s = line().trim();
        if (s === '01' || s === '00') { stack.push(s === '01'); break; }
        stack.push(parseIntText(s) ?? fail(`bad INT '${s}'`));
        break;
      }
      case 0x4c: { const s = line().trim().replace(/L$/, ''); stack.push(parseIntText(s) ?? fail(`bad LONG '${s}'`)); break; }
      case 0x46: { const s = line().trim(); const v = Number(s); if (s === '' || Number.isNaN(v) && !/nan/i.test(s)) fail(`bad FLOAT '${s}'`); stack.push(v); break; }
      case 0x47: stack.push(cur.bytes(8).readDoubleBE(0)); break; // BINFLOAT (big-endian)
      case 0x58: stack.push(cur.bytes(sized(cur.u32())).toString('utf8')); break; // BINUNICODE
      case 0x8c: stack.push(cur.bytes(sized(cur.u8())).toString('utf8')); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(cur.bytes(sized(cur.u64())).toString('utf8')); break; // BINUNICODE8
      case 0x56: stack.push(rawUnicodeEscape(line())); break; // UNICODE
      case 0x53: stack.push(pyStringLiteral(line()) ?? fail('bad STRING literal')); break; // STRING
      case 0x54: { const n = cur.i32(); if (n < 0) fail('negative BINSTRING length'); stack.push(cur.bytes(sized(n)).toString('latin1')); break; }
      case 0x55: stack.push(cur.bytes(sized(cur.u8())).toString('latin1')); break; // SHORT_BINSTRING
      case 0x42: stack.push(Buffer.from(cur.bytes(sized(cur.u32())))); break; // BINBYTES
      case 0x43: stack.push(Buffer.from(cur.bytes(sized(cur.u8())))); break; // SHORT_BINBYTES
      case 0x8e: case 0x96: stack.push(Buffer.from(cur.bytes(sized(cur.u64())))); break; // BINBYTES8, BYTEARRAY8
      case 0x97: case 0x98: fail('out-of-band buffers are not supported'); break;
      case 0x7d: stack.push(new PyDict()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push(tuple([])); break; // EMPTY_TUPLE
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x90: { const items = popMark(); const s = top(); if (!(s instanceof Set)) fail('ADDITEMS on a non-set'); for (const i of items) (s as Set<unknown>).add(i); break; }
      case 0x91: stack.push(new Set(popMark())); break; // FROZENSET
      case 0x74: stack.push(tuple(popMark())); break; // TUPLE
      case 0x85: stack.push(tuple([pop()])); break;
      case 0x86: { const b = pop(); const a = pop(); stack.push(tuple([a, b])); break; }
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push(tuple([a, b, c])); break; }
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x64: { const d = new PyDict(); setItems(d, popMark()); stack.push(d); break; } // DICT
      case 0x61: { const v = pop(); append(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); append(top(), items); break; } // APPENDS
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x70: memo.set(parseIntText(line()) as number, top()); break; // PUT
      case 0x71: memo.set(cur.u8(), top()); break; // BINPUT
      case 0x72: memo.set(cur.u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x67: stack.push(memoGet(parseIntText(line()) as number)); break; // GET
      case 0x68: stack.push(memoGet(cur.u8())); break; // BINGET
      case 0x6a: stack.push(memoGet(cur.u32())); break; // LONG_BINGET
      case 0x63: { const m = line(); const n = line(); stack.push(global(m, n)); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const n = pop(); const m = pop();
        if (typeof m !== 'string' || typeof n !== 'string') fail('STACK_GLOBAL needs two strings');
        stack.push(global(m as string, n as string));
        break;
      }
      case 0x52: { const args = pop(); const fn = pop(); stack.push(call(fn, args, 'REDUCE')); break; } // REDUCE
      case 0x81: { const args = pop(); const cls = pop(); stack.push(newobj(cls, args, 'NEWOBJ')); break; } // NEWOBJ
      case 0x92: { pop(); const args = pop(); const cls = pop(); stack.push(newobj(cls, args, 'NEWOBJ_EX')); break; }
      case 0x69: { const m = line(); const n = line(); stack.push(call(global(m, n), tuple(popMark()), 'INST')); break; } // INST
      case 0x6f: { const items = popMark(); const cls = items.shift(); stack.push(call(cls, tuple(items), 'OBJ')); break; } // OBJ
      case 0x62: { // BUILD: record the state; nothing's __setstate__ runs
        const state = pop();
        const obj = top();
        if (obj instanceof PyInstance) obj.state = state;
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) fail('persistent id without a loader');
        stack.push(opts.persistentLoad!(pid));
        break;
      }
      case 0x50: { // PERSID
        const pid = line();
        if (!opts.persistentLoad) fail('persistent id without a loader');
        stack.push(opts.persistentLoad!(pid));
        break;
      }
      case 0x82: case 0x83: case 0x84: fail('extension-registry opcodes (EXT1/2/4) are not supported'); break;
      default: fail(`unknown opcode 0x${op.toString(16).padStart(2, '0')}`);
    }
  }
}

/** Protocol 2+ pickles start with PROTO; protocol 0/1 ones with one of these opcodes. */
export function looksLikePickle(b: number): boolean {
  return b === 0x80 || '(cdl]}NIJKSVFLX'.includes(String.fromCharCode(b));
}

/** Unpickles a whole buffer (e.g. a zip entry), checking nothing follows STOP is required. */
export function unpickleSource(src: ByteSource, opts: UnpickleOptions = {}, pos = 0): unknown {
  return unpickle(new Cursor(src, pos), opts);
}

function small(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function parseIntText(s: string): number | bigint | undefined {
  if (!/^[-+]?\d+$/.test(s.trim())) return undefined;
  return small(BigInt(s.trim()));
}

function rawUnicodeEscape(s: string): string {
  return s.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_m, a: string | undefined, b: string | undefined) =>
    String.fromCodePoint(parseInt((a ?? b)!, 16)));
}

function pyStringLiteral(s: string): string | undefined {
  const t = s.trim();
  if (t.length < 2 || (t[0] !== "'" && t[0] !== '"') || t[t.length - 1] !== t[0]) return undefined;
  return t.slice(1, -1).replace(/\\x([0-9a-fA-F]{2})|\\(.)/g, (_m, hex: string | undefined, c: string | undefined) => {
    if (hex) return String.fromCharCode(parseInt(hex, 16));
    return ({ n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"' } as Record<string, string>)[c!] ?? `\\${c}`;
  });
}
