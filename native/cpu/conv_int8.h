// Integer-dot conv2d for q8_0 / q4_0 weights: activations quantized per 32-block of K (GGML's
// activation quantizer, as the quantized GEMM does), block dot products in int8 (AVX-512 VNNI,
// AVX2 maddubs, NEON sdot), f32 accumulation of d_w * d_a * sum.
//
// K runs over (ci, ky, kx) like the weight rows, so the activation blocks are blocks of each output
// pixel's im2col patch (zeros where the window leaves the input): the same numbers GGML's
// im2col + mul_mat would multiply.
#pragma once
#include "core/tensor.h"
#include "cpu/conv.h"

namespace sd {

// Runs the conv on the integer path and returns true when this ISA / dtype / shape has one;
// returns false (and touches nothing) to let conv2d_cpu take its float path.
bool conv2d_int8(CpuBackend& be, const ConvGeom& g, const float* x, const void* w, DType wtype,
                 const float* bias, float* y);

// Scalar oracle of the integer path: per output pixel, its patch (K values in (ci, ky, kx) order)
// quantized with quantize_row_q8_0_act; per output channel sum_b isum_b * (d_w * d_a) in f32 in
// block order, then + bias. Other dtypes: conv2d_reference. If mag is non-null it receives, per
// output, sum_b |isum_b * d_w * d_a| + |bias| (the scale f32 rounding of any summation order of
// those terms is bounded by).
void conv2d_reference_qact(const ConvGeom& g, const float* x, const void* w, DType wtype,
                           const float* bias, float* y, double* mag = nullptr);

// Which path quantized weights take. Auto: the float path unless the backend was asked for it
// (Backend::set_quantized_conv_activations, the load option convActivations: 'q8_0') or the
// environment has SDNODE_CONV_INT8=1 (conv_int8.cpp says why it is off by default), then the integer path wherever
// a kernel exists (it measured faster on every SD shape). Int: the integer path wherever a kernel
// exists, whatever the environment (tests, benchmarks). Float: never the integer path.
enum class ConvQuantPath { Auto, Int, Float };
void conv_force_quant_path(ConvQuantPath p);
// Whether conv2d_int8 would take the integer path now for this weight type and kernel size.
bool conv_uses_int_path(DType wtype, int k);
// Tests: im2col and output transpose in portable code (what NEON levels run) on every level.
void conv_int8_force_portable_helpers(bool on);

}  // namespace sd
