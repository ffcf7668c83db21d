// linear and conv2d on tensor cores: one 128x128x32 block tile, 8 warps of 64x32, mma.sync
// m16n8k16 (two m16n8k8 on sm_75) fed by ldmatrix from padded shared-memory tiles.
//
// Every thread stages its share of the A and W tiles (each loader maps threads to rows and k-chunks
// to suit its reads; protocol in gemm_tc_kernel.cuh): f32 activations (or the implicit-GEMM gather
// of the conv input) and weights (f32, f16, or q8_0/q4_0 half-blocks: a chunk never straddles a
// 32-block) are converted to f16 while being written to shared memory (f16 activations are copied
// as they are, like f16 weights). The pipeline is double-buffered: the next tile's global loads are
// issued before the current tile's mma loop and converted + stored after it, so one __syncthreads
// per tile suffices. Loads that need converting (f32 activations, f32 and quantized weights) go
// through registers, since cp.async cannot convert in flight; f16 rows are copied straight into the
// shared tile with cp.async.
#include <algorithm>
#include <cstdint>

#include "cuda/gemm_tc_launch.cuh"

namespace sd {
namespace cuda {

using namespace tc_gemm;

size_t tc_gemm_async_smem_bytes() { return tc_gemm_async_smem<4>(); }

void tc_linear(const TcCtx& c, Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias) {
  const int64_t K = w.shape[1], N = w.shape[0], M = x.rows();
  if (x.type == DType::F16) {  // f16 activations go global -> shared as they are (cp.async)
    const __half* a = x.as<__half>();
    const F16Rows rows{a, M, K, F16Rows::vec_ok(a, K)};
    return launch(c, M, N, K, rows, w, bias, DenseOut<__half>{y.as<__half>(), N}, false);
  }
  const float* a = x.f32();
  const bool vec = K % 4 == 0 && reinterpret_cast<uintptr_t>(a) % 16 == 0;
  launch(c, M, N, K, F32Rows{a, M, K, K, vec}, w, bias, DenseOut<float>{y.f32(), N}, false);
}

}  // namespace cuda
}  // namespace sd
