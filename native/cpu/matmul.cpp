// Placeholder until the GEMM / conv kernels land.
#include <stdexcept>

#include "cpu/cpu_backend.h"

namespace sd {

void CpuBackend::do_linear(Tensor&, const Tensor&, const Tensor&, const Tensor*) {
  throw std::logic_error("linear: not implemented yet");
}
void CpuBackend::do_conv2d(Tensor&, const Tensor&, const Tensor&, const Tensor*, int, int) {
  throw std::logic_error("conv2d: not implemented yet");
}

}  // namespace sd
