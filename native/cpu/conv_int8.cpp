// Integer-dot conv2d on the quantized GEMM's micro-kernels (gemm_kernels.h). The conv is the GEMM
//   C[pixel, co] = sum_k patch[pixel, k] * W[co, k]     (K = Ci*k*k in (ci, ky, kx) order)
// with pixels as the kernel's A rows (quantized per 32-block by quant_a) and output channels as its
// packed weight panels, so every output is exactly the quantized GEMM's dot product of its patch.
//
// Per call: every weight panel is packed once, over the whole K, into thread 0's scratch (shared
// read-only by the tasks; packing per task would repack each panel once per pixel block, and for
// the 8x8 UNet shapes that is as much work as the dot products). Per task (a block of pixels x a
// block of output channels) and K chunk: im2col the block's chunk (f32, pixels x kc, per-thread
// scratch; AVX2/AVX-512 with register transposes, conv_int8_<isa>.cpp), then per tile of mr pixels
// quantize it and run the kernel over the block's panels into a C tile (pixels x channels,
// per-thread scratch); at the end C goes transposed into the NCHW output. K chunks are fixed by the
// shape and every output is computed by one kernel sequence, so results do not depend on the
// thread count or the task split.
#include "cpu/conv_int8.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <vector>

#include "core/cpu_features.h"
#include "cpu/conv_int8_kernels.h"
#include "cpu/cpu_backend.h"
#include "cpu/gemm_kernels.h"

namespace sd {
namespace {

using gemmk::QuantKernels;

std::atomic<int> g_force{0};  // ConvQuantPath
std::atomic<bool> g_portable{false};  // conv_int8_force_portable_helpers

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }
size_t align64(size_t n) { return (n + 63) & ~size_t{63}; }

const QuantKernels* kernels_for(Isa isa) {
  const QuantKernels* k = nullptr;
  (void)isa;
#if defined(SDNODE_HAVE_AVX512)
  if (!k && isa == Isa::Avx512) k = gemmk::quant_kernels_avx512();
#endif
#if defined(SDNODE_HAVE_AVX2)
  if (!k && (isa == Isa::Avx512 || isa == Isa::Avx2)) k = gemmk::quant_kernels_avx2();
#endif
#if defined(SDNODE_HAVE_DOTPROD)
  if (!k && isa == Isa::Dotprod) k = gemmk::quant_kernels_dotprod();
#endif
  return k;
}

// Auto takes the integer path only when SDNODE_CONV_INT8=1: it is 1.5-2x the float path on the 3x3
// shapes (BENCHMARKS.md), but quantizing every conv's activations moves the tiny VAE 2.4e-2 (max
// rel.) from its dequantized-weight f32 run, outside models_q*_vs_dequantized's 1e-2 (the float
// path: 3.5e-3), so switching it on by default is a decision about accuracy, not a kernel detail.
// A level without an integer kernel for the type (scalar, plain NEON, AVX2 q8_0) always takes the
// float path.
bool auto_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("SDNODE_CONV_INT8");
    return e && e[0] == '1';
  }();
  return on;
}

const QuantKernels* pick(DType t, int k, bool requested = false) {
  if (t != DType::Q8_0 && t != DType::Q4_0) return nullptr;
  const int force = g_force.load(std::memory_order_relaxed);
  if (force == static_cast<int>(ConvQuantPath::Float)) return nullptr;
  (void)k;  // every kernel size measured faster on the integer path (1x1 too, since the ISA im2col)
  if (force == static_cast<int>(ConvQuantPath::Auto) && !requested && !auto_enabled()) return nullptr;
  const QuantKernels* qk = kernels_for(isa_active());
  if (!qk || !(t == DType::Q8_0 ? qk->q8_0 : qk->q4_0)) return nullptr;
  // The layout arithmetic below assumes per-block sizes (true of every kernel set).
  if (qk->panel_bytes(3) != 3 * qk->panel_bytes(1) || qk->atile_bytes(3) != 3 * qk->atile_bytes(1))
    return nullptr;
  return qk;
}

struct Helpers {
  ConvIm2colFn im2col = nullptr;        // null: im2col_block (portable)
  ConvTransposeFn transpose = nullptr;  // null: a portable loop
};

