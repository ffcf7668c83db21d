// AVX-512 conv micro-kernel: 12 rows x 32 pixels (24 zmm accumulators). Weights are broadcast
// from 12 row streams (A stays in L1 across the pixel panels of a task), patches are loaded.
#include <immintrin.h>

#include <cstdint>

#include "cpu/conv.h"

namespace sd {

void conv_ukr_avx512(int64_t kc, const float* a, int64_t lda, const float* b, float* c,
                     int64_t ldc, const float* init, bool accumulate) {
  constexpr int MR = kConvMrAvx512;
  __m512 acc[MR][2];
  if (accumulate) {
    for (int r = 0; r < MR; ++r) {
      acc[r][0] = _mm512_loadu_ps(c + r * ldc);
      acc[r][1] = _mm512_loadu_ps(c + r * ldc + 16);
    }
  } else {
    for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm512_set1_ps(init[r]);
  }
  const float* a0 = a;
  const float* a4 = a + 4 * lda;
  const float* a8 = a + 8 * lda;
  for (int64_t kk = 0; kk < kc; ++kk) {
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
    b += 32;
#define SD_ROW(r, base, i)                                   \
  {                                                          \
    const __m512 w = _mm512_set1_ps(base[(i) * lda + kk]);  \
    acc[r][0] = _mm512_fmadd_ps(w, b0, acc[r][0]);           \
    acc[r][1] = _mm512_fmadd_ps(w, b1, acc[r][1]);           \
  }
    SD_ROW(0, a0, 0) SD_ROW(1, a0, 1) SD_ROW(2, a0, 2) SD_ROW(3, a0, 3)
    SD_ROW(4, a4, 0) SD_ROW(5, a4, 1) SD_ROW(6, a4, 2) SD_ROW(7, a4, 3)
    SD_ROW(8, a8, 0) SD_ROW(9, a8, 1) SD_ROW(10, a8, 2) SD_ROW(11, a8, 3)
#undef SD_ROW
  }
  for (int r = 0; r < MR; ++r) {
    _mm512_storeu_ps(c + r * ldc, acc[r][0]);
    _mm512_storeu_ps(c + r * ldc + 16, acc[r][1]);
  }
}

float conv_fma_probe_avx512(int64_t iters) {
  __m512 acc[24];
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_fmadd_ps(acc[i], m, a);
  __m512 s = acc[0];
  for (int i = 1; i < 24; ++i) s = _mm512_add_ps(s, acc[i]);
  return _mm512_reduce_add_ps(s);
}

}  // namespace sd
