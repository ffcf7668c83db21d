// `sdnode generate`: flags named like stable-diffusion.cpp (and AUTOMATIC1111 where sd.cpp has none),
// parsed with node:util parseArgs. Exit codes: 0 done, 1 failed while running, 2 bad command line.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { parseArgs } from 'node:util';
import { generate, GENERATE_DEFAULTS, resolveOptions, type GenerateOptions, type Progress } from '../pipeline/index.js';
import { didYouMean, SAMPLER_NAMES, SAMPLERS } from '../samplers/index.js';

export const GENERATE_HELP = `usage: sdnode generate -m MODEL -p PROMPT [options]

Makes images from a text prompt with a Stable Diffusion 1.x checkpoint (.safetensors, .ckpt or .gguf).

  -m, --model FILE          the checkpoint (required)
  -p, --prompt TEXT         what to draw; A1111 syntax: (word:1.2) stronger, [word] weaker, BREAK,
                            "a AND b:0.5" composable prompts; over 75 tokens is fine
  -n, --negative-prompt T   what to avoid (default: none)
  -o, --output FILE         PNG to write (default output.png); batch images go to FILE_2.png, ...
  -W, --width N             image width in pixels, multiple of 8 (default ${GENERATE_DEFAULTS.width}, or the init image's)
  -H, --height N            image height in pixels, multiple of 8 (default ${GENERATE_DEFAULTS.height})
      --steps N             sampling steps (default ${GENERATE_DEFAULTS.steps})
      --cfg-scale X         prompt strength, classifier-free guidance (default ${GENERATE_DEFAULTS.cfgScale}; 1 = no negative prompt)
      --sampling-method S   ${SAMPLER_NAMES.join(', ')} (default ${GENERATE_DEFAULTS.sampler}; alias --sampler)
      --schedule S          discrete or karras (default discrete; karras suits dpm++2m)
  -s, --seed N              random seed; image b of a batch uses N + b (default: random, printed)
  -b, --batch-count N       images made together (default 1; alias --batch)
      --rng R               philox (default, = torch CUDA / A1111 on NVIDIA) or cpu (= torch CPU / diffusers)
      --ensd N              A1111's eta noise seed delta for the step noise of ancestral samplers (default 0)
      --clip-skip N         1 (default) or 2 (some anime models want 2)
      --vae-tile-size N     VAE tiles in pixels (default 512; 0 = whole image; 256 on a Raspberry Pi)
      --vae-tile-overlap N  least overlap of VAE tiles in pixels (default: a quarter of the tile)
      --eta X               noise of ddim / euler_a / dpm++2s_a (default: the sampler's)
  -i, --init-img FILE       img2img: start from this PNG (resized bilinearly to -W x -H)
      --strength X          img2img: how much to change it, 0 < X <= 1 (default ${GENERATE_DEFAULTS.strength})
      --mask FILE           inpainting: PNG, white = repaint, black = keep (needs --init-img)
      --lora-tags MODE      <lora:...> tags: error (default) or warn (LoRA is not supported yet)
      --type T              weights in memory: f32, f16, q8_0, q4_0 (default: as stored; alias --weights)
      --backend B           auto (default), cpu or cuda
  -t, --threads N           CPU threads (default: physical cores)
      --conv-activations A  f32 (default) or q8_0: quantized convs with integer dot products (faster on CPUs, less exact)
      --force               overwrite existing output files
      --no-model-hash       do not hash the model file for the PNG metadata (saves a full read)
  -q, --quiet               no progress output
  -h, --help                this text

Example:
  sdnode generate -m v1-5-pruned-emaonly.safetensors -p "a lovely cat, (masterpiece:1.2)" \\
    -n "blurry" --steps 25 --sampling-method dpm++2m --schedule karras -s 42 -o cat.png

Samplers: ${SAMPLER_NAMES.map((s) => `${s} (${SAMPLERS[s].description})`).join('\n  ')}
`;

