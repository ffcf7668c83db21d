// The CPU GEMM every matrix op goes through (linear, conv via im2col panels, attention may not).
//   C[m, n] = sum_k A[m, k] * W[n, k]  (+ bias[n])   for m < M, n < N
// A: f32 activations, row stride lda. W: weight rows of K elements in any DType (row stride is
// dtype_row_bytes(W.type, K)). C: f32, row stride ldc. Runs on the backend's pool; each C element is
// written by one task with K chunks and a kernel that depend only on the shape (the task count may
// follow the threads), so results do not depend on the thread count.
//
// Scratch: gemm() uses be.scratch(t) of every pool thread t for packed panels, so a caller must not
// keep data in the backend's scratch across a gemm() call (and must not call it from inside a pool
// task: the pool is not re-entrant).
//
// Quantized weights (q8_0, q4_0) take, per ISA, either the integer path (activations quantized per
// 32-block with GGML's activation quantizer, integer block dot products, like ggml_mul_mat) or the
// dequantize-to-f32 path, whichever measured faster (see gemm.cpp). The integer path's error against
// f32 activations is bounded in native/tests/gemm_test.cpp.
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

// Scalar reference of the integer path for q8_0/q4_0 weights: each A row quantized with
// quantize_row_q8_0_act, then per block sum_i(qa * qw) * (d_w * d_a) accumulated in f32, as GGML's
// generic vec_dot does. Other dtypes: same as gemm_reference.
void gemm_reference_qact(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                         const void* W, DType wtype, const float* bias, float* C, int64_t ldc);

// Tests and benchmarks: force the quantized-weight path (Auto = the measured per-ISA choice).
// Int falls back to Float where the active ISA has no integer kernel.
enum class GemmQuantPath { Auto, Int, Float };
void gemm_force_quant_path(GemmQuantPath p);
// Which path a call with these arguments would take now (true = integer).
bool gemm_uses_int_path(DType wtype, int64_t M, int64_t N, int64_t K);

}  // namespace sd
