#!/usr/bin/env node
// Packs sdnode (`npm pack`), installs the tarball into an empty directory with no compiler on PATH
// (only node and sh), then loads the addon from the installed package and runs a quantize round
// trip. Passing proves the published package works from its prebuilt binary alone.
//   node scripts/pack-test.mjs [--keep]      (builds prebuilds/<platform>-<arch> first when missing)
// Other architectures (CI, scripts/ci-arm64-node.sh): the install runs on this machine, then the
// check runs with that architecture's node, e.g. under qemu-user:
//   node scripts/pack-test.mjs --arch arm64 --node "qemu-aarch64 -cpu cortex-a72 /path/to/arm64/node"
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { arch, platform, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const keep = process.argv.includes('--keep');
const option = (name) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : undefined; };
const targetArch = option('--arch') ?? arch();
const runner = option('--node')?.split(' ').filter(Boolean) ?? [process.execPath];
// Resolved now: the check runs with a PATH that holds only node and sh.
const resolved = spawnSync('sh', ['-c', 'command -v "$0"', runner[0]], { encoding: 'utf8' });
if (resolved.status === 0) runner[0] = resolved.stdout.trim();
const t0 = Date.now();
const secs = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

function fail(msg, out = '') {
  console.error(`pack-test: FAIL: ${msg}${out ? `\n${out}` : ''}`);
  process.exit(1);
}
function run(cmd, args, opts) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.status !== 0) fail(`${[cmd, ...args].join(' ')} exited ${r.status ?? r.error?.message}`, `${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

// npm's own CLI script, run with this node (the restricted PATH below has no npm).
function npmCli() {
  const candidates = [process.env.npm_execpath, join(dirname(process.execPath), '../lib/node_modules/npm/bin/npm-cli.js')];
  const which = spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' });
  if (which.status === 0) candidates.push(join(dirname(realpathSync(which.stdout.trim())), 'npm-cli.js'));
  const found = candidates.find((p) => p && p.endsWith('.js') && existsSync(p));
  if (!found) fail('cannot find npm-cli.js');
  return found;
}

// npm passes its settings down as npm_* variables; only the cache/registry ones should reach the install.
function cleanEnv(path) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('npm_') && !/^npm_config_(cache|registry|userconfig)$/.test(k)) continue;
    env[k] = v;
  }
  return { ...env, PATH: path, SDNODE_BUILD_FROM_SOURCE: '' };
}

// The install hook on this machine needs the host's binary; the check needs the target's.
const tuple = `${platform()}-${targetArch}`;
for (const a of new Set([arch(), targetArch])) {
  const dir = join(root, 'prebuilds', `${platform()}-${a}`);
  if (!existsSync(dir) || !readdirSync(dir).some((f) => f.endsWith('.node'))) {
    console.log(`pack-test: no prebuilt binary for ${platform()}-${a}, running scripts/prebuild.mjs --arch ${a}`);
    run(process.execPath, [join(root, 'scripts/prebuild.mjs'), '--arch', a], { cwd: root, stdio: 'inherit' });
  }
}

const tmp = mkdtempSync(join(tmpdir(), 'sdnode-pack-'));
try {
  const npm = npmCli();
  const packed = JSON.parse(run(process.execPath, [npm, 'pack', '--json', '--pack-destination', tmp, '--loglevel=error'], { cwd: root }));
  const { filename, files, size } = packed[0];
  const binaries = files.map((f) => f.path).filter((p) => p.startsWith(`prebuilds/${tuple}/`) && p.endsWith('.node'));
  if (!binaries.length) fail(`the tarball has no prebuilds/${tuple}/*.node`);
  for (const must of ['dist/index.js', 'dist/index.d.ts', 'scripts/install.mjs', 'CMakeLists.txt']) {
    if (!files.some((f) => f.path === must)) fail(`the tarball lacks ${must}`);
  }
  console.log(`pack-test: packed ${filename} (${(size / 1e6).toFixed(2)} MB, ${files.length} files, ${binaries.join(', ')}) at ${secs()}`);

  // PATH with node and sh only: no cc, c++, g++, cmake, make, python, node-gyp.
  const bin = join(tmp, 'bin');
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, 'node'));
  symlinkSync('/bin/sh', join(bin, 'sh'));
  const env = cleanEnv(bin);
  for (const tool of ['cc', 'c++', 'gcc', 'g++', 'clang++', 'cmake', 'make']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`], { env }).status === 0) fail(`${tool} is reachable on the restricted PATH`);
  }

  const app = join(tmp, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'sdnode-pack-test', version: '1.0.0', private: true, type: 'module' }));
  const installOut = run(process.execPath, [npm, 'install', join(tmp, filename), '--no-audit', '--no-fund',
    '--prefer-offline', '--foreground-scripts', '--loglevel=error'], { cwd: app, env });
  if (!/sdnode: using prebuilt binary .*prebuilds/.test(installOut)) fail('the install hook did not use the prebuilt binary', installOut);
  console.log(`pack-test: installed with no compiler on PATH at ${secs()}`);

  writeFileSync(join(app, 'check.mjs'), `
    import { createRequire } from 'node:module';
    import { existsSync } from 'node:fs';
    import { dirname } from 'node:path';
    import { quantize, dequantize, cpuInfo } from 'sdnode';
    const require = createRequire(import.meta.url);
    const pkg = dirname(require.resolve('sdnode/package.json'));
    const path = require('node-gyp-build').path(pkg);
    if (!path.includes('/prebuilds/${tuple}/')) throw new Error('loaded ' + path);
    if (existsSync(pkg + '/build')) throw new Error('the install compiled something: ' + pkg + '/build exists');
    // Values exactly representable in q8_0 with d = 1 (|x| = 127 in each block): the round trip is exact.
    const x = Float32Array.from({ length: 64 }, (_, i) => (i % 2 ? -1 : 1) * ((i * 37) % 128));
    x[5] = 127; x[37] = -127;
    const q = quantize(x, 'q8_0');
    if (q.length !== 68) throw new Error('q8_0 size ' + q.length);
    const y = dequantize(q, 'q8_0', 64);
    for (let i = 0; i < 64; i++) if (y[i] !== x[i]) throw new Error('round trip differs at ' + i + ': ' + y[i] + ' vs ' + x[i]);
    console.log('pack-test: loaded ' + path.slice(pkg.length + 1) + ' (' + cpuInfo().isaActive + '), q8_0 round trip exact');
  `);
  // Node-gyp-build's normal resolution (PREBUILDS_ONLY unset); check.mjs asserts it lands in prebuilds/.
  process.stdout.write(run(runner[0], [...runner.slice(1), 'check.mjs'], { cwd: app, env: { ...env, PREBUILDS_ONLY: '' } }));
  console.log(`pack-test: ok in ${secs()}`);
} finally {
  if (keep) console.log(`pack-test: kept ${tmp}`);
  else rmSync(tmp, { recursive: true, force: true });
}
