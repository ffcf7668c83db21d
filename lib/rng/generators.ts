// Argument checks, seeds and generator creation shared by the RNG entry points.
import { randomInt } from 'node:crypto';
import { PhiloxGenerator, type PhiloxOptions } from './philox.js';
import { TorchCpuGenerator } from './torch-cpu.js';

export type RngName = 'philox' | 'cpu';
export const RNG_NAMES: readonly RngName[] = ['philox', 'cpu'];

/** Largest seed accepted: torch seeds are 64-bit; JavaScript numbers are exact up to 2^53 - 1. */
export const MAX_SEED = Number.MAX_SAFE_INTEGER;

export function checkSeed(seed: unknown, field = 'seed'): number {
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) {
    throw new RangeError(`"${field}" must be an integer from 0 to ${MAX_SEED} (got ${String(seed)})`);
  }
  return seed;
}

export function checkRng(rng: unknown, field = 'rng'): RngName {
  if (rng === 'philox' || rng === 'cpu') return rng;
  const hint = typeof rng === 'string' && /^(gpu|cuda|nv)$/i.test(rng) ? ' ("philox" is the GPU one)' : '';
  throw new RangeError(`"${field}" must be "philox" or "cpu"${hint} (got ${JSON.stringify(rng)})`);
}

export function checkShape(shape: unknown, field = 'shape'): number {
  if (!Array.isArray(shape) || shape.length === 0) throw new TypeError(`"${field}" must be a non-empty array of integers`);
  let n = 1;
  for (const [i, d] of shape.entries()) {
    if (!Number.isInteger(d) || d < 1) throw new RangeError(`"${field}[${i}]" must be a positive integer (got ${String(d)})`);
    n *= d;
  }
  if (n > 2 ** 31 - 1) throw new RangeError(`"${field}" has ${n} elements, more than 2^31 - 1`);
  return n;
}

/** A seed like AUTOMATIC1111's random one (0 .. 2^32 - 2), for runs without a seed. */
export function randomSeed(): number {
  return randomInt(0, 4294967294);
}

/** The generator for one seed; it continues its stream across calls like a torch.Generator. */
export function createGenerator(seed: number, rng: RngName, options: PhiloxOptions = {}): { randn(numel: number): Float32Array } {
  checkSeed(seed);
  return checkRng(rng) === 'philox' ? new PhiloxGenerator(seed, options) : new TorchCpuGenerator(seed);
}

/** Seeds of a batch: seed, seed + 1, ... */
export function batchSeeds(seed: number, count: number): number[] {
  checkSeed(seed);
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`"count" must be a positive integer (got ${count})`);
  if (seed > MAX_SEED - (count - 1)) throw new RangeError(`"seed" + batch size exceeds ${MAX_SEED}`);
  return Array.from({ length: count }, (_, i) => seed + i);
}

