// The tensor-core GEMM kernel and its tile loaders (see gemm_tc_linear.cu for the design). A header of its
// own so that a host-side emulation of the warp-level ops (tests/tc_emulation.cpp) can run it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "core/dtype.h"
#include "cuda/act.cuh"
#include "cuda/tc_common.cuh"

namespace sd {
namespace cuda {
namespace tc_gemm {

constexpr int BM = 128, BN = 128, BK = 32, THREADS = 256;
constexpr int BKP = BK + 8;  // row stride in halves: 80 bytes keeps ldmatrix rows 16-byte aligned and conflict-free

__device__ __forceinline__ void store16(__half* dst, const float (&v)[16]) {
  uint4 lo, hi;
  lo.x = pack_half2(v[0], v[1]);
  lo.y = pack_half2(v[2], v[3]);
  lo.z = pack_half2(v[4], v[5]);
  lo.w = pack_half2(v[6], v[7]);
  hi.x = pack_half2(v[8], v[9]);
  hi.y = pack_half2(v[10], v[11]);
  hi.z = pack_half2(v[12], v[13]);
  hi.w = pack_half2(v[14], v[15]);
  reinterpret_cast<uint4*>(dst)[0] = lo;
  reinterpret_cast<uint4*>(dst)[1] = hi;
}

// Weight rows stacked from up to three tensors of `part` rows each (tc_linear_n: q, k and v as one
// GEMM); part 0: one tensor at the loader's base. Or, with geglu_f = F > 0, the rows of one [2F, K]
// GEGLU weight ([a | gate]) interleaved by 8: row 16 g + j is a's row 8 g + j for j < 8, the gate's
// row 8 g + j - 8 after, so each 8-column mma fragment of a's results sits in the same thread as the
// fragment of their gates (GegluOut). row(): the start of stacked row r, rows of `stride` elements.
template <class T>
struct Stack {
  const T* more[2] = {nullptr, nullptr};  // the second and third tensors
  int64_t part = 0;
  int64_t geglu_f = 0;
  __device__ const T* row(const T* base, int64_t r, int64_t stride) const {
    if (geglu_f > 0) return base + (geglu_row(r) + ((r & 8) ? geglu_f : 0)) * stride;
    if (part == 0) return base + r * stride;
    const int64_t i = r / part;
    // Selects, not more[i - 1]: an indexed parameter array would be copied to local memory.
    return (i == 0 ? base : i == 1 ? more[0] : more[1]) + (r - i * part) * stride;
  }
  // Interleaved row r's row within its half; also the output column of a GEGLU result.
  __host__ __device__ static int64_t geglu_row(int64_t r) { return (r >> 4) * 8 + (r & 7); }
};

// Loader protocol: init(row0, tid) picks this thread's share of the 128 x 32 tiles whose first row is
// row0; fetch(k0, tile) starts loading its share of the tile at k0 (copies into `tile` may be in
// flight after it); stage(tile) writes what went through registers; complete() waits for the
// copies. Each loader picks the thread mapping that suits its reads: the L1 resolves about four
// cache lines a cycle, so a warp's request should touch few rows.
//
// ChunkSlot: one 16-element k-chunk of one row per thread. pairs(): two lanes per row (a request
// spans 16 rows), for f32 rows; columns(): 32 consecutive rows at one k-chunk
// per warp, for the conv gather, whose rows are output pixels that lie side by side in memory
// (and whose 16-byte staging stores, rows 80 bytes apart, then hit distinct banks).
struct ChunkSlot {
  int row, k, soff;
  __device__ static ChunkSlot pairs(int tid) { return at(tid >> 1, (tid & 1) * 16); }
  __device__ static ChunkSlot columns(int tid) { return at(tid & (BM - 1), (tid >> 7) * 16); }
  __device__ static ChunkSlot at(int row, int k) { return ChunkSlot{row, k, row * BKP + k}; }
};

// QuadSlot: four lanes per row, lane `sub` taking elements 8 sub .. 8 sub + 7 of rows `row` and
// row + 64 (a request spans 8 rows), for f16 rows and quantized blocks.
struct QuadSlot {
  static constexpr int kSecond = (BM / 2) * BKP;  // the second row's offset in the tile
  int row, sub, soff;
  __device__ static QuadSlot of(int tid) { return QuadSlot{tid >> 2, tid & 3, (tid >> 2) * BKP + (tid & 3) * 8}; }
};

// f32 rows of length K with stride ld (activations, or f32 weights); rows >= rows_ read as zero.
struct F32Rows {
  static constexpr bool kAsync = false;  // see tc_gemm_async_kernel
  const float* base;
  int64_t rows, K, ld;
  bool vec;  // 16-byte aligned rows: float4 loads
  const float* p = nullptr;
  int koff = 0, soff = 0;
  float r[16];
  __device__ void init(int64_t row0, int tid) {
    const ChunkSlot c = ChunkSlot::pairs(tid);
    const int64_t row = row0 + c.row;
    koff = c.k, soff = c.soff;
    p = row < rows ? base + row * ld : nullptr;
  }
  __device__ void fetch(int64_t k0, __half*) {
    const int64_t k = k0 + koff;
    if (p && vec && k + 16 <= K) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float4 f = reinterpret_cast<const float4*>(p + k)[i];
        r[4 * i] = f.x, r[4 * i + 1] = f.y, r[4 * i + 2] = f.z, r[4 * i + 3] = f.w;
      }
    } else {
#pragma unroll
      for (int i = 0; i < 16; ++i) r[i] = (p && k + i < K) ? p[k + i] : 0.f;
    }
  }
  __device__ void stage(__half* tile) const { store16(tile + soff, r); }
  __device__ void complete() const {}
};

// Implicit-GEMM A for conv: row m = output pixel (img, oy, ox), column k = (ci, ky, kx). up = 1
// reads x [h, w] as if upsampled to [2h, 2w] by nearest neighbour (conv2d_upsampled). T: the
// activations' element type.
// The gather is the conv's inner loop, so each element costs a table read, a bit test and the
// load (the index arithmetic it replaced took about 30 instructions per element, against the 2
// mma a thread issues per element it gathers):
// - `valid` (per thread): bit j says whether tap j % KK of this pixel lies inside the image, the
//   KK bits repeated so that the 16 bits of a chunk starting at any tap are one shift away;
// - table() (per block, shared memory): the offset of chunk element j (j < SPAN) from tap 0 of the
//   chunk's first channel, for each parity class of the pixel's top-left tap (up = 1 maps taps to
//   source pixels by (parity + ky) / 2; up = 0 uses class 0).
// Offsets are int: tc_conv2d_fits() (tc_kernels.h) keeps (channels + 2) * h * w below 2^31.
template <int KS, class T = float>
struct ConvRows {
  static constexpr bool kAsync = false;
  static constexpr int KK = KS * KS, SPAN = KK + 15;
  static_assert(SPAN <= 32, "the validity bits of a chunk must fit one word");
  const T* x;
  int64_t M, K;
  int h, w, ho, wo, stride, pad, up;
  const T* img = nullptr;    // this thread's image
  const int* tab = nullptr;  // its parity class's row of table()
  int o0 = 0;                // offset in img of tap (0, 0) of channel 0, in source pixels (may be negative)
  int koff = 0, soff = 0;
  uint32_t valid = 0;        // 0 for rows past M: nothing is read
  static constexpr bool F32 = sizeof(T) == 4;
  std::conditional_t<F32, float, uint32_t> r[F32 ? 16 : 8];  // the chunk: f32 values, or f16 bit pairs
  __device__ static int* table() {
    __shared__ int t[4 * SPAN];
    return t;
  }
  // Writes table(): the kernel's barrier after init orders it before any fetch.
  __device__ void init(int64_t row0, int tid) {
    const ChunkSlot c = ChunkSlot::columns(tid);
    const int64_t m = row0 + c.row;
    koff = c.k, soff = c.soff;
    const int hw = h * w;
    int* t = table();
    for (int i = static_cast<int>(threadIdx.x); i < 4 * SPAN; i += static_cast<int>(blockDim.x)) {
      const int cls = i / SPAN, j = i - cls * SPAN, tap = j % KK;
      t[i] = (j / KK) * hw + (((cls >> 1) + tap / KS) >> up) * w + (((cls & 1) + tap % KS) >> up);
    }
    img = x;
    tab = t;
    valid = 0;
    if (m >= M) return;
    const int64_t plane = static_cast<int64_t>(ho) * wo;
    const int64_t n = m / plane;
    const int p = static_cast<int>(m - n * plane);
    const int oy = p / wo, ox = p - oy * wo;
    const int iy0 = oy * stride - pad, ix0 = ox * stride - pad;  // >> below: floor, also for -1
    img = x + n * (K / KK) * static_cast<int64_t>(hw);
    o0 = (iy0 >> up) * w + (ix0 >> up);
    if (up) tab = t + ((iy0 & 1) * 2 + (ix0 & 1)) * SPAN;
    uint32_t v = 0;
    for (int tap = 0; tap < KK; ++tap) {
      const int iy = iy0 + tap / KS, ix = ix0 + tap % KS;
      if (iy >= 0 && iy < (h << up) && ix >= 0 && ix < (w << up)) v |= 1u << tap;
    }
    for (int s = 0; s < SPAN; s += KK) valid |= v << s;
  }
  __device__ void fetch(int64_t k0, __half*) {
    const int64_t k = k0 + koff;
    const int c0 = static_cast<int>(k / KK), rr0 = static_cast<int>(k) - c0 * KK;
    uint32_t vm = valid >> rr0;
    const int64_t left = K - k;  // the last tile's chunk may run past K
    if (left < 16) vm &= left > 0 ? (1u << left) - 1u : 0u;
    const T* src = img + (o0 + c0 * h * w);
    const int* tj = tab + rr0;
    if constexpr (F32) {
#pragma unroll
      for (int i = 0; i < 16; ++i) r[i] = (vm >> i) & 1u ? to_f32(src[tj[i]]) : 0.f;
    } else {
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const uint32_t lo = (vm >> (2 * i)) & 1u ? __half_as_ushort(src[tj[2 * i]]) : 0u;
        const uint32_t hi = (vm >> (2 * i + 1)) & 1u ? __half_as_ushort(src[tj[2 * i + 1]]) : 0u;
        r[i] = lo | hi << 16;
      }
    }
  }
  __device__ void stage(__half* tile) const {
    __half* dst = tile + soff;
    if constexpr (F32) {
      store16(dst, r);
    } else {  // f16 activations go to shared memory as they are
      uint4 lo, hi;
      lo.x = r[0], lo.y = r[1], lo.z = r[2], lo.w = r[3];
      hi.x = r[4], hi.y = r[5], hi.z = r[6], hi.w = r[7];
      reinterpret_cast<uint4*>(dst)[0] = lo;
      reinterpret_cast<uint4*>(dst)[1] = hi;
    }
  }
  __device__ void complete() const {}
};

