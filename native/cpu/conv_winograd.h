// Internal to conv_winograd*.cpp: the input/output transforms, compiled per ISA level from
// conv_winograd_xform.inc (plain loops the compiler vectorizes at that level's width: in the
// baseline TU they ran 4 wide and took 25 % of a 128 @ 512x512 call).
#pragma once
#include <cstdint>

#include "cpu/conv.h"

namespace sd {

constexpr int64_t kWinoT = 128;            // tiles per task block (a multiple of every NR)
constexpr int64_t kWinoVs = kWinoT + 16;   // V row stride: 9 cache lines, rows spread over L1

// Tiles j .. j + len of a block are tiles tx0 .. of tile row ty of image n.
struct WinoSeg { int64_t j, len, n, ty, tx0; };

// V[xi * vps + kk * kWinoVs + j] = (B^T d B)[xi] for channel c0 + kk (kk < kc) of block tile j;
// zero for j in [nt, kWinoT). tw: tiles per row; rowbuf: 5 * (2 * tw + 2) floats.
// y for output channels co0 .. co0 + rows of the block's tiles, from
// m[xi * mps + r * kWinoT + j] (+ bias); ob: 4 * kWinoT floats.
#if defined(SDNODE_HAVE_AVX2)
void wino_input_avx2(const ConvGeom& g, int64_t tw, const WinoSeg* segs, int nseg, int64_t nt,
                     const float* x, int64_t c0, int64_t kc, int64_t vps, float* v,
                     float* rowbuf);
void wino_output_avx2(const ConvGeom& g, const WinoSeg* segs, int nseg, int64_t nt,
                      const float* m, int64_t mps, int64_t co0, int64_t rows, const float* bias,
                      float* ob, float* y);
#endif
#if defined(SDNODE_HAVE_AVX512)
void wino_input_avx512(const ConvGeom& g, int64_t tw, const WinoSeg* segs, int nseg, int64_t nt,
                       const float* x, int64_t c0, int64_t kc, int64_t vps, float* v,
                       float* rowbuf);
void wino_output_avx512(const ConvGeom& g, const WinoSeg* segs, int nseg, int64_t nt,
                        const float* m, int64_t mps, int64_t co0, int64_t rows,
                        const float* bias, float* ob, float* y);
#endif

}  // namespace sd
