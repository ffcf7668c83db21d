// NEON conv micro-kernel: 6 rows x 16 pixels (24 q-register accumulators).
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#include "cpu/conv.h"

namespace sd {

void conv_ukr_neon(int64_t kc, const float* a, int64_t lda, const float* b, const int64_t* boff,
                   float* c, int64_t ldc, const float* init, bool accumulate) {
  constexpr int MR = kConvMrNeon;
  float32x4_t acc[MR][4];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < 4; ++v)
      acc[r][v] = accumulate ? vld1q_f32(c + r * ldc + 4 * v) : vdupq_n_f32(init[r]);
  for (int64_t kk = 0; kk < kc; ++kk) {
    const float* bk = b + boff[kk];
    const float32x4_t b0 = vld1q_f32(bk), b1 = vld1q_f32(bk + 4), b2 = vld1q_f32(bk + 8),
                      b3 = vld1q_f32(bk + 12);
    for (int r = 0; r < MR; ++r) {
      const float w = a[r * lda + kk];
      acc[r][0] = vfmaq_n_f32(acc[r][0], b0, w);
      acc[r][1] = vfmaq_n_f32(acc[r][1], b1, w);
      acc[r][2] = vfmaq_n_f32(acc[r][2], b2, w);
      acc[r][3] = vfmaq_n_f32(acc[r][3], b3, w);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < 4; ++v) vst1q_f32(c + r * ldc + 4 * v, acc[r][v]);
}

// Weight rows -> f32 (layouts as in core/dtype.h). Same products as the scalar dequantizers
// (int -> f32 is exact, one multiply by the same d), so results match the reference's weights.
void conv_dequant_f16_neon(const void* x, float* y, int64_t n) {
  const auto* h = static_cast<const __fp16*>(x);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vcvt_f32_f16(vld1_f16(h + i)));
  for (; i < n; ++i) y[i] = static_cast<float>(h[i]);
}

void conv_dequant_q8_0_neon(const void* x, float* y, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(x);
  for (int64_t blk = 0; blk < n / 32; ++blk, p += 34, y += 32) {
    __fp16 h;
    std::memcpy(&h, p, 2);
    const float d = static_cast<float>(h);
    for (int q = 0; q < 2; ++q) {
      const int8x16_t v = vld1q_s8(reinterpret_cast<const int8_t*>(p + 2 + 16 * q));
      const int16x8_t lo = vmovl_s8(vget_low_s8(v)), hi = vmovl_s8(vget_high_s8(v));
      float* o = y + 16 * q;
      vst1q_f32(o + 0, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), d));
      vst1q_f32(o + 4, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_high_s16(lo))), d));
      vst1q_f32(o + 8, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), d));
      vst1q_f32(o + 12, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_high_s16(hi))), d));
    }
  }
}

void conv_dequant_q4_0_neon(const void* x, float* y, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(x);
  const uint8x16_t mask = vdupq_n_u8(0x0F);
  const int8x16_t eight = vdupq_n_s8(8);
  for (int64_t blk = 0; blk < n / 32; ++blk, p += 18, y += 32) {
    __fp16 h;
    std::memcpy(&h, p, 2);
    const float d = static_cast<float>(h);
    const uint8x16_t q = vld1q_u8(p + 2);
    const int8x16_t halves[2] = {vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, mask)), eight),
                                 vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), eight)};
    for (int h = 0; h < 2; ++h) {
      const int16x8_t lo = vmovl_s8(vget_low_s8(halves[h])), hi = vmovl_s8(vget_high_s8(halves[h]));
      float* o = y + 16 * h;
      vst1q_f32(o + 0, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), d));
      vst1q_f32(o + 4, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_high_s16(lo))), d));
      vst1q_f32(o + 8, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), d));
      vst1q_f32(o + 12, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_high_s16(hi))), d));
    }
  }
}

}  // namespace sd
