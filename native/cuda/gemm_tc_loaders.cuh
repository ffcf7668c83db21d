// The tensor-core GEMM's tile (128 x 128 x 32, 256 threads) and the loaders that fill its shared
// memory: activations, the implicit-GEMM conv gathers and weights of every type (the protocol is
// below). Included by gemm_tc_kernel.cuh; a header of its own so that the host emulation runs it.
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

// A gathered 16-element chunk into its tile row: f32 values rounded, or f16 bit pairs (f16
// activations go to shared memory as they are).
__device__ __forceinline__ void store_chunk(__half* dst, const float (&r)[16]) { store16(dst, r); }
__device__ __forceinline__ void store_chunk(__half* dst, const uint32_t (&r)[8]) {
  uint4 lo, hi;
  lo.x = r[0], lo.y = r[1], lo.z = r[2], lo.w = r[3];
  hi.x = r[4], hi.y = r[5], hi.z = r[6], hi.w = r[7];
  reinterpret_cast<uint4*>(dst)[0] = lo;
  reinterpret_cast<uint4*>(dst)[1] = hi;
}

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
  __device__ void stage(__half* tile) const { store_chunk(tile + soff, r); }
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

// The k order of a conv over tap-major weights: (channel block, ky, kx, ci within the block), CB
// channels a block; CB = 0: one block of all C channels, (ky, kx, ci), as f16 weights are reordered
// ([co][ky][kx][ci]). Quantized weights keep their 32-blocks, which run along (ci, ky, kx): 32
// channels x KK taps are exactly KK blocks, so CB = 32 keeps each block's scale within one channel
// block (conv_nhwc_kernel.cuh, repack_q_taps_kernel). Maps k to its tap and channel.
template <int KK, int CB>
struct TapOrder {
  __device__ static void at(int k, int C, int& tap, int& ci) {
    if constexpr (CB == 0) {
      tap = k / C;
      ci = k - tap * C;
    } else {
      const int g = k / (KK * CB), r = k - g * (KK * CB);
      tap = r / CB;
      ci = g * CB + r - tap * CB;
    }
  }
};

// Implicit-GEMM A for conv over a channels-last (NHWC) f16 copy of the input (conv_nhwc.cu makes
// it), k in TapOrder<KS * KS, CB> to match the tap-major weights: the 8 channels of one tap of one
// pixel are 16 contiguous bytes, so the gather is cp.async like F16Rows, with none of ConvRows'
// per-element loads through registers. C % 8 == 0 (and C % CB == 0), so a chunk never straddles two
// taps (and K = KS * KS * C is a whole number of chunks). Taps outside the image, chunks past K and
// rows past M are written as zeros. Mapping: QuadSlot. up = 1: x is read as if upsampled 2x
// (nearest).
template <int KS, int CB = 0>
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
    int tap, ci;
    TapOrder<KS * KS, CB>::at(static_cast<int>(k0) + koff, C, tap, ci);
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