// f16 weights (and f16 activations as A, rows of K) need no conversion: on sm_80+ they go global ->
// shared with cp.async, issued with the next tile's loads and waited for just before the tile's
// __syncthreads; tails and rows past N are written directly (the destination buffer is free at
// issue time). Mapping: QuadSlot, 16 bytes a lane (a row's 64 bytes of the tile in one request).
struct F16Rows {
  static constexpr bool kAsync = true;
  // Whether rows of K halves from p can take the 16-byte copies.
  static bool vec_ok(const void* p, int64_t K) { return K % 8 == 0 && reinterpret_cast<uintptr_t>(p) % 16 == 0; }
  const __half* base;
  int64_t rows, K;
  bool vec;  // K % 8 == 0 and a 16-byte aligned base: 16-byte copies
  Stack<__half> stack{};
  const __half* p[2] = {nullptr, nullptr};
  int koff = 0, soff = 0;
  __device__ void init(int64_t row0, int tid) {
    const QuadSlot c = QuadSlot::of(tid);
    koff = c.sub * 8;
    soff = c.soff;
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int64_t row = row0 + c.row + j * (BM / 2);
      p[j] = row < rows ? stack.row(base, row, K) : nullptr;
    }
  }
  __device__ void fetch(int64_t k0, __half* tile) {
    const int64_t k = k0 + koff;
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      __half* dst = tile + soff + j * QuadSlot::kSecond;
      if (p[j] && vec && k + 8 <= K) {
        cp_async16(dst, p[j] + k);
      } else {
#pragma unroll
        for (int i = 0; i < 8; ++i) dst[i] = (p[j] && k + i < K) ? p[j][k + i] : __ushort_as_half(0);
      }
    }
  }
  __device__ void stage(__half*) const {}
  __device__ void complete() const {
    cp_async_commit();
    cp_async_wait<0>();
  }
};

