// Programmatic dependent launch (sm_90+), the device side; the host side is launch.h.
//
// A kernel launched with the attribute may have its blocks scheduled while the kernel before it in
// the stream is still draining its last blocks, instead of after it has finished and the launch
// has gone through: at the small sizes a UNet step is a chain of hundreds of short kernels, and
// that gap is a share of each. So every kernel begins with pdl_wait() (or pdl_entry()), before any
// global load or store: it returns once the predecessor has completed and its writes are visible.
// pdl_trigger() then lets the successor's blocks be scheduled as SMs free up (they wait in turn);
// a block that exits counts as triggered. Without the attribute, or before sm_90, all are no-ops
// and launches serialise as usual.
#pragma once

namespace sd {
namespace cuda {

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Scheduling only: no memory ordering, so anywhere in the kernel.
__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::);
#endif
}

// Both, for kernels with nothing to overlap.
__device__ __forceinline__ void pdl_entry() {
  pdl_wait();
  pdl_trigger();
}

}  // namespace cuda
}  // namespace sd
