// Winograd F(2x2, 3x3) for 3x3 stride-1 pad-1 convolutions (Lavin & Gray 2015). Each output 2x2
// tile comes from a 4x4 input tile d: Y = A^T [ (G g G^T) (.) (B^T d B) ] A, so the Ci sum becomes
// 16 independent GEMMs M[xi] = U[xi] . V[xi] (Co x Ci times Ci x tiles) that do 16 multiplies per
// 4 outputs instead of 36: 2.25x fewer FMAs than the implicit GEMM in conv.cpp.
//
// Layout (per call): output channels run in chunks whose transformed weights U[16][chunk][Ci]
// stay <= 16 MB (a whole U of a 2560->1280 conv would be 210 MB). Per chunk, pool tasks take
// (block of kT tiles, output-channel group). A task walks Ci in fixed blocks of kKc: it transforms
// its tiles' inputs for those channels into V[16][kc][kT] (L2-sized), then runs the conv
// micro-kernels (conv.h) with A = U rows and B = V rows (NR tiles wide), accumulating into
// M[16][group][kT]; after the last block the output transform writes y. Every output element is
// made by one task with the same kernel and the same K blocks, so the bits do not depend on the
// thread count or on how the work is split. The input/output transforms are built per ISA level
// (conv_winograd_xform.inc); the path runs only at AVX2 and AVX-512 (the levels with those and
// with conv micro-kernels measured here).
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/cpu_features.h"
#include "core/quant.h"
#include "cpu/conv.h"
#include "cpu/conv_winograd.h"
#include "cpu/cpu_backend.h"