// Implicit-GEMM A for conv over a channels-last (NHWC) f16 copy of the input (conv_nhwc.cu makes
// it), k ordered (ky, kx, ci) to match weights reordered to [co][ky][kx][ci]: the 8 channels of one
// tap of one pixel are 16 contiguous bytes, so the gather is cp.async like F16Rows, with none of
// ConvRows' per-element loads through registers. C % 8 == 0, so a chunk never straddles two taps
// (and K = KS * KS * C is a whole number of chunks). Taps outside the image, chunks past K and rows
// past M are written as zeros. Mapping: QuadSlot. up = 1: x is read as if upsampled 2x (nearest).
template <int KS>
struct NhwcConvRows {
  static constexpr bool kAsync = true;
  const __half* x;  // [n][h][w][C]
  int64_t M;
  int C, h, w, ho, wo, stride, pad, up;
  const __half* img[2] = {nullptr, nullptr};  // the rows' images, null past M
  int iy0[2] = {0, 0}, ix0[2] = {0, 0};       // their top-left taps, in (upsampled) input pixels
  int koff = 0, soff = 0;
  __device__ void init(int64_t row0, int tid) {
    const QuadSlot c = QuadSlot::of(tid);
    koff = c.sub * 8;
    soff = c.soff;
    const int plane = ho * wo;
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int64_t m = row0 + c.row + j * (BM / 2);
      if (m >= M) continue;
      const int n = static_cast<int>(m / plane), p = static_cast<int>(m - static_cast<int64_t>(n) * plane);
      const int oy = p / wo, ox = p - oy * wo;
      img[j] = x + static_cast<int64_t>(n) * h * w * C;
      iy0[j] = oy * stride - pad;
      ix0[j] = ox * stride - pad;
    }
  }
  __device__ void fetch(int64_t k0, __half* tile) {
    const int k = static_cast<int>(k0) + koff;
    const int tap = k / C, ci = k - tap * C;
    const int ky = tap / KS, kx = tap - ky * KS;
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      __half* dst = tile + soff + j * QuadSlot::kSecond;
      const int iy = iy0[j] + ky, ix = ix0[j] + kx;
      if (img[j] && tap < KS * KS && iy >= 0 && iy < (h << up) && ix >= 0 && ix < (w << up))
        cp_async16(dst, img[j] + static_cast<int64_t>((iy >> up) * w + (ix >> up)) * C + ci);
      else
        *reinterpret_cast<uint4*>(dst) = uint4{};
    }
  }
  __device__ void stage(__half*) const {}
  __device__ void complete() const {
    cp_async_commit();
    cp_async_wait<0>();
  }
};

