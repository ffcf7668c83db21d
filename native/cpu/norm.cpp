// group_norm, layer_norm and softmax: split into independent blocks/rows and run the table's kernel.
#include <algorithm>

#include "cpu/cpu_backend.h"
#include "cpu/misc_kernels.h"

namespace sd {

void CpuBackend::do_group_norm(Tensor& y, const Tensor& x, int groups, const Tensor& gamma,
                               const Tensor& beta, float eps, bool silu) {
  const MiscKernels& kern = misc_kernels();
  const int64_t N = x.shape[0], C = x.shape[1], hw = x.numel() / (N * C), cpg = C / groups;
  // One task per (sample, group): the statistics are reduced in a fixed order by one thread.
  pool().run(N * groups, [&](int64_t task, int) {
    const int64_t g = task % groups;
    const int64_t off = task * cpg * hw;  // x: [N, G, cpg, hw]
    kern.group_norm(y.f32() + off, x.f32() + off, cpg, hw, gamma.f32() + g * cpg,
                    beta.f32() + g * cpg, eps, silu);
  });
}

void CpuBackend::do_layer_norm(Tensor& y, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                               float eps) {
  const MiscKernels& kern = misc_kernels();
  const int64_t n = x.row_len();
  pool().parallel_for(x.rows(), std::max<int64_t>(1, 8192 / n), [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r)
      kern.layer_norm_row(y.f32() + r * n, x.f32() + r * n, n, gamma.f32(), beta.f32(), eps);
  });
}

void CpuBackend::do_softmax(Tensor& y, const Tensor& x) {
  const MiscKernels& kern = misc_kernels();
  const int64_t n = x.row_len();
  pool().parallel_for(x.rows(), std::max<int64_t>(1, 8192 / n), [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) kern.softmax_row(y.f32() + r * n, x.f32() + r * n, n);
  });
}

}  // namespace sd
