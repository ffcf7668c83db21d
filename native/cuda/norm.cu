// group_norm (+SiLU), layer_norm and softmax: one block per normalised group/row. Statistics are
// accumulated in double so results track the CPU reference closely.
#include "cuda/act.cuh"
#include "cuda/cuda_backend.h"
#include "cuda/tc_kernels.h"

namespace sd {
namespace {

using cuda::from_f32;
using cuda::to_f32;

constexpr int THREADS = 256;

__device__ double block_sum(double v, double* shared) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < (blockDim.x >> 5) ? shared[lane] : 0.0;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    if (lane == 0) shared[0] = v;
  }
  __syncthreads();
  const double r = shared[0];
  __syncthreads();
  return r;
}

__device__ float block_max(float v, float* shared) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, o));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < (blockDim.x >> 5) ? shared[lane] : -INFINITY;
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, o));
    if (lane == 0) shared[0] = v;
  }
  __syncthreads();
  const float r = shared[0];
  __syncthreads();
  return r;
}

// One block per (sample, group); the group is channels [g*cg, (g+1)*cg) over `plane` pixels.
template <class T>
__global__ void group_norm_kernel(const T* x, T* y, int C, int groups, int64_t plane, const float* gamma,
                                  const float* beta, float eps, bool silu) {
  cuda::pdl_entry();
  __shared__ double sh[32];
  const int n = blockIdx.x / groups, g = blockIdx.x % groups, cg = C / groups;
  const int64_t len = static_cast<int64_t>(cg) * plane;
  const int64_t base = (static_cast<int64_t>(n) * C + static_cast<int64_t>(g) * cg) * plane;
  double s = 0;
  for (int64_t i = threadIdx.x; i < len; i += blockDim.x) s += to_f32(x[base + i]);
  const double mean = block_sum(s, sh) / len;
  double v = 0;
  for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
    const double d = to_f32(x[base + i]) - mean;
    v += d * d;
  }
  const double var = block_sum(v, sh) / len;
  const float rstd = static_cast<float>(1.0 / sqrt(var + eps));
  const float meanf = static_cast<float>(mean);
  for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
    const int c = g * cg + static_cast<int>(i / plane);
    float o = (to_f32(x[base + i]) - meanf) * rstd * gamma[c] + beta[c];
    if (silu) o = o / (1.f + expf(-o));
    y[base + i] = from_f32<T>(o);
  }
}

__device__ __forceinline__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// One warp per row: SD's rows are 320..1280 wide, so a block per row left most of its threads idle
// and paid three block-wide reductions. The row is read three times (mean, variance, output), from
// L1 after the first. vec: C % 4 == 0 and both tensors 4-element aligned.
template <class T>
__global__ void layer_norm_kernel(const T* x, T* y, int64_t rows, int64_t C, const float* gamma, const float* beta,
                                  float eps, bool vec) {
  cuda::pdl_entry();
  const int64_t row = blockIdx.x * static_cast<int64_t>(blockDim.x / 32) + threadIdx.x / 32;
  if (row >= rows) return;  // whole warps leave together
  const int lane = threadIdx.x & 31;
  const T* xr = x + row * C;
  T* yr = y + row * C;
  double s = 0;
  if (vec) {
    for (int64_t i = 4 * lane; i < C; i += 128) {
      float v[4];
      cuda::load4(xr + i, v);
      s += static_cast<double>(v[0]) + v[1] + static_cast<double>(v[2]) + v[3];
    }
  } else {
    for (int64_t i = lane; i < C; i += 32) s += to_f32(xr[i]);
  }
  const double mean = warp_sum(s) / C;
  double q = 0;
  if (vec) {
    for (int64_t i = 4 * lane; i < C; i += 128) {
      float v[4];
      cuda::load4(xr + i, v);
      for (float e : v) q += (e - mean) * (e - mean);
    }
  } else {
    for (int64_t i = lane; i < C; i += 32) q += (to_f32(xr[i]) - mean) * (to_f32(xr[i]) - mean);
  }
  const double var = warp_sum(q) / C;
  const float rstd = static_cast<float>(1.0 / sqrt(var + eps)), meanf = static_cast<float>(mean);
  if (vec) {
    for (int64_t i = 4 * lane; i < C; i += 128) {
      float v[4];
      cuda::load4(xr + i, v);
      for (int e = 0; e < 4; ++e) v[e] = (v[e] - meanf) * rstd * gamma[i + e] + beta[i + e];
      cuda::store4(yr + i, v);
    }
  } else {
    for (int64_t i = lane; i < C; i += 32) yr[i] = from_f32<T>((to_f32(xr[i]) - meanf) * rstd * gamma[i] + beta[i]);
  }
}

template <class T>
__global__ void softmax_kernel(const T* x, T* y, int64_t C) {
  cuda::pdl_entry();
  __shared__ float shf[32];
  __shared__ double shd[32];
  const T* xr = x + blockIdx.x * C;
  T* yr = y + blockIdx.x * C;
  float m = -INFINITY;
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) m = fmaxf(m, to_f32(xr[i]));
  m = block_max(m, shf);
  double s = 0;
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) s += expf(to_f32(xr[i]) - m);
  const float inv = static_cast<float>(1.0 / block_sum(s, shd));
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) yr[i] = from_f32<T>(expf(to_f32(xr[i]) - m) * inv);
}

}  // namespace

void CudaBackend::do_group_norm(Tensor& y, const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta,
                                float eps, bool silu) {
  const OpSync op_sync{this};
  if (tc_norm_) {
    if (const size_t need = cuda::group_norm_split_scratch(x, groups))
      return cuda::group_norm_split(stream_, y, x, groups, gamma, beta, eps, silu, static_cast<double*>(scratch(need)));
  }
  const int64_t plane = x.numel() / (x.shape[0] * x.shape[1]);
  cuda::with_act(x.type, [&](auto tag) {
    using T = decltype(tag);
    cuda::enqueue(group_norm_kernel<T>, static_cast<unsigned>(x.shape[0] * groups), THREADS, 0, stream(), x.as<T>(),
                  y.as<T>(), static_cast<int>(x.shape[1]), groups, plane, gamma.f32(), beta.f32(), eps, silu);
  });
  SD_CUDA_LAUNCHED("group_norm");
}

void CudaBackend::do_layer_norm(Tensor& y, const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps) {
  const OpSync op_sync{this};
  cuda::with_act(x.type, [&](auto tag) {
    using T = decltype(tag);
    const int64_t rows = x.rows(), C = x.row_len(), per_block = THREADS / 32;
    const bool vec = C % 4 == 0 && cuda::aligned4(x) && cuda::aligned4(y);
    cuda::enqueue(layer_norm_kernel<T>, static_cast<unsigned>((rows + per_block - 1) / per_block), THREADS, 0, stream(),
                  x.as<T>(), y.as<T>(), rows, C, gamma.f32(), beta.f32(), eps, vec);
  });
  SD_CUDA_LAUNCHED("layer_norm");
}

void CudaBackend::do_softmax(Tensor& y, const Tensor& x) {
  const OpSync op_sync{this};
  cuda::with_act(x.type, [&](auto tag) {
    using T = decltype(tag);
    cuda::enqueue(softmax_kernel<T>, static_cast<unsigned>(x.rows()), THREADS, 0, stream(),
                  x.as<T>(), y.as<T>(), x.row_len());
  });
  SD_CUDA_LAUNCHED("softmax");
}

}  // namespace sd
