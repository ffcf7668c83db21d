// Flash attention on tensor cores (FlashAttention-2 style): a block of 4 warps owns 64 queries of
// one (batch, head), each warp 16 of them. Q is scaled by log2(e)/sqrt(D), rounded to f16 and kept
// in registers as mma A fragments; 64-key tiles of K and V are staged as f16 in shared memory.
// S = Q K^T (mma, f32), the online softmax runs on the S accumulators in registers (exp2, f32 row
// max/sum per query), P is repacked from the accumulator layout straight into A fragments (the
// m16n8 C layout of two adjacent n-tiles is the m16n8k16 A layout) and O += P V uses ldmatrix.trans
// on V. Head dims are padded to a multiple of 16 with zeros (40 -> 48); dims above 160 (the VAE's
// 512) are left to the v0 kernel.
#include <cmath>

#include "cuda/cuda_backend.h"
#include "cuda/attention_tc_kernel.cuh"
#include "cuda/tc_kernels.h"

namespace sd {
namespace cuda {
namespace {

using namespace tc_attn;

template <int DP>
void launch(cudaStream_t s, Tensor& y, const Tensor& q, const Tensor& k, const Tensor& v, int heads, bool causal) {
  const int B = static_cast<int>(q.shape[0]), nq = static_cast<int>(q.shape[1]), nk = static_cast<int>(k.shape[1]);
  const int d = static_cast<int>(q.shape[2] / heads);
  const size_t smem = static_cast<size_t>(2) * BKEY * (DP + 8) * sizeof(__half);  // <= 43 KB for DP = 160
  const float qscale = 1.4426950408889634f / std::sqrt(static_cast<float>(d));
  const dim3 grid(static_cast<unsigned>((nq + BQ - 1) / BQ), static_cast<unsigned>(B * heads));
  tc_attention_kernel<DP><<<grid, THREADS, smem, s>>>(q.f32(), k.f32(), v.f32(), y.f32(), nq, nk, heads, d, qscale, causal);
  SD_CUDA_LAUNCHED("tc attention");
}

}  // namespace

bool tc_attention(cudaStream_t s, Tensor& y, const Tensor& q, const Tensor& k, const Tensor& v, int heads, bool causal) {
  const int64_t d = q.shape[2] / heads;
  if (d <= 16) launch<16>(s, y, q, k, v, heads, causal);
  else if (d <= 32) launch<32>(s, y, q, k, v, heads, causal);
  else if (d <= 48) launch<48>(s, y, q, k, v, heads, causal);
  else if (d <= 64) launch<64>(s, y, q, k, v, heads, causal);
  else if (d <= 80) launch<80>(s, y, q, k, v, heads, causal);
  else if (d <= 96) launch<96>(s, y, q, k, v, heads, causal);
  else if (d <= 128) launch<128>(s, y, q, k, v, heads, causal);
  else if (d <= 160) launch<160>(s, y, q, k, v, heads, causal);
  else return false;
  return true;
}

}  // namespace cuda
}  // namespace sd
