// Pointwise and data-movement ops: grid-stride loops, one thread per output element.
#include <cmath>

#include "cuda/act.cuh"
#include "cuda/common.cuh"
#include "cuda/cuda_backend.h"

namespace sd {
namespace {

using cuda::from_f32;
using cuda::to_f32;
using cuda::with_act;

constexpr int THREADS = 256;
#define SD_GRID_LOOP(i, n) \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); i += static_cast<int64_t>(gridDim.x) * blockDim.x)

__device__ __forceinline__ float gelu_erf(float x) { return 0.5f * x * (1.f + erff(x * 0.70710678118654752f)); }

// T: the activations' element type (act.cuh); the math is f32.
template <class T>
__global__ void unary_kernel(const T* x, T* y, int64_t n, int op) {
  SD_GRID_LOOP(i, n) {
    const float v = to_f32(x[i]);
    y[i] = from_f32<T>(op == 0 ? v / (1.f + expf(-v)) : op == 1 ? gelu_erf(v) : v / (1.f + expf(-1.702f * v)));
  }
}

template <class T>
__global__ void geglu_kernel(const T* x, T* y, int64_t rows, int64_t n) {
  SD_GRID_LOOP(i, rows * n) {
    const int64_t r = i / n, c = i - r * n;
    y[i] = from_f32<T>(to_f32(x[r * 2 * n + c]) * gelu_erf(to_f32(x[r * 2 * n + n + c])));
  }
}

struct Bcast {
  int64_t shape[4];    // a's shape, left-padded with 1
  int64_t bstride[4];  // b's element strides, 0 on broadcast dims
};

template <class T>
__global__ void binary_kernel(const T* a, const T* b, T* y, int64_t n, Bcast bc, bool mul) {
  SD_GRID_LOOP(i, n) {
    int64_t rem = i, bi = 0;
    for (int d = 3; d >= 0; --d) {
      const int64_t idx = rem % bc.shape[d];
      rem /= bc.shape[d];
      bi += idx * bc.bstride[d];
    }
    const float u = to_f32(a[i]), v = to_f32(b[bi]);
    y[i] = from_f32<T>(mul ? u * v : u + v);
  }
}

template <class T>
__global__ void scale_kernel(const T* x, T* y, int64_t n, float s) {
  SD_GRID_LOOP(i, n) y[i] = from_f32<T>(to_f32(x[i]) * s);
}

// Data movement copies elements as they are, whatever their type.
template <class T>
__global__ void upsample_kernel(const T* x, T* y, int64_t nc, int h, int w, int ho, int wo) {
  SD_GRID_LOOP(i, nc * ho * wo) {
    const int64_t c = i / (static_cast<int64_t>(ho) * wo);
    const int p = static_cast<int>(i - c * ho * wo), oy = p / wo, ox = p % wo;
    const int iy = static_cast<int>(static_cast<int64_t>(oy) * h / ho), ix = static_cast<int>(static_cast<int64_t>(ox) * w / wo);
    y[i] = x[(c * h + iy) * w + ix];
  }
}

template <class T>
__global__ void concat_kernel(const T* a, const T* b, T* y, int64_t n, int64_t ca, int64_t cb, int64_t plane) {
  SD_GRID_LOOP(i, n) {
    const int64_t per = (ca + cb) * plane;
    const int64_t img = i / per, r = i - img * per;
    y[i] = r < ca * plane ? a[img * ca * plane + r] : b[img * cb * plane + (r - ca * plane)];
  }
}

template <class T>
__global__ void transpose12_kernel(const T* x, T* y, int64_t B, int64_t A, int64_t C) {
  // y[b, c, a] = x[b, a, c]
  SD_GRID_LOOP(i, B * A * C) {
    const int64_t b = i / (A * C), r = i - b * A * C, c = r / A, a = r - c * A;
    y[i] = x[(b * A + a) * C + c];
  }
}

// t is read from device memory (an activation the caller uploaded), so a recorded CUDA graph sees
// each step's timesteps. sin/cos run in double: at t = 999 one ulp of a frequency moves the argument
// by ~6e-5, so both backends must agree on the frequencies to the bit.
// t stays f32 whatever the activations are (y: T).
template <class T>
__device__ __forceinline__ void timestep_at(int64_t i, const float* t, float f, T* y, int64_t half) {
  const int64_t b = i / half, j = i - b * half;
  const double arg = static_cast<double>(t[b] * f);
  y[b * 2 * half + j] = from_f32<T>(static_cast<float>(cos(arg)));
  y[b * 2 * half + half + j] = from_f32<T>(static_cast<float>(sin(arg)));
}

// Small host tables travel as kernel parameters (under the 4 KB parameter limit): no host-to-device
// copy, so no host synchronisation inside a forward (and nothing that a CUDA graph could not hold).
constexpr int kSmall = 960;
struct SmallF32 { float v[kSmall]; };
struct SmallI32 { int32_t v[kSmall]; };

// Frequencies computed on the host exactly as the CPU backend does (dim <= 2 * kSmall: the UNet's).
template <class T>
__global__ void timestep_small_kernel(const float* t, SmallF32 freqs, T* y, int64_t B, int64_t half) {
  SD_GRID_LOOP(i, B * half) timestep_at(i, t, freqs.v[i % half], y, half);
}

// Wider embeddings: the CPU's recipe in the kernel (float products and an IEEE division, then exp in
// double rounded to float), so nothing is copied from the host. CUDA's double exp is within 1 ulp of
// the host's, which moves the float result only when it sits on a rounding boundary.
template <class T>
__global__ void timestep_kernel(const float* t, float neg_log, T* y, int64_t B, int64_t half) {
  SD_GRID_LOOP(i, B * half) {
    const int64_t j = i % half;
    const float e = __fdiv_rn(__fmul_rn(neg_log, static_cast<float>(j)), static_cast<float>(half));
    timestep_at(i, t, static_cast<float>(exp(static_cast<double>(e))), y, half);
  }
}

template <class T>
__global__ void get_rows_kernel(const uint8_t* table, DType t, int64_t row_bytes, const int32_t* ids, T* y,
                                int64_t n_ids, int64_t d) {
  SD_GRID_LOOP(i, n_ids * d) {
    const int64_t r = i / d, c = i - r * d;
    y[i] = from_f32<T>(cuda::load_weight(table + ids[r] * row_bytes, t, c));
  }
}

template <class T>
__global__ void get_rows_small_kernel(const uint8_t* table, DType t, int64_t row_bytes, SmallI32 ids, T* y,
                                      int64_t n_ids, int64_t d) {
  SD_GRID_LOOP(i, n_ids * d) {
    const int64_t r = i / d, c = i - r * d;
    y[i] = from_f32<T>(cuda::load_weight(table + ids.v[r] * row_bytes, t, c));
  }
}

}  // namespace

void CudaBackend::do_unary(Tensor& y, const Tensor& x, Unary op) {
  const OpSync op_sync{this};
  const int64_t n = x.numel();
  with_act(x.type, [&](auto tag) {
    using T = decltype(tag);
    unary_kernel<T><<<blocks_for(n), THREADS, 0, stream()>>>(x.as<T>(), y.as<T>(), n, static_cast<int>(op));
  });
  SD_CUDA_LAUNCHED("unary");
}

void CudaBackend::do_geglu(Tensor& y, const Tensor& x) {
  const OpSync op_sync{this};
  const int64_t rows = y.rows(), n = y.row_len();
  with_act(x.type, [&](auto tag) {
    using T = decltype(tag);
    geglu_kernel<T><<<blocks_for(rows * n), THREADS, 0, stream()>>>(x.as<T>(), y.as<T>(), rows, n);
  });
  SD_CUDA_LAUNCHED("geglu");
}

static Bcast make_bcast(const Tensor& a, const Tensor& b) {
  Bcast bc{};
  for (int d = 0; d < 4; ++d) { bc.shape[d] = 1; bc.bstride[d] = 0; }
  for (int i = 0; i < a.ndim; ++i) bc.shape[4 - a.ndim + i] = a.shape[i];
  int64_t stride = 1;
  for (int i = b.ndim - 1; i >= 0; --i) {
    const int d = 4 - b.ndim + i;
    bc.bstride[d] = b.shape[i] == 1 ? 0 : stride;
    stride *= b.shape[i];
  }
  return bc;
}

void CudaBackend::do_add(Tensor& y, const Tensor& a, const Tensor& b) {
  const OpSync op_sync{this};
  const int64_t n = a.numel();
  with_act(a.type, [&](auto tag) {
    using T = decltype(tag);
    binary_kernel<T><<<blocks_for(n), THREADS, 0, stream()>>>(a.as<T>(), b.as<T>(), y.as<T>(), n, make_bcast(a, b), false);
  });
  SD_CUDA_LAUNCHED("add");
}

void CudaBackend::do_mul(Tensor& y, const Tensor& a, const Tensor& b) {
  const OpSync op_sync{this};
  const int64_t n = a.numel();
  with_act(a.type, [&](auto tag) {
    using T = decltype(tag);
    binary_kernel<T><<<blocks_for(n), THREADS, 0, stream()>>>(a.as<T>(), b.as<T>(), y.as<T>(), n, make_bcast(a, b), true);
  });
  SD_CUDA_LAUNCHED("mul");
}

void CudaBackend::do_scale(Tensor& y, const Tensor& x, float s) {
  const OpSync op_sync{this};
  const int64_t n = x.numel();
  with_act(x.type, [&](auto tag) {
    using T = decltype(tag);
    scale_kernel<T><<<blocks_for(n), THREADS, 0, stream()>>>(x.as<T>(), y.as<T>(), n, s);
  });
  SD_CUDA_LAUNCHED("scale");
}

void CudaBackend::do_copy(Tensor& y, const Tensor& x) {
  const OpSync op_sync{this};
  SD_CUDA(cudaMemcpyAsync(y.data, x.data, x.nbytes(), cudaMemcpyDeviceToDevice, stream()));
}

void CudaBackend::do_upsample_nearest(Tensor& y, const Tensor& x) {
  const OpSync op_sync{this};
  const int64_t nc = x.shape[0] * x.shape[1];
  with_act(x.type, [&](auto tag) {
    using T = decltype(tag);
    upsample_kernel<T><<<blocks_for(y.numel()), THREADS, 0, stream()>>>(
        x.as<T>(), y.as<T>(), nc, static_cast<int>(x.shape[2]), static_cast<int>(x.shape[3]), static_cast<int>(y.shape[2]),
        static_cast<int>(y.shape[3]));
  });
  SD_CUDA_LAUNCHED("upsample_nearest");
}

void CudaBackend::do_concat_channels(Tensor& y, const Tensor& a, const Tensor& b) {
  const OpSync op_sync{this};
  const int64_t plane = a.shape[2] * a.shape[3];
  with_act(a.type, [&](auto tag) {
    using T = decltype(tag);
    concat_kernel<T><<<blocks_for(y.numel()), THREADS, 0, stream()>>>(a.as<T>(), b.as<T>(), y.as<T>(), y.numel(),
                                                                      a.shape[1], b.shape[1], plane);
  });
  SD_CUDA_LAUNCHED("concat_channels");
}

void CudaBackend::do_transpose12(Tensor& y, const Tensor& x) {
  const OpSync op_sync{this};
  with_act(x.type, [&](auto tag) {
    using T = decltype(tag);
    transpose12_kernel<T><<<blocks_for(x.numel()), THREADS, 0, stream()>>>(x.as<T>(), y.as<T>(), x.shape[0], x.shape[1],
                                                                           x.shape[2]);
  });
  SD_CUDA_LAUNCHED("transpose12");
}

void CudaBackend::do_timestep_embedding(Tensor& y, const Tensor& t, float max_period) {
  const OpSync op_sync{this};
  const int64_t B = y.shape[0], half = y.shape[1] / 2;
  const float neg_log = static_cast<float>(-std::log(static_cast<double>(max_period)));
  if (half <= kSmall) {
    SmallF32 freqs{};
    for (int64_t i = 0; i < half; ++i) {
      const float e = neg_log * static_cast<float>(i) / static_cast<float>(half);  // as the CPU backend
      freqs.v[i] = static_cast<float>(std::exp(static_cast<double>(e)));
    }
    with_act(y.type, [&](auto tag) {
      using T = decltype(tag);
      timestep_small_kernel<T><<<blocks_for(B * half), THREADS, 0, stream()>>>(t.f32(), freqs, y.as<T>(), B, half);
    });
  } else {
    with_act(y.type, [&](auto tag) {
      using T = decltype(tag);
      timestep_kernel<T><<<blocks_for(B * half), THREADS, 0, stream()>>>(t.f32(), neg_log, y.as<T>(), B, half);
    });
  }
  SD_CUDA_LAUNCHED("timestep_embedding");
}

void CudaBackend::do_get_rows(Tensor& y, const Tensor& table, const int32_t* ids, int64_t n_ids) {
  const OpSync op_sync{this};
  const int64_t row_bytes = static_cast<int64_t>(dtype_row_bytes(table.type, table.shape[1]));
  if (n_ids <= kSmall) {
    SmallI32 tab{};
    for (int64_t i = 0; i < n_ids; ++i) tab.v[i] = ids[i];
    with_act(y.type, [&](auto tag) {
      using T = decltype(tag);
      get_rows_small_kernel<T><<<blocks_for(n_ids * table.shape[1]), THREADS, 0, stream()>>>(
          static_cast<const uint8_t*>(table.data), table.type, row_bytes, tab, y.as<T>(), n_ids, table.shape[1]);
    });
    SD_CUDA_LAUNCHED("get_rows");
    return;
  }
  auto* did = static_cast<int32_t*>(scratch(static_cast<size_t>(n_ids) * sizeof(int32_t)));
  SD_CUDA(cudaMemcpyAsync(did, ids, static_cast<size_t>(n_ids) * sizeof(int32_t), cudaMemcpyHostToDevice, stream()));
  const int64_t d = table.shape[1];
  with_act(y.type, [&](auto tag) {
    using T = decltype(tag);
    get_rows_kernel<T><<<blocks_for(n_ids * d), THREADS, 0, stream()>>>(static_cast<const uint8_t*>(table.data),
                                                                        table.type, row_bytes, did, y.as<T>(), n_ids, d);
  });
  SD_CUDA_LAUNCHED("get_rows");
  SD_CUDA(cudaStreamSynchronize(stream()));
}

}  // namespace sd
