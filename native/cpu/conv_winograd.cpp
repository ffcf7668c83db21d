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
// thread count or on how the work is split.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/cpu_features.h"
#include "core/quant.h"
#include "cpu/conv.h"
#include "cpu/cpu_backend.h"

namespace sd {
namespace {

constexpr int64_t kKc = 128;       // Ci block: V[16][kKc][kT] is 1 MB at kT = 128
constexpr int64_t kT = 128;        // tiles per task block (a multiple of every NR)
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

struct Ukr {
  ConvUkr fn;
  int mr, nr;
};

// U chunk: u[(xi * cp + r) * Ci + ci] = (G g G^T)[xi] of weight row co0 + r, channel ci (rows
// r >= rows are zero so the micro-kernel can run full MR blocks).
void transform_weights(CpuBackend& be, const void* w, DType wtype, int64_t Ci, int64_t co0,
                       int64_t rows, int64_t cp, float* u) {
  const int64_t K = Ci * 9;
  const size_t rb = dtype_row_bytes(wtype, K);
  const auto* wb = static_cast<const uint8_t*>(w);
  be.pool().run(cp, [&](int64_t r, int thread) {
    if (r >= rows) {
      for (int xi = 0; xi < 16; ++xi) std::fill(u + (xi * cp + r) * Ci, u + (xi * cp + r + 1) * Ci, 0.0f);
      return;
    }
    // Taps are regrouped as tap[k][ci] and each transform stage is a loop over contiguous
    // channels, so it vectorizes (with 9-float strides and 16 output streams through a pointer
    // array it ran scalar: 24 % of a 640 @ 32x32 call).
    auto* buf = reinterpret_cast<float*>(be.scratch(thread, static_cast<size_t>(K + 21 * Ci) * 4));
    float* tap = buf + K;
    float* tg = tap + 9 * Ci;  // G g: [4][3][Ci]
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
      std::memcpy(tg + c * Ci, tap + c * Ci, static_cast<size_t>(Ci) * 4);
      g_rows(tap + c * Ci, tap + (3 + c) * Ci, tap + (6 + c) * Ci, tg + (3 + c) * Ci,
             tg + (6 + c) * Ci);
      std::memcpy(tg + (9 + c) * Ci, tap + (6 + c) * Ci, static_cast<size_t>(Ci) * 4);
    }
    for (int i = 0; i < 4; ++i) {  // (G g) G^T, row i of G g
      const float* ti = tg + 3 * i * Ci;
      float* o = u + ((4 * i) * cp + r) * Ci;
      const int64_t ps = cp * Ci;  // plane stride
      std::memcpy(o, ti, static_cast<size_t>(Ci) * 4);
      g_rows(ti, ti + Ci, ti + 2 * Ci, o + ps, o + 2 * ps);
      std::memcpy(o + 3 * ps, ti + 2 * Ci, static_cast<size_t>(Ci) * 4);
    }
  });
}

struct Geo {
  int64_t th, tw, tpi, tiles;  // tile grid per image, tiles per image, over the batch
};

// V[(xi * kc + kk) * kT + j] = (B^T d B)[xi] for channel c0 + kk of tile t0 + j (zero past the
// last tile). Tiles run in raster order, so a tile row segment reads 4 input rows: the vertical
// combination is done on whole rows first (contiguous), then the horizontal one per tile.
__attribute__((noinline)) void transform_input(const ConvGeom& g, const Geo& q, const float* x, int64_t c0, int64_t kc,
                     int64_t t0, float* v, float* rowbuf) {
  const int64_t nt = std::min(kT, q.tiles - t0);
  const int64_t W = g.W, wp = 2 * q.tw + 2;  // padded row: input column c sits at c + 1
  float* pr = rowbuf;                        // 4 padded input rows
  float* cr = rowbuf + 4 * wp;               // 4 vertically combined rows
  for (int64_t kk = 0; kk < kc; ++kk) {
    float* vk = v + kk * kT;
    for (int64_t j = 0; j < nt;) {
      const int64_t t = t0 + j, n = t / q.tpi, ty = (t % q.tpi) / q.tw, tx0 = t % q.tw;
      const int64_t len = std::min(nt - j, q.tw - tx0);
      const float* xc = x + (n * g.Ci + c0 + kk) * g.H * W;
      // Columns 2*tx0 - 1 .. 2*(tx0+len) + 1 of input rows 2*ty - 1 .. 2*ty + 2.
      const int64_t cb = 2 * tx0 - 1, cn = 2 * len + 2;
      for (int r = 0; r < 4; ++r) {
        float* p = pr + r * wp;
        const int64_t iy = 2 * ty - 1 + r;
        if (iy < 0 || iy >= g.H) {
          std::fill(p, p + cn, 0.0f);
          continue;
        }
        const float* xr = xc + iy * W;
        const int64_t lo = std::max<int64_t>(0, -cb), hi = std::min(cn, W - cb);
        for (int64_t c = 0; c < lo; ++c) p[c] = 0.0f;
        if (hi > lo) std::memcpy(p + lo, xr + cb + lo, static_cast<size_t>(hi - lo) * 4);
        for (int64_t c = std::max(lo, hi); c < cn; ++c) p[c] = 0.0f;
      }
      const float *r0 = pr, *r1 = pr + wp, *r2 = pr + 2 * wp, *r3 = pr + 3 * wp;
      float *w0 = cr, *w1 = cr + wp, *w2 = cr + 2 * wp, *w3 = cr + 3 * wp;
      for (int64_t c = 0; c < cn; ++c) {  // B^T d
        w0[c] = r0[c] - r2[c];
        w1[c] = r1[c] + r2[c];
        w2[c] = r2[c] - r1[c];
        w3[c] = r1[c] - r3[c];
      }
      for (int i = 0; i < 4; ++i) {  // (B^T d) B
        const float* wr = cr + i * wp;
        float* o0 = vk + (4 * i + 0) * kc * kT + j;
        float* o1 = vk + (4 * i + 1) * kc * kT + j;
        float* o2 = vk + (4 * i + 2) * kc * kT + j;
        float* o3 = vk + (4 * i + 3) * kc * kT + j;
        for (int64_t s = 0; s < len; ++s) {
          const float a = wr[2 * s], b = wr[2 * s + 1], c = wr[2 * s + 2], d = wr[2 * s + 3];
          o0[s] = a - c;
          o1[s] = b + c;
          o2[s] = c - b;
          o3[s] = b - d;
        }
      }
      j += len;
    }
    for (int xi = 0; xi < 16; ++xi) std::fill(vk + xi * kc * kT + nt, vk + xi * kc * kT + kT, 0.0f);
  }
}

// y for output channels co0 .. co0 + rows of tiles t0 .. from m[(xi * mp + r) * kT + j].
__attribute__((noinline)) void transform_output(const ConvGeom& g, const Geo& q, const float* m, int64_t mp, int64_t co0,
                      int64_t rows, const float* bias, int64_t t0, float* ob, float* y) {
  const int64_t nt = std::min(kT, q.tiles - t0), HWo = g.Ho * g.Wo;
  for (int64_t r = 0; r < rows; ++r) {
    const float* mr = m + r * kT;
    const int64_t s = mp * kT;  // stride between xi planes
    for (int64_t j = 0; j < nt; ++j) {
      float c0[4], c1[4];  // M A: per row i, the two output columns
      for (int i = 0; i < 4; ++i) {
        const float a = mr[(4 * i) * s + j], b = mr[(4 * i + 1) * s + j];
        const float c = mr[(4 * i + 2) * s + j], d = mr[(4 * i + 3) * s + j];
        c0[i] = a + b + c;
        c1[i] = b - c - d;
      }
      ob[j] = c0[0] + c0[1] + c0[2];
      ob[kT + j] = c1[0] + c1[1] + c1[2];
      ob[2 * kT + j] = c0[1] - c0[2] - c0[3];
      ob[3 * kT + j] = c1[1] - c1[2] - c1[3];
    }
    const float b = bias ? bias[co0 + r] : 0.0f;
    for (int64_t j = 0; j < nt; ++j) {
      const int64_t t = t0 + j, n = t / q.tpi, oy = 2 * ((t % q.tpi) / q.tw), ox = 2 * (t % q.tw);
      float* yp = y + (n * g.Co + co0 + r) * HWo + oy * g.Wo + ox;
      const bool right = ox + 1 < g.Wo;
      yp[0] = ob[j] + b;
      if (right) yp[1] = ob[kT + j] + b;
      if (oy + 1 < g.Ho) {
        yp[g.Wo] = ob[2 * kT + j] + b;
        if (right) yp[g.Wo + 1] = ob[3 * kT + j] + b;
      }
    }
  }
}

}  // namespace

