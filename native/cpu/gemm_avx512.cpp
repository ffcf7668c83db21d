// AVX-512 GEMM kernels: f32 micro-kernel 14x32 (28 zmm accumulators, weights as two zmm per k,
// A broadcast from the packed tile) and, for q8_0/q4_0 weights, a VNNI integer micro-kernel 6x32.
// Integer path: A quantized per 32-block with GGML's activation quantizer and stored offset by
// +128 as u8, so vpdpbusd (u8 x s8) applies; the int32 accumulator of each block starts at
// -128 * sum(qw), which cancels the offset exactly.
#include <immintrin.h>

#include <cstring>

#include "cpu/gemm_kernels.h"

namespace sd {
namespace gemmk {
namespace {

constexpr int kMr = 14, kNr = 32;

inline __mmask16 lane_mask(int n) {
  return n >= 16 ? static_cast<__mmask16>(0xFFFF) : n <= 0 ? 0 : static_cast<__mmask16>((1u << n) - 1);
}

// Writes an mr x 32 tile held as (c0[i], c1[i]) to C, adding to C or setting C = acc + bias.
template <int MR>
inline void store_tile(const __m512* c0, const __m512* c1, float* C, int64_t ldc, int mv, int nv,
                       bool accumulate, const float* bias) {
  const __mmask16 k0 = lane_mask(nv), k1 = lane_mask(nv - 16);
  __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
  if (!accumulate && bias) {
    b0 = _mm512_maskz_loadu_ps(k0, bias);
    b1 = _mm512_maskz_loadu_ps(k1, bias + 16);
  }
  for (int i = 0; i < MR; ++i) {
    if (i >= mv) break;
    float* c = C + i * ldc;
    __m512 v0 = c0[i], v1 = c1[i];
    if (accumulate) {
      v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(k0, c));
      v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(k1, c + 16));
    } else {
      v0 = _mm512_add_ps(v0, b0);
      v1 = _mm512_add_ps(v1, b1);
    }
    _mm512_mask_storeu_ps(c, k0, v0);
    _mm512_mask_storeu_ps(c + 16, k1, v1);
  }
}

// ---- f32 path ----------------------------------------------------------------------------------

void to_f32(DType t, const uint8_t* src, float* dst, int64_t kk) {
  if (t == DType::F32) {
    std::memcpy(dst, src, static_cast<size_t>(kk) * 4);
  } else if (t == DType::F16) {
    const auto* h = reinterpret_cast<const uint16_t*>(src);
    int64_t k = 0;
    for (; k + 16 <= kk; k += 16)
      _mm512_storeu_ps(dst + k, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + k))));
    for (; k < kk; ++k) dst[k] = _cvtsh_ss(h[k]);
  } else if (t == DType::Q8_0) {
    for (int64_t b = 0; b < kk / 32; ++b) {
      const uint8_t* blk = src + b * 34;
      uint16_t dh;
      std::memcpy(&dh, blk, 2);
      const __m512 d = _mm512_set1_ps(_cvtsh_ss(dh));
      for (int h = 0; h < 2; ++h) {
        const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2 + 16 * h));
        _mm512_storeu_ps(dst + b * 32 + 16 * h, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), d));
      }
    }
  } else {  // Q4_0
    for (int64_t b = 0; b < kk / 32; ++b) {
      const uint8_t* blk = src + b * 18;
      uint16_t dh;
      std::memcpy(&dh, blk, 2);
      const __m512 d = _mm512_set1_ps(_cvtsh_ss(dh));
      const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
      const __m128i m = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
      const __m128i lo = _mm_sub_epi8(_mm_and_si128(q, m), eight);
      const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m), eight);
      _mm512_storeu_ps(dst + b * 32, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(lo)), d));
      _mm512_storeu_ps(dst + b * 32 + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(hi)), d));
    }
  }
}

