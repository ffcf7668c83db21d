#!/usr/bin/env bash
# CI job: cross-compiles the core's native tests for aarch64 with Debian's g++-aarch64-linux-gnu
# (statically linked, build-arm64/) and runs them under qemu-user on CPU models with and without
# dotprod, so both NEON paths are checked against the scalar reference without ARM hardware.
source "$(dirname "$0")/ci-common.sh"
apt_ensure g++-aarch64-linux-gnu qemu-user
cmake_build build-arm64 -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/aarch64-linux-gnu.cmake" -DCMAKE_BUILD_TYPE=Release

# qemu's CPU models: max (every feature, dotprod), cortex-a76 (Pi 5: dotprod, fp16),
# cortex-a72 (Pi 4: armv8.0 NEON only). The default level is the best the model offers.
supported="$(qemu-aarch64 -cpu help || true)"  # exits 1 after listing
# cpu:SDNODE_ISA:expected level (dotprod only exists once some *_dotprod.cpp is compiled in).
dot=neon
find native -name '*_dotprod.cpp' | grep -q . && dot=dotprod
runs=("max::$dot" "max:neon:neon" "cortex-a76::$dot" "cortex-a72::neon")
for run in "${runs[@]}"; do
  IFS=: read -r cpu isa expect <<<"$run"
  if ! grep -qw "$cpu" <<<"$supported"; then echo "ci-arm64: qemu lacks -cpu $cpu, skipped"; continue; fi
  echo "ci-arm64: qemu-aarch64 -cpu $cpu ${isa:+SDNODE_ISA=$isa}"
  SDNODE_ISA="$isa" SDNODE_EXPECT_ISA="$expect" qemu-aarch64 -cpu "$cpu" -L /usr/aarch64-linux-gnu ./build-arm64/sdcore_tests | grep -v "^ok "
done