void conv_force_winograd(ConvWinograd mode) { g_force = mode; }

bool conv2d_winograd(CpuBackend& be, const ConvGeom& g, const float* x, const void* w,
                     DType wtype, const float* bias, float* y) {
  if (g.k != 3 || g.stride != 1 || g.pad_top != 1 || g.pad_left != 1 || g.Ho != g.H ||
      g.Wo != g.W || g.Ci <= 0 || g.N <= 0 || g.Co <= 0 || g.H <= 0 || g.W <= 0)
    return false;
  if (dtype_is_quantized(wtype) && (g.Ci * 9) % 32 != 0) return false;
  Ukr k{nullptr, 0, 0};
  const Isa isa = isa_active();
  (void)isa;
#if defined(SDNODE_HAVE_AVX2)
  if (isa == Isa::Avx2) k = {conv_ukr_avx2, kConvMrAvx2, kConvNrAvx2};
#endif
#if defined(SDNODE_HAVE_AVX512)
  if (isa == Isa::Avx512) k = {conv_ukr_avx512, kConvMrAvx512, kConvNrAvx512};
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
  std::unique_ptr<float[]> ubuf(new float[static_cast<size_t>(16 * chunk * Ci)]);
  float* u = ubuf.get();

  const int64_t n_blocks = (q.tiles + kT - 1) / kT;
  const int64_t kcmax = std::min(kKc, Ci);
  const int threads = be.threads();
  for (int64_t co0 = 0; co0 < g.Co; co0 += chunk) {
    const int64_t rows = std::min(chunk, g.Co - co0), cp = round_up(rows, mr);
    transform_weights(be, w, wtype, Ci, co0, rows, cp, u);
    // Output-channel groups: each redoes its tile block's input transform (14 % of a 640 @ 32x32
    // call with 3 groups), so as few as fit M and feed 2 tasks per thread, of equal size.
    int64_t groups = (cp + kGroup - 1) / kGroup;
    while (n_blocks * groups < 2 * threads && cp / (groups + 1) >= 4 * mr) ++groups;
    const int64_t gs = round_up((cp + groups - 1) / groups, mr);
    groups = (cp + gs - 1) / gs;
    const size_t v_floats = static_cast<size_t>(16 * kcmax * kT);
    const size_t m_floats = static_cast<size_t>(16 * gs * kT);
    const size_t o_floats = static_cast<size_t>(4 * kT + 8 * (2 * q.tw + 2) + 16);
    const size_t bytes = (v_floats + m_floats + o_floats) * 4 + kcmax * 8 + 256;
    be.pool().run(n_blocks * groups, [&](int64_t task, int thread) {
      const int64_t blk = task / groups, gi = task % groups;
      const int64_t t0 = blk * kT, m0 = gi * gs, mp = std::min(gs, cp - m0);
      auto* base = reinterpret_cast<float*>(
          (reinterpret_cast<uintptr_t>(be.scratch(thread, bytes)) + 63) & ~uintptr_t(63));
      float* v = base;
      float* m = v + v_floats;
      float* ob = m + m_floats;
      float* rowbuf = ob + 4 * kT;
      auto* boff = reinterpret_cast<int64_t*>(rowbuf + 8 * (2 * q.tw + 2) + 16);
      for (int64_t kk = 0; kk < kcmax; ++kk) boff[kk] = kk * kT;
      const float zeros[16] = {};
      for (int64_t c0 = 0; c0 < Ci; c0 += kKc) {
        const int64_t kc = std::min(kKc, Ci - c0);
        transform_input(g, q, x, c0, kc, t0, v, rowbuf);
        for (int xi = 0; xi < 16; ++xi)
          for (int64_t r = 0; r < mp; r += mr) {
            const float* a = u + (xi * cp + m0 + r) * Ci + c0;
            for (int64_t p = 0; p < kT; p += k.nr)
              k.fn(kc, a, Ci, v + xi * kc * kT + p, boff, m + (xi * mp + r) * kT + p, kT, zeros,
                   c0 > 0);
          }
      }
      transform_output(g, q, m, mp, co0 + m0, std::min(mp, rows - m0), bias, t0, ob, y);
    });
  }
  return true;
}

}  // namespace sd
