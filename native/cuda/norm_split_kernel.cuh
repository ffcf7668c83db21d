// The split group_norm kernels (see norm_split.cu). A header of its own so that the host emulation
// (tests/tc_emulation.cpp) can run them.
#pragma once
#include <cstdint>

#include "cuda/act.cuh"
#include "cuda/tc_common.cuh"

namespace sd {
namespace cuda {
namespace gn_split {

constexpr int THREADS = 256, CHUNK = 4096;

template <class T = float>
__global__ void __launch_bounds__(THREADS) gn_stats_kernel(const T* x, int64_t len, bool vec, double* stats) {
  cuda::pdl_entry();
  __shared__ double sh[2][THREADS / 32];
  const int64_t group = blockIdx.y;
  const T* p = x + group * len;
  const int64_t lo = static_cast<int64_t>(blockIdx.x) * CHUNK, hi = min(len, lo + CHUNK);
  double s = 0, ss = 0;
  if (vec) {  // len % 4 == 0 and a 4-element aligned tensor (aligned4): so is every group span
    for (int64_t i = lo + 4 * threadIdx.x; i < hi; i += 4 * THREADS) {
      float v[4];
      load4(p + i, v);
      s += static_cast<double>(v[0]) + v[1] + static_cast<double>(v[2]) + v[3];
      ss += static_cast<double>(v[0]) * v[0] + static_cast<double>(v[1]) * v[1] + static_cast<double>(v[2]) * v[2] +
            static_cast<double>(v[3]) * v[3];
    }
  } else {
    for (int64_t i = lo + threadIdx.x; i < hi; i += THREADS) {
      const double v = to_f32(p[i]);
      s += v;
      ss += v * v;
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    s += __shfl_down_sync(0xffffffffu, s, o);
    ss += __shfl_down_sync(0xffffffffu, ss, o);
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) sh[0][warp] = s, sh[1][warp] = ss;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < THREADS / 32; ++w) s += sh[0][w], ss += sh[1][w];
    atomicAdd(&stats[2 * group], s);
    atomicAdd(&stats[2 * group + 1], ss);
  }
}

// A group's mean (as f32) and 1 / std from its statistics over len elements, and one normalised
// value: shared by gn_apply_kernel and the NHWC conv's normalising copy (GnMap), so the two give the
// same bits.
__device__ __forceinline__ void gn_coeffs(const double* stats, int group, int64_t len, float eps, float& meanf,
                                          float& rstd) {
  const double mean = stats[2 * group] / len;
  const double var = fmax(stats[2 * group + 1] / len - mean * mean, 0.0);
  rstd = static_cast<float>(1.0 / sqrt(var + eps));
  meanf = static_cast<float>(mean);
}
__device__ __forceinline__ float gn_value(float v, float meanf, float rstd, float ga, float be, bool silu) {
  float o = (v - meanf) * rstd * ga + be;
  if (silu) o = o / (1.f + expf(-o));
  return o;
}

// blockIdx.y = sample * C + channel; x runs over the channel's plane. vec: plane % 4 == 0 and both
// tensors 4-element aligned (aligned4), four elements per access.
template <class T = float>
__global__ void gn_apply_kernel(const T* x, T* y, int C, int cg, int64_t plane, const double* stats,
                                int64_t len, const float* gamma, const float* beta, float eps, bool silu, bool vec) {
  cuda::pdl_entry();
  const int row = blockIdx.y, c = row % C, group = (row / C) * (C / cg) + c / cg;
  float meanf, rstd;
  gn_coeffs(stats, group, len, eps, meanf, rstd);
  const float ga = gamma[c], be = beta[c];
  const T* xr = x + static_cast<int64_t>(row) * plane;
  T* yr = y + static_cast<int64_t>(row) * plane;
  const int w = vec ? 4 : 1;
  for (int64_t i = w * (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x); i < plane;
       i += w * static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v[4];
    if (vec) load4(xr + i, v);
    else v[0] = to_f32(xr[i]);
    for (int e = 0; e < w; ++e) v[e] = gn_value(v[e], meanf, rstd, ga, be, silu);
    if (vec) store4(yr + i, v);
    else yr[i] = from_f32<T>(v[0]);
  }
}

// The group_norm (+SiLU) of x as a map for transpose_kernel (transpose_kernel.cuh): the NHWC conv's
// input copy normalises as it goes (Backend::norm_conv2d), so the normalised NCHW tensor is never
// stored. prepare() puts the tile's 32 channels' coefficients in shared memory.
struct GnMap {
  static constexpr bool kPrepare = true;
  const double* stats;  // [images * groups][2], gn_stats_kernel's
  const float *gamma, *beta;
  int cg, groups;  // channels per group, groups per image
  int64_t len;     // elements per group
  float eps;
  bool silu;
  const float* coef = nullptr;  // [4][32]: mean, 1 / std, gamma, beta of the tile's channels
  __device__ void prepare(int c0, int C, int img) {
    __shared__ float k[4][32];
    const int t = static_cast<int>(threadIdx.x);
    if (t < 32 && c0 + t < C) {
      const int c = c0 + t;
      gn_coeffs(stats, img * groups + c / cg, len, eps, k[0][t], k[1][t]);
      k[2][t] = gamma[c];
      k[3][t] = beta[c];
    }
    coef = &k[0][0];
  }
  __device__ float operator()(float v, int r) const { return gn_value(v, coef[r], coef[32 + r], coef[64 + r], coef[96 + r], silu); }
};

}  // namespace gn_split
}  // namespace cuda
}  // namespace sd
