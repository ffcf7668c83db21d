// Tensor-core building blocks shared by the TC GEMM/conv and attention kernels (SDNODE_CUDA_TC=1):
// warp-level mma.sync with f16 inputs and f32 accumulators, ldmatrix fragment loads, cp.async.
//
// Fragment layouts (PTX ISA, "Matrix fragments for mma.m16n8k16 with floating point type"), with
// g = lane / 4 and t = lane % 4:
//   A 16x16 (row-major): a0 = (row g, k 2t..2t+1), a1 = (g+8, 2t..), a2 = (g, 2t+8..), a3 = (g+8, 2t+8..)
//   B 16x8  (k x n, "col"): b0 = (k 2t..2t+1, n g), b1 = (k 2t+8.., n g)
//   C 16x8  f32: c0,c1 = (row g, n 2t, 2t+1), c2,c3 = (row g+8, n 2t, 2t+1)
// m16n8k16 with f16 needs sm_80; on sm_75 the same product is two m16n8k8 (k halves: {a0,a1} x b0
// then {a2,a3} x b1), so every kernel here runs from Turing on.
#pragma once
#include <cuda_fp16.h>

#include <cstdint>
#include <cstring>

namespace sd {
namespace cuda {

// The kernel's dynamic shared memory (declared here so the kernels never spell `extern __shared__`).
__device__ __forceinline__ unsigned char* dynamic_smem() {
  extern __shared__ __align__(16) unsigned char smem_dyn[];
  return smem_dyn;
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Four 8x8 b16 matrices; lane l gives the row address of matrix l / 8, row l % 8. Register j gets
// matrix j's (row lane / 4, cols 2 * (lane % 4) .. +1).
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row_addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(row_addr)));
}

// The same, transposed: register j gets matrix j's (rows 2 * (lane % 4) .. +1, col lane / 4).
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row_addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(row_addr)));
}

// c += a (16x16) * b (16x8), f16 inputs, f32 accumulation.
__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5}, {%6}, {%0, %1, %2, %3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(b0));
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5}, {%6}, {%0, %1, %2, %3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[2]), "r"(a[3]), "r"(b1));
#endif
}

// 16-byte global -> shared copy, asynchronous on sm_80+ (cp.async, bypassing L1); a plain copy on
// sm_75, where commit/wait are then no-ops. Always followed by a wait and a __syncthreads.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr(smem)), "l"(gmem) : "memory");
#else
  *reinterpret_cast<uint4*>(smem) = *reinterpret_cast<const uint4*>(gmem);
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

// Waits until at most N of this thread's committed copy groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

// 2^x for softmax weights on the approximate unit without exp2f's subnormal fix-up (three more
// instructions per call): results below 2^-126 flush to zero, far below f16's smallest step, which
// is where the weights go next. 2^-inf = 0.
__device__ __forceinline__ float exp2_ftz(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// The 32 bits of a half2: .x in the low 16.
__device__ __forceinline__ __half2 u32_as_half2(uint32_t u) {
  __half2 h;
  static_assert(sizeof h == sizeof u, "half2 is 32 bits");
  memcpy(&h, &u, sizeof u);
  return h;
}
__device__ __forceinline__ uint32_t half2_as_u32(__half2 h) {
  uint32_t u;
  memcpy(&u, &h, sizeof u);
  return u;
}

__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
  return half2_as_u32(__floats2half2_rn(lo, hi));  // .x = lo sits in the low 16 bits
}

}  // namespace cuda
}  // namespace sd
