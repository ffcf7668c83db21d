#!/usr/bin/env bash
# The GPU proof, run on a machine with an NVIDIA GPU (no Node needed): builds the core tests and
# the CUDA backend for this GPU, runs every op on CUDA against the CPU backend, then the tiny-model
# golden tests (CLIP, UNet, VAE at every weight dtype) on the CUDA backend, then a short benchmark.
#   bash scripts/gpu-check.sh [cuda-arch, default: detected, e.g. 90]
set -uo pipefail
cd "$(dirname "$0")/.."
arch="${1:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '.')}"
arch="${arch:-90}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
gen=""; command -v ninja >/dev/null && gen="-G Ninja"
t0=$(date +%s)
cmake -S . -B build-gpu $gen -DCMAKE_BUILD_TYPE=Release -DSDNODE_TESTS=ON -DSDNODE_CUDA=ON \
  -DSDNODE_CUDA_ARCHS="${arch}-real" >/dev/null || exit 1
cmake --build build-gpu -j "$(nproc)" 2>&1 | grep -E 'error|FAILED' ; [ "${PIPESTATUS[0]}" = 0 ] || exit 1
echo "build: $(( $(date +%s) - t0 )) s"
export SDNODE_CUDA_LIB="$PWD/build-gpu/native/cuda/sdnode_cuda.so"
rc=0
echo "== CUDA ops vs CPU backend"
./build-gpu/native/cuda/sdcuda_tests --bench || rc=1
echo "== tiny-model goldens on CUDA"
SDNODE_TEST_BACKEND=cuda ./build-gpu/sdcore_tests models_ || rc=1
echo "gpu-check: total $(( $(date +%s) - t0 )) s, rc=$rc"
exit $rc
