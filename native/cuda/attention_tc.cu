// Flash attention on tensor cores (FlashAttention-2 style): a block of 4 warps owns 64 queries of
// one (batch, head), each warp 16 of them. Q is scaled by log2(e)/sqrt(D), rounded to f16 and kept
// in registers as mma A fragments; 64-key tiles of K and V are staged as f16 in shared memory.
// S = Q K^T (mma, f32), the online softmax runs on the S accumulators in registers (exp2, f32 row
// max/sum per query), P is repacked from the accumulator layout straight into A fragments (the
// m16n8 C layout of two adjacent n-tiles is the m16n8k16 A layout) and O += P V uses ldmatrix.trans
// on V. Head dims are padded to a multiple of 16 with zeros (40 -> 48); dims above 160 (the VAE's
// 512) go to attention_wide.cu. K and V are converted to f16 once per call into backend scratch
// (padded per head), and their tiles are staged with cp.async, double-buffered where two fit.
#include <cmath>

#include "cuda/cuda_backend.h"
#include "cuda/attention_tc_kernel.cuh"
#include "cuda/tc_kernels.h"

namespace sd {
namespace cuda {
namespace {

using namespace tc_attn;

int padded_dim(int64_t d) {
  for (int dp : {16, 32, 48, 64, 80, 96, 128, 160})
    if (d <= dp) return dp;
  return 0;
}

template <int DP>
void launch(cudaStream_t s, Tensor& y, const Tensor& q, const Tensor& k, const Tensor& v, int heads, bool causal,
            void* scratch) {
  const int B = static_cast<int>(q.shape[0]), nq = static_cast<int>(q.shape[1]), nk = static_cast<int>(k.shape[1]);
  const int d = static_cast<int>(q.shape[2] / heads), nk_pad = (nk + BKEY - 1) / BKEY * BKEY;
  __half* k16 = static_cast<__half*>(scratch);
  __half* v16 = k16 + static_cast<int64_t>(B) * heads * nk_pad * DP;
  const int64_t pairs = static_cast<int64_t>(B) * heads * nk_pad * (DP / 2);
  const size_t smem = static_cast<size_t>(2) * kKvStages<DP> * BKEY * (DP + 8) * sizeof(__half);  // <= 48 KB
  const float qscale = 1.4426950408889634f / std::sqrt(static_cast<float>(d));
  const dim3 grid(static_cast<unsigned>((nq + BQ - 1) / BQ), static_cast<unsigned>(B * heads));
  with_act(q.type, [&](auto tag) {
    using T = decltype(tag);
    cuda::enqueue(convert_kv_kernel<T>, blocks_for(pairs), 256, 0, s, k.as<T>(), v.as<T>(), k16, v16, B, nk, heads, d,
                  nk_pad, DP);
    SD_CUDA_LAUNCHED("tc attention: K/V to f16");
    cuda::enqueue(tc_attention_kernel<DP, T>, grid, THREADS, smem, s, q.as<T>(), k16, v16, y.as<T>(), nq, nk, nk_pad,
                  heads, d, qscale, causal);
    SD_CUDA_LAUNCHED("tc attention");
  });
}

}  // namespace

size_t tc_attention_scratch(const Tensor& q, const Tensor& k, int heads) {
  const int dp = padded_dim(q.shape[2] / heads);
  const int64_t nk_pad = (k.shape[1] + BKEY - 1) / BKEY * BKEY;
  return dp ? static_cast<size_t>(2) * q.shape[0] * heads * nk_pad * dp * sizeof(__half) : 0;
}

bool tc_attention(cudaStream_t s, Tensor& y, const Tensor& q, const Tensor& k, const Tensor& v, int heads, bool causal,
                  void* scratch) {
  switch (padded_dim(q.shape[2] / heads)) {
    case 16: launch<16>(s, y, q, k, v, heads, causal, scratch); return true;
    case 32: launch<32>(s, y, q, k, v, heads, causal, scratch); return true;
    case 48: launch<48>(s, y, q, k, v, heads, causal, scratch); return true;
    case 64: launch<64>(s, y, q, k, v, heads, causal, scratch); return true;
    case 80: launch<80>(s, y, q, k, v, heads, causal, scratch); return true;
    case 96: launch<96>(s, y, q, k, v, heads, causal, scratch); return true;
    case 128: launch<128>(s, y, q, k, v, heads, causal, scratch); return true;
    case 160: launch<160>(s, y, q, k, v, heads, causal, scratch); return true;
    default: return false;
  }
}

}  // namespace cuda
}  // namespace sd
