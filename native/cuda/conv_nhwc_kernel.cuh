// The two layout kernels of the NHWC conv path (gemm_tc_conv.cu): the input copied channels-last
// as f16 (the same transpose serves Backend::transpose12), and 3x3 weights reordered tap-major
// once. A header of its own so that the host emulation (tests/tc_emulation.cpp) runs them with the
// GEMM they feed.
#pragma once
#include <cstdint>

#include "cuda/act.cuh"
#include "cuda/tc_common.cuh"

namespace sd {
namespace cuda {
namespace nhwc {

constexpr int THREADS = 256;
// Rows of up to this many bytes are reordered in shared memory (the default dynamic limit).
constexpr int kMaxRowBytes = 48 * 1024;

// y[n][p][c] = x[n][c][p] converted to Out (f16: the NHWC copy) through a 32x32 tile, so that
// reads (along p) and writes (along c) are both coalesced. Grid (ceil(P / 32), ceil(C / 32),
// images), THREADS threads.
template <class T, class Out = __half>
__global__ void transpose_kernel(const T* x, Out* y, int C, int P) {
  cuda::pdl_entry();
  __shared__ float tile[32][33];
  const int tx = static_cast<int>(threadIdx.x) & 31, ty = static_cast<int>(threadIdx.x) >> 5;
  const int p0 = static_cast<int>(blockIdx.x) * 32, c0 = static_cast<int>(blockIdx.y) * 32;
  const int64_t base = static_cast<int64_t>(blockIdx.z) * C * P;
  for (int r = ty; r < 32; r += THREADS / 32) {
    const int c = c0 + r, p = p0 + tx;
    if (c < C && p < P) tile[r][tx] = to_f32(x[base + static_cast<int64_t>(c) * P + p]);
  }
  __syncthreads();
  for (int r = ty; r < 32; r += THREADS / 32) {
    const int p = p0 + r, c = c0 + tx;
    if (c < C && p < P) y[base + static_cast<int64_t>(p) * C + c] = from_f32<Out>(tile[tx][r]);
  }
}

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
