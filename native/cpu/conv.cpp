// conv2d as implicit GEMM over NCHW: y[n][Co, P] = W[Co, K] . patches[K, P]. Work is split into
// tasks of (pixel block x output-channel rows). Inside a task, for each K block, B is made ready
// once and every MR-row weight micro-panel runs over its NR-pixel panels. B comes in two ways:
//   Grid   (stride 1): the block's input rows are copied once into a zero-padded tile of width
//          Wo + k - 1; tap (ci, ky, kx) of a panel is then the tile read at a fixed offset, so the
//          kernel reads B in place (no 9x im2col copy). Panels follow output rows when NR divides
//          Wo, else they run across the tile's rows and the two junk columns are dropped on store.
//   Pack   (stride 2, 1x1, narrow images): im2col of KC x NR per panel (a row copy for 1x1:
//          reading 1x1 B in place was slower, 185 vs 250 GFLOP/s, as its rows sit 2^k apart;
//          narrow 3x3 stride 1 copies rows from zero-padded image tiles).
// Tasks: pixel blocks first, output-channel splits only as far as the threads need, because each
// channel task makes its block's B again (the split never changes an output's bits).
#include "cpu/conv.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/arena.h"
#include "core/cpu_features.h"
#include "core/quant.h"
#include "cpu/cpu_backend.h"
#include "cpu/conv_int8.h"

