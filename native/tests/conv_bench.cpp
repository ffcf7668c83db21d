// conv2d benchmark (not a test): runs only with SDNODE_BENCH=conv, e.g.
//   SDNODE_BENCH=conv ./build/sdcore_tests conv_bench       (SDNODE_ISA=avx2 to lower the level)
// Prints the median GFLOP/s of SD 1.5's 3x3 convs (UNet at 512x512 with CFG: batch 2; VAE decoder:
// batch 1) per weight dtype on 2 threads, and the fraction of the measured FMA peak of the active
// ISA level on the same 2 threads. SDNODE_BENCH_REPS sets the timed repetitions (default 3),
// SDNODE_BENCH_SHAPE picks shapes by substring (e.g. "vae 128").
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

#include "core/cpu_features.h"
#include "core/quant.h"
#include "cpu/conv.h"
#include "cpu/cpu_backend.h"
#include "tests/test.h"

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CPU seconds of the whole process (all pool threads; parked workers use none). On a shared
// machine wall time includes time slices lost to other processes, CPU time does not.
double cpu_s() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct Rate { double wall_gf, cpu_gf; };  // cpu_gf: flops per CPU second x threads

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// FMA peak of the active level on the pool's threads, in GFLOP/s (medians of `reps`).
Rate fma_peak(sd::CpuBackend& be, int reps, int64_t iters) {
  const sd::Isa isa = sd::isa_active();
  (void)isa;
  std::vector<double> runs, cpu_runs;
  for (int rep = 0; rep < reps; ++rep) {
    double flops_per_iter = 0;
    volatile float sink = 0;
    const double t0 = now_s(), c0 = cpu_s();
    be.pool().run(be.threads(), [&](int64_t, int) {
#if defined(SDNODE_HAVE_AVX512)
      if (isa == sd::Isa::Avx512) { sink = sd::conv_fma_probe_avx512(iters); return; }
#endif
#if defined(SDNODE_HAVE_AVX2)
      if (isa == sd::Isa::Avx2) { sink = sd::conv_fma_probe_avx2(iters); return; }
#endif
    });
    const double dt = now_s() - t0, dc = cpu_s() - c0;
#if defined(SDNODE_HAVE_AVX512)
    if (isa == sd::Isa::Avx512) flops_per_iter = 24.0 * 16 * 2;
#endif
#if defined(SDNODE_HAVE_AVX2)
    if (isa == sd::Isa::Avx2) flops_per_iter = 12.0 * 8 * 2;
#endif
    runs.push_back(flops_per_iter * iters * be.threads() / dt * 1e-9);
    cpu_runs.push_back(flops_per_iter * iters * be.threads() / dc * be.threads() * 1e-9);
  }
  return {median(runs), median(cpu_runs)};
}

struct BenchShape { const char* what; int64_t n, ci, co, hw; int k, stride; };

}  // namespace

