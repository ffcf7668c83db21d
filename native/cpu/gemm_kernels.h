// Internal interface between the GEMM driver (gemm.cpp: blocking, packing loops, threads) and the
// per-ISA kernels (gemm_<isa>.cpp). Only plain structs of function pointers cross this boundary, so
// no inline code is instantiated in an ISA translation unit and shared with generic code.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace sd {
namespace gemmk {

// Float path: weights converted to f32 and packed into panels of `nr` columns, panel[k * nr + j];
// A packed into tiles of `mr` rows, tile[k * mr + i] (rows past M are zero).
struct FloatKernels {
  int mr, nr;
  // dst[0, kk) = f32 values of W row elements [k0, k0 + kk) (src already points at element k0;
  // for block types k0 and kk are multiples of 32).
  void (*to_f32)(DType t, const uint8_t* src, float* dst, int64_t kk);
  // C tile (mr_valid x nr_valid) = [C +] Atile . panel [+ bias]; bias only when !accumulate.
  void (*kernel)(int64_t kk, const float* atile, const float* panel, float* C, int64_t ldc,
                 int mr_valid, int nr_valid, bool accumulate, const float* bias);
  // sum_k a[k] * b[k] (the small-M path: a few activation rows against each converted W row).
  float (*dot)(const float* a, const float* b, int64_t n);
  // Optional (null: pack A): the kernel on a full mr-row tile with A read in place, row i at
  // a + i * lda; gives the same bits as `kernel` on the packed tile.
  void (*kernel_rows)(int64_t kk, const float* a, int64_t lda, const float* panel, float* C,
                      int64_t ldc, int nr_valid, bool accumulate, const float* bias);
};

// Integer path for q8_0/q4_0 weights: activations quantized per 32-block to q8_0 (GGML's activation
// quantizer), integer dot products per block, f32 accumulation of d_w * d_a * sum.
struct QuantKernels {
  int mr, nr;
  bool q8_0, q4_0;  // which weight types the integer kernel handles
  size_t (*panel_bytes)(int64_t nkb);  // one packed panel: nr columns x nkb blocks
  size_t (*atile_bytes)(int64_t nkb);  // one quantized A tile: mr rows x nkb blocks
  // Packs W rows [n0, n0 + nn) (nn <= nr; missing columns are zero), blocks [kb0, kb0 + nkb).
  void (*pack)(DType t, const uint8_t* W, size_t row_bytes, int64_t n0, int64_t nn, int64_t kb0,
               int64_t nkb, uint8_t* dst);
  // Quantizes rows [0, mr_valid) of A (A points at row 0, element k0) for nkb blocks.
  void (*quant_a)(int mr_valid, int64_t nkb, const float* A, int64_t lda, uint8_t* dst);
  void (*kernel)(int64_t nkb, const uint8_t* atile, const uint8_t* panel, float* C, int64_t ldc,
                 int mr_valid, int nr_valid, bool accumulate, const float* bias);
};

// Null when this build lacks the ISA.
const FloatKernels* float_kernels_scalar();
const FloatKernels* float_kernels_avx2();
const QuantKernels* quant_kernels_avx2();     // q4_0
const QuantKernels* quant_kernels_avx2_q8();  // q8_0
const FloatKernels* float_kernels_avx512();
const QuantKernels* quant_kernels_avx512();
const FloatKernels* float_kernels_neon();
const QuantKernels* quant_kernels_dotprod();

}  // namespace gemmk
}  // namespace sd
