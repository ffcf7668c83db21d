// The tiny-sd15 golden tests on the CUDA backend: CLIP (both outputs), UNet (square and
// non-square), VAE decode and encode, at f32/f16 weights and q8_0/q4_0 (the CPU suite's bounds).
// f32/f16 weights: the fixture README's fp32 column for the v0 kernels (f32 with f32 accumulation,
// no TF32); its "recommend fp16" column (clip 5e-3, unet 1e-2, vae 1e-2) when the backend computes
// with fp16 inputs (tensor cores, SDNODE_CUDA_TC=1). Then UNet steps replayed as a CUDA graph
// (SDNODE_CUDA_GRAPH=1) against the CPU backend with new latents and timesteps each step.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <unistd.h>

#include "models/model.h"
#include "tests/test.h"
#include "tests/tiny_model.h"

namespace {

struct Tol { double clip, unet, vae; };
const std::map<std::string, Tol> kTol = {{"f32", {1e-5, 2e-5, 2e-5}}, {"f16", {1e-5, 2e-5, 2e-5}},
                                         {"q8_0", {3e-2, 1e-1, 5e-2}}, {"q4_0", {3e-1, 1.0, 8e-1}}};

int g_pass = 0, g_fail = 0;

void check(const std::string& what, double e, double tol) {
  const bool ok = e <= tol;
  (ok ? g_pass : g_fail)++;
  std::printf("%s cuda %-24s err %.3g (tol %.0e)\n", ok ? "ok  " : "FAIL", what.c_str(), e, tol);
}

double err(const std::vector<float>& out, const sdtest::Golden& g) {
  return out.size() == g.f.size() ? sdtest::max_rel_err(out.data(), g.f.data(), out.size()) : 1e9;
}

// Sets an environment variable for the scope (the backend reads its switches when created).
struct ScopedEnv {
  std::string name, old;
  bool had;
  ScopedEnv(const char* n, const char* v) : name(n) {
    const char* o = std::getenv(n);
    had = o != nullptr;
    if (had) old = o;
    setenv(n, v, 1);
  }
  ~ScopedEnv() { had ? setenv(name.c_str(), old.c_str(), 1) : unsetenv(name.c_str()); }
};

// Collects what is written to stderr in the scope (the graph code reports a failed capture there).
struct StderrCapture {
  std::string path = "/tmp/sdnode-cuda-stderr-" + std::to_string(getpid()) + ".txt";
  int saved = -1;
  StderrCapture() {
    std::fflush(stderr);
    saved = dup(2);
    if (FILE* f = std::fopen(path.c_str(), "w")) {
      dup2(fileno(f), 2);
      std::fclose(f);
    }
  }
  std::string finish() {
    std::fflush(stderr);
    if (saved >= 0) dup2(saved, 2), close(saved), saved = -1;
    std::string text;
    if (FILE* f = std::fopen(path.c_str(), "r")) {
      char buf[512];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
      std::fclose(f);
    }
    std::remove(path.c_str());
    return text;
  }
  ~StderrCapture() { finish(); }
};

// SDNODE_CUDA_GRAPH=1: UNet steps at one shape (eager, captured + launched, replayed, replayed;
// then after release("activations"), which drops the graphs, eager and captured again) with new
// inputs each time, each against the CPU backend's result for the same inputs. Step 3 changes only
// the timesteps and step 4 only the latents, so a replay that kept the captured timesteps or read
// stale latents fails. The CPU result is within ~2e-6 of the golden, so the golden tolerance tier
// (f32 or fp16 compute) applies to it as well.
void check_graph_replay(const std::string& path, const std::vector<sd::TensorEntry>& table) {
  const auto x0 = sdtest::golden("unet.x"), ctx = sdtest::golden("unet.ctx");
  const int64_t B = x0.shape[0], C = x0.shape[1], h = x0.shape[2], w = x0.shape[3];
  sd::ModelOptions opt;
  opt.has_dtype = true;
  opt.dtype = sd::DType::F32;
  opt.backend = "cpu";
  sd::SdModel cpu(path, table, opt);
  opt.backend = "cuda";
  std::unique_ptr<sd::SdModel> gpu;
  {
    ScopedEnv graphs("SDNODE_CUDA_GRAPH", "1");
    gpu = std::make_unique<sd::SdModel>(path, table, opt);
  }
  const double tol = gpu->backend().f16_compute() ? 1e-2 : kTol.at("f32").unet;
  const float times[6][2] = {{999.f, 999.f}, {500.5f, 21.f}, {37.f, 811.25f},
                             {37.f, 811.25f}, {1.f, 640.f},  {250.f, 3.5f}};
  const char* phase[6] = {"eager", "captured", "replayed, new t", "replayed, new x", "eager after release",
                          "captured after release"};
  std::vector<float> x = x0.f, prev;
  StderrCapture err_text;
  for (int step = 0; step < 6; ++step) {
    if (step == 4) gpu->release("activations");
    std::vector<float> t(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) t[static_cast<size_t>(b)] = times[step][b % 2];
    if (step != 2)  // new latents (a rotation of the golden ones), except on the timestep-only step
      std::rotate(x.begin(), x.begin() + 7 * step + 1, x.end());
    const auto ref = cpu.run_unet(x.data(), B, C, h, w, t.data(), ctx.f.data(), ctx.shape[1], ctx.shape[2]);
    const auto out = gpu->run_unet(x.data(), B, C, h, w, t.data(), ctx.f.data(), ctx.shape[1], ctx.shape[2]);
    const double e = out.size() == ref.size() ? sdtest::max_rel_err(out.data(), ref.data(), out.size()) : 1e9;
    const std::string name = "graph step " + std::to_string(step + 1) + " (" + phase[step] + ")";
    check(name + " vs cpu", e, tol);
    // Each step's inputs differ from the last one's, so must its reference: otherwise the check
    // above could not tell a replay of stale inputs from a fresh one.
    if (!prev.empty()) check(name + " output moved", ref == prev ? 1.0 : 0.0, 0.0);
    prev = ref;
  }
  const std::string said = err_text.finish();
  check("graph recorded (no fallback on stderr)", said.find("cannot record") == std::string::npos ? 0.0 : 1.0, 0.0);
  if (!said.empty()) std::printf("     stderr: %s", said.c_str());
}

}  // namespace