// Implicit-GEMM A for a 3x3 conv over tap-major weights from the NCHW input itself, for inputs whose
// NHWC copy would be too large (tc_conv2d_nhwc_fits): k in TapOrder<9, CB>, so each 16-element chunk
// is 16 consecutive channels of one tap (C % 16 == 0, CB % 16 == 0), read plane by plane through
// registers. Mapping: ChunkSlot::columns, as ConvRows (32 adjacent pixels a warp). T: the
// activations' element type; up = 1: x read as if upsampled 2x (nearest).
template <int CB, class T = float>
struct ConvTapRows {
  static constexpr bool kAsync = false;
  static constexpr bool F32 = sizeof(T) == 4;
  const T* x;
  int64_t M;
  int C, h, w, ho, wo, stride, pad, up;
  const T* img = nullptr;  // this row's image; null past M
  int iy0 = 0, ix0 = 0;
  int koff = 0, soff = 0;
  std::conditional_t<F32, float, uint32_t> r[F32 ? 16 : 8];
  __device__ void init(int64_t row0, int tid) {
    const ChunkSlot c = ChunkSlot::columns(tid);
    const int64_t m = row0 + c.row;
    koff = c.k, soff = c.soff;
    if (m >= M) return;
    const int plane = ho * wo;
    const int n = static_cast<int>(m / plane), p = static_cast<int>(m - static_cast<int64_t>(n) * plane);
    const int oy = p / wo, ox = p - oy * wo;
    img = x + static_cast<int64_t>(n) * C * h * w;
    iy0 = oy * stride - pad;
    ix0 = ox * stride - pad;
  }
  __device__ void fetch(int64_t k0, __half*) {
    int tap, ci;
    TapOrder<9, CB>::at(static_cast<int>(k0) + koff, C, tap, ci);
    const int iy = iy0 + tap / 3, ix = ix0 + tap % 3;
    const bool in = img && tap < 9 && iy >= 0 && iy < (h << up) && ix >= 0 && ix < (w << up);
    const int hw = h * w;
    const T* src = in ? img + static_cast<int64_t>(ci) * hw + (iy >> up) * w + (ix >> up) : img;
    if constexpr (F32) {
#pragma unroll
      for (int i = 0; i < 16; ++i) r[i] = in ? src[i * hw] : 0.f;
    } else {
#pragma unroll
      for (int i = 0; i < 8; ++i)
        r[i] = in ? __half_as_ushort(src[2 * i * hw]) | static_cast<uint32_t>(__half_as_ushort(src[(2 * i + 1) * hw])) << 16
                  : 0u;
    }
  }
  __device__ void stage(__half* tile) const { store_chunk(tile + soff, r); }
  __device__ void complete() const {}
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

// q8_0 / q4_0 3x3 conv weights repacked tap-major (conv_nhwc_kernel.cuh, repack_q_taps_kernel):
// the same bytes, as quants [N][K] (q8_0) or [N][K / 2] (q4_0) in TapOrder<9, 32>, then the blocks'
// scales [N][K / 32] in their own order. k-tile kt = (channel block g, tap t) holds channels 32 g +
// c, c < 32, whose quants are contiguous (q4_0 as within a block: byte b holds c = b, high nibble
// c = b + 16) and whose scale is block 9 g + (9 c + t) / 32 of the row: a lane's 8 channels span
// at most three blocks. The dequantization is QRows' with a scale per element, so the values are the
// same bits. Mapping: QuadSlot; C % 32 == 0, so K % 288 == 0 and the quant loads are 8-byte aligned.
template <bool Q4>
struct QTapRows {
  static constexpr bool kAsync = false;
  const uint8_t* base;  // the repacked tensor
  int64_t rows, K;
  // Row j of this thread is row0 + j * BM / 2 of the tile's first (live > j): its quants and scales
  // lie j * BM / 2 rows after q and sc (one pointer each: registers are what this kernel lacks).
  const uint8_t* q = nullptr;
  const unsigned short* sc = nullptr;
  int live = 0, sub = 0, soff = 0;
  uint2 raw[2];
  uint32_t d[3];       // the scales of up to three blocks: row j's in bits 16 j ..
  uint32_t pick = 0;  // 2 bits per element: which of d scales it
  __device__ void init(int64_t row0, int tid) {
    const QuadSlot c = QuadSlot::of(tid);
    sub = c.sub;
    soff = c.soff;
    const int64_t qbytes = Q4 ? K / 2 : K;
    const unsigned short* scales = reinterpret_cast<const unsigned short*>(base + rows * qbytes);
    const int64_t row = row0 + c.row;
    live = row >= rows ? 0 : row + BM / 2 >= rows ? 1 : 2;
    q = base + row * qbytes + (Q4 ? 8 * (sub & 1) : 8 * sub);
    sc = scales + row * (K / 32);
  }
  __device__ void fetch(int64_t k0, __half*) {
    const int kt = static_cast<int>(k0 >> 5), g = kt / 9, t = kt - g * 9;
    const int c0 = 8 * sub, b0 = (9 * c0 + t) >> 5;
    pick = 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) pick |= static_cast<uint32_t>(((9 * (c0 + i) + t) >> 5) - b0) << (2 * i);
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      if (j == 0) d[0] = d[1] = d[2] = 0u;
      if (j >= live || k0 >= K) {
        raw[j] = make_uint2(0u, 0u);
        continue;
      }
      const int64_t qrow = j * (BM / 2) * (Q4 ? K / 2 : K), srow = j * (BM / 2) * (K / 32);
      raw[j] = *reinterpret_cast<const uint2*>(q + qrow + (Q4 ? k0 / 2 : k0));
#pragma unroll
      for (int i = 0; i < 3; ++i) d[i] |= static_cast<uint32_t>(sc[srow + 9 * g + min(b0 + i, 8)]) << (16 * j);
    }
  }
  // Selects, not d[b]: a runtime index would put d in local memory.
  __device__ unsigned short scale(int j, uint32_t b) const {
    return static_cast<unsigned short>((b == 0 ? d[0] : b == 1 ? d[1] : d[2]) >> (16 * j));
  }
  // As QRows::stage, with the two elements of a pair scaled by their own blocks' scales.
  __device__ void stage(__half* tile) const {
    const __half2 bias = u32_as_half2(Q4 ? 0x64086408u : 0x64806480u);
    const bool hi = Q4 && sub >= 2;
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      uint32_t u[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const uint32_t word = i < 2 ? raw[j].x : raw[j].y;
        const uint32_t w = (word >> (16 * (i & 1))) & 0xFFFFu;
        const uint32_t x = (w & 0xFFu) | (w & 0xFF00u) << 8;
        const uint32_t v = Q4 ? ((hi ? x >> 4 : x) & 0x000F000Fu) | 0x64006400u : (x ^ 0x00800080u) | 0x64006400u;
        const unsigned short s0 = scale(j, (pick >> (4 * i)) & 3u), s1 = scale(j, (pick >> (4 * i + 2)) & 3u);
        const __half2 dd = __halves2half2(__ushort_as_half(s0), __ushort_as_half(s1));
        u[i] = half2_as_u32(__hmul2(__hsub2(u32_as_half2(v), bias), dd));
      }
      uint4 o;
      o.x = u[0], o.y = u[1], o.z = u[2], o.w = u[3];
      *reinterpret_cast<uint4*>(tile + soff + j * QuadSlot::kSecond) = o;
    }
  }
  __device__ void complete() const {}
};

}  // namespace tc_gemm
}  // namespace cuda
}  // namespace sd
