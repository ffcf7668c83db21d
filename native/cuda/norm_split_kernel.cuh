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

// blockIdx.y = sample * C + channel; x runs over the channel's plane. vec: plane % 4 == 0 and both
// tensors 4-element aligned (aligned4), four elements per access.
template <class T = float>
__global__ void gn_apply_kernel(const T* x, T* y, int C, int cg, int64_t plane, const double* stats,
                                int64_t len, const float* gamma, const float* beta, float eps, bool silu, bool vec) {
  cuda::pdl_entry();
  const int row = blockIdx.y, c = row % C, group = (row / C) * (C / cg) + c / cg;
  const double mean = stats[2 * group] / len;
  const double var = fmax(stats[2 * group + 1] / len - mean * mean, 0.0);
  const float rstd = static_cast<float>(1.0 / sqrt(var + eps)), meanf = static_cast<float>(mean);
  const float ga = gamma[c], be = beta[c];
  const T* xr = x + static_cast<int64_t>(row) * plane;
  T* yr = y + static_cast<int64_t>(row) * plane;
  const int w = vec ? 4 : 1;
  for (int64_t i = w * (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x); i < plane;
       i += w * static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v[4];
    if (vec) load4(xr + i, v);
    else v[0] = to_f32(xr[i]);
    for (int e = 0; e < w; ++e) {
      float o = (v[e] - meanf) * rstd * ga + be;
      if (silu) o = o / (1.f + expf(-o));
      v[e] = o;
    }
    if (vec) store4(yr + i, v);
    else yr[i] = from_f32<T>(v[0]);
  }
}

}  // namespace gn_split
}  // namespace cuda
}  // namespace sd
