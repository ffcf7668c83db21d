// Tiled VAE: runs a network over overlapping spatial tiles of one size (so one arena plan serves
// every tile and activation memory is bounded by the tile, not the image) and blends the outputs
// with linear ramps across the overlaps. GroupNorm statistics become per tile, as in every tiled
// VAE; the overlap (a quarter of the tile) hides the seams.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace sd {

struct TileJob {
  int64_t B, in_channels, H, W;  // input [B, in_channels, H, W]
  int64_t out_channels;
  int64_t up, down;              // output size = input size * up / down
  int64_t tile;                  // tile side in input units
};

// Tile origins along a side of length `size` (the last tile ends at the edge; tiles overlap by at
// least `overlap`). One origin 0 when size <= tile.
std::vector<int64_t> tile_starts(int64_t size, int64_t tile, int64_t overlap);

// fn(tile_input [B, Cin, th, tw], th, tw) -> output [B, Cout, th*up/down, tw*up/down].
using TileFn = std::function<std::vector<float>(const float*, int64_t, int64_t)>;
std::vector<float> run_tiled(const TileJob& job, const float* in, const TileFn& fn);

}  // namespace sd
