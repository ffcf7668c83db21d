#!/usr/bin/env bash
# CI job: cross-compiles the core's native tests for aarch64 with Debian's g++-aarch64-linux-gnu
# (statically linked, build-arm64/) and runs them under qemu-user on CPU models with and without
# dotprod, so both NEON paths are checked against the scalar reference without ARM hardware.
source "$(dirname "$0")/ci-common.sh"
apt_ensure g++-aarch64-linux-gnu qemu-user
cmake_build build-arm64 -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/aarch64-linux-gnu.cmake" -DCMAKE_BUILD_TYPE=Release

# qemu's CPU models: max (every feature: dotprod, fp16), cortex-a76 (Pi 5: dotprod, fp16),
# cortex-a72 (Pi 4: armv8.0 NEON only). The suite (op tests sweep scalar/neon/dotprod themselves,
# tiny-model goldens) runs once on max, less benches and the two cases that take minutes under
# emulation (attention over 4096 tokens, tiled VAE; x64 runs them); the Pi models run the dispatch
# check and the quantized GEMM/conv/quant tests, where the dotprod and NEON-only paths differ.
supported="$(qemu-aarch64 -cpu help || true)"  # exits 1 after listing
# cpu:SDNODE_ISA:expected level:test filters (dotprod exists once some *_dotprod.cpp is compiled in)
dot=neon
find native -name '*_dotprod.cpp' | grep -q . && dot=dotprod
heavy='attention_4096|models_vae_tiled|bench'
suite="$(grep -ho 'SD_TEST([a-z0-9_]*)' native/tests/*.cpp | sed 's/SD_TEST(//; s/)//' | grep -vE "$heavy" | tr '\n' ' ')"
pi_tests="ci_expected gemm_ conv2d quant_"
runs=("max::$dot:$suite" "cortex-a76::$dot:$pi_tests" "cortex-a72::neon:$pi_tests")
for run in "${runs[@]}"; do
  IFS=: read -r cpu isa expect filters <<<"$run"
  if ! grep -qw "$cpu" <<<"$supported"; then echo "ci-arm64: qemu lacks -cpu $cpu, skipped"; continue; fi
  echo "ci-arm64: qemu-aarch64 -cpu $cpu ${isa:+SDNODE_ISA=$isa }($(wc -w <<<"$filters") filters)"
  # shellcheck disable=SC2086  # filters are separate arguments
  SDNODE_ISA="$isa" SDNODE_EXPECT_ISA="$expect" qemu-aarch64 -cpu "$cpu" -L /usr/aarch64-linux-gnu \
    ./build-arm64/sdcore_tests $filters | grep -v "^ok "
done
