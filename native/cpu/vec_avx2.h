// 8 x f32 AVX2+FMA vector for the generic kernels (simd_*.inc). Include only from *_avx2.cpp:
// everything here has internal linkage so no AVX2 code leaks into generic translation units.
#pragma once
#include <immintrin.h>

#include <cstdint>

#define SD_ISA_NS avx2

namespace sd {
namespace {

struct V {
  static constexpr int W = 8;
  static constexpr int kMR = 4;  // register block: 4 rows x 3 vectors = 12 accumulators
  static constexpr int kNC = 3;
  __m256 v;
  static V load(const float* p) { return {_mm256_loadu_ps(p)}; }
  static V set1(float x) { return {_mm256_set1_ps(x)}; }
  static V zero() { return {_mm256_setzero_ps()}; }
  void store(float* p) const { _mm256_storeu_ps(p, v); }
  friend V operator+(V a, V b) { return {_mm256_add_ps(a.v, b.v)}; }
  friend V operator-(V a, V b) { return {_mm256_sub_ps(a.v, b.v)}; }
  friend V operator*(V a, V b) { return {_mm256_mul_ps(a.v, b.v)}; }
  friend V operator/(V a, V b) { return {_mm256_div_ps(a.v, b.v)}; }
  // a * b + c, fused.
  static V fma(V a, V b, V c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
  // c - a * b, fused.
  static V fnma(V a, V b, V c) { return {_mm256_fnmadd_ps(a.v, b.v, c.v)}; }
  // 1/a to ~1 ulp: 12-bit estimate plus one Newton step (cheaper than vdivps in exp-heavy loops).
  static V rcp(V a) {
    const __m256 r = _mm256_rcp_ps(a.v);
    return {_mm256_fmadd_ps(r, _mm256_fnmadd_ps(a.v, r, _mm256_set1_ps(1.0f)), r)};
  }
  static V max(V a, V b) { return {_mm256_max_ps(a.v, b.v)}; }
  static V min(V a, V b) { return {_mm256_min_ps(a.v, b.v)}; }
  static V round(V a) { return {_mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
  // 2^n for integral n in [-127, 127] (n = -127 gives +0).
  static V pow2(V n) {
    const __m256i i = _mm256_add_epi32(_mm256_cvtps_epi32(n.v), _mm256_set1_epi32(127));
    return {_mm256_castsi256_ps(_mm256_slli_epi32(i, 23))};
  }
  static V abs(V a) { return {_mm256_andnot_ps(_mm256_set1_ps(-0.0f), a.v)}; }
  // |mag| with the sign of s.
  static V copysign(V mag, V s) {
    const __m256 m = _mm256_set1_ps(-0.0f);
    return {_mm256_or_ps(_mm256_andnot_ps(m, mag.v), _mm256_and_ps(m, s.v))};
  }
  static float hsum(V a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float hmax(V a) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};

}  // namespace
}  // namespace sd
