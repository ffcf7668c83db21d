#!/usr/bin/env bash
# The GPU proof, run on a machine with an NVIDIA GPU (no Node needed). Builds the core tests and the
# CUDA backend for this GPU, then for each kernel set -- SDNODE_CUDA_TC=0 (v0 f32 SIMT) and =1
# (tensor cores, f16 inputs / f32 accumulation) -- runs:
#   1. every op on CUDA against the CPU backend, one line per case with its max rel err and
#      tolerance, plus the tiny-model goldens and a kernel benchmark (sdcuda_tests --bench);
#   2. the tiny-model golden suite (SDNODE_TEST_BACKEND=cuda sdcore_tests models_);
#   3. the full-size SD 1.5-shaped benchmark: UNet 256/512 batch-2 step, CLIP, VAE decode (ms);
#   4. whole 512x512 20-step generations with f16, q8_0 and q4_0 weights (ms, peak VRAM), for the
#      kernel sets in SDNODE_GPU_CHECK_GEN_TC (default 1: the tensor-core set).
# Ends with a summary: every FAIL line, each step's rc and seconds, the bench lines.
# Expected run time on an H100/H200: build 2-4 min, steps 1-4 about 4 min together.
#   bash scripts/gpu-check.sh [cuda-arch, default: detected, e.g. 90]
#   SDNODE_GPU_CHECK_STEPS="ops models bench gen splitk torch" (the default) runs a subset; "splitk"
#   is the TC=1 bench with split-K off (SDNODE_CUDA_SPLITK=0), with split-K planned for one block
#   per SM (SDNODE_CUDA_SPLITK_SLOTS=1, plus its op tests), with the double-buffered GEMM
#   (SDNODE_CUDA_STAGES=2) and without the NHWC conv (SDNODE_CUDA_NHWC=0): what each default gives;
#   "torch" PyTorch's fp16 figures on this
#   card (scripts/torch-baseline.py); these two come last, so that a short budget skips them;
#   SDNODE_GPU_CHECK_TC="0 gemm,attn,norm 1" (default) the kernel sets for the tests, each a
#   SDNODE_CUDA_TC value (0, 1 = every part, or a list of gemm,attn,norm,half; "half" stores
#   activations as f16), SDNODE_GPU_CHECK_BENCH_TC="0 1" those for the benchmark;
#   steps 3 and 4 run with and without CUDA graphs (the default is on; SDNODE_CUDA_GRAPH=0 off);
#   SDNODE_BENCH_PROFILE_ROWS=n adds a by-shape profile (device time per op) of the UNet and VAE;
#   SDNODE_GPU_CHECK_BUDGET_S (default 540, build included) caps the whole run; each step also has
#   its own limit.
#   SDNODE_GPU_CHECK_SANITIZE=1 adds a compute-sanitizer memcheck of the TC op tests (slow; for
#   diagnosing a failure; it works on the Firecracker machines, a gVisor one refused the device).
# Device time is scarce and the build is the slowest part, so it can be done beforehand on a machine
# without a GPU: `bash scripts/gpu-check.sh --build-only 90` builds build-gpu and stamps it with a
# hash of the sources; carry build-gpu to the GPU machine and this script skips the build when the
# stamp still matches the sources there (any edit since means a rebuild, never stale binaries).
set -uo pipefail
cd "$(dirname "$0")/.."
build_only=0
if [ "${1:-}" = --build-only ]; then build_only=1; shift; fi
arch="${1:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '.')}"
arch="${arch:-90}"
steps="${SDNODE_GPU_CHECK_STEPS:-ops models bench gen splitk pending torch}"
gen_modes="${SDNODE_GPU_CHECK_GEN_TC:-1}"
modes="${SDNODE_GPU_CHECK_TC:-0 gemm,attn,norm 1}"
bench_modes="${SDNODE_GPU_CHECK_BENCH_TC:-0 1}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
gen=""; command -v ninja >/dev/null && gen="-G Ninja"
t0=$(date +%s)
# What the binaries were built from: the sources, the build files and the architecture.
stamp() {
  { echo "arch=$arch"; find native CMakeLists.txt -type f | LC_ALL=C sort | xargs sha256sum; } |
    sha256sum | cut -c1-16
}
bins="build-gpu/sdcore_tests build-gpu/native/cuda/sdnode_cuda.so build-gpu/native/cuda/sdcuda_tests"
if [ "$build_only" = 0 ] && [ -f build-gpu/prebuilt-stamp ] && [ "$(cat build-gpu/prebuilt-stamp)" = "$(stamp)" ] &&
  ls $bins >/dev/null 2>&1 && ! ldd $bins 2>&1 | grep -q 'not found'; then
  echo "build: prebuilt binaries match the sources (stamp $(cat build-gpu/prebuilt-stamp)), not rebuilding"
  chmod +x build-gpu/sdcore_tests build-gpu/native/cuda/sdcuda_tests  # in case the carry dropped the mode
