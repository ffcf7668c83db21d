// CPU conv2d: implicit GEMM on NCHW. For each image, y[Co, P] = W[Co, K] . patches[K, P] with
// K = Ci*k*k and P = Ho*Wo, so output tiles land in NCHW rows directly. Patches are packed per tile
// (K-block x pixel-panel) into per-thread scratch; never a full-image im2col buffer.
//
// ConvGeom carries asymmetric padding: pad_top/pad_left shift the window, and Ho/Wo decide how far
// the window runs past the bottom/right edge (those samples are zero). So VAE-encoder downsampling
// (F.pad(x, (0,1,0,1)) then 3x3 stride 2 pad 0) is pad_top = pad_left = 0 with Ho = H/2, Wo = W/2.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace sd {

class CpuBackend;

struct ConvGeom {
  int64_t N, Ci, H, W;  // input
  int64_t Co, Ho, Wo;   // output
  int k, stride, pad_top, pad_left;
};

// The optimised path: blocked implicit GEMM on the backend's pool, kernels for isa_active().
// x: [N, Ci, H, W] f32; w: Co rows of K = Ci*k*k in wtype (quantized needs K % 32 == 0); bias: Co
// or null; y: [N, Co, Ho, Wo] f32. Each output element is computed by one task with a fixed
// K order, so results do not depend on the thread count.
void conv2d_cpu(CpuBackend& be, const ConvGeom& g, const float* x, const void* w, DType wtype,
                const float* bias, float* y);

// Scalar oracle: direct loops, double accumulation. If abs_sum is non-null it receives, per output,
// sum |x * w| + |bias| (the scale the rounding error of any float summation order is bounded by).
void conv2d_reference(const ConvGeom& g, const float* x, const void* w, DType wtype,
                      const float* bias, float* y, double* abs_sum = nullptr);

// Winograd F(2x2, 3x3) for 3x3 stride-1 pad-1 convs (conv_winograd.cpp), tried first by
// conv2d_cpu: computes y and returns true, or returns false where it does not apply (other
// geometry, ISA levels without its kernels, shapes where it measured slower). On by default;
// SDNODE_CONV_WINOGRAD=0 turns it off, =all applies it wherever the geometry allows. Tests force
// it with conv_force_winograd (On: wherever the geometry allows).
bool conv2d_winograd(CpuBackend& be, const ConvGeom& g, const float* x, const void* w,
                     DType wtype, const float* bias, float* y);
enum class ConvWinograd { Auto, Off, On };
void conv_force_winograd(ConvWinograd mode);

// Internal to conv2d_cpu (conv_pack.cpp): packs patches[k0 .. k0+kc, p0 .. p0+nv) of image xn
// ([Ci, H, W]) as dst[kk * nr + j], zero beyond nv and outside the input.
void conv_pack_patches(const ConvGeom& g, const float* xn, int64_t k0, int64_t kc, int64_t p0,
                       int64_t nv, int nr, float* dst);

// ---- kernels (ISA translation units export these plain functions) ------------------------------
// Micro-kernel: C[r, j] (r < MR, j < NR; row stride ldc) = (accumulate ? C : init[r]) +
//   sum_{kk < kc} A[r * lda + kk] * b[boff[kk] + j].
// A: MR weight rows (f32). B row kk is NR floats at b + boff[kk]: a packed panel (boff = kk * NR)
// or taps read in place from a zero-padded input tile (boff = channel/row/column offset). kc >= 1.
using ConvUkr = void (*)(int64_t kc, const float* a, int64_t lda, const float* b,
                         const int64_t* boff, float* c, int64_t ldc, const float* init,
                         bool accumulate);
// Weight row -> f32 (n elements, a multiple of 32 for the block types; `x` points at the row start).
using ConvDequant = void (*)(const void* x, float* y, int64_t n);

#if defined(SDNODE_HAVE_AVX2)
constexpr int kConvMrAvx2 = 6, kConvNrAvx2 = 16;
void conv_ukr_avx2(int64_t kc, const float* a, int64_t lda, const float* b, const int64_t* boff,
                   float* c, int64_t ldc, const float* init, bool accumulate);
void conv_dequant_f16_avx2(const void* x, float* y, int64_t n);
void conv_dequant_q8_0_avx2(const void* x, float* y, int64_t n);
void conv_dequant_q4_0_avx2(const void* x, float* y, int64_t n);
// FMA throughput probe for the benchmark: iters x 12 independent 8-wide FMAs.
float conv_fma_probe_avx2(int64_t iters);
#endif
#if defined(SDNODE_HAVE_AVX512)
constexpr int kConvMrAvx512 = 12, kConvNrAvx512 = 32;
void conv_ukr_avx512(int64_t kc, const float* a, int64_t lda, const float* b,
                     const int64_t* boff, float* c, int64_t ldc, const float* init,
                     bool accumulate);
// iters x 24 independent 16-wide FMAs.
float conv_fma_probe_avx512(int64_t iters);
#endif
#if defined(SDNODE_HAVE_NEON)
constexpr int kConvMrNeon = 6, kConvNrNeon = 16;
void conv_ukr_neon(int64_t kc, const float* a, int64_t lda, const float* b, const int64_t* boff,
                   float* c, int64_t ldc, const float* init, bool accumulate);
void conv_dequant_f16_neon(const void* x, float* y, int64_t n);
void conv_dequant_q8_0_neon(const void* x, float* y, int64_t n);
void conv_dequant_q4_0_neon(const void* x, float* y, int64_t n);
#endif

}  // namespace sd
