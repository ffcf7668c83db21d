#!/usr/bin/env node
// `npm run prebuild` / `npm run prebuild:arm64`: builds the addon into prebuilds/<platform>-<arch>/
// with prebuildify (layout and N-API naming that node-gyp-build resolves), using cmake-js through
// scripts/prebuild-shim.mjs instead of node-gyp. arm64 is cross-compiled with Debian's
// g++-aarch64-linux-gnu (cmake/aarch64-linux-gnu.cmake). The result is load-tested when it can run here.
//   node scripts/prebuild.mjs [--arch x64|arm64]
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { arch as hostArch, cpus, platform } from 'node:os';
import { copyFileSync, mkdirSync, openSync, readSync, closeSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const argv = process.argv.slice(2);
const archArg = argv.indexOf('--arch');
const arch = archArg >= 0 ? argv[archArg + 1] : hostArch();
const cross = arch !== hostArch();
const started = Date.now();

// Its own staging dir per target, so it never touches build/ (the developer's source build).
const stage = join(root, `build-prebuild-${platform()}-${arch}`);
mkdirSync(stage, { recursive: true });

const prebuildify = require('prebuildify');
await new Promise((resolve, reject) => {
  prebuildify({
    cwd: stage,
    out: root,
    // prebuildify 6 names N-API builds '<name>.node'; '.napi' keeps the N-API tag in the file name.
    name: 'sdnode.napi',
    napi: true,
    tagLibc: true,
    arch,
    strip: true,
    stripBin: cross && arch === 'arm64' ? 'aarch64-linux-gnu-strip' : 'strip',
    nodeGyp: join(root, 'scripts', 'prebuild-shim.mjs'),
  }, (err) => (err ? reject(err) : resolve()));
}).catch((err) => {
  console.error(`prebuild: ${err.message}`);
  process.exit(1);
});

const dir = join(root, 'prebuilds', `${platform()}-${arch}`);
const files = readdirSync(dir).filter((f) => f.endsWith('.node'));
const machine = (file) => {
  const fd = openSync(file, 'r');
  const b = Buffer.alloc(20);
  readSync(fd, b, 0, 20, 0);
  closeSync(fd);
  return { 0x3e: 'x64', 0xb7: 'arm64' }[b.readUInt16LE(18)] ?? `e_machine ${b.readUInt16LE(18)}`;
};
// The newest GLIBC_x.y symbol version the binary references is the oldest glibc it loads on.
const glibc = (file) => {
  const v = [...readFileSync(file).toString('latin1').matchAll(/GLIBC_2\.(\d+)/g)].map((m) => Number(m[1]));
  return v.length ? `glibc >= 2.${Math.max(...v)}` : 'no glibc symbol versions';
};
for (const f of files) {
  const p = join(dir, f);
  console.log(`prebuild: ${p} (${(statSync(p).size / 1e6).toFixed(2)} MB, ${machine(p)}, needs ${glibc(p)})`);
  if (machine(p) !== arch) {
    console.error(`prebuild: ${f} is not an ${arch} binary`);
    process.exit(1);
  }
}

// The CUDA backend (linux-x64): a separate library the addon dlopens from its own folder when a GPU
// and driver answer (native/core/backend_loader.cpp), so it ships beside the .node file. All of
// native/cuda/CMakeLists.txt's architectures (Turing..Hopper real code + PTX); the CUDA runtime is
// linked statically, so it needs only the driver's libcuda.so.1. Built where nvcc is on the PATH
// (SDNODE_PREBUILD_CUDA=0 skips it, =1 makes a missing nvcc an error).
const cudaWanted = process.env.SDNODE_PREBUILD_CUDA ?? 'auto';
const hasNvcc = spawnSync('nvcc', ['--version'], { stdio: 'ignore' }).status === 0;
if (!cross && platform() === 'linux' && arch === 'x64' && cudaWanted !== '0') {
  if (!hasNvcc) {
    if (cudaWanted === '1') {
      console.error('prebuild: SDNODE_PREBUILD_CUDA=1 but nvcc is not on the PATH');
      process.exit(1);
    }
    console.log('prebuild: nvcc not found, the CUDA backend library is not built');
  } else {
    const cudaStage = join(root, `build-prebuild-${platform()}-${arch}-cuda`);
    const t0 = Date.now();
    const run = (cmd, args) => {
      const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8' });
      if (r.status !== 0) {
        console.error(`${r.stdout}\n${r.stderr}`.split('\n').slice(-60).join('\n'));
        console.error(`prebuild: '${cmd} ${args.join(' ')}' failed`);
        process.exit(1);
      }
      return r.stdout;
    };
    run('cmake', ['-S', '.', '-B', cudaStage, '-DSDNODE_CUDA=ON', '-DSDNODE_ADDON=OFF', '-DCMAKE_BUILD_TYPE=Release']);
    run('cmake', ['--build', cudaStage, '-j', String(Math.max(1, Math.min(cpus().length, 8))), '--target', 'sdnode_cuda']);
    const so = join(dir, 'sdnode_cuda.so');
    copyFileSync(join(cudaStage, 'native', 'cuda', 'sdnode_cuda.so'), so);
    run('strip', ['--strip-unneeded', so]);
    const needed = [...run('readelf', ['-d', so]).matchAll(/NEEDED\).*\[(.+)\]/g)].map((m) => m[1]);
    if (needed.some((n) => /cudart|cublas/.test(n))) {
      console.error(`prebuild: sdnode_cuda.so must link the CUDA runtime statically, it needs ${needed.join(', ')}`);
      process.exit(1);
    }
    console.log(`prebuild: ${so} (${(statSync(so).size / 1e6).toFixed(2)} MB, needs ${needed.join(', ')}; ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  }
}

// node-gyp-build must pick this file with the compiled build/ ignored (PREBUILDS_ONLY).
if (!cross) {
  const code = `const p = require('node-gyp-build').path(${JSON.stringify(root)});
    if (!p.startsWith(${JSON.stringify(dir)})) throw new Error('node-gyp-build chose ' + p);
    const a = require(p); const q = a.quantize(new Float32Array(32).fill(1), 'q8_0');
    console.log('prebuild: node-gyp-build loads ' + p + ' (' + a.cpuInfo().isaActive + ', q8_0 ' + q.length + ' bytes)');`;
  const r = spawnSync(process.execPath, ['-e', code], { cwd: root, stdio: 'inherit', env: { ...process.env, PREBUILDS_ONLY: '1' } });
  if (r.status !== 0) process.exit(1);
}
console.log(`prebuild: ${platform()}-${arch} done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
