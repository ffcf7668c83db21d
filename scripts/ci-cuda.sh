#!/usr/bin/env bash
# CI job: compiles the CUDA backend library and its tests with nvcc (CI has no GPU) so the CUDA code
# never rots, then runs sdcuda_tests, which must skip cleanly without a device, and the host
# emulation of the tensor-core kernels (scripts/cuda-emu-check.sh). sm_75 and sm_80 cover both mma
# code paths (m16n8k8 pairs / m16n8k16) while keeping the compile short; releases build the full
# list (native/cuda/CMakeLists.txt).
source "$(dirname "$0")/ci-common.sh"
if ! command -v nvcc >/dev/null; then
  echo "ci-cuda: nvcc not found; the CUDA backend was not compiled" >&2
  exit 1
fi
mkdir -p build-cuda-ci
if ! { cmake -S . -B build-cuda-ci -DSDNODE_TESTS=ON -DSDNODE_CUDA=ON -DSDNODE_CUDA_ARCHS="75-real;80-real" \
         -DCMAKE_BUILD_TYPE=Release && cmake --build build-cuda-ci -j "$JOBS" --target sdnode_cuda sdcuda_tests; } \
    >build-cuda-ci/ci-build.log 2>&1; then
  tail -n 60 build-cuda-ci/ci-build.log
  exit 1
fi
SDNODE_CUDA_LIB="$PWD/build-cuda-ci/native/cuda/sdnode_cuda.so" ./build-cuda-ci/native/cuda/sdcuda_tests || exit 1
bash "$(dirname "$0")/cuda-emu-check.sh"
