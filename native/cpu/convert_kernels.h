// Row converters for loading weights (f16 <-> f32, f32 -> q8_0 / q4_0), bit-identical to the scalar
// reference in core/quant.h (GGML's quantize_row_*_ref, so converted weights equal the blocks GGML
// writes). Plain extern functions only: ISA units must not instantiate shared inlines.
#pragma once
#include <cstdint>

namespace sd {

#if defined(SDNODE_HAVE_AVX2)
void convert_f16_to_f32_avx2(const uint16_t* x, float* y, int64_t n);
void convert_f32_to_f16_avx2(const float* x, uint16_t* y, int64_t n);
void quantize_q8_0_avx2(const float* x, uint8_t* y, int64_t n);  // n % 32 == 0
void quantize_q4_0_avx2(const float* x, uint8_t* y, int64_t n);  // n % 32 == 0
#endif

}  // namespace sd