else
  [ "$build_only" = 0 ] && [ -f build-gpu/prebuilt-stamp ] &&
    echo "!! build: the carried binaries do not match these sources (edited since --build-only?): building here" \
      "takes 2-4 min of device time"
  rm -f build-gpu/prebuilt-stamp
  # A carried build dir's CMake cache names the other machine's paths; start it afresh there.
  [ -f build-gpu/CMakeCache.txt ] && ! grep -q "CMAKE_HOME_DIRECTORY:INTERNAL=$PWD\$" build-gpu/CMakeCache.txt &&
    rm -rf build-gpu
  cmake -S . -B build-gpu $gen -DCMAKE_BUILD_TYPE=Release -DSDNODE_TESTS=ON -DSDNODE_CUDA=ON \
    -DSDNODE_CUDA_ARCHS="${arch}-real" >/dev/null || exit 1
  jobs="$(nproc)"; [ "$build_only" = 1 ] && jobs="${SDNODE_GPU_CHECK_JOBS:-2}"
  cmake --build build-gpu -j "$jobs" --target sdcore_tests sdnode_cuda sdcuda_tests 2>&1 | grep -E 'error|FAILED|cuda/.*warning'
  [ "${PIPESTATUS[0]}" = 0 ] || exit 1
  echo "build: $(( $(date +%s) - t0 )) s"
fi
if [ "$build_only" = 1 ]; then
  stamp >build-gpu/prebuilt-stamp
  du -ch $bins | tail -1
  echo "prebuilt for sm_$arch, stamp $(cat build-gpu/prebuilt-stamp); carry only the binaries, e.g."
  echo "  run(carry: [\"build-gpu/prebuilt-stamp\", \"build-gpu/sdcore_tests\", \"build-gpu/native/cuda/sdnode_cuda.so\","
  echo "       \"build-gpu/native/cuda/sdcuda_tests\"], command: \"bash scripts/gpu-check.sh\")"
  exit 0
fi
export SDNODE_CUDA_LIB="$PWD/build-gpu/native/cuda/sdnode_cuda.so"
export SDNODE_CUDA_REQUIRE=1  # here a CUDA backend that does not load is a failure, not a skip
# On the lent GPU machine only the output's tail comes back, and files under $OUT: the log goes
# there directly, so it survives even a run killed at the device's time limit.
log="${OUT:-build-gpu}/gpu-check.log"
[ -n "${OUT:-}" ] && mkdir -p "$OUT"
: >"$log"
summary=()
rc=0
# step NAME TIMEOUT CMD...: runs CMD (output to the terminal and the log), records rc and seconds.
# The steps share one budget (SDNODE_GPU_CHECK_BUDGET_S from the start, build included, default
# 540): a hung kernel costs its step, not the run, and the summary is always printed before the
# device's 600 s limit per command.
budget="${SDNODE_GPU_CHECK_BUDGET_S:-540}"
step() {
  local name="$1" limit="$2"; shift 2
  local s=$(date +%s)
  local left=$(( budget - (s - t0) ))
  if [ "$left" -lt 15 ]; then
    echo "== $name: SKIPPED, the check's budget of $budget s is spent" | tee -a "$log"
    summary+=("$(printf '%-44s skipped (budget)' "$name")"); rc=1; return
  fi
  [ "$limit" -gt "$left" ] && limit="$left"
  echo "== $name" | tee -a "$log"
  timeout "$limit" "$@" 2>&1 | tee -a "$log"
  local r=${PIPESTATUS[0]}
  [ "$r" = 0 ] || rc=1
  [ "$r" = 124 ] && echo "== $name: TIMED OUT after $limit s" | tee -a "$log"
  summary+=("$(printf '%-44s rc=%-3s %4d s' "$name" "$r" $(( $(date +%s) - s )))")
}
case " $steps " in *" ops "*)
  step "ops + goldens + kernel bench (TC: $modes)" 300 \
    env SDNODE_CUDA_TEST_TC="$modes" ./build-gpu/native/cuda/sdcuda_tests --bench ;;
