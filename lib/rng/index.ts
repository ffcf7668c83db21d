// Random noise that matches PyTorch: 'philox' = torch CUDA randn (AUTOMATIC1111's default GPU RNG),
// 'cpu' = torch CPU randn (diffusers with a CPU generator). Batches use seeds s, s+1, ... per image,
// as AUTOMATIC1111 does.
import type { PhiloxOptions } from './philox.js';
import { batchSeeds, checkShape, createGenerator, type RngName } from './generators.js';

export { PhiloxGenerator, philox4x32, cudaLogf, boxMuller } from './philox.js';
export type { PhiloxOptions } from './philox.js';
export { TorchCpuGenerator } from './torch-cpu.js';
export { Mt19937 } from './mt19937.js';
export * from './generators.js';

/** torch.randn(shape, generator=torch.Generator(device).manual_seed(seed)), bit for bit. */
export function randn(shape: number[], seed: number, rng: RngName, options: PhiloxOptions = {}): Float32Array {
  const n = checkShape(shape);
  return createGenerator(seed, rng, options).randn(n);
}

/**
 * Initial noise for a batch as AUTOMATIC1111 makes it: image b gets randn(shapePerImage) from its own
 * generator seeded with seed + b; the result is [count, ...shapePerImage], concatenated.
 */
export function randnBatch(shapePerImage: number[], seed: number, count: number, rng: RngName, options: PhiloxOptions = {}): Float32Array {
  const n = checkShape(shapePerImage, 'shapePerImage');
  const seeds = batchSeeds(seed, count);
  const out = new Float32Array(n * count);
  seeds.forEach((s, b) => out.set(randn(shapePerImage, s, rng, options), b * n));
  return out;
}

export { ImageRng } from './image-rng.js';
export type { ImageRngOptions } from './image-rng.js';
