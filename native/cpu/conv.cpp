// conv2d as implicit GEMM over NCHW: y[n][Co, P] = W[Co, K] . patches[K, P]. Work is split into
// tasks of (pixel panels x output-channel rows); inside a task, for each K block the patches of its
// panels are packed once (KC x NR per panel) and every MR-row weight micro-panel runs over them.
#include "cpu/conv.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/cpu_features.h"
#include "core/quant.h"
#include "cpu/cpu_backend.h"

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
void conv_ukr_scalar(int64_t kc, const float* a, int64_t lda, const float* b, float* c,
                     int64_t ldc, const float* init, bool accumulate) {
  float acc[kMrScalar][kNrScalar];
  for (int r = 0; r < kMrScalar; ++r)
    for (int j = 0; j < kNrScalar; ++j) acc[r][j] = accumulate ? c[r * ldc + j] : init[r];
  for (int64_t kk = 0; kk < kc; ++kk) {
    const float* bk = b + kk * kNrScalar;
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
    k.ukr = conv_ukr_neon;
    k.mr = kConvMrNeon;
    k.nr = kConvNrNeon;
  }
#endif
  return k;
}

// Packs patches[k0 .. k0+kc, p0 .. p0+nv) of image `xn` ([Ci, H, W]) as dst[kk * nr + j], zero
// beyond nv and outside the (padded) input.
void pack_patches(const ConvGeom& g, const float* xn, int64_t k0, int64_t kc, int64_t p0,
                  int64_t nv, int nr, float* dst) {
  const int64_t HW = g.H * g.W;
  if (g.k == 1 && g.stride == 1 && g.pad_top == 0 && g.pad_left == 0 && g.Ho == g.H &&
      g.Wo == g.W) {
    for (int64_t kk = 0; kk < kc; ++kk) {
      float* d = dst + kk * nr;
      std::memcpy(d, xn + (k0 + kk) * HW + p0, static_cast<size_t>(nv) * 4);
      for (int64_t j = nv; j < nr; ++j) d[j] = 0.0f;
    }
    return;
  }
  // Runs of the panel that stay in one output row: (oy, first ox, length, offset in the panel).
  struct Seg { int64_t oy, ox0, len, j0; };
  Seg segs[64];
  int nseg = 0;
  for (int64_t j = 0; j < nv;) {
    const int64_t p = p0 + j, oy = p / g.Wo, ox = p % g.Wo;
    const int64_t len = std::min(nv - j, g.Wo - ox);
    segs[nseg++] = {oy, ox, len, j};
    j += len;
  }
  const int64_t s = g.stride;
  const int kk2 = g.k * g.k;
  int64_t ci = k0 / kk2, ky = (k0 % kk2) / g.k, kx = k0 % g.k;
  for (int64_t kk = 0; kk < kc; ++kk) {
    float* d = dst + kk * nr;
    const float* xc = xn + ci * HW;
    // Output columns whose input column ox*s + kx - pad_left lies inside [0, W).
    const int64_t off = kx - g.pad_left;
    const int64_t ox_lo = ceil_div(-off, s), ox_hi = floor_div(g.W - 1 - off, s);
    for (int i = 0; i < nseg; ++i) {
      const Seg& sg = segs[i];
      float* o = d + sg.j0;
      const int64_t iy = sg.oy * s + ky - g.pad_top;
      if (iy < 0 || iy >= g.H) {
        for (int64_t t = 0; t < sg.len; ++t) o[t] = 0.0f;
        continue;
      }
      const float* row = xc + iy * g.W + off;
      const int64_t lo = std::max(sg.ox0, ox_lo) - sg.ox0;
      const int64_t hi = std::min(sg.ox0 + sg.len - 1, ox_hi) - sg.ox0 + 1;  // exclusive
      int64_t t = 0;
      for (; t < lo && t < sg.len; ++t) o[t] = 0.0f;
      if (s == 1) {
        const float* src = row + sg.ox0;
        for (; t < hi; ++t) o[t] = src[t];
      } else {
        const float* src = row + sg.ox0 * s;
        for (; t < hi; ++t) o[t] = src[t * s];
      }
      for (; t < sg.len; ++t) o[t] = 0.0f;
    }
    for (int64_t j = nv; j < nr; ++j) d[j] = 0.0f;
    if (++kx == g.k) {
      kx = 0;
      if (++ky == g.k) { ky = 0; ++ci; }
    }
  }
}

}  // namespace