// q8_0 (34-byte blocks) and q4_0 (18-byte blocks): K % 32 == 0 (enforced at upload), so a k-tile
// of a row is exactly one block. Blocks are only 2-byte aligned: 16-bit loads. Mapping: QuadSlot
// (lane s takes elements 8s..8s+7: q8_0 bytes 8s.., q4_0 the low nibbles of bytes 0-7 / 8-15 for
// s = 0 / 1 and the high ones for s = 2 / 3).
template <bool Q4>
struct QRows {
  static constexpr bool kAsync = false;
  const uint8_t* base;
  int64_t rows, K, row_bytes;
  Stack<uint8_t> stack{};
  const uint8_t* p[2] = {nullptr, nullptr};
  int qoff = 0, soff = 0;
  bool hi = false;  // q4_0: high nibbles
  unsigned short d[2] = {0, 0}, q[2][4];
  __device__ void init(int64_t row0, int tid) {
    const QuadSlot c = QuadSlot::of(tid);
    qoff = 1 + 4 * (Q4 ? (c.sub & 1) : c.sub);  // in 16-bit words from the block's start (after d)
    hi = Q4 && c.sub >= 2;
    soff = c.soff;
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int64_t row = row0 + c.row + j * (BM / 2);
      p[j] = row < rows ? stack.row(base, row, row_bytes) : nullptr;
    }
  }
  __device__ void fetch(int64_t k0, __half*) {
    constexpr int BLOCK = Q4 ? 18 : 34;
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      if (!p[j] || k0 >= K) {
        d[j] = 0;
#pragma unroll
        for (int i = 0; i < 4; ++i) q[j][i] = 0;
        continue;
      }
      const unsigned short* b = reinterpret_cast<const unsigned short*>(p[j] + (k0 >> 5) * BLOCK);
      d[j] = b[0];
#pragma unroll
      for (int i = 0; i < 4; ++i) q[j][i] = b[qoff + i];
    }
  }
  // Dequantizes in f16 pairs: 0x6400 | u is the half 1024 + u (u < 1024), so q - 8 (q4_0) or the
  // int8 q (q8_0, stored biased by 128 with an xor) come out exact from one subtraction, and the
  // scale's multiply rounds once: bit-identical to rounding d * q from f32, at a few instructions
  // a pair instead of a convert, a multiply and a pack per element.
  __device__ void stage(__half* tile) const {
    const __half2 bias = u32_as_half2(Q4 ? 0x64086408u : 0x64806480u);  // 1032 (1024 + 8), 1152 (1024 + 128)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const __half2 dd = __halves2half2(__ushort_as_half(d[j]), __ushort_as_half(d[j]));
      uint32_t u[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const uint32_t w = q[j][i];
        const uint32_t x = (w & 0xFFu) | (w & 0xFF00u) << 8;  // bytes 2i, 2i + 1 -> the two halves
        const uint32_t v = Q4 ? ((hi ? x >> 4 : x) & 0x000F000Fu) | 0x64006400u : (x ^ 0x00800080u) | 0x64006400u;
        u[i] = half2_as_u32(__hmul2(__hsub2(u32_as_half2(v), bias), dd));
      }
      uint4 o;
      o.x = u[0], o.y = u[1], o.z = u[2], o.w = u[3];
      *reinterpret_cast<uint4*>(tile + soff + j * QuadSlot::kSecond) = o;
    }
  }
  __device__ void complete() const {}
};

// Stores: operator() writes one result, pair() the results at (m, n) and (m, n + 1) (the latter
// only if n + 1 < N), which the kernel's fragments hold side by side. ACC: add to what c holds
// (Backend::linear_add: the residual read and written by the thread that computed the result).
template <class T = float, bool ACC = false>
struct DenseOut {
  T* c;
  int64_t ldc;
  __device__ void operator()(int64_t m, int64_t n, float v) const {
    T* p = c + m * ldc + n;
    *p = from_f32<T>(ACC ? v + to_f32(*p) : v);
  }
  __device__ void pair(int64_t m, int64_t n, float v0, float v1, int64_t N) const {
    T* p = c + m * ldc + n;
    // n is even: one 2-element access where rows keep pairs aligned.
    if (n + 1 < N && ldc % 2 == 0 && reinterpret_cast<uintptr_t>(c) % (2 * sizeof(T)) == 0) {
      if constexpr (sizeof(T) == 4) {
        float2 f;
        if (ACC) f = *reinterpret_cast<const float2*>(p), v0 += f.x, v1 += f.y;
        f.x = v0, f.y = v1;
        *reinterpret_cast<float2*>(p) = f;
      } else {
        if (ACC) {
          const float2 f = __half22float2(*reinterpret_cast<const __half2*>(p));
          v0 += f.x, v1 += f.y;
        }
        *reinterpret_cast<__half2*>(p) = __floats2half2_rn(v0, v1);
      }
    } else {
      (*this)(m, n, v0);
      if (n + 1 < N) (*this)(m, n + 1, v1);
    }
  }
};

