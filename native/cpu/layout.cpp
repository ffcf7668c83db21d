// Data movement ops (nearest upsample, channel concat, transpose12), the sinusoidal timestep
// embedding and row gathers. Memory bound: plain loops, split over rows/planes for the pool.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "core/quant.h"
#include "cpu/cpu_backend.h"

namespace sd {
namespace {

// PyTorch's nearest index (UpSample.h nearest_idx): exact for 1x and 2x, otherwise
// floor(dst * (float)in / out) in float, clamped.
int64_t nearest_src(int64_t dst, int64_t in, int64_t out) {
  if (out == in) return dst;
  if (out == 2 * in) return dst >> 1;
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  return std::min(static_cast<int64_t>(std::floor(static_cast<float>(dst) * scale)), in - 1);
}

}  // namespace

void CpuBackend::do_upsample_nearest(Tensor& y, const Tensor& x) {
  const int64_t planes = x.shape[0] * x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t Ho = y.shape[2], Wo = y.shape[3];
  pool().parallel_for(planes * Ho, 16, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t pl = r / Ho, oy = r % Ho;
      const float* src = x.f32() + (pl * H + nearest_src(oy, H, Ho)) * W;  // x: [planes, H, W]
      float* dst = y.f32() + r * Wo;                                         // y: [planes, Ho, Wo]
      if (Wo == 2 * W) {
        for (int64_t o = 0; o < Wo; ++o) dst[o] = src[o >> 1];
      } else {
        for (int64_t o = 0; o < Wo; ++o) dst[o] = src[nearest_src(o, W, Wo)];
      }
    }
  });
}

void CpuBackend::do_concat_channels(Tensor& y, const Tensor& a, const Tensor& b) {
  const int64_t N = a.shape[0];
  const size_t abytes = a.nbytes() / N, bbytes = b.nbytes() / N;
  auto* yp = static_cast<uint8_t*>(y.data);
  pool().run(2 * N, [&](int64_t t, int) {
    const int64_t n = t / 2;
    if (t % 2 == 0)
      std::memcpy(yp + n * (abytes + bbytes), static_cast<const uint8_t*>(a.data) + n * abytes, abytes);
    else
      std::memcpy(yp + n * (abytes + bbytes) + abytes, static_cast<const uint8_t*>(b.data) + n * bbytes, bbytes);
  });
}

void CpuBackend::do_transpose12(Tensor& y, const Tensor& x) {
  const int64_t B = x.shape[0], A = x.shape[1], C = x.shape[2];
  constexpr int64_t T = 32;  // tile edge: keeps both the reads and the writes in cache lines
  const int64_t ta = (A + T - 1) / T, tc = (C + T - 1) / T;
  pool().parallel_for(B * ta * tc, 4, [&](int64_t b0, int64_t e0, int) {
    for (int64_t t = b0; t < e0; ++t) {
      const int64_t b = t / (ta * tc), a0 = (t / tc) % ta * T, c0 = t % tc * T;
      const float* xs = x.f32() + b * A * C;  // x: [A, C]
      float* ys = y.f32() + b * A * C;        // y: [C, A]
      const int64_t a1 = std::min(A, a0 + T), c1 = std::min(C, c0 + T);
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t a = a0; a < a1; ++a) ys[c * A + a] = xs[a * C + c];
    }
  });
}

void CpuBackend::do_timestep_embedding(Tensor& y, const Tensor& tt, float max_period) {
  // As diffusers' get_timestep_embedding in float32 (flip_sin_to_cos: cos half first):
  //   freqs = exp(-log(max_period) * arange(half) / half); args = t[:, None] * freqs[None]
  const int64_t B = y.shape[0], half = y.shape[1] / 2;
  const float neg_log = static_cast<float>(-std::log(static_cast<double>(max_period)));
  float* out = y.f32();  // y: [B, 2 * half]
  const float* t = tt.f32();
  for (int64_t i = 0; i < half; ++i) {
    const float e = neg_log * static_cast<float>(i) / static_cast<float>(half);
    const float f = static_cast<float>(std::exp(static_cast<double>(e)));
    for (int64_t b = 0; b < B; ++b) {
      const double arg = static_cast<double>(t[b] * f);
      out[b * 2 * half + i] = static_cast<float>(std::cos(arg));
      out[b * 2 * half + half + i] = static_cast<float>(std::sin(arg));
    }
  }
}

void CpuBackend::do_get_rows(Tensor& y, const Tensor& table, const int32_t* ids, int64_t n_ids) {
  const int64_t D = table.shape[1];
  if (dtype_is_quantized(table.type) && D % 32 != 0)
    throw std::invalid_argument("get_rows: quantized table rows must be a multiple of 32, got " + table.shape_str());
  const size_t row_bytes = dtype_row_bytes(table.type, D);
  pool().parallel_for(n_ids, 16, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i)
      to_f32_row(table.type, static_cast<const uint8_t*>(table.data) + ids[i] * row_bytes, y.f32() + i * D, D);
  });
}

}  // namespace sd
