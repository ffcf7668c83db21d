// Activations live in memory as f32 or f16 (Backend::activation_type: f16 with SDNODE_CUDA_TC's
// "half" part). Kernels are templated on the element type T (float or __half) and compute in f32:
// they load through to_f32 and store through from_f32, so both types share one body. A header of its
// own so that the host emulation (tests/tc_emulation.cpp) can include it with the kernels.
#pragma once
#include <cuda_fp16.h>

#include <cstdint>

#include "core/dtype.h"
#include "core/tensor.h"
#include "cuda/pdl.cuh"

namespace sd {
namespace cuda {

__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(__half v) { return __half2float(v); }

template <class T> __device__ __forceinline__ T from_f32(float v);
template <> __device__ __forceinline__ float from_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_f32<__half>(float v) { return __float2half_rn(v); }

// The erf GELU of torch.nn.functional.gelu (GEGLU's gate), in f32.
__device__ __forceinline__ float gelu_erf(float x) { return 0.5f * x * (1.f + erff(x * 0.70710678118654752f)); }

// Four consecutive elements at a 16-byte (float) or 8-byte (__half) aligned address.
__device__ __forceinline__ void load4(const float* p, float (&v)[4]) {
  const float4 f = *reinterpret_cast<const float4*>(p);
  v[0] = f.x, v[1] = f.y, v[2] = f.z, v[3] = f.w;
}
__device__ __forceinline__ void load4(const __half* p, float (&v)[4]) {
  const uint2 u = *reinterpret_cast<const uint2*>(p);
  const __half2 a = *reinterpret_cast<const __half2*>(&u.x), b = *reinterpret_cast<const __half2*>(&u.y);
  v[0] = __low2float(a), v[1] = __high2float(a), v[2] = __low2float(b), v[3] = __high2float(b);
}

// Stores four consecutive elements at an address aligned as for load4.
__device__ __forceinline__ void store4(float* p, const float (&v)[4]) {
  *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
}
__device__ __forceinline__ void store4(__half* p, const float (&v)[4]) {
  const __half2 a = __floats2half2_rn(v[0], v[1]), b = __floats2half2_rn(v[2], v[3]);
  uint2 u;
  u.x = *reinterpret_cast<const uint32_t*>(&a);
  u.y = *reinterpret_cast<const uint32_t*>(&b);
  *reinterpret_cast<uint2*>(p) = u;
}

// Host side: whether t's data is aligned for load4/store4 of its element type (the arena aligns to
// 64 bytes; views may not).
inline bool aligned4(const Tensor& t) {
  return reinterpret_cast<uintptr_t>(t.data) % static_cast<uintptr_t>(4 * dtype_block_bytes(t.type)) == 0;
}

// Host side: calls f(T{}) with T the element type of activations stored as `t` (F16 or F32), so a
// generic lambda can launch the matching kernel instantiation.
template <class F>
void with_act(DType t, F&& f) {
  if (t == DType::F16) f(__half{});
  else f(float{});
}

}  // namespace cuda
}  // namespace sd
