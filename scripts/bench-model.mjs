// Full-size (or tiny) SD 1.5-shaped model files with random values for the benchmarks, written once
// into `dir` and reused while they exist: an fp32 torch-zip .ckpt, an fp16 .safetensors and a .gguf
// made from it by sdnode convert (q8_0 / q4_0 quantized with the core's quantizer, or f16).
// Values: the tiny-sd15 weight formula's per-tensor scale and mean with xorshift32 noise (seeded by
// tensor index), so every run of every bench sees the same model. Nothing here is committed.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => join(root, 'dist', p);

/**
 * @param {{ size: 'full' | 'tiny', dir: string, ggType?: string, formats: Array<'ckpt' | 'safetensors' | 'gguf'> }} o
 * @returns {Promise<{ ckpt: string, safetensors: string, gguf: string, ggType: string }>}
 */
export async function makeModelFiles({ size, dir, ggType = 'q8_0', formats }) {
  const { fullSizeKeys, formulaRule } = await import(dist('model/formula.js'));
  const { writeSafetensors, writeTorchZip } = await import(dist('formats/index.js'));
  const { toF16Bytes } = await import(dist('formats/half.js'));
  const { convertModel } = await import(dist('model/convert.js'));
  const tiny = JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'formats', 'keys.json'), 'utf8')).tensors;
  const keys = size === 'full' ? fullSizeKeys(tiny) : tiny;
  const rank = new Map(keys.map((k) => [k.name, k.shape.length]));
  const values = (k, i) => {
    const n = k.shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(n);
    if (k.rule === 'special') return out;
    const { s, m } = formulaRule(k.name, k.shape, (nm) => rank.get(nm));
    let x = (0x9e3779b9 ^ (i * 0x85ebca6b)) >>> 0 || 1;
    for (let j = 0; j < n; j++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; out[j] = s * (x / 2147483648 - 1) + m; }
    return out;
  };
  const asBytes = (f) => new Uint8Array(f.buffer);
  const intData = (k) => (k.dtype === 'I64' ? { dtype: 'i64', data: new Uint8Array(8 * k.shape.reduce((a, b) => a * b, 1)) } : { dtype: 'i32', data: new Uint8Array(4) });
  // Quantized with the core's quantizer; without it (an addon built without quantize) the GGUF is f16.
  let quantize;
  if (ggType.startsWith('q')) {
    try { ({ quantize } = await import(dist('quant.js'))); quantize(new Float32Array(32), ggType); } catch { quantize = undefined; ggType = 'f16'; }
  }
  const ckpt = join(dir, `sd15-${size}.ckpt`), st = join(dir, `sd15-${size}.safetensors`), gg = join(dir, `sd15-${size}.${ggType}.gguf`);
  const t0 = performance.now();
  if (formats.includes('ckpt') && !existsSync(ckpt)) {
    writeTorchZip(ckpt, keys.map((k, i) => (k.dtype === 'F32'
      ? { name: k.name, dtype: 'f32', shape: k.shape, data: () => asBytes(values(k, i)) }
      : { name: k.name, shape: k.shape, ...intData(k) })), { extra: { global_step: 840000 } });
  }
  const needSt = formats.includes('safetensors') || (formats.includes('gguf') && !existsSync(gg));
  if (needSt && !existsSync(st)) {
    writeSafetensors(st, keys.map((k, i) => (k.dtype === 'F32'
      ? { name: k.name, dtype: 'f16', shape: k.shape, data: () => toF16Bytes(values(k, i)) }
      : { name: k.name, shape: k.shape, ...intData(k) })), { format: 'pt' }, { order: 'given' });
  }
  if (formats.includes('gguf') && !existsSync(gg)) convertModel(st, gg, { type: ggType, quantize });
  console.error(`generated/checked ${size} model files in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return { ckpt, safetensors: st, gguf: gg, ggType };
}
