// NEON (aarch64 baseline) GEMM kernels: f32 micro-kernel 8x12 (24 q-register accumulators).
// Quantized weights take the dequantize-to-f32 path here; gemm_dotprod.cpp has the integer path.
#include <arm_neon.h>

#include <cstring>

#include "core/quant.h"
#include "cpu/gemm_kernels.h"

namespace sd {
namespace gemmk {
namespace {

constexpr int kMr = 8, kNr = 12;

void to_f32(DType t, const uint8_t* src, float* dst, int64_t kk) {
  if (t == DType::F16) {
    const auto* h = reinterpret_cast<const uint16_t*>(src);
    int64_t k = 0;
    for (; k + 4 <= kk; k += 4) vst1q_f32(dst + k, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h + k))));
    if (k < kk) to_f32_row(t, h + k, dst + k, kk - k);
  } else {
    to_f32_row(t, src, dst, kk);
  }
}

void kernel_f32(int64_t kk, const float* at, const float* panel, float* C, int64_t ldc, int mv,
                int nv, bool accumulate, const float* bias) {
  float32x4_t c[kMr][3];
  for (int i = 0; i < kMr; ++i) c[i][0] = c[i][1] = c[i][2] = vdupq_n_f32(0.0f);
  for (int64_t k = 0; k < kk; ++k) {
    const float* w = panel + k * kNr;
    const float32x4_t w0 = vld1q_f32(w), w1 = vld1q_f32(w + 4), w2 = vld1q_f32(w + 8);
    const float32x4_t a0 = vld1q_f32(at + k * kMr), a1 = vld1q_f32(at + k * kMr + 4);
#define SD_ROW(i, av, lane)                                \
  c[i][0] = vfmaq_laneq_f32(c[i][0], w0, av, lane);        \
  c[i][1] = vfmaq_laneq_f32(c[i][1], w1, av, lane);        \
  c[i][2] = vfmaq_laneq_f32(c[i][2], w2, av, lane);
    SD_ROW(0, a0, 0) SD_ROW(1, a0, 1) SD_ROW(2, a0, 2) SD_ROW(3, a0, 3)
    SD_ROW(4, a1, 0) SD_ROW(5, a1, 1) SD_ROW(6, a1, 2) SD_ROW(7, a1, 3)
#undef SD_ROW
  }
  float tile[kMr][kNr];
  for (int i = 0; i < kMr; ++i)
    for (int j = 0; j < 3; ++j) vst1q_f32(tile[i] + 4 * j, c[i][j]);
  for (int i = 0; i < mv; ++i) {
    float* cr = C + i * ldc;
    for (int j = 0; j < nv; ++j) cr[j] = accumulate ? cr[j] + tile[i][j] : tile[i][j] + (bias ? bias[j] : 0.0f);
  }
}

float dot(const float* a, const float* b, int64_t n) {
  float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
  int64_t k = 0;
  for (; k + 16 <= n; k += 16) {
    s0 = vfmaq_f32(s0, vld1q_f32(a + k), vld1q_f32(b + k));
    s1 = vfmaq_f32(s1, vld1q_f32(a + k + 4), vld1q_f32(b + k + 4));
    s2 = vfmaq_f32(s2, vld1q_f32(a + k + 8), vld1q_f32(b + k + 8));
    s3 = vfmaq_f32(s3, vld1q_f32(a + k + 12), vld1q_f32(b + k + 12));
  }
  for (; k + 4 <= n; k += 4) s0 = vfmaq_f32(s0, vld1q_f32(a + k), vld1q_f32(b + k));
  float t = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
  for (; k < n; ++k) t += a[k] * b[k];
  return t;
}

const FloatKernels kFloat = {kMr, kNr, to_f32, kernel_f32, dot, nullptr};

}  // namespace

const FloatKernels* float_kernels_neon() { return &kFloat; }

}  // namespace gemmk
}  // namespace sd