const OPTIONS = {
  model: { type: 'string', short: 'm' },
  prompt: { type: 'string', short: 'p' },
  'negative-prompt': { type: 'string', short: 'n' },
  output: { type: 'string', short: 'o' },
  width: { type: 'string', short: 'W' },
  height: { type: 'string', short: 'H' },
  steps: { type: 'string' },
  'cfg-scale': { type: 'string' },
  'sampling-method': { type: 'string' },
  sampler: { type: 'string' },
  schedule: { type: 'string' },
  seed: { type: 'string', short: 's' },
  'batch-count': { type: 'string', short: 'b' },
  batch: { type: 'string' },
  rng: { type: 'string' },
  ensd: { type: 'string' },
  'clip-skip': { type: 'string' },
  'vae-tile-size': { type: 'string' },
  'vae-tile-overlap': { type: 'string' },
  eta: { type: 'string' },
  'init-img': { type: 'string', short: 'i' },
  strength: { type: 'string' },
  mask: { type: 'string' },
  'lora-tags': { type: 'string' },
  type: { type: 'string' },
  weights: { type: 'string' },
  backend: { type: 'string' },
  threads: { type: 'string', short: 't' },
  'conv-activations': { type: 'string' },
  force: { type: 'boolean' },
  'no-model-hash': { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** A command-line mistake: exit code 2. */
export class UsageError extends Error {}

export interface CliIO {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Progress output (stderr); `isTTY` selects the redrawn bar. */
  progress?: { write(s: string): void; isTTY?: boolean };
  /** Tests inject the model loader. */
  load?: (path: string, opts: { backend?: string; weights?: string; threads?: number; convActivations?: string }) => Promise<CliModel>;
}
export type CliModel = Parameters<typeof generate>[0] & { dispose(): Promise<void> };

function number(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || Number.isNaN(x)) throw new UsageError(`--${flag} must be a number, got '${v}'`);
  return x;
}

/** The output path of batch image b: out.png, out_2.png, out_3.png, ... */
export function outputPath(out: string, b: number): string {
  if (b === 0) return out;
  const ext = extname(out) || '.png';
  return `${out.slice(0, out.length - extname(out).length)}_${b + 1}${ext}`;
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 22 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

function progressPrinter(io: CliIO, quiet: boolean): ((p: Progress) => void) | undefined {
  const s = io.progress;
  if (quiet || !s) return undefined;
  return (p) => {
    const secs = p.samplingElapsed / 1000;
    const rate = secs > 0 ? p.step / secs : 0;
    const eta = rate > 0 ? (p.total - p.step) / rate : 0;
    const speed = rate >= 1 ? `${rate.toFixed(2)} it/s` : `${rate > 0 ? (1 / rate).toFixed(2) : '?'} s/it`;
    if (s.isTTY) {
      const width = 30;
      const done = Math.round((p.step / p.total) * width);
      s.write(`\r[${'#'.repeat(done)}${'.'.repeat(width - done)}] ${p.step}/${p.total} ${speed} ETA ${eta.toFixed(0)}s ${p.step === p.total ? '\n' : ''}`);
    } else {
      s.write(`step ${p.step}/${p.total} ${speed} elapsed ${secs.toFixed(1)}s\n`);
    }
  };
}

/** Parses and checks everything that can be checked without the model. Throws UsageError. */
export function parseGenerateArgs(argv: readonly string[]): { help: boolean; model: string; output: string; force: boolean; quiet: boolean;
  hash: boolean; load: { backend?: string; weights?: string; threads?: number; convActivations?: string }; options: GenerateOptions; initPath?: string; maskPath?: string } {
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: true }));
  } catch (e) {
    let msg = (e as Error).message.split('\n')[0]!.replace(/\. To specify a positional.*$/, '');
    const unknown = /^Unknown option '--?([^']+)'/.exec(msg);
    const guess = unknown ? didYouMean(unknown[1]!, Object.keys(OPTIONS)) : undefined;
    if (guess) msg += ` (did you mean --${guess}?)`;
    throw new UsageError(msg);
  }
  const v = values as Record<string, string | undefined> & { force?: boolean; quiet?: boolean; help?: boolean; 'no-model-hash'?: boolean };
  if (v.help) return { help: true } as ReturnType<typeof parseGenerateArgs>;
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}' (quote the prompt: -p "a lovely cat")`);
  if (!v.model) throw new UsageError('-m/--model is required (an SD 1.x .safetensors, .ckpt or .gguf file)');
  if (v.prompt === undefined) throw new UsageError('-p/--prompt is required');
  if (v.sampler !== undefined && v['sampling-method'] !== undefined) throw new UsageError('give --sampling-method or --sampler, not both');
  if (v.batch !== undefined && v['batch-count'] !== undefined) throw new UsageError('give --batch-count or --batch, not both');
  if (v.type !== undefined && v.weights !== undefined) throw new UsageError('give --type or --weights, not both');
  const options: GenerateOptions = {
    prompt: v.prompt,
    negativePrompt: v['negative-prompt'],
    width: number('width', v.width),
    height: number('height', v.height),
    steps: number('steps', v.steps),
    cfgScale: number('cfg-scale', v['cfg-scale']),
    sampler: v['sampling-method'] ?? v.sampler,
    schedule: v.schedule,
    seed: number('seed', v.seed),
    batchSize: number('batch-count', v['batch-count'] ?? v.batch),
    rng: v.rng === 'cuda' ? 'philox' : v.rng,
    clipSkip: number('clip-skip', v['clip-skip']),
    vaeTileSize: number('vae-tile-size', v['vae-tile-size']),
    vaeTileOverlap: number('vae-tile-overlap', v['vae-tile-overlap']),
    noiseSeedDelta: number('ensd', v.ensd),
    eta: number('eta', v.eta),
    strength: number('strength', v.strength),
    loraTags: v['lora-tags'] as GenerateOptions['loraTags'],
  };
  if (v['init-img'] !== undefined) options.initImage = new Uint8Array(0); // placeholder for the checks below
  if (v.mask !== undefined) options.mask = new Uint8Array(0);
  for (const k of Object.keys(options) as Array<keyof GenerateOptions>) if (options[k] === undefined) delete options[k];
  try {
    resolveOptions(options); // the API's checks, before the slow model load
  } catch (e) {
    if (e instanceof TypeError || e instanceof RangeError) {
      const flag: Record<string, string> = {
        negativePrompt: '--negative-prompt', cfgScale: '--cfg-scale', sampler: '--sampling-method', batchSize: '--batch-count',
        clipSkip: '--clip-skip', vaeTileSize: '--vae-tile-size', vaeTileOverlap: '--vae-tile-overlap', noiseSeedDelta: '--ensd', initImage: '--init-img', loraTags: '--lora-tags',
      };
      throw new UsageError(e.message.replace(/^generate: /, '').replace(/"(\w+)"/g, (m, f: string) => flag[f] ?? (f in options ? `--${f}` : m)));
    }
    throw e;
  }
  const load: { backend?: string; weights?: string; threads?: number; convActivations?: string } = {};
  if (v.backend !== undefined) load.backend = v.backend;
  if ((v.type ?? v.weights) !== undefined) load.weights = v.type ?? v.weights;
  if (v.threads !== undefined) load.threads = number('threads', v.threads);
  const ca = v['conv-activations'];
  if (ca !== undefined) {
    if (ca !== 'f32' && ca !== 'q8_0') throw new UsageError(`--conv-activations must be f32 or q8_0, got '${ca}'`);
    load.convActivations = ca;
  }
  return {
    help: false, model: v.model, output: v.output ?? 'output.png', force: v.force === true, quiet: v.quiet === true,
    hash: v['no-model-hash'] !== true, load, options, initPath: v['init-img'], maskPath: v.mask,
  };
}