// Accumulators are named variables, not arrays: GCC keeps arrays indexed after the loop in memory
// and stores them on every iteration.
#define SD_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)

void kernel_f32(int64_t kk, const float* at, const float* panel, float* C, int64_t ldc, int mv,
                int nv, bool accumulate, const float* bias) {
#define SD_DECL(i) __m512 c##i##a = _mm512_setzero_ps(), c##i##b = _mm512_setzero_ps();
  SD_ROWS(SD_DECL)
#undef SD_DECL
  for (int64_t k = 0; k < kk; ++k) {
    const __m512 w0 = _mm512_load_ps(panel + k * kNr), w1 = _mm512_load_ps(panel + k * kNr + 16);
    const float* a = at + k * kMr;
#define SD_FMA(i)                                   \
  {                                                 \
    const __m512 av = _mm512_set1_ps(a[i]);         \
    c##i##a = _mm512_fmadd_ps(av, w0, c##i##a);     \
    c##i##b = _mm512_fmadd_ps(av, w1, c##i##b);     \
  }
    SD_ROWS(SD_FMA)
#undef SD_FMA
  }
  __m512 c0[kMr], c1[kMr];
#define SD_OUT(i) c0[i] = c##i##a; c1[i] = c##i##b;
  SD_ROWS(SD_OUT)
#undef SD_OUT
  store_tile<kMr>(c0, c1, C, ldc, mv, nv, accumulate, bias);
}

// The same tile with A read in place: row i of the tile is a[i * lda + k]. Every C element sees the
// same FMA sequence as kernel_f32 on a packed tile, so the two give identical bits; this one skips
// the A transpose (as costly as the math when a task has few panels per row tile). Full tiles only.
// Rows are addressed from three bases and two strides so the pointers stay in registers.
void kernel_f32_rows(int64_t kk, const float* a, int64_t lda, const float* panel, float* C,
                     int64_t ldc, int nv, bool accumulate, const float* bias) {
#define SD_DECL(i) __m512 c##i##a = _mm512_setzero_ps(), c##i##b = _mm512_setzero_ps();
  SD_ROWS(SD_DECL)
#undef SD_DECL
  const float* p0 = a;
  const float* p5 = a + 5 * lda;
  const float* p10 = a + 10 * lda;
  const int64_t l1 = lda, l3 = 3 * lda;
  for (int64_t k = 0; k < kk; ++k, ++p0, ++p5, ++p10) {
    const __m512 w0 = _mm512_load_ps(panel + k * kNr), w1 = _mm512_load_ps(panel + k * kNr + 16);
#define SD_FMA(i, ptr)                              \
  {                                                 \
    const __m512 av = _mm512_set1_ps(ptr);          \
    c##i##a = _mm512_fmadd_ps(av, w0, c##i##a);     \
    c##i##b = _mm512_fmadd_ps(av, w1, c##i##b);     \
  }
    SD_FMA(0, p0[0]) SD_FMA(1, p0[l1]) SD_FMA(2, p0[2 * l1]) SD_FMA(3, p0[l3]) SD_FMA(4, p0[4 * l1])
    SD_FMA(5, p5[0]) SD_FMA(6, p5[l1]) SD_FMA(7, p5[2 * l1]) SD_FMA(8, p5[l3]) SD_FMA(9, p5[4 * l1])
    SD_FMA(10, p10[0]) SD_FMA(11, p10[l1]) SD_FMA(12, p10[2 * l1]) SD_FMA(13, p10[l3])
#undef SD_FMA
  }
  __m512 c0[kMr], c1[kMr];
#define SD_OUT(i) c0[i] = c##i##a; c1[i] = c##i##b;
  SD_ROWS(SD_OUT)
#undef SD_OUT
  store_tile<kMr>(c0, c1, C, ldc, kMr, nv, accumulate, bias);
}

// ---- integer path ------------------------------------------------------------------------------

