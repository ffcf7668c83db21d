// The tensor-core GEMM launch shared by tc_linear (gemm_tc_linear.cu) and tc_conv2d
// (gemm_tc_conv.cu): weight-loader dispatch, and the split-K path for small grids. Two translation
// units so that their many kernel instantiations compile in parallel.
#pragma once
#include <cstdint>

#include "cuda/common.cuh"
#include "cuda/cuda_backend.h"
#include "cuda/gemm_tc_kernel.cuh"
#include "cuda/tc_kernels.h"

namespace sd {
namespace cuda {
namespace tc_gemm {

// n_major: the output is NCHW (conv), so split-K partials are laid out by channel.
template <class ALoad, class Store>
void launch(const TcCtx& c, int64_t M, int64_t N, int64_t K, const ALoad& al, const Tensor& w, const Tensor* bias,
            const Store& st, bool n_major) {
  const dim3 grid(static_cast<unsigned>((M + BM - 1) / BM), static_cast<unsigned>((N + BN - 1) / BN));
  const float* b = bias ? bias->f32() : nullptr;
  const int tiles = static_cast<int>((K + BK - 1) / BK);
  const SplitK sk = c.split_k ? split_k(grid.x * static_cast<int64_t>(grid.y), K, c.sms) : SplitK{};
  if (sk.splits == 1) {
    with_weights(w.type, w.data, N, K, [&](auto wl) {
      tc_gemm_kernel<<<grid, THREADS, 0, c.stream>>>(M, N, K, al, wl, b, st, tiles);
    });
    SD_CUDA_LAUNCHED("tc gemm");
    return;
  }
  float* ws = static_cast<float*>(c.workspace(static_cast<size_t>(sk.splits) * M * N * sizeof(float)));
  const SplitOut part{ws, M, N, n_major};
  const dim3 sgrid(grid.x, grid.y, static_cast<unsigned>(sk.splits));
  with_weights(w.type, w.data, N, K, [&](auto wl) {
    tc_gemm_kernel<<<sgrid, THREADS, 0, c.stream>>>(M, N, K, al, wl, nullptr, part, sk.tiles_per_split);
  });
  SD_CUDA_LAUNCHED("tc gemm (split-K)");
  splitk_reduce_kernel<<<blocks_for(M * N), 256, 0, c.stream>>>(ws, sk.splits, part, b, st);
  SD_CUDA_LAUNCHED("tc gemm split-K reduce");
}

}  // namespace tc_gemm
}  // namespace cuda
}  // namespace sd
