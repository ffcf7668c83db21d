// AVX2+FMA+F16C GEMM kernels: f32 micro-kernel 6x16 (12 ymm accumulators, weights as two ymm per
// k, A broadcast from the packed tile); F16C panel conversion; integer micro-kernels 4x8 for q4_0
// and 6x8 for q8_0 weights, activations quantized per 32-block (GGML's activation quantizer).
// q4_0: activations stored offset by +128 as u8, so vpmaddubsw (u8 x s8) applies; q4_0 weights are
// -8..7, so a pair sum is at most 2 * 255 * 8 = 4080 and the 8 groups of a block add up in int16
// without saturating (<= 32640). The block's int32 sum starts from -128 * sum(qw), which cancels the
// offset exactly. q8_0 weights (up to +-127) would saturate vpmaddubsw with offset activations, and
// GGML's sign trick (vpsignb, vpmaddubsw, vpmaddwd, vpaddd per 32 MACs) keeps three ops on the two
// multiply ports; the q8_0 kernel instead sign-extends both sides to int16 (see below).
#include <immintrin.h>

#include <cstring>

#include "cpu/gemm_kernels.h"

namespace sd {
namespace gemmk {
namespace {

// The rows x nv corner of a kernel's result tile (row stride ldt) into C: + bias, or accumulated
// onto C (edge tiles, where a full-width vector store would run past C).
void store_edge(const float* tile, int ldt, int rows, int nv, float* C, int64_t ldc, bool accumulate,
                const float* bias) {
  for (int i = 0; i < rows; ++i) {
    float* c = C + i * ldc;
    const float* t = tile + i * ldt;
    for (int j = 0; j < nv; ++j) c[j] = accumulate ? c[j] + t[j] : t[j] + (bias ? bias[j] : 0.0f);
  }
}

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

// Accumulators are named variables, not arrays: GCC keeps arrays indexed after the loop in memory
// and stores them on every iteration.
#define SD_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)

void kernel_f32(int64_t kk, const float* at, const float* panel, float* C, int64_t ldc, int mv,
                int nv, bool accumulate, const float* bias) {
#define SD_DECL(i) __m256 c##i##a = _mm256_setzero_ps(), c##i##b = _mm256_setzero_ps();
  SD_ROWS(SD_DECL)
#undef SD_DECL
  for (int64_t k = 0; k < kk; ++k) {
    const __m256 w0 = _mm256_load_ps(panel + k * kNr), w1 = _mm256_load_ps(panel + k * kNr + 8);
    const float* a = at + k * kMr;
#define SD_FMA(i)                                      \
  {                                                    \
    const __m256 av = _mm256_broadcast_ss(a + i);      \
    c##i##a = _mm256_fmadd_ps(av, w0, c##i##a);        \
    c##i##b = _mm256_fmadd_ps(av, w1, c##i##b);        \
  }
    SD_ROWS(SD_FMA)
#undef SD_FMA
  }
  __m256 c0[kMr], c1[kMr];
#define SD_OUT(i) c0[i] = c##i##a; c1[i] = c##i##b;
  SD_ROWS(SD_OUT)
#undef SD_OUT
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
  store_edge(tile[0], kNr, mv, nv, C, ldc, accumulate, bias);
}

// The same tile with A read in place (row i at a + i * lda): the same FMA sequence per C element
// as kernel_f32 on the packed tile, so identical bits, without the A transpose. Full tiles only.
void kernel_f32_rows(int64_t kk, const float* a, int64_t lda, const float* panel, float* C,
                     int64_t ldc, int nv, bool accumulate, const float* bias) {
#define SD_DECL(i) __m256 c##i##a = _mm256_setzero_ps(), c##i##b = _mm256_setzero_ps();
  SD_ROWS(SD_DECL)
#undef SD_DECL
  const float* p0 = a;
  const float* p3 = a + 3 * lda;
  for (int64_t k = 0; k < kk; ++k, ++p0, ++p3) {
    const __m256 w0 = _mm256_load_ps(panel + k * kNr), w1 = _mm256_load_ps(panel + k * kNr + 8);
#define SD_FMA(i, ptr)                                 \
  {                                                    \
    const __m256 av = _mm256_broadcast_ss(ptr);        \
    c##i##a = _mm256_fmadd_ps(av, w0, c##i##a);        \
    c##i##b = _mm256_fmadd_ps(av, w1, c##i##b);        \
  }
    SD_FMA(0, p0) SD_FMA(1, p0 + lda) SD_FMA(2, p0 + 2 * lda)
    SD_FMA(3, p3) SD_FMA(4, p3 + lda) SD_FMA(5, p3 + 2 * lda)
#undef SD_FMA
  }
  if (nv == kNr) {
    __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps();
    if (!accumulate && bias) { b0 = _mm256_loadu_ps(bias); b1 = _mm256_loadu_ps(bias + 8); }
#define SD_ST(i)                                                                                \
  {                                                                                             \
    float* c = C + i * ldc;                                                                     \
    if (accumulate) { b0 = _mm256_loadu_ps(c); b1 = _mm256_loadu_ps(c + 8); }                   \
    _mm256_storeu_ps(c, _mm256_add_ps(c##i##a, b0));                                            \
    _mm256_storeu_ps(c + 8, _mm256_add_ps(c##i##b, b1));                                        \
  }
    SD_ROWS(SD_ST)
#undef SD_ST
    return;
  }
  alignas(32) float tile[kMr][kNr];
#define SD_OUT(i) _mm256_store_ps(tile[i], c##i##a); _mm256_store_ps(tile[i] + 8, c##i##b);
  SD_ROWS(SD_OUT)
#undef SD_OUT
  store_edge(tile[0], kNr, kMr, nv, C, ldc, accumulate, bias);
}

float dot(const float* a, const float* b, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 32 <= n; k += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 8), _mm256_loadu_ps(b + k + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 16), _mm256_loadu_ps(b + k + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 24), _mm256_loadu_ps(b + k + 24), s3);
  }
  for (; k + 8 <= n; k += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), s0);
  const __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  float t = _mm_cvtss_f32(h);
  for (; k < n; ++k) t += a[k] * b[k];
  return t;
}

const FloatKernels kFloat = {kMr, kNr, to_f32, kernel_f32, dot, kernel_f32_rows};

// ---- integer path (q4_0) -----------------------------------------------------------------------

constexpr int kMrq = 4, kNrq = 8;
// Panel block: qs[8 groups][8 columns][4 bytes], d_w[8] f32, corr[8] i32.
constexpr size_t kQsBytes = 8 * kNrq * 4, kPanelBlock = kQsBytes + kNrq * 8;
// A tile block: qs[4 rows][32 bytes] (u8 = q + 128), d_a[4] f32.
constexpr size_t kAtileBlock = kMrq * 32 + kMrq * 4;

size_t panel_bytes(int64_t nkb) { return static_cast<size_t>(nkb) * kPanelBlock; }
size_t atile_bytes(int64_t nkb) { return static_cast<size_t>(nkb) * kAtileBlock; }

void pack_q(DType t, const uint8_t* W, size_t row_bytes, int64_t n0, int64_t nn, int64_t kb0,
            int64_t nkb, uint8_t* dst) {
  const __m128i m = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
  for (int64_t b = 0; b < nkb; ++b) {
    uint8_t* pb = dst + b * kPanelBlock;
    float* d = reinterpret_cast<float*>(pb + kQsBytes);
    int32_t* corr = reinterpret_cast<int32_t*>(pb + kQsBytes + kNrq * 4);
    for (int j = 0; j < kNrq; ++j) {
      __m256i v = _mm256_setzero_si256();
      d[j] = 0.0f;
      if (j < nn) {
        const uint8_t* blk = W + (n0 + j) * row_bytes + (kb0 + b) * 18;
        uint16_t dh;
        std::memcpy(&dh, blk, 2);
        d[j] = _cvtsh_ss(dh);
        const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
        v = _mm256_set_m128i(_mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m), eight),
                             _mm_sub_epi8(_mm_and_si128(q, m), eight));
      }
      // Sum of the 32 signed bytes via sign-extension to 16 bits.
      const __m256i s16 = _mm256_add_epi16(_mm256_cvtepi8_epi16(_mm256_castsi256_si128(v)),
                                           _mm256_cvtepi8_epi16(_mm256_extracti128_si256(v, 1)));
      alignas(32) int32_t s8[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(s8), _mm256_madd_epi16(s16, _mm256_set1_epi16(1)));
      corr[j] = -128 * (s8[0] + s8[1] + s8[2] + s8[3] + s8[4] + s8[5] + s8[6] + s8[7]);
      alignas(32) uint32_t g4[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(g4), v);
      for (int g = 0; g < 8; ++g) std::memcpy(pb + g * kNrq * 4 + j * 4, g4 + g, 4);
    }
  }
}

// GGML's AVX2 activation quantizer for one 32-block: returns d = fp16(amax / 127) and stores
// q = round_even(x * (127 / amax)) as 32 int32.
float quant_block(const float* x, int32_t* q) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 v[4];
  __m256 mx = _mm256_setzero_ps();
  for (int j = 0; j < 4; ++j) {
    v[j] = _mm256_loadu_ps(x + 8 * j);
    mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, v[j]));
  }
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  const float amax = _mm_cvtss_f32(h);
  const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
  for (int j = 0; j < 4; ++j)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 8 * j),
                        _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[j], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
  return _cvtsh_ss(_cvtss_sh(amax / 127.0f, _MM_FROUND_TO_NEAREST_INT));
}