/** Returns the process exit code. */
export async function runGenerate(argv: readonly string[], io: CliIO): Promise<number> {
  let a: ReturnType<typeof parseGenerateArgs>;
  try {
    a = parseGenerateArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.err(`sdnode generate: ${e.message}`);
    io.err("run 'sdnode generate --help' for the options");
    return 2;
  }
  if (a.help) {
    io.out(GENERATE_HELP);
    return 0;
  }
  const fail = (code: number, msg: string): number => { io.err(`sdnode generate: ${msg}`); return code; };
  if (!existsSync(a.model) || !statSync(a.model).isFile()) return fail(2, `model file not found: ${a.model}`);
  const count = a.options.batchSize ?? 1;
  for (let b = 0; b < count && !a.force; b++) {
    const p = outputPath(a.output, b);
    if (existsSync(p)) return fail(2, `${p} exists (use --force to overwrite, or choose another -o)`);
  }
  for (const [flag, path] of [['--init-img', a.initPath], ['--mask', a.maskPath]] as const) {
    if (path !== undefined && !existsSync(path)) return fail(2, `${flag} file not found: ${path}`);
  }
  if (a.initPath) a.options.initImage = readFileSync(a.initPath);
  if (a.maskPath) a.options.mask = readFileSync(a.maskPath);

  let sd: CliModel | undefined;
  // Ctrl-C cancels before the next network call, so the model is disposed cleanly.
  const ac = new AbortController();
  const onSigint = (): void => { io.err('\ncancelling...'); ac.abort(); };
  if (!io.load) process.once('SIGINT', onSigint);
  try {
    const load = io.load ?? (async (path, opts) => {
      const { StableDiffusion } = await import('../sd.js');
      return StableDiffusion.load(path, opts as Parameters<typeof StableDiffusion.load>[1]);
    });
    const hash = a.hash ? sha256File(a.model) : undefined;
    const t0 = Date.now();
    sd = await load(a.model, a.load);
    if (!a.quiet) io.err(`loaded ${basename(a.model)} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const onProgress = progressPrinter(io, a.quiet);
    const res = await generate(sd, {
      ...a.options,
      modelName: basename(a.model).replace(/\.(safetensors|ckpt|pt|pth|gguf)$/i, ''),
      modelHash: hash ? (await hash).slice(0, 10) : undefined,
      onProgress,
      signal: ac.signal,
    });
    for (const w of res.warnings) io.err(`warning: ${w}`);
    res.images.forEach((img, b) => {
      const p = outputPath(a.output, b);
      writeFileSync(p, img.png, { flag: a.force ? 'w' : 'wx' });
      io.out(`${p} (seed ${img.seed})`);
    });
    if (!a.quiet) {
      const t = res.timings;
      io.err(`done in ${(t.total / 1000).toFixed(1)} s (text ${(t.conditioning / 1000).toFixed(1)} s, sampling ${(t.sampling / 1000).toFixed(1)} s, decode ${(t.decoding / 1000).toFixed(1)} s)`);
    }
    return 0;
  } catch (e) {
    const err = e as Error;
    if (ac.signal.aborted) return fail(130, 'cancelled');
    const code = err instanceof RangeError || err instanceof TypeError ? 2 : 1;
    return fail(code, err.message);
  } finally {
    process.off('SIGINT', onSigint);
    await sd?.dispose();
  }
}
