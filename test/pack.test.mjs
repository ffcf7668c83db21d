// The published package works without a compiler: scripts/pack-test.mjs packs it, installs the
// tarball into an empty directory with only node and sh on PATH and runs an op from the prebuilt
// binary. It builds prebuilds/<platform>-<arch> first when missing (.ci/run prebuilds before npm test).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

test('npm pack + install with no compiler on PATH loads the prebuilt addon', { timeout: 600_000 }, () => {
  const script = fileURLToPath(new URL('../scripts/pack-test.mjs', import.meta.url));
  const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 590_000 });
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, out);
  assert.match(r.stdout, /pack-test: loaded prebuilds\/[a-z]+-[a-z0-9]+\/sdnode\.napi(\.[a-z0-9]+)*\.node .*round trip exact/, out);
});
