// conv2d's general im2col packing (conv.cpp's Pack mode: strided, 1x1 and fallback shapes).
#include <algorithm>
#include <cstring>

#include "cpu/conv.h"

namespace sd {
namespace {

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

}  // namespace

// Packs patches[k0 .. k0+kc, p0 .. p0+nv) of image `xn` ([Ci, H, W]) as dst[kk * nr + j], zero
// beyond nv and outside the input.
void conv_pack_patches(const ConvGeom& g, const float* xn, int64_t k0, int64_t kc, int64_t p0,
                       int64_t nv, int nr, float* dst) {
  const int64_t HW = g.H * g.W, s = g.stride;
  if (g.k == 1 && s == 1 && g.pad_top == 0 && g.pad_left == 0 && g.Ho == g.H && g.Wo == g.W) {
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
  // Output columns whose input column ox*s + kx - pad_left lies inside [0, W), per kx.
  int64_t ox_lo[3], ox_hi[3];
  for (int kx = 0; kx < g.k; ++kx) {
    const int64_t off = kx - g.pad_left;
    ox_lo[kx] = ceil_div(-off, s);
    ox_hi[kx] = floor_div(g.W - 1 - off, s);
  }
  const int kk2 = g.k * g.k;
  int64_t ci = k0 / kk2, ky = (k0 % kk2) / g.k, kx = k0 % g.k;
  for (int64_t kk = 0; kk < kc; ++kk) {
    float* d = dst + kk * nr;
    const float* xc = xn + ci * HW + (kx - g.pad_left);
    for (int i = 0; i < nseg; ++i) {
      const Seg& sg = segs[i];
      float* o = d + sg.j0;
      const int64_t iy = sg.oy * s + ky - g.pad_top;
      if (iy < 0 || iy >= g.H) {
        for (int64_t t = 0; t < sg.len; ++t) o[t] = 0.0f;
        continue;
      }
      const float* src = xc + iy * g.W + sg.ox0 * s;
      const int64_t lo = std::max<int64_t>(0, std::min(sg.len, ox_lo[kx] - sg.ox0));
      const int64_t hi = std::max(lo, std::min(sg.len, ox_hi[kx] - sg.ox0 + 1));
      for (int64_t t = 0; t < lo; ++t) o[t] = 0.0f;
      if (s == 1) {
        for (int64_t t = lo; t < hi; ++t) o[t] = src[t];
      } else {
        for (int64_t t = lo; t < hi; ++t) o[t] = src[t * s];
      }
      for (int64_t t = hi; t < sg.len; ++t) o[t] = 0.0f;
    }
    for (int64_t j = nv; j < nr; ++j) d[j] = 0.0f;
    if (++kx == g.k) {
      kx = 0;
      if (++ky == g.k) { ky = 0; ++ci; }
    }
  }
}

}  // namespace sd
