// ISA helpers of the integer conv (conv_int8.cpp): the block im2col and the C -> NCHW transpose,
// with 16x16 (AVX-512) or 8x8 (AVX2) register transposes. Plain functions, so no inline code is
// shared between ISA translation units and generic code.
#pragma once
#include <cstdint>

#include "cpu/conv.h"

namespace sd {

// Patch values of `len` output pixels (n, oy, ox0 + j) for chunk positions t < kc:
//   a[j * lda + t] = x[n][ci][iy][ix] (0 outside the input), where patch position t has
//   ci * H * W + ky * W + kx = rel[t], ky = tky[t], kx = tkx[t], iy = oy * stride - pad_top + ky,
//   ix = (ox0 + j) * stride - pad_left + kx.
// xn points at image n. kc is a multiple of 16; k <= 8.
using ConvIm2colFn = void (*)(const ConvGeom& g, const float* xn, const int64_t* rel,
                              const uint8_t* tky, const uint8_t* tkx, int64_t kc, int64_t oy,
                              int64_t ox0, int64_t len, float* a, int64_t lda);
// dst[c * ldd + r] = src[r * lds + c] for r < rows, c < cols.
using ConvTransposeFn = void (*)(const float* src, int64_t lds, int64_t rows, int64_t cols,
                                 float* dst, int64_t ldd);

#if defined(SDNODE_HAVE_AVX2)
void conv_int8_im2col_avx2(const ConvGeom& g, const float* xn, const int64_t* rel,
                           const uint8_t* tky, const uint8_t* tkx, int64_t kc, int64_t oy,
                           int64_t ox0, int64_t len, float* a, int64_t lda);
void conv_int8_transpose_avx2(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst,
                              int64_t ldd);
#endif
#if defined(SDNODE_HAVE_AVX512)
void conv_int8_im2col_avx512(const ConvGeom& g, const float* xn, const int64_t* rel,
                             const uint8_t* tky, const uint8_t* tkx, int64_t kc, int64_t oy,
                             int64_t ox0, int64_t len, float* a, int64_t lda);
void conv_int8_transpose_avx512(const float* src, int64_t lds, int64_t rows, int64_t cols,
                                float* dst, int64_t ldd);
#endif

}  // namespace sd