// Returns the number of failures; prints one line per check.
int run_cuda_model_goldens() {
  using sdtest::golden;
  g_pass = g_fail = 0;  // per call: once per kernel set
  const std::string path = "/tmp/sdnode-cuda-models-" + std::to_string(getpid()) + ".safetensors";
  const auto table = sdtest::write_safetensors(path, sdtest::tiny_model_tensors(), /*f32=*/true);
  for (const char* dt : {"f32", "f16", "q8_0", "q4_0"}) {
    try {
      sd::ModelOptions opt;
      opt.backend = "cuda";
      opt.has_dtype = true;
      sd::dtype_from_name(dt, &opt.dtype);
      sd::SdModel m(path, table, opt);
      Tol tol = kTol.at(dt);
      if (m.backend().f16_compute())
        tol = {std::max(tol.clip, 5e-3), std::max(tol.unet, 1e-2), std::max(tol.vae, 1e-2)};
      const auto tok = golden("clip.tokens");
      check(std::string(dt) + " clip.out", err(m.encode_text(tok.i.data(), 2, 77, 1), golden("clip.out")), tol.clip);
      check(std::string(dt) + " clip.out_skip2", err(m.encode_text(tok.i.data(), 2, 77, 2), golden("clip.out_skip2")), tol.clip);
      for (const char* c : {"unet", "unet2", "unet3"}) {
        const std::string p = c;
        const auto x = golden(p + ".x"), t = golden(p + ".t"), ctx = golden(p + ".ctx");
        const auto out = m.run_unet(x.f.data(), x.shape[0], x.shape[1], x.shape[2], x.shape[3], t.f.data(), ctx.f.data(),
                                    ctx.shape[1], ctx.shape[2]);
        check(std::string(dt) + " " + p + ".eps", err(out, golden(p + ".eps")), tol.unet);
      }
      const auto z = golden("vae.z"), img = golden("vae.img");
      check(std::string(dt) + " vae.dec", err(m.vae_decode(z.f.data(), 1, z.shape[2], z.shape[3]), golden("vae.dec")), tol.vae);
      check(std::string(dt) + " vae.moments",
            err(m.vae_encode(img.f.data(), 1, img.shape[2], img.shape[3]), golden("vae.moments")), tol.vae);
    } catch (const std::exception& e) {
      g_fail++;
      std::printf("FAIL cuda %s: exception: %s\n", dt, e.what());
    }
  }
  try {
    check_graph_replay(path, table);
  } catch (const std::exception& e) {
    g_fail++;
    std::printf("FAIL cuda graph replay: exception: %s\n", e.what());
  }
  std::remove(path.c_str());
  std::printf("sdcuda models: %d passed, %d failed\n", g_pass, g_fail);
  return g_fail;
}
