// Pointwise and data-movement ops: grid-stride loops, four elements per thread where the operands
// are 4-element aligned (one otherwise); transpose12 through shared-memory tiles.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "cuda/act.cuh"
#include "cuda/common.cuh"
#include "cuda/cuda_backend.h"
#include "cuda/transpose_kernel.cuh"

namespace sd {
namespace {

using cuda::aligned4;
using cuda::from_f32;
using cuda::load4;
using cuda::store4;
using cuda::to_f32;
using cuda::with_act;

// Four consecutive elements copied as raw bytes (8 for f16, 16 for f32), 4-element aligned.
template <class T>
__device__ __forceinline__ void copy4(T* dst, const T* src) {
  if constexpr (sizeof(T) == 2) *reinterpret_cast<uint2*>(dst) = *reinterpret_cast<const uint2*>(src);
  else *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
}

constexpr int THREADS = 256;
#define SD_GRID_LOOP(i, n) \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); i += static_cast<int64_t>(gridDim.x) * blockDim.x)

// T: the activations' element type (act.cuh); the math is f32. These ops are bound by memory
// traffic, so where every operand is 4-element aligned (host-checked: vec) each thread moves four
// elements per access (8 bytes of f16, 16 of f32), and index math stays in 32 bits when it fits.
__device__ __forceinline__ float unary_op(float v, int op) {
  return op == 0 ? v / (1.f + expf(-v)) : op == 1 ? cuda::gelu_erf(v) : v / (1.f + expf(-1.702f * v));
}

template <class T>
__global__ void unary_kernel(const T* x, T* y, int64_t n, int op, bool vec) {
  cuda::pdl_entry();
  if (vec) {
    SD_GRID_LOOP(j, n / 4) {
      float v[4];
      load4(x + 4 * j, v);
      for (float& e : v) e = unary_op(e, op);
      store4(y + 4 * j, v);
    }
    return;
  }
  SD_GRID_LOOP(i, n) y[i] = from_f32<T>(unary_op(to_f32(x[i]), op));
}

template <class T>
__global__ void scale_kernel(const T* x, T* y, int64_t n, float s, bool vec) {
  cuda::pdl_entry();
  if (vec) {
    SD_GRID_LOOP(j, n / 4) {
      float v[4];
      load4(x + 4 * j, v);
      for (float& e : v) e *= s;
      store4(y + 4 * j, v);
    }
    return;
  }
  SD_GRID_LOOP(i, n) y[i] = from_f32<T>(to_f32(x[i]) * s);
}

// y[r, c] = x[r, c] * gelu(x[r, n + c]); I: the index type (int when rows * 2n fits).
template <class T, class I>
__global__ void geglu_kernel(const T* x, T* y, I rows, I n, bool vec) {
  cuda::pdl_entry();
  if (vec) {  // n % 4 == 0
    const I n4 = n / 4;
    SD_GRID_LOOP(j, static_cast<int64_t>(rows) * n4) {
      const I r = static_cast<I>(j) / n4, c = 4 * (static_cast<I>(j) - r * n4);
      float a[4], g[4];
      load4(x + r * 2 * n + c, a);
      load4(x + r * 2 * n + n + c, g);
      for (int e = 0; e < 4; ++e) a[e] *= cuda::gelu_erf(g[e]);
      store4(y + r * n + c, a);
    }
    return;
  }
  SD_GRID_LOOP(i, static_cast<int64_t>(rows) * n) {
    const I r = static_cast<I>(i) / n, c = static_cast<I>(i) - r * n;
    y[i] = from_f32<T>(to_f32(x[r * 2 * n + c]) * cuda::gelu_erf(to_f32(x[r * 2 * n + n + c])));
  }
}

// How b's index follows a's flat index i: SAME (b is a's shape), LEAD (b covers a's leading dims
// and is broadcast over the trailing ones: i / inner, e.g. a [N, C, H, W] + b [N, C, 1, 1]),
// TRAIL (b covers the trailing dims: i % nb, e.g. a bias over rows), or GENERAL (any other
// broadcast: per-dim strides).
enum class Bk { SAME, LEAD, TRAIL, GENERAL };
struct Bcast {
  Bk kind;
  int64_t inner, nb;   // LEAD: elements of a per element of b; TRAIL: b's size
  int64_t shape[4];    // GENERAL: a's shape, left-padded with 1
  int64_t bstride[4];  // GENERAL: b's element strides, 0 on broadcast dims
};

template <class I>
__device__ __forceinline__ I bcast_index(I i, const Bcast& bc) {
  switch (bc.kind) {
    case Bk::SAME: return i;
    case Bk::LEAD: return i / static_cast<I>(bc.inner);
    case Bk::TRAIL: return i % static_cast<I>(bc.nb);
    default: {
      I rem = i, bi = 0;
      for (int d = 3; d >= 0; --d) {
        const I len = static_cast<I>(bc.shape[d]), idx = rem % len;
        rem /= len;
        bi += idx * static_cast<I>(bc.bstride[d]);
      }
      return bi;
    }
  }
}

// vec: all three tensors 4-aligned and, for LEAD, inner % 4 == 0 (four elements share one b), for
// TRAIL nb % 4 == 0 (four consecutive b), for SAME n % 4 == 0.
template <class T, class I>
__global__ void binary_kernel(const T* a, const T* b, T* y, int64_t n, Bcast bc, bool mul, bool vec) {
  cuda::pdl_entry();
  if (vec) {
    SD_GRID_LOOP(j, n / 4) {
      const I i = static_cast<I>(4 * j);
      float u[4], v[4];
      load4(a + i, u);
      if (bc.kind == Bk::LEAD) {
        v[0] = v[1] = v[2] = v[3] = to_f32(b[i / static_cast<I>(bc.inner)]);
      } else {
        load4(b + bcast_index<I>(i, bc), v);
      }
      for (int e = 0; e < 4; ++e) u[e] = mul ? u[e] * v[e] : u[e] + v[e];
      store4(y + i, u);
    }
    return;
  }
  SD_GRID_LOOP(i, n) {
    const float u = to_f32(a[i]), v = to_f32(b[bcast_index<I>(static_cast<I>(i), bc)]);
    y[i] = from_f32<T>(mul ? u * v : u + v);
  }
}

// Data movement copies elements as they are, whatever their type.
template <class T>
__global__ void upsample_kernel(const T* x, T* y, int64_t nc, int h, int w, int ho, int wo) {
  cuda::pdl_entry();
  SD_GRID_LOOP(i, nc * ho * wo) {
    const int64_t c = i / (static_cast<int64_t>(ho) * wo);
    const int p = static_cast<int>(i - c * ho * wo), oy = p / wo, ox = p % wo;
    const int iy = static_cast<int>(static_cast<int64_t>(oy) * h / ho), ix = static_cast<int>(static_cast<int64_t>(ox) * w / wo);
    y[i] = x[(c * h + iy) * w + ix];
  }
}

// y [N, ca + cb, plane] from a [N, ca, plane] and b [N, cb, plane]; vec: plane % 4 == 0 and aligned.
template <class T, class I>
__global__ void concat_kernel(const T* a, const T* b, T* y, int64_t n, I ca, I cb, I plane, bool vec) {
  cuda::pdl_entry();
  const I w = vec ? 4 : 1, per = (ca + cb) * plane / w, pa = ca * plane / w;
  SD_GRID_LOOP(j, n / w) {
    const I img = static_cast<I>(j) / per, r = static_cast<I>(j) - img * per;
    const T* src = r < pa ? a + (img * pa + r) * w : b + (img * (per - pa) + (r - pa)) * w;
    if (vec) {
      copy4(y + static_cast<int64_t>(j) * 4, src);
    } else {
      y[j] = *src;
    }
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
  cuda::pdl_entry();
  SD_GRID_LOOP(i, B * half) timestep_at(i, t, freqs.v[i % half], y, half);
}

// Wider embeddings: the CPU's recipe in the kernel (float products and an IEEE division, then exp in
// double rounded to float), so nothing is copied from the host. CUDA's double exp is within 1 ulp of
// the host's, which moves the float result only when it sits on a rounding boundary.
template <class T>
__global__ void timestep_kernel(const float* t, float neg_log, T* y, int64_t B, int64_t half) {
  cuda::pdl_entry();
  SD_GRID_LOOP(i, B * half) {
    const int64_t j = i % half;
    const float e = __fdiv_rn(__fmul_rn(neg_log, static_cast<float>(j)), static_cast<float>(half));
    timestep_at(i, t, static_cast<float>(exp(static_cast<double>(e))), y, half);
  }
}

template <class T>
__global__ void get_rows_kernel(const uint8_t* table, DType t, int64_t row_bytes, const int32_t* ids, T* y,
                                int64_t n_ids, int64_t d) {
  cuda::pdl_entry();
  SD_GRID_LOOP(i, n_ids * d) {
    const int64_t r = i / d, c = i - r * d;
    y[i] = from_f32<T>(cuda::load_weight(table + ids[r] * row_bytes, t, c));
  }
}

template <class T>
__global__ void get_rows_small_kernel(const uint8_t* table, DType t, int64_t row_bytes, SmallI32 ids, T* y,
                                      int64_t n_ids, int64_t d) {
  cuda::pdl_entry();
  SD_GRID_LOOP(i, n_ids * d) {
    const int64_t r = i / d, c = i - r * d;
    y[i] = from_f32<T>(cuda::load_weight(table + ids.v[r] * row_bytes, t, c));
  }
}

constexpr int64_t kInt32Max = 0x7fffffff;

}  // namespace

void CudaBackend::do_unary(Tensor& y, const Tensor& x, Unary op) {
  const OpSync op_sync{this};
  const int64_t n = x.numel();
  const bool vec = n % 4 == 0 && aligned4(x) && aligned4(y);
  with_act(x.type, [&](auto tag) {
    using T = decltype(tag);
    cuda::enqueue(unary_kernel<T>, blocks_for(vec ? n / 4 : n), THREADS, 0, stream(), x.as<T>(), y.as<T>(), n,
                  static_cast<int>(op), vec);
  });
  SD_CUDA_LAUNCHED("unary");
}

void CudaBackend::do_geglu(Tensor& y, const Tensor& x) {
  const OpSync op_sync{this};
  const int64_t rows = y.rows(), n = y.row_len();
  const bool vec = n % 4 == 0 && aligned4(x) && aligned4(y);
  const unsigned grid = blocks_for(vec ? rows * n / 4 : rows * n);
  with_act(x.type, [&](auto tag) {
    using T = decltype(tag);
    if (rows * 2 * n <= kInt32Max)
      cuda::enqueue(geglu_kernel<T, int>, grid, THREADS, 0, stream(), x.as<T>(), y.as<T>(), static_cast<int>(rows),
                    static_cast<int>(n), vec);
    else
      cuda::enqueue(geglu_kernel<T, int64_t>, grid, THREADS, 0, stream(), x.as<T>(), y.as<T>(), rows, n, vec);
  });
  SD_CUDA_LAUNCHED("geglu");
}

static Bcast make_bcast(const Tensor& a, const Tensor& b) {
  Bcast bc{};
  for (int d = 0; d < 4; ++d) { bc.shape[d] = 1; bc.bstride[d] = 0; }
  int64_t bs[4] = {1, 1, 1, 1};
  for (int i = 0; i < a.ndim; ++i) bc.shape[4 - a.ndim + i] = a.shape[i];
  for (int i = 0; i < b.ndim; ++i) bs[4 - b.ndim + i] = b.shape[i];
  int64_t stride = 1;
  for (int d = 3; d >= 0; --d) {
    bc.bstride[d] = bs[d] == 1 ? 0 : stride;
    stride *= bs[d];
  }
  bc.nb = b.numel();
  // The first dim where b is broadcast (from the left) and the last dim where it is (from the right).
  int lead = 0, trail = 4;
  while (lead < 4 && (bs[lead] == bc.shape[lead])) ++lead;
  while (trail > 0 && (bs[trail - 1] == bc.shape[trail - 1])) --trail;
  bool ones_after = true, ones_before = true;
  for (int d = lead; d < 4; ++d) ones_after = ones_after && bs[d] == 1;
  for (int d = 0; d < trail; ++d) ones_before = ones_before && bs[d] == 1;
  if (lead == 4) {
    bc.kind = Bk::SAME;
  } else if (ones_after) {
    bc.kind = Bk::LEAD;
    bc.inner = 1;
    for (int d = lead; d < 4; ++d) bc.inner *= bc.shape[d];
  } else if (ones_before) {
    bc.kind = Bk::TRAIL;
  } else {
    bc.kind = Bk::GENERAL;
  }
  return bc;
}

void CudaBackend::binary(Tensor& y, const Tensor& a, const Tensor& b, bool mul) {
  const int64_t n = a.numel();
  const Bcast bc = make_bcast(a, b);
  const bool shape_ok = bc.kind == Bk::SAME   ? n % 4 == 0
                        : bc.kind == Bk::LEAD ? bc.inner % 4 == 0
                        : bc.kind == Bk::TRAIL ? bc.nb % 4 == 0
                                               : false;
  const bool vec = shape_ok && aligned4(a) && aligned4(b) && aligned4(y);
  const unsigned grid = blocks_for(vec ? n / 4 : n);
  with_act(a.type, [&](auto tag) {
    using T = decltype(tag);
    if (n <= kInt32Max)
      cuda::enqueue(binary_kernel<T, int>, grid, THREADS, 0, stream(), a.as<T>(), b.as<T>(), y.as<T>(), n, bc, mul, vec);
    else
      cuda::enqueue(binary_kernel<T, int64_t>, grid, THREADS, 0, stream(),
                    a.as<T>(), b.as<T>(), y.as<T>(), n, bc, mul, vec);
  });
  SD_CUDA_LAUNCHED(mul ? "mul" : "add");
}

void CudaBackend::do_add(Tensor& y, const Tensor& a, const Tensor& b) {
  const OpSync op_sync{this};
  binary(y, a, b, false);
}

void CudaBackend::do_mul(Tensor& y, const Tensor& a, const Tensor& b) {
  const OpSync op_sync{this};
  binary(y, a, b, true);
}

void CudaBackend::do_scale(Tensor& y, const Tensor& x, float s) {
  const OpSync op_sync{this};
  const int64_t n = x.numel();
  const bool vec = n % 4 == 0 && aligned4(x) && aligned4(y);
  with_act(x.type, [&](auto tag) {
    using T = decltype(tag);
    cuda::enqueue(scale_kernel<T>, blocks_for(vec ? n / 4 : n), THREADS, 0, stream(), x.as<T>(), y.as<T>(), n, s, vec);
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
    cuda::enqueue(upsample_kernel<T>, blocks_for(y.numel()), THREADS, 0, stream(), x.as<T>(), y.as<T>(), nc,
                  static_cast<int>(x.shape[2]), static_cast<int>(x.shape[3]), static_cast<int>(y.shape[2]),
                  static_cast<int>(y.shape[3]));
  });
  SD_CUDA_LAUNCHED("upsample_nearest");
}

void CudaBackend::do_concat_channels(Tensor& y, const Tensor& a, const Tensor& b) {
  const OpSync op_sync{this};
  const int64_t plane = a.shape[2] * a.shape[3], n = y.numel();
  const bool vec = plane % 4 == 0 && aligned4(a) && aligned4(b) && aligned4(y);
  const unsigned grid = blocks_for(vec ? n / 4 : n);
  with_act(a.type, [&](auto tag) {
    using T = decltype(tag);
    if (n <= kInt32Max)
      cuda::enqueue(concat_kernel<T, int>, grid, THREADS, 0, stream(), a.as<T>(), b.as<T>(), y.as<T>(), n,
                    static_cast<int>(a.shape[1]), static_cast<int>(b.shape[1]), static_cast<int>(plane), vec);
    else
      cuda::enqueue(concat_kernel<T, int64_t>, grid, THREADS, 0, stream(), a.as<T>(), b.as<T>(), y.as<T>(), n,
                    a.shape[1], b.shape[1], plane, vec);
  });
  SD_CUDA_LAUNCHED("concat_channels");
}

void CudaBackend::do_transpose12(Tensor& y, const Tensor& x) {
  const OpSync op_sync{this};
  const int64_t B = x.shape[0], A = x.shape[1], C = x.shape[2];
  if ((A + 31) / 32 > 65535 || C > kInt32Max)  // grid.y holds A's tiles
    throw std::invalid_argument("transpose12: dims too large for the CUDA kernel: " + x.shape_str());
  const int64_t plane = A * C;
  with_act(x.type, [&](auto tag) {
    using T = decltype(tag);
    for (int64_t b0 = 0; b0 < B; b0 += 65535) {  // grid.z holds at most 65535 batches per launch
      const dim3 grid(static_cast<unsigned>((C + 31) / 32), static_cast<unsigned>((A + 31) / 32),
                      static_cast<unsigned>(std::min<int64_t>(B - b0, 65535)));
      // [b][a][c] -> [b][c][a]: the NHWC copy's transpose with a as its channels, c its pixels.
      cuda::enqueue(cuda::transpose_kernel<T, T, cuda::PlainMap>, grid, cuda::kTransposeThreads, 0, stream(),
                    x.as<T>() + b0 * plane, y.as<T>() + b0 * plane, static_cast<int>(A), static_cast<int>(C),
                    cuda::PlainMap{});
    }
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
      cuda::enqueue(timestep_small_kernel<T>, blocks_for(B * half), THREADS, 0, stream(),
                    t.f32(), freqs, y.as<T>(), B, half);
    });
  } else {
    with_act(y.type, [&](auto tag) {
      using T = decltype(tag);
      cuda::enqueue(timestep_kernel<T>, blocks_for(B * half), THREADS, 0, stream(),
                    t.f32(), neg_log, y.as<T>(), B, half);
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
      cuda::enqueue(get_rows_small_kernel<T>, blocks_for(n_ids * table.shape[1]), THREADS, 0, stream(),
                    static_cast<const uint8_t*>(table.data), table.type, row_bytes, tab, y.as<T>(), n_ids,
                    table.shape[1]);
    });
    SD_CUDA_LAUNCHED("get_rows");
    return;
  }
  auto* did = static_cast<int32_t*>(scratch(static_cast<size_t>(n_ids) * sizeof(int32_t)));
  SD_CUDA(cudaMemcpyAsync(did, ids, static_cast<size_t>(n_ids) * sizeof(int32_t), cudaMemcpyHostToDevice, stream()));
  const int64_t d = table.shape[1];
  with_act(y.type, [&](auto tag) {
    using T = decltype(tag);
    cuda::enqueue(get_rows_kernel<T>, blocks_for(n_ids * d), THREADS, 0, stream(),
                  static_cast<const uint8_t*>(table.data), table.type, row_bytes, did, y.as<T>(), n_ids, d);
  });
  SD_CUDA_LAUNCHED("get_rows");
  SD_CUDA(cudaStreamSynchronize(stream()));
}

}  // namespace sd
