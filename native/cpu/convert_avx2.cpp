// AVX2 weight converters (see convert_kernels.h). Every result equals the scalar reference bit for
// bit: the same IEEE operations in the same order, round-half-away emulated exactly for q8_0.
#include <immintrin.h>

#include <cstring>

#include "cpu/convert_kernels.h"

namespace sd {
namespace {

// Largest |x| of a 32-float block, ignoring NaN as std::fmax does (max_ps returns its second
// operand when either is NaN, and the running maximum is never NaN).
inline float block_amax(const __m256 v[4]) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 mx = _mm256_setzero_ps();
  for (int j = 0; j < 4; ++j) mx = _mm256_max_ps(_mm256_andnot_ps(sign, v[j]), mx);
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

inline uint16_t half_bits(float d) { return static_cast<uint16_t>(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT)); }

// roundf: truncate, then step away from zero when the dropped fraction is >= 0.5 (exact: the
// fraction of a float below 2^23 is representable).
inline __m256i round_away(__m256 p) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 t = _mm256_round_ps(p, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(p, t));
  const __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  const __m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(p, sign));
  return _mm256_cvttps_epi32(_mm256_add_ps(t, _mm256_and_ps(up, one)));
}

}  // namespace

void convert_f16_to_f32_avx2(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i));
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(h));
    // F16C quiets signalling NaNs; the reference keeps the payload as is.
    const __m128i e = _mm_and_si128(h, _mm_set1_epi16(0x7C00));
    if (_mm_movemask_epi8(_mm_cmpeq_epi16(e, _mm_set1_epi16(0x7C00))) != 0) {
      for (int64_t k = i; k < i + 8; ++k) {
        const uint32_t b = x[k];
        if ((b & 0x7C00u) != 0x7C00u) continue;
        const uint32_t f = (b & 0x8000u) << 16 | 0x7F800000u | (b & 0x3FFu) << 13;
        std::memcpy(y + k, &f, 4);
      }
    }
  }
  for (; i < n; ++i) {
    const uint32_t b = x[i];
    if ((b & 0x7C00u) != 0x7C00u) {
      y[i] = _cvtsh_ss(x[i]);
      continue;
    }
    const uint32_t f = (b & 0x8000u) << 16 | 0x7F800000u | (b & 0x3FFu) << 13;
    std::memcpy(y + i, &f, 4);
  }
}

void convert_f32_to_f16_avx2(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  const __m256 inf = _mm256_castsi256_ps(_mm256_set1_epi32(0x7F800000));
  const __m256 abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    // NaN becomes 0x7E00 with its sign in the reference (F16C keeps payload bits).
    const __m256 a = _mm256_and_ps(v, abs);
    const int nan = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_castps_si256(a), _mm256_castps_si256(inf))));
    if (nan != 0) {
      for (int k = 0; k < 8; ++k) {
        if (!(nan >> k & 1)) continue;
        uint32_t b;
        std::memcpy(&b, x + i + k, 4);
        y[i + k] = static_cast<uint16_t>((b >> 16 & 0x8000u) | 0x7E00u);
      }
    }
  }
  for (; i < n; ++i) {
    uint32_t b;
    std::memcpy(&b, x + i, 4);
    y[i] = (b & 0x7FFFFFFFu) > 0x7F800000u ? static_cast<uint16_t>((b >> 16 & 0x8000u) | 0x7E00u)
                                           : static_cast<uint16_t>(_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT));
  }
}

// GGML's quantize_row_q8_0_ref: d = amax / 127, q = roundf(x * (1 / d)), 34-byte blocks.
void quantize_q8_0_avx2(const float* x, uint8_t* y, int64_t n) {
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t b = 0; b < n / 32; ++b, x += 32, y += 34) {
    __m256 v[4];
    for (int j = 0; j < 4; ++j) v[j] = _mm256_loadu_ps(x + 8 * j);
    const float d = block_amax(v) / 127.0f;
    const __m256 id = _mm256_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    const uint16_t dh = half_bits(d);
    std::memcpy(y, &dh, 2);
    __m256i q[4];
    for (int j = 0; j < 4; ++j) q[j] = round_away(_mm256_mul_ps(v[j], id));
    // |q| <= 127: the saturating packs are exact; they interleave 128-bit lanes, undone by order.
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + 2), _mm256_permutevar8x32_epi32(p, order));
  }
}

// GGML's quantize_row_q4_0_ref: the signed value of largest magnitude (first one on ties) gives
// d = max / -8; q = min(15, (int)(x / d + 8.5)); byte j holds elements j (low) and j + 16 (high).
void quantize_q4_0_avx2(const float* x, uint8_t* y, int64_t n) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t b = 0; b < n / 32; ++b, x += 32, y += 18) {
    __m256 v[4];
    for (int j = 0; j < 4; ++j) v[j] = _mm256_loadu_ps(x + 8 * j);
    const float amax = block_amax(v);
    float max = 0.0f;
    if (amax != 0.0f) {  // the reference keeps max = 0.0f (not -0.0f) for an all-zero block
      const __m256 a = _mm256_set1_ps(amax);
      uint32_t hit = 0;
      for (int j = 0; j < 4; ++j)
        hit |= static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, v[j]), a, _CMP_EQ_OQ))) << (8 * j);
      max = x[__builtin_ctz(hit)];
    }
    const float d = max / -8.0f;
    const __m256 id = _mm256_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    const uint16_t dh = half_bits(d);
    std::memcpy(y, &dh, 2);
    const __m256 half = _mm256_set1_ps(8.5f);
    const __m256i fifteen = _mm256_set1_epi32(15);
    __m256i q[4];
    for (int j = 0; j < 4; ++j)
      q[j] = _mm256_min_epi32(_mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(v[j], id), half)), fifteen);
    const __m256i lo = _mm256_or_si256(q[0], _mm256_slli_epi32(q[2], 4));  // bytes 0..7
    const __m256i hi = _mm256_or_si256(q[1], _mm256_slli_epi32(q[3], 4));  // bytes 8..15
    // Values are 0..255: packus to 16 then 8 bits, then gather the two 64-bit halves in order.
    const __m256i w = _mm256_packus_epi32(lo, hi);     // [lo0-3 hi0-3 | lo4-7 hi4-7]
    const __m256i bytes = _mm256_packus_epi16(w, w);   // per lane: 8 useful bytes, twice
    const __m256i ordered = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 0, 0, 0, 0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + 2), _mm256_castsi256_si128(ordered));
  }
}

}  // namespace sd
