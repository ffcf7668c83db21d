// The layout kernels of the NHWC conv path (gemm_tc_conv.cu): the input copied channels-last as
// f16 (transpose_kernel.cuh), and 3x3 weights laid out tap-major once (f16 reordered, q8_0/q4_0
// repacked). A header of its own so
// that the host emulation (tests/tc_emulation.cpp) runs them with the GEMM they feed.
#pragma once
#include <cstdint>

#include "cuda/act.cuh"
#include "cuda/tc_common.cuh"
#include "cuda/transpose_kernel.cuh"

namespace sd {
namespace cuda {
namespace nhwc {

constexpr int THREADS = 256;
// Rows of up to this many bytes are reordered in shared memory (the default dynamic limit).
constexpr int kMaxRowBytes = 48 * 1024;

// In place, w[co][ci][taps] -> w[co][taps][ci]: one block per row, the row staged in dynamic shared
// memory (ci * taps * 2 <= kMaxRowBytes).
__global__ void reorder_taps_kernel(__half* w, int ci, int taps) {
  cuda::pdl_entry();
  __half* row = reinterpret_cast<__half*>(dynamic_smem());
  __half* p = w + static_cast<int64_t>(blockIdx.x) * ci * taps;
  const int n = ci * taps;
  for (int i = static_cast<int>(threadIdx.x); i < n; i += static_cast<int>(blockDim.x)) row[i] = p[i];
  __syncthreads();
  for (int i = static_cast<int>(threadIdx.x); i < n; i += static_cast<int>(blockDim.x)) {
    const int tap = i / ci, c = i - tap * ci;
    p[i] = row[c * taps + tap];
  }
}

// q8_0 / q4_0 3x3 weights [N][C][3][3] (C % 32 == 0) repacked from src, a copy of their bytes,
// into w in the layout QTapRows reads (gemm_tc_loaders.cuh): the quants of each row in
// TapOrder<9, 32>, then every row's scales. Lossless: a permutation of the same bytes. One block a
// row.
template <bool Q4>
__global__ void repack_q_taps_kernel(const uint8_t* src, uint8_t* w, int C) {
  cuda::pdl_entry();
  constexpr int BLOCK = Q4 ? 18 : 34;
  const int K = 9 * C, blocks = K / 32, qbytes = Q4 ? K / 2 : K;
  const int64_t n = blockIdx.x;
  const uint8_t* row = src + n * blocks * BLOCK;
  // The quant of channel c (< 32) of k-tile kt = (channel block g, tap t): element 9 c + t of
  // the block group 9 g.
  const auto quant = [&](int kt, int c) -> int {
    const int g = kt / 9, p = 9 * c + (kt - g * 9), e = p & 31;
    const uint8_t* b = row + (9 * g + (p >> 5)) * BLOCK + 2;
    return Q4 ? (e < 16 ? b[e] & 15 : b[e - 16] >> 4) : b[e];
  };
  uint8_t* q = w + n * qbytes;
  for (int i = static_cast<int>(threadIdx.x); i < qbytes; i += static_cast<int>(blockDim.x))
    q[i] = static_cast<uint8_t>(Q4 ? quant(i >> 4, i & 15) | quant(i >> 4, (i & 15) + 16) << 4 : quant(i >> 5, i & 31));
  unsigned short* scales = reinterpret_cast<unsigned short*>(w + static_cast<int64_t>(gridDim.x) * qbytes) + n * blocks;
  for (int j = static_cast<int>(threadIdx.x); j < blocks; j += static_cast<int>(blockDim.x))
    scales[j] = *reinterpret_cast<const unsigned short*>(row + j * BLOCK);
}

}  // namespace nhwc
}  // namespace cuda
}  // namespace sd
