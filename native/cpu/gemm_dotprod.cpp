// aarch64 dotprod integer GEMM for q8_0/q4_0 weights: micro-kernel 4x8 with sdot by lane.
// Activations are quantized per 32-block exactly as on x86 (quantize_row_q8_0_act: d = fp16(amax /
// 127), q = round_even(x * 127 / amax)), so both architectures give the same integer sums.
#include <arm_neon.h>

#include <cstring>

#include "cpu/gemm_kernels.h"

namespace sd {
namespace gemmk {
namespace {

constexpr int kMr = 4, kNr = 8;
// Panel block: qs[8 groups][8 columns][4 bytes], d_w[8] f32. A tile block: qs[4 rows][32], d_a[4].
constexpr size_t kQsBytes = 8 * kNr * 4, kPanelBlock = kQsBytes + kNr * 4;
constexpr size_t kAtileBlock = kMr * 32 + kMr * 4;

float half_to_float(uint16_t h) { return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0); }
float round_to_half(float x) { return vgetq_lane_f32(vcvt_f32_f16(vcvt_f16_f32(vdupq_n_f32(x))), 0); }

size_t panel_bytes(int64_t nkb) { return static_cast<size_t>(nkb) * kPanelBlock; }
size_t atile_bytes(int64_t nkb) { return static_cast<size_t>(nkb) * kAtileBlock; }

void pack_q(DType t, const uint8_t* W, size_t row_bytes, int64_t n0, int64_t nn, int64_t kb0,
            int64_t nkb, uint8_t* dst) {
  const size_t bb = t == DType::Q8_0 ? 34 : 18;
  for (int64_t b = 0; b < nkb; ++b) {
    uint8_t* pb = dst + b * kPanelBlock;
    float* d = reinterpret_cast<float*>(pb + kQsBytes);
    for (int j = 0; j < kNr; ++j) {
      int8_t v[32];
      if (j < nn) {
        const uint8_t* blk = W + (n0 + j) * row_bytes + (kb0 + b) * bb;
        uint16_t dh;
        std::memcpy(&dh, blk, 2);
        d[j] = half_to_float(dh);
        if (t == DType::Q8_0) {
          std::memcpy(v, blk + 2, 32);
        } else {
          for (int e = 0; e < 16; ++e) {
            v[e] = static_cast<int8_t>((blk[2 + e] & 0x0F) - 8);
            v[e + 16] = static_cast<int8_t>((blk[2 + e] >> 4) - 8);
          }
        }
      } else {
        std::memset(v, 0, 32);
        d[j] = 0.0f;
      }
      for (int g = 0; g < 8; ++g) std::memcpy(pb + g * kNr * 4 + j * 4, v + g * 4, 4);
    }
  }
}

void quant_a(int mv, int64_t nkb, const float* A, int64_t lda, uint8_t* dst) {
  for (int64_t b = 0; b < nkb; ++b) {
    uint8_t* ab = dst + b * kAtileBlock;
    float* d = reinterpret_cast<float*>(ab + kMr * 32);
    for (int i = 0; i < kMr; ++i) {
      int8_t* q = reinterpret_cast<int8_t*>(ab + i * 32);
      if (i >= mv) {
        std::memset(q, 0, 32);
        d[i] = 0.0f;
        continue;
      }
      const float* x = A + i * lda + b * 32;
      float32x4_t v[8];
      float32x4_t mx = vdupq_n_f32(0.0f);
      for (int j = 0; j < 8; ++j) {
        v[j] = vld1q_f32(x + 4 * j);
        mx = vmaxq_f32(mx, vabsq_f32(v[j]));
      }
      const float amax = vmaxvq_f32(mx);
      d[i] = round_to_half(amax / 127.0f);
      const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
      for (int j = 0; j < 8; j += 2) {
        const int32x4_t q0 = vcvtnq_s32_f32(vmulq_n_f32(v[j], id));
        const int32x4_t q1 = vcvtnq_s32_f32(vmulq_n_f32(v[j + 1], id));
        const int16x8_t q01 = vcombine_s16(vmovn_s32(q0), vmovn_s32(q1));
        vst1_s8(q + 4 * j, vmovn_s16(q01));
      }
    }
  }
}

void kernel_q(int64_t nkb, const uint8_t* atile, const uint8_t* panel, float* C, int64_t ldc,
              int mv, int nv, bool accumulate, const float* bias) {
  float32x4_t f[kMr][2];
  for (int i = 0; i < kMr; ++i) f[i][0] = f[i][1] = vdupq_n_f32(0.0f);
  for (int64_t b = 0; b < nkb; ++b) {
    const int8_t* pb = reinterpret_cast<const int8_t*>(panel + b * kPanelBlock);
    const int8_t* ab = reinterpret_cast<const int8_t*>(atile + b * kAtileBlock);
    int8x16_t lo[kMr], hi[kMr];
    int32x4_t s[kMr][2];
    for (int i = 0; i < kMr; ++i) {
      lo[i] = vld1q_s8(ab + i * 32);
      hi[i] = vld1q_s8(ab + i * 32 + 16);
      s[i][0] = s[i][1] = vdupq_n_s32(0);
    }
#define SD_GROUP(g, areg, lane)                                                          \
  {                                                                                      \
    const int8x16_t w0 = vld1q_s8(pb + (g) * 32), w1 = vld1q_s8(pb + (g) * 32 + 16);     \
    for (int i = 0; i < kMr; ++i) {                                                      \
      s[i][0] = vdotq_laneq_s32(s[i][0], w0, areg[i], lane);                             \
      s[i][1] = vdotq_laneq_s32(s[i][1], w1, areg[i], lane);                             \
    }                                                                                    \
  }
    SD_GROUP(0, lo, 0) SD_GROUP(1, lo, 1) SD_GROUP(2, lo, 2) SD_GROUP(3, lo, 3)
    SD_GROUP(4, hi, 0) SD_GROUP(5, hi, 1) SD_GROUP(6, hi, 2) SD_GROUP(7, hi, 3)
#undef SD_GROUP
    const float* dw = reinterpret_cast<const float*>(pb + kQsBytes);
    const float32x4_t dw0 = vld1q_f32(dw), dw1 = vld1q_f32(dw + 4);
    const float* da = reinterpret_cast<const float*>(ab + kMr * 32);
    for (int i = 0; i < kMr; ++i) {
      f[i][0] = vfmaq_f32(f[i][0], vcvtq_f32_s32(s[i][0]), vmulq_n_f32(dw0, da[i]));
      f[i][1] = vfmaq_f32(f[i][1], vcvtq_f32_s32(s[i][1]), vmulq_n_f32(dw1, da[i]));
    }
  }
  float tile[kMr][kNr];
  for (int i = 0; i < kMr; ++i) {
    vst1q_f32(tile[i], f[i][0]);
    vst1q_f32(tile[i] + 4, f[i][1]);
  }
  for (int i = 0; i < mv; ++i) {
    float* cr = C + i * ldc;
    for (int j = 0; j < nv; ++j) cr[j] = accumulate ? cr[j] + tile[i][j] : tile[i][j] + (bias ? bias[j] : 0.0f);
  }
}

const QuantKernels kQuant = {kMr, kNr, true, true, panel_bytes, atile_bytes, pack_q, quant_a, kernel_q};

}  // namespace

const QuantKernels* quant_kernels_dotprod() { return &kQuant; }

}  // namespace gemmk
}  // namespace sd