Helpers helpers_for(Isa isa) {
  Helpers h;
  (void)isa;
  if (g_portable.load(std::memory_order_relaxed)) return h;
#if defined(SDNODE_HAVE_AVX2)
  if (isa == Isa::Avx2 || isa == Isa::Avx512) h = {conv_int8_im2col_avx2, conv_int8_transpose_avx2};
#endif
#if defined(SDNODE_HAVE_AVX512)
  if (isa == Isa::Avx512) h = {conv_int8_im2col_avx512, conv_int8_transpose_avx512};
#endif
  return h;
}

// A run of output pixels of one image row: pixel j of the run is (n, oy, ox0 + j), block row i0 + j.
struct Run {
  int64_t n, oy, ox0, len, i0;
  int64_t jlo, jhi;  // pixels [jlo, jhi) have the whole window row inside the input's columns
};

int cut_runs(const ConvGeom& g, int64_t g0, int64_t g1, Run* runs) {
  const int64_t P = g.Ho * g.Wo;
  int nr = 0;
  for (int64_t m = g0; m < g1;) {
    const int64_t n = m / P, p = m % P, oy = p / g.Wo, ox0 = p % g.Wo;
    const int64_t len = std::min(g1 - m, g.Wo - ox0);
    // ox * s - pad_left >= 0 and ox * s - pad_left + k <= W.
    const int64_t lo = ceil_div(std::max<int64_t>(0, g.pad_left), g.stride) - ox0;
    const int64_t hi_ox = g.W - g.k + g.pad_left >= 0 ? (g.W - g.k + g.pad_left) / g.stride : -1;
    Run& r = runs[nr++];
    r = {n, oy, ox0, len, m - g0, std::max<int64_t>(0, lo), 0};
    r.jhi = std::max(r.jlo, std::min(len, hi_ox - ox0 + 1));
    m += len;
  }
  return nr;
}

// im2col of a block of output pixels for patch values [k0, k0 + kc): a[i * lda + t] is value
// k0 + t of block pixel i. Walks (ci, ky) outermost so the input is read row by row (reading it
// pixel by pixel touches 3 Ci rows that sit H*W apart, a power of two that maps them all to the
// same cache sets). k0 and kc are multiples of k, so each window row is whole.
void im2col_block(const ConvGeom& g, const float* x, const Run* runs, int nruns, int64_t k0,
                  int64_t kc, int64_t lda, float* a) {
  const int k = g.k;
  const int64_t s = g.stride, HW = g.H * g.W;
  if (k == 1) {
    // A transpose: 16 channels at a time, so each pixel's row gets a whole cache line per pass.
    for (int q = 0; q < nruns; ++q) {
      const Run& r = runs[q];
      const int64_t iy = r.oy * s - g.pad_top, ix0 = r.ox0 * s - g.pad_left;
      for (int64_t t = 0; t < kc; t += 16) {
        const float* rows[16];
        for (int c = 0; c < 16; ++c) rows[c] = x + (r.n * g.Ci + k0 + t + c) * HW + iy * g.W + ix0;
        float* d = a + r.i0 * lda + t;
        for (int64_t j = 0; j < r.len; ++j, d += lda) {
          const int64_t ix = ix0 + j * s;
          if (iy < 0 || iy >= g.H || ix < 0 || ix >= g.W) {
            for (int c = 0; c < 16; ++c) d[c] = 0.0f;
          } else {
            for (int c = 0; c < 16; ++c) d[c] = rows[c][j * s];
          }
        }
      }
    }
    return;
  }
  int64_t ci = k0 / (k * k), ky = (k0 / k) % k;
  for (int64_t t = 0; t < kc; t += k) {
    for (int q = 0; q < nruns; ++q) {
      const Run& r = runs[q];
      float* d = a + r.i0 * lda + t;
      const int64_t iy = r.oy * s + ky - g.pad_top;
      if (iy < 0 || iy >= g.H) {
        for (int64_t j = 0; j < r.len; ++j, d += lda)
          for (int kx = 0; kx < k; ++kx) d[kx] = 0.0f;
        continue;
      }
      const float* row = x + (r.n * g.Ci + ci) * HW + iy * g.W;
      const int64_t ix0 = r.ox0 * s - g.pad_left;
      auto edge = [&](int64_t j) {  // a pixel whose window row leaves the input
        float* dj = a + (r.i0 + j) * lda + t;
        for (int kx = 0; kx < k; ++kx) {
          const int64_t ix = ix0 + j * s + kx;
          dj[kx] = (ix >= 0 && ix < g.W) ? row[ix] : 0.0f;
        }
      };
      for (int64_t j = 0; j < r.jlo; ++j) edge(j);
      const float* src = row + ix0;
      d = a + (r.i0 + r.jlo) * lda + t;
      if (k == 3) {
        for (int64_t j = r.jlo; j < r.jhi; ++j, d += lda) {
          const float* sj = src + j * s;
          d[0] = sj[0];
          d[1] = sj[1];
          d[2] = sj[2];
        }
      } else {
        for (int64_t j = r.jlo; j < r.jhi; ++j, d += lda)
          for (int kx = 0; kx < k; ++kx) d[kx] = src[j * s + kx];
      }
      for (int64_t j = r.jhi; j < r.len; ++j) edge(j);
    }
    if (++ky == k) {
      ky = 0;
      ++ci;
    }
  }
}

}  // namespace

