// Winograd vs implicit-GEMM conv benchmark (not a test): runs only with SDNODE_BENCH=wino, e.g.
//   SDNODE_BENCH=wino SDNODE_ISA=avx2 ./build/sdcore_tests conv_winograd_bench
// The two paths alternate in one process (rep by rep), so load from other processes on a shared
// machine hits both alike; rates are the direct conv's FLOPs per CPU second of the process
// (x threads), medians of SDNODE_BENCH_REPS (default 5). SDNODE_BENCH_SHAPE filters by substring,
// SDNODE_BENCH_TYPES picks dtypes (default f32). SDNODE_BENCH=wino-only skips the direct path (profiling).
#include <algorithm>
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

double cpu_s() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct WShape { const char* what; int64_t n, ci, co, hw; };

}  // namespace

SD_TEST(conv_winograd_bench) {
  const char* env = std::getenv("SDNODE_BENCH");
  if (!env || !std::strstr(env, "wino")) return;
  const char* reps_env = std::getenv("SDNODE_BENCH_REPS");
  const int reps = reps_env ? std::max(1, std::atoi(reps_env)) : 5;
  const char* only = std::getenv("SDNODE_BENCH_SHAPE");
  const char* types = std::getenv("SDNODE_BENCH_TYPES");
  sd::CpuBackend be(2);
  sd::conv_force_quant_path(sd::ConvQuantPath::Float);
  std::printf("winograd bench: isa %s, %d threads, median of %d, GFLOP/s (direct FLOPs) per CPU "
              "second x threads\n", sd::isa_name(sd::isa_active()), be.threads(), reps);
  const WShape shapes[] = {
      {"unet 320 @64 b2", 2, 320, 320, 64},     {"unet 640 @32 b2", 2, 640, 640, 32},
      {"unet 1920>640 @32 b2", 2, 1920, 640, 32}, {"unet 1280 @32 b2", 2, 1280, 1280, 32},
      {"unet 1280 @16 b2", 2, 1280, 1280, 16},  {"unet 2560>1280 @16 b2", 2, 2560, 1280, 16},
      {"unet 1280 @8 b2", 2, 1280, 1280, 8},    {"unet 640 @32 b1", 1, 640, 640, 32},
      {"unet 1280 @32 b1", 1, 1280, 1280, 32},    {"vae 512 @64", 1, 512, 512, 64},
      {"vae 512 @128", 1, 512, 512, 128},       {"vae 256 @256", 1, 256, 256, 256},
      {"vae 128 @512", 1, 128, 128, 512},       {"unet in 4>320 @64 b2", 2, 4, 320, 64},
  };
  for (const WShape& s : shapes) {
    if (only && !std::strstr(s.what, only)) continue;
    const int64_t K = s.ci * 9, P = s.hw * s.hw;
    sdtest::Rng rng(1);
    const std::vector<float> x = rng.vec(static_cast<size_t>(s.n * s.ci * P));
    const std::vector<float> wf = rng.vec(static_cast<size_t>(s.co * K), -0.05f, 0.05f);
    const std::vector<float> bias = rng.vec(static_cast<size_t>(s.co));
    std::vector<float> y(static_cast<size_t>(s.n * s.co * P));
    const sd::ConvGeom g{s.n, s.ci, s.hw, s.hw, s.co, s.hw, s.hw, 3, 1, 1, 1};
    const double flops = 2.0 * s.n * s.co * K * P;
    for (sd::DType t : {sd::DType::F32, sd::DType::F16, sd::DType::Q8_0, sd::DType::Q4_0}) {
      if (types ? !std::strstr(types, sd::dtype_name(t)) : t != sd::DType::F32) continue;
      if (sd::dtype_is_quantized(t) && K % 32 != 0) continue;
      const size_t rb = sd::dtype_row_bytes(t, K);
      std::vector<uint8_t> w(rb * static_cast<size_t>(s.co));
      for (int64_t r = 0; r < s.co; ++r) sd::from_f32_row(t, wf.data() + r * K, w.data() + r * rb, K);
      std::vector<double> tm[2];
      for (int i = -1; i < reps; ++i)
        for (int on = 0; on < 2; ++on) {
          if (!on && std::strstr(env, "wino-only")) continue;  // profiling one path
          sd::conv_force_winograd(on ? sd::ConvWinograd::On : sd::ConvWinograd::Off);
          const double c0 = cpu_s();
          sd::conv2d_cpu(be, g, x.data(), w.data(), t, bias.data(), y.data());
          if (i >= 0) tm[on].push_back((cpu_s() - c0) / be.threads());
        }
      if (tm[0].empty()) tm[0].push_back(1e9);
      const double d = flops / median(tm[0]) * 1e-9, wg = flops / median(tm[1]) * 1e-9;
      std::printf("%-24s %-5s direct %7.1f  winograd %7.1f  (x%.2f)\n", s.what, sd::dtype_name(t),
                  d, wg, wg / d);
      std::fflush(stdout);
    }
  }
  sd::conv_force_winograd(sd::ConvWinograd::Auto);
  sd::conv_force_quant_path(sd::ConvQuantPath::Auto);
}
