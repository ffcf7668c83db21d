// RNG against test/fixtures/rng/golden.safetensors (torch 2.11 randn; CUDA values from an H200, see its
// README): every tensor must be bit-identical (compared as uint32 bit patterns, so -0 != +0 too).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readSafetensorsF32 } from './helpers/safetensors-mini.mjs';
import { createHash } from 'node:crypto';
import * as R from '../dist/rng/index.js';
import { mufuTable, mufuSin, mufuCos } from '../dist/rng/mufu.js';

const { tensors } = readSafetensorsF32(new URL('./fixtures/rng/golden.safetensors', import.meta.url));

function assertBitEqual(ours, ref, what) {
  assert.equal(ours.length, ref.length, `${what}: length`);
  const a = new Uint32Array(ours.buffer, ours.byteOffset, ours.length);
  const b = new Uint32Array(ref.buffer, ref.byteOffset, ref.length);
  let bad = 0, first = -1;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) { if (first < 0) first = i; bad++; }
  assert.equal(bad, 0, `${what}: ${bad} of ${a.length} values differ, first at ${first} (${ours[first]} vs ${ref[first]})`);
}

const names = [...tensors.keys()];
assert.equal(names.filter((n) => n.startsWith('cpu.')).length, 45);
assert.equal(names.filter((n) => n.startsWith('cuda.')).length, 20);

for (const name of names) {
  const [device, seedPart, kind] = name.split('.');
  const seed = Number(seedPart.slice(4));
  const rng = device === 'cuda' ? 'philox' : 'cpu';
  test(`${name} ${JSON.stringify(tensors.get(name).shape)}: randn(..., ${seed}, '${rng}') is bit-identical`, () => {
    const { shape, data } = tensors.get(name);
    assertBitEqual(R.randn(shape, seed, rng), data, name);
  });
}

test('the shipped MUFU table decodes to the table measured on the H100 (sha256 of its 2^23 float32)', () => {
  // sha256 of the raw output of test/fixtures/rng/mufu-probe.cu on an H100 (CUDA 13.0).
  const t = mufuTable();
  assert.equal(t.length, 1 << 23);
  const sha = createHash('sha256').update(new Uint8Array(t.buffer, t.byteOffset, t.byteLength)).digest('hex');
  assert.equal(sha, '57676af4861bf1ab7f9ee4cb0875a4e1abb7725e77fa0016a38c8a233c875ce6');
  // Quadrant rules at the quarter turns (the hardware gives exactly 0 and +-1 there; the sign of a
  // zero was not measured, so === is used).
  const at = (x) => [mufuSin(x), mufuCos(x)];
  assert.ok(at(0)[0] === 0 && at(0)[1] === 1);
  assert.ok(at(1 << 23)[0] === 1 && at(1 << 23)[1] === 0);
  assert.ok(at(1 << 24)[0] === 0 && at(1 << 24)[1] === -1);
  assert.ok(at(3 << 23)[0] === -1 && at(3 << 23)[1] === 0);
});

test('batches use seeds s, s+1, ... per image (A1111)', () => {
  const b = tensors.get('cuda.seed0.b');
  const out = R.randnBatch([4, 8, 8], 0, 2, 'philox');
  assertBitEqual(out.subarray(0, 256), b.data, 'image 0');
  assertBitEqual(out.subarray(256), R.randn([1, 4, 8, 8], 1, 'philox'), 'image 1');
  assert.deepEqual(R.batchSeeds(41, 3), [41, 42, 43]);
  const cpu = R.randnBatch([1, 4, 8, 8], 42, 1, 'cpu');
  assertBitEqual(cpu, tensors.get('cpu.seed42.b').data, 'cpu batch of one');
});

test('a generator continues its stream like torch: cpu normal cache and philox offset', () => {
  // cpu, fewer than 16 values: normal_distribution<double> returns r cos and caches r sin for the next
  // call, so randn(1) twice gives the first two values of randn(15) (both goldens use that path).
  const e = tensors.get('cpu.seed1.e').data, f = tensors.get('cpu.seed1.f').data;
  assert.equal(e[0], f[0]);
  const g = new R.TorchCpuGenerator(1);
  const first = g.randn(1);
  const second = g.randn(1); // the cached sine half of the same pair = f[1]
  assert.equal(first[0], f[0]);
  assert.equal(second[0], f[1]);
  // philox: torch advances the offset by 4 per small call; the next call uses counter x + 1.
  const p = new R.PhiloxGenerator(0);
  p.randn(16);
  assert.equal(p.offset, 4);
  p.randn(16384);
  assert.equal(p.offset, 8);
});

