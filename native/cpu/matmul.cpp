// linear on top of gemm() (conv2d lives in conv.cpp).
#include <stdexcept>

#include "cpu/cpu_backend.h"
#include "cpu/gemm.h"

namespace sd {

void CpuBackend::do_linear(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias) {
  const int64_t K = w.shape[1], N = w.shape[0], M = x.rows();
  gemm(*this, M, N, K, x.f32(), K, w.data, w.type, bias ? bias->f32() : nullptr, y.f32(), N);
}

}  // namespace sd