namespace sd {
namespace {

constexpr int64_t kKc = 128;       // Ci block: V[16][kKc][kT] is 1 MB at kT = 128
constexpr int64_t kT = kWinoT, kVs = kWinoVs;
constexpr int64_t kGroup = 512;    // output channels per task at most: M is 16*512*kT floats (4 MB)
constexpr int64_t kUBytes = int64_t{16} << 20;  // transformed-weight chunk cap

ConvWinograd g_force = ConvWinograd::Auto;

int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

// SDNODE_CONV_WINOGRAD: 0 = off (before/after measurements), unset or 1 = the measured policy,
// all = wherever the geometry allows (to run the network goldens through it).
int env_setting() {
  static const int v = [] {
    const char* e = std::getenv("SDNODE_CONV_WINOGRAD");
    if (!e || !*e) return 1;
    if (std::strcmp(e, "all") == 0) return 2;
    return e[0] == '0' ? 0 : 1;
  }();
  return v;
}

using WinoIn = void (*)(const ConvGeom&, int64_t, const WinoSeg*, int, int64_t, const float*,
                        int64_t, int64_t, int64_t, float*, float*);
using WinoOut = void (*)(const ConvGeom&, const WinoSeg*, int, int64_t, const float*, int64_t,
                         int64_t, int64_t, const float*, float*, float*);
struct Kernels {  // the level's micro-kernel and transforms
  ConvUkr fn;
  int mr, nr;
  WinoIn in;
  WinoOut out;
};

// U chunk, packed for the micro-kernel: plane xi (cp * Ci floats) holds, per block of MR rows and
// block of kKc channels, an MR x kc row-major panel, so each kernel call reads its A as one
// contiguous stream (with U rows Ci apart it read MR streams from L3; packing took UNet 320 @
// 64x64 b2 from ~1.5x to ~1.7x the implicit GEMM, noisy). Element
// (xi, r, ci) = (G g G^T)[xi] of weight row co0 + r, channel ci; rows >= rows are zero so the
// kernel can run full MR blocks.
int64_t u_offset(int64_t Ci, int mr, int64_t r, int64_t ci) {
  const int64_t cb = ci / kKc * kKc, kcb = std::min(kKc, Ci - cb);
  return r / mr * mr * Ci + cb * mr + r % mr * kcb + (ci - cb);
}

__attribute__((noinline)) void copy_floats(float* dst, const float* src, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * 4);
}

void transform_weights(CpuBackend& be, const void* w, DType wtype, int64_t Ci, int64_t co0,
                       int64_t rows, int64_t cp, int mr, float* u) {
  const int64_t K = Ci * 9;
  const size_t rb = dtype_row_bytes(wtype, K);
  const auto* wb = static_cast<const uint8_t*>(w);
  be.pool().run(cp, [&](int64_t r, int thread) {
    const int64_t ps = cp * Ci;  // plane stride
    if (r >= rows) {
      for (int xi = 0; xi < 16; ++xi)
        for (int64_t cb = 0; cb < Ci; cb += kKc)
          std::fill_n(u + xi * ps + u_offset(Ci, mr, r, cb), std::min(kKc, Ci - cb), 0.0f);
      return;
    }
    // Taps are regrouped as tap[k][ci] and each transform stage is a loop over contiguous
    // channels, so it vectorizes (with 9-float strides and 16 output streams through a pointer
    // array it ran scalar: 24 % of a 640 @ 32x32 call).
    auto* buf = reinterpret_cast<float*>(be.scratch(thread, static_cast<size_t>(K + 37 * Ci) * 4));
    float* tap = buf + K;
    float* tg = tap + 9 * Ci;   // G g: [4][3][Ci]
    float* ur = tg + 12 * Ci;   // this row's U: [16][Ci]
    const float* g = reinterpret_cast<const float*>(wb + (co0 + r) * rb);
    if (wtype != DType::F32) {
      to_f32_row(wtype, wb + (co0 + r) * rb, buf, K);
      g = buf;
    }
    for (int64_t ci = 0; ci < Ci; ++ci)
      for (int t = 0; t < 9; ++t) tap[t * Ci + ci] = g[ci * 9 + t];
    // Rows (in) -> (out): out0 = a, out1 = (a + b + d) / 2, out2 = (a - b + d) / 2, out3 = d.
    auto g_rows = [Ci](const float* __restrict a, const float* __restrict b,
                       const float* __restrict d, float* __restrict o1, float* __restrict o2) {
      for (int64_t i = 0; i < Ci; ++i) {
        o1[i] = 0.5f * (a[i] + b[i] + d[i]);
        o2[i] = 0.5f * (a[i] - b[i] + d[i]);
      }
    };
    for (int c = 0; c < 3; ++c) {  // G g, per kernel column c: tg[i][c]
      copy_floats(tg + c * Ci, tap + c * Ci, Ci);
      g_rows(tap + c * Ci, tap + (3 + c) * Ci, tap + (6 + c) * Ci, tg + (3 + c) * Ci,
             tg + (6 + c) * Ci);
      copy_floats(tg + (9 + c) * Ci, tap + (6 + c) * Ci, Ci);
    }
    for (int i = 0; i < 4; ++i) {  // (G g) G^T, row i of G g
      const float* ti = tg + 3 * i * Ci;
      float* o = ur + 4 * i * Ci;
      copy_floats(o, ti, Ci);
      g_rows(ti, ti + Ci, ti + 2 * Ci, o + Ci, o + 2 * Ci);
      copy_floats(o + 3 * Ci, ti + 2 * Ci, Ci);
    }
    // GCC expands these short copies (kKc floats) inline as rep movsq, which was most of this
    // transform; through the libc call it went from 17 % to ~10 % of a 640 @ 32x32 call.
    for (int xi = 0; xi < 16; ++xi)
      for (int64_t cb = 0; cb < Ci; cb += kKc)
        copy_floats(u + xi * ps + u_offset(Ci, mr, r, cb), ur + xi * Ci + cb,
                    std::min(kKc, Ci - cb));
  });
}

struct Geo {
  int64_t th, tw, tpi, tiles;  // tile grid per image, tiles per image, over the batch
};

// The block's tiles as row segments: tiles j .. j + len of the block are tiles tx0 .. of tile
// row ty of image n.
int make_segments(const Geo& q, int64_t t0, int64_t nt, WinoSeg* segs) {
  int n = 0;
  for (int64_t j = 0; j < nt;) {
    const int64_t t = t0 + j, tx0 = t % q.tw;
    const int64_t len = std::min(nt - j, q.tw - tx0);
    segs[n++] = {j, len, t / q.tpi, (t % q.tpi) / q.tw, tx0};
    j += len;
  }
  return n;
}

}  // namespace

void conv_force_winograd(ConvWinograd mode) { g_force = mode; }

