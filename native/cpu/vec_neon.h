// 4 x f32 NEON vector for the generic kernels (simd_*.inc). Include only from *_neon.cpp.
#pragma once
#include <arm_neon.h>

#include <cstdint>

#define SD_ISA_NS neon

namespace sd {
namespace {

struct V {
  static constexpr int W = 4;
  static constexpr int kMR = 6;  // register block: 6 rows x 4 vectors = 24 of 32 registers
  static constexpr int kNC = 4;
  float32x4_t v;
  static V load(const float* p) { return {vld1q_f32(p)}; }
  static V set1(float x) { return {vdupq_n_f32(x)}; }
  static V zero() { return {vdupq_n_f32(0.0f)}; }
  void store(float* p) const { vst1q_f32(p, v); }
  friend V operator+(V a, V b) { return {vaddq_f32(a.v, b.v)}; }
  friend V operator-(V a, V b) { return {vsubq_f32(a.v, b.v)}; }
  friend V operator*(V a, V b) { return {vmulq_f32(a.v, b.v)}; }
  friend V operator/(V a, V b) { return {vdivq_f32(a.v, b.v)}; }
  static V fma(V a, V b, V c) { return {vfmaq_f32(c.v, a.v, b.v)}; }
  static V fnma(V a, V b, V c) { return {vfmsq_f32(c.v, a.v, b.v)}; }
  static V rcp(V a) { return {vdivq_f32(vdupq_n_f32(1.0f), a.v)}; }
  static V max(V a, V b) { return {vmaxq_f32(a.v, b.v)}; }
  static V min(V a, V b) { return {vminq_f32(a.v, b.v)}; }
  static V round(V a) { return {vrndnq_f32(a.v)}; }
  static V pow2(V n) {
    const int32x4_t i = vaddq_s32(vcvtnq_s32_f32(n.v), vdupq_n_s32(127));
    return {vreinterpretq_f32_s32(vshlq_n_s32(i, 23))};
  }
  static V abs(V a) { return {vabsq_f32(a.v)}; }
  static V copysign(V mag, V s) {
    const uint32x4_t m = vdupq_n_u32(0x80000000u);
    return {vbslq_f32(m, s.v, mag.v)};
  }
  static float hsum(V a) { return vaddvq_f32(a.v); }
  static float hmax(V a) { return vmaxvq_f32(a.v); }
};

}  // namespace
}  // namespace sd
