// Tiled VAE: runs a network over overlapping spatial tiles of one size per image (so one arena plan
// serves every tile and activation memory is bounded by the largest tile, not the image) and blends
// the outputs with linear ramps across the overlaps. GroupNorm statistics become per tile, as in
// every tiled VAE; the overlap (a quarter of the tile unless given) hides the seams. Per side, the
// tiles are the fewest of at most `tile` that overlap by at least `overlap`, shrunk to the shortest
// length that still covers the side: 512 px in 320 px tiles overlapping by 64 px is 2 x 2 tiles of
// 288 px (1.27x the pixels of one whole decode), not 2 x 2 of 320 px (1.56x).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace sd {

struct TileJob {
  int64_t B, in_channels, H, W;  // input [B, in_channels, H, W]
  int64_t out_channels;
  int64_t up, down;              // output size = input size * up / down
  int64_t tile;                  // largest tile side in input units
  int64_t overlap = 0;           // least overlap of neighbours in input units; 0 = tile / 4
};

// How a side of length `size` is cut: n tiles of length len (len <= tile, or len = size when it
// fits one tile), starting at evenly spread origins, neighbours overlapping by at least `overlap`.
struct SideCut {
  int64_t len;
  std::vector<int64_t> starts;
};
SideCut cut_side(int64_t size, int64_t tile, int64_t overlap);

// fn(tile_input [B, Cin, th, tw], th, tw) -> output [B, Cout, th*up/down, tw*up/down].
using TileFn = std::function<std::vector<float>(const float*, int64_t, int64_t)>;
std::vector<float> run_tiled(const TileJob& job, const float* in, const TileFn& fn);

}  // namespace sd
