// NEON conv micro-kernel: 6 rows x 16 pixels (24 q-register accumulators).
#include <arm_neon.h>

#include <cstdint>

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

}  // namespace sd
