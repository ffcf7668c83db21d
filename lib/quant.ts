// Row conversions between float32 and the stored weight types, byte-compatible with GGML's
// blocks (q8_0: 34 bytes per 32 values, q4_0: 18 bytes per 32, f16: IEEE half). The converter and
// external checks use these; the quantizers are GGML's reference ones, bit for bit.
import { native } from './native.js';

export type QuantType = 'f16' | 'q8_0' | 'q4_0';

const BLOCK: Record<QuantType, { elems: number; bytes: number }> = {
  f16: { elems: 1, bytes: 2 },
  q8_0: { elems: 32, bytes: 34 },
  q4_0: { elems: 32, bytes: 18 },
};

interface QuantAddon {
  quantize(values: Float32Array, type: QuantType): Uint8Array;
  dequantize(bytes: Uint8Array, type: QuantType, count: number): Float32Array;
}

function checkType(fn: string, type: unknown): QuantType {
  if (typeof type !== 'string') {
    throw new TypeError(`${fn}: type must be a string ('f16', 'q8_0' or 'q4_0'), got ${typeof type}`);
  }
  if (!Object.hasOwn(BLOCK, type)) {
    throw new RangeError(`${fn}: type must be 'f16', 'q8_0' or 'q4_0', got '${type}'`);
  }
  return type as QuantType;
}

function checkMultiple(fn: string, what: string, n: number, type: QuantType): void {
  const { elems } = BLOCK[type];
  if (n % elems !== 0) {
    throw new RangeError(`${fn}: ${what} (${n}) must be a multiple of ${elems} for ${type}`);
  }
}

/** Bytes that `count` values of `type` occupy (count must be a multiple of the block size). */
export function quantizedSize(type: QuantType, count: number): number {
  const t = checkType('quantizedSize', type);
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new RangeError(`quantizedSize: count must be a non-negative integer, got ${count}`);
  }
  checkMultiple('quantizedSize', 'count', count, t);
  return (count / BLOCK[t].elems) * BLOCK[t].bytes;
}

/**
 * Quantizes float32 values with GGML's reference quantizer for `type` (round-half-away-from-zero
 * for q8_0, truncating +8.5 for q4_0, round-to-nearest-even for f16). For the block types the
 * length must be a multiple of 32.
 */
export function quantize(values: Float32Array, type: QuantType): Uint8Array {
  if (!(values instanceof Float32Array)) {
    throw new TypeError('quantize: values must be a Float32Array');
  }
  const t = checkType('quantize', type);
  checkMultiple('quantize', 'values.length', values.length, t);
  return (native() as unknown as QuantAddon).quantize(values, t);
}

/** Decodes `count` values of `type` from `bytes` (exactly quantizedSize(type, count) bytes). */
export function dequantize(bytes: Uint8Array, type: QuantType, count: number): Float32Array {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError('dequantize: bytes must be a Uint8Array');
  }
  const t = checkType('dequantize', type);
  if (typeof count !== 'number') {
    throw new TypeError(`dequantize: count must be a number, got ${typeof count}`);
  }
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new RangeError(`dequantize: count must be a non-negative integer, got ${count}`);
  }
  checkMultiple('dequantize', 'count', count, t);
  const want = (count / BLOCK[t].elems) * BLOCK[t].bytes;
  if (bytes.length !== want) {
    throw new RangeError(`dequantize: bytes.length (${bytes.length}) must be ${want} for ${count} ${t} values`);
  }
  return (native() as unknown as QuantAddon).dequantize(bytes, t, count);
}
