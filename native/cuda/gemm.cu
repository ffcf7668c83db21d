// linear and conv2d as one tiled SIMT GEMM: C[m, n] = sum_k A(m, k) * W[n, k] (+ bias[n]).
// Weights of any dtype are dequantized while their tile is loaded into shared memory, so they stay
// quantized in VRAM. conv2d is an implicit GEMM: A(m, k) reads the input with padding on the fly
// (no im2col buffer) and the store scatters C back into NCHW.
#include <stdexcept>
#include <string>

#include "cuda/act.cuh"
#include "cuda/common.cuh"
#include "cuda/cuda_backend.h"
#include "cuda/tc_kernels.h"

namespace sd {
namespace {

constexpr int BM = 64, BN = 64, BK = 16, THREADS = 256;

// T: the activations' element type (act.cuh).
template <class T>
struct DenseA {
  const T* a;
  int64_t lda;
  __device__ float operator()(int64_t m, int64_t k) const { return cuda::to_f32(a[m * lda + k]); }
};

template <class T>
struct DenseStore {
  T* c;
  int64_t ldc;
  __device__ void operator()(int64_t m, int64_t n, float v) const { c[m * ldc + n] = cuda::from_f32<T>(v); }
};

// Row m = output pixel (img, oy, ox); column k = (ci, ky, kx). up = 1 reads x [h, w] as if it were
// upsampled to [2h, 2w] (nearest): the conv of conv2d_upsampled.
template <class T>
struct ConvA {
  const T* x;
  int ci, h, w, ho, wo, ks, stride, pad, up;
  __device__ float operator()(int64_t m, int64_t k) const {
    const int64_t plane = static_cast<int64_t>(ho) * wo;
    const int64_t img = m / plane;
    const int p = static_cast<int>(m - img * plane);
    const int oy = p / wo, ox = p - oy * wo;
    const int kk = ks * ks;
    const int c = static_cast<int>(k / kk);
    const int r = static_cast<int>(k - static_cast<int64_t>(c) * kk);
    const int iy = oy * stride - pad + r / ks, ix = ox * stride - pad + r % ks;
    if (iy < 0 || iy >= (h << up) || ix < 0 || ix >= (w << up)) return 0.f;
    return cuda::to_f32(x[((img * ci + c) * h + (iy >> up)) * static_cast<int64_t>(w) + (ix >> up)]);
  }
};

template <class T>
struct ConvStore {
  T* y;
  int co, plane;
  __device__ void operator()(int64_t m, int64_t n, float v) const {
    const int64_t img = m / plane;
    y[(img * co + n) * plane + (m - img * plane)] = cuda::from_f32<T>(v);
  }
};

template <class LoadA, class StoreC>
__global__ void __launch_bounds__(THREADS) gemm_kernel(int64_t M, int64_t N, int64_t K, LoadA la, const uint8_t* W,
                                                       DType wt, int64_t wrow, const float* bias, StoreC sc) {
  cuda::pdl_entry();
  __shared__ float As[BK][BM + 4];
  __shared__ float Ws[BK][BN + 4];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  // Row tiles on x: gridDim.y stops at 65535, which an untiled 2048x2048 VAE pass's M would pass.
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * BM, n0 = static_cast<int64_t>(blockIdx.y) * BN;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < K; k0 += BK) {
    for (int i = tid; i < BM * BK; i += THREADS) {
      const int r = i / BK, c = i % BK;
      const int64_t m = m0 + r, k = k0 + c;
      As[c][r] = (m < M && k < K) ? la(m, k) : 0.f;
    }
    for (int i = tid; i < BN * BK; i += THREADS) {
      const int r = i / BK, c = i % BK;
      const int64_t n = n0 + r, k = k0 + c;
      Ws[c][r] = (n < N && k < K) ? cuda::load_weight(W + n * wrow, wt, k) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = As[kk][ty * 4 + i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = Ws[kk][tx * 4 + j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t m = m0 + ty * 4 + i;
    if (m >= M) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t n = n0 + tx * 4 + j;
      if (n < N) sc(m, n, acc[i][j] + (bias ? bias[n] : 0.f));
    }
  }
}

template <class LoadA, class StoreC>
void launch(cudaStream_t s, int64_t M, int64_t N, int64_t K, LoadA la, const Tensor& w, const Tensor* bias, StoreC sc) {
  dim3 grid(static_cast<unsigned>((M + BM - 1) / BM), static_cast<unsigned>((N + BN - 1) / BN));
  cuda::enqueue(gemm_kernel<LoadA, StoreC>, grid, THREADS, 0, s, M, N, K, la, static_cast<const uint8_t*>(w.data),
                w.type, static_cast<int64_t>(dtype_row_bytes(w.type, K)), bias ? bias->f32() : nullptr, sc);
  SD_CUDA_LAUNCHED("gemm");
}

}  // namespace

cuda::TcCtx CudaBackend::tc_ctx() {
  return cuda::TcCtx{stream_, sms_ * split_slots_, split_k_, stages_, q_pipe_, [this](size_t bytes) { return scratch(bytes); }};
}

void CudaBackend::do_linear(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias) {
  const OpSync op_sync{this};
  if (tc_gemm_) return cuda::tc_linear(tc_ctx(), y, x, w, bias);
  const int64_t K = w.shape[1], N = w.shape[0], M = x.rows();
  cuda::with_act(x.type, [&](auto tag) {
    using T = decltype(tag);
    launch(stream_, M, N, K, DenseA<T>{x.as<T>(), K}, w, bias, DenseStore<T>{y.as<T>(), N});
  });
}

void CudaBackend::do_linear_add(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias) {
  const OpSync op_sync{this};
  cuda::tc_linear(tc_ctx(), y, x, w, bias, /*accumulate=*/true);  // fuses_linear_add(): tc_gemm_ only
}

bool CudaBackend::fuses_linear_geglu(const Tensor& x, const Tensor& w) const {
  return tc_gemm_ && geglu_ && cuda::tc_linear_geglu_fits(x, w);
}

void CudaBackend::do_linear_geglu(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias) {
  const OpSync op_sync{this};
  cuda::tc_linear_geglu(tc_ctx(), y, x, w, bias);
}

bool CudaBackend::fuses_linear_to_channels() const { return tc_gemm_ && proj_out_; }

void CudaBackend::do_linear_to_channels(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias,
                                        const Tensor& res) {
  const OpSync op_sync{this};
  if (x.rows() >= (int64_t{1} << 31)) throw std::invalid_argument("linear_to_channels: more than 2^31 tokens");
  cuda::tc_linear_to_channels(tc_ctx(), y, x, w, bias, res);
}

void CudaBackend::do_linear_n(Tensor* const* ys, const Tensor& x, const Tensor* const* ws, int n) {
  if (tc_gemm_ && n > 1 && cuda::tc_linear_n_fits(x, ws, n)) {
    const OpSync op_sync{this};
    return cuda::tc_linear_n(tc_ctx(), ys, x, ws, n);
  }
  Backend::do_linear_n(ys, x, ws, n);
}

void CudaBackend::do_conv2d(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, int stride, int pad) {
  conv(y, x, w, bias, stride, pad, 0);
}

void CudaBackend::do_conv2d_add(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, int stride, int pad,
                                const Tensor* chan, const Tensor* res) {
  if (!conv_add_) return Backend::do_conv2d_add(y, x, w, bias, stride, pad, chan, res);
  conv(y, x, w, bias, stride, pad, 0, chan, res);
}

void CudaBackend::do_conv2d_upsampled(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias) {
  conv(y, x, w, bias, 1, 1, 1);
}

void CudaBackend::conv(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, int stride, int pad, int up,
                       const Tensor* chan, const Tensor* res) {
  const OpSync op_sync{this};
  const int ks = static_cast<int>(w.shape[2]);
  const bool tap_major = tap_major_.count(w.data) != 0;
  if (nhwc_takes(y, x, w)) return conv_nhwc(y, x, w, bias, stride, pad, up, chan, res);
  if (tap_major) {
    if (cuda::tc_conv2d_taps_fits(x, y, w)) return cuda::tc_conv2d_taps(tc_ctx(), y, x, w, bias, stride, pad, up, chan, res);
    throw std::invalid_argument("conv2d: input " + x.shape_str() + " is too large for the tap-major conv that weight " +
                                w.shape_str() + " was laid out for");
  }
  // The TC conv is instantiated for the 1x1 and 3x3 kernels SD uses; other sizes (and images too
  // large for its int offsets) take the v0 kernel.
  if (tc_gemm_ && (ks == 1 || ks == 3) && cuda::tc_conv2d_fits(x, y))
    return cuda::tc_conv2d(tc_ctx(), y, x, w, bias, stride, pad, up, chan, res);
  const int64_t M = y.shape[0] * y.shape[2] * y.shape[3], N = w.shape[0], K = w.shape[1] * ks * ks;
  cuda::with_act(x.type, [&](auto tag) {
    using T = decltype(tag);
    ConvA<T> la{x.as<T>(), static_cast<int>(x.shape[1]), static_cast<int>(x.shape[2]), static_cast<int>(x.shape[3]),
                static_cast<int>(y.shape[2]), static_cast<int>(y.shape[3]), ks, stride, pad, up};
    ConvStore<T> sc{y.as<T>(), static_cast<int>(N), static_cast<int>(y.shape[2] * y.shape[3])};
    launch(stream_, M, N, K, la, w, bias, sc);
  });
  // The v0 kernel has no such epilogue: the adds after it, as Backend::do_conv2d_add does.
  if (chan) binary(y, y, chan->reshaped({y.shape[0], y.shape[1], 1, 1}), false);
  if (res) binary(y, y, *res, false);
}

bool CudaBackend::nhwc_takes(const Tensor& y, const Tensor& x, const Tensor& w) const {
  return tc_gemm_ && nhwc_ && (w.shape[2] == 3 || nhwc_1x1_) && cuda::tc_conv2d_nhwc_fits(x, y, w, q_taps_);
}

void CudaBackend::conv_nhwc(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, int stride, int pad, int up,
                            const Tensor* chan, const Tensor* res, const cuda::TcGroupNorm* gn) {
  if (w.shape[2] == 3 && tap_major_.count(w.data) == 0) {
    // Once per weight, in place: a capture would record the layout change into every replay, so a
    // capture gives up here and the step runs op by op (graph.cu), which lays it out.
    if (capturing_) throw std::runtime_error("conv2d: a weight's first use inside a CUDA graph capture");
    cuda::tc_conv_weight_to_taps(tc_ctx(), w);
    tap_major_.insert(w.data);
  }
  cuda::tc_conv2d_nhwc(tc_ctx(), y, x, w, bias, stride, pad, up, chan, res, gn);
}

void CudaBackend::do_norm_conv2d(Tensor& y, Tensor& t, const Tensor& x, int groups, const Tensor& gamma,
                                 const Tensor& beta, float eps, bool silu, const Tensor& w, const Tensor* bias,
                                 int stride, int pad, const Tensor* chan, const Tensor* res) {
  // The split group_norm's statistics, then the conv's NHWC copy of x normalising as it goes: one
  // pass over x fewer than the two ops, and two kernels fewer (the apply, and with it a launch).
  if (norm_conv_ && tc_norm_ && cuda::group_norm_split_scratch(x, groups) != 0 && nhwc_takes(y, x, w)) {
    const OpSync op_sync{this};
    const cuda::TcGroupNorm gn{groups, &gamma, &beta, eps, silu};
    return conv_nhwc(y, x, w, bias, stride, pad, 0, chan, res, &gn);
  }
  Backend::do_norm_conv2d(y, t, x, groups, gamma, beta, eps, silu, w, bias, stride, pad, chan, res);
}

}  // namespace sd
