// AVX-512 conv micro-kernel: 12 rows x 32 pixels (24 zmm accumulators). Weights are broadcast
// from 12 row streams (A stays in L1 across the pixel panels of a task), patches are loaded.
#include <immintrin.h>

#include <cstdint>

#include "cpu/conv.h"

namespace sd {

void conv_ukr_avx512(int64_t kc, const float* a, int64_t lda, const float* b,
                     const int64_t* boff, float* c, int64_t ldc, const float* init,
                     bool accumulate) {
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
    const float* bk = b + boff[kk];
    const __m512 b0 = _mm512_loadu_ps(bk), b1 = _mm512_loadu_ps(bk + 16);
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
  // Named accumulators (an array would live on the stack at -O3).
  __m512 a0 = _mm512_set1_ps(0.0f), a1 = _mm512_set1_ps(1.0f), a2 = _mm512_set1_ps(2.0f), a3 = _mm512_set1_ps(3.0f), a4 = _mm512_set1_ps(4.0f), a5 = _mm512_set1_ps(5.0f), a6 = _mm512_set1_ps(6.0f), a7 = _mm512_set1_ps(7.0f), a8 = _mm512_set1_ps(8.0f), a9 = _mm512_set1_ps(9.0f), a10 = _mm512_set1_ps(10.0f), a11 = _mm512_set1_ps(11.0f), a12 = _mm512_set1_ps(12.0f), a13 = _mm512_set1_ps(13.0f), a14 = _mm512_set1_ps(14.0f), a15 = _mm512_set1_ps(15.0f), a16 = _mm512_set1_ps(16.0f), a17 = _mm512_set1_ps(17.0f), a18 = _mm512_set1_ps(18.0f), a19 = _mm512_set1_ps(19.0f), a20 = _mm512_set1_ps(20.0f), a21 = _mm512_set1_ps(21.0f), a22 = _mm512_set1_ps(22.0f), a23 = _mm512_set1_ps(23.0f);
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
    a0 = _mm512_fmadd_ps(a0, m, c); a1 = _mm512_fmadd_ps(a1, m, c); a2 = _mm512_fmadd_ps(a2, m, c); a3 = _mm512_fmadd_ps(a3, m, c); a4 = _mm512_fmadd_ps(a4, m, c); a5 = _mm512_fmadd_ps(a5, m, c); a6 = _mm512_fmadd_ps(a6, m, c); a7 = _mm512_fmadd_ps(a7, m, c); a8 = _mm512_fmadd_ps(a8, m, c); a9 = _mm512_fmadd_ps(a9, m, c); a10 = _mm512_fmadd_ps(a10, m, c); a11 = _mm512_fmadd_ps(a11, m, c); a12 = _mm512_fmadd_ps(a12, m, c); a13 = _mm512_fmadd_ps(a13, m, c); a14 = _mm512_fmadd_ps(a14, m, c); a15 = _mm512_fmadd_ps(a15, m, c); a16 = _mm512_fmadd_ps(a16, m, c); a17 = _mm512_fmadd_ps(a17, m, c); a18 = _mm512_fmadd_ps(a18, m, c); a19 = _mm512_fmadd_ps(a19, m, c); a20 = _mm512_fmadd_ps(a20, m, c); a21 = _mm512_fmadd_ps(a21, m, c); a22 = _mm512_fmadd_ps(a22, m, c); a23 = _mm512_fmadd_ps(a23, m, c);
  }
  __m512 s = a0;
  s = _mm512_add_ps(s, a1); s = _mm512_add_ps(s, a2); s = _mm512_add_ps(s, a3); s = _mm512_add_ps(s, a4); s = _mm512_add_ps(s, a5); s = _mm512_add_ps(s, a6); s = _mm512_add_ps(s, a7); s = _mm512_add_ps(s, a8); s = _mm512_add_ps(s, a9); s = _mm512_add_ps(s, a10); s = _mm512_add_ps(s, a11); s = _mm512_add_ps(s, a12); s = _mm512_add_ps(s, a13); s = _mm512_add_ps(s, a14); s = _mm512_add_ps(s, a15); s = _mm512_add_ps(s, a16); s = _mm512_add_ps(s, a17); s = _mm512_add_ps(s, a18); s = _mm512_add_ps(s, a19); s = _mm512_add_ps(s, a20); s = _mm512_add_ps(s, a21); s = _mm512_add_ps(s, a22); s = _mm512_add_ps(s, a23);
  return _mm512_reduce_add_ps(s);
}

}  // namespace sd
