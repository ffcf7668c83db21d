#include "models/tiling.h"

#include <algorithm>

namespace sd {

SideCut cut_side(int64_t size, int64_t tile, int64_t overlap) {
  if (size <= tile) return {size, {0}};
  overlap = std::min(overlap, tile - 1);
  const int64_t n = (size - overlap + (tile - overlap) - 1) / (tile - overlap);
  const int64_t len = (size + (n - 1) * overlap + n - 1) / n;  // <= tile, as n * (tile - overlap) >= size - overlap
  SideCut c{len, std::vector<int64_t>(static_cast<size_t>(n))};
  // Neighbours start at most ceil((size - len) / (n - 1)) <= len - overlap apart.
  for (int64_t i = 0; i < n; ++i) c.starts[static_cast<size_t>(i)] = (size - len) * i / (n - 1);
  return c;
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
  const int64_t ov = std::max<int64_t>(1, j.overlap > 0 ? j.overlap : j.tile / 4);
  // Cut in units of `down` (the encoder's 8 px) so every tile maps onto whole output positions.
  const int64_t u = j.down;
  auto cut = [&](int64_t size) {
    SideCut c = cut_side(size / u, std::max<int64_t>(1, j.tile / u), (ov + u - 1) / u);
    c.len *= u;
    for (int64_t& s : c.starts) s *= u;
    return c;
  };
  const SideCut cy = cut(j.H), cx = cut(j.W);
  const int64_t th = cy.len, tw = cx.len;
  const std::vector<int64_t>& ys = cy.starts;
  const std::vector<int64_t>& xs = cx.starts;
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