namespace sd {
namespace {

// K block: a multiple of 32 so quantized rows split on block boundaries. Bitwise results depend on
// it (partial sums are stored between blocks), so it is the same for every shape and thread count.
constexpr int64_t kKc = 256;

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }
int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

// Portable micro-kernel (also the Scalar level): MR x NR with float accumulation.
constexpr int kMrScalar = 4, kNrScalar = 8;
void conv_ukr_scalar(int64_t kc, const float* a, int64_t lda, const float* b,
                     const int64_t* boff, float* c, int64_t ldc, const float* init,
                     bool accumulate) {
  float acc[kMrScalar][kNrScalar];
  for (int r = 0; r < kMrScalar; ++r)
    for (int j = 0; j < kNrScalar; ++j) acc[r][j] = accumulate ? c[r * ldc + j] : init[r];
  for (int64_t kk = 0; kk < kc; ++kk) {
    const float* bk = b + boff[kk];
    for (int r = 0; r < kMrScalar; ++r) {
      const float av = a[r * lda + kk];
      for (int j = 0; j < kNrScalar; ++j) acc[r][j] += av * bk[j];
    }
  }
  for (int r = 0; r < kMrScalar; ++r)
    for (int j = 0; j < kNrScalar; ++j) c[r * ldc + j] = acc[r][j];
}

void dequant_generic_f16(const void* x, float* y, int64_t n) { to_f32_row(DType::F16, x, y, n); }
void dequant_generic_q8(const void* x, float* y, int64_t n) { to_f32_row(DType::Q8_0, x, y, n); }
void dequant_generic_q4(const void* x, float* y, int64_t n) { to_f32_row(DType::Q4_0, x, y, n); }

struct Kernels {
  ConvUkr ukr;
  int mr, nr;
  ConvDequant f16, q8, q4;
};

Kernels pick_kernels() {
  Kernels k{conv_ukr_scalar, kMrScalar, kNrScalar, dequant_generic_f16, dequant_generic_q8,
            dequant_generic_q4};
  const Isa isa = isa_active();
  (void)isa;
#if defined(SDNODE_HAVE_AVX2)
  if (isa == Isa::Avx2 || isa == Isa::Avx512) {
    k = {conv_ukr_avx2, kConvMrAvx2, kConvNrAvx2, conv_dequant_f16_avx2, conv_dequant_q8_0_avx2,
         conv_dequant_q4_0_avx2};
  }
#endif
#if defined(SDNODE_HAVE_AVX512)
  if (isa == Isa::Avx512) {
    k.ukr = conv_ukr_avx512;
    k.mr = kConvMrAvx512;
    k.nr = kConvNrAvx512;
  }
#endif
#if defined(SDNODE_HAVE_NEON)
  if (isa == Isa::Neon || isa == Isa::Dotprod) {
    k = {conv_ukr_neon, kConvMrNeon, kConvNrNeon, conv_dequant_f16_neon, conv_dequant_q8_0_neon,
         conv_dequant_q4_0_neon};
  }
#endif
  return k;
}

enum class Mode { Pack, Grid };

// How a call is cut into pixel blocks and how B is made; shared read-only by all tasks.
struct Layout {
  Mode mode;
  int mr, nr;
  int64_t K, P, HW, kk2;
  int64_t n_blocks;
  int64_t blocks_per_image;       // Grid; Pack blocks run across images (batch 2 at 8x8 reads
  int64_t ppi, ppb;               // the weights once): panels per image, per block
  int64_t rows, tw, cs, max_ch;   // Grid: output rows per block, tile width, floats per channel
  bool row_aligned;               // Grid: NR divides Wo, panels never cross output rows
  bool padded;                    // Pack, 3x3 stride 1: panels copied from zero-padded images
  int64_t max_img;                // padded: images one block touches at most
};

// SDNODE_CONV_SPLIT=old restores the previous task split (kept for before/after measurements).
bool old_split() {
  static const bool v = [] {
    const char* e = std::getenv("SDNODE_CONV_SPLIT");
    return e && std::strcmp(e, "old") == 0;
  }();
  return v;
}

Layout make_layout(const ConvGeom& g, int mr, int nr, int threads) {
  Layout L{};
  L.mr = mr;
  L.nr = nr;
  L.kk2 = g.k * g.k;
  L.K = g.Ci * L.kk2;
  L.P = g.Ho * g.Wo;
  L.HW = g.H * g.W;
  if (g.k == 3 && g.stride == 1 && (g.Wo % nr == 0 || g.Wo >= 40)) {
    // Rows that NR does not divide put k - 1 junk columns per row into the panels, and a tile
    // holds one image, so the weights are streamed once per image; below ~40 columns packing
    // (whose blocks span the batch) wins: 16x16, Co 1280, batch 2 measured 120 vs 98 GFLOP/s.
    L.mode = Mode::Grid;
  } else {
    L.mode = Mode::Pack;
  }
  if (L.mode == Mode::Grid) {
    L.tw = g.Wo + g.k - 1;
    L.row_aligned = g.Wo % nr == 0;
    // About 1024 tile pixels per block: the tile (KC/9 channels) stays in L2, and rows split
    // evenly so the last block is not a sliver.
    const int64_t nblk = std::max<int64_t>(1, (g.Ho * L.tw + 1023) / 1024);
    L.rows = (g.Ho + nblk - 1) / nblk;
    L.blocks_per_image = (g.Ho + L.rows - 1) / L.rows;
    L.n_blocks = g.N * L.blocks_per_image;
    // Rows of the tile plus room for the last panel's overhang, all zero.
    L.cs = round_up((L.rows + g.k - 1) * L.tw + nr + g.k, 16);
    L.max_ch = std::min<int64_t>(g.Ci, (kKc + L.kk2 - 2) / L.kk2 + 1);
  } else {
    L.ppi = (L.P + nr - 1) / nr;
    L.ppb = std::min<int64_t>(g.N * L.ppi, std::max<int64_t>(1, 512 / nr));
    // Fewer pixel blocks than threads would leave splitting output channels as the only way to
    // feed the threads, and every channel task packs the whole block again (1280 ch @ 16x16,
    // batch 2 is one block: 8 channel tasks packed it 8 times, ~20 % of the time). Cut the
    // pixels instead while a block keeps >= 8 panels (the weights are then streamed per block).
    const int64_t total = g.N * L.ppi;
    if (!old_split() && threads > 1 && ceil_div(total, L.ppb) < threads &&
        ceil_div(total, threads) >= 8)
      L.ppb = ceil_div(total, threads);
    L.n_blocks = (g.N * L.ppi + L.ppb - 1) / L.ppb;
    if (g.k == 3 && g.stride == 1 && !old_split()) {
      // The narrow 3x3 convs (UNet 16x16, 8x8): their images are copied once per K block into
      // zero-padded tiles (as Grid mode does), so packing a panel is plain row copies without
      // per-element bounds checks (packing was ~10 % of the 8x8 time).
      L.padded = true;
      L.tw = g.Wo + g.k - 1;
      L.cs = round_up((g.Ho + g.k - 1) * L.tw, 16);
      L.max_ch = std::min<int64_t>(g.Ci, (kKc + L.kk2 - 2) / L.kk2 + 1);
      L.max_img = std::min<int64_t>(g.N, ceil_div(L.ppb, L.ppi) + 1);
      // Tall narrow images would need big tiles: those keep the bounds-checked packing.
      L.padded = L.max_img * L.max_ch * L.cs <= (int64_t{1} << 20);
    }
  }
  return L;
}

// Where the NR outputs of a panel go in y's image plane: runs of consecutive pixels.
struct Runs {
  int n = 0;
  int64_t j0[8], len[8], pix[8];
  bool full(int nr) const { return n == 1 && len[0] == nr; }
};

// Padded Pack mode: patches[k0 .. k0+kc, p0 .. p0+nv) of one image from its zero-padded tile
// (channels from ci_lo, as fill_tile made it) as dst[kk * nr + j], zero beyond nv.
void pack_padded(const ConvGeom& g, const Layout& L, const float* tile, int64_t ci_lo, int64_t k0,
                 int64_t kc, int64_t p0, int64_t nv, int nr, float* dst) {
  struct Seg { int64_t src, len, j0; };  // tile offset of the run's first pixel, length, lane
  Seg segs[64];
  int nseg = 0;
  for (int64_t j = 0; j < nv;) {
    const int64_t p = p0 + j, oy = p / g.Wo, ox = p % g.Wo;
    const int64_t len = std::min(nv - j, g.Wo - ox);
    segs[nseg++] = {oy * L.tw + ox, len, j};
    j += len;
  }
  int64_t ci = k0 / L.kk2, ky = (k0 % L.kk2) / g.k, kx = k0 % g.k;
  for (int64_t kk = 0; kk < kc; ++kk) {
    float* d = dst + kk * nr;
    const float* src = tile + (ci - ci_lo) * L.cs + ky * L.tw + kx;
    for (int i = 0; i < nseg; ++i) {
      const float* sp = src + segs[i].src;
      float* o = d + segs[i].j0;
      for (int64_t t = 0; t < segs[i].len; ++t) o[t] = sp[t];
    }
    for (int64_t j = nv; j < nr; ++j) d[j] = 0.0f;
    if (++kx == g.k) {
      kx = 0;
      if (++ky == g.k) { ky = 0; ++ci; }
    }
  }
}

// Grid mode: copies input channels [ci_lo, ci_lo + nch) of image xn, rows oy0 - pad_top ..
// (R + k - 1 of them), into tile[c * cs + r * tw + col] with input column col - pad_left; zero
// outside the input and after the last row.
void fill_tile(const ConvGeom& g, const Layout& L, const float* xn, int64_t ci_lo, int64_t nch,
               int64_t oy0, int64_t R, float* tile) {
  const int64_t trows = R + g.k - 1;
  const int64_t c_lo = std::min<int64_t>(g.pad_left, L.tw);
  const int64_t c_hi = std::min<int64_t>(g.pad_left + g.W, L.tw);  // input columns [c_lo, c_hi)
  for (int64_t c = 0; c < nch; ++c) {
    float* t = tile + c * L.cs;
    const float* xc = xn + (ci_lo + c) * L.HW;
    for (int64_t r = 0; r < trows; ++r, t += L.tw) {
      const int64_t iy = oy0 - g.pad_top + r;
      if (iy < 0 || iy >= g.H) {
        std::memset(t, 0, static_cast<size_t>(L.tw) * 4);
        continue;
      }
      for (int64_t col = 0; col < c_lo; ++col) t[col] = 0.0f;
      std::memcpy(t + c_lo, xc + iy * g.W + (c_lo - g.pad_left),
                  static_cast<size_t>(c_hi - c_lo) * 4);
      for (int64_t col = c_hi; col < L.tw; ++col) t[col] = 0.0f;
    }
    std::memset(t, 0, static_cast<size_t>(L.cs - trows * L.tw) * 4);
  }
}

}  // namespace

