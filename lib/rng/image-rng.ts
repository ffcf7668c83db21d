// Per-image noise streams for a batch, as AUTOMATIC1111's ImageRNG (modules/rng.py) draws them:
// image b has its own generator seeded with seed + b; first() is the initial latent noise, every
// next() is the noise of one sampler step (ancestral samplers, lcm, ...), continuing each image's
// stream. With a non-zero `noiseSeedDelta` (A1111's "Eta noise seed delta", ENSD), the step noises
// come from fresh generators seeded with seed + b + delta instead.
import { batchSeeds, checkRng, checkShape, checkSeed, createGenerator, type RngName } from './generators.js';
import type { PhiloxOptions } from './philox.js';

export interface ImageRngOptions extends PhiloxOptions {
  /** A1111's eta_noise_seed_delta; 0 (default) keeps one stream per image. */
  noiseSeedDelta?: number;
}

export class ImageRng {
  private generators: { randn(numel: number): Float32Array }[];
  private readonly perImage: number;
  private started = false;

  constructor(
    /** Shape of one image's latent, e.g. [4, 64, 64]. */
    shapePerImage: number[],
    readonly seeds: number[],
    readonly rng: RngName,
    private readonly options: ImageRngOptions = {},
  ) {
    this.perImage = checkShape(shapePerImage, 'shapePerImage');
    checkRng(rng);
    if (!Array.isArray(seeds) || seeds.length === 0) throw new TypeError('"seeds" must be a non-empty array');
    seeds.forEach((s, i) => checkSeed(s, `seeds[${i}]`));
    const delta = options.noiseSeedDelta ?? 0;
    if (!Number.isInteger(delta) || delta < 0) throw new RangeError(`"noiseSeedDelta" must be an integer >= 0 (got ${delta})`);
    this.generators = seeds.map((s) => createGenerator(s, rng, options));
  }

  /** Seeds seed, seed + 1, ... for a batch of `count`. */
  static forBatch(shapePerImage: number[], seed: number, count: number, rng: RngName, options: ImageRngOptions = {}): ImageRng {
    return new ImageRng(shapePerImage, batchSeeds(seed, count), rng, options);
  }

  private draw(): Float32Array {
    const out = new Float32Array(this.perImage * this.generators.length);
    this.generators.forEach((g, b) => out.set(g.randn(this.perImage), b * this.perImage));
    return out;
  }

  /** The initial noise, [batch, ...shapePerImage]. Must be the first draw. */
  first(): Float32Array {
    if (this.started) throw new Error('ImageRng.first() must be called once, before next()');
    this.started = true;
    const out = this.draw();
    const delta = this.options.noiseSeedDelta ?? 0;
    if (delta) this.generators = this.seeds.map((s) => createGenerator(s + delta, this.rng, this.options));
    return out;
  }

  /** The next step's noise, [batch, ...shapePerImage]. */
  next(): Float32Array {
    if (!this.started) return this.first();
    return this.draw();
  }
}
