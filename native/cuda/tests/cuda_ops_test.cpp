// Every op on the CUDA backend against the CPU backend (whose scalar path is the project's oracle),
// every weight dtype, odd shapes. Skips (exit 0, says so) when no CUDA device or library is there.
//   sdcuda_tests [--bench]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <array>
#include <functional>
#include <string>
#include <vector>

#include "core/backend_loader.h"
#include "core/quant.h"
#include "cpu/gemm.h"

int run_cuda_model_goldens();

namespace {

int g_pass = 0, g_fail = 0;

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  float next() {
    s ^= s >> 12; s ^= s << 25; s ^= s >> 27;
    return static_cast<float>(((s * 0x2545F4914F6CDD1Dull) >> 40) * (1.0 / 16777216.0)) * 2.f - 1.f;
  }
  std::vector<float> vec(size_t n, float scale = 1.f) {
    std::vector<float> v(n);
    for (auto& x : v) x = next() * scale;
    return v;
  }
};

double rel_err(const std::vector<float>& a, const std::vector<float>& ref) {
  double scale = 1e-6, err = 0;
  for (float r : ref) scale = std::fmax(scale, std::fabs(r));
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - ref[i]);
    err = std::isnan(d) ? INFINITY : std::fmax(err, d);
  }
  return err / scale;
}

void report(const std::string& name, double err, double tol) {
  const bool ok = err <= tol;
  (ok ? g_pass : g_fail)++;
  std::printf("%s %-48s rel err %.2e (tol %.0e)\n", ok ? "ok  " : "FAIL", name.c_str(), err, tol);
}

// Runs `fn` on a backend with its inputs uploaded; returns the downloaded output.
struct Env {
  sd::Backend* be;
  sd::Tensor act(std::initializer_list<int64_t> dims, const std::vector<float>* data = nullptr) {
    sd::Tensor t = be->alloc(sd::DType::F32, dims);
    if (data) be->upload(t, data->data());
    return t;
  }
  std::vector<float> get(const sd::Tensor& t) {
    std::vector<float> v(static_cast<size_t>(t.numel()));
    be->download(v.data(), t);
    return v;
  }
};

using OpFn = std::function<std::vector<float>(Env&)>;

void compare(sd::Backend& cpu, sd::Backend& gpu, const std::string& name, double tol, const OpFn& fn) {
  try {
    cpu.rewind(0);
    gpu.rewind(0);
    Env ec{&cpu}, eg{&gpu};
    const std::vector<float> ref = fn(ec), out = fn(eg);
    report(name, rel_err(out, ref), tol);
  } catch (const std::exception& e) {
    g_fail++;
    std::printf("FAIL %-48s exception: %s\n", name.c_str(), e.what());
  }
}

sd::Tensor weight(sd::Backend& be, const std::vector<float>& w, std::initializer_list<int64_t> dims, sd::DType t) {
  sd::Tensor host(sd::DType::F32, dims, const_cast<float*>(w.data()));
  return be.upload_weight(host, t);
}

}  // namespace

int run_all(int argc, char** argv);
int main(int argc, char** argv) {
  try {
    return run_all(argc, argv);
  } catch (const std::exception& e) {
    std::printf("FAIL sdcuda_tests: exception outside a case: %s\n", e.what());
    return 1;
  }
}

