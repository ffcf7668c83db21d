// The tensor-core flash-attention kernel (see attention_tc.cu for the design). A header of its own
// so that a host-side emulation of the warp-level ops (tests/tc_emulation.cpp) can run it.
#pragma once
#include <cmath>
#include <cstdint>

#include "cuda/act.cuh"
#include "cuda/tc_common.cuh"

namespace sd {
namespace cuda {
namespace tc_attn {

constexpr int BQ = 64, BKEY = 64, THREADS = 128;

// rows [r0, r0 + 64) of one head of src [B, n, width] -> dst[64][STR] f16 (times `scale`); rows
// past n and columns past d are zero (zero keys/values so masked lanes never meet NaN garbage).
template <int DP, class T>
__device__ __forceinline__ void stage_tile(__half* dst, const T* src, int64_t row0, int r0, int n, int width, int d,
                                           float scale) {
  constexpr int STR = DP + 8, PAIRS = DP / 2;
  for (int i = threadIdx.x; i < BQ * PAIRS; i += THREADS) {
    const int r = i / PAIRS, c = (i - r * PAIRS) * 2;
    float a = 0.f, b = 0.f;
    if (r0 + r < n) {
      const T* p = src + (row0 + r0 + r) * width;
      if (c < d) a = to_f32(p[c]) * scale;
      if (c + 1 < d) b = to_f32(p[c + 1]) * scale;
    }
    *reinterpret_cast<__half2*>(dst + r * STR + c) = __floats2half2_rn(a, b);
  }
}

// K and V once to f16, per head, padded to [B * heads][n_pad][DP] with zeros (rows past n, dims past
// d): the attention blocks then stage 64-key tiles with 16-byte copies (cp.async on sm_80+) instead
// of each of the nq / 64 blocks converting every key again.
template <class T>
__global__ void convert_kv_kernel(const T* k, const T* v, __half* kh, __half* vh, int B, int n, int heads, int d,
                                  int n_pad, int dp) {
  cuda::pdl_entry();
  const int64_t pairs = static_cast<int64_t>(B) * heads * n_pad * (dp / 2);
  const int width = heads * d;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < pairs;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = i / (dp / 2);  // (bh, r) flattened
    const int c = static_cast<int>(i - row * (dp / 2)) * 2;
    const int bh = static_cast<int>(row / n_pad), r = static_cast<int>(row - static_cast<int64_t>(bh) * n_pad);
    const int b = bh / heads, h = bh - b * heads;
    float k0 = 0.f, k1 = 0.f, v0 = 0.f, v1 = 0.f;
    if (r < n) {
      const int64_t off = (static_cast<int64_t>(b) * n + r) * width + static_cast<int64_t>(h) * d + c;
      if (c < d) k0 = to_f32(k[off]), v0 = to_f32(v[off]);
      if (c + 1 < d) k1 = to_f32(k[off + 1]), v1 = to_f32(v[off + 1]);
    }
    reinterpret_cast<__half2*>(kh)[i] = __floats2half2_rn(k0, k1);
    reinterpret_cast<__half2*>(vh)[i] = __floats2half2_rn(v0, v1);
  }
}

// Issues the copies of one 64-key tile of K and V (f16, [64][DP] contiguous) into Ks/Vs rows of STR.
template <int DP>
__device__ __forceinline__ void issue_kv(__half* ks, __half* vs, const __half* kt, const __half* vt) {
  constexpr int STR = DP + 8, CH = DP / 8;  // 16-byte chunks per row
  for (int i = threadIdx.x; i < BKEY * CH; i += THREADS) {
    const int r = i / CH, c = (i - r * CH) * 8;
    cp_async16(ks + r * STR + c, kt + i * 8);
    cp_async16(vs + r * STR + c, vt + i * 8);
  }
  cp_async_commit();
}

// Two tiles in flight where both fit the default 48 KB of shared memory (DP <= 80: SD's 40 and 80).
template <int DP>
constexpr int kKvStages = 2 * 2 * BKEY * (DP + 8) * 2 <= 48 * 1024 ? 2 : 1;

template <int DP, class T = float>
__global__ void __launch_bounds__(THREADS) tc_attention_kernel(const T* q, const __half* k16, const __half* v16, T* y,
                                                               int nq, int nk, int nk_pad, int heads, int d,
                                                               float qscale, bool causal) {
  cuda::pdl_entry();
  constexpr int STR = DP + 8, KC = DP / 16, NT = BKEY / 8, ON = DP / 8, ST = kKvStages<DP>;
  __half* Ks = reinterpret_cast<__half*>(dynamic_smem());  // [ST][BKEY][STR]
  __half* Vs = Ks + ST * BKEY * STR;                        // [ST][BKEY][STR]
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
  const int b = blockIdx.y / heads, h = blockIdx.y - b * heads;
  const int width = heads * d, q0 = blockIdx.x * BQ;
  const T* qh = q + h * d;
  const __half* kt = k16 + static_cast<int64_t>(blockIdx.y) * nk_pad * DP;
  const __half* vt = v16 + static_cast<int64_t>(blockIdx.y) * nk_pad * DP;

  // Q through the K buffer into registers.
  stage_tile<DP, T>(Ks, qh, static_cast<int64_t>(b) * nq, q0, nq, width, d, qscale);
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

  issue_kv<DP>(Ks, Vs, kt, vt);
  for (int j0 = 0, t = 0; j0 < kend; j0 += BKEY, ++t) {
    const bool next = j0 + BKEY < kend;
    if (ST == 2 && next) {
      const int nb = (t + 1) & 1;
      issue_kv<DP>(Ks + nb * BKEY * STR, Vs + nb * BKEY * STR, kt + (j0 + BKEY) * DP, vt + (j0 + BKEY) * DP);
      cp_async_wait<1>();  // this thread's copies of tile t are done; tile t + 1 may still fly
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();  // everyone's copies of tile t are visible
    const __half* kbuf = Ks + (ST == 2 ? (t & 1) : 0) * BKEY * STR;
    const __half* vbuf = Vs + (ST == 2 ? (t & 1) : 0) * BKEY * STR;

    float s[NT][4];
#pragma unroll
    for (int i = 0; i < NT; ++i) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;
#pragma unroll
    for (int kc = 0; kc < KC; ++kc)
#pragma unroll
      for (int nj = 0; nj < NT / 2; ++nj) {
        uint32_t kf[4];
        ldmatrix_x4(kf, kbuf + kb_off + nj * 16 * STR + kc * 16);
        mma_16816(s[2 * nj], qf[kc], kf[0], kf[1]);
        mma_16816(s[2 * nj + 1], qf[kc], kf[2], kf[3]);
      }

    // Only the last key tile and causal ones need the mask: it is a third of the softmax's work,
    // which together with the exponentials rivals the tile's mma time at SD's head dims.
    if (j0 + BKEY > nk || causal) {
#pragma unroll
      for (int ni = 0; ni < NT; ++ni)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = j0 + ni * 8 + t4 * 2 + (e & 1);
          if (key >= nk || (causal && key > qrow0 + (e >> 1) * 8)) s[ni][e] = -INFINITY;
        }
    }
    float mx[2] = {mrow[0], mrow[1]};
#pragma unroll
    for (int ni = 0; ni < NT; ++ni)
#pragma unroll
      for (int e = 0; e < 4; ++e) mx[e >> 1] = fmaxf(mx[e >> 1], s[ni][e]);
    float corr[2], base[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      base[r] = mx[r] == -INFINITY ? 0.f : mx[r];  // a row with nothing unmasked yet stays at zero
      corr[r] = exp2_ftz(mrow[r] - base[r]);
      mrow[r] = mx[r];
      lsum[r] *= corr[r];
    }
#pragma unroll
    for (int ni = 0; ni < NT; ++ni)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[ni][e] = exp2_ftz(s[ni][e] - base[e >> 1]);
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
        ldmatrix_x4_trans(vf, vbuf + vb_off + kc * 16 * STR + dn * 16);
        mma_16816(o[2 * dn], pa, vf[0], vf[1]);
        mma_16816(o[2 * dn + 1], pa, vf[2], vf[3]);
      }
    }
    __syncthreads();  // this buffer is free for the copies issued next
    if (ST == 1 && next) issue_kv<DP>(Ks, Vs, kt + (j0 + BKEY) * DP, vt + (j0 + BKEY) * DP);
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
    T* yp = y + (static_cast<int64_t>(b) * nq + qi) * width + h * d;
#pragma unroll
    for (int ni = 0; ni < ON; ++ni)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int c = ni * 8 + t4 * 2 + e;
        if (c < d) yp[c] = from_f32<T>(o[ni][r * 2 + e] * inv);
      }
  }
}

}  // namespace tc_attn
}  // namespace cuda
}  // namespace sd
