// Attention for head dims the flash kernel does not hold in registers (> 160: the VAE mid-block's
// single 512-wide head) as two tensor-core GEMMs around a row softmax (see attention_wide.cu). A
// header of its own so that the host emulation (tests/tc_emulation.cpp) runs the same kernels and
// the same chunk plan.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "cuda/act.cuh"
#include "cuda/gemm_tc_kernel.cuh"

namespace sd {
namespace cuda {
namespace tc_wide {

// Scores are kept for a chunk of query rows at a time: f32 S [rows][nk] and f16 P [rows][nk]. At
// most about 24 MB of them (1024 rows of 4096 keys, the VAE at 512x512); never fewer rows than
// one GEMM block tile, so small chunks do not starve the GPU.
constexpr int64_t kChunkBytes = int64_t{24} << 20;

inline int64_t align256(int64_t b) { return (b + 255) / 256 * 256; }

// The scratch layout for one call: f16 Q and K per head [B*heads][n][d], f16 V transposed per head
// [B*heads][d][nk] (the second GEMM's "weights" are V's columns), then S, P and the split-K
// workspace of whichever GEMM wants the larger one.
struct Plan {
  int64_t rows = 0;  // query rows per chunk
  int64_t q = 0, k = 0, vt = 0, s = 0, p = 0, ws = 0, total = 0;  // byte offsets; total = bytes
  int64_t ws_bytes = 0;
};
inline Plan plan(int64_t B, int64_t nq, int64_t nk, int heads, int64_t d, int sms, bool split_on,
                 int64_t chunk_bytes = kChunkBytes) {
  Plan pl;
  const int64_t fit = chunk_bytes / (nk * 6) / tc_gemm::BM * tc_gemm::BM;
  pl.rows = nq <= fit ? nq : (fit > tc_gemm::BM ? fit : tc_gemm::BM);
  const int64_t bh = B * heads;
  // Split-K partials of either GEMM, for a whole chunk or the last, shorter one (fewer row tiles may
  // mean more splits).
  size_t ws = 0;
  for (int64_t rows : {pl.rows, nq - (nq - 1) / pl.rows * pl.rows}) {
    ws = std::max(ws, tc_gemm::splitk_workspace_bytes(tc_gemm::split_plan(rows, nk, d, sms, split_on), rows, nk));
    ws = std::max(ws, tc_gemm::splitk_workspace_bytes(tc_gemm::split_plan(rows, d, nk, sms, split_on), rows, d));
  }
  int64_t at = 0;
  pl.q = at, at += align256(bh * nq * d * 2);
  pl.k = at, at += align256(bh * nk * d * 2);
  pl.vt = at, at += align256(bh * nk * d * 2);
  pl.s = at, at += align256(pl.rows * nk * 4);
  pl.p = at, at += align256(pl.rows * nk * 2);
  pl.ws_bytes = static_cast<int64_t>(ws);
  pl.ws = at, at += align256(pl.ws_bytes);
  pl.total = at;
  return pl;
}

// One head's slice of x [B, n, heads * d] to f16 [B * heads][n][d], or transposed to [B * heads][d][n].
template <class T>
__global__ void split_heads_kernel(const T* x, __half* out, int B, int n, int heads, int d, bool transpose) {
  cuda::pdl_entry();
  const int64_t total = static_cast<int64_t>(B) * heads * n * d;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t r, c, bh;
    if (transpose) r = i % n, c = (i / n) % d, bh = i / (static_cast<int64_t>(n) * d);
    else c = i % d, r = (i / d) % n, bh = i / (static_cast<int64_t>(n) * d);
    const int64_t b = bh / heads, h = bh - b * heads;
    out[i] = __float2half_rn(to_f32(x[(b * n + r) * heads * d + h * d + c]));
  }
}

// P = softmax(S * scale) row by row, one warp per row of nk scores; row r is query q0 + r, which
// with `causal` sees keys 0..q0 + r only (the rest of its P row is zero). `scale_log2` is
// log2(e) / sqrt(d): exp2 of scaled differences, as the flash kernel does.
__global__ void softmax_rows_kernel(const float* s, __half* p, int64_t rows, int64_t nk, float scale_log2, bool causal,
                                    int64_t q0) {
  cuda::pdl_entry();
  const int64_t row = blockIdx.x * static_cast<int64_t>(blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;  // whole warps leave together: the shuffles below see all 32 lanes
  const float* sr = s + row * nk;
  __half* pr = p + row * nk;
  const int64_t valid = causal && q0 + row + 1 < nk ? q0 + row + 1 : nk;
  float mx = -INFINITY;
  for (int64_t j = lane; j < valid; j += 32) mx = fmaxf(mx, sr[j]);
  for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  float sum = 0.f;
  for (int64_t j = lane; j < valid; j += 32) sum += exp2f((sr[j] - mx) * scale_log2);
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  const float inv = 1.f / sum;
  for (int64_t j = lane; j < nk; j += 32)
    pr[j] = __float2half_rn(j < valid ? exp2f((sr[j] - mx) * scale_log2) * inv : 0.f);
}

}  // namespace tc_wide
}  // namespace cuda
}  // namespace sd