// Output columns in groups of `part` to separate [M, part] tensors (tc_linear_n); part is even, so
// a pair never straddles two.
template <class T = float>
struct SplitCols {
  T* c[3];
  int64_t part;
  __device__ T* out(int64_t i) const { return i == 0 ? c[0] : i == 1 ? c[1] : c[2]; }  // as in Stack::row
  __device__ void operator()(int64_t m, int64_t n, float v) const {
    const int64_t i = n / part;
    out(i)[m * part + (n - i * part)] = from_f32<T>(v);
  }
  __device__ void pair(int64_t m, int64_t n, float v0, float v1, int64_t) const {
    const int64_t i = n / part;
    DenseOut<T>{out(i), part}.pair(m, n - i * part, v0, v1, part);
  }
};

// GEGLU's output y[M, F] = a * gelu(gate) (Backend::linear_geglu), for the GEMM over a [2F, K]
// weight whose rows Stack::geglu_f interleaves: WarpTile::store pairs each fragment of a's results
// with the fragment of their gates and stores through pair(); the split-K reduction (which sees
// the interleaved columns) through operator(). F % 8 == 0.
template <class T = float>
struct GegluOut {
  static constexpr bool kGeglu = true;
  T* y;
  int64_t F;
  __device__ void operator()(int64_t m, int64_t c, float v) const { y[m * F + c] = from_f32<T>(v); }
  __device__ void pair(int64_t m, int64_t c, float v0, float v1) const { DenseOut<T>{y, F}.pair(m, c, v0, v1, F); }
};
template <class S, class = void>
struct IsGeglu : std::false_type {};
template <class S>
struct IsGeglu<S, std::void_t<decltype(S::kGeglu)>> : std::integral_constant<bool, S::kGeglu> {};

// NCHW output; m < 2^31 (tc_conv2d_fits): 32-bit division, a fraction of a 64-bit one's cost.
// Added to each result, in this order, where given: chan [images, co] (broadcast over the plane: a
// ResBlock's timestep embedding) and res (an NCHW tensor of y's shape, which may be y: a skip).
template <class T = float>
struct ConvOut {
  T* y;
  int64_t co, plane;
  const T* res = nullptr;
  const T* chan = nullptr;
  __device__ void put(int64_t i, int64_t c, float v) const {
    if (chan) v += to_f32(chan[c]);
    if (res) v += to_f32(res[i]);
    y[i] = from_f32<T>(v);
  }
  __device__ void at(int64_t m, int64_t n, int64_t& i, int64_t& c) const {
    const int img = static_cast<int>(m) / static_cast<int>(plane);
    c = img * co + n;
    i = c * plane + (m - img * plane);
  }
  __device__ void operator()(int64_t m, int64_t n, float v) const {
    int64_t i, c;
    at(m, n, i, c);
    put(i, c, v);
  }
  __device__ void pair(int64_t m, int64_t n, float v0, float v1, int64_t N) const {
    int64_t i, c;
    at(m, n, i, c);
    put(i, c, v0);
    if (n + 1 < N) put(i + plane, c + 1, v1);
  }
};

// Calls f(wl) with the weight loader for weights of type t at `data` ([N, K] rows). Host code,
// shared by the launches and the emulation.
template <class F>
void with_weights(DType t, const void* data, int64_t N, int64_t K, F&& f) {
  const uint8_t* wp = static_cast<const uint8_t*>(data);
  switch (t) {
    case DType::F32: {
      const bool vec = K % 4 == 0 && reinterpret_cast<uintptr_t>(wp) % 16 == 0;
      return f(F32Rows{reinterpret_cast<const float*>(wp), N, K, K, vec});
    }
    case DType::F16: return f(F16Rows{reinterpret_cast<const __half*>(wp), N, K, F16Rows::vec_ok(wp, K)});
    case DType::Q8_0: return f(QRows<false>{wp, N, K, static_cast<int64_t>(dtype_row_bytes(t, K))});
    case DType::Q4_0: return f(QRows<true>{wp, N, K, static_cast<int64_t>(dtype_row_bytes(t, K))});
  }
}

