// linear and conv2d on top of gemm(). Placeholder conv until the conv kernels land.
#include <stdexcept>

#include "cpu/cpu_backend.h"
#include "cpu/gemm.h"

namespace sd {

void CpuBackend::do_linear(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias) {
  const int64_t K = w.shape[1], N = w.shape[0], M = x.rows();
  gemm(*this, M, N, K, x.f32(), K, w.data, w.type, bias ? bias->f32() : nullptr, y.f32(), N);
}

void CpuBackend::do_conv2d(Tensor&, const Tensor&, const Tensor&, const Tensor*, int, int) {
  throw std::logic_error("conv2d: not implemented yet");
}

}  // namespace sd
