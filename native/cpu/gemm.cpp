// GEMM dispatch. Placeholder: the reference loop until the blocked SIMD kernels land.
#include "cpu/gemm.h"

#include <vector>

#include "core/quant.h"
#include "cpu/cpu_backend.h"

namespace sd {

void gemm_reference(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const void* W,
                    DType wtype, const float* bias, float* C, int64_t ldc) {
  std::vector<float> wrow(static_cast<size_t>(K));
  const size_t row_bytes = dtype_row_bytes(wtype, K);
  for (int64_t n = 0; n < N; ++n) {
    to_f32_row(wtype, static_cast<const uint8_t*>(W) + n * row_bytes, wrow.data(), K);
    for (int64_t m = 0; m < M; ++m) {
      const float* a = A + m * lda;
      double acc = 0.0;
      for (int64_t k = 0; k < K; ++k) acc += static_cast<double>(a[k]) * wrow[k];
      C[m * ldc + n] = static_cast<float>(acc + (bias ? bias[n] : 0.0f));
    }
  }
}

void gemm(CpuBackend& be, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
          const void* W, DType wtype, const float* bias, float* C, int64_t ldc) {
  const size_t row_bytes = dtype_row_bytes(wtype, K);
  be.pool().parallel_for(N, 8, [&](int64_t b, int64_t e, int) {
    gemm_reference(M, e - b, K, A, lda, static_cast<const uint8_t*>(W) + b * row_bytes, wtype,
                   bias ? bias + b : nullptr, C + b, ldc);
  });
}

}  // namespace sd
