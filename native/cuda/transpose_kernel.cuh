// The tiled transpose of the last two dims that Backend::transpose12 and the NHWC conv's input copy
// (conv_nhwc_kernel.cuh) share. A header of its own for the host emulation (tests/tc_emulation.cpp).
#pragma once
#include <cstdint>

#include "cuda/act.cuh"

namespace sd {
namespace cuda {

constexpr int kTransposeThreads = 256;

// The identity map of transpose_kernel (GnMap, norm_split_kernel.cuh, normalises instead).
struct PlainMap {
  static constexpr bool kPrepare = false;
  __device__ void prepare(int, int, int) {}
  __device__ float operator()(float v, int) const { return v; }
};

// y[n][p][c] = map(x[n][c][p]) converted to Out (f16: the NHWC copy) through a 32x32 tile, so that
// reads (along p) and writes (along c) are both coalesced. Grid (ceil(P / 32), ceil(C / 32),
// images), kTransposeThreads threads. map(v, r): the value of tile row r (channel c0 + r).
template <class T, class Out = __half, class Map = PlainMap>
__global__ void transpose_kernel(const T* x, Out* y, int C, int P, Map map) {
  cuda::pdl_entry();
  __shared__ float tile[32][33];
  const int tx = static_cast<int>(threadIdx.x) & 31, ty = static_cast<int>(threadIdx.x) >> 5;
  const int p0 = static_cast<int>(blockIdx.x) * 32, c0 = static_cast<int>(blockIdx.y) * 32;
  const int64_t base = static_cast<int64_t>(blockIdx.z) * C * P;
  if constexpr (Map::kPrepare) {
    map.prepare(c0, C, static_cast<int>(blockIdx.z));
    __syncthreads();
  }
  for (int r = ty; r < 32; r += kTransposeThreads / 32) {
    const int c = c0 + r, p = p0 + tx;
    if (c < C && p < P) tile[r][tx] = map(to_f32(x[base + static_cast<int64_t>(c) * P + p]), r);
  }
  __syncthreads();
  for (int r = ty; r < 32; r += kTransposeThreads / 32) {
    const int p = p0 + r, c = c0 + tx;
    if (c < C && p < P) y[base + static_cast<int64_t>(p) * C + c] = from_f32<Out>(tile[tx][r]);
  }
}

}  // namespace cuda
}  // namespace sd
