// Flash-style attention: each thread owns one query row and streams key/value tiles through shared
// memory with an online softmax, so memory is O(N) and the N x N scores never exist.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "cuda/act.cuh"
#include "cuda/cuda_backend.h"
#include "cuda/tc_kernels.h"

namespace sd {
namespace {

constexpr int QPB = 64;       // queries (threads) per block
constexpr int MAX_D = 512;    // VAE mid-block attention: one head of 512

// MAXD bounds the per-thread query and accumulator arrays. They live in local memory, and the driver
// reserves a kernel's stack for every resident thread of the GPU (4 KB at 512: about 1.1 GB on a
// 132-SM H100), so the common head dims get smaller instantiations.
template <int MAXD, class T>
__global__ void attention_kernel(const T* q, const T* k, const T* v, T* y, int nq, int nk, int heads, int d, int tk,
                                 float scale, bool causal) {
  cuda::pdl_entry();
  extern __shared__ float smem[];
  float* ks = smem;            // [tk][d]
  float* vs = smem + tk * d;   // [tk][d]
  const int bh = blockIdx.y, b = bh / heads, h = bh % heads;
  const int width = heads * d;
  const int qi = blockIdx.x * QPB + threadIdx.x;
  const bool active = qi < nq;
  float qr[MAXD], acc[MAXD];
  const T* qp = q + (static_cast<int64_t>(b) * nq + (active ? qi : 0)) * width + h * d;
  for (int i = 0; i < d; ++i) { qr[i] = active ? cuda::to_f32(qp[i]) * scale : 0.f; acc[i] = 0.f; }
  float mx = -INFINITY, l = 0.f;
  const int kend = causal ? min(nk, static_cast<int>(blockIdx.x) * QPB + QPB) : nk;
  for (int j0 = 0; j0 < kend; j0 += tk) {
    const int cnt = min(tk, kend - j0);
    __syncthreads();
    for (int i = threadIdx.x; i < cnt * d; i += blockDim.x) {
      const int j = i / d, c = i % d;
      const int64_t off = (static_cast<int64_t>(b) * nk + j0 + j) * width + h * d + c;
      ks[i] = cuda::to_f32(k[off]);
      vs[i] = cuda::to_f32(v[off]);
    }
    __syncthreads();
    if (!active) continue;
    for (int j = 0; j < cnt; ++j) {
      if (causal && j0 + j > qi) break;
      const float* kr = ks + j * d;
      float s = 0.f;
      for (int c = 0; c < d; ++c) s = fmaf(qr[c], kr[c], s);
      const float mnew = fmaxf(mx, s);
      const float corr = expf(mx - mnew), p = expf(s - mnew);
      l = l * corr + p;
      const float* vr = vs + j * d;
      for (int c = 0; c < d; ++c) acc[c] = fmaf(p, vr[c], acc[c] * corr);
      mx = mnew;
    }
  }
  if (!active) return;
  T* yp = y + (static_cast<int64_t>(b) * nq + qi) * width + h * d;
  const float inv = 1.f / l;
  for (int c = 0; c < d; ++c) yp[c] = cuda::from_f32<T>(acc[c] * inv);
}

}  // namespace

void CudaBackend::do_attention(Tensor& y, const Tensor& q, const Tensor& k, const Tensor& v, int heads, bool causal) {
  const OpSync op_sync{this};
  const int B = static_cast<int>(q.shape[0]), nq = static_cast<int>(q.shape[1]), nk = static_cast<int>(k.shape[1]);
  const int d = static_cast<int>(q.shape[2] / heads);
  if (tc_attn_) {  // flash attention for head dims <= 160, two GEMMs around a softmax above
    const size_t need = cuda::tc_attention_scratch(q, k, heads);
    if (need && cuda::tc_attention(stream_, y, q, k, v, heads, causal, scratch(need))) return;
    // The wide path's split-K GEMMs take their workspace from its own scratch region, not tc_ctx's.
    cuda::TcCtx c = tc_ctx();
    return cuda::tc_attention_wide(c, y, q, k, v, heads, causal, scratch(cuda::tc_attention_wide_scratch(c, q, k, heads)));
  }
  if (d > MAX_D) throw std::invalid_argument("attention: head dim " + std::to_string(d) + " exceeds 512 on CUDA");
  const int tk = std::max(1, std::min(64, 40960 / (8 * d)));
  const size_t shmem = static_cast<size_t>(2) * tk * d * sizeof(float);
  dim3 grid(static_cast<unsigned>((nq + QPB - 1) / QPB), static_cast<unsigned>(B * heads));
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  cuda::with_act(q.type, [&](auto tag) {
    using T = decltype(tag);
    auto go = [&](auto kernel) {
      cuda::enqueue(kernel, grid, QPB, shmem, stream(), q.as<T>(), k.as<T>(), v.as<T>(), y.as<T>(), nq, nk, heads, d, tk,
                    scale, causal);
    };
    if (d <= 64) go(attention_kernel<64, T>);
    else if (d <= 160) go(attention_kernel<160, T>);
    else go(attention_kernel<MAX_D, T>);
  });
  SD_CUDA_LAUNCHED("attention");
}

}  // namespace sd
