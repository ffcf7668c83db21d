// Full-size SD 1.5-shaped networks built in memory from the weight formula (tiny key table scaled
// as lib/model/formula.ts fullSizeKeys does): seconds per UNet call (batch 2 = CFG), VAE decode,
// CLIP, peak RSS. Runs only with SDNODE_BENCH=1 (it is a benchmark, not a test):
//   SDNODE_BENCH=1 SDNODE_BENCH_DTYPE=q8_0 SDNODE_BENCH_SIZES=256,512 SDNODE_BENCH_THREADS=2
//     [SDNODE_TEST_BACKEND=cuda] sdcore_tests models_bench
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#include "models/model.h"
#include "tests/test.h"
#include "tests/full_size_model.h"

using namespace sdtest;

namespace {

std::string env(const char* k, const char* def) {
  const char* v = std::getenv(k);
  return v && *v ? v : def;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double peak_rss_gib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1048576.0;  // KiB -> GiB
}

}  // namespace

SD_TEST(models_bench_full_size) {
  if (env("SDNODE_BENCH", "") != "1") {
    std::printf("  (skipped: set SDNODE_BENCH=1)\n");
    return;
  }
  const std::string dt = env("SDNODE_BENCH_DTYPE", "f16");
  sd::DType want;
  SD_CHECK(sd::dtype_from_name(dt.c_str(), &want)) << dt;
  sd::ModelOptions opt;
  opt.threads = std::atoi(env("SDNODE_BENCH_THREADS", "2").c_str());
  opt.backend = env("SDNODE_TEST_BACKEND", "cpu");
  const auto t0 = std::chrono::steady_clock::now();
  const auto model_ptr = full_size_model(opt, want);
  sd::SdModel& model = *model_ptr;
  std::printf("  bench %s on %s, %d threads: built + loaded in %.1f s, weights %.2f GiB\n", dt.c_str(),
              model.backend_name(), opt.threads, seconds_since(t0), model.weight_bytes() / 1073741824.0);
  SD_CHECK(model.unet().model_channels == 320 && model.clip().layers == 12);

  std::vector<int32_t> ids(2 * 77, 49407);
  auto t1 = std::chrono::steady_clock::now();
  const auto ctx = model.encode_text(ids.data(), 2, 77, 1);
  std::printf("  CLIP batch 2: %.2f s\n", seconds_since(t1));

  std::stringstream sizes(env("SDNODE_BENCH_SIZES", "256"));
  std::string item;
  while (std::getline(sizes, item, ',')) {
    const int64_t px = std::atoll(item.c_str()), lat = px / 8;
    std::vector<float> x(2 * 4 * lat * lat, 0.5f), t = {500.0f, 500.0f};
    const int reps = std::atoi(env("SDNODE_BENCH_REPS", "2").c_str());
    for (int r = 0; r < reps; ++r) {
      t1 = std::chrono::steady_clock::now();
      model.run_unet(x.data(), 2, 4, lat, lat, t.data(), ctx.data(), 77, 768);
      std::printf("  UNet %lldx%lld batch 2 (one CFG step), run %d: %.2f s\n", static_cast<long long>(px),
                  static_cast<long long>(px), r + 1, seconds_since(t1));
    }
    if (env("SDNODE_BENCH_VAE", "1") == "1") {
      t1 = std::chrono::steady_clock::now();
      model.vae_decode(x.data(), 1, lat, lat);
      std::printf("  VAE decode %lldx%lld: %.2f s\n", static_cast<long long>(px), static_cast<long long>(px), seconds_since(t1));
    }
    std::printf("  activations arena %.0f MB, peak RSS so far %.2f GiB\n", model.activation_bytes() / 1e6, peak_rss_gib());
  }
}
