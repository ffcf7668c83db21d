// Loads the compiled addon with node-gyp-build and types its surface once. Public classes wrap these
// functions; users never see raw addon objects.
//
// Order: build/Release, then prebuilds/<platform>-<arch>/ (node-gyp-build's own order). In an
// installed package build/Release exists only when scripts/install.mjs found that no prebuilt binary
// loads on this machine, so preferring it is right; in a working copy it is the fresher build.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface CpuInfo {
  features: Record<'avx2' | 'fma' | 'f16c' | 'avx512f' | 'avx512bw' | 'avx512vl' | 'avx512dq' |
    'avx512vnni' | 'neon' | 'dotprod' | 'fp16', boolean>;
  physicalCores: number;
  logicalCores: number;
  isaBest: string;
  isaActive: string;
  defaultThreads: number;
}

/** Every function the addon exports. Files in native/addon add entries; keep this in step. */
export interface NativeAddon {
  abiVersion: number;
  cpuInfo(): CpuInfo;
  /** Lowers the kernel ISA level ('scalar', 'avx2', 'avx512', 'neon', 'dotprod'); false if unsupported. */
  setIsa(level: string): boolean;
  /** Backends other than the CPU, with availability and the device or the reason it is missing. */
  backends(): Array<{ backend: string; available: boolean; device?: string; reason?: string }>;
  [key: string]: unknown;
}

const require = createRequire(import.meta.url);
export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

let cached: NativeAddon | undefined;

/** The addon, loaded on first use. Throws an Error that says how to build it when none is found. */
export function native(): NativeAddon {
  if (cached) return cached;
  const load = require('node-gyp-build') as (dir: string) => NativeAddon;
  try {
    cached = load(packageRoot);
  } catch (err) {
    const e = new Error(
      `sdnode: the native addon could not be loaded (${(err as Error).message}). ` +
        `Run 'npm rebuild sdnode' (needs cmake and a C++17 compiler), or install on a platform with a prebuilt binary.`,
    );
    (e as Error & { cause?: unknown }).cause = err;
    throw e;
  }
  return cached;
}
