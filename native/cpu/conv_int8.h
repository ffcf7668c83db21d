// Integer-dot conv2d for q8_0 / q4_0 weights: activations quantized per 32-block of K (GGML's
// activation quantizer, as the quantized GEMM does), block dot products in int8 (AVX-512 VNNI,
// AVX2 maddubs, NEON sdot), f32 accumulation of d_w * d_a * sum.
#pragma once
#include "core/tensor.h"
#include "cpu/conv.h"

namespace sd {

// Runs the conv on the integer path and returns true when this ISA / dtype / shape has one;
// returns false (and touches nothing) to let conv2d_cpu take its float path.
bool conv2d_int8(CpuBackend& be, const ConvGeom& g, const float* x, const void* w, DType wtype,
                 const float* bias, float* y);

}  // namespace sd
