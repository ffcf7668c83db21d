// Attention with head dims above the flash kernel's 160, on tensor cores: per (batch, head) and per
// chunk of query rows, S = Q K^T (TC GEMM, f16 inputs, f32 scores), P = softmax(S / sqrt(d)) as f16,
// O = P V (TC GEMM into the output's columns of that head). The VAE mid-block's single head is 512
// wide over 4096 tokens at 512x512: 34 GFLOP that the v0 SIMT kernel runs at a few TFLOP/s, over
// 10 ms, against the issue's 20 ms for the whole decode. Materialising the scores costs at most
// kChunkBytes of scratch (24 MB) and, at 512x512, about 200 MB of memory traffic (S written and read
// in f32, P in f16: some 50 us at 4 TB/s), small against the GEMMs' 34 GFLOP.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "cuda/attention_wide_kernel.cuh"
#include "cuda/gemm_tc_launch.cuh"
#include "cuda/tc_kernels.h"

namespace sd {
namespace cuda {

namespace {
tc_wide::Plan wide_plan(const TcCtx& c, const Tensor& q, const Tensor& k, int heads) {
  return tc_wide::plan(q.shape[0], q.shape[1], k.shape[1], heads, q.shape[2] / heads, c.sms, c.split_k);
}
}  // namespace

size_t tc_attention_wide_scratch(const TcCtx& c, const Tensor& q, const Tensor& k, int heads) {
  return static_cast<size_t>(wide_plan(c, q, k, heads).total);
}

void tc_attention_wide(const TcCtx& c, Tensor& y, const Tensor& q, const Tensor& k, const Tensor& v, int heads,
                       bool causal, void* scratch) {
  using tc_gemm::F16Rows;
  const tc_wide::Plan pl = wide_plan(c, q, k, heads);
  const int B = static_cast<int>(q.shape[0]), nq = static_cast<int>(q.shape[1]), nk = static_cast<int>(k.shape[1]);
  const int d = static_cast<int>(q.shape[2] / heads);
  uint8_t* base = static_cast<uint8_t*>(scratch);
  __half* q16 = reinterpret_cast<__half*>(base + pl.q);
  __half* k16 = reinterpret_cast<__half*>(base + pl.k);
  __half* vt16 = reinterpret_cast<__half*>(base + pl.vt);
  float* s = reinterpret_cast<float*>(base + pl.s);
  __half* p = reinterpret_cast<__half*>(base + pl.p);
  // The GEMMs' split-K partials go to this call's own region: the backend's workspace is this scratch.
  TcCtx g = c;
  g.workspace = [ws = base + pl.ws, room = static_cast<size_t>(pl.ws_bytes)](size_t bytes) {
    if (bytes > room) throw std::logic_error("wide attention: split-K wants more workspace than planned");
    return static_cast<void*>(ws);
  };
  const float scale_log2 = 1.4426950408889634f / std::sqrt(static_cast<float>(d));
  with_act(q.type, [&](auto tag) {
    using T = decltype(tag);
    const int64_t nq_all = static_cast<int64_t>(B) * heads * nq * d, nk_all = static_cast<int64_t>(B) * heads * nk * d;
    const auto split = tc_wide::split_heads_kernel<T>;
    cuda::enqueue(split, blocks_for(nq_all), 256, 0, c.stream, q.as<T>(), q16, B, nq, heads, d, false);
    cuda::enqueue(split, blocks_for(nk_all), 256, 0, c.stream, k.as<T>(), k16, B, nk, heads, d, false);
    cuda::enqueue(split, blocks_for(nk_all), 256, 0, c.stream, v.as<T>(), vt16, B, nk, heads, d, true);
    SD_CUDA_LAUNCHED("wide attention: heads to f16");
    for (int bh = 0; bh < B * heads; ++bh) {
      const int b = bh / heads, h = bh - b * heads;
      const __half* kh = k16 + static_cast<int64_t>(bh) * nk * d;
      const __half* vh = vt16 + static_cast<int64_t>(bh) * d * nk;
      for (int64_t m0 = 0; m0 < nq; m0 += pl.rows) {
        const int64_t rows = std::min<int64_t>(pl.rows, nq - m0);
        const __half* qh = q16 + (static_cast<int64_t>(bh) * nq + m0) * d;
        const F16Rows qa{qh, rows, d, F16Rows::vec_ok(qh, d)}, kw{kh, nk, d, F16Rows::vec_ok(kh, d)};
        tc_gemm::launch_w(g, rows, nk, d, qa, kw, nullptr, tc_gemm::DenseOut<float>{s, nk}, false);
        const unsigned warps_of_rows = static_cast<unsigned>((rows + 7) / 8);  // 8 warps (rows) per block
        cuda::enqueue(tc_wide::softmax_rows_kernel, warps_of_rows, 256, 0, c.stream,
                      s, p, rows, nk, scale_log2, causal, m0);
        SD_CUDA_LAUNCHED("wide attention: softmax");
        T* out = y.as<T>() + ((static_cast<int64_t>(b) * nq + m0) * heads + h) * d;
        const F16Rows pa{p, rows, nk, F16Rows::vec_ok(p, nk)}, vw{vh, d, nk, F16Rows::vec_ok(vh, nk)};
        const tc_gemm::DenseOut<T> o{out, static_cast<int64_t>(heads) * d};
        tc_gemm::launch_w(g, rows, d, nk, pa, vw, nullptr, o, false);
      }
    }
  });
}

}  // namespace cuda
}  // namespace sd
