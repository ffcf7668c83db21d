// The host emulation's harness (tests/tc_emulation.cpp runs it): the grid runner, the comparison
// with a double-precision reference, random inputs and weights of every type, and the GEMM launch
// as gemm_tc_launch.cuh makes it (kernel choice, split-K). The kernels run with the warp-level ops
// emulated from the PTX ISA's fragment layouts (tests/emu/cuda/tc_common.cuh).
#pragma once
#include <atomic>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "emu/cuda/tc_common.cuh"
inline int min(int a, int b) { return a < b ? a : b; }
#include "cuda/conv_nhwc_kernel.cuh"
#include "cuda/gemm_tc_kernel.cuh"

namespace emu_test {

inline int g_fail = 0, g_pass = 0;
inline std::atomic<bool> g_leftover{false};  // a thread ended with cp.async copies never waited for

inline void run_grid(unsigned gx, unsigned gy, int threads, const std::function<void()>& body, unsigned gz = 1) {
  emu::block_barrier().n = threads;
  for (int w = 0; w < threads / 32; ++w) emu::warps()[w].bar.n = 32;
  blockDim = make_uint3(threads, 1, 1);
  gridDim = make_uint3(gx, gy, gz);
  for (unsigned bz = 0; bz < gz; ++bz)
    for (unsigned by = 0; by < gy; ++by)
      for (unsigned bx = 0; bx < gx; ++bx) {
        blockIdx = make_uint3(bx, by, bz);
        if (emu::run_block(threads, body)) g_leftover = true;
      }
}

inline float h(float x) { return __half2float(__float2half_rn(x)); }

// f16 activations (the "half" kernel set): inputs stored as __half, outputs read back as float.
inline std::vector<__half> to_half(const std::vector<float>& v) {
  std::vector<__half> o(v.size());
  for (size_t i = 0; i < v.size(); ++i) o[i] = __float2half_rn(v[i]);
  return o;
}
inline std::vector<float> from_half(const std::vector<__half>& v) {
  std::vector<float> o(v.size());
  for (size_t i = 0; i < v.size(); ++i) o[i] = __half2float(v[i]);
  return o;
}
// Storing the output as f16 adds its rounding (unit roundoff 2^-11 of |y| <= max|ref|).
inline constexpr double kHalfOut = 1e-3;
inline const char* act_name(bool half) { return half ? " f16-act" : ""; }

inline void check(const std::string& name, const std::vector<float>& out, const std::vector<double>& ref, double tol) {
  double scale = 1e-12, err = 0;
  size_t worst = 0;
  for (double r : ref) scale = std::fmax(scale, std::fabs(r));
  for (size_t i = 0; i < out.size(); ++i) {
    double d = std::fabs(out[i] - ref[i]);
    if (std::isnan(d)) d = INFINITY;
    if (d > err) err = d, worst = i;
  }
  err /= scale;
  const bool ok = err <= tol;
  (ok ? g_pass : g_fail)++;
  std::printf("%s %-50s rel err %.2e (tol %.0e)", ok ? "ok  " : "FAIL", name.c_str(), err, tol);
  if (!ok) std::printf("  worst %zu: %g vs %g", worst, out[worst], ref[worst]);
  std::printf("\n");
  std::fflush(stdout);
}

inline std::mt19937 rng(5);
inline std::vector<float> randn(size_t n, float s = 1.f) {
  std::normal_distribution<float> d(0.f, s);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

using namespace sd::cuda::tc_gemm;

// GroupNorm (eps 1e-5, optional SiLU) of x [n, C, plane] in double: the norms' reference.
inline std::vector<double> group_norm_ref(const std::vector<float>& x, int64_t C, int64_t plane, int64_t groups,
                                          const std::vector<float>& gamma, const std::vector<float>& beta, bool silu) {
  const int64_t len = C / groups * plane, n = static_cast<int64_t>(x.size()) / (C * plane);
  std::vector<double> ref(x.size());
  for (int64_t g = 0; g < n * groups; ++g) {
    double m = 0, v = 0;
    for (int64_t i = 0; i < len; ++i) m += x[g * len + i];
    m /= len;
    for (int64_t i = 0; i < len; ++i) v += (x[g * len + i] - m) * (x[g * len + i] - m);
    v /= len;
    for (int64_t i = 0; i < len; ++i) {
      const int64_t c = ((g * len + i) / plane) % C;
      double o = (x[g * len + i] - m) / std::sqrt(v + 1e-5) * gamma[c] + beta[c];
      if (silu) o = o / (1 + std::exp(-o));
      ref[g * len + i] = o;
    }
  }
  return ref;
}

// Weights as the kernel sees them plus their exact values (after fp16 rounding of the tile).
struct W {
  sd::DType t;
  std::vector<uint8_t> bytes;
  std::vector<float> deq;    // [N, K], values the tile holds (fp16)
  std::vector<float> exact;  // [N, K], the weights' own values in f32
};

inline W make_weights(sd::DType t, int64_t N, int64_t K) {
  W w{t, {}, std::vector<float>(N * K), std::vector<float>(N * K)};
  std::uniform_int_distribution<int> q8(-127, 127), q4(0, 15);
  const auto f = randn(N * K, 0.1f);
  if (t == sd::DType::F32) {
    w.bytes.resize(N * K * 4);
    std::memcpy(w.bytes.data(), f.data(), w.bytes.size());
    for (int64_t i = 0; i < N * K; ++i) w.deq[i] = h(f[i]), w.exact[i] = f[i];
  } else if (t == sd::DType::F16) {
    w.bytes.resize(N * K * 2);
    for (int64_t i = 0; i < N * K; ++i) {
      const uint16_t b = __half_as_ushort(__float2half_rn(f[i]));
      std::memcpy(&w.bytes[2 * i], &b, 2);
      w.deq[i] = w.exact[i] = h(f[i]);
    }
  } else {
    const bool is4 = t == sd::DType::Q4_0;
    const int bs = is4 ? 18 : 34;
    w.bytes.resize(N * (K / 32) * bs);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t b = 0; b < K / 32; ++b) {
        uint8_t* blk = &w.bytes[(n * (K / 32) + b) * bs];
        const float d = 0.001f + 0.01f * std::fabs(f[n * K + b * 32]);
        const uint16_t db = __half_as_ushort(__float2half_rn(d));
        std::memcpy(blk, &db, 2);
        const float dh = __half2float(__float2half_rn(d));
        for (int j = 0; j < 32; ++j) {
          float v;
          if (is4) {
            const int q = q4(rng);
            uint8_t& byte = blk[2 + (j & 15)];
            if (j < 16) byte = static_cast<uint8_t>((byte & 0xF0) | q);
            else byte = static_cast<uint8_t>((byte & 0x0F) | (q << 4));
            v = dh * static_cast<float>(q - 8);
          } else {
            const int q = q8(rng);
            blk[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(q));
            v = dh * static_cast<float>(q);
          }
          w.deq[n * K + b * 32 + j] = h(v);
          w.exact[n * K + b * 32 + j] = v;
        }
      }
  }
  return w;
}

// The kernel the launch picks (gemm_tc_launch.cuh): the multi-stage one where the A loader copies
// with cp.async, g_stages is 4 (the sm_80+ default) and the W loader does too or g_mixed_pipe
// (SDNODE_CUDA_QPIPE), the double-buffered one otherwise.
inline int g_stages = 4;
inline bool g_mixed_pipe = false;
template <class ALoad, class WLoad, class Store>
void gemm_kernel(int64_t M, int64_t N, int64_t K, const ALoad& al, const WLoad& wl, const float* bias,
                 const Store& st, int tiles_per_split) {
  if constexpr (ALoad::kAsync) {
    if (g_stages == 4 && (WLoad::kAsync || g_mixed_pipe)) {
      static_assert(tc_gemm_async_smem<4>() <= 96 * 1024, "the emulator's dynamic shared memory");
      return tc_gemm_async_kernel<4>(M, N, K, al, wl, bias, st, tiles_per_split);
    }
  }
  tc_gemm_kernel(M, N, K, al, wl, bias, st, tiles_per_split);
}

// splits > 1: the split-K path (partials into an f32 workspace, then the reduction kernel), with
// the workspace by channel when n_major (as for a conv's NCHW output).
inline int g_splits = 1;

template <class ALoad, class WLoad, class Store>
void run_gemm_w(int64_t M, int64_t N, int64_t K, const ALoad& al, const WLoad& wl, const float* bias, const Store& st,
                bool n_major = false) {
  const unsigned gx = static_cast<unsigned>((M + BM - 1) / BM), gy = static_cast<unsigned>((N + BN - 1) / BN);
  const int tiles = static_cast<int>((K + BK - 1) / BK);
  if (g_splits <= 1) {
    run_grid(gx, gy, THREADS, [&] { gemm_kernel(M, N, K, al, wl, bias, st, tiles); });
    return;
  }
  const int tps = (tiles + g_splits - 1) / g_splits, splits = (tiles + tps - 1) / tps;
  std::vector<float> ws(static_cast<size_t>(splits) * M * N, NAN);
  const SplitOut part{ws.data(), M, N, n_major};
  run_grid(gx, gy, THREADS, [&] { gemm_kernel(M, N, K, al, wl, nullptr, part, tps); }, static_cast<unsigned>(splits));
  run_grid(3, 1, 64, [&] { splitk_reduce_kernel<Store, int>(ws.data(), splits, part, bias, st); });  // as launched here
}

template <class ALoad, class Store>
void run_gemm(int64_t M, int64_t N, int64_t K, const ALoad& al, const W& w, const float* bias, const Store& st,
              bool n_major = false) {
  with_weights(w.t, w.bytes.data(), N, K, [&](auto wl) { run_gemm_w(M, N, K, al, wl, bias, st, n_major); });
}

}  // namespace emu_test
