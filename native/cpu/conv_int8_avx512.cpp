// AVX-512 helpers of the integer conv: per 16 patch positions, one (masked) load of 16 consecutive
// output pixels' values each (a gather for stride 2), a 16x16 register transpose, 16 row stores.
// Scalar code moving the same values element by element cost as much as the VNNI dot products.
#include <immintrin.h>

#include "cpu/conv_int8_kernels.h"

namespace sd {
namespace {

// r[j] lane u <- r[u] lane j.
void transpose16(__m512* r) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
    r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  // r[4i + c] lane L: rows 4i..4i+3 of column 4L + c.
  for (int c = 0; c < 4; ++c) {
    t[c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);
    t[4 + c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xdd);
    t[8 + c] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
    t[12 + c] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xdd);
  }
  for (int c = 0; c < 4; ++c) {
    r[c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0x88);
    r[8 + c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0xdd);
    r[4 + c] = _mm512_shuffle_f32x4(t[4 + c], t[12 + c], 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(t[4 + c], t[12 + c], 0xdd);
  }
}

}  // namespace

void conv_int8_im2col_avx512(const ConvGeom& g, const float* xn, const int64_t* rel,
                             const uint8_t* tky, const uint8_t* tkx, int64_t kc, int64_t oy,
                             int64_t ox0, int64_t len, float* a, int64_t lda) {
  const int64_t s = g.stride, iy0 = oy * s - g.pad_top, ix0 = ox0 * s - g.pad_left;
  bool rowok[8];
  for (int ky = 0; ky < g.k; ++ky) rowok[ky] = iy0 + ky >= 0 && iy0 + ky < g.H;
  const __m512i vidx = _mm512_mullo_epi32(
      _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
      _mm512_set1_epi32(static_cast<int>(s)));
  // Up to 8 groups of 16 pixels per pass, patch positions outermost: the rows a pass reads then
  // stream along the image row (group by group, the same few rows: no cache-set conflicts between
  // channels H*W apart).
  constexpr int kGroups = 8;
  for (int64_t b0 = 0; b0 < len; b0 += 16 * kGroups) {
    const int64_t groups_left = (len - b0 + 15) / 16;
    const int ng = static_cast<int>(groups_left < kGroups ? groups_left : kGroups);
    __mmask16 cm[kGroups][8];  // pixels whose column ix0 + s j + kx is inside the input
    int nv[kGroups];
    for (int q = 0; q < ng; ++q) {
      const int64_t j0 = b0 + 16 * q;
      nv[q] = static_cast<int>(len - j0 < 16 ? len - j0 : 16);
      for (int kx = 0; kx < g.k; ++kx) {
        unsigned m = 0;
        for (int j = 0; j < nv[q]; ++j) {
          const int64_t ix = ix0 + s * (j0 + j) + kx;
          if (ix >= 0 && ix < g.W) m |= 1u << j;
        }
        cm[q][kx] = static_cast<__mmask16>(m);
      }
    }
    for (int64_t t0 = 0; t0 < kc; t0 += 16) {
      for (int q = 0; q < ng; ++q) {
        const int64_t j0 = b0 + 16 * q, base = iy0 * g.W + ix0 + s * j0;
        __m512 v[16];
        for (int u = 0; u < 16; ++u) {
          const int64_t t = t0 + u;
          if (!rowok[tky[t]]) {
            v[u] = _mm512_setzero_ps();
            continue;
          }
          const float* p = xn + (rel[t] + base);
          v[u] = s == 1 ? _mm512_maskz_loadu_ps(cm[q][tkx[t]], p)
                        : _mm512_mask_i32gather_ps(_mm512_setzero_ps(), cm[q][tkx[t]], vidx, p, 4);
        }
        transpose16(v);
        float* ag = a + j0 * lda + t0;
        for (int j = 0; j < nv[q]; ++j) _mm512_storeu_ps(ag + j * lda, v[j]);
      }
    }
  }
}

void conv_int8_transpose_avx512(const float* src, int64_t lds, int64_t rows, int64_t cols,
                                float* dst, int64_t ldd) {
  int64_t r0 = 0;
  for (; r0 + 16 <= rows; r0 += 16) {
    int64_t c0 = 0;
    for (; c0 + 16 <= cols; c0 += 16) {
      __m512 v[16];
      for (int i = 0; i < 16; ++i) v[i] = _mm512_loadu_ps(src + (r0 + i) * lds + c0);
      transpose16(v);
      for (int i = 0; i < 16; ++i) _mm512_storeu_ps(dst + (c0 + i) * ldd + r0, v[i]);
    }
    for (int64_t c = c0; c < cols; ++c)
      for (int64_t r = r0; r < r0 + 16; ++r) dst[c * ldd + r] = src[r * lds + c];
  }
  for (int64_t c = 0; c < cols; ++c)
    for (int64_t r = r0; r < rows; ++r) dst[c * ldd + r] = src[r * lds + c];
}

}  // namespace sd