bool conv2d_winograd(CpuBackend& be, const ConvGeom& g, const float* x, const void* w,
                     DType wtype, const float* bias, float* y) {
  if (g.k != 3 || g.stride != 1 || g.pad_top != 1 || g.pad_left != 1 || g.Ho != g.H ||
      g.Wo != g.W || g.Ci <= 0 || g.N <= 0 || g.Co <= 0 || g.H <= 0 || g.W <= 0)
    return false;
  if (dtype_is_quantized(wtype) && (g.Ci * 9) % 32 != 0) return false;
  Kernels k{nullptr, 0, 0, nullptr, nullptr};
  const Isa isa = isa_active();
  (void)isa;
#if defined(SDNODE_HAVE_AVX2)
  if (isa == Isa::Avx2) k = {conv_ukr_avx2, kConvMrAvx2, kConvNrAvx2, wino_input_avx2, wino_output_avx2};
#endif
#if defined(SDNODE_HAVE_AVX512)
  if (isa == Isa::Avx512) k = {conv_ukr_avx512, kConvMrAvx512, kConvNrAvx512, wino_input_avx512,
                                  wino_output_avx512};
#endif
  if (!k.fn) return false;
  if (g_force == ConvWinograd::Off) return false;
  Geo q;
  q.th = (g.Ho + 1) / 2;
  q.tw = (g.Wo + 1) / 2;
  q.tpi = q.th * q.tw;
  q.tiles = g.N * q.tpi;
  if (g_force == ConvWinograd::Auto) {
    // Where it measured faster (conv_winograd_bench, 2 threads, AVX2 and AVX-512): SD's 3x3
    // convs from 32x32 at batch 2 / 64x64 at batch 1 up, 1.2-1.9x. Fewer tiles than two blocks
    // (UNet 16x16 and 8x8: 0.7x, 0.3x) leave the blocks part empty and the weight transform
    // unpaid; few channels (the 4 -> 320 input conv: 0.2x) make the transforms dominate.
    const int e = env_setting();
    if (e == 0) return false;
    if (e == 1 && (q.tiles < 2 * kT || g.Ci < 64 || g.Co < 64)) return false;
  }
  const int64_t mr = k.mr, Ci = g.Ci;
  // Output-channel chunk: U[16][cp][Ci] within kUBytes, a whole number of MR blocks.
  const int64_t cmax = std::max<int64_t>(mr, kUBytes / (64 * Ci) / mr * mr);
  const int64_t chunk = std::min(round_up(g.Co, mr), cmax);
  auto* u = reinterpret_cast<float*>(be.op_buffer(static_cast<size_t>(16 * chunk * Ci) * 4));

  const int64_t n_blocks = (q.tiles + kT - 1) / kT;
  const int64_t kcmax = std::min(kKc, Ci);
  const int threads = be.threads();
  for (int64_t co0 = 0; co0 < g.Co; co0 += chunk) {
    const int64_t rows = std::min(chunk, g.Co - co0), cp = round_up(rows, mr);
    transform_weights(be, w, wtype, Ci, co0, rows, cp, k.mr, u);
    // Output-channel groups: each redoes its tile block's input transform (14 % of a 640 @ 32x32
    // call with 3 groups), so as few as fit M and feed 2 tasks per thread, of equal size.
    int64_t groups = (cp + kGroup - 1) / kGroup;
    while (n_blocks * groups < 2 * threads && cp / (groups + 1) >= 4 * mr) ++groups;
    const int64_t gs = round_up((cp + groups - 1) / groups, mr);
    groups = (cp + gs - 1) / gs;
    // Planes of V and M are an odd number of cache lines apart (+16 floats), and V rows too (kVs):
    // with power-of-two strides the output transform's 16 plane streams shared one L1 set.
    const int64_t vps = kcmax * kVs + 16, mps = gs * kT + 16;
    const size_t v_floats = static_cast<size_t>(16 * vps);
    const size_t m_floats = static_cast<size_t>(16 * mps);
    const size_t o_floats = static_cast<size_t>(4 * kT + 8 * (2 * q.tw + 2) + 16);
    const size_t bytes = (v_floats + m_floats + o_floats) * 4 + kcmax * 8 + 256;
    be.pool().run(n_blocks * groups, [&](int64_t task, int thread) {
      const int64_t blk = task / groups, gi = task % groups;
      const int64_t t0 = blk * kT, m0 = gi * gs, mp = std::min(gs, cp - m0);
      const int64_t nt = std::min(kT, q.tiles - t0);
      WinoSeg segs[kT];
      const int nseg = make_segments(q, t0, nt, segs);
      auto* base = reinterpret_cast<float*>(
          (reinterpret_cast<uintptr_t>(be.scratch(thread, bytes)) + 63) & ~uintptr_t(63));
      float* v = base;
      float* m = v + v_floats;
      float* ob = m + m_floats;
      float* rowbuf = ob + 4 * kT;
      auto* boff = reinterpret_cast<int64_t*>(rowbuf + 8 * (2 * q.tw + 2) + 16);
      for (int64_t kk = 0; kk < kcmax; ++kk) boff[kk] = kk * kVs;
      const float zeros[16] = {};
      for (int64_t c0 = 0; c0 < Ci; c0 += kKc) {
        const int64_t kc = std::min(kKc, Ci - c0);
        k.in(g, q.tw, segs, nseg, nt, x, c0, kc, vps, v, rowbuf);
        for (int xi = 0; xi < 16; ++xi)
          for (int64_t r = 0; r < mp; r += mr) {
            const float* a = u + xi * cp * Ci + u_offset(Ci, k.mr, m0 + r, c0);
            for (int64_t p = 0; p < kT; p += k.nr)
              k.fn(kc, a, kc, v + xi * vps + p, boff, m + xi * mps + r * kT + p, kT, zeros,
                   c0 > 0);
          }
      }
      k.out(g, segs, nseg, nt, m, mps, co0 + m0, std::min(mp, rows - m0), bias, ob, y);
    });
  }
  return true;
}

}  // namespace sd
