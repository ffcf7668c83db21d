// Full-size SD 1.5-shaped networks built in memory from the weight formula (tiny key table scaled
// as lib/model/formula.ts fullSizeKeys does): seconds per UNet call (batch 2 = CFG), VAE decode,
// CLIP, peak RSS. Runs only with SDNODE_BENCH=1 (it is a benchmark, not a test):
//   SDNODE_BENCH=1 SDNODE_BENCH_DTYPE=q8_0 SDNODE_BENCH_SIZES=256,512 SDNODE_BENCH_THREADS=2 \
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
#include "tests/tiny_model.h"

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

// Full-size shape of a tiny-model tensor; CLIP layers 2..11 are added by the caller.
std::vector<int64_t> full_shape(const std::string& name, std::vector<int64_t> s) {
  const bool unet = name.rfind("model.diffusion_model.", 0) == 0, vae = name.rfind("first_stage_model.", 0) == 0;
  const bool kv = name.find("attn2.to_k.weight") != std::string::npos || name.find("attn2.to_v.weight") != std::string::npos;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s.size() == 4 && i >= 2) continue;
    if (unet) s[i] = s[i] == 4 ? 4 : (i == 1 && kv) ? 768 : s[i] * 10;
    else if (vae) s[i] = s[i] >= 32 ? s[i] * 4 : s[i];
    else s[i] = s[i] == 128 ? 768 : s[i] == 512 ? 3072 : s[i];
  }
  return s;
}

void add_formula(sd::Backend& be, sd::Weights& w, const std::string& name, const std::vector<int64_t>& shape,
                 const sd::DType* want) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  const bool weight = name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0;
  double s = 0.05 * std::sqrt(3.0), m = 0.0;
  if (name.find("token_embedding") != std::string::npos) s = std::sqrt(3.0);
  else if (name.find("position_embedding") != std::string::npos) s = 0.5 * std::sqrt(3.0);
  else if (shape.size() >= 2) s = std::sqrt(3.0 / static_cast<double>(n / shape[0]));
  else if (weight) s = 0.1 * std::sqrt(3.0), m = 1.0;
  std::vector<uint16_t> v = formula_values(name, n, s, m, 1234);
  sd::Tensor host(sd::DType::F16, {});
  host.ndim = static_cast<int>(shape.size());
  for (int i = 0; i < host.ndim; ++i) host.shape[i] = shape[i];
  host.data = v.data();
  w.add(be, name, host, sd::choose_dtype(name, shape, sd::DType::F16, want));
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
  const auto tiny = tiny_model_tensors();
  sd::SdModel model(opt, [&](sd::Backend& be, sd::Weights& w) {
    for (const auto& t : tiny) {
      add_formula(be, w, t.name, full_shape(t.name, t.shape), &want);
      const std::string l1 = "encoder.layers.1.";
      const size_t at = t.name.find(l1);
      if (at != std::string::npos)  // CLIP ViT-L has 12 layers; the tiny model keeps 2
        for (int k = 2; k < 12; ++k)
          add_formula(be, w, t.name.substr(0, at) + "encoder.layers." + std::to_string(k) + "." + t.name.substr(at + l1.size()),
                      full_shape(t.name, t.shape), &want);
    }
  });
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
