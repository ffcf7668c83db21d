// Host emulation of native/cuda/tc_common.cuh for tests/tc_emulation.cpp: every CUDA thread of a
// block is a fiber (run_block); warp-level ops (ldmatrix, mma, shuffles) rendezvous the 32 lanes of
// a warp and compute each lane's registers from the PTX ISA's fragment layouts, written out
// independently of the kernels' own index arithmetic. Lets a machine without a GPU check the
// kernels' indexing.
#pragma once
#include <cuda_fp16.h>
#include <vector_types.h>

#include <algorithm>
#include <cmath>
#include <ucontext.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#undef __shared__
#define __shared__ static
// Kernels defined in headers are included by more than one of the emulation's translation units.
#undef __global__
#define __global__ inline
#undef __launch_bounds__
#define __launch_bounds__(...)

namespace emu {

void yield();
inline unsigned& releases() {  // barriers released so far: the scheduler's measure of progress
  static unsigned r = 0;
  return r;
}

// The fibers switch only here, so everything between two barriers runs as one piece.
struct Barrier {
  int n = 0, waiting = 0;
  unsigned gen = 0;
  void wait() {
    const unsigned g = gen;
    if (++waiting == n) {
      waiting = 0;
      ++gen;
      ++releases();
      return;
    }
    while (gen == g) yield();
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
  alignas(16) static unsigned char buf[96 * 1024];
  return buf;
}

}  // namespace emu

// Set by run_block as it switches fibers (threadIdx) and blocks (the rest).
inline uint3 threadIdx;
inline uint3 blockIdx;
inline uint3 blockDim;
inline uint3 gridDim;

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

inline double atomicAdd(double* p, double v) {  // fibers switch only at barriers: atomic as it is
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
#ifdef SDNODE_EMU_SM75
// sm_75 has no m16n8k16: the kernels issue two m16n8k8, {a0, a1} x b0 then {a2, a3} x b1. m16n8k8
// (f16): A(r, k) in lane (r % 8) * 4 + k / 2, register r / 8, half k % 2; B(k, n) in lane n * 4 + k / 2,
// half k % 2; C as for m16n8k16.
inline void mma_1688(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t b) {
  const uint64_t mine[3] = {a0, a1, b};
  emu::Exchange x(mine, 3);
  const int l = x.lane;
  for (int e = 0; e < 4; ++e) {
    const int row = l / 4 + 8 * (e / 2), col = 2 * (l % 4) + e % 2;
    float acc = c[e];
    for (int k = 0; k < 8; ++k) {
      const float av = half_val(static_cast<uint32_t>(x.get((row % 8) * 4 + k / 2, row / 8)), k % 2);
      const float bv = half_val(static_cast<uint32_t>(x.get(col * 4 + k / 2, 2)), k % 2);
      acc += av * bv;
    }
    c[e] = acc;
  }
}
inline void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  mma_1688(c, a[0], a[1], b0);
  mma_1688(c, a[2], a[3], b1);
}
#else
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

#endif

// cp.async as PTX defines it, strictly: the destination reads as f16 NaN from issue until a
// cp.async.wait_group<N> of the issuing thread retires the copy's group (groups are per thread; all
// but the newest N complete). A read before the wait, or a refill of a buffer that other warps still
// read, shows up as NaN in the result; copies still pending when a thread ends are counted.
struct PendingCopy {
  void* dst;
  const void* src;
};
// The running fiber's groups (run_block swaps each fiber's in and out).
inline std::vector<std::vector<PendingCopy>> t_groups;
inline std::vector<PendingCopy> t_open;
inline void cp_async16(void* smem, const void* gmem) {
  std::memset(smem, 0xFF, 16);
  t_open.push_back({smem, gmem});
}
inline void cp_async_commit() {
  t_groups.push_back(t_open);
  t_open.clear();
}
template <int N>
inline void cp_async_wait() {
  while (static_cast<int>(t_groups.size()) > N) {
    for (const PendingCopy& c : t_groups.front()) std::memcpy(c.dst, c.src, 16);
    t_groups.erase(t_groups.begin());
  }
}
// Called as each emulated thread ends: how many copies it left pending (0 for a correct kernel).
inline size_t cp_async_leftover() {
  size_t n = t_open.size();
  for (const auto& g : t_groups) n += g.size();
  t_open.clear();
  t_groups.clear();
  return n;
}

inline float exp2_ftz(float x) { return exp2f(x); }

inline __half2 u32_as_half2(uint32_t u) {
  return __halves2half2(__ushort_as_half(static_cast<unsigned short>(u & 0xFFFF)),
                        __ushort_as_half(static_cast<unsigned short>(u >> 16)));
}
inline uint32_t half2_as_u32(__half2 h) {
  return __half_as_ushort(__low2half(h)) | (static_cast<uint32_t>(__half_as_ushort(__high2half(h))) << 16);
}

inline uint32_t pack_half2(float lo, float hi) {
  return __half_as_ushort(__float2half_rn(lo)) | (static_cast<uint32_t>(__half_as_ushort(__float2half_rn(hi))) << 16);
}

}  // namespace cuda
}  // namespace sd

