// The CPU GEMM every matrix op goes through (linear, conv via im2col panels, attention may not).
//   C[m, n] = sum_k A[m, k] * W[n, k]  (+ bias[n])   for m < M, n < N
// A: f32 activations, row stride lda. W: weight rows of K elements in any DType (row stride is
// dtype_row_bytes(W.type, K)). C: f32, row stride ldc. Runs on the backend's pool; each C element is
// written by one task, so results do not depend on the thread count.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace sd {

class CpuBackend;

void gemm(CpuBackend& be, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
          const void* W, DType wtype, const float* bias, float* C, int64_t ldc);

// Scalar reference (no threads, no SIMD): the oracle the tests compare every path with.
void gemm_reference(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const void* W,
                    DType wtype, const float* bias, float* C, int64_t ldc);

}  // namespace sd