SD_TEST(conv_bench) {
  const char* env = std::getenv("SDNODE_BENCH");
  if (!env || !std::strstr(env, "conv")) return;
  const char* reps_env = std::getenv("SDNODE_BENCH_REPS");
  const int reps = reps_env ? std::max(1, std::atoi(reps_env)) : 3;
  sd::CpuBackend be(2);
  const Rate peak = fma_peak(be, 5, 20000000);
  std::printf("conv2d bench: isa %s, %d threads, median of %d. FMA peak: %.1f GFLOP/s wall, %.1f "
              "per CPU time\n", sd::isa_name(sd::isa_active()), be.threads(), reps, peak.wall_gf,
              peak.cpu_gf);
  std::printf("each cell: GFLOP/s wall / per CPU time (x threads) and %% of the CPU-time FMA peak\n"
              "measured again just before the row (the machine is shared; last column)\n");
  const BenchShape shapes[] = {
      {"unet 320 @64x64 b2", 2, 320, 320, 64, 3, 1},
      {"unet 640 @32x32 b2", 2, 640, 640, 32, 3, 1},
      {"unet 1280 @16x16 b2", 2, 1280, 1280, 16, 3, 1},
      {"unet 1280 @8x8 b2", 2, 1280, 1280, 8, 3, 1},
      {"vae 512 @64x64", 1, 512, 512, 64, 3, 1},
      {"vae 512 @128x128", 1, 512, 512, 128, 3, 1},
      {"vae 256 @256x256", 1, 256, 256, 256, 3, 1},
      {"vae 128 @512x512", 1, 128, 128, 512, 3, 1},
      // Not in the list, for reference: a downsample, a 1x1 and the 4-channel input conv.
      {"unet 320 s2 @64 b2", 2, 320, 320, 64, 3, 2},
      {"unet 1x1 640>320 @32 b2", 2, 640, 320, 32, 1, 1},
      {"unet in 4>320 @64 b2", 2, 4, 320, 64, 3, 1},
  };
  const sd::DType dtypes[] = {sd::DType::F32, sd::DType::F16, sd::DType::Q8_0, sd::DType::Q4_0};
  std::printf("%-24s %22s %22s %22s %22s\n", "shape (3x3 s1 p1 unless said)", "f32", "f16", "q8_0", "q4_0");
  const char* only = std::getenv("SDNODE_BENCH_SHAPE");  // substring filter for tuning runs
  for (const BenchShape& s : shapes) {
    if (only && !std::strstr(s.what, only)) continue;
    const int64_t K = s.ci * s.k * s.k, pad = s.k / 2, ho = (s.hw + 2 * pad - s.k) / s.stride + 1;
    const int64_t P = ho * ho;
    sdtest::Rng rng(1);
    const std::vector<float> x = rng.vec(static_cast<size_t>(s.n * s.ci * s.hw * s.hw));
    const std::vector<float> wf = rng.vec(static_cast<size_t>(s.co * K), -0.05f, 0.05f);
    const std::vector<float> bias = rng.vec(static_cast<size_t>(s.co));
    std::vector<float> y(static_cast<size_t>(s.n * s.co * P));
    const sd::ConvGeom g{s.n, s.ci, s.hw, s.hw, s.co, ho, ho, s.k, s.stride, static_cast<int>(pad),
                         static_cast<int>(pad)};
    const double flops = 2.0 * s.n * s.co * K * P;
    const Rate row_peak = fma_peak(be, 3, 5000000);
    std::printf("%-24s", s.what);
    for (sd::DType t : dtypes) {
      const char* types = std::getenv("SDNODE_BENCH_TYPES");  // e.g. "f32,f16" (as gemm_bench)
      if ((sd::dtype_is_quantized(t) && K % 32 != 0) ||
          (types && !std::strstr(types, sd::dtype_name(t)))) {
        std::printf(" %22s", "-");
        continue;
      }
      const size_t rb = sd::dtype_row_bytes(t, K);
      std::vector<uint8_t> w(rb * static_cast<size_t>(s.co));
      for (int64_t r = 0; r < s.co; ++r) sd::from_f32_row(t, wf.data() + r * K, w.data() + r * rb, K);
      sd::conv2d_cpu(be, g, x.data(), w.data(), t, bias.data(), y.data());  // warm-up, scratch
      std::vector<double> times, cpu_times;
      for (int i = 0; i < reps; ++i) {
        const double t0 = now_s(), c0 = cpu_s();
        sd::conv2d_cpu(be, g, x.data(), w.data(), t, bias.data(), y.data());
        times.push_back(now_s() - t0);
        cpu_times.push_back((cpu_s() - c0) / be.threads());
      }
      const double gf = flops / median(times) * 1e-9, cgf = flops / median(cpu_times) * 1e-9;
      std::printf("   %6.1f /%6.1f (%3.0f%%)", gf, cgf, 100.0 * cgf / row_peak.cpu_gf);
      std::fflush(stdout);
    }
    std::printf("   peak %.0f\n", row_peak.cpu_gf);
  }
}
