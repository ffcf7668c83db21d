// The two layout kernels of the NHWC conv path (gemm_tc_conv.cu): the input copied channels-last
// as f16 (transpose_kernel.cuh), and 3x3 weights reordered tap-major once. A header of its own so
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

}  // namespace nhwc
}  // namespace cuda
}  // namespace sd
