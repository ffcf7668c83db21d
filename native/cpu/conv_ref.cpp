// The conv2d oracle: direct loops over the (padded) window with double accumulation.
#include <cmath>
#include <vector>

#include "core/quant.h"
#include "cpu/conv.h"

namespace sd {

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

}  // namespace sd