constexpr int kMrq = 6, kNrq = 32;
// Panel block: qs[8 groups][32 columns][4 bytes], d_w[32] f32, corr[32] i32.
constexpr size_t kQsBytes = 8 * kNrq * 4, kPanelBlock = kQsBytes + kNrq * 8;
// A tile block: qs[6 rows][32 bytes] (u8 = q + 128), d_a[6] f32.
constexpr size_t kAtileBlock = kMrq * 32 + kMrq * 4;

size_t panel_bytes(int64_t nkb) { return static_cast<size_t>(nkb) * kPanelBlock; }
size_t atile_bytes(int64_t nkb) { return static_cast<size_t>(nkb) * kAtileBlock; }

// Packs column j of one panel block: the block's 32 weights as signed bytes (q4_0: nibble - 8) in
// the [group][column][4] layout, its scale and -128 * (sum of the weights).
inline void pack_column(DType t, const uint8_t* blk, int j, uint8_t* pb) {
  float* d = reinterpret_cast<float*>(pb + kQsBytes);
  int32_t* corr = reinterpret_cast<int32_t*>(pb + kQsBytes + kNrq * 4);
  __m256i v;
  if (!blk) {
    v = _mm256_setzero_si256();
    d[j] = 0.0f;
  } else {
    uint16_t dh;
    std::memcpy(&dh, blk, 2);
    d[j] = _cvtsh_ss(dh);
    if (t == DType::Q8_0) {
      v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
    } else {
      const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
      const __m128i m = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
      v = _mm256_set_m128i(_mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m), eight),
                           _mm_sub_epi8(_mm_and_si128(q, m), eight));
    }
  }
  // Sum of the 32 signed bytes: sign-extend to 16 bits and reduce.
  const __m512i w16 = _mm512_cvtepi8_epi16(v);
  corr[j] = -128 * _mm512_reduce_add_epi32(_mm512_madd_epi16(w16, _mm512_set1_epi16(1)));
  alignas(32) uint32_t g4[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(g4), v);
  for (int g = 0; g < 8; ++g) std::memcpy(pb + g * kNrq * 4 + j * 4, g4 + g, 4);
}

void pack_q(DType t, const uint8_t* W, size_t row_bytes, int64_t n0, int64_t nn, int64_t kb0,
            int64_t nkb, uint8_t* dst) {
  const size_t bb = t == DType::Q8_0 ? 34 : 18;
  for (int64_t b = 0; b < nkb; ++b)
    for (int j = 0; j < kNrq; ++j)
      pack_column(t, j < nn ? W + (n0 + j) * row_bytes + (kb0 + b) * bb : nullptr, j, dst + b * kPanelBlock);
}

// GGML's AVX2 activation quantizer: d = fp16(amax / 127), q = round_even(x * (127 / amax)).
void quant_a(int mv, int64_t nkb, const float* A, int64_t lda, uint8_t* dst) {
  const __m512 sign = _mm512_set1_ps(-0.0f);
  for (int64_t b = 0; b < nkb; ++b) {
    uint8_t* ab = dst + b * kAtileBlock;
    float* d = reinterpret_cast<float*>(ab + kMrq * 32);
    for (int i = 0; i < kMrq; ++i) {
      if (i >= mv) {
        std::memset(ab + i * 32, 0x80, 32);
        d[i] = 0.0f;
        continue;
      }
      const float* x = A + i * lda + b * 32;
      const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
      const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_andnot_ps(sign, x0), _mm512_andnot_ps(sign, x1)));
      d[i] = _cvtsh_ss(_cvtss_sh(amax / 127.0f, _MM_FROUND_TO_NEAREST_INT));
      const __m512 id = _mm512_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
      const __m512i q0 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(x0, id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      const __m512i q1 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(x1, id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      const __m128i off = _mm_set1_epi8(static_cast<char>(0x80));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(ab + i * 32), _mm_xor_si128(_mm512_cvtepi32_epi8(q0), off));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(ab + i * 32 + 16), _mm_xor_si128(_mm512_cvtepi32_epi8(q1), off));
    }
  }
}