void quant_a(int mv, int64_t nkb, const float* A, int64_t lda, uint8_t* dst) {
  for (int64_t b = 0; b < nkb; ++b) {
    uint8_t* ab = dst + b * kAtileBlock;
    float* d = reinterpret_cast<float*>(ab + kMrq * 32);
    for (int i = 0; i < kMrq; ++i) {
      if (i >= mv) {
        std::memset(ab + i * 32, 0x80, 32);
        d[i] = 0.0f;
        continue;
      }
      alignas(32) int32_t q[32];
      d[i] = quant_block(A + i * lda + b * 32, q);
      for (int j = 0; j < 32; ++j) ab[i * 32 + j] = static_cast<uint8_t>(q[j] + 128);
    }
  }
}

#define SD_QROWS(X) X(0) X(1) X(2) X(3)

void kernel_q(int64_t nkb, const uint8_t* atile, const uint8_t* panel, float* C, int64_t ldc,
              int mv, int nv, bool accumulate, const float* bias) {
  const __m256i ones = _mm256_set1_epi16(1);
#define SD_DECL(i) __m256 f##i = _mm256_setzero_ps();
  SD_QROWS(SD_DECL)
#undef SD_DECL
  for (int64_t b = 0; b < nkb; ++b) {
    const uint8_t* pb = panel + b * kPanelBlock;
    const uint8_t* ab = atile + b * kAtileBlock;
#define SD_DECL(i) __m256i s##i = _mm256_setzero_si256();
    SD_QROWS(SD_DECL)
#undef SD_DECL
    // Unrolled fully, GCC hoists all 32 vpmaddubsw and spills; two groups at a time fit 16 ymm.
#pragma GCC unroll 2
    for (int g = 0; g < 8; ++g) {
      const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(pb + g * 32));
#define SD_DOT(i)                                                                       \
  {                                                                                     \
    int32_t a4;                                                                         \
    std::memcpy(&a4, ab + i * 32 + g * 4, 4);                                           \
    s##i = _mm256_add_epi16(s##i, _mm256_maddubs_epi16(_mm256_set1_epi32(a4), w));      \
  }
      SD_QROWS(SD_DOT)
#undef SD_DOT
    }
    const __m256i corr = _mm256_load_si256(reinterpret_cast<const __m256i*>(pb + kQsBytes + kNrq * 4));
    const __m256 dw = _mm256_load_ps(reinterpret_cast<const float*>(pb + kQsBytes));
    const float* da = reinterpret_cast<const float*>(ab + kMrq * 32);
#define SD_SCALE(i)                                                                               \
  f##i = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_madd_epi16(s##i, ones), corr)), \
                         _mm256_mul_ps(dw, _mm256_set1_ps(da[i])), f##i);
    SD_QROWS(SD_SCALE)
#undef SD_SCALE
  }
  __m256 f[kMrq];
