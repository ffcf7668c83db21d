// `npm run profile` (not a test): one UNet step (batch 2 = CFG) and one VAE decode of a full-size
// SD 1.5-shaped model, broken down by op kind with time, share and achieved GFLOP/s. Runs only with
// SDNODE_BENCH=1 (scripts/profile.mjs sets it):
//   SDNODE_BENCH=1 SDNODE_PROFILE_DTYPE=q8_0 SDNODE_PROFILE_SIZE=512 SDNODE_BENCH_THREADS=2 sdcore_tests profile_bench
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "tests/full_size_model.h"
#include "tests/test.h"

namespace {

std::string env(const char* k, const char* def) {
  const char* v = std::getenv(k);
  return v && *v ? v : def;
}

void print_profile(const char* title, const sd::Backend& be, double wall) {
  std::vector<std::pair<std::string, sd::Backend::OpStats>> rows(be.profile().begin(), be.profile().end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
  double total = 0;
  for (const auto& r : rows) total += r.second.seconds;
  std::printf("\n%s: %.2f s wall, %.2f s in ops\n\n| op kind | calls | time (s) | share | GFLOP/s |\n|---|---|---|---|---|\n",
              title, wall, total);
  for (const auto& [kind, st] : rows) {
    const std::string gf = st.flops > 0 ? std::to_string(static_cast<int>(st.flops / st.seconds / 1e9 + 0.5)) : "-";
    std::printf("| %s | %lld | %.3f | %.1f %% | %s |\n", kind.c_str(), static_cast<long long>(st.calls), st.seconds,
                100.0 * st.seconds / total, gf.c_str());
  }
}

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

SD_TEST(profile_bench) {
  if (env("SDNODE_BENCH", "").empty()) {
    std::printf("  (skipped: set SDNODE_BENCH=1)\n");
    return;
  }
  sd::DType want;
  const std::string dt = env("SDNODE_PROFILE_DTYPE", "q8_0");
  SD_CHECK(sd::dtype_from_name(dt.c_str(), &want)) << dt;
  sd::ModelOptions opt;
  opt.threads = std::atoi(env("SDNODE_BENCH_THREADS", "2").c_str());
  auto model = sdtest::full_size_model(opt, want);
  const int64_t px = std::atoll(env("SDNODE_PROFILE_SIZE", "512").c_str()), lat = px / 8;
  std::printf("  profile: %s weights, %lldx%lld, %d threads, backend %s\n", dt.c_str(), static_cast<long long>(px),
              static_cast<long long>(px), opt.threads, model->backend_name());

  std::vector<int32_t> ids(2 * 77, 49407);
  const auto ctx = model->encode_text(ids.data(), 2, 77, 1);
  std::vector<float> x(static_cast<size_t>(2 * 4 * lat * lat), 0.5f), t = {500.0f, 500.0f};
  model->run_unet(x.data(), 2, 4, lat, lat, t.data(), ctx.data(), 77, 768);  // plans the arena
  sd::Backend& be = model->backend();
  be.reset_profile();
  be.set_profiling(true, !env("SDNODE_PROFILE_BY_SHAPE", "").empty());
  auto t0 = std::chrono::steady_clock::now();
  model->run_unet(x.data(), 2, 4, lat, lat, t.data(), ctx.data(), 77, 768);
  print_profile("UNet step (batch 2)", be, since(t0));

  model->vae_decode(x.data(), 1, lat, lat, 0);  // plans the arena
  be.reset_profile();
  t0 = std::chrono::steady_clock::now();
  model->vae_decode(x.data(), 1, lat, lat, 0);
  print_profile("VAE decode (whole image)", be, since(t0));
  be.set_profiling(false);
}
