// Portable GEMM kernels (the Scalar ISA level): plain C++, used when no SIMD level is active and
// on architectures without a SIMD file. Dequantize-to-f32 for every weight type.
#include <cstring>

#include "core/quant.h"
#include "cpu/gemm_kernels.h"

namespace sd {
namespace gemmk {
namespace {

constexpr int kMr = 4, kNr = 8;

void to_f32(DType t, const uint8_t* src, float* dst, int64_t kk) { to_f32_row(t, src, dst, kk); }

void kernel(int64_t kk, const float* at, const float* panel, float* C, int64_t ldc, int mv, int nv,
            bool accumulate, const float* bias) {
  float acc[kMr][kNr] = {};
  for (int64_t k = 0; k < kk; ++k) {
    const float* a = at + k * kMr;
    const float* w = panel + k * kNr;
    for (int i = 0; i < kMr; ++i)
      for (int j = 0; j < kNr; ++j) acc[i][j] += a[i] * w[j];
  }
  for (int i = 0; i < mv; ++i) {
    float* c = C + i * ldc;
    for (int j = 0; j < nv; ++j) {
      if (accumulate) c[j] += acc[i][j];
      else c[j] = acc[i][j] + (bias ? bias[j] : 0.0f);
    }
  }
}

float dot(const float* a, const float* b, int64_t n) {
  float s[8] = {};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8)
    for (int j = 0; j < 8; ++j) s[j] += a[k + j] * b[k + j];
  float t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; k < n; ++k) t += a[k] * b[k];
  return t;
}

const FloatKernels kFloat = {kMr, kNr, to_f32, kernel, dot, nullptr};

}  // namespace

const FloatKernels* float_kernels_scalar() { return &kFloat; }

}  // namespace gemmk
}  // namespace sd