void conv2d_cpu(CpuBackend& be, const ConvGeom& g, const float* x, const void* w, DType wtype,
                const float* bias, float* y) {
  if (g.N <= 0 || g.Co <= 0 || g.Ho <= 0 || g.Wo <= 0) return;
  if (g.Ci <= 0) {  // an empty sum: y = bias
    for (int64_t i = 0; i < g.N * g.Co; ++i)
      std::fill(y + i * g.Ho * g.Wo, y + (i + 1) * g.Ho * g.Wo, bias ? bias[i % g.Co] : 0.0f);
    return;
  }
  if ((wtype == DType::Q8_0 || wtype == DType::Q4_0) && conv2d_int8(be, g, x, w, wtype, bias, y))
    return;
  if (conv2d_winograd(be, g, x, w, wtype, bias, y)) return;
  const Kernels kn = pick_kernels();
  const int mr = kn.mr, nr = kn.nr;
  const int threads = be.threads();
  const Layout L = make_layout(g, mr, nr, threads);
  const int64_t K = L.K, P = L.P;
  const size_t row_bytes = dtype_row_bytes(wtype, K);
  const ConvDequant deq = wtype == DType::F16 ? kn.f16 : wtype == DType::Q8_0 ? kn.q8 : kn.q4;
  const auto* wb = static_cast<const uint8_t*>(w);

  // The split only changes which task computes an element, never how (same kernel, same K
  // blocks), so any split gives the same bits; it is cut finer until every thread has work.
  const int64_t n_blocks = L.n_blocks;
  int64_t mc = round_up(g.Co, mr);
  auto n_tasks = [&] { return n_blocks * ((g.Co + mc - 1) / mc); };
  if (old_split() || L.mode == Mode::Grid) {
    // Grid tiles are cheap to fill again, and smaller channel blocks keep the task's outputs
    // (re-read every K block) in L2: 640 ch @ 32x32 b2 measured 84 % with 8 tasks, 78 with 4.
    while (n_tasks() < 4 * threads && mc > 8 * mr) mc = round_up(mc / 2, mr);
  } else {
    // Each channel task packs its block's B again, so use as few as balance allows: the fewest
    // that give every thread the same number of tasks, or >= 4 tasks per thread otherwise.
    for (int64_t c = 1; threads > 1; ++c) {
      const int64_t mc_c = round_up(ceil_div(g.Co, c), mr);
      if (mc_c < 4 * mr) break;
      mc = mc_c;
      const int64_t t = n_tasks();
      if ((t >= threads && t % threads == 0) || t >= 4 * threads) break;
    }
  }
  const int64_t co_tasks = (g.Co + mc - 1) / mc;

  const int64_t kcmax = std::min(kKc, K);
  const size_t b_floats = static_cast<size_t>(
      L.mode == Mode::Grid ? L.max_ch * L.cs : L.ppb * kcmax * nr);
  const size_t a_floats = static_cast<size_t>(mr * kcmax);
  const size_t t_floats = static_cast<size_t>(mr * nr + 16);
  const size_t p_floats = L.padded ? static_cast<size_t>(L.max_img * L.max_ch * L.cs) : 0;
  const size_t scratch_bytes =
      (b_floats + a_floats + t_floats + p_floats) * 4 + 2 * kcmax * 8 + 192;

  be.pool().run(n_tasks(), [&](int64_t task, int thread) {
    const int64_t blk = task / co_tasks, ct = task % co_tasks;
    const int64_t m_begin = ct * mc, m_end = std::min(g.Co, m_begin + mc);
    auto* base = reinterpret_cast<float*>(
        (reinterpret_cast<uintptr_t>(be.scratch(thread, scratch_bytes)) + 63) & ~uintptr_t(63));
    float* bbuf = base;
    float* abuf = bbuf + b_floats;
    float* tile = abuf + a_floats;
    float* init = tile + mr * nr;
    auto* off_main = reinterpret_cast<int64_t*>(init + 16);
    int64_t* off_pack = off_main + kcmax;
    float* ptile = reinterpret_cast<float*>(
        (reinterpret_cast<uintptr_t>(off_pack + kcmax) + 63) & ~uintptr_t(63));
    for (int64_t kk = 0; kk < kcmax; ++kk) off_pack[kk] = kk * nr;

    // This block's panels: B base pointer (set per K block) and output runs.
    int64_t n_pan, oy0 = 0, R = 0, pan0 = 0, grid_n = 0;
    if (L.mode == Mode::Grid) {
      grid_n = blk / L.blocks_per_image;
      oy0 = (blk % L.blocks_per_image) * L.rows;
      R = std::min(L.rows, g.Ho - oy0);
      n_pan = L.row_aligned ? R * (g.Wo / nr) : ((R - 1) * L.tw + g.Wo + nr - 1) / nr;
    } else {
      pan0 = blk * L.ppb;
      n_pan = std::min(g.N * L.ppi, pan0 + L.ppb) - pan0;
    }
    // Image of panel i, and its position: Grid: offset in the tile; Pack: first pixel.
    auto panel_img = [&](int64_t i) -> int64_t {
      return L.mode == Mode::Grid ? grid_n : (pan0 + i) / L.ppi;
    };
    auto panel_pos = [&](int64_t i) -> int64_t {
      if (L.mode != Mode::Grid) return ((pan0 + i) % L.ppi) * nr;
      if (!L.row_aligned) return i * nr;
      const int64_t per_row = g.Wo / nr;
      return (i / per_row) * L.tw + (i % per_row) * nr;
    };
    auto panel_runs = [&](int64_t pos, Runs* rs) {
      rs->n = 0;
      if (L.mode != Mode::Grid) {
        rs->j0[0] = 0;
        rs->len[0] = std::min<int64_t>(nr, P - pos);
        rs->pix[0] = pos;
        rs->n = 1;
        return;
      }
      int64_t r = pos / L.tw, col = pos % L.tw;
      for (int64_t j = 0; j < nr && r < R; ++r, col = 0) {
        const int64_t len = std::min<int64_t>(nr - j, L.tw - col);
        if (col < g.Wo) {
          rs->j0[rs->n] = j;
          rs->len[rs->n] = std::min(len, g.Wo - col);
          rs->pix[rs->n] = (oy0 + r) * g.Wo + col;
          ++rs->n;
        }
        j += len;
      }
    };

    for (int64_t k0 = 0; k0 < K; k0 += kKc) {
      const int64_t kc = std::min(kKc, K - k0);
      // Make B ready for this K block.
      if (L.mode == Mode::Grid) {
        const int64_t ci_lo = k0 / L.kk2, ci_hi = (k0 + kc - 1) / L.kk2;
        fill_tile(g, L, x + grid_n * g.Ci * L.HW, ci_lo, ci_hi - ci_lo + 1, oy0, R, bbuf);
        int64_t ci = ci_lo, r = k0 % L.kk2;
        int64_t ky = r / g.k, kx = r % g.k;
        for (int64_t kk = 0; kk < kc; ++kk) {
          off_main[kk] = (ci - ci_lo) * L.cs + ky * L.tw + kx;
          if (++kx == g.k) {
            kx = 0;
            if (++ky == g.k) { ky = 0; ++ci; }
          }
        }
      } else if (L.padded) {
        const int64_t ci_lo = k0 / L.kk2, nch = (k0 + kc - 1) / L.kk2 - ci_lo + 1;
        const int64_t img0 = panel_img(0), img1 = panel_img(n_pan - 1);
        for (int64_t im = img0; im <= img1; ++im)
          fill_tile(g, L, x + im * g.Ci * L.HW, ci_lo, nch, 0, g.Ho,
                    ptile + (im - img0) * nch * L.cs);
        for (int64_t i = 0; i < n_pan; ++i) {
          const int64_t p0 = panel_pos(i);
          pack_padded(g, L, ptile + (panel_img(i) - img0) * nch * L.cs, ci_lo, k0, kc, p0,
                      std::min<int64_t>(nr, P - p0), nr, bbuf + i * kc * nr);
        }
      } else {
        for (int64_t i = 0; i < n_pan; ++i) {
          const int64_t p0 = panel_pos(i);
          conv_pack_patches(g, x + panel_img(i) * g.Ci * L.HW, k0, kc, p0,
                       std::min<int64_t>(nr, P - p0), nr, bbuf + i * kc * nr);
        }
      }
      auto panel_b = [&](int64_t i, int64_t pos, const int64_t** off) -> const float* {
        if (L.mode == Mode::Grid) { *off = off_main; return bbuf + pos; }
        *off = off_pack;
        return bbuf + i * kc * nr;
      };

      for (int64_t m0 = m_begin; m0 < m_end; m0 += mr) {
        const int64_t rows = std::min<int64_t>(mr, m_end - m0);
        const float* a;
        int64_t lda;
        if (wtype == DType::F32 && rows == mr) {
          a = reinterpret_cast<const float*>(wb + m0 * row_bytes) + k0;
          lda = K;
        } else {
          const size_t koff = dtype_row_bytes(wtype, k0);
          for (int64_t r = 0; r < rows; ++r) {
            const uint8_t* src = wb + (m0 + r) * row_bytes + koff;
            if (wtype == DType::F32) std::memcpy(abuf + r * kc, src, static_cast<size_t>(kc) * 4);
            else deq(src, abuf + r * kc, kc);
          }
          std::fill(abuf + rows * kc, abuf + mr * kc, 0.0f);
          a = abuf;
          lda = kc;
        }
        for (int r = 0; r < mr; ++r) init[r] = (bias && r < rows) ? bias[m0 + r] : 0.0f;
        // Converted weights (f16, q*) are read row by row at the next tile's start: fetch them
        // while this tile computes (f16 1280 ch @ 8x8 b2: ~65 -> ~72 % of peak, f32 no change).
        if (wtype != DType::F32 && m0 + mr < m_end) {
          const size_t kb = dtype_row_bytes(wtype, kc), koff = dtype_row_bytes(wtype, k0);
          for (int64_t r = 0; r < std::min<int64_t>(mr, m_end - m0 - mr); ++r) {
            const uint8_t* src = wb + (m0 + mr + r) * row_bytes + koff;
            for (size_t o = 0; o < kb; o += 64) __builtin_prefetch(src + o);
          }
        }
        const bool acc = k0 > 0;
        for (int64_t i = 0; i < n_pan; ++i) {
          const int64_t pos = panel_pos(i);
          float* cm = y + (panel_img(i) * g.Co + m0) * P;
          const int64_t* off;
          const float* b = panel_b(i, pos, &off);
          Runs rs;
          panel_runs(pos, &rs);
          if (rows == mr && rs.full(nr)) {
            kn.ukr(kc, a, lda, b, off, cm + rs.pix[0], P, init, acc);
            continue;
          }
          // Edge or split panel: the same kernel on a full-size tile, so every output gets the
          // same bits as it would in a full panel.
          if (acc)
            for (int64_t r = 0; r < rows; ++r)
              for (int q = 0; q < rs.n; ++q)
                std::memcpy(tile + r * nr + rs.j0[q], cm + r * P + rs.pix[q],
                            static_cast<size_t>(rs.len[q]) * 4);
          kn.ukr(kc, a, lda, b, off, tile, nr, init, acc);
          for (int64_t r = 0; r < rows; ++r)
            for (int q = 0; q < rs.n; ++q)
              std::memcpy(cm + r * P + rs.pix[q], tile + r * nr + rs.j0[q],
                          static_cast<size_t>(rs.len[q]) * 4);
        }
      }
    }
  });
}

void CpuBackend::do_conv2d(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias,
                           int stride, int pad) {
  const ConvGeom g{x.shape[0], x.shape[1], x.shape[2], x.shape[3], w.shape[0], y.shape[2],
                   y.shape[3], static_cast<int>(w.shape[2]), stride, pad, pad};
  conv2d_cpu(*this, g, x.f32(), w.data, w.type, bias ? bias->f32() : nullptr, y.f32());
}

// Not fused here (fuses_upsample_conv() is false, so the models upsample into their own arena
// instead): the 2x input goes to a temporary for callers that use the op anyway.
void CpuBackend::do_conv2d_upsampled(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias) {
  Tensor u(DType::F32, {x.shape[0], x.shape[1], 2 * x.shape[2], 2 * x.shape[3]});
  AlignedBuffer buf = aligned_alloc_bytes(u.nbytes());
  u.data = buf.get();
  do_upsample_nearest(u, x);
  do_conv2d(y, u, w, bias, 1, 1);
}

}  // namespace sd