test('torch.randn call sequences on one CUDA generator, incl. tensors over one wave (H100 reference)', () => {
  // test/fixtures/rng/cuda-waves.safetensors: torch 2.11 on an H100 (132 SMs x 2048 threads), sampled
  // elements (every 61st, plus +-2048 around each wave boundary and the ends) of consecutive calls.
  const waves = readSafetensorsF32(new URL('./fixtures/rng/cuda-waves.safetensors', import.meta.url));
  assert.equal(waves.metadata.sms, '132');
  const maxThreads = 132 * 2048;
  for (const [seed, calls] of [[123, [1200000, 600000, 1000]], [7, [16, 16, 16384]]]) {
    const g = new R.PhiloxGenerator(seed, { maxThreads });
    calls.forEach((n, k) => {
      const ours = g.randn(n);
      const name = `seed${seed}.call${k}.n${n}`;
      const idx = waves.tensors.get(`${name}.index`).data;
      const ref = waves.tensors.get(`${name}.value`).data;
      assertBitEqual(Float32Array.from(idx, (i) => ours[i]), ref, name);
    });
  }
});

test('more elements than one wave of threads: element layout follows torch\'s grid-stride loop', () => {
  // With maxThreads = 256 and 1000 elements: thread idx's first curand_normal4 gives elements
  // idx, idx+256, idx+512, idx+768 (components 0..3); the first 256 equal the one-wave values.
  const wide = R.randn([1000], 7, 'philox');
  const narrow = new R.PhiloxGenerator(7, { maxThreads: 256 }).randn(1000);
  assertBitEqual(narrow.subarray(0, 256), wide.subarray(0, 256), 'component 0');
  const block = new Uint32Array(4), pair = new Float32Array(4);
  R.philox4x32(0, 0, 5, 0, 7, 0, block);
  R.boxMuller(block[0], block[1], pair, 0);
  R.boxMuller(block[2], block[3], pair, 2);
  assert.deepEqual([narrow[5], narrow[261], narrow[517], narrow[773]], Array.from(pair));
});

test('ImageRng: first() is the batch noise of seeds s, s+1; next() continues each image\'s generator', () => {
  const rngs = R.ImageRng.forBatch([4, 8, 8], 0, 2, 'philox');
  const first = rngs.first();
  assertBitEqual(first.subarray(0, 256), tensors.get('cuda.seed0.b').data, 'image 0 first');
  assertBitEqual(first.subarray(256), tensors.get('cuda.seed1.b').data, 'image 1 first');
  const g0 = new R.PhiloxGenerator(0), g1 = new R.PhiloxGenerator(1);
  g0.randn(256); g1.randn(256);
  const step = rngs.next();
  assertBitEqual(step.subarray(0, 256), g0.randn(256), 'image 0 step');
  assertBitEqual(step.subarray(256), g1.randn(256), 'image 1 step');
  // ENSD: step noise from fresh generators seeded seed + b + delta.
  const ensd = new R.ImageRng([4, 8, 8], [42], 'cpu', { noiseSeedDelta: 31337 });
  assertBitEqual(ensd.first(), tensors.get('cpu.seed42.b').data, 'ensd first');
  assertBitEqual(ensd.next(), R.randn([256], 42 + 31337, 'cpu'), 'ensd step');
  assert.throws(() => ensd.first(), /once/);
});

test('bad arguments throw RangeError/TypeError naming the field', () => {
  assert.throws(() => R.randn([1, 4], -1, 'cpu'), { name: 'RangeError', message: /"seed"/ });
  assert.throws(() => R.randn([1, 4], 1.5, 'cpu'), { name: 'RangeError', message: /"seed"/ });
  assert.throws(() => R.randn([1, 0], 1, 'cpu'), { name: 'RangeError', message: /"shape\[1\]"/ });
  assert.throws(() => R.randn('1', 1, 'cpu'), { name: 'TypeError', message: /"shape"/ });
  assert.throws(() => R.randn([4], 1, 'gpu'), { name: 'RangeError', message: /"rng".*philox/ });
  assert.throws(() => R.randnBatch([4], 1, 0, 'cpu'), { name: 'RangeError', message: /"count"/ });
  const s = R.randomSeed();
  assert.ok(Number.isInteger(s) && s >= 0 && s < 4294967294);
});

test('4x64x64 noise takes < 10 ms (best of 20, after the one-time table load)', (t) => {
  // Measured as process CPU time (user + system), which a loaded shared machine inflates far less
  // than wall time; the wall time is logged beside it.
  for (const rng of ['philox', 'cpu']) {
    R.randn([1, 4, 64, 64], 0, rng);
    let bestCpu = Infinity, bestWall = Infinity;
    for (let i = 0; i < 20; i++) {
      const c = process.cpuUsage();
      const w = performance.now();
      R.randn([1, 4, 64, 64], i, rng);
      bestWall = Math.min(bestWall, performance.now() - w);
      const d = process.cpuUsage(c);
      bestCpu = Math.min(bestCpu, (d.user + d.system) / 1000);
    }
    t.diagnostic(`${rng}: best ${bestCpu.toFixed(2)} ms CPU, ${bestWall.toFixed(2)} ms wall`);
    assert.ok(bestCpu < 10, `${rng}: ${bestCpu.toFixed(2)} ms CPU`);
  }
});
