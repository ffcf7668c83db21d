// AVX2 helpers of the integer conv: per 8 patch positions, one masked load of 8 consecutive output
// pixels' values each (a gather for stride 2), an 8x8 register transpose, 8 row stores.
#include <immintrin.h>

#include "cpu/conv_int8_kernels.h"

namespace sd {
namespace {

// r[j] lane u <- r[u] lane j.
void transpose8(__m256* r) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

}  // namespace

void conv_int8_im2col_avx2(const ConvGeom& g, const float* xn, const int64_t* rel,
                           const uint8_t* tky, const uint8_t* tkx, int64_t kc, int64_t oy,
                           int64_t ox0, int64_t len, float* a, int64_t lda) {
  const int64_t s = g.stride, iy0 = oy * s - g.pad_top, ix0 = ox0 * s - g.pad_left;
  bool rowok[8];
  for (int ky = 0; ky < g.k; ++ky) rowok[ky] = iy0 + ky >= 0 && iy0 + ky < g.H;
  const __m256i vidx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                          _mm256_set1_epi32(static_cast<int>(s)));
  // Up to 16 groups of 8 pixels per pass, patch positions outermost (see the AVX-512 version).
  constexpr int kGroups = 16;
  for (int64_t b0 = 0; b0 < len; b0 += 8 * kGroups) {
    const int64_t groups_left = (len - b0 + 7) / 8;
    const int ng = static_cast<int>(groups_left < kGroups ? groups_left : kGroups);
    alignas(32) int32_t cm[kGroups][8][8];  // per group and kx: lane j all ones if inside the input
    int nv[kGroups];
    for (int q = 0; q < ng; ++q) {
      const int64_t j0 = b0 + 8 * q;
      nv[q] = static_cast<int>(len - j0 < 8 ? len - j0 : 8);
      for (int kx = 0; kx < g.k; ++kx)
        for (int j = 0; j < 8; ++j) {
          const int64_t ix = ix0 + s * (j0 + j) + kx;
          cm[q][kx][j] = (j < nv[q] && ix >= 0 && ix < g.W) ? -1 : 0;
        }
    }
    for (int64_t t0 = 0; t0 < kc; t0 += 8) {
      for (int q = 0; q < ng; ++q) {
        const int64_t j0 = b0 + 8 * q, base = iy0 * g.W + ix0 + s * j0;
        __m256 v[8];
        for (int u = 0; u < 8; ++u) {
          const int64_t t = t0 + u;
          if (!rowok[tky[t]]) {
            v[u] = _mm256_setzero_ps();
            continue;
          }
          const float* p = xn + (rel[t] + base);
          const __m256i m = _mm256_load_si256(reinterpret_cast<const __m256i*>(cm[q][tkx[t]]));
          v[u] = s == 1 ? _mm256_maskload_ps(p, m)
                        : _mm256_mask_i32gather_ps(_mm256_setzero_ps(), p, vidx, _mm256_castsi256_ps(m), 4);
        }
        transpose8(v);
        float* ag = a + j0 * lda + t0;
        for (int j = 0; j < nv[q]; ++j) _mm256_storeu_ps(ag + j * lda, v[j]);
      }
    }
  }
}

void conv_int8_transpose_avx2(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst,
                              int64_t ldd) {
  int64_t r0 = 0;
  for (; r0 + 8 <= rows; r0 += 8) {
    int64_t c0 = 0;
    for (; c0 + 8 <= cols; c0 += 8) {
      __m256 v[8];
      for (int i = 0; i < 8; ++i) v[i] = _mm256_loadu_ps(src + (r0 + i) * lds + c0);
      transpose8(v);
      for (int i = 0; i < 8; ++i) _mm256_storeu_ps(dst + (c0 + i) * ldd + r0, v[i]);
    }
    for (int64_t c = c0; c < cols; ++c)
      for (int64_t r = r0; r < r0 + 8; ++r) dst[c * ldd + r] = src[r * lds + c];
  }
  for (int64_t c = 0; c < cols; ++c)
    for (int64_t r = r0; r < rows; ++r) dst[c * ldd + r] = src[r * lds + c];
}

}  // namespace sd