void conv2d_cpu(CpuBackend& be, const ConvGeom& g, const float* x, const void* w, DType wtype,
                const float* bias, float* y) {
  const Kernels kn = pick_kernels();
  const int mr = kn.mr, nr = kn.nr;
  const int64_t K = g.Ci * g.k * g.k, P = g.Ho * g.Wo, HW = g.H * g.W;
  const size_t row_bytes = dtype_row_bytes(wtype, K);
  const ConvDequant deq = wtype == DType::F16 ? kn.f16 : wtype == DType::Q8_0 ? kn.q8 : kn.q4;
  const auto* wb = static_cast<const uint8_t*>(w);

  // Pixel panels never straddle images; a task takes a run of panels and a range of channels.
  // The split only changes which task computes an element, never how, so any split gives the
  // same bits; it is sized for cache reuse and then cut finer until every thread has work.
  const int64_t ppi = (P + nr - 1) / nr, n_panels = g.N * ppi;
  const int threads = be.threads();
  int64_t panels_per_task = std::max<int64_t>(1, 512 / nr);
  int64_t mc = round_up(g.Co, mr);
  auto n_tasks = [&] {
    return ((n_panels + panels_per_task - 1) / panels_per_task) * ((g.Co + mc - 1) / mc);
  };
  while (n_tasks() < 4 * threads && mc > 4 * mr) mc = round_up(mc / 2, mr);
  while (n_tasks() < 2 * threads && panels_per_task > 1) panels_per_task = (panels_per_task + 1) / 2;
  const int64_t co_tasks = (g.Co + mc - 1) / mc;
  const int64_t kcmax = std::min(kKc, K);
  const size_t b_floats = static_cast<size_t>(kcmax * nr * panels_per_task);
  const size_t a_floats = static_cast<size_t>(mr * kcmax);
  const size_t scratch_bytes = (b_floats + a_floats + 2 * static_cast<size_t>(mr * nr)) * 4 + 256;

  be.pool().run(n_tasks(), [&](int64_t task, int thread) {
    const int64_t pt = task / co_tasks, ct = task % co_tasks;
    const int64_t pan0 = pt * panels_per_task, pan1 = std::min(n_panels, pan0 + panels_per_task);
    const int64_t m_begin = ct * mc, m_end = std::min(g.Co, m_begin + mc);
    auto* base = reinterpret_cast<float*>(
        (reinterpret_cast<uintptr_t>(be.scratch(thread, scratch_bytes)) + 63) & ~uintptr_t(63));
    float* bbuf = base;
    float* abuf = bbuf + b_floats;
    float* tile = abuf + a_floats;
    float* init = tile + mr * nr;
    for (int64_t k0 = 0; k0 < K; k0 += kKc) {
      const int64_t kc = std::min(kKc, K - k0);
      for (int64_t pan = pan0; pan < pan1; ++pan) {
        const int64_t n = pan / ppi, p0 = (pan % ppi) * nr;
        pack_patches(g, x + n * g.Ci * HW, k0, kc, p0, std::min<int64_t>(nr, P - p0), nr,
                     bbuf + (pan - pan0) * kc * nr);
      }
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
        const bool acc = k0 > 0;
        for (int64_t pan = pan0; pan < pan1; ++pan) {
          const int64_t n = pan / ppi, p0 = (pan % ppi) * nr;
          const int64_t nv = std::min<int64_t>(nr, P - p0);
          const float* bp = bbuf + (pan - pan0) * kc * nr;
          float* c = y + (n * g.Co + m0) * P + p0;
          if (rows == mr && nv == nr) {
            kn.ukr(kc, a, lda, bp, c, P, init, acc);
            continue;
          }
          // Edge tile: run the same kernel on a full-size copy so edge outputs get identical bits.
          if (acc)
            for (int64_t r = 0; r < rows; ++r)
              std::memcpy(tile + r * nr, c + r * P, static_cast<size_t>(nv) * 4);
          kn.ukr(kc, a, lda, bp, tile, nr, init, acc);
          for (int64_t r = 0; r < rows; ++r)
            std::memcpy(c + r * P, tile + r * nr, static_cast<size_t>(nv) * 4);
        }
      }
    }
  });
}

void conv2d_reference(const ConvGeom& g, const float* x, const void* w, DType wtype,
                      const float* bias, float* y, double* abs_sum) {
  const int64_t K = g.Ci * g.k * g.k;
  const size_t row_bytes = dtype_row_bytes(wtype, K);
  std::vector<float> wf(static_cast<size_t>(g.Co * K));
  for (int64_t co = 0; co < g.Co; ++co)
    to_f32_row(wtype, static_cast<const uint8_t*>(w) + co * row_bytes, wf.data() + co * K, K);
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t co = 0; co < g.Co; ++co)
      for (int64_t oy = 0; oy < g.Ho; ++oy)
        for (int64_t ox = 0; ox < g.Wo; ++ox) {
          double acc = bias ? bias[co] : 0.0, mag = bias ? std::abs(double(bias[co])) : 0.0;
          for (int64_t ci = 0; ci < g.Ci; ++ci)
            for (int ky = 0; ky < g.k; ++ky) {
              const int64_t iy = oy * g.stride + ky - g.pad_top;
              if (iy < 0 || iy >= g.H) continue;
              for (int kx = 0; kx < g.k; ++kx) {
                const int64_t ix = ox * g.stride + kx - g.pad_left;
                if (ix < 0 || ix >= g.W) continue;
                const double p = double(x[((n * g.Ci + ci) * g.H + iy) * g.W + ix]) *
                                 wf[co * K + (ci * g.k + ky) * g.k + kx];
                acc += p;
                mag += std::abs(p);
              }
            }
          const int64_t o = ((n * g.Co + co) * g.Ho + oy) * g.Wo + ox;
          y[o] = static_cast<float>(acc);
          if (abs_sum) abs_sum[o] = mag;
        }
}

void CpuBackend::do_conv2d(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias,
                           int stride, int pad) {
  const ConvGeom g{x.shape[0], x.shape[1], x.shape[2], x.shape[3], w.shape[0], y.shape[2],
                   y.shape[3], static_cast<int>(w.shape[2]), stride, pad, pad};
  conv2d_cpu(*this, g, x.f32(), w.data, w.type, bias ? bias->f32() : nullptr, y.f32());
}

}  // namespace sd
