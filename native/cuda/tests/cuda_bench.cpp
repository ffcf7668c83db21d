// Throughput figures (not tests): `sdcuda_tests --bench` times the GEMM/conv/attention kernels of the
// kernel set under test; `--bench-model` builds the full-size SD 1.5-shaped model (random formula
// weights, SDNODE_BENCH_DTYPE, default f16) once per kernel set and times CLIP, the UNet step at
// batch 2 (one CFG step) for SDNODE_BENCH_SIZES (default 256,512; median of 5 after a warm-up) and
// a VAE decode at the largest size, then a per-op-kind profile of one UNet step there. Times are wall
// clock around calls that end with a download, so they include the host side of every op launch.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "models/model.h"
#include "tests/full_size_model.h"

using namespace cudatest;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Median seconds of `reps` calls of fn (queued back to back, one sync per call).
template <class F>
double time_op(Env& e, const sd::Tensor& out, int reps, F&& fn) {
  fn();
  e.sync(out);
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const double t0 = now_s();
    fn();
    e.sync(out);
    t.push_back(now_s() - t0);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Per-op-kind GPU time of one call of fn (the CUDA backend waits for each op while profiling).
template <class F>
void print_profile(const char* title, sd::Backend& be, F&& fn) {
  be.reset_profile();
  be.set_profiling(true);
  const double t0 = now_s();
  fn();
  const double wall = now_s() - t0;
  be.set_profiling(false);
  std::vector<std::pair<std::string, sd::Backend::OpStats>> rows(be.profile().begin(), be.profile().end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
  double total = 0;
  for (const auto& r : rows) total += r.second.seconds;
  std::printf("  profile %s (op by op, synchronised): %.2f ms wall, %.2f ms in ops\n", title, wall * 1e3, total * 1e3);
  for (const auto& [kind, st] : rows) {
    std::printf("    %-12s %5lld calls %8.3f ms %5.1f %%", kind.c_str(), static_cast<long long>(st.calls), st.seconds * 1e3,
                100.0 * st.seconds / total);
    if (st.flops > 0) std::printf("  %.1f TFLOP/s", st.flops / st.seconds / 1e12);
    std::printf("\n");
  }
  be.reset_profile();
  // SDNODE_BENCH_PROFILE_ROWS=n: a second call profiled by op shape, its n slowest shapes.
  const int detail_rows = std::atoi(std::getenv("SDNODE_BENCH_PROFILE_ROWS") ? std::getenv("SDNODE_BENCH_PROFILE_ROWS") : "0");
  if (detail_rows <= 0) return;
  be.set_profiling(true, true);
  fn();
  be.set_profiling(false);
  rows.assign(be.profile().begin(), be.profile().end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
  std::printf("  profile %s by shape, the %d slowest of %zu (calls, ms, us per call):\n", title, detail_rows, rows.size());
  for (size_t i = 0; i < rows.size() && i < static_cast<size_t>(detail_rows); ++i) {
    const auto& [kind, st] = rows[i];
    std::printf("    %-58s %4lld %8.3f %8.1f", kind.c_str(), static_cast<long long>(st.calls), st.seconds * 1e3,
                st.seconds * 1e6 / static_cast<double>(st.calls));
    if (st.flops > 0) std::printf("  %6.1f TFLOP/s", st.flops / st.seconds / 1e12);
    std::printf("\n");
  }
  be.reset_profile();
}

std::string env(const char* k, const char* def) {
  const char* v = std::getenv(k);
  return v && *v ? v : def;
}

// How the kernel set is named in bench lines: the SDNODE_CUDA_TC value, plus CUDA graphs when on.
std::string mode_label(const std::string& mode) {
  return "TC=" + mode + (env("SDNODE_CUDA_GRAPH", "1") != "0" ? " +graphs" : "") +
         (env("SDNODE_CUDA_SPLITK", "1") == "0" ? " -splitK" : "") +
         (env("SDNODE_CUDA_SPLITK_SLOTS", "") == "1" ? " splitK@1/SM" : "");
}

}  // namespace

void run_kernel_bench(sd::Backend& gpu) {
  Rng rng(11);
  Env e{&gpu};
  const sd::DType types[] = {sd::DType::F32, sd::DType::F16, sd::DType::Q8_0, sd::DType::Q4_0};
  struct Lin { int64_t M, N, K; };
  for (Lin l : {Lin{8192, 320, 1280}, Lin{8192, 2560, 320}, Lin{2048, 1280, 5120}}) {
    for (sd::DType t : types) {
      if (l.M != 8192 || l.N != 320) {
        if (t != sd::DType::F16) continue;
      }
      const auto w = rng.vec(l.N * l.K, 0.05f);
      auto wg = weight(gpu, w, {l.N, l.K}, t);
      gpu.rewind(0);
      auto xt = e.act({l.M, l.K}), yt = e.act({l.M, l.N});
      const double s = time_op(e, yt, 10, [&] { gpu.linear(yt, xt, wg, nullptr); });
      std::printf("bench linear %-5s M%lld N%lld K%lld: %.3f ms, %.1f TFLOP/s\n", sd::dtype_name(t), (long long)l.M,
                  (long long)l.N, (long long)l.K, s * 1e3, 2.0 * l.M * l.N * l.K / s / 1e12);
    }
  }
  struct Cv { int64_t n, ci, co, h, s; };
  for (Cv c : {Cv{2, 320, 320, 64, 1}, Cv{2, 640, 640, 32, 1}, Cv{2, 1280, 1280, 16, 1}, Cv{1, 128, 128, 512, 1},
               Cv{2, 320, 320, 64, 2}}) {
    const auto w = rng.vec(c.co * c.ci * 9, 0.05f);
    auto wg = weight(gpu, w, {c.co, c.ci * 9}, sd::DType::F16).reshaped({c.co, c.ci, 3, 3});
    gpu.rewind(0);
    const int64_t ho = (c.h + 2 - 3) / c.s + 1;
    auto xt = e.act({c.n, c.ci, c.h, c.h}), yt = e.act({c.n, c.co, ho, ho});
    const double s = time_op(e, yt, 5, [&] { gpu.conv2d(yt, xt, wg, nullptr, static_cast<int>(c.s), 1); });
    std::printf("bench conv3x3 f16 %lldx%lld->%lld %lldx%lld s%lld: %.3f ms, %.1f TFLOP/s\n", (long long)c.n,
                (long long)c.ci, (long long)c.co, (long long)c.h, (long long)c.h, (long long)c.s, s * 1e3,
                2.0 * c.n * c.co * ho * ho * c.ci * 9 / s / 1e12);
  }
  struct At { int64_t b, nq, nk, h, d; };
  for (At a : {At{2, 4096, 4096, 8, 40}, At{2, 1024, 1024, 8, 80}, At{2, 256, 256, 8, 160}, At{2, 4096, 77, 8, 40},
               At{1, 4096, 4096, 1, 512}}) {
    gpu.rewind(0);
    const int64_t w = a.h * a.d;
    auto q = e.act({a.b, a.nq, w}), k = e.act({a.b, a.nk, w}), v = e.act({a.b, a.nk, w}), y = e.act({a.b, a.nq, w});
    const double s = time_op(e, y, 3, [&] { gpu.attention(y, q, k, v, static_cast<int>(a.h), false); });
    std::printf("bench attention b%lld nq%lld nk%lld h%lld d%lld: %.3f ms, %.2f TFLOP/s\n", (long long)a.b,
                (long long)a.nq, (long long)a.nk, (long long)a.h, (long long)a.d, s * 1e3,
                4.0 * a.b * a.h * a.nq * a.nk * a.d / s / 1e12);
  }
  std::fflush(stdout);
}

// Both benches return how many of their runs failed (an exception, e.g. no GPU).
int run_model_bench(const std::vector<std::string>& modes) {
  int failed = 0;
  const std::string dt = env("SDNODE_BENCH_DTYPE", "f16");
  sd::DType want;
  if (!sd::dtype_from_name(dt.c_str(), &want)) {
    std::printf("bench-model: unknown SDNODE_BENCH_DTYPE %s\n", dt.c_str());
    return 1;
  }
  std::vector<int64_t> sizes;
  std::stringstream ss(env("SDNODE_BENCH_SIZES", "256,512"));
  for (std::string item; std::getline(ss, item, ',');) sizes.push_back(std::atoll(item.c_str()));
  for (const std::string& mode : modes) {
    setenv("SDNODE_CUDA_TC", mode.c_str(), 1);
    try {
      sd::ModelOptions opt;
      opt.backend = "cuda";
      double t0 = now_s();
      auto model = sdtest::full_size_model(opt, want);
      std::printf("== bench-model %s, %s weights (%.2f GiB), built in %.1f s\n", mode_label(mode).c_str(),
                  dt.c_str(), model->weight_bytes() / 1073741824.0, now_s() - t0);
      std::vector<int32_t> ids(2 * 77, 49407);
      model->encode_text(ids.data(), 2, 77, 1);
      t0 = now_s();
      const auto ctx = model->encode_text(ids.data(), 2, 77, 1);
      std::printf("  CLIP batch 2: %.2f ms\n", (now_s() - t0) * 1e3);
      for (int64_t px : sizes) {
        const int64_t lat = px / 8;
        std::vector<float> x(2 * 4 * lat * lat, 0.5f), t = {500.f, 500.f};
        model->run_unet(x.data(), 2, 4, lat, lat, t.data(), ctx.data(), 77, 768);  // plans + warms up
        std::vector<double> ms;
        for (int r = 0; r < 5; ++r) {
          t0 = now_s();
          model->run_unet(x.data(), 2, 4, lat, lat, t.data(), ctx.data(), 77, 768);
          ms.push_back((now_s() - t0) * 1e3);
        }
        std::sort(ms.begin(), ms.end());
        std::printf("  UNet %lldx%lld batch 2 (one CFG step): median %.2f ms (min %.2f, max %.2f)\n", (long long)px,
                    (long long)px, ms[2], ms[0], ms[4]);
        std::fflush(stdout);
        // The largest size always; every size when profiling by shape.
        if (px == *std::max_element(sizes.begin(), sizes.end()) || std::getenv("SDNODE_BENCH_PROFILE_ROWS"))
          print_profile(("UNet " + std::to_string(px) + " batch 2").c_str(), model->backend(),
                        [&] { model->run_unet(x.data(), 2, 4, lat, lat, t.data(), ctx.data(), 77, 768); });
      }
      if (!sizes.empty()) {
        const int64_t px = *std::max_element(sizes.begin(), sizes.end()), lat = px / 8;
        std::vector<float> z(4 * lat * lat, 0.5f);
        model->vae_decode(z.data(), 1, lat, lat);
        t0 = now_s();
        model->vae_decode(z.data(), 1, lat, lat);
        std::printf("  VAE decode %lldx%lld: %.2f ms; activations arena %.0f MB\n", (long long)px, (long long)px,
                    (now_s() - t0) * 1e3, model->activation_bytes() / 1e6);
        if (std::getenv("SDNODE_BENCH_PROFILE_ROWS"))
          print_profile(("VAE decode " + std::to_string(px)).c_str(), model->backend(),
                        [&] { model->vae_decode(z.data(), 1, lat, lat); });
      }
    } catch (const std::exception& e) {
      std::printf("bench-model TC=%s failed: %s\n", mode.c_str(), e.what());
      ++failed;
    }
    std::fflush(stdout);
  }
  return failed;
}

// `--bench-gen`: the whole-generation figures for each weight type in
// SDNODE_BENCH_GEN_DTYPES (default f16,q8_0,q4_0): a 512x512 txt2img as the pipeline runs it on this
// backend -- CLIP on [cond; uncond], 20 UNet calls at batch 2 (CFG) with an Euler update on the host
// between them, one VAE decode (untiled, as the default tile size leaves 512x512) -- timed from the
// first CLIP call to the decoded image, on the third generation. Peak VRAM is the most the backend
// held (weight chunks, arena, scratch: Backend::device_bytes) after any call; allocations happen
// only between kernels, so that is the peak of what sdnode allocates (the CUDA context and module
// are not counted, as PyTorch's max_memory_allocated does not count them).
int run_gen_bench(const std::vector<std::string>& modes) {
  int failed = 0;
  std::vector<std::string> types;
  std::stringstream ss(env("SDNODE_BENCH_GEN_DTYPES", "f16,q8_0,q4_0"));
  for (std::string item; std::getline(ss, item, ',');) types.push_back(item);
  const int steps = std::max(1, std::atoi(env("SDNODE_BENCH_GEN_STEPS", "20").c_str()));
  // SDNODE_BENCH_GEN_SIZE / _BACKEND let the loop itself be tried at a small size on the CPU.
  const int64_t px = std::atoll(env("SDNODE_BENCH_GEN_SIZE", "512").c_str()), lat = px / 8, n = 4 * lat * lat;
  const std::string backend = env("SDNODE_BENCH_GEN_BACKEND", "cuda");
  for (const std::string& mode : modes) {
    setenv("SDNODE_CUDA_TC", mode.c_str(), 1);
    double f16_step = 0;
    for (const std::string& dt : types) {
      sd::DType want;
      if (!sd::dtype_from_name(dt.c_str(), &want)) {
        std::printf("bench-gen: unknown dtype %s\n", dt.c_str());
        ++failed;
        continue;
      }
      try {
        sd::ModelOptions opt;
        opt.backend = backend;
        auto model = sdtest::full_size_model(opt, want);
        sd::Backend& be = model->backend();
        size_t peak = be.device_bytes();
        auto sample = [&] { peak = std::max(peak, be.device_bytes()); };
        std::vector<int32_t> ids(2 * 77, 49407);
        for (int i = 0; i < 77; ++i) ids[i] = 320 + i;  // a "prompt" row, then the empty one
        std::vector<float> x(static_cast<size_t>(n)), x2(static_cast<size_t>(2 * n)), img;
        Rng rng(3);
        for (auto& v : x) v = rng.next() * 14.6f;
        std::vector<double> step_ms;
        double clip_ms = 0, vae_ms = 0;
        auto generate = [&] {
          step_ms.clear();
          const double t0 = now_s();
          const auto ctx = model->encode_text(ids.data(), 2, 77, 1);
          clip_ms = (now_s() - t0) * 1e3;
          sample();
          for (int s = 0; s < steps; ++s) {
            const float sigma = 14.6f * (1.f - static_cast<float>(s) / steps), next = 14.6f * (1.f - (s + 1.f) / steps);
            const float c_in = 1.f / std::sqrt(sigma * sigma + 1.f);
            for (int64_t i = 0; i < n; ++i) x2[i] = x2[n + i] = x[i] * c_in;
            std::vector<float> t = {999.f * (1.f - static_cast<float>(s) / steps), 999.f * (1.f - static_cast<float>(s) / steps)};
            const double ts = now_s();
            const auto eps = model->run_unet(x2.data(), 2, 4, lat, lat, t.data(), ctx.data(), 77, 768);
            for (int64_t i = 0; i < n; ++i) x[i] += (eps[n + i] + 7.5f * (eps[i] - eps[n + i])) * (next - sigma);
            step_ms.push_back((now_s() - ts) * 1e3);
            sample();
          }
          for (auto& v : x) v /= 0.18215f;
          const double tv = now_s();
          img = model->vae_decode(x.data(), 1, lat, lat);
          vae_ms = (now_s() - tv) * 1e3;
          sample();
          return (now_s() - t0) * 1e3;
        };
        // Two untimed runs: the first plans every arena (the VAE's re-reserve drops recorded graphs),
        // the second records the UNet step's graph again; the third is a steady-state generation.
        generate();
        generate();
        const double total = generate();
        // f16 activations store results rounded to f16: anything past 65504 becomes inf. The random
        // weights are no real model, but a non-finite image here would say where to look.
        const size_t bad = static_cast<size_t>(std::count_if(img.begin(), img.end(), [](float v) { return !std::isfinite(v); }));
        if (bad) {
          std::printf("bench-gen %s %s: %zu non-finite pixels of %zu\n", dt.c_str(), mode_label(mode).c_str(), bad, img.size());
          ++failed;
        }
        std::sort(step_ms.begin(), step_ms.end());
        const double med = step_ms[step_ms.size() / 2];
        if (dt == "f16") f16_step = med;
        std::printf("  gen %dx%d %s %s: %.1f ms whole (CLIP %.2f, %d UNet steps median %.2f ms%s, VAE decode %.2f); "
                    "peak VRAM %.3f GB (weights %.3f GB)\n",
                    static_cast<int>(px), static_cast<int>(px), dt.c_str(), mode_label(mode).c_str(), total, clip_ms,
                    steps, med,
                    f16_step > 0 && dt != "f16" ? (" = " + std::to_string(med / f16_step).substr(0, 4) + "x f16").c_str() : "",
                    vae_ms, peak / 1e9, model->weight_bytes() / 1e9);
      } catch (const std::exception& e) {
        std::printf("bench-gen %s TC=%s failed: %s\n", dt.c_str(), mode.c_str(), e.what());
        ++failed;
      }
      std::fflush(stdout);
    }
  }
  return failed;
}