namespace emu {

// The threads of one block as fibers (ucontext) on the calling thread, run round-robin, each until
// it waits at a barrier. (As std::threads with condition-variable barriers, the emulation spent
// most of its time in the kernel's scheduler: an mma is two warp rendezvous.)
struct Fiber {
  ucontext_t ctx;
  bool done = false;
  std::vector<std::vector<sd::cuda::PendingCopy>> groups;
  std::vector<sd::cuda::PendingCopy> open;
};
struct Scheduler {
  ucontext_t main;
  std::vector<Fiber> fibers;
  std::vector<std::unique_ptr<char[]>> stacks;  // kept across blocks
  int cur = 0;
  const std::function<void()>* body = nullptr;
  size_t leftover = 0;
};
constexpr size_t kStackBytes = 256 * 1024;
inline Scheduler& scheduler() {
  static Scheduler s;
  return s;
}
inline void yield() {
  Scheduler& s = scheduler();
  swapcontext(&s.fibers[s.cur].ctx, &s.main);
}
inline void fiber_main() {
  Scheduler& s = scheduler();
  (*s.body)();
  s.leftover += sd::cuda::cp_async_leftover();
  s.fibers[s.cur].done = true;
}  // returns to uc_link: the scheduler

// Runs body as threads 0 .. threads - 1 of the block blockIdx; returns the cp.async copies the
// threads left pending (0 for a correct kernel). Aborts if every live thread waits and none can
// go on (a kernel whose threads reach different barriers).
inline size_t run_block(int threads, const std::function<void()>& body) {
  Scheduler& s = scheduler();
  s.fibers.assign(static_cast<size_t>(threads), Fiber{});
  while (s.stacks.size() < s.fibers.size()) s.stacks.emplace_back(new char[kStackBytes]);
  s.body = &body;
  s.leftover = 0;
  for (int i = 0; i < threads; ++i) {
    Fiber& f = s.fibers[i];
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = s.stacks[i].get();
    f.ctx.uc_stack.ss_size = kStackBytes;
    f.ctx.uc_link = &s.main;
    makecontext(&f.ctx, fiber_main, 0);
  }
  int alive = threads, idle_passes = 0;
  while (alive > 0) {
    const unsigned before = releases();
    const int alive_before = alive;
    for (int i = 0; i < threads; ++i) {
      Fiber& f = s.fibers[i];
      if (f.done) continue;
      s.cur = i;
      threadIdx = make_uint3(static_cast<unsigned>(i), 0, 0);
      std::swap(sd::cuda::t_groups, f.groups);
      std::swap(sd::cuda::t_open, f.open);
      swapcontext(&s.main, &f.ctx);
      std::swap(sd::cuda::t_groups, f.groups);
      std::swap(sd::cuda::t_open, f.open);
      if (f.done) --alive;
    }
    idle_passes = releases() == before && alive == alive_before ? idle_passes + 1 : 0;
    if (idle_passes >= 2) {
      std::fprintf(stderr, "emulation: the block's threads wait at barriers no thread can release\n");
      std::abort();
    }
  }
  return s.leftover;
}

}  // namespace emu
