#!/usr/bin/env bash
# Runs the tensor-core CUDA kernels on the host with the warp-level ops (ldmatrix, mma.sync,
# shuffles) emulated from the PTX ISA's fragment layouts (native/cuda/tests/tc_emulation.cpp and the
# tc_emu_*.cpp it runs): checks their tiling, fragment and masking arithmetic without a GPU. Needs g++ and the CUDA
# headers (cuda_fp16.h); about a minute (two builds, each running every CUDA thread of a block as a fiber).
set -euo pipefail
cd "$(dirname "$0")/.."
inc="${CUDA_HOME:-/usr/local/cuda}/include"
if [ ! -f "$inc/cuda_fp16.h" ]; then
  nvcc_bin="$(command -v nvcc || true)"
  [ -n "$nvcc_bin" ] && inc="$(dirname "$(dirname "$nvcc_bin")")/include"
fi
out="${TMPDIR:-/tmp}/sdnode-tc-emu-$$"
trap 'rm -f "$out" "$out-sm75"' EXIT
# Twice, the two builds side by side: with m16n8k16 (sm_80+), and with the pairs of m16n8k8 that
# sm_75 runs instead.
srcs=(native/cuda/tests/tc_emulation.cpp native/cuda/tests/tc_emu_gemm.cpp native/cuda/tests/tc_emu_attention.cpp
      native/core/dtype.cpp)
flags=(-std=c++17 -O1 -pthread -Inative/cuda/tests/emu -Inative -I"$inc")
g++ "${flags[@]}" "${srcs[@]}" -o "$out" &
g++ "${flags[@]}" -DSDNODE_EMU_SM75 "${srcs[@]}" -o "$out-sm75" || { wait; exit 1; }
wait $! || exit 1
rc=0
"$out" || rc=1
"$out-sm75" | grep -E '^FAIL|^tc emulation' || true
[ "${PIPESTATUS[0]}" = 0 ] || rc=1
exit $rc
