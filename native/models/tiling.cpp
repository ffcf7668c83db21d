#include "models/tiling.h"

#include <algorithm>

namespace sd {

std::vector<int64_t> tile_starts(int64_t size, int64_t tile, int64_t overlap) {
  if (size <= tile) return {0};
  const int64_t stride = std::max<int64_t>(1, tile - overlap);
  const int64_t n = (size - tile + stride - 1) / stride + 1;
  std::vector<int64_t> s(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) s[static_cast<size_t>(i)] = (size - tile) * i / (n - 1);  // evenly spread
  return s;
}

namespace {
// Weight of output position i of a tile [p, p + T) on a side of length S: ramps up over `ramp`
// positions where a neighbouring tile overlaps, 1 elsewhere.
float ramp_weight(int64_t i, int64_t T, int64_t p, int64_t S, int64_t ramp) {
  float w = 1.0f;
  if (p > 0 && i < ramp) w = std::min(w, (static_cast<float>(i) + 0.5f) / static_cast<float>(ramp));
  if (p + T < S && T - 1 - i < ramp) w = std::min(w, (static_cast<float>(T - 1 - i) + 0.5f) / static_cast<float>(ramp));
  return w;
}
}  // namespace

std::vector<float> run_tiled(const TileJob& j, const float* in, const TileFn& fn) {
  const int64_t th = std::min(j.tile, j.H), tw = std::min(j.tile, j.W), ov = std::max<int64_t>(1, j.tile / 4);
  const std::vector<int64_t> ys = tile_starts(j.H, th, ov), xs = tile_starts(j.W, tw, ov);
  const int64_t Ho = j.H * j.up / j.down, Wo = j.W * j.up / j.down;
  const int64_t oth = th * j.up / j.down, otw = tw * j.up / j.down, ramp = ov * j.up / j.down;
  std::vector<float> out(static_cast<size_t>(j.B * j.out_channels * Ho * Wo), 0.0f);
  std::vector<float> wsum(static_cast<size_t>(Ho * Wo), 0.0f);
  std::vector<float> tile_in(static_cast<size_t>(j.B * j.in_channels * th * tw));
  for (int64_t y0 : ys) {
    for (int64_t x0 : xs) {
      for (int64_t bc = 0; bc < j.B * j.in_channels; ++bc)
        for (int64_t y = 0; y < th; ++y)
          std::copy_n(in + (bc * j.H + y0 + y) * j.W + x0, tw, tile_in.data() + (bc * th + y) * tw);
      const std::vector<float> t = fn(tile_in.data(), th, tw);  // [B, Cout, oth, otw]
      const int64_t oy0 = y0 * j.up / j.down, ox0 = x0 * j.up / j.down;
      for (int64_t y = 0; y < oth; ++y) {
        const float wy = ramp_weight(y, oth, oy0, Ho, ramp);
        for (int64_t x = 0; x < otw; ++x) {
          const float wt = wy * ramp_weight(x, otw, ox0, Wo, ramp);
          wsum[static_cast<size_t>((oy0 + y) * Wo + ox0 + x)] += wt;
          for (int64_t bc = 0; bc < j.B * j.out_channels; ++bc)
            out[static_cast<size_t>((bc * Ho + oy0 + y) * Wo + ox0 + x)] += wt * t[static_cast<size_t>((bc * oth + y) * otw + x)];
        }
      }
    }
  }
  for (int64_t bc = 0; bc < j.B * j.out_channels; ++bc)
    for (int64_t i = 0; i < Ho * Wo; ++i) out[static_cast<size_t>(bc * Ho * Wo + i)] /= wsum[static_cast<size_t>(i)];
  return out;
}

}  // namespace sd
