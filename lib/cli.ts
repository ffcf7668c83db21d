#!/usr/bin/env node
// The `sdnode` command: generate, convert, info. Errors are one line on stderr, never a stack;
// exit code 2 for a bad command line, 1 for a failure while running.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runConvert } from './cli/convert.js';
import { runGenerate, type CliIO } from './cli/generate.js';
import { runInfo } from './cli/info.js';

export const HELP = `usage: sdnode <command> [options]

Stable Diffusion 1.x on your CPU (or GPU), from Node.js.

commands:
  generate   make images from a prompt        sdnode generate -m model.safetensors -p "a lovely cat" -o cat.png
  convert    re-store a checkpoint as .gguf   sdnode convert model.ckpt --type q8_0 -o model.q8_0.gguf
  info       what a model file holds          sdnode info model.safetensors [--json]
             this machine                     sdnode info --cpu | --backends

'sdnode <command> --help' shows each command's options.
`;

async function backendsInfo(out: (s: string) => void): Promise<number> {
  const { native } = await import('./native.js');
  const n = native();
  const cpu = n.cpuInfo();
  const rows: Array<Record<string, unknown>> = [{
    backend: 'cpu', available: true, isa: cpu.isaActive, best: cpu.isaBest, threads: cpu.defaultThreads,
  }];
  const extra = typeof n.backends === 'function' ? (n.backends as () => Array<Record<string, unknown>>)() : undefined;
  if (extra) rows.push(...extra.filter((r) => r.backend !== 'cpu'));
  else rows.push({ backend: 'cuda', available: false, reason: 'this build of the addon reports no CUDA backend' });
  out(JSON.stringify(rows, null, 2));
  return 0;
}

/** Runs one command line (without `node sdnode`); returns the exit code. */
export async function main(argv: readonly string[], io: Partial<CliIO> = {}): Promise<number> {
  const out = io.out ?? ((s: string) => console.log(s));
  const err = io.err ?? ((s: string) => console.error(s));
  const full: CliIO = { out, err, progress: io.progress ?? process.stderr, load: io.load };
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'generate':
      case 'gen':
        return await runGenerate(rest, full);
      case 'convert':
        if (rest.includes('--help') || rest.includes('-h')) {
          out('usage: sdnode convert <model.safetensors|.ckpt|.gguf> --type f32|f16|q8_0|q4_0 [-o out.gguf] [--force] [--quiet]');
          return 0;
        }
        return await runConvert(rest, { out, err });
      case 'info':
        if (rest.includes('--help') || rest.includes('-h')) {
          out('usage: sdnode info <model file> [--json]\n       sdnode info --cpu        CPU features and the kernel level used\n       sdnode info --backends   compute backends');
          return 0;
        }
        if (rest.includes('--cpu')) {
          const { cpuInfo } = await import('./index.js');
          out(JSON.stringify(cpuInfo(), null, 2));
          return 0;
        }
        if (rest.includes('--backends')) return await backendsInfo(out);
        return runInfo(rest, out, err);
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        (cmd === undefined ? err : out)(HELP);
        return cmd === undefined ? 2 : 0;
      case '--version':
      case '-v':
        out('sdnode 0.1.0');
        return 0;
      default:
        err(`sdnode: unknown command '${cmd}' (commands: generate, convert, info; see sdnode --help)`);
        return 2;
    }
  } catch (e) {
    err(`sdnode ${cmd}: ${(e as Error).message}`);
    return 1;
  }
}

function isEntry(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntry()) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
}