#define SD_OUT(i) f[i] = f##i;
  SD_QROWS(SD_OUT)
#undef SD_OUT
  alignas(32) float tile[kMrq][kNrq];
  for (int i = 0; i < kMrq; ++i) _mm256_store_ps(tile[i], f[i]);
  store_edge(tile[0], kNrq, mv, nv, C, ldc, accumulate, bias);
}

const QuantKernels kQuant = {kMrq, kNrq, false, true, panel_bytes, atile_bytes, pack_q, quant_a, kernel_q};

// ---- integer path (q8_0) -----------------------------------------------------------------------
// Weights and activations sign-extended to int16, vpmaddwd (16 MACs) + vpaddd per k pair: 2 ops
// per 16 MACs of which only the madd needs the two multiply ports (vpaddd also issues on a
// third), against 2 FMAs per 16 MACs on the f32 path. Products fit: 2 * 128 * 128 per lane.

constexpr int kMr8 = 6, kNr8 = 8;
// Panel block: qs[16 k pairs][8 columns][2 x int16], d_w[8] f32.
constexpr size_t kQs8Bytes = 16 * kNr8 * 4, kPanel8Block = kQs8Bytes + kNr8 * 4;
// A tile block: qs[6 rows][32 x int16], d_a[6] f32.
constexpr size_t kAtile8Block = kMr8 * 64 + kMr8 * 4;

