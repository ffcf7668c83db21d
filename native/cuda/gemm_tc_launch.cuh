// The tensor-core GEMM launch shared by tc_linear (gemm_tc_linear.cu) and tc_conv2d
// (gemm_tc_conv.cu): weight-loader dispatch, and the split-K path for small grids. Two translation
// units so that their many kernel instantiations compile in parallel.
#pragma once
#include <atomic>
#include <cstdint>

#include "cuda/common.cuh"
#include "cuda/cuda_backend.h"
#include "cuda/gemm_tc_kernel.cuh"
#include "cuda/tc_kernels.h"

namespace sd {
namespace cuda {
namespace tc_gemm {

// One GEMM kernel launch: the multi-stage kernel where the A loader copies with cp.async and the
// device holds two of its blocks per SM (c.stages), if the W loader does too or c.mixed_pipe; the
// double-buffered one otherwise.
template <class ALoad, class WLoad, class Store>
void launch_kernel(const TcCtx& c, dim3 grid, int64_t M, int64_t N, int64_t K, const ALoad& al, const WLoad& wl,
                   const float* b, const Store& st, int tiles_per_split) {
  if constexpr (ALoad::kAsync) {
    if (c.stages == 4 && (WLoad::kAsync || c.mixed_pipe)) {
      constexpr size_t smem = tc_gemm_async_smem<4, WLoad::kAsync>();
      auto* k = &tc_gemm_async_kernel<4, ALoad, WLoad, Store>;
      // Above 48 KB of dynamic shared memory a kernel must opt in, once per device (the eager
      // first run of a step, before any graph capture).
      static std::atomic<uint64_t> opted{0};
      int dev = 0;
      SD_CUDA(cudaGetDevice(&dev));
      const uint64_t bit = uint64_t{1} << (dev & 63);
      if (!(opted.load(std::memory_order_relaxed) & bit)) {
        SD_CUDA(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
        opted.fetch_or(bit);
      }
      cuda::enqueue(k, grid, THREADS, smem, c.stream, M, N, K, al, wl, b, st, tiles_per_split);
      return;
    }
  }
  cuda::enqueue(tc_gemm_kernel<ALoad, WLoad, Store>, grid, THREADS, 0, c.stream,
                M, N, K, al, wl, b, st, tiles_per_split);
}

// The launch for one weight loader `wl` (attention_wide.cu passes activations as the "weights").
// n_major: the output is NCHW (conv), so split-K partials are laid out by channel.
template <class ALoad, class WLoad, class Store>
void launch_w(const TcCtx& c, int64_t M, int64_t N, int64_t K, const ALoad& al, const WLoad& wl, const float* b,
              const Store& st, bool n_major) {
  const dim3 grid(static_cast<unsigned>((M + BM - 1) / BM), static_cast<unsigned>((N + BN - 1) / BN));
  const int tiles = static_cast<int>((K + BK - 1) / BK);
  const SplitK sk = split_plan(M, N, K, c.sms, c.split_k);
  if (sk.splits == 1) {
    launch_kernel(c, grid, M, N, K, al, wl, b, st, tiles);
    SD_CUDA_LAUNCHED("tc gemm");
    return;
  }
  float* ws = static_cast<float*>(c.workspace(splitk_workspace_bytes(sk, M, N)));
  const SplitOut part{ws, M, N, n_major};
  const dim3 sgrid(grid.x, grid.y, static_cast<unsigned>(sk.splits));
  launch_kernel(c, sgrid, M, N, K, al, wl, nullptr, part, sk.tiles_per_split);
  SD_CUDA_LAUNCHED("tc gemm (split-K)");
  if constexpr (IsGeglu<Store>::value) {
    const bool narrow = static_cast<int64_t>(sk.splits) * M * N <= 0x7fffffff;
    cuda::enqueue(narrow ? splitk_geglu_reduce_kernel<Store, int> : splitk_geglu_reduce_kernel<Store, int64_t>,
                  blocks_for(M * N / 2), 256, 0, c.stream, ws, sk.splits, part, b, st);
  } else if (static_cast<int64_t>(sk.splits) * M * N <= 0x7fffffff)
    cuda::enqueue(splitk_reduce_kernel<Store, int>, blocks_for(M * N), 256, 0, c.stream, ws, sk.splits, part, b, st);
  else
    cuda::enqueue(splitk_reduce_kernel<Store, int64_t>, blocks_for(M * N), 256, 0, c.stream, ws, sk.splits, part, b, st);
  SD_CUDA_LAUNCHED("tc gemm split-K reduce");
}

template <class ALoad, class Store>
void launch(const TcCtx& c, int64_t M, int64_t N, int64_t K, const ALoad& al, const Tensor& w, const Tensor* bias,
            const Store& st, bool n_major) {
  with_weights(w.type, w.data, N, K,
               [&](auto wl) { launch_w(c, M, N, K, al, wl, bias ? bias->f32() : nullptr, st, n_major); });
}

}  // namespace tc_gemm
}  // namespace cuda
}  // namespace sd