esac
case " $steps " in *" models "*)
  for m in $modes; do
    step "sdcore_tests models_ on cuda, TC=$m" 300 \
      env SDNODE_CUDA_TC="$m" SDNODE_TEST_BACKEND=cuda ./build-gpu/sdcore_tests models_
  done ;;
esac
case " $steps " in *" bench "*)
  step "full-size bench f16 (TC: $bench_modes), no graphs" 300 \
    env SDNODE_CUDA_GRAPH=0 SDNODE_CUDA_TEST_TC="$bench_modes" SDNODE_BENCH_SIZES=256,512 ./build-gpu/native/cuda/sdcuda_tests --bench-model-only
  step "full-size bench f16, TC=1 with CUDA graphs" 200 \
    env SDNODE_CUDA_GRAPH=1 SDNODE_CUDA_TEST_TC=1 SDNODE_BENCH_SIZES=256,512 ./build-gpu/native/cuda/sdcuda_tests --bench-model-only ;;
esac
case " $steps " in *" gen "*)
  step "whole 512 generations f16/q8_0/q4_0, CUDA graphs (TC: $gen_modes)" 300 \
    env SDNODE_CUDA_GRAPH=1 SDNODE_CUDA_TEST_TC="$gen_modes" ./build-gpu/native/cuda/sdcuda_tests --bench-gen
  step "whole 512 generation f16 without graphs (TC: $gen_modes)" 120 \
    env SDNODE_CUDA_GRAPH=0 SDNODE_BENCH_GEN_DTYPES=f16 SDNODE_CUDA_TEST_TC="$gen_modes" ./build-gpu/native/cuda/sdcuda_tests --bench-gen ;;
esac
case " $steps " in *" splitk "*)  # what each GEMM default gives, TC=1 with graphs (A/B against "bench")
  step "full-size bench f16, TC=1, split-K off" 200 \
    env SDNODE_CUDA_SPLITK=0 SDNODE_CUDA_TEST_TC=1 SDNODE_BENCH_SIZES=256,512 ./build-gpu/native/cuda/sdcuda_tests --bench-model-only
  step "full-size bench f16, TC=1, split-K planned for 1 block/SM" 200 \
    env SDNODE_CUDA_SPLITK_SLOTS=1 SDNODE_CUDA_TEST_TC=1 SDNODE_BENCH_SIZES=256,512 ./build-gpu/native/cuda/sdcuda_tests --bench-model-only
  step "op tests, TC=1, split-K planned for 1 block/SM" 120 \
    env SDNODE_CUDA_SPLITK_SLOTS=1 SDNODE_CUDA_TEST_TC=1 ./build-gpu/native/cuda/sdcuda_tests
  step "full-size bench f16, TC=1, double-buffered GEMM" 200 \
    env SDNODE_CUDA_STAGES=2 SDNODE_CUDA_TEST_TC=1 SDNODE_BENCH_SIZES=256,512 ./build-gpu/native/cuda/sdcuda_tests --bench-model-only
  step "full-size bench f16, TC=1, NHWC conv off" 200 \
    env SDNODE_CUDA_NHWC=0 SDNODE_CUDA_TEST_TC=1 SDNODE_BENCH_SIZES=256,512 ./build-gpu/native/cuda/sdcuda_tests --bench-model-only ;;
