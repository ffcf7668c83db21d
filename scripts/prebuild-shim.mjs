#!/usr/bin/env node
// prebuildify calls its --node-gyp command as `<cmd> rebuild --target=V --devdir=D --arch=A --release`.
// This stands in for node-gyp and builds with cmake-js into <cwd>/build/Release, where prebuildify
// picks the .node file up. N-API headers come from node-api-headers (package.json binary.napi_versions),
// so --target and --devdir need no download and are ignored.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { arch as hostArch } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

const opts = Object.fromEntries(process.argv.slice(3).filter((a) => a.startsWith('--'))
  .map((a) => { const [k, v] = a.slice(2).split('='); return [k, v ?? true]; }));
const arch = typeof opts.arch === 'string' ? opts.arch : hostArch();

const args = [require.resolve('cmake-js/bin/cmake-js'), 'rebuild', '--directory', root,
  '--out', join(process.cwd(), 'build'), '--arch', arch];
if (opts.debug) args.push('--debug');
if (arch !== hostArch()) {
  const toolchains = { arm64: 'aarch64-linux-gnu.cmake' };
  const file = process.env.SDNODE_TOOLCHAIN_FILE || (toolchains[arch] && join(root, 'cmake', toolchains[arch]));
  if (!file) {
    console.error(`prebuild-shim: no cross toolchain for arch '${arch}' (set SDNODE_TOOLCHAIN_FILE)`);
    process.exit(1);
  }
  args.push(`--CDCMAKE_TOOLCHAIN_FILE=${file}`);
}
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