size_t panel8_bytes(int64_t nkb) { return static_cast<size_t>(nkb) * kPanel8Block; }
size_t atile8_bytes(int64_t nkb) { return static_cast<size_t>(nkb) * kAtile8Block; }

void pack_q8(DType, const uint8_t* W, size_t row_bytes, int64_t n0, int64_t nn, int64_t kb0,
             int64_t nkb, uint8_t* dst) {
  for (int64_t b = 0; b < nkb; ++b) {
    uint8_t* pb = dst + b * kPanel8Block;
    float* d = reinterpret_cast<float*>(pb + kQs8Bytes);
    for (int j = 0; j < kNr8; ++j) {
      alignas(32) uint32_t w16[16];  // 32 int16, two per k pair
      __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
      d[j] = 0.0f;
      if (j < nn) {
        const uint8_t* blk = W + (n0 + j) * row_bytes + (kb0 + b) * 34;
        uint16_t dh;
        std::memcpy(&dh, blk, 2);
        d[j] = _cvtsh_ss(dh);
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
        lo = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(q));
        hi = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(q, 1));
      }
      _mm256_store_si256(reinterpret_cast<__m256i*>(w16), lo);
      _mm256_store_si256(reinterpret_cast<__m256i*>(w16 + 8), hi);
      for (int p = 0; p < 16; ++p) std::memcpy(pb + p * kNr8 * 4 + j * 4, w16 + p, 4);
    }
  }
}

