// AVX2+FMA conv kernels: a 6x16 micro-kernel (12 ymm accumulators) and weight-row dequantizers.
// Plain loops and intrinsics only (no shared inline helpers: see the ODR note in the team docs).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "cpu/conv.h"

namespace sd {
namespace {

inline float half_scale(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

}  // namespace

void conv_ukr_avx2(int64_t kc, const float* a, int64_t lda, const float* b, const int64_t* boff,
                   float* c, int64_t ldc, const float* init, bool accumulate) {
  __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
  if (accumulate) {
    c00 = _mm256_loadu_ps(c + 0 * ldc); c01 = _mm256_loadu_ps(c + 0 * ldc + 8);
    c10 = _mm256_loadu_ps(c + 1 * ldc); c11 = _mm256_loadu_ps(c + 1 * ldc + 8);
    c20 = _mm256_loadu_ps(c + 2 * ldc); c21 = _mm256_loadu_ps(c + 2 * ldc + 8);
    c30 = _mm256_loadu_ps(c + 3 * ldc); c31 = _mm256_loadu_ps(c + 3 * ldc + 8);
    c40 = _mm256_loadu_ps(c + 4 * ldc); c41 = _mm256_loadu_ps(c + 4 * ldc + 8);
    c50 = _mm256_loadu_ps(c + 5 * ldc); c51 = _mm256_loadu_ps(c + 5 * ldc + 8);
  } else {
    c00 = c01 = _mm256_broadcast_ss(init + 0);
    c10 = c11 = _mm256_broadcast_ss(init + 1);
    c20 = c21 = _mm256_broadcast_ss(init + 2);
    c30 = c31 = _mm256_broadcast_ss(init + 3);
    c40 = c41 = _mm256_broadcast_ss(init + 4);
    c50 = c51 = _mm256_broadcast_ss(init + 5);
  }
  const float* a0 = a;
  const float* a3 = a + 3 * lda;
  for (int64_t kk = 0; kk < kc; ++kk) {
    const float* bk = b + boff[kk];
    const __m256 b0 = _mm256_loadu_ps(bk), b1 = _mm256_loadu_ps(bk + 8);
    __m256 w = _mm256_broadcast_ss(a0 + kk);
    c00 = _mm256_fmadd_ps(w, b0, c00); c01 = _mm256_fmadd_ps(w, b1, c01);
    w = _mm256_broadcast_ss(a0 + lda + kk);
    c10 = _mm256_fmadd_ps(w, b0, c10); c11 = _mm256_fmadd_ps(w, b1, c11);
    w = _mm256_broadcast_ss(a0 + 2 * lda + kk);
    c20 = _mm256_fmadd_ps(w, b0, c20); c21 = _mm256_fmadd_ps(w, b1, c21);
    w = _mm256_broadcast_ss(a3 + kk);
    c30 = _mm256_fmadd_ps(w, b0, c30); c31 = _mm256_fmadd_ps(w, b1, c31);
    w = _mm256_broadcast_ss(a3 + lda + kk);
    c40 = _mm256_fmadd_ps(w, b0, c40); c41 = _mm256_fmadd_ps(w, b1, c41);
    w = _mm256_broadcast_ss(a3 + 2 * lda + kk);
    c50 = _mm256_fmadd_ps(w, b0, c50); c51 = _mm256_fmadd_ps(w, b1, c51);
  }
  _mm256_storeu_ps(c + 0 * ldc, c00); _mm256_storeu_ps(c + 0 * ldc + 8, c01);
  _mm256_storeu_ps(c + 1 * ldc, c10); _mm256_storeu_ps(c + 1 * ldc + 8, c11);
  _mm256_storeu_ps(c + 2 * ldc, c20); _mm256_storeu_ps(c + 2 * ldc + 8, c21);
  _mm256_storeu_ps(c + 3 * ldc, c30); _mm256_storeu_ps(c + 3 * ldc + 8, c31);
  _mm256_storeu_ps(c + 4 * ldc, c40); _mm256_storeu_ps(c + 4 * ldc + 8, c41);
  _mm256_storeu_ps(c + 5 * ldc, c50); _mm256_storeu_ps(c + 5 * ldc + 8, c51);
}

void conv_dequant_f16_avx2(const void* x, float* y, int64_t n) {
  const auto* h = static_cast<const uint16_t*>(x);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i))));
  for (; i < n; ++i) y[i] = _cvtsh_ss(h[i]);
}

