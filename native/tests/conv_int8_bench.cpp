// Integer-dot conv2d benchmark (not a test): runs only when SDNODE_BENCH mentions "conv", e.g.
//   SDNODE_BENCH=1,conv SDNODE_BENCH_CLOCK=cpu ./build/sdcore_tests conv_bench_int8
// (SDNODE_ISA=avx2 lowers the level). Per SD 1.5 conv shape (UNet 512x512 with CFG: batch 2; VAE
// decoder: batch 1) and quantized weight type, the float path (weights dequantized per tile) and the
// integer path back to back on 2 threads: median GFLOP/s and % of the FMA peak of the active level
// measured just before the row. SDNODE_BENCH_CLOCK=cpu counts CPU time (x threads) instead of wall
// time; SDNODE_BENCH_REPS sets the repetitions (default 3); SDNODE_BENCH_SHAPE picks shapes by
// substring.
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
#include "cpu/conv_int8.h"
#include "cpu/cpu_backend.h"
#include "tests/test.h"

namespace {

double now_s(bool cpu) {
  if (cpu) {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// FMA peak of the active level on the pool's threads (GFLOP/s, median of 3); 0 without a probe.
double fma_peak(sd::CpuBackend& be, bool cpu) {
  const sd::Isa isa = sd::isa_active();
  (void)isa;
  double flops_per_iter = 0;
#if defined(SDNODE_HAVE_AVX512)
  if (isa == sd::Isa::Avx512) flops_per_iter = 24.0 * 16 * 2;
#endif
#if defined(SDNODE_HAVE_AVX2)
  if (isa == sd::Isa::Avx2) flops_per_iter = 12.0 * 8 * 2;
#endif
  if (flops_per_iter == 0) return 0;
  const int64_t iters = 5000000;
  std::vector<double> runs;
  for (int rep = 0; rep < 3; ++rep) {
    volatile float sink = 0;
    const double t0 = now_s(cpu);
    be.pool().run(be.threads(), [&](int64_t, int) {
#if defined(SDNODE_HAVE_AVX512)
      if (isa == sd::Isa::Avx512) { sink = sd::conv_fma_probe_avx512(iters); return; }
#endif
#if defined(SDNODE_HAVE_AVX2)
      if (isa == sd::Isa::Avx2) { sink = sd::conv_fma_probe_avx2(iters); return; }
#endif
    });
    const double dt = (now_s(cpu) - t0) / (cpu ? be.threads() : 1);
    runs.push_back(flops_per_iter * iters * be.threads() / dt * 1e-9);
  }
  return median(runs);
}

struct BenchShape { const char* what; int64_t n, ci, co, hw; int k, stride; };

}  // namespace

SD_TEST(conv_bench_int8) {
  const char* env = std::getenv("SDNODE_BENCH");
  if (!env || !std::strstr(env, "conv")) return;
  const char* reps_env = std::getenv("SDNODE_BENCH_REPS");
  const int reps = reps_env ? std::max(1, std::atoi(reps_env)) : 3;
  const char* clock_env = std::getenv("SDNODE_BENCH_CLOCK");
  const bool cpu = clock_env && std::strcmp(clock_env, "cpu") == 0;
  const char* only = std::getenv("SDNODE_BENCH_SHAPE");
  sd::CpuBackend be(2);
  std::printf("conv2d int8 bench: isa %s, %d threads, median of %d, GFLOP/s per %s; (%%) = of the "
              "FMA peak measured before the row\n", sd::isa_name(sd::isa_active()), be.threads(), reps,
              cpu ? "CPU second x threads" : "wall second");
  const BenchShape shapes[] = {
      {"unet 320 @64x64 b2", 2, 320, 320, 64, 3, 1},
      {"unet 640 @32x32 b2", 2, 640, 640, 32, 3, 1},
      {"unet 1280 @16x16 b2", 2, 1280, 1280, 16, 3, 1},
      {"unet 1280 @8x8 b2", 2, 1280, 1280, 8, 3, 1},
      {"vae 512 @64x64", 1, 512, 512, 64, 3, 1},
      {"vae 512 @128x128", 1, 512, 512, 128, 3, 1},
      {"vae 256 @256x256", 1, 256, 256, 256, 3, 1},
      {"vae 128 @512x512", 1, 128, 128, 512, 3, 1},
      {"unet 320 s2 @64 b2", 2, 320, 320, 64, 3, 2},
      {"unet 1x1 640>320 @32 b2", 2, 640, 320, 32, 1, 1},
      {"vae 1x1 512>256 @256", 1, 512, 256, 256, 1, 1},
  };
  std::printf("%-24s %15s %15s %15s %15s\n", "shape (3x3 s1 p1 unless said)", "q8_0 float", "q8_0 int",
              "q4_0 float", "q4_0 int");
  for (const BenchShape& s : shapes) {
    if (only && !std::strstr(s.what, only)) continue;
    const int64_t K = s.ci * s.k * s.k, pad = s.k / 2, ho = (s.hw + 2 * pad - s.k) / s.stride + 1;
    sdtest::Rng rng(1);
    const std::vector<float> x = rng.vec(static_cast<size_t>(s.n * s.ci * s.hw * s.hw));
    const std::vector<float> wf = rng.vec(static_cast<size_t>(s.co * K), -0.05f, 0.05f);
    const std::vector<float> bias = rng.vec(static_cast<size_t>(s.co));
    std::vector<float> y(static_cast<size_t>(s.n * s.co * ho * ho));
    const sd::ConvGeom g{s.n, s.ci, s.hw, s.hw, s.co, ho, ho, s.k, s.stride, static_cast<int>(pad),
                         static_cast<int>(pad)};
    const double flops = 2.0 * s.n * s.co * K * ho * ho;
    const double peak = fma_peak(be, cpu);
    std::printf("%-24s", s.what);
    for (sd::DType t : {sd::DType::Q8_0, sd::DType::Q4_0}) {
      const size_t rb = sd::dtype_row_bytes(t, K);
      std::vector<uint8_t> w(rb * static_cast<size_t>(s.co));
      for (int64_t r = 0; r < s.co; ++r) sd::from_f32_row(t, wf.data() + r * K, w.data() + r * rb, K);
      for (sd::ConvQuantPath path : {sd::ConvQuantPath::Float, sd::ConvQuantPath::Int}) {
        sd::conv_force_quant_path(path);
        if (path == sd::ConvQuantPath::Int && !sd::conv_uses_int_path(t, g.k)) {
          std::printf(" %15s", "-");
          continue;
        }
        sd::conv2d_cpu(be, g, x.data(), w.data(), t, bias.data(), y.data());  // warm-up, scratch
        std::vector<double> times;
        for (int i = 0; i < reps; ++i) {
          const double t0 = now_s(cpu);
          sd::conv2d_cpu(be, g, x.data(), w.data(), t, bias.data(), y.data());
          times.push_back((now_s(cpu) - t0) / (cpu ? be.threads() : 1));
        }
        const double gf = flops / median(times) * 1e-9;
        std::printf("   %6.1f (%3.0f%%)", gf, peak > 0 ? 100.0 * gf / peak : 0.0);
        std::fflush(stdout);
      }
    }
    std::printf("   peak %.0f\n", peak);
  }
  sd::conv_force_quant_path(sd::ConvQuantPath::Auto);
}
