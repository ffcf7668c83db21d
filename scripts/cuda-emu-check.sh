#!/usr/bin/env bash
# Runs the tensor-core CUDA kernels on the host with the warp-level ops (ldmatrix, mma.sync,
# shuffles) emulated from the PTX ISA's fragment layouts (native/cuda/tests/tc_emulation.cpp):
# checks their tiling, fragment and masking arithmetic without a GPU. Needs g++ and the CUDA
# headers (cuda_fp16.h); about 20 s.
set -euo pipefail
cd "$(dirname "$0")/.."
inc="${CUDA_HOME:-/usr/local/cuda}/include"
if [ ! -f "$inc/cuda_fp16.h" ]; then
  nvcc_bin="$(command -v nvcc || true)"
  [ -n "$nvcc_bin" ] && inc="$(dirname "$(dirname "$nvcc_bin")")/include"
fi
out="${TMPDIR:-/tmp}/sdnode-tc-emu-$$"
g++ -std=c++17 -O1 -pthread -Inative/cuda/tests/emu -Inative -I"$inc" native/cuda/tests/tc_emulation.cpp \
  native/core/dtype.cpp -o "$out"
trap 'rm -f "$out"' EXIT
"$out"
