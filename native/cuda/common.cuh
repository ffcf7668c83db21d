// Device helpers shared by the CUDA kernels.
#pragma once
#include <cuda_fp16.h>

#include <cstdint>

#include "core/dtype.h"
#include "cuda/pdl.cuh"

namespace sd {
namespace cuda {

__device__ __forceinline__ float half_bits_to_float(const uint8_t* p) {
  // Blocks are 34/18 bytes, so their fp16 scale is only 2-byte aligned at best: read bytes.
  const unsigned short bits = static_cast<unsigned short>(p[0] | (p[1] << 8));
  return __half2float(__ushort_as_half(bits));
}

// Element k of a weight row stored as `t` (GGML block layouts for q8_0 / q4_0).
__device__ __forceinline__ float load_weight(const uint8_t* row, DType t, int64_t k) {
  switch (t) {
    case DType::F32: return reinterpret_cast<const float*>(row)[k];
    case DType::F16: return __half2float(reinterpret_cast<const __half*>(row)[k]);
    case DType::Q8_0: {
      const uint8_t* b = row + (k >> 5) * 34;
      return half_bits_to_float(b) * static_cast<float>(static_cast<int8_t>(b[2 + (k & 31)]));
    }
    case DType::Q4_0: {
      const uint8_t* b = row + (k >> 5) * 18;
      const int j = static_cast<int>(k & 31);
      const uint8_t byte = b[2 + (j & 15)];
      const int q = (j < 16 ? (byte & 0x0F) : (byte >> 4)) - 8;
      return half_bits_to_float(b) * static_cast<float>(q);
    }
  }
  return 0.f;
}

}  // namespace cuda
}  // namespace sd
