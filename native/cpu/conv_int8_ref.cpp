// The oracle of the integer conv path: scalar im2col per output pixel, GGML's activation quantizer,
// integer block sums, f32 accumulation in block order (like gemm_reference_qact).
#include <cmath>
#include <vector>

#include "core/fp16.h"
#include "core/quant.h"
#include "cpu/conv_int8.h"

namespace sd {

void conv2d_reference_qact(const ConvGeom& g, const float* x, const void* w, DType wtype,
                           const float* bias, float* y, double* mag) {
  if (!dtype_is_quantized(wtype)) return conv2d_reference(g, x, w, wtype, bias, y, mag);
  const int64_t K = g.Ci * g.k * g.k, nb = K / 32, P = g.Ho * g.Wo;
  const size_t row_bytes = dtype_row_bytes(wtype, K);
  // Weights as signed integers and block scales.
  std::vector<int8_t> qw(static_cast<size_t>(g.Co * K));
  std::vector<float> dw(static_cast<size_t>(g.Co * nb));
  for (int64_t co = 0; co < g.Co; ++co) {
    const uint8_t* row = static_cast<const uint8_t*>(w) + co * row_bytes;
    for (int64_t b = 0; b < nb; ++b) {
      int8_t* q = qw.data() + co * K + b * 32;
      if (wtype == DType::Q8_0) {
        const auto* blk = reinterpret_cast<const block_q8_0*>(row) + b;
        dw[co * nb + b] = fp16_to_fp32(blk->d);
        for (int j = 0; j < 32; ++j) q[j] = blk->qs[j];
      } else {
        const auto* blk = reinterpret_cast<const block_q4_0*>(row) + b;
        dw[co * nb + b] = fp16_to_fp32(blk->d);
        for (int j = 0; j < 16; ++j) {
          q[j] = static_cast<int8_t>((blk->qs[j] & 0x0F) - 8);
          q[j + 16] = static_cast<int8_t>((blk->qs[j] >> 4) - 8);
        }
      }
    }
  }
  std::vector<float> patch(static_cast<size_t>(K));
  std::vector<block_q8_0> qa(static_cast<size_t>(nb));
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t oy = 0; oy < g.Ho; ++oy)
      for (int64_t ox = 0; ox < g.Wo; ++ox) {
        for (int64_t ci = 0; ci < g.Ci; ++ci)
          for (int ky = 0; ky < g.k; ++ky)
            for (int kx = 0; kx < g.k; ++kx) {
              const int64_t iy = oy * g.stride + ky - g.pad_top, ix = ox * g.stride + kx - g.pad_left;
              const bool in = iy >= 0 && iy < g.H && ix >= 0 && ix < g.W;
              patch[(ci * g.k + ky) * g.k + kx] = in ? x[((n * g.Ci + ci) * g.H + iy) * g.W + ix] : 0.0f;
            }
        quantize_row_q8_0_act(patch.data(), qa.data(), K);
        for (int64_t co = 0; co < g.Co; ++co) {
          float sum = 0.0f;
          double m = bias ? std::fabs(double(bias[co])) : 0.0;
          for (int64_t b = 0; b < nb; ++b) {
            int32_t isum = 0;
            const int8_t* q = qw.data() + co * K + b * 32;
            for (int j = 0; j < 32; ++j) isum += int32_t{qa[b].qs[j]} * q[j];
            const float t = static_cast<float>(isum) * (dw[co * nb + b] * fp16_to_fp32(qa[b].d));
            sum += t;
            m += std::fabs(double(t));
          }
          const int64_t o = (n * g.Co + co) * P + oy * g.Wo + ox;
          y[o] = sum + (bias ? bias[co] : 0.0f);
          if (mag) mag[o] = m;
        }
      }
}

}  // namespace sd