void quant_a8(int mv, int64_t nkb, const float* A, int64_t lda, uint8_t* dst) {
  for (int64_t b = 0; b < nkb; ++b) {
    uint8_t* ab = dst + b * kAtile8Block;
    float* d = reinterpret_cast<float*>(ab + kMr8 * 64);
    for (int i = 0; i < kMr8; ++i) {
      __m256i* q16 = reinterpret_cast<__m256i*>(ab + i * 64);
      if (i >= mv) {
        _mm256_storeu_si256(q16, _mm256_setzero_si256());
        _mm256_storeu_si256(q16 + 1, _mm256_setzero_si256());
        d[i] = 0.0f;
        continue;
      }
      alignas(32) int32_t q[32];
      d[i] = quant_block(A + i * lda + b * 32, q);
      for (int h = 0; h < 2; ++h) {
        // packs works per 128-bit lane: [0-3 8-11 4-7 12-15] -> reorder the 64-bit quarters.
        const __m256i p = _mm256_packs_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(q + 16 * h)),
                                             _mm256_load_si256(reinterpret_cast<const __m256i*>(q + 16 * h + 8)));
        _mm256_storeu_si256(q16 + h, _mm256_permute4x64_epi64(p, 0xD8));
      }
    }
  }
}

#define SD_Q8ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)

void kernel_q8(int64_t nkb, const uint8_t* atile, const uint8_t* panel, float* C, int64_t ldc,
               int mv, int nv, bool accumulate, const float* bias) {
#define SD_DECL(i) __m256 f##i = _mm256_setzero_ps();
  SD_Q8ROWS(SD_DECL)
#undef SD_DECL
  for (int64_t b = 0; b < nkb; ++b) {
    const uint8_t* pb = panel + b * kPanel8Block;
    const uint8_t* ab = atile + b * kAtile8Block;
#define SD_DECL(i) __m256i s##i = _mm256_setzero_si256();
    SD_Q8ROWS(SD_DECL)
#undef SD_DECL
#pragma GCC unroll 4
    for (int p = 0; p < 16; ++p) {
      const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(pb + p * kNr8 * 4));
#define SD_DOT(i)                                                                     \
  {                                                                                   \
    int32_t a2;                                                                       \
    std::memcpy(&a2, ab + i * 64 + p * 4, 4);                                         \
    s##i = _mm256_add_epi32(s##i, _mm256_madd_epi16(_mm256_set1_epi32(a2), w));       \
  }
      SD_Q8ROWS(SD_DOT)
#undef SD_DOT
    }
    const __m256 dw = _mm256_load_ps(reinterpret_cast<const float*>(pb + kQs8Bytes));
    const float* da = reinterpret_cast<const float*>(ab + kMr8 * 64);
#define SD_SCALE(i) f##i = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s##i), _mm256_mul_ps(dw, _mm256_set1_ps(da[i])), f##i);
    SD_Q8ROWS(SD_SCALE)
#undef SD_SCALE
  }
  if (mv == kMr8 && nv == kNr8) {
    __m256 b0 = _mm256_setzero_ps();
    if (!accumulate && bias) b0 = _mm256_loadu_ps(bias);
#define SD_ST(i)                                          \
  {                                                       \
    float* c = C + i * ldc;                               \
    if (accumulate) b0 = _mm256_loadu_ps(c);              \
    _mm256_storeu_ps(c, _mm256_add_ps(f##i, b0));         \
  }
    SD_Q8ROWS(SD_ST)
#undef SD_ST
    return;
  }
  alignas(32) float tile[kMr8][kNr8];
#define SD_OUT(i) _mm256_store_ps(tile[i], f##i);
  SD_Q8ROWS(SD_OUT)
#undef SD_OUT
  store_edge(tile[0], kNr8, mv, nv, C, ldc, accumulate, bias);
}

const QuantKernels kQuantQ8 = {kMr8, kNr8, true, false, panel8_bytes, atile8_bytes, pack_q8, quant_a8, kernel_q8};

}  // namespace

const FloatKernels* float_kernels_avx2() { return &kFloat; }
const QuantKernels* quant_kernels_avx2() { return &kQuant; }
const QuantKernels* quant_kernels_avx2_q8() { return &kQuantQ8; }

}  // namespace gemmk
}  // namespace sd
