// `sdnode convert <in> --type q8_0|q4_0|f16|f32 [-o out.gguf] [--force]`.
import { existsSync } from 'node:fs';
import { convertModel, CONVERT_TYPES, type ConvertType, type QuantizeFn } from '../model/convert.js';
import { formatBytes, parseArgs } from './args.js';

/** The core's quantizer, when the native package part is built (lib/quant.ts -> dist/quant.js). */
export async function loadQuantizer(): Promise<QuantizeFn | undefined> {
  for (const spec of ['../quant.js', '../index.js']) {
    try {
      const mod = (await import(spec)) as { quantize?: unknown };
      if (typeof mod.quantize !== 'function') continue;
      const q = mod.quantize as QuantizeFn;
      q(new Float32Array(32), 'q8_0'); // probes the addon: it may be built without the quantizer
      return q;
    } catch { /* not built */ }
  }
  return undefined;
}

export function defaultOutput(input: string, type: string): string {
  return `${input.replace(/\.(safetensors|ckpt|pt|pth|bin|gguf)$/i, '')}.${type}.gguf`;
}

/** Returns the process exit code. `quantize` overrides the core's quantizer (tests). */
export async function runConvert(argv: readonly string[], opts: { quantize?: QuantizeFn; out?: (s: string) => void; err?: (s: string) => void } = {}): Promise<number> {
  const out = opts.out ?? console.log, err = opts.err ?? console.error;
  const { positional, flags } = parseArgs(argv, ['force', 'quiet']);
  const type = flags.get('type');
  if (positional.length !== 1 || typeof type !== 'string') {
    err(`usage: sdnode convert <model.safetensors|.ckpt|.gguf> --type ${CONVERT_TYPES.join('|')} [-o out.gguf] [--force]`);
    return 2;
  }
  if (!CONVERT_TYPES.includes(type as ConvertType)) {
    err(`sdnode convert: --type must be one of ${CONVERT_TYPES.join(', ')}, got '${type}'`);
    return 2;
  }
  const input = positional[0]!;
  const o = flags.get('o') ?? flags.get('output');
  const output = typeof o === 'string' ? o : defaultOutput(input, type);
  if (existsSync(output) && !flags.has('force')) {
    err(`sdnode convert: ${output} exists (use --force to overwrite)`);
    return 1;
  }
  const quantize = opts.quantize ?? (type.startsWith('q') ? await loadQuantizer() : undefined);
  const t0 = Date.now();
  try {
    const r = convertModel(input, output, {
      type: type as ConvertType, quantize,
      onProgress: flags.has('quiet') ? undefined : (done, total) => { if (done % 100 === 0 || done === total) err(`  ${done}/${total} tensors`); },
    });
    out(`${output}: ${r.detection.message}; ${r.tensors} tensors (${Object.entries(r.histogram).map(([k, v]) => `${v} ${k}`).join(', ')}), ` +
      `${r.dropped} non-weight keys dropped, ${formatBytes(r.outputBytes)} of weights, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return 0;
  } catch (e) {
    err(`sdnode convert: ${(e as Error).message}`);
    return 1;
  }
}