// Split-K for a grid of `blocks` output tiles over K (`tiles` k-tiles) on `sms` SMs: splits (1:
// none) of tiles_per_split k-tiles each. The UNet's 1280-channel layers at 8x8 and 16x16 latents
// make 10-40 tiles with K up to 11520, leaving most SMs idle. The split count minimises a rough
// time in units of one unsplit tile's run: ceil(blocks * s / sms) / s for the waves, plus the
// partials' traffic (blocks * 128 * 128 * 8 bytes per split at ~4.8 TB/s, against ~3.5 TFLOP/s per
// SM: 2.9 * blocks / K per split) and the reduction's launch (~2 us: 214 / K). Each split keeps
// >= 4 k-tiles; at most 32 splits. Host code (the emulation tests it).
struct SplitK {
  int splits = 1, tiles_per_split = 0;
};
inline SplitK split_k(int64_t blocks, int64_t K, int sms) {
  SplitK sk;
  const int tiles = static_cast<int>((K + BK - 1) / BK);
  if (sms <= 0 || blocks <= 0 || blocks >= 2 * static_cast<int64_t>(sms)) return sk;
  const auto waves = [&](int s) { return static_cast<double>((blocks * s + sms - 1) / sms) / s; };
  const int most = tiles / 4 < 32 ? tiles / 4 : 32;
  double best = waves(1);
  int splits = 1;
  for (int s = 2; s <= most; ++s) {
    const double cost = waves(s) + (2.9 * static_cast<double>(blocks) * s + 214.0) / static_cast<double>(K);
    if (cost < best) best = cost, splits = s;
  }
  if (splits < 2) return sk;
  sk.tiles_per_split = (tiles + splits - 1) / splits;
  sk.splits = (tiles + sk.tiles_per_split - 1) / sk.tiles_per_split;  // no empty split
  return sk;
}

// The split plan a launch of an M x N x K GEMM makes (split_on: TcCtx::split_k) and the f32
// workspace it then asks for; callers that share one scratch buffer size it with these.
inline SplitK split_plan(int64_t M, int64_t N, int64_t K, int sms, bool split_on) {
  return split_on ? split_k(((M + BM - 1) / BM) * ((N + BN - 1) / BN), K, sms) : SplitK{};
}
inline size_t splitk_workspace_bytes(const SplitK& sk, int64_t M, int64_t N) {
  return sk.splits > 1 ? static_cast<size_t>(sk.splits) * M * N * sizeof(float) : 0;
}

// Split-K partial sums (blockIdx.z = split): f32 workspace [split][M][N], or [split][N][m] when
// n_major (a conv's output is NCHW: the reduction then writes whole planes in order).
struct SplitOut {
  float* ws;
  int64_t M, N;
  bool n_major;
  __device__ void operator()(int64_t m, int64_t n, float v) const {
    ws[static_cast<int64_t>(blockIdx.z) * M * N + (n_major ? n * M + m : m * N + n)] = v;
  }
  __device__ void pair(int64_t m, int64_t n, float v0, float v1, int64_t) const {
    float* p = ws + static_cast<int64_t>(blockIdx.z) * M * N + (n_major ? n * M + m : m * N + n);
    p[0] = v0;
    if (n + 1 < N) p[n_major ? M : 1] = v1;
  }
};

// Sums the splits' partials (+ bias) into the real output, in the workspace's order. I: the index
// type, int where the whole workspace fits (64-bit division costs several times a 32-bit one, and
// this kernel is bound by little else).
template <class Store, class I = int64_t>
__global__ void splitk_reduce_kernel(const float* ws, int splits, SplitOut layout, const float* bias, Store st) {
  cuda::pdl_entry();
  const I M = static_cast<I>(layout.M), N = static_cast<I>(layout.N), total = M * N;
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < total; i += static_cast<I>(gridDim.x) * blockDim.x) {
    const I q = layout.n_major ? i / M : i / N;
    const I m = layout.n_major ? i - q * M : q, n = layout.n_major ? q : i - q * N;
    float s = bias ? bias[n] : 0.f;
    for (int z = 0; z < splits; ++z) s += ws[z * total + i];
    st(m, n, s);
  }
}

// The same for GegluOut: partials in the interleaved column order (Stack::geglu_f), layout.N = 2F.
template <class Store, class I = int64_t>
__global__ void splitk_geglu_reduce_kernel(const float* ws, int splits, SplitOut layout, const float* bias, Store st) {
  cuda::pdl_entry();
  const I M = static_cast<I>(layout.M), N = static_cast<I>(layout.N), F = N / 2, plane = M * N, total = M * F;
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < total; i += static_cast<I>(gridDim.x) * blockDim.x) {
    const I m = i / F, c = i - m * F, p = m * N + (c >> 3) * 16 + (c & 7);
    float a = bias ? bias[c] : 0.f, g = bias ? bias[F + c] : 0.f;
    for (int z = 0; z < splits; ++z) a += ws[z * plane + p], g += ws[z * plane + p + 8];
    st(m, c, a * gelu_erf(g));
  }
}

// Two resident blocks per SM (so at most 128 registers a thread) where shared memory holds two
// (sm_80+: 2 x 41 KB): every instantiation fits without spilling on sm_90. Turing's 64 KB holds
// one, and there the cap would only cause spills.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#define SD_TC_GEMM_MIN_BLOCKS 1
#else
#define SD_TC_GEMM_MIN_BLOCKS 2
#endif

