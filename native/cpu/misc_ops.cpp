// Placeholder until the norm / attention / elementwise kernels land.
#include <stdexcept>

#include "cpu/cpu_backend.h"

namespace sd {

#define SD_PENDING(name) throw std::logic_error(name ": not implemented yet")
void CpuBackend::do_group_norm(Tensor&, const Tensor&, int, const Tensor&, const Tensor&, float, bool) { SD_PENDING("group_norm"); }
void CpuBackend::do_layer_norm(Tensor&, const Tensor&, const Tensor&, const Tensor&, float) { SD_PENDING("layer_norm"); }
void CpuBackend::do_attention(Tensor&, const Tensor&, const Tensor&, const Tensor&, int, bool) { SD_PENDING("attention"); }
void CpuBackend::do_softmax(Tensor&, const Tensor&) { SD_PENDING("softmax"); }
void CpuBackend::do_unary(Tensor&, const Tensor&, Unary) { SD_PENDING("unary"); }
void CpuBackend::do_geglu(Tensor&, const Tensor&) { SD_PENDING("geglu"); }
void CpuBackend::do_add(Tensor&, const Tensor&, const Tensor&) { SD_PENDING("add"); }
void CpuBackend::do_mul(Tensor&, const Tensor&, const Tensor&) { SD_PENDING("mul"); }
void CpuBackend::do_upsample_nearest(Tensor&, const Tensor&) { SD_PENDING("upsample_nearest"); }
void CpuBackend::do_concat_channels(Tensor&, const Tensor&, const Tensor&) { SD_PENDING("concat_channels"); }
void CpuBackend::do_transpose12(Tensor&, const Tensor&) { SD_PENDING("transpose12"); }
void CpuBackend::do_timestep_embedding(Tensor&, const float*, float) { SD_PENDING("timestep_embedding"); }
void CpuBackend::do_get_rows(Tensor&, const Tensor&, const int32_t*, int64_t) { SD_PENDING("get_rows"); }

}  // namespace sd