void conv_force_quant_path(ConvQuantPath p) { g_force.store(static_cast<int>(p)); }
void conv_int8_force_portable_helpers(bool on) { g_portable.store(on); }

bool conv_uses_int_path(DType wtype, int k) { return pick(wtype, k) != nullptr; }

bool conv2d_int8(CpuBackend& be, const ConvGeom& g, const float* x, const void* w, DType wtype,
                 const float* bias, float* y) {
  const QuantKernels* qkp = pick(wtype, g.k, be.quantized_conv_activations());
  if (!qkp) return false;
  const QuantKernels& qk = *qkp;
  const int64_t K = g.Ci * g.k * g.k;
  if (K % 32 != 0 || g.k < 1 || g.N <= 0 || g.Co <= 0 || g.Ho <= 0 || g.Wo <= 0) return false;
  const int mr = qk.mr, nr = qk.nr;
  const int64_t nb = K / 32, P = g.Ho * g.Wo, TP = g.N * P;
  const size_t row_bytes = dtype_row_bytes(wtype, K);
  const size_t pblock = qk.panel_bytes(1), ablock = qk.atile_bytes(1);
  const int64_t npanels = ceil_div(g.Co, nr);
  const size_t panel_stride = align64(pblock * static_cast<size_t>(nb));

  // K chunks: about 1024 values, equal sizes, multiples of 32 and of k (whole window rows).
  const int64_t align = std::lcm<int64_t>(32, g.k);
  const int64_t nkc = ceil_div(K, 1024);
  const int64_t kc = std::min(K, round_up(ceil_div(K, nkc), align));
  // Channel blocks of <= 640 (the block's panel chunk, ~800 KB for 640, stays in L2); pixel blocks
  // so that the C tile is ~256 KB, cut finer (which never changes a result) until each thread has
  // a few tasks.
  const int64_t ncb = ceil_div(g.Co, 640);
  const int64_t nc = round_up(ceil_div(g.Co, ncb), nr);
  const int64_t n_cblk = ceil_div(g.Co, nc);
  const int64_t lda = kc + 16;  // off powers of two, so the im2col's column writes spread over sets
  int64_t mc = std::max<int64_t>(mr, std::min<int64_t>(65536 / nc, 98304 / lda) / mr * mr);
  mc = std::min(mc, round_up(TP, mr));
  while (ceil_div(TP, mc) * n_cblk < 4 * be.threads() && mc > mr) mc = round_up(mc / 2, mr);
  const int64_t n_pblk = ceil_div(TP, mc);

  const size_t wbytes = panel_stride * static_cast<size_t>(npanels);
  const size_t tbytes = align64(static_cast<size_t>(mc * lda) * 4);
  const size_t abytes = align64(ablock * static_cast<size_t>(kc / 32));
  const size_t cbytes = align64(static_cast<size_t>(mc * nc) * 4);
  const size_t rbytes = align64(sizeof(Run) * static_cast<size_t>(mc + 2));
  const size_t priv = tbytes + abytes + cbytes + rbytes;
  // Per patch position t: ci * H * W + ky * W + kx, ky, kx (the ISA im2col's addressing).
  Helpers hp = helpers_for(isa_active());
  if (g.k > 8) hp.im2col = nullptr;
  const size_t tabbytes = hp.im2col ? align64(static_cast<size_t>(K) * 10) : 0;
  const int threads = be.threads();
  std::vector<uint8_t*> scratch(static_cast<size_t>(threads));
  uint8_t* packed = be.scratch(0, wbytes + tabbytes + priv);
  auto* rel = reinterpret_cast<int64_t*>(packed + wbytes);
  auto* tky = reinterpret_cast<uint8_t*>(rel + K);
  uint8_t* tkx = tky + K;
  if (hp.im2col) {
    for (int64_t t = 0; t < K; ++t) {
      const int64_t ci = t / (g.k * g.k), ky = (t / g.k) % g.k, kx = t % g.k;
      rel[t] = ci * g.H * g.W + ky * g.W + kx;
      tky[t] = static_cast<uint8_t>(ky);
      tkx[t] = static_cast<uint8_t>(kx);
    }
  }
  scratch[0] = packed + wbytes + tabbytes;
  for (int t = 1; t < threads; ++t) scratch[static_cast<size_t>(t)] = be.scratch(t, priv);

  const auto* wb = static_cast<const uint8_t*>(w);
  be.pool().run(npanels, [&](int64_t p, int) {
    const int64_t n0 = p * nr;
    qk.pack(wtype, wb, row_bytes, n0, std::min<int64_t>(nr, g.Co - n0), 0, nb,
            packed + p * panel_stride);
  });

  be.pool().run(n_pblk * n_cblk, [&](int64_t task, int thread) {
    const int64_t pb = task / n_cblk, cb = task % n_cblk;
    const int64_t g0 = pb * mc, g1 = std::min(TP, g0 + mc);
    const int64_t co0 = cb * nc, co1 = std::min(g.Co, co0 + nc);
    const int64_t p_lo = co0 / nr, p_hi = ceil_div(co1, nr);
    uint8_t* s = scratch[static_cast<size_t>(thread)];
    auto* tile = reinterpret_cast<float*>(s);
    uint8_t* at = s + tbytes;
    auto* C = reinterpret_cast<float*>(s + tbytes + abytes);
    Run* runs = reinterpret_cast<Run*>(s + tbytes + abytes + cbytes);
    const int nruns = cut_runs(g, g0, g1, runs);
    for (int64_t k0 = 0; k0 < K; k0 += kc) {
      const int64_t kk = std::min(kc, K - k0), nkb = kk / 32;
      if (hp.im2col) {
        for (int q = 0; q < nruns; ++q) {
          const Run& r = runs[q];
          hp.im2col(g, x + r.n * g.Ci * g.H * g.W, rel + k0, tky + k0, tkx + k0, kk, r.oy, r.ox0,
                    r.len, tile + r.i0 * lda, lda);
        }
      } else {
        im2col_block(g, x, runs, nruns, k0, kk, lda, tile);
      }
      for (int64_t m = g0; m < g1; m += mr) {
        const int mv = static_cast<int>(std::min<int64_t>(mr, g1 - m));
        qk.quant_a(mv, nkb, tile + (m - g0) * lda, lda, at);
        float* crow = C + (m - g0) * nc;
        for (int64_t p = p_lo; p < p_hi; ++p) {
          const int64_t n0 = p * nr;
          qk.kernel(nkb, at, packed + p * panel_stride + (k0 / 32) * pblock, crow + (n0 - co0), nc,
                    mv, static_cast<int>(std::min<int64_t>(nr, co1 - n0)), k0 > 0,
                    (k0 == 0 && bias) ? bias + n0 : nullptr);
        }
      }
    }
    // C (pixels x channels) -> y[n][co][p], one run of pixels per image.
    for (int64_t m = g0; m < g1;) {
      const int64_t n = m / P, p0 = m % P, len = std::min(g1 - m, P - p0);
      if (hp.transpose) {
        hp.transpose(C + (m - g0) * nc, nc, len, co1 - co0, y + (n * g.Co + co0) * P + p0, P);
        m += len;
        continue;
      }
      // 16 channels at a time: each C row read is one cache line, 16 output rows are written.
      for (int64_t cb0 = co0; cb0 < co1; cb0 += 16) {
        const int cw = static_cast<int>(std::min<int64_t>(16, co1 - cb0));
        float* dst[16];
        for (int c = 0; c < cw; ++c) dst[c] = y + (n * g.Co + cb0 + c) * P + p0;
        const float* src = C + (m - g0) * nc + (cb0 - co0);
        if (cw == 16) {
          for (int64_t j = 0; j < len; ++j)
            for (int c = 0; c < 16; ++c) dst[c][j] = src[j * nc + c];
        } else {
          for (int64_t j = 0; j < len; ++j)
            for (int c = 0; c < cw; ++c) dst[c][j] = src[j * nc + c];
        }
      }
      m += len;
    }
  });
  return true;
}

}  // namespace sd
