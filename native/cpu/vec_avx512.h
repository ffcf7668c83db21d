// 16 x f32 AVX-512F vector for the generic kernels (simd_*.inc). Include only from *_avx512.cpp:
// everything here has internal linkage so no AVX-512 code leaks into generic translation units.
#pragma once
// GCC 12 reports its own AVX-512 intrinsics (which pass _mm512_undefined_*() as masked sources)
// as (maybe-)uninitialized; the pragmas must precede the intrinsic headers to cover them.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <cstdint>

#define SD_ISA_NS avx512

namespace sd {
namespace {

struct V {
  static constexpr int W = 16;
  static constexpr int kMR = 6;  // register block: 6 rows x 4 vectors = 24 of 32 registers
  static constexpr int kNC = 4;
  __m512 v;
  static V load(const float* p) { return {_mm512_loadu_ps(p)}; }
  static V set1(float x) { return {_mm512_set1_ps(x)}; }
  static V zero() { return {_mm512_setzero_ps()}; }
  void store(float* p) const { _mm512_storeu_ps(p, v); }
  friend V operator+(V a, V b) { return {_mm512_add_ps(a.v, b.v)}; }
  friend V operator-(V a, V b) { return {_mm512_sub_ps(a.v, b.v)}; }
  friend V operator*(V a, V b) { return {_mm512_mul_ps(a.v, b.v)}; }
  friend V operator/(V a, V b) { return {_mm512_div_ps(a.v, b.v)}; }
  static V fma(V a, V b, V c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
  static V fnma(V a, V b, V c) { return {_mm512_fnmadd_ps(a.v, b.v, c.v)}; }
  // 1/a to ~1 ulp: 14-bit estimate plus one Newton step (512-bit vdivps is slow).
  static V rcp(V a) {
    const __m512 r = _mm512_rcp14_ps(a.v);
    return {_mm512_fmadd_ps(r, _mm512_fnmadd_ps(a.v, r, _mm512_set1_ps(1.0f)), r)};
  }
  static V max(V a, V b) { return {_mm512_max_ps(a.v, b.v)}; }
  static V min(V a, V b) { return {_mm512_min_ps(a.v, b.v)}; }
  static V round(V a) { return {_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
  static V pow2(V n) {
    const __m512i i = _mm512_add_epi32(_mm512_cvtps_epi32(n.v), _mm512_set1_epi32(127));
    return {_mm512_castsi512_ps(_mm512_slli_epi32(i, 23))};
  }
  static V abs(V a) { return {_mm512_abs_ps(a.v)}; }
  static V copysign(V mag, V s) {
    const __m512i m = _mm512_set1_epi32(static_cast<int>(0x80000000u));
    const __m512i r = _mm512_ternarylogic_epi32(m, _mm512_castps_si512(s.v), _mm512_castps_si512(mag.v), 0xCA);  // m ? s : mag
    return {_mm512_castsi512_ps(r)};
  }
  // Tree reductions: swap 256-bit halves, 128-bit quarters, then pairs and neighbours in-lane.
  static float hsum(V a) {
    __m512 s = _mm512_add_ps(a.v, _mm512_mask_shuffle_f32x4(a.v, 0xFFFF, a.v, a.v, 0x4E));
    s = _mm512_add_ps(s, _mm512_mask_shuffle_f32x4(s, 0xFFFF, s, s, 0xB1));
    s = _mm512_add_ps(s, _mm512_mask_permute_ps(s, 0xFFFF, s, 0x4E));
    s = _mm512_add_ps(s, _mm512_mask_permute_ps(s, 0xFFFF, s, 0xB1));
    return _mm512_cvtss_f32(s);
  }
  static float hmax(V a) {
    __m512 s = _mm512_max_ps(a.v, _mm512_mask_shuffle_f32x4(a.v, 0xFFFF, a.v, a.v, 0x4E));
    s = _mm512_max_ps(s, _mm512_mask_shuffle_f32x4(s, 0xFFFF, s, s, 0xB1));
    s = _mm512_max_ps(s, _mm512_mask_permute_ps(s, 0xFFFF, s, 0x4E));
    s = _mm512_max_ps(s, _mm512_mask_permute_ps(s, 0xFFFF, s, 0xB1));
    return _mm512_cvtss_f32(s);
  }
};

}  // namespace
}  // namespace sd
