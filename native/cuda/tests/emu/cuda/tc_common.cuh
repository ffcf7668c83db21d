// Host emulation of native/cuda/tc_common.cuh for tests/tc_emulation.cpp: every CUDA thread of a
// block is a std::thread; warp-level ops (ldmatrix, mma, shuffles) rendezvous the 32 lanes of a warp
// and compute each lane's registers from the PTX ISA's fragment layouts, written out independently
// of the kernels' own index arithmetic. Lets a machine without a GPU check the kernels' indexing.
#pragma once
#include <cuda_fp16.h>
#include <vector_types.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>

#undef __shared__
#define __shared__ static
#undef __launch_bounds__
#define __launch_bounds__(...)

namespace emu {

struct Barrier {
  std::mutex mu;
  std::condition_variable cv;
  int n = 0, waiting = 0;
  unsigned gen = 0;
  void wait() {
    std::unique_lock<std::mutex> lk(mu);
    const unsigned g = gen;
    if (++waiting == n) {
      waiting = 0;
      ++gen;
      cv.notify_all();
    } else {
      cv.wait(lk, [&] { return gen != g; });
    }
  }
};

constexpr int kMaxWarps = 8;
struct Warp {
  Barrier bar;
  uint64_t slot[32][8];
};
inline Barrier& block_barrier() {
  static Barrier b;
  return b;
}
inline Warp* warps() {
  static Warp w[kMaxWarps];
  return w;
}
inline unsigned char* dyn_smem() {
  alignas(16) static unsigned char buf[64 * 1024];
  return buf;
}

}  // namespace emu

inline thread_local uint3 threadIdx;
inline thread_local uint3 blockIdx;
inline thread_local uint3 blockDim;
inline thread_local uint3 gridDim;

inline void __syncthreads() { emu::block_barrier().wait(); }

namespace emu {
// Lane exchange: every lane publishes `vals` (n words); after the call `get(lane, i)` reads any lane's.
struct Exchange {
  Warp& w;
  int lane;
  Exchange(const uint64_t* vals, int n) : w(warps()[threadIdx.x / 32]), lane(threadIdx.x % 32) {
    for (int i = 0; i < n; ++i) w.slot[lane][i] = vals[i];
    w.bar.wait();
  }
  uint64_t get(int l, int i) const { return w.slot[l][i]; }
  ~Exchange() { w.bar.wait(); }  // nobody overwrites slots before all have read them
};
}  // namespace emu

inline float __shfl_xor_sync(unsigned, float v, int m) {
  uint64_t u = 0;
  std::memcpy(&u, &v, 4);
  emu::Exchange x(&u, 1);
  const uint64_t o = x.get(x.lane ^ m, 0);
  float r;
  std::memcpy(&r, &o, 4);
  return r;
}

inline double __shfl_down_sync(unsigned, double v, int delta) {
  uint64_t u = 0;
  std::memcpy(&u, &v, 8);
  emu::Exchange x(&u, 1);
  const int src = x.lane + delta;
  const uint64_t o = src < 32 ? x.get(src, 0) : u;
  double r;
  std::memcpy(&r, &o, 8);
  return r;
}

inline double atomicAdd(double* p, double v) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lk(mu);
  const double old = *p;
  *p = old + v;
  return old;
}

namespace sd {
namespace cuda {

inline unsigned char* dynamic_smem() { return emu::dyn_smem(); }

inline uint16_t half_at(uint64_t addr) {
  uint16_t h;
  std::memcpy(&h, reinterpret_cast<const void*>(addr), 2);
  return h;
}

// ldmatrix .x4: lane l's address is row l % 8 of matrix l / 8. Lane l receives, in register j,
// matrix j's elements (row l / 4, cols 2 (l % 4), +1); with .trans, (rows 2 (l % 4), +1, col l / 4).
inline void ldmatrix_common(uint32_t (&r)[4], const void* row_addr, bool trans) {
  const uint64_t a = reinterpret_cast<uint64_t>(row_addr);
  emu::Exchange x(&a, 1);
  const int l = x.lane;
  for (int j = 0; j < 4; ++j) {
    uint16_t lo, hi;
    if (!trans) {
      const uint64_t row = x.get(j * 8 + l / 4, 0);
      lo = half_at(row + 2 * (2 * (l % 4)));
      hi = half_at(row + 2 * (2 * (l % 4) + 1));
    } else {
      lo = half_at(x.get(j * 8 + 2 * (l % 4), 0) + 2 * (l / 4));
      hi = half_at(x.get(j * 8 + 2 * (l % 4) + 1, 0) + 2 * (l / 4));
    }
    r[j] = lo | (static_cast<uint32_t>(hi) << 16);
  }
}
inline void ldmatrix_x4(uint32_t (&r)[4], const void* p) { ldmatrix_common(r, p, false); }
inline void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) { ldmatrix_common(r, p, true); }

inline float half_val(uint32_t reg, int which) {
  const uint16_t b = static_cast<uint16_t>(which ? reg >> 16 : reg & 0xFFFF);
  return __half2float(__ushort_as_half(b));
}

// m16n8k16 .row.col: A(r, k) lives in lane (r % 8) * 4 + (k % 8) / 2, register (r / 8) + 2 (k / 8),
// half k % 2; B(k, n) in lane n * 4 + (k % 8) / 2, register b(k / 8), half k % 2; lane l holds
// C(l / 4 + 8 (e / 2), 2 (l % 4) + e % 2) in c[e].
inline void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  const uint64_t mine[6] = {a[0], a[1], a[2], a[3], b0, b1};
  emu::Exchange x(mine, 6);
  const int l = x.lane;
  for (int e = 0; e < 4; ++e) {
    const int row = l / 4 + 8 * (e / 2), col = 2 * (l % 4) + e % 2;
    float acc = c[e];
    for (int k = 0; k < 16; ++k) {
      const float av = half_val(static_cast<uint32_t>(x.get((row % 8) * 4 + (k % 8) / 2, row / 8 + 2 * (k / 8))), k % 2);
      const float bv = half_val(static_cast<uint32_t>(x.get(col * 4 + (k % 8) / 2, 4 + k / 8)), k % 2);
      acc += av * bv;
    }
    c[e] = acc;
  }
}

// The emulated threads copy synchronously: every wait is already satisfied.
inline void cp_async16(void* smem, const void* gmem) { std::memcpy(smem, gmem, 16); }
inline void cp_async_commit() {}
template <int N>
inline void cp_async_wait() {}

inline uint32_t pack_half2(float lo, float hi) {
  return __half_as_ushort(__float2half_rn(lo)) | (static_cast<uint32_t>(__half_as_ushort(__float2half_rn(hi))) << 16);
}

}  // namespace cuda
}  // namespace sd
