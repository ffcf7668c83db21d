#!/usr/bin/env node
// npm "install" hook. Uses a prebuilt binary from prebuilds/ when one loads on this machine;
// otherwise builds from source with cmake-js. Never falls back to node-gyp.
//   SDNODE_BUILD_FROM_SOURCE=1 or `npm i --build-from-source` forces a source build.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync, readFileSync } from 'node:fs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

// SDNODE_CUDA=1 builds the CUDA backend library too, which no prebuilt binary of the addon carries.
const forced = process.env.SDNODE_CUDA === '1' ||
  ['1', 'true'].includes(String(process.env.SDNODE_BUILD_FROM_SOURCE ?? '').toLowerCase()) ||
  ['1', 'true', ''].includes(String(process.env.npm_config_build_from_source ?? 'unset').toLowerCase());

// Load in a child process: an unusable binary (wrong libc, illegal instruction) must not kill npm.
function probe(onlyPrebuilt) {
  const code = `
    const load = require(${JSON.stringify(require.resolve('node-gyp-build'))});
    const path = load.path(${JSON.stringify(root)});
    if (${onlyPrebuilt} && !path.includes('prebuilds')) throw new Error('no prebuilt binary fits: ' + path);
    const addon = require(path);
    const info = addon.cpuInfo();
    console.log(path + ' (' + info.isaActive + ')');`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8' });
  return { ok: r.status === 0, out: (r.stdout + r.stderr).trim() };
}

function describeMachine() {
  let libc = 'unknown';
  try {
    const report = process.report?.getReport();
    libc = report?.header?.glibcVersionRuntime ? `glibc ${report.header.glibcVersionRuntime}` : 'musl or other';
  } catch { /* report unavailable */ }
  return `platform ${process.platform}, arch ${process.arch}, libc ${libc}, node ${process.version}, CPU features: ${cpuFeatures()}`;
}

// The SIMD features the kernels dispatch on, as the OS reports them (the addon itself did not load).
function cpuFeatures() {
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8');
    const line = text.split('\n').find((l) => /^(flags|Features)\s*:/.test(l)) ?? '';
    const have = new Set(line.split(':')[1]?.trim().split(/\s+/) ?? []);
    const wanted = ['avx2', 'fma', 'f16c', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'asimd', 'asimddp', 'asimdhp'];
    const found = wanted.filter((f) => have.has(f));
    return found.length ? found.join(' ') : 'none of the SIMD extensions sdnode uses';
  } catch {
    return 'unknown (no /proc/cpuinfo)';
  }
}

if (!forced) {
  const p = probe(true);
  if (p.ok) {
    console.log(`sdnode: using prebuilt binary ${p.out}`);
    process.exit(0);
  }
  console.log(`sdnode: no usable prebuilt binary (${p.out.split('\n').pop()}); building from source with cmake-js`);
}

const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const args = [cmakeJs, 'compile', '--directory', root];
if (process.env.SDNODE_CUDA === '1') args.push('--CDSDNODE_CUDA=ON');
const r = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root });
const built = r.status === 0 && probe(false);
if (!built || !built.ok) {
  console.error(`
sdnode: could not install.
  No prebuilt binary in prebuilds/ fits this machine (${describeMachine()}),
  and building from source failed${r.error ? ` (${r.error.message})` : ''}.
  Building from source needs cmake >= 3.18 and a C++17 compiler (g++ or clang++) on PATH,
  e.g. 'apt-get install cmake g++' on Debian/Ubuntu. Then run 'npm rebuild sdnode'.
  ${existsSync(join(root, 'prebuilds')) ? 'Prebuilt binaries exist for linux-x64 and linux-arm64 (glibc).' : ''}`);
  if (built && built.out) console.error(built.out);
  process.exit(1);
}
console.log(`sdnode: built ${built.out}`);