esac
case " $steps " in *" pending "*)
  # Defaults-to-be, off until measured here: programmatic dependent launch (launch.h), the
  # epilogue fusions (SDNODE_CUDA_FUSE: Backend::linear_geglu, linear_to_channels, conv2d_add),
  # quantized 3x3 convs through the NHWC gather over weights repacked tap-major (SDNODE_CUDA_QTAPS)
  # and the multi-stage GEMM pipeline for quantized weights (SDNODE_CUDA_QPIPE).
  all="SDNODE_CUDA_PDL=1 SDNODE_CUDA_FUSE=1 SDNODE_CUDA_QTAPS=1 SDNODE_CUDA_QPIPE=1"
  step "op tests + goldens, TC=1, PDL, FUSE, QTAPS and QPIPE on" 120 \
    env $all SDNODE_CUDA_TEST_TC=1 ./build-gpu/native/cuda/sdcuda_tests
  step "sdcore_tests models_ on cuda, TC=1, PDL, FUSE, QTAPS and QPIPE on" 200 \
    env $all SDNODE_TEST_BACKEND=cuda ./build-gpu/sdcore_tests models_
  for knobs in "SDNODE_CUDA_PDL=1" "SDNODE_CUDA_FUSE=geglu" "SDNODE_CUDA_FUSE=proj_out" "SDNODE_CUDA_FUSE=conv_add" \
      "SDNODE_CUDA_FUSE=norm_conv" \
      "$all"; do
    step "full-size bench f16, TC=1, graphs, $knobs" 200 \
      env $knobs SDNODE_CUDA_TEST_TC=1 SDNODE_BENCH_SIZES=256,512 ./build-gpu/native/cuda/sdcuda_tests --bench-model-only
  done
  for knobs in "SDNODE_CUDA_QTAPS=0" "SDNODE_CUDA_QTAPS=1" "SDNODE_CUDA_QPIPE=1" \
      "SDNODE_CUDA_QTAPS=1 SDNODE_CUDA_QPIPE=1"; do
    step "full-size bench q8_0, TC=1, graphs, $knobs" 200 \
      env $knobs SDNODE_BENCH_DTYPE=q8_0 SDNODE_CUDA_TEST_TC=1 SDNODE_BENCH_SIZES=512 \
      ./build-gpu/native/cuda/sdcuda_tests --bench-model-only
  done
  step "whole 512 generations, graphs, PDL, FUSE, QTAPS and QPIPE on" 200 \
    env $all SDNODE_CUDA_TEST_TC=1 ./build-gpu/native/cuda/sdcuda_tests --bench-gen ;;
esac
case " $steps " in *" torch "*)  # PyTorch's figures on this card (the issue's are an H200's)
  if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
    step "PyTorch fp16 baseline (scripts/torch-baseline.py)" 180 python3 scripts/torch-baseline.py
  else
    echo "== PyTorch baseline: no CUDA PyTorch here, skipped" | tee -a "$log"
  fi ;;
esac
if [ "${SDNODE_GPU_CHECK_SANITIZE:-0}" = 1 ] && command -v compute-sanitizer >/dev/null; then
  step "compute-sanitizer memcheck, TC=1 ops" 300 \
    env SDNODE_CUDA_TEST_TC=1 compute-sanitizer --tool memcheck --print-limit 20 ./build-gpu/native/cuda/sdcuda_tests
fi
echo
echo "==== gpu-check summary ($(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1))"
grep -E '\bFAIL\b' "$log" | head -60
grep -E '^sdcuda|passed|failed' "$log" | grep -vE '^(ok|FAIL)' | tail -12
grep -E '^== sdcuda ops|^bench |^== bench-model|UNet .*batch 2|CLIP batch|VAE decode|^    [a-z].* calls |^  gen |^bench-gen|^torch |^  whole ' "$log"
printf '%s\n' "${summary[@]}"
echo "gpu-check: total $(( $(date +%s) - t0 )) s, rc=$rc"
exit $rc
