// linear and conv2d on tensor cores: one 128x128x32 block tile, 8 warps of 64x32, mma.sync
// m16n8k16 (two m16n8k8 on sm_75) fed by ldmatrix from padded shared-memory tiles.
//
// Every thread stages one 16-element k-chunk of one A row and one W row per tile (row = tid / 2,
// chunk = tid % 2): the f32 activations (or the implicit-GEMM gather of the conv input) and the
// weights (f32, f16, or q8_0/q4_0 half-blocks: a chunk never straddles a 32-block) are converted to
// f16 while being written to shared memory (f16 activations are copied as they are, like f16
// weights). The pipeline is double-buffered: the next tile's global
// loads are issued before the current tile's mma loop and converted + stored after it, so one
// __syncthreads per tile suffices. Loads that need converting (f32 activations, f32 and quantized
// weights) go through registers, since cp.async cannot convert in flight; f16 weights are copied
// straight into the shared tile with cp.async (loader protocol: fetch(k, dst), stage(dst), complete()).
#include <algorithm>
#include <cstdint>

#include "cuda/common.cuh"
#include "cuda/cuda_backend.h"
#include "cuda/gemm_tc_kernel.cuh"
#include "cuda/tc_kernels.h"

namespace sd {
namespace cuda {
namespace {

using namespace tc_gemm;

// Calls f(wl) with the weight loader for w's type.
template <class F>
void with_weights(const Tensor& w, int64_t N, int64_t K, F&& f) {
  const uint8_t* wp = static_cast<const uint8_t*>(w.data);
  switch (w.type) {
    case DType::F32: {
      const bool vec = K % 4 == 0 && reinterpret_cast<uintptr_t>(wp) % 16 == 0;
      return f(F32Rows{reinterpret_cast<const float*>(wp), N, K, K, vec});
    }
    case DType::F16: {
      const bool vec = K % 8 == 0 && reinterpret_cast<uintptr_t>(wp) % 16 == 0;
      return f(F16Rows{reinterpret_cast<const __half*>(wp), N, K, vec});
    }
    case DType::Q8_0: return f(QRows<false>{wp, N, K, static_cast<int64_t>(dtype_row_bytes(w.type, K))});
    case DType::Q4_0: return f(QRows<true>{wp, N, K, static_cast<int64_t>(dtype_row_bytes(w.type, K))});
  }
}

// n_major: the output is NCHW (conv), so split-K partials are laid out by channel.
template <class ALoad, class Store>
void launch(const TcCtx& c, int64_t M, int64_t N, int64_t K, const ALoad& al, const Tensor& w, const Tensor* bias,
            const Store& st, bool n_major) {
  const dim3 grid(static_cast<unsigned>((M + BM - 1) / BM), static_cast<unsigned>((N + BN - 1) / BN));
  const float* b = bias ? bias->f32() : nullptr;
  const int tiles = static_cast<int>((K + BK - 1) / BK);
  const SplitK sk = split_k(grid.x * static_cast<int64_t>(grid.y), tiles, c.sms);
  if (sk.splits == 1) {
    with_weights(w, N, K, [&](auto wl) { tc_gemm_kernel<<<grid, THREADS, 0, c.stream>>>(M, N, K, al, wl, b, st, tiles); });
    SD_CUDA_LAUNCHED("tc gemm");
    return;
  }
  float* ws = static_cast<float*>(c.workspace(static_cast<size_t>(sk.splits) * M * N * sizeof(float)));
  const SplitOut part{ws, M, N, n_major};
  const dim3 sgrid(grid.x, grid.y, static_cast<unsigned>(sk.splits));
  with_weights(w, N, K, [&](auto wl) {
    tc_gemm_kernel<<<sgrid, THREADS, 0, c.stream>>>(M, N, K, al, wl, nullptr, part, sk.tiles_per_split);
  });
  SD_CUDA_LAUNCHED("tc gemm (split-K)");
  splitk_reduce_kernel<<<blocks_for(M * N), 256, 0, c.stream>>>(ws, sk.splits, part, b, st);
  SD_CUDA_LAUNCHED("tc gemm split-K reduce");
}

}  // namespace

SplitK split_k(int64_t blocks, int tiles, int sms) {
  // The kernel keeps two 256-thread blocks per SM (registers), so a grid below 2 * SMs blocks leaves
  // SMs idle: the UNet's 1280-channel layers at 8x8 and 16x16 latents make 10-40 tiles. Split their
  // long K (up to 11520) so the grid fills about two waves, each split keeping >= 4 k-tiles.
  SplitK sk;
  if (sms <= 0 || blocks >= 2 * sms) return sk;
  const int want = static_cast<int>(std::min<int64_t>((2 * sms + blocks - 1) / blocks, 32));
  const int splits = std::min(want, tiles / 4);
  if (splits < 2) return sk;
  sk.tiles_per_split = (tiles + splits - 1) / splits;
  sk.splits = (tiles + sk.tiles_per_split - 1) / sk.tiles_per_split;  // no empty split
  return sk;
}

void tc_linear(const TcCtx& c, Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias) {
  const int64_t K = w.shape[1], N = w.shape[0], M = x.rows();
  if (x.type == DType::F16) {  // f16 activations go global -> shared as they are (cp.async)
    const __half* a = x.as<__half>();
    const bool vec = K % 8 == 0 && reinterpret_cast<uintptr_t>(a) % 16 == 0;
    return launch(c, M, N, K, F16Rows{a, M, K, vec}, w, bias, DenseOut<__half>{y.as<__half>(), N}, false);
  }
  const float* a = x.f32();
  const bool vec = K % 4 == 0 && reinterpret_cast<uintptr_t>(a) % 16 == 0;
  launch(c, M, N, K, F32Rows{a, M, K, K, vec}, w, bias, DenseOut<float>{y.f32(), N}, false);
}

void tc_conv2d(const TcCtx& c, Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, int stride, int pad,
               int up) {
  const int ks = static_cast<int>(w.shape[2]);
  const int64_t M = y.shape[0] * y.shape[2] * y.shape[3], N = w.shape[0], K = w.shape[1] * ks * ks;
  const int h = static_cast<int>(x.shape[2]), wd = static_cast<int>(x.shape[3]);
  const int ho = static_cast<int>(y.shape[2]), wo = static_cast<int>(y.shape[3]);
  with_act(x.type, [&](auto tag) {
    using T = decltype(tag);
    const ConvOut<T> st{y.as<T>(), N, static_cast<int64_t>(ho) * wo};
    if (ks == 3)
      launch(c, M, N, K, ConvRows<3, T>{x.as<T>(), M, K, h, wd, ho, wo, stride, pad, up}, w, bias, st, true);
    else
      launch(c, M, N, K, ConvRows<1, T>{x.as<T>(), M, K, h, wd, ho, wo, stride, pad, up}, w, bias, st, true);
  });
}

}  // namespace cuda
}  // namespace sd
