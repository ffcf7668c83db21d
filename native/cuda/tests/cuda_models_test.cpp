// The tiny-sd15 golden tests on the CUDA backend: CLIP (both outputs), UNet (square and
// non-square), VAE decode and encode, at f32/f16 weights and q8_0/q4_0 (the CPU suite's bounds).
// f32/f16 weights: the fixture README's fp32 column for the v0 kernels (f32 with f32 accumulation,
// no TF32); its "recommend fp16" column (clip 5e-3, unet 1e-2, vae 1e-2) when the backend computes
// with fp16 inputs (tensor cores, SDNODE_CUDA_TC=1).
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
  std::remove(path.c_str());
  std::printf("sdcuda models: %d passed, %d failed\n", g_pass, g_fail);
  return g_fail;
}
