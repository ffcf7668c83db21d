// AVX2+FMA+F16C GEMM kernels: f32 micro-kernel 6x16 (12 ymm accumulators, weights as two ymm per
// k, A broadcast from the packed tile); F16C panel conversion.
#include <immintrin.h>

#include <cstring>

#include "cpu/gemm_kernels.h"

namespace sd {
namespace gemmk {
namespace {

constexpr int kMr = 6, kNr = 16;

void to_f32(DType t, const uint8_t* src, float* dst, int64_t kk) {
  if (t == DType::F32) {
    std::memcpy(dst, src, static_cast<size_t>(kk) * 4);
  } else if (t == DType::F16) {
    const auto* h = reinterpret_cast<const uint16_t*>(src);
    int64_t k = 0;
    for (; k + 8 <= kk; k += 8)
      _mm256_storeu_ps(dst + k, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + k))));
    for (; k < kk; ++k) dst[k] = _cvtsh_ss(h[k]);
  } else if (t == DType::Q8_0) {
    for (int64_t b = 0; b < kk / 32; ++b) {
      const uint8_t* blk = src + b * 34;
      uint16_t dh;
      std::memcpy(&dh, blk, 2);
      const __m256 d = _mm256_set1_ps(_cvtsh_ss(dh));
      for (int h = 0; h < 4; ++h) {
        const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + 2 + 8 * h));
        _mm256_storeu_ps(dst + b * 32 + 8 * h, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d));
      }
    }
  } else {  // Q4_0
    for (int64_t b = 0; b < kk / 32; ++b) {
      const uint8_t* blk = src + b * 18;
      uint16_t dh;
      std::memcpy(&dh, blk, 2);
      const __m256 d = _mm256_set1_ps(_cvtsh_ss(dh));
      const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
      const __m128i m = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
      const __m128i lo = _mm_sub_epi8(_mm_and_si128(q, m), eight);
      const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m), eight);
      const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
      for (int h = 0; h < 4; ++h)
        _mm256_storeu_ps(dst + b * 32 + 8 * h, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[h])), d));
    }
  }
}

void kernel_f32(int64_t kk, const float* at, const float* panel, float* C, int64_t ldc, int mv,
                int nv, bool accumulate, const float* bias) {
  __m256 c0[kMr], c1[kMr];
  for (int i = 0; i < kMr; ++i) c0[i] = c1[i] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kk; ++k) {
    const __m256 w0 = _mm256_load_ps(panel + k * kNr), w1 = _mm256_load_ps(panel + k * kNr + 8);
    const float* a = at + k * kMr;
    for (int i = 0; i < kMr; ++i) {
      const __m256 av = _mm256_broadcast_ss(a + i);
      c0[i] = _mm256_fmadd_ps(av, w0, c0[i]);
      c1[i] = _mm256_fmadd_ps(av, w1, c1[i]);
    }
  }
  if (mv == kMr && nv == kNr) {
    __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps();
    if (!accumulate && bias) { b0 = _mm256_loadu_ps(bias); b1 = _mm256_loadu_ps(bias + 8); }
    for (int i = 0; i < kMr; ++i) {
      float* c = C + i * ldc;
      if (accumulate) { b0 = _mm256_loadu_ps(c); b1 = _mm256_loadu_ps(c + 8); }
      _mm256_storeu_ps(c, _mm256_add_ps(c0[i], b0));
      _mm256_storeu_ps(c + 8, _mm256_add_ps(c1[i], b1));
    }
    return;
  }
  alignas(32) float tile[kMr][kNr];
  for (int i = 0; i < kMr; ++i) {
    _mm256_store_ps(tile[i], c0[i]);
    _mm256_store_ps(tile[i] + 8, c1[i]);
  }
  for (int i = 0; i < mv; ++i) {
    float* c = C + i * ldc;
    for (int j = 0; j < nv; ++j) c[j] = accumulate ? c[j] + tile[i][j] : tile[i][j] + (bias ? bias[j] : 0.0f);
  }
}

const FloatKernels kFloat = {kMr, kNr, to_f32, kernel_f32};

}  // namespace

const FloatKernels* float_kernels_avx2() { return &kFloat; }
const QuantKernels* quant_kernels_avx2() { return nullptr; }

}  // namespace gemmk
}  // namespace sd