// One warp's share of a k-tile: its 64x32 piece (rows wm*64, cols wn*32 of the block tile) from
// the tiles as, bs. ldmatrix row addresses (see tc_common.cuh): A rows lane % 16, k half lane / 16;
// W rows (lane % 8) + (lane / 16) * 8, k half (lane / 8) % 2.
struct WarpTile {
  int a_off, b_off, wm, wn, lane;
  float acc[4][4][4];
  __device__ explicit WarpTile(int tid) : wm((tid >> 5) & 1), wn(tid >> 6), lane(tid & 31) {
    a_off = (wm * 64 + (lane & 15)) * BKP + (lane >> 4) * 8;
    b_off = (wn * 32 + (lane & 7) + (lane >> 4) * 8) * BKP + ((lane >> 3) & 1) * 8;
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;
  }
  __device__ void mma(const __half* as, const __half* bs) {
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      uint32_t af[4][4], bf[2][4];
#pragma unroll
      for (int mi = 0; mi < 4; ++mi) ldmatrix_x4(af[mi], as + a_off + mi * 16 * BKP + kk);
#pragma unroll
      for (int nj = 0; nj < 2; ++nj) ldmatrix_x4(bf[nj], bs + b_off + nj * 16 * BKP + kk);
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni)
          mma_16816(acc[mi][ni], af[mi], bf[ni >> 1][(ni & 1) * 2], bf[ni >> 1][(ni & 1) * 2 + 1]);
    }
  }
  // The bias once per column (the stores could alias it, so the compiler would reload it per store).
  template <class Store>
  __device__ void store(int64_t M, int64_t N, int64_t m0, int64_t n0, const float* bias, const Store& st) const {
    if constexpr (IsGeglu<Store>::value) store_geglu(M, m0, n0, bias, st);
    else store_pairs(M, N, m0, n0, bias, st);
  }
  template <class Store>
  __device__ void store_pairs(int64_t M, int64_t N, int64_t m0, int64_t n0, const float* bias, const Store& st) const {
    const int g = lane >> 2, t4 = lane & 3;
    float bv[4][2];
#pragma unroll
    for (int ni = 0; ni < 4; ++ni)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int64_t n = n0 + wn * 32 + ni * 8 + t4 * 2 + e;
        bv[ni][e] = bias && n < N ? bias[n] : 0.f;
      }
#pragma unroll
    for (int mi = 0; mi < 4; ++mi)
#pragma unroll
      for (int ni = 0; ni < 4; ++ni)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const int64_t m = m0 + wm * 64 + mi * 16 + g + r * 8;
          const int64_t n = n0 + wn * 32 + ni * 8 + t4 * 2;
          if (m < M && n < N) st.pair(m, n, acc[mi][ni][2 * r] + bv[ni][0], acc[mi][ni][2 * r + 1] + bv[ni][1], N);
        }
  }
  // GegluOut: fragments 2h hold a's results for the 8 outputs whose gates fragments 2h + 1 hold, at
  // the same lanes (Stack::geglu_f); the bias is in the weight's own [a | gate] order.
  template <class Store>
  __device__ void store_geglu(int64_t M, int64_t m0, int64_t n0, const float* bias, const Store& st) const {
    const int g = lane >> 2, t4 = lane & 3;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t c = (n0 + wn * 32 + h * 16) / 2 + t4 * 2;  // F % 8 == 0: c + 1 < F with c
      if (c >= st.F) continue;
      float ba[2] = {0.f, 0.f}, bg[2] = {0.f, 0.f};
      if (bias)
#pragma unroll
        for (int e = 0; e < 2; ++e) ba[e] = bias[c + e], bg[e] = bias[st.F + c + e];
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const int64_t m = m0 + wm * 64 + mi * 16 + g + r * 8;
          const float* a = acc[mi][2 * h] + 2 * r;
          const float* gt = acc[mi][2 * h + 1] + 2 * r;
          if (m < M) st.pair(m, c, (a[0] + ba[0]) * gelu_erf(gt[0] + bg[0]), (a[1] + ba[1]) * gelu_erf(gt[1] + bg[1]));
        }
    }
  }
};