#define SD_QROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)

void kernel_q(int64_t nkb, const uint8_t* atile, const uint8_t* panel, float* C, int64_t ldc,
              int mv, int nv, bool accumulate, const float* bias) {
#define SD_DECL(i) __m512 f##i##a = _mm512_setzero_ps(), f##i##b = _mm512_setzero_ps();
  SD_QROWS(SD_DECL)
#undef SD_DECL
  for (int64_t b = 0; b < nkb; ++b) {
    const uint8_t* pb = panel + b * kPanelBlock;
    const uint8_t* ab = atile + b * kAtileBlock;
    const __m512i corr0 = _mm512_load_si512(pb + kQsBytes + kNrq * 4);
    const __m512i corr1 = _mm512_load_si512(pb + kQsBytes + kNrq * 4 + 64);
#define SD_DECL(i) __m512i s##i##a = corr0, s##i##b = corr1;
    SD_QROWS(SD_DECL)
#undef SD_DECL
    for (int g = 0; g < 8; ++g) {
      const __m512i w0 = _mm512_load_si512(pb + g * 128), w1 = _mm512_load_si512(pb + g * 128 + 64);
#define SD_DOT(i)                                          \
  {                                                        \
    int32_t a4;                                            \
    std::memcpy(&a4, ab + i * 32 + g * 4, 4);              \
    const __m512i av = _mm512_set1_epi32(a4);              \
    s##i##a = _mm512_dpbusd_epi32(s##i##a, av, w0);        \
    s##i##b = _mm512_dpbusd_epi32(s##i##b, av, w1);        \
  }
      SD_QROWS(SD_DOT)
#undef SD_DOT
    }
    const __m512 dw0 = _mm512_load_ps(pb + kQsBytes), dw1 = _mm512_load_ps(pb + kQsBytes + 64);
    const float* da = reinterpret_cast<const float*>(ab + kMrq * 32);
#define SD_SCALE(i)                                                                            \
  {                                                                                            \
    const __m512 dv = _mm512_set1_ps(da[i]);                                                   \
    f##i##a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s##i##a), _mm512_mul_ps(dw0, dv), f##i##a);   \
    f##i##b = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s##i##b), _mm512_mul_ps(dw1, dv), f##i##b);   \
  }
    SD_QROWS(SD_SCALE)
#undef SD_SCALE
  }
  __m512 f0[kMrq], f1[kMrq];
#define SD_OUT(i) f0[i] = f##i##a; f1[i] = f##i##b;
  SD_QROWS(SD_OUT)
#undef SD_OUT
  store_tile<kMrq>(f0, f1, C, ldc, mv, nv, accumulate, bias);
}

float dot(const float* a, const float* b, int64_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 64 <= n; k += 64) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + k), _mm512_loadu_ps(b + k), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + k + 16), _mm512_loadu_ps(b + k + 16), s1);
    s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + k + 32), _mm512_loadu_ps(b + k + 32), s2);
    s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + k + 48), _mm512_loadu_ps(b + k + 48), s3);
  }
  for (; k + 16 <= n; k += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + k), _mm512_loadu_ps(b + k), s0);
  if (k < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - k)) - 1);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + k), _mm512_maskz_loadu_ps(m, b + k), s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

const FloatKernels kFloat = {kMr, kNr, to_f32, kernel_f32, dot, kernel_f32_rows};
const QuantKernels kQuant = {kMrq, kNrq, true, true, panel_bytes, atile_bytes, pack_q, quant_a, kernel_q};

}  // namespace

const FloatKernels* float_kernels_avx512() { return &kFloat; }
const QuantKernels* quant_kernels_avx512() { return &kQuant; }

}  // namespace gemmk
}  // namespace sd