int run_all(int argc, char** argv) {
  std::string why;
  sd::BackendPtr gpu;
  try {
    gpu = sd::make_backend("cuda", 0, &why);
  } catch (const std::exception& e) {
    std::printf("sdcuda_tests: skipped, no CUDA backend: %s\n", e.what());
    return 0;
  }
  std::printf("sdcuda_tests on %s\n", why.c_str());
  auto cpu = sd::make_cpu_backend(0);
  const size_t arena = size_t(512) << 20;
  cpu->reserve_activations(arena);
  gpu->reserve_activations(arena);
  Rng rng(7);

  const sd::DType types[] = {sd::DType::F32, sd::DType::F16, sd::DType::Q8_0, sd::DType::Q4_0};
  for (sd::DType t : types) {
    for (auto [M, N, K] : {std::array<int64_t, 3>{1, 1, 32}, {37, 45, 96}, {154, 320, 768}, {513, 130, 320}}) {
      const auto x = rng.vec(M * K), w = rng.vec(N * K, 0.1f), b = rng.vec(N);
      auto wc = weight(*cpu, w, {N, K}, t), wg = weight(*gpu, w, {N, K}, t);
      const std::string name = std::string("linear ") + sd::dtype_name(t) + " " + std::to_string(M) + "x" +
                               std::to_string(N) + "x" + std::to_string(K);
      if (!sd::dtype_is_quantized(t)) {
        compare(*cpu, *gpu, name, 1e-5, [&](Env& e) {
          auto xt = e.act({M, K}, &x), bt = e.act({N}, &b), yt = e.act({M, N});
          e.be->linear(yt, xt, e.be == cpu.get() ? wc : wg, &bt);
          return e.get(yt);
        });
      } else {
        // The CPU's quantized GEMM quantizes activations per block (as GGML); CUDA keeps them f32,
        // so its oracle is the scalar reference on the dequantized weights.
        std::vector<float> ref(static_cast<size_t>(M * N));
        sd::gemm_reference(M, N, K, x.data(), K, wc.data, t, b.data(), ref.data(), N);
        try {
          gpu->rewind(0);
          Env eg{gpu.get()};
          auto xt = eg.act({M, K}, &x), bt = eg.act({N}, &b), yt = eg.act({M, N});
          gpu->linear(yt, xt, wg, &bt);
          report(name + " vs dequantized ref", rel_err(eg.get(yt), ref), 1e-5);
        } catch (const std::exception& ex) {
          g_fail++;
          std::printf("FAIL %s: %s\n", name.c_str(), ex.what());
        }
      }
    }
    struct Conv { int64_t n, ci, co, h, w, k, s, p; };
    for (Conv c : {Conv{2, 4, 8, 9, 7, 3, 1, 1}, Conv{1, 32, 64, 16, 12, 3, 2, 1}, Conv{2, 64, 32, 8, 8, 1, 1, 0},
                   Conv{1, 32, 16, 9, 9, 3, 2, 0}}) {
      if (sd::dtype_is_quantized(t) && (c.ci * c.k * c.k) % 32 != 0) continue;
      const int64_t ho = (c.h + 2 * c.p - c.k) / c.s + 1, wo = (c.w + 2 * c.p - c.k) / c.s + 1;
      const auto x = rng.vec(c.n * c.ci * c.h * c.w), w = rng.vec(c.co * c.ci * c.k * c.k, 0.1f), b = rng.vec(c.co);
      // Quantized conv weights are blocked along Ci*k*k: upload as [Co, Ci*k*k] rows, view as 4-D.
      auto wc = weight(*cpu, w, {c.co, c.ci * c.k * c.k}, t), wg = weight(*gpu, w, {c.co, c.ci * c.k * c.k}, t);
      wc = wc.reshaped({c.co, c.ci, c.k, c.k});
      wg = wg.reshaped({c.co, c.ci, c.k, c.k});
      const std::string name = std::string("conv2d ") + sd::dtype_name(t) + " k" + std::to_string(c.k) + " s" +
                               std::to_string(c.s) + " " + std::to_string(c.ci) + "->" + std::to_string(c.co) + " " +
                               std::to_string(c.h) + "x" + std::to_string(c.w);
      compare(*cpu, *gpu, name, 1e-5, [&](Env& e) {
        auto xt = e.act({c.n, c.ci, c.h, c.w}, &x), bt = e.act({c.co}, &b), yt = e.act({c.n, c.co, ho, wo});
        e.be->conv2d(yt, xt, e.be == cpu.get() ? wc : wg, &bt, static_cast<int>(c.s), static_cast<int>(c.p));
        return e.get(yt);
      });
    }
    {
      const auto table = rng.vec(50 * 64);
      auto tc = weight(*cpu, table, {50, 64}, t), tg = weight(*gpu, table, {50, 64}, t);
      const int32_t ids[] = {3, 0, 49, 7, 7};
      compare(*cpu, *gpu, std::string("get_rows ") + sd::dtype_name(t), 0, [&](Env& e) {
        auto yt = e.act({5, 64});
        e.be->get_rows(yt, e.be == cpu.get() ? tc : tg, ids, 5);
        return e.get(yt);
      });
    }
  }

  for (bool silu : {false, true}) {
    const auto x = rng.vec(2 * 64 * 9 * 7, 3.f), g = rng.vec(64), b = rng.vec(64);
    compare(*cpu, *gpu, std::string("group_norm") + (silu ? "+silu" : ""), 1e-5, [&](Env& e) {
      auto xt = e.act({2, 64, 9, 7}, &x), gt = e.act({64}, &g), bt = e.act({64}, &b), yt = e.act({2, 64, 9, 7});
      e.be->group_norm(yt, xt, 32, gt, bt, 1e-6f, silu);
      return e.get(yt);
    });
  }
  {
    const auto x = rng.vec(77 * 2 * 130, 2.f), g = rng.vec(130), b = rng.vec(130);
    compare(*cpu, *gpu, "layer_norm", 1e-5, [&](Env& e) {
      auto xt = e.act({2, 77, 130}, &x), gt = e.act({130}, &g), bt = e.act({130}, &b), yt = e.act({2, 77, 130});
      e.be->layer_norm(yt, xt, gt, bt, 1e-5f);
      return e.get(yt);
    });
    compare(*cpu, *gpu, "softmax", 1e-5, [&](Env& e) {
      auto xt = e.act({154, 130}, &x), yt = e.act({154, 130});
      e.be->softmax(yt, xt);
      return e.get(yt);
    });
  }
  struct Att { int64_t b, nq, nk, heads, d; bool causal; };
  for (Att a : {Att{2, 77, 77, 2, 64, true}, Att{2, 300, 300, 8, 40, false}, Att{2, 256, 77, 8, 20, false},
                Att{1, 64, 64, 1, 512, false}, Att{1, 1024, 1024, 8, 160, false}}) {
    const int64_t wdt = a.heads * a.d;
    const auto q = rng.vec(a.b * a.nq * wdt), k = rng.vec(a.b * a.nk * wdt), v = rng.vec(a.b * a.nk * wdt);
    compare(*cpu, *gpu, "attention nq" + std::to_string(a.nq) + " nk" + std::to_string(a.nk) + " h" +
                            std::to_string(a.heads) + " d" + std::to_string(a.d) + (a.causal ? " causal" : ""),
            1e-5, [&](Env& e) {
              auto qt = e.act({a.b, a.nq, wdt}, &q), kt = e.act({a.b, a.nk, wdt}, &k), vt = e.act({a.b, a.nk, wdt}, &v);
              auto yt = e.act({a.b, a.nq, wdt});
              e.be->attention(yt, qt, kt, vt, static_cast<int>(a.heads), a.causal);
              return e.get(yt);
            });
  }
  {
    const auto x = rng.vec(3 * 5 * 6 * 2, 3.f), b1 = rng.vec(5), y2 = rng.vec(3 * 5 * 6 * 2);
    for (auto op : {sd::Unary::Silu, sd::Unary::Gelu, sd::Unary::QuickGelu})
      compare(*cpu, *gpu, "unary " + std::to_string(static_cast<int>(op)), 1e-6, [&](Env& e) {
        auto xt = e.act({3, 5, 6, 2}, &x), yt = e.act({3, 5, 6, 2});
        e.be->unary(yt, xt, op);
        return e.get(yt);
      });
    compare(*cpu, *gpu, "geglu", 1e-6, [&](Env& e) {
      auto xt = e.act({18, 10}, &x), yt = e.act({18, 5});
      e.be->geglu(yt, xt);
      return e.get(yt);
    });
    compare(*cpu, *gpu, "add broadcast [3,5,6,2]+[5,1,1]", 0, [&](Env& e) {
      auto xt = e.act({3, 5, 6, 2}, &x), bt = e.act({5, 1, 1}, &b1), yt = e.act({3, 5, 6, 2});
      e.be->add(yt, xt, bt);
      return e.get(yt);
    });
    compare(*cpu, *gpu, "mul same shape", 0, [&](Env& e) {
      auto xt = e.act({3, 5, 6, 2}, &x), bt = e.act({3, 5, 6, 2}, &y2), yt = e.act({3, 5, 6, 2});
      e.be->mul(yt, xt, bt);
      return e.get(yt);
    });
    compare(*cpu, *gpu, "upsample 6x2 -> 12x3", 0, [&](Env& e) {
      auto xt = e.act({3, 5, 6, 2}, &x), yt = e.act({3, 5, 12, 3});
      e.be->upsample_nearest(yt, xt);
      return e.get(yt);
    });
    compare(*cpu, *gpu, "concat_channels", 0, [&](Env& e) {
      auto at = e.act({3, 5, 6, 2}, &x), bt = e.act({3, 5, 6, 2}, &y2), yt = e.act({3, 10, 6, 2});
      e.be->concat_channels(yt, at, bt);
      return e.get(yt);
    });
    compare(*cpu, *gpu, "transpose12", 0, [&](Env& e) {
      auto xt = e.act({3, 10, 6}, &x), yt = e.act({3, 6, 10});
      e.be->transpose12(yt, xt);
      return e.get(yt);
    });
    const float ts[] = {999.f, 437.25f, 0.f};
    compare(*cpu, *gpu, "timestep_embedding", 1e-6, [&](Env& e) {
      auto yt = e.act({3, 320});
      e.be->timestep_embedding(yt, ts);
      return e.get(yt);
    });
  }

  if (argc > 1 && std::strcmp(argv[1], "--bench") == 0) {
    // Quick throughput figures for the v0 kernels (not a test).
    for (sd::DType t : types) {
      const int64_t M = 8192, N = 320, K = 1280;
      const auto w = rng.vec(N * K, 0.05f);
      auto wg = weight(*gpu, w, {N, K}, t);
      gpu->rewind(0);
      Env e{gpu.get()};
      auto xt = e.act({M, K}), yt = e.act({M, N});
      e.get(yt);
      const int reps = 20;
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < reps; ++i) gpu->linear(yt, xt, wg, nullptr);
      e.get(yt);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
      std::printf("bench linear %s M%lld N%lld K%lld: %.3f ms, %.1f TFLOP/s\n", sd::dtype_name(t),
                  (long long)M, (long long)N, (long long)K, s * 1e3, 2.0 * M * N * K / s / 1e12);
    }
    {
      const int64_t B = 2, Nq = 4096, H = 8, D = 40;
      gpu->rewind(0);
      Env e{gpu.get()};
      auto q = e.act({B, Nq, H * D}), k = e.act({B, Nq, H * D}), v = e.act({B, Nq, H * D}), y = e.act({B, Nq, H * D});
      e.get(y);
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < 5; ++i) gpu->attention(y, q, k, v, H, false);
      e.get(y);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 5;
      std::printf("bench attention 2x4096x8x40: %.3f ms, %.2f TFLOP/s\n", s * 1e3, 4.0 * B * H * Nq * Nq * D / s / 1e12);
    }
  }
  std::printf("sdcuda ops: %d passed, %d failed\n", g_pass, g_fail);
  const int model_failures = run_cuda_model_goldens();
  std::printf("sdcuda: %d passed, %d failed\n", g_pass, g_fail + model_failures);
  return g_fail || model_failures ? 1 : 0;
}