// Block (x, y) computes the 128x128 output tile (x, y) over the k-tiles [z * tiles_per_split, +tiles_per_split).
// Double-buffered: the next tile's loads are issued before this tile's mma and staged after it.
template <class ALoad, class WLoad, class Store>
__global__ void __launch_bounds__(THREADS, SD_TC_GEMM_MIN_BLOCKS)
    tc_gemm_kernel(int64_t M, int64_t N, int64_t K, ALoad al, WLoad wl, const float* bias, Store st,
                   int tiles_per_split) {
  cuda::pdl_wait();
  __shared__ __align__(16) __half As[2][BM * BKP];
  __shared__ __align__(16) __half Bs[2][BN * BKP];
  const int tid = threadIdx.x;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * BM, n0 = static_cast<int64_t>(blockIdx.y) * BN;
  static_assert(BM == 128 && BN == 128 && THREADS == 256 && BK == 32, "the loaders' thread mappings");
  al.init(m0, tid);
  wl.init(n0, tid);
  __syncthreads();  // loaders may fill per-block tables in init (ConvRows)
  const int tiles = static_cast<int>((K + BK - 1) / BK);
  const int t0 = static_cast<int>(blockIdx.z) * tiles_per_split, t1 = min(tiles, t0 + tiles_per_split);
  al.fetch(static_cast<int64_t>(t0) * BK, As[0]);
  wl.fetch(static_cast<int64_t>(t0) * BK, Bs[0]);
  al.stage(As[0]);
  wl.stage(Bs[0]);
  al.complete();
  wl.complete();
  __syncthreads();
  cuda::pdl_trigger();  // here, not at entry: there the two together cost the linear_n kernels a spill

  WarpTile wt(tid);
  // A warp whose 64x32 piece lies wholly past M or N has nothing to compute: on a 32-row layer
  // (the 1280-channel convs at 4x4 latents, batch 2) half the warps, on the last N tile of a
  // 320-wide layer half of them. Warp-uniform; it still loads and syncs with the block.
  const bool live = m0 + wt.wm * 64 < M && n0 + wt.wn * 32 < N;
  for (int t = t0; t < t1; ++t) {
    const int cur = (t - t0) & 1;
    const bool more = t + 1 < t1;
    if (more) {
      al.fetch(static_cast<int64_t>(t + 1) * BK, As[cur ^ 1]);
      wl.fetch(static_cast<int64_t>(t + 1) * BK, Bs[cur ^ 1]);
    }
    if (live) wt.mma(As[cur], Bs[cur]);
    if (more) {
      al.stage(As[cur ^ 1]);
      wl.stage(Bs[cur ^ 1]);
      al.complete();
      wl.complete();
    }
    __syncthreads();
  }
  wt.store(M, N, m0, n0, bias, st);
}

// The multi-stage pipeline for loaders that copy with cp.async alone (kAsync: f16 rows, the NHWC
// conv gather): STAGES tiles in flight, so a tile's loads have STAGES - 1 tiles of mma to land in
// (with two, a load issued at the start of a tile had one tile's mma, about as long as an H100's
// global latency under load, and the barrier then waited for the slowest). Tiles in dynamic shared
// memory: tc_gemm_async_smem() bytes.
template <int STAGES>
constexpr size_t tc_gemm_async_smem() {
  return static_cast<size_t>(STAGES) * (BM + BN) * BKP * sizeof(__half);
}
template <int STAGES, class ALoad, class WLoad, class Store>
__global__ void __launch_bounds__(THREADS, SD_TC_GEMM_MIN_BLOCKS)
    tc_gemm_async_kernel(int64_t M, int64_t N, int64_t K, ALoad al, WLoad wl, const float* bias, Store st,
                         int tiles_per_split) {
  cuda::pdl_entry();
  static_assert(ALoad::kAsync && WLoad::kAsync, "loaders that stage through registers take tc_gemm_kernel");
  __half* As = reinterpret_cast<__half*>(dynamic_smem());  // [STAGES][BM * BKP], then W's
  __half* Bs = As + STAGES * BM * BKP;
  const int tid = threadIdx.x;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * BM, n0 = static_cast<int64_t>(blockIdx.y) * BN;
  al.init(m0, tid);
  wl.init(n0, tid);
  const int tiles = static_cast<int>((K + BK - 1) / BK);
  const int t0 = static_cast<int>(blockIdx.z) * tiles_per_split, t1 = min(tiles, t0 + tiles_per_split);
  // One commit group per tile, empty past the end, so that wait<STAGES - 2> always means "the
  // oldest tile has landed".
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (t0 + s < t1) {
      al.fetch(static_cast<int64_t>(t0 + s) * BK, As + s * BM * BKP);
      wl.fetch(static_cast<int64_t>(t0 + s) * BK, Bs + s * BN * BKP);
    }
    cp_async_commit();
  }
  WarpTile wt(tid);
  const bool live = m0 + wt.wm * 64 < M && n0 + wt.wn * 32 < N;  // as in tc_gemm_kernel
  int cur = 0, nxt = STAGES - 1;  // the buffers of tiles t and t + STAGES - 1
  for (int t = t0; t < t1; ++t) {
    cp_async_wait<STAGES - 2>();
    // Tile t is in shared memory for every thread, and every warp is done with tile t - 1, whose
    // buffer the fetch below refills.
    __syncthreads();
    if (t + STAGES - 1 < t1) {
      al.fetch(static_cast<int64_t>(t + STAGES - 1) * BK, As + nxt * BM * BKP);
      wl.fetch(static_cast<int64_t>(t + STAGES - 1) * BK, Bs + nxt * BN * BKP);
    }
    cp_async_commit();
    if (live) wt.mma(As + cur * BM * BKP, Bs + cur * BN * BKP);
    cur = cur + 1 == STAGES ? 0 : cur + 1;
    nxt = nxt + 1 == STAGES ? 0 : nxt + 1;
  }
  cp_async_wait<0>();  // only empty groups remain; a thread must not end with copies pending
  wt.store(M, N, m0, n0, bias, st);
}

}  // namespace tc_gemm
}  // namespace cuda
}  // namespace sd
