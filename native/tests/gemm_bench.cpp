// GEMM benchmark (not a test): SDNODE_BENCH=1 sdcore_tests gemm_bench
// Prints GFLOP/s per weight dtype for SD 1.5's GEMM shapes (512x512, CFG batch 2) on 2 threads,
// per SIMD level this CPU has, as a fraction of the measured FMA peak of that level (a tight loop of
// independent FMAs on every pool thread). For q8_0/q4_0 both the integer and the dequantize-to-f32
// path are timed; "auto" is what gemm() picks. Medians of SDNODE_BENCH_REPS runs (default 7).
// SDNODE_BENCH_SHAPES=unet times all UNet linear shapes instead (see kUnetShapes).
// Without SDNODE_BENCH the case returns at once, so the normal test run stays fast.
#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#include <algorithm>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "core/quant.h"
#include "cpu/cpu_backend.h"
#include "cpu/gemm.h"
#include "tests/test.h"

namespace {

// SDNODE_BENCH_CLOCK=cpu divides by the process CPU time per thread instead of wall time: on a
// shared, oversubscribed machine that measures the kernels' efficiency (time-slicing excluded;
// the pool blocks rather than spins, so load imbalance is excluded too).
struct Clock {
  using time_point = double;
  static bool cpu() {
    static const bool c = std::getenv("SDNODE_BENCH_CLOCK") && std::string(std::getenv("SDNODE_BENCH_CLOCK")) == "cpu";
    return c;
  }
  static double now() {
    timespec ts;
    clock_gettime(cpu() ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
  }
};
int g_threads = 2;

// Wall seconds, or CPU seconds per thread with SDNODE_BENCH_CLOCK=cpu.
double seconds_since(double t0) { return (Clock::now() - t0) / (Clock::cpu() ? g_threads : 1); }

#if defined(__x86_64__)
// 10 independent accumulator chains hide the 4-cycle FMA latency on two FMA ports.
__attribute__((target("avx2,fma"))) double fma_loop_avx2(int64_t iters) {
  __m256 acc[10];
  for (int i = 0; i < 10; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 10; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  float s = 0;
  for (int i = 0; i < 10; ++i) s += _mm256_cvtss_f32(acc[i]);
  return s;
}
__attribute__((target("avx512f"))) double fma_loop_avx512(int64_t iters) {
  __m512 acc[10];
  for (int i = 0; i < 10; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 10; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  float s = 0;
  for (int i = 0; i < 10; ++i) s += _mm512_cvtss_f32(acc[i]);
  return s;
}
#elif defined(__aarch64__)
double fma_loop_neon(int64_t iters) {
  float32x4_t acc[10];
  for (int i = 0; i < 10; ++i) acc[i] = vdupq_n_f32(static_cast<float>(i));
  const float32x4_t a = vdupq_n_f32(0.999999f), b = vdupq_n_f32(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 10; ++i) acc[i] = vfmaq_f32(b, acc[i], a);
  float s = 0;
  for (int i = 0; i < 10; ++i) s += vgetq_lane_f32(acc[i], 0);
  return s;
}
#endif

// GFLOP/s (2 flops per FMA lane) of all pool threads running the loop at once.
double fma_peak(sd::CpuBackend& be, sd::Isa isa) {
#if defined(__x86_64__)
  const int lanes = isa == sd::Isa::Avx512 ? 16 : 8;
  const int64_t iters = 20000000;
  std::vector<double> runs;
  for (int r = 0; r < 5; ++r) {
    volatile double sink = 0;
    const auto t0 = Clock::now();
    be.pool().run(be.threads(), [&](int64_t, int) {
      sink = sink + (isa == sd::Isa::Avx512 ? fma_loop_avx512(iters) : fma_loop_avx2(iters));
    });
    runs.push_back(2.0 * lanes * 10 * iters * be.threads() / seconds_since(t0) / 1e9);
  }
  std::sort(runs.begin(), runs.end());
  return runs[runs.size() / 2];
#elif defined(__aarch64__)
  (void)isa;
  const int64_t iters = 20000000;
  std::vector<double> runs;
  for (int r = 0; r < 5; ++r) {
    volatile double sink = 0;
    const auto t0 = Clock::now();
    be.pool().run(be.threads(), [&](int64_t, int) { sink = sink + fma_loop_neon(iters); });
    runs.push_back(2.0 * 4 * 10 * iters * be.threads() / seconds_since(t0) / 1e9);
  }
  std::sort(runs.begin(), runs.end());
  return runs[runs.size() / 2];
#else
  (void)be; (void)isa;
  return 0;
#endif
}

struct Shape { const char* what; int64_t M, N, K; };
const Shape kShapes[] = {
    {"attn proj", 8192, 320, 320},   {"GEGLU proj", 8192, 2560, 320}, {"ff out", 8192, 320, 1280},
    {"xattn k/v", 154, 320, 768},    {"time emb", 2, 1280, 320},      {"conv3x3 320", 4096, 320, 2880},
};
// SDNODE_BENCH_SHAPES=unet: every SD 1.5 UNet linear shape per resolution level (M = 2 x tokens).
const Shape kUnetShapes[] = {
    {"proj 320", 8192, 320, 320},    {"GEGLU 320", 8192, 2560, 320},  {"ff out 320", 8192, 320, 1280},
    {"proj 640", 2048, 640, 640},    {"GEGLU 640", 2048, 5120, 640},  {"ff out 640", 2048, 640, 2560},
    {"proj 1280", 512, 1280, 1280},  {"GEGLU 1280", 512, 10240, 1280}, {"ff out 1280", 512, 1280, 5120},
    {"xattn k/v", 154, 320, 768},
};

// One timed run (GFLOP/s); small shapes repeat inside it so it lasts at least ~20 ms.
double time_once(sd::CpuBackend& be, const Shape& s, sd::DType t, const std::vector<float>& A,
                 const std::vector<uint8_t>& W, const std::vector<float>& bias, std::vector<float>& C) {
  const double flops = 2.0 * s.M * s.N * s.K;
  const int inner = std::max<int64_t>(1, static_cast<int64_t>(2e9 / std::max(flops, 1.0)));
  const auto t0 = Clock::now();
  for (int i = 0; i < inner; ++i)
    sd::gemm(be, s.M, s.N, s.K, A.data(), s.K, W.data(), t, bias.data(), C.data(), s.N);
  return flops * inner / seconds_since(t0) / 1e9;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

SD_TEST(gemm_bench) {
  if (!std::getenv("SDNODE_BENCH")) return;
  const int threads = std::getenv("SDNODE_BENCH_THREADS") ? std::atoi(std::getenv("SDNODE_BENCH_THREADS")) : 2;
  const int reps = std::getenv("SDNODE_BENCH_REPS") ? std::atoi(std::getenv("SDNODE_BENCH_REPS")) : 7;
  g_threads = threads;
  sd::CpuBackend be(threads);
  const sd::Isa saved = sd::isa_active();
  const sd::DType types[] = {sd::DType::F32, sd::DType::F16, sd::DType::Q8_0, sd::DType::Q4_0};
  for (sd::Isa isa : {sd::Isa::Avx512, sd::Isa::Avx2, sd::Isa::Dotprod, sd::Isa::Neon}) {
    if (const char* only = std::getenv("SDNODE_BENCH_ISA"))  // e.g. "avx512": one level only
      if (std::string(only) != sd::isa_name(isa)) continue;
    if (!sd::isa_force(isa)) continue;
    const double peak = fma_peak(be, isa);
    std::printf("\n== %s, %d threads, %s time: measured FMA peak %.1f GFLOP/s ==\n", sd::isa_name(isa), threads,
                Clock::cpu() ? "cpu" : "wall", peak);
    std::printf("%-12s %5s %5s %5s | %14s %14s %14s %14s %14s %14s\n", "shape", "M", "N", "K", "f32", "f16",
                "q8_0 int", "q8_0 float", "q4_0 int", "q4_0 float");
    const bool unet = std::getenv("SDNODE_BENCH_SHAPES") && std::string(std::getenv("SDNODE_BENCH_SHAPES")) == "unet";
    const Shape* shapes = unet ? kUnetShapes : kShapes;
    const size_t nshapes = unet ? sizeof kUnetShapes / sizeof kUnetShapes[0] : sizeof kShapes / sizeof kShapes[0];
    for (size_t si = 0; si < nshapes; ++si) {
      const Shape& s = shapes[si];
      sdtest::Rng rng(7);
      const std::vector<float> A = rng.vec(static_cast<size_t>(s.M * s.K));
      const std::vector<float> wf = rng.vec(static_cast<size_t>(s.N * s.K));
      const std::vector<float> bias = rng.vec(static_cast<size_t>(s.N));
      std::vector<float> C(static_cast<size_t>(s.M * s.N));
      std::printf("%-12s %5lld %5lld %5lld |", s.what, (long long)s.M, (long long)s.N, (long long)s.K);
      for (sd::DType t : types) {
        if (const char* only = std::getenv("SDNODE_BENCH_TYPES"))  // e.g. "f32,q8_0"
          if (std::string(only).find(sd::dtype_name(t)) == std::string::npos) {
            std::printf(" %14s%s", "", sd::dtype_is_quantized(t) ? "                " : "");
            continue;
          }
        std::vector<uint8_t> W(sd::dtype_row_bytes(t, s.K) * s.N);
        for (int64_t n = 0; n < s.N; ++n)
          sd::from_f32_row(t, wf.data() + n * s.K, W.data() + n * sd::dtype_row_bytes(t, s.K), s.K);
        const bool q = sd::dtype_is_quantized(t);
        // The paths to time; for q8_0/q4_0 int and float runs alternate, so load changes on a
        // shared machine hit both alike.
        std::vector<sd::GemmQuantPath> paths;
        for (sd::GemmQuantPath path : {sd::GemmQuantPath::Int, sd::GemmQuantPath::Float}) {
          if (!q && path == sd::GemmQuantPath::Float) continue;
          sd::gemm_force_quant_path(q ? path : sd::GemmQuantPath::Auto);
          if (q && path == sd::GemmQuantPath::Int && !sd::gemm_uses_int_path(t, s.M, s.N, s.K)) continue;
          paths.push_back(q ? path : sd::GemmQuantPath::Auto);
          time_once(be, s, t, A, W, bias, C);  // warm-up (scratch, caches)
        }
        std::vector<std::vector<double>> runs(paths.size());
        for (int r = 0; r < reps; ++r)
          for (size_t i = 0; i < paths.size(); ++i) {
            sd::gemm_force_quant_path(paths[i]);
            runs[i].push_back(time_once(be, s, t, A, W, bias, C));
          }
        sd::gemm_force_quant_path(sd::GemmQuantPath::Auto);
        if (q && (paths.empty() || paths[0] != sd::GemmQuantPath::Int)) std::printf(" %14s", "-");
        for (size_t i = 0; i < paths.size(); ++i) {
          const double g = median(runs[i]);
          const bool chosen = !q || sd::gemm_uses_int_path(t, s.M, s.N, s.K) == (paths[i] == sd::GemmQuantPath::Int);
          std::printf(" %6.1f (%3.0f%%)%s", g, peak > 0 ? 100.0 * g / peak : 0.0, chosen ? "*" : " ");
        }
      }
      std::printf("\n");
      std::fflush(stdout);
    }
  }
  sd::gemm_force_quant_path(sd::GemmQuantPath::Auto);
  sd::isa_force(saved);
  std::printf("GFLOP/s (%% of that level's FMA peak); * = the path gemm() picks\n");
}
