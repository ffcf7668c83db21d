// Row conversions between f32 and the stored dtypes. The *_ref quantizers reproduce GGML's
// reference quantizers bit for bit (see test fixtures/quant); the q8_0 activation quantizer
// reproduces GGML's SIMD one (127/amax multiply, round half to even), which is what its matmul uses.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace sd {

// n is the element count; for block types it must be a multiple of 32 (callers check).
void quantize_row_q8_0_ref(const float* x, block_q8_0* y, int64_t n);
void quantize_row_q4_0_ref(const float* x, block_q4_0* y, int64_t n);
// GGML's AVX2/NEON activation quantizer: d = amax/127 stored, quants = round_even(x * 127/amax).
void quantize_row_q8_0_act(const float* x, block_q8_0* y, int64_t n);

void dequantize_row_q8_0(const block_q8_0* x, float* y, int64_t n);
void dequantize_row_q4_0(const block_q4_0* x, float* y, int64_t n);
void fp32_to_fp16_row(const float* x, uint16_t* y, int64_t n);
void fp16_to_fp32_row(const uint16_t* x, float* y, int64_t n);

// Any dtype row <-> f32 (F32 is a copy).
void to_f32_row(DType t, const void* x, float* y, int64_t n);
void from_f32_row(DType t, const float* x, void* y, int64_t n);

}  // namespace sd
