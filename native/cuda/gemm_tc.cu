// linear and conv2d on tensor cores: one 128x128x32 block tile, 8 warps of 64x32, mma.sync
// m16n8k16 (two m16n8k8 on sm_75) fed by ldmatrix from padded shared-memory tiles.
//
// Every thread stages one 16-element k-chunk of one A row and one W row per tile (row = tid / 2,
// chunk = tid % 2): the f32 activations (or the implicit-GEMM gather of the conv input) and the
// weights (f32, f16, or q8_0/q4_0 half-blocks: a chunk never straddles a 32-block) are converted to
// f16 while being written to shared memory (f16 activations are copied as they are, like f16
// weights). The pipeline is double-buffered: the next tile's global
// loads are issued before the current tile's mma loop and converted + stored after it, so one
// __syncthreads per tile suffices. Loads that need converting (f32 activations, f32 and quantized
// weights) go through registers, since cp.async cannot convert in flight; f16 weights are copied
// straight into the shared tile with cp.async (loader protocol: fetch(k, dst), stage(dst), complete()).
#include <cstdint>

#include "cuda/common.cuh"
#include "cuda/cuda_backend.h"
#include "cuda/gemm_tc_kernel.cuh"
#include "cuda/tc_kernels.h"

namespace sd {
namespace cuda {
namespace {

using namespace tc_gemm;

template <class ALoad, class Store>
void launch(cudaStream_t s, int64_t M, int64_t N, int64_t K, const ALoad& al, const Tensor& w, const Tensor* bias,
            const Store& st) {
  const dim3 grid(static_cast<unsigned>((M + BM - 1) / BM), static_cast<unsigned>((N + BN - 1) / BN));
  const float* b = bias ? bias->f32() : nullptr;
  const uint8_t* wp = static_cast<const uint8_t*>(w.data);
  switch (w.type) {
    case DType::F32: {
      const bool vec = K % 4 == 0 && reinterpret_cast<uintptr_t>(wp) % 16 == 0;
      tc_gemm_kernel<<<grid, THREADS, 0, s>>>(M, N, K, al, F32Rows{reinterpret_cast<const float*>(wp), N, K, K, vec}, b, st);
      break;
    }
    case DType::F16: {
      const bool vec = K % 8 == 0 && reinterpret_cast<uintptr_t>(wp) % 16 == 0;
      tc_gemm_kernel<<<grid, THREADS, 0, s>>>(M, N, K, al, F16Rows{reinterpret_cast<const __half*>(wp), N, K, vec}, b, st);
      break;
    }
    case DType::Q8_0:
      tc_gemm_kernel<<<grid, THREADS, 0, s>>>(
          M, N, K, al, QRows<false>{wp, N, K, static_cast<int64_t>(dtype_row_bytes(w.type, K))}, b, st);
      break;
    case DType::Q4_0:
      tc_gemm_kernel<<<grid, THREADS, 0, s>>>(
          M, N, K, al, QRows<true>{wp, N, K, static_cast<int64_t>(dtype_row_bytes(w.type, K))}, b, st);
      break;
  }
  SD_CUDA_LAUNCHED("tc gemm");
}

}  // namespace

void tc_linear(cudaStream_t s, Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias) {
  const int64_t K = w.shape[1], N = w.shape[0], M = x.rows();
  if (x.type == DType::F16) {  // f16 activations go global -> shared as they are (cp.async)
    const __half* a = x.as<__half>();
    const bool vec = K % 8 == 0 && reinterpret_cast<uintptr_t>(a) % 16 == 0;
    return launch(s, M, N, K, F16Rows{a, M, K, vec}, w, bias, DenseOut<__half>{y.as<__half>(), N});
  }
  const float* a = x.f32();
  const bool vec = K % 4 == 0 && reinterpret_cast<uintptr_t>(a) % 16 == 0;
  launch(s, M, N, K, F32Rows{a, M, K, K, vec}, w, bias, DenseOut<float>{y.f32(), N});
}

void tc_conv2d(cudaStream_t s, Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, int stride, int pad,
               int up) {
  const int ks = static_cast<int>(w.shape[2]);
  const int64_t M = y.shape[0] * y.shape[2] * y.shape[3], N = w.shape[0], K = w.shape[1] * ks * ks;
  const int h = static_cast<int>(x.shape[2]), wd = static_cast<int>(x.shape[3]);
  const int ho = static_cast<int>(y.shape[2]), wo = static_cast<int>(y.shape[3]);
  with_act(x.type, [&](auto tag) {
    using T = decltype(tag);
    const ConvOut<T> st{y.as<T>(), N, static_cast<int64_t>(ho) * wo};
    if (ks == 3)
      launch(s, M, N, K, ConvRows<3, T>{x.as<T>(), M, K, h, wd, ho, wo, stride, pad, up}, w, bias, st);
    else
      launch(s, M, N, K, ConvRows<1, T>{x.as<T>(), M, K, h, wd, ho, wo, stride, pad, up}, w, bias, st);
  });
}

}  // namespace cuda
}  // namespace sd
