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
#include "cuda/tc_common.cuh"
#include "cuda/tc_kernels.h"

namespace sd {
namespace cuda {
namespace {

constexpr int BQ = 64, BKEY = 64, THREADS = 128;

// rows [r0, r0 + 64) of one head of src [B, n, width] -> dst[64][STR] f16 (times `scale`); rows
// past n and columns past d are zero (zero keys/values so masked lanes never meet NaN garbage).
template <int DP>
__device__ __forceinline__ void stage_tile(__half* dst, const float* src, int64_t row0, int r0, int n, int width,
                                           int d, float scale) {
  constexpr int STR = DP + 8, PAIRS = DP / 2;
  for (int i = threadIdx.x; i < BQ * PAIRS; i += THREADS) {
    const int r = i / PAIRS, c = (i - r * PAIRS) * 2;
    float a = 0.f, b = 0.f;
    if (r0 + r < n) {
      const float* p = src + (row0 + r0 + r) * width;
      if (c < d) a = p[c] * scale;
      if (c + 1 < d) b = p[c + 1] * scale;
    }
    *reinterpret_cast<__half2*>(dst + r * STR + c) = __floats2half2_rn(a, b);
  }
}

template <int DP>
__global__ void __launch_bounds__(THREADS) tc_attention_kernel(const float* q, const float* k, const float* v, float* y,
                                                               int nq, int nk, int heads, int d, float qscale,
                                                               bool causal) {
  constexpr int STR = DP + 8, KC = DP / 16, NT = BKEY / 8, ON = DP / 8;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __half* Ks = reinterpret_cast<__half*>(smem_raw);  // [BKEY][STR]
  __half* Vs = Ks + BKEY * STR;                      // [BKEY][STR]
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
  const int b = blockIdx.y / heads, h = blockIdx.y - b * heads;
  const int width = heads * d, q0 = blockIdx.x * BQ;
  const float* qh = q + h * d;
  const float* kh = k + h * d;
  const float* vh = v + h * d;

  // Q through the K buffer into registers.
  stage_tile<DP>(Ks, qh, static_cast<int64_t>(b) * nq, q0, nq, width, d, qscale);
  __syncthreads();
  uint32_t qf[KC][4];
#pragma unroll
  for (int kc = 0; kc < KC; ++kc) ldmatrix_x4(qf[kc], Ks + (warp * 16 + (lane & 15)) * STR + kc * 16 + (lane >> 4) * 8);
  __syncthreads();

  float o[ON][4];
#pragma unroll
  for (int i = 0; i < ON; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float mrow[2] = {-INFINITY, -INFINITY}, lsum[2] = {0.f, 0.f};  // rows g and g + 8 of this warp
  const int qrow0 = q0 + warp * 16 + g;
  const int kend = causal ? min(nk, q0 + BQ) : nk;
  // K as the B operand (n = key, k = dim): rows (lane % 8) + (lane / 16) * 8, k half (lane / 8) % 2.
  const int kb_off = ((lane & 7) + (lane >> 4) * 8) * STR + ((lane >> 3) & 1) * 8;
  // V as the B operand via .trans (k = key, n = dim): key rows (lane % 8) + ((lane / 8) % 2) * 8, dim half lane / 16.
  const int vb_off = ((lane & 7) + ((lane >> 3) & 1) * 8) * STR + (lane >> 4) * 8;

  for (int j0 = 0; j0 < kend; j0 += BKEY) {
    stage_tile<DP>(Ks, kh, static_cast<int64_t>(b) * nk, j0, nk, width, d, 1.f);
    stage_tile<DP>(Vs, vh, static_cast<int64_t>(b) * nk, j0, nk, width, d, 1.f);
    __syncthreads();

    float s[NT][4];
#pragma unroll
    for (int i = 0; i < NT; ++i) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;
#pragma unroll
    for (int kc = 0; kc < KC; ++kc)
#pragma unroll
      for (int nj = 0; nj < NT / 2; ++nj) {
        uint32_t kf[4];
        ldmatrix_x4(kf, Ks + kb_off + nj * 16 * STR + kc * 16);
        mma_16816(s[2 * nj], qf[kc], kf[0], kf[1]);
        mma_16816(s[2 * nj + 1], qf[kc], kf[2], kf[3]);
      }

    float mx[2] = {mrow[0], mrow[1]};
#pragma unroll
    for (int ni = 0; ni < NT; ++ni)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = j0 + ni * 8 + t4 * 2 + (e & 1);
        if (key >= nk || (causal && key > qrow0 + (e >> 1) * 8)) s[ni][e] = -INFINITY;
        mx[e >> 1] = fmaxf(mx[e >> 1], s[ni][e]);
      }
    float corr[2], base[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      base[r] = mx[r] == -INFINITY ? 0.f : mx[r];  // a row with nothing unmasked yet stays at zero
      corr[r] = exp2f(mrow[r] - base[r]);
      mrow[r] = mx[r];
      lsum[r] *= corr[r];
    }
#pragma unroll
    for (int ni = 0; ni < NT; ++ni)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[ni][e] = exp2f(s[ni][e] - base[e >> 1]);
        lsum[e >> 1] += s[ni][e];
      }
#pragma unroll
    for (int i = 0; i < ON; ++i) {
      o[i][0] *= corr[0];
      o[i][1] *= corr[0];
      o[i][2] *= corr[1];
      o[i][3] *= corr[1];
    }

#pragma unroll
    for (int kc = 0; kc < BKEY / 16; ++kc) {
      const uint32_t pa[4] = {pack_half2(s[2 * kc][0], s[2 * kc][1]), pack_half2(s[2 * kc][2], s[2 * kc][3]),
                              pack_half2(s[2 * kc + 1][0], s[2 * kc + 1][1]),
                              pack_half2(s[2 * kc + 1][2], s[2 * kc + 1][3])};
#pragma unroll
      for (int dn = 0; dn < DP / 16; ++dn) {
        uint32_t vf[4];
        ldmatrix_x4_trans(vf, Vs + vb_off + kc * 16 * STR + dn * 16);
        mma_16816(o[2 * dn], pa, vf[0], vf[1]);
        mma_16816(o[2 * dn + 1], pa, vf[2], vf[3]);
      }
    }
    __syncthreads();
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    lsum[r] += __shfl_xor_sync(0xffffffffu, lsum[r], 1);
    lsum[r] += __shfl_xor_sync(0xffffffffu, lsum[r], 2);
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int qi = qrow0 + r * 8;
    if (qi >= nq) continue;
    const float inv = 1.f / lsum[r];
    float* yp = y + (static_cast<int64_t>(b) * nq + qi) * width + h * d;
#pragma unroll
    for (int ni = 0; ni < ON; ++ni)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int c = ni * 8 + t4 * 2 + e;
        if (c < d) yp[c] = o[ni][r * 2 + e] * inv;
      }
  }
}

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
