// Every kernel launch of the CUDA backend goes through enqueue(), so that it can carry the
// programmatic-dependent-launch attribute (pdl.cuh): on where the device is sm_90+ and
// SDNODE_CUDA_PDL=1, off otherwise. The setting is per thread, set by CudaBackend::bind() before an
// op's launches (ops may come from any thread; a capture records the attribute into the graph).
#pragma once
#include <cuda_runtime.h>

#include <utility>

namespace sd {
namespace cuda {

void set_thread_pdl(bool on);
bool thread_pdl();

// kernel<<<grid, block, smem, s>>>(args...). A launch error stays the thread's last error, as with
// <<<>>>, for the caller's SD_CUDA_LAUNCHED to name.
template <typename... P, typename... A>
void enqueue(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t s, A&&... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = s;
  cudaLaunchAttribute attr[1];
  if (thread_pdl()) {
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
  }
  (void)cudaLaunchKernelEx(&cfg, kernel, std::forward<A>(args)...);
}

}  // namespace cuda
}  // namespace sd
