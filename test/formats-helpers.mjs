// Shared helpers for the model-file tests: fixture paths, the key table, and independent
// reference quantizers (ggml's quantize_row_q8_0_ref / quantize_row_q4_0_ref transcribed to JS
// with float32 rounding at every step) used to check bytes that ggml wrote.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const FIX = join(here, 'fixtures', 'formats');
/** Shared fixtures (not in a fresh clone): used in addition when present. */
export const SHARED = join(here, '..', '..', 'shared', 'fixtures');
export const sharedPath = (rel) => { const p = join(SHARED, rel); return existsSync(p) ? p : undefined; };

export const keys = JSON.parse(readFileSync(join(FIX, 'keys.json'), 'utf8'));
export const keyByName = new Map(keys.tensors.map((k) => [k.name, k]));

export const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

export function tmpDir(t) {
  const d = mkdtempSync(join(tmpdir(), 'sdnode-formats-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const f32 = Math.fround;

const F = new Float32Array(1), U = new Uint32Array(F.buffer);
function fp16(v) {
  F[0] = v;
  const x = U[0];
  const sign = (x >>> 16) & 0x8000, exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 112;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const s = 14 - e, q = mant >>> s, r = mant & ((1 << s) - 1), h = 1 << (s - 1);
    return sign | (r > h || (r === h && (q & 1)) ? q + 1 : q);
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1))) r++;
  return sign | r;
}

/** ggml quantize_row_q8_0_ref. */
export function refQuantizeQ8_0(x) {
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 34);
  for (let b = 0; b < nb; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]));
    const d = f32(amax / 127);
    const id = d ? f32(1 / d) : 0;
    const h = fp16(d);
    out[b * 34] = h & 0xff; out[b * 34 + 1] = h >> 8;
    for (let j = 0; j < 32; j++) {
      const v = f32(x[b * 32 + j] * id);
      out[b * 34 + 2 + j] = (Math.sign(v) * Math.floor(Math.abs(v) + 0.5)) & 0xff;
    }
  }
  return out;
}

/** ggml quantize_row_q4_0_ref. */
export function refQuantizeQ4_0(x) {
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 18);
  for (let b = 0; b < nb; b++) {
    let amax = 0, max = 0;
    for (let j = 0; j < 32; j++) { const v = x[b * 32 + j]; if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; } }
    const d = f32(max / -8);
    const id = d ? f32(1 / d) : 0;
    const h = fp16(d);
    out[b * 18] = h & 0xff; out[b * 18 + 1] = h >> 8;
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, Math.trunc(f32(f32(x[b * 32 + j] * id) + 8.5)));
      const q1 = Math.min(15, Math.trunc(f32(f32(x[b * 32 + 16 + j] * id) + 8.5)));
      out[b * 18 + 2 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}

/** A JS quantize(values, type) with the signature convert.ts expects from the core. */
export function refQuantize(values, type) {
  if (type === 'q8_0') return refQuantizeQ8_0(values);
  if (type === 'q4_0') return refQuantizeQ4_0(values);
  throw new RangeError(type);
}

/** Values of a JSON fixture u64/i64 KV, exact (JSON.parse would round them). */
export function bigIntValues(jsonText, key) {
  const m = new RegExp(`"key": "${key.replace(/\./g, '\\.')}",[^\\n]*"value": (\\[[^\\]]*\\]|-?\\d+)`).exec(jsonText);
  if (!m) throw new Error(`no ${key}`);
  const s = m[1];
  return s.startsWith('[') ? s.slice(1, -1).split(',').map((v) => BigInt(v.trim())) : BigInt(s);
}