// Block layouts as in core/dtype.h: q8_0 = {f16 d, int8 qs[32]} (34 B), q4_0 = {f16 d, uint8 qs[16]}
// (18 B; low nibbles are elements 0..15, high nibbles 16..31, both offset by 8).
void conv_dequant_q8_0_avx2(const void* x, float* y, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(x);
  for (int64_t blk = 0; blk < n / 32; ++blk, p += 34, y += 32) {
    const __m256 d = _mm256_set1_ps(half_scale(p));
    for (int q = 0; q < 4; ++q) {
      const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 2 + 8 * q));
      _mm256_storeu_ps(y + 8 * q, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)), d));
    }
  }
}

void conv_dequant_q4_0_avx2(const void* x, float* y, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(x);
  const __m128i mask = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
  for (int64_t blk = 0; blk < n / 32; ++blk, p += 18, y += 32) {
    const __m256 d = _mm256_set1_ps(half_scale(p));
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2));
    const __m128i lo = _mm_sub_epi8(_mm_and_si128(q, mask), eight);
    const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), mask), eight);
    _mm256_storeu_ps(y + 0, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), d));
    _mm256_storeu_ps(y + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), d));
    _mm256_storeu_ps(y + 16, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), d));
    _mm256_storeu_ps(y + 24, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), d));
  }
}

float conv_fma_probe_avx2(int64_t iters) {
  // Named accumulators (an array would live on the stack at -O3).
  __m256 a0 = _mm256_set1_ps(0.0f), a1 = _mm256_set1_ps(1.0f), a2 = _mm256_set1_ps(2.0f), a3 = _mm256_set1_ps(3.0f), a4 = _mm256_set1_ps(4.0f), a5 = _mm256_set1_ps(5.0f), a6 = _mm256_set1_ps(6.0f), a7 = _mm256_set1_ps(7.0f), a8 = _mm256_set1_ps(8.0f), a9 = _mm256_set1_ps(9.0f), a10 = _mm256_set1_ps(10.0f), a11 = _mm256_set1_ps(11.0f);
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
    a0 = _mm256_fmadd_ps(a0, m, c); a1 = _mm256_fmadd_ps(a1, m, c); a2 = _mm256_fmadd_ps(a2, m, c); a3 = _mm256_fmadd_ps(a3, m, c); a4 = _mm256_fmadd_ps(a4, m, c); a5 = _mm256_fmadd_ps(a5, m, c); a6 = _mm256_fmadd_ps(a6, m, c); a7 = _mm256_fmadd_ps(a7, m, c); a8 = _mm256_fmadd_ps(a8, m, c); a9 = _mm256_fmadd_ps(a9, m, c); a10 = _mm256_fmadd_ps(a10, m, c); a11 = _mm256_fmadd_ps(a11, m, c);
  }
  __m256 s = a0;
  s = _mm256_add_ps(s, a1); s = _mm256_add_ps(s, a2); s = _mm256_add_ps(s, a3); s = _mm256_add_ps(s, a4); s = _mm256_add_ps(s, a5); s = _mm256_add_ps(s, a6); s = _mm256_add_ps(s, a7); s = _mm256_add_ps(s, a8); s = _mm256_add_ps(s, a9); s = _mm256_add_ps(s, a10); s = _mm256_add_ps(s, a11);
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0] + out[7];
}

}  // namespace sd
