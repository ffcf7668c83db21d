// Every op on the CUDA backend against the CPU backend (whose scalar path is the project's oracle),
// every weight dtype, odd shapes, once per kernel set: SDNODE_CUDA_TC=0 (v0 f32 SIMT kernels, fp32
// tolerances) and =1 (tensor cores, fp16 tolerances for linear/conv/attention). Skips (exit 0, says
// so) when no CUDA device or library is there.
//   sdcuda_tests [--bench] [--bench-model | --bench-model-only] [--bench-gen]
// SDNODE_CUDA_TEST_TC="0 1" picks the kernel sets (default both, in that order).
//
// fp16 tolerance (kF16 = 5e-3, metric max|out - ref| / max|ref|): tensor cores see the inputs
// rounded to fp16 (unit roundoff u = 2^-11 = 4.9e-4) and accumulate exactly-formed products in f32.
// For a K-term dot product of independent inputs the rounding error grows like u * sqrt(K) * |x||w|,
// as does the result itself, so the error relative to the output scale stays near u whatever K
// (expected 1e-4..1e-3 for K up to 2880; attention adds the fp16 rounding of P in [0, 1]). 5e-3
// leaves a ~5-10x margin, while an indexing, fragment-layout or masking bug gives errors of O(1).
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/backend_loader.h"
#include "core/quant.h"
#include "cpu/gemm.h"
#include "cuda_test_util.h"

using namespace cudatest;

int run_cuda_model_goldens();
void run_kernel_bench(sd::Backend& gpu);
int run_model_bench(const std::vector<std::string>& modes);  // failed runs
int run_gen_bench(const std::vector<std::string>& modes);

namespace {

constexpr double kF32 = 1e-5, kF16 = 5e-3;

std::string shape3(int64_t a, int64_t b, int64_t c) {
  return std::to_string(a) + "x" + std::to_string(b) + "x" + std::to_string(c);
}

void run_matmul_ops(sd::Backend& cpu, sd::Backend& gpu, Rng& rng, double mm) {
  const sd::DType types[] = {sd::DType::F32, sd::DType::F16, sd::DType::Q8_0, sd::DType::Q4_0};
  for (sd::DType t : types) {
    const bool q = sd::dtype_is_quantized(t);
    // Tails everywhere: M and N off the 128-tiles, K off the 32-tile (float weights only), K = 2880.
    for (auto [M, N, K] : {std::array<int64_t, 3>{1, 1, 32}, {37, 45, 96}, {154, 320, 768}, {513, 130, 320},
                           {129, 257, 2880}, {7, 3, 36}, {200, 640, 1280}, {2, 1280, 320}, {9, 70, 64}}) {
      if (q && K % 32 != 0) continue;
      const auto x = rng.gauss(M * K), w = rng.vec(N * K, 0.1f), b = rng.vec(N);
      auto wc = weight(cpu, w, {N, K}, t), wg = weight(gpu, w, {N, K}, t);
      const std::string name = std::string("linear ") + sd::dtype_name(t) + " " + shape3(M, N, K);
      if (!q) {
        compare(cpu, gpu, name, mm, [&](Env& e) {
          auto xt = e.act({M, K}, &x), bt = e.param({N}, &b), yt = e.act({M, N});
          e.be->linear(yt, xt, e.be == &cpu ? wc : wg, &bt);
          return e.get(yt);
        });
      } else {
        // The CPU's quantized GEMM quantizes activations per block (as GGML); CUDA keeps them f32
        // (v0) or f16 (TC), so its oracle is the scalar reference on the dequantized weights. The
        // TC kernels see x and the dequantized weights rounded to f16 (d * q is exact in f32 and
        // rounded once), so there the oracle computes on those very values: the kF16 bound assumes
        // outputs of the terms' scale, and a single output that cancels (1x1x32 gave -0.0033 from
        // terms of ~0.05) would otherwise be judged by rounding error relative to a near-zero value.
        std::vector<float> ref(static_cast<size_t>(M * N));
        if (gpu.f16_compute()) {
          std::vector<float> wd(static_cast<size_t>(N * K));
          const size_t row_bytes = sd::dtype_row_bytes(t, K);
          for (int64_t r = 0; r < N; ++r)
            sd::to_f32_row(t, static_cast<const uint8_t*>(wc.data) + r * row_bytes, wd.data() + r * K, K);
          const auto xr = round_f16(x), wr = round_f16(wd);
          sd::gemm_reference(M, N, K, xr.data(), K, wr.data(), sd::DType::F32, b.data(), ref.data(), N);
        } else {
          sd::gemm_reference(M, N, K, x.data(), K, wc.data, t, b.data(), ref.data(), N);
        }
        try {
          gpu.rewind(0);
          Env eg{&gpu};
          auto xt = eg.act({M, K}, &x), bt = eg.param({N}, &b), yt = eg.act({M, N});
          gpu.linear(yt, xt, wg, &bt);
          report(name + " vs dequantized ref", eg.get(yt), ref, mm, std::to_string(M) + "x" + std::to_string(N));
        } catch (const std::exception& ex) {
          report_exception(name, ex.what());
        }
      }
    }
    // linear_add (the residual added in the GEMM's epilogue where the backend fuses it; a linear
    // and an add elsewhere, as on the CPU side), f16/f32 weights, with split-K and tails.
    if (!q)
      for (auto [M, N, K] : {std::array<int64_t, 3>{150, 130, 96}, {513, 320, 1280}, {2, 1280, 320}}) {
        const auto x = rng.gauss(M * K), w = rng.vec(N * K, 0.1f), b = rng.vec(N), r = rng.gauss(M * N);
        auto wc = weight(cpu, w, {N, K}, t), wg = weight(gpu, w, {N, K}, t);
        compare(cpu, gpu, std::string("linear_add ") + sd::dtype_name(t) + " " + shape3(M, N, K), mm, [&](Env& e) {
          auto xt = e.act({M, K}, &x), bt = e.param({N}, &b), yt = e.act({M, N}, &r);
          const sd::Tensor& wt = e.be == &cpu ? wc : wg;
          if (e.be->fuses_linear_add()) {
            e.be->linear_add(yt, xt, wt, &bt);
          } else {
            auto tmp = e.act({M, N});
            e.be->linear(tmp, xt, wt, &bt);
            e.be->add(yt, yt, tmp);
          }
          return e.get(yt);
        });
      }
    // linear_to_channels (proj_out stored NCHW onto the residual, in place, where the backend fuses
    // it; a linear, a transpose and an add elsewhere, as on the CPU side): images straddling tiles,
    // N tails, split-K (16 tokens x 1280).
    if (!q)
      for (auto [B, P, C, K] : {std::array<int64_t, 4>{2, 70, 136, 96}, {2, 64, 320, 320}, {1, 16, 1280, 1280}}) {
        const auto x = rng.gauss(B * P * K), w = rng.vec(C * K, 0.1f), b = rng.vec(C), r = rng.gauss(B * C * P);
        auto wc = weight(cpu, w, {C, K}, t), wg = weight(gpu, w, {C, K}, t);
        const std::string name = std::string("linear_to_channels ") + sd::dtype_name(t) + " " + shape3(B, P, K) + ">" +
                                 std::to_string(C);
        compare(cpu, gpu, name, mm, [&](Env& e) {
          auto xt = e.act({B, P, K}, &x), bt = e.param({C}, &b), yt = e.act({B, C, P, 1}, &r);
          const sd::Tensor& wt = e.be == &cpu ? wc : wg;
          if (e.be->fuses_linear_to_channels()) {
            e.be->linear_to_channels(yt, xt, wt, &bt, yt);
          } else {
            auto tmp = e.act({B, P, C}), back = e.act({B, C, P});
            e.be->linear(tmp, xt, wt, &bt);
            e.be->transpose12(back, tmp);
            e.be->add(yt, yt, back.reshaped({B, C, P, 1}));
          }
          return e.get(yt);
        });
      }
    // linear_n (attention's q/k/v as one GEMM with f16 activations; a loop of linears otherwise):
    // each output against the reference on the values the kernels see (as for quantized linear
    // above). Parts of 130 rows: tiles straddle two weights; 2 rows: many weights in one tile.
    for (auto [M, N, K, n] : {std::array<int64_t, 4>{150, 130, 96, 3}, {77, 320, 768, 2}, {513, 2, 64, 3}}) {
      const std::string name = std::string("linear_n ") + sd::dtype_name(t) + " " + shape3(M, N, K) + " x" +
                               std::to_string(n);
      try {
        const auto x = rng.gauss(M * K);
        std::vector<std::vector<float>> w;
        std::vector<sd::Tensor> wg;
        for (int64_t i = 0; i < n; ++i) {
          w.push_back(rng.vec(N * K, 0.1f));
          wg.push_back(weight(gpu, w.back(), {N, K}, t));
        }
        gpu.rewind(0);
        Env eg{&gpu};
        auto xt = eg.act({M, K}, &x);
        std::vector<sd::Tensor> yt;
        for (int64_t i = 0; i < n; ++i) yt.push_back(eg.act({M, N}));
        sd::Tensor* ys[3] = {&yt[0], &yt[1], n > 2 ? &yt[2] : nullptr};
        const sd::Tensor* ws[3] = {&wg[0], &wg[1], n > 2 ? &wg[2] : nullptr};
        gpu.linear_n(ys, xt, ws, static_cast<int>(n));
        double worst = 0;
        for (int64_t i = 0; i < n; ++i) {
          // The weights as stored (quantized or f16), back in f32; rounded to f16 with x where the
          // GPU computes in f16.
          std::vector<uint8_t> blk(sd::dtype_row_bytes(t, K));
          std::vector<float> wd(static_cast<size_t>(N * K)), ref(static_cast<size_t>(M * N));
          for (int64_t r = 0; r < N; ++r) {
            sd::from_f32_row(t, w[i].data() + r * K, blk.data(), K);
            sd::to_f32_row(t, blk.data(), wd.data() + r * K, K);
          }
          const auto xr = gpu.f16_compute() ? round_f16(x) : x;
          const auto wr = gpu.f16_compute() ? round_f16(wd) : wd;
          sd::gemm_reference(M, N, K, xr.data(), K, wr.data(), sd::DType::F32, nullptr, ref.data(), N);
          worst = std::max(worst, err_stat(eg.get(yt[i]), ref, mm).err);
        }
        report(name, worst, mm);
      } catch (const std::exception& ex) {
        report_exception(name, ex.what());
      }
    }
    // linear_geglu (the GEGLU in the GEMM's epilogue where the backend fuses it, a linear and a
    // geglu elsewhere): against a * gelu(gate) from the reference GEMM on the values the kernels see.
    // F 72: a last N tile of one 16-row group; 2 rows with K 1280: split-K.
    for (auto [M, F, K] : {std::array<int64_t, 3>{150, 72, 96}, {77, 1280, 320}, {2, 640, 1280}, {513, 8, 64}}) {
      std::string name = std::string("linear_geglu ") + sd::dtype_name(t) + " " + shape3(M, F, K);
      try {
        const int64_t N = 2 * F;
        const auto x = rng.gauss(M * K), w = rng.vec(N * K, 0.1f), b = rng.vec(N);
        const sd::Tensor wg = weight(gpu, w, {N, K}, t);
        gpu.rewind(0);
        Env eg{&gpu};
        auto xt = eg.act({M, K}, &x), bt = eg.param({N}, &b), yt = eg.act({M, F});
        if (gpu.fuses_linear_geglu(xt, wg)) {
          name += " (fused)";
          gpu.linear_geglu(yt, xt, wg, &bt);
        } else {
          auto tmp = eg.act({M, N});
          gpu.linear(tmp, xt, wg, &bt);
          gpu.geglu(yt, tmp);
        }
        std::vector<uint8_t> blk(sd::dtype_row_bytes(t, K));
        std::vector<float> wd(static_cast<size_t>(N * K)), both(static_cast<size_t>(M * N)), ref(static_cast<size_t>(M * F));
        for (int64_t r = 0; r < N; ++r) {
          sd::from_f32_row(t, w.data() + r * K, blk.data(), K);
          sd::to_f32_row(t, blk.data(), wd.data() + r * K, K);
        }
        const auto xr = gpu.f16_compute() ? round_f16(x) : x;
        const auto wr = gpu.f16_compute() ? round_f16(wd) : wd;
        sd::gemm_reference(M, N, K, xr.data(), K, wr.data(), sd::DType::F32, b.data(), both.data(), N);
        for (int64_t m = 0; m < M; ++m)
          for (int64_t c = 0; c < F; ++c) {
            const double g = both[m * N + F + c];
            ref[m * F + c] = static_cast<float>(both[m * N + c] * 0.5 * g * (1.0 + std::erf(g / std::sqrt(2.0))));
          }
        report(name, eg.get(yt), ref, mm, std::to_string(M) + "x" + std::to_string(F));
      } catch (const std::exception& ex) {
        report_exception(name, ex.what());
      }
    }
    struct Conv { int64_t n, ci, co, h, w, k, s, p, up = 0; };  // up: conv2d_upsampled (x read at 2x)
    for (Conv c : {Conv{2, 4, 8, 9, 7, 3, 1, 1}, Conv{1, 32, 64, 16, 12, 3, 2, 1}, Conv{2, 64, 32, 8, 8, 1, 1, 0},
                   Conv{1, 32, 16, 9, 9, 3, 2, 0}, Conv{2, 4, 32, 17, 13, 3, 1, 1}, Conv{1, 64, 136, 15, 11, 3, 2, 0},
                   Conv{2, 96, 130, 10, 9, 1, 1, 0}, Conv{1, 320, 320, 24, 20, 3, 1, 1}, Conv{1, 128, 3, 33, 31, 3, 1, 1},
                   Conv{2, 32, 20, 5, 7, 3, 1, 1, 1}, Conv{1, 64, 136, 17, 12, 3, 1, 1, 1}}) {
      if (q && (c.ci * c.k * c.k) % 32 != 0) continue;
      const int64_t he = c.h << c.up, we = c.w << c.up;  // the input as the conv sees it
      const int64_t ho = (he + 2 * c.p - c.k) / c.s + 1, wo = (we + 2 * c.p - c.k) / c.s + 1;
      const int64_t kdim = c.ci * c.k * c.k;
      const auto x = rng.gauss(c.n * c.ci * c.h * c.w), w = rng.vec(c.co * kdim, 0.1f), b = rng.vec(c.co);
      // Quantized weights: the CPU side gets them dequantized to f32 (its own quantized conv may
      // quantize activations too), so the oracle is the f32 conv on the same weight values.
      std::vector<float> wd = w;
      if (q) {
        std::vector<uint8_t> blk(sd::dtype_row_bytes(t, kdim));
        for (int64_t r = 0; r < c.co; ++r) {
          sd::from_f32_row(t, w.data() + r * kdim, blk.data(), kdim);
          sd::to_f32_row(t, blk.data(), wd.data() + r * kdim, kdim);
        }
      }
      // Quantized conv weights are blocked along Ci*k*k: upload as [Co, Ci*k*k] rows, view as 4-D.
      auto wc = weight(cpu, wd, {c.co, kdim}, q ? sd::DType::F32 : t), wg = weight(gpu, w, {c.co, kdim}, t);
      wc = wc.reshaped({c.co, c.ci, c.k, c.k});
      wg = wg.reshaped({c.co, c.ci, c.k, c.k});
      const std::string name = std::string("conv2d ") + sd::dtype_name(t) + " k" + std::to_string(c.k) + " s" +
                               std::to_string(c.s) + " p" + std::to_string(c.p) + " n" + std::to_string(c.n) + " " +
                               std::to_string(c.ci) + "->" + std::to_string(c.co) + " " + std::to_string(c.h) + "x" +
                               std::to_string(c.w) + (c.up ? " upsampled 2x" : "");
      compare(cpu, gpu, name + (q ? " vs dequantized" : ""), mm, [&](Env& e) {
        auto xt = e.act({c.n, c.ci, c.h, c.w}, &x), bt = e.param({c.co}, &b), yt = e.act({c.n, c.co, ho, wo});
        if (c.up) e.be->conv2d_upsampled(yt, xt, e.be == &cpu ? wc : wg, &bt);
        else e.be->conv2d(yt, xt, e.be == &cpu ? wc : wg, &bt, static_cast<int>(c.s), static_cast<int>(c.p));
        return e.get(yt);
      });
      // conv2d_add: + a [N, Co] term per image and channel + a residual (the epilogue where the
      // backend fuses them; the CPU adds after its conv).
      if (c.up) continue;
      const auto chan = rng.gauss(c.n * c.co), res = rng.gauss(c.n * c.co * ho * wo);
      compare(cpu, gpu, "conv2d_add" + name.substr(6) + (q ? " vs dequantized" : ""), mm, [&](Env& e) {
        auto xt = e.act({c.n, c.ci, c.h, c.w}, &x), bt = e.param({c.co}, &b), yt = e.act({c.n, c.co, ho, wo});
        auto ct = e.act({c.n, c.co}, &chan), rt = e.act({c.n, c.co, ho, wo}, &res);
        e.be->conv2d_add(yt, xt, e.be == &cpu ? wc : wg, &bt, static_cast<int>(c.s), static_cast<int>(c.p), &ct, &rt);
        return e.get(yt);
      });
      // norm_conv2d: GroupNorm (32 groups) + SiLU, then the conv with both adds (a ResBlock's; the
      // CPU runs the ops one by one, CUDA with SDNODE_CUDA_FUSE=norm_conv normalises in the conv's
      // NHWC input copy).
      if (c.s != 1 || 2 * c.p + 1 != c.k || c.ci % 32 != 0) continue;
      const auto gamma = rng.vec(c.ci), beta = rng.vec(c.ci);
      compare(cpu, gpu, "norm_conv2d" + name.substr(6) + (q ? " vs dequantized" : ""), mm, [&](Env& e) {
        auto xt = e.act({c.n, c.ci, c.h, c.w}, &x), bt = e.param({c.co}, &b), yt = e.act({c.n, c.co, ho, wo});
        auto tt = e.act({c.n, c.ci, c.h, c.w}), gt = e.param({c.ci}, &gamma), et = e.param({c.ci}, &beta);
        auto ct = e.act({c.n, c.co}, &chan), rt = e.act({c.n, c.co, ho, wo}, &res);
        e.be->norm_conv2d(yt, tt, xt, 32, gt, et, 1e-5f, true, e.be == &cpu ? wc : wg, &bt, 1, static_cast<int>(c.p), &ct,
                          &rt);
        return e.get(yt);
      });
    }
    // A 3x3 weight laid out tap-major by its first use, on a small input (f16 weights; q8_0/q4_0
    // with SDNODE_CUDA_QTAPS=1), then over an input whose NHWC copy would pass 32 MB: for quantized
    // weights the NCHW gather in the weights' k order (tc_conv2d_taps).
    if (t != sd::DType::F32) {
      const int64_t ci = 32, co = 16, h = 1030, wd = 520, kdim = ci * 9;
      const auto xs = rng.gauss(ci * 9 * 9), x = rng.gauss(ci * h * wd), w = rng.vec(co * kdim, 0.1f), b = rng.vec(co);
      std::vector<float> wq = w;
      if (q) {
        std::vector<uint8_t> blk(sd::dtype_row_bytes(t, kdim));
        for (int64_t r = 0; r < co; ++r) {
          sd::from_f32_row(t, w.data() + r * kdim, blk.data(), kdim);
          sd::to_f32_row(t, blk.data(), wq.data() + r * kdim, kdim);
        }
      }
      auto wc = weight(cpu, wq, {co, kdim}, q ? sd::DType::F32 : t).reshaped({co, ci, 3, 3});
      auto wg = weight(gpu, w, {co, kdim}, t).reshaped({co, ci, 3, 3});
      compare(cpu, gpu, std::string("conv2d ") + sd::dtype_name(t) + " k3 32->16 1030x520 after a 9x9 first use", mm,
              [&](Env& e) {
                const sd::Tensor& wt = e.be == &cpu ? wc : wg;
                auto small = e.act({1, ci, 9, 9}, &xs), ys = e.act({1, co, 9, 9}), bt = e.param({co}, &b);
                e.be->conv2d(ys, small, wt, &bt, 1, 1);
                auto xt = e.act({1, ci, h, wd}, &x), yt = e.act({1, co, h, wd});
                e.be->conv2d(yt, xt, wt, &bt, 1, 1);
                return e.get(yt);
              });
    }
    if (t == sd::DType::F32) {  // SD 1.x has only 1x1 and 3x3 convs: others are refused by name
      bool named = false;
      try {
        gpu.rewind(0);
        Env eg{&gpu};
        auto xt = eg.act({1, 8, 11, 10}), yt = eg.act({1, 12, 11, 10});
        auto wt = eg.param({12, 8, 5, 5});
        gpu.conv2d(yt, xt, wt, nullptr, 1, 2);
      } catch (const std::exception& ex) {
        named = std::string(ex.what()).find("kernel must be 1x1 or 3x3") != std::string::npos;
      }
      report("conv2d 5x5 refused with the op's message", named ? 0.0 : 1.0, 0.0);
    }
    {
      const auto table = rng.vec(50 * 64);
      auto tc = weight(cpu, table, {50, 64}, t), tg = weight(gpu, table, {50, 64}, t);
      const int32_t ids[] = {3, 0, 49, 7, 7};
      compare(cpu, gpu, std::string("get_rows ") + sd::dtype_name(t), 0, [&](Env& e) {
        auto yt = e.act({5, 64});
        e.be->get_rows(yt, e.be == &cpu ? tc : tg, ids, 5);
        return e.get(yt);
      });
      // More ids than fit in a kernel parameter: the copied-ids path.
      std::vector<int32_t> many(1000);
      for (size_t i = 0; i < many.size(); ++i) many[i] = static_cast<int32_t>((i * 37 + 11) % 50);
      compare(cpu, gpu, std::string("get_rows 1000 ids ") + sd::dtype_name(t), 0, [&](Env& e) {
        auto yt = e.act({1000, 64});
        e.be->get_rows(yt, e.be == &cpu ? tc : tg, many.data(), 1000);
        return e.get(yt);
      });
    }
  }

  struct Att { int64_t b, nq, nk, heads, d; bool causal; };
  // SD 1.5: d 40/80/160 self (up to 4096 keys) and cross (77 keys); CLIP d 64 causal; the tiny
  // model's d 4..16; odd d 100; head dims above 160 (the TC set's GEMM-softmax-GEMM path): VAE mid
  // d 512 at 64x64 latents (4 chunks of 1024 query rows), several heads with a causal mask, and nk
  // not a multiple of 8 (P V without 16-byte copies).
  for (Att a : {Att{2, 77, 77, 2, 64, true}, Att{2, 300, 300, 8, 40, false}, Att{2, 256, 77, 8, 20, false},
                Att{1, 64, 64, 1, 512, false}, Att{1, 4096, 4096, 1, 512, false}, Att{2, 200, 200, 2, 192, true},
                Att{1, 130, 77, 1, 256, false}, Att{1, 1024, 1024, 8, 160, false}, Att{2, 77, 77, 12, 64, true},
                Att{2, 1024, 1024, 4, 80, false}, Att{1, 4096, 4096, 2, 40, false}, Att{2, 4096, 77, 8, 40, false},
                Att{2, 333, 77, 8, 160, false}, Att{1, 70, 130, 3, 100, false}, Att{2, 97, 97, 8, 4, false},
                Att{2, 150, 77, 8, 16, false}, Att{1, 65, 65, 1, 8, true}}) {
    const int64_t wdt = a.heads * a.d;
    const auto q = rng.gauss(a.b * a.nq * wdt), k = rng.gauss(a.b * a.nk * wdt), v = rng.gauss(a.b * a.nk * wdt);
    compare(cpu, gpu,
            "attention b" + std::to_string(a.b) + " nq" + std::to_string(a.nq) + " nk" + std::to_string(a.nk) + " h" +
                std::to_string(a.heads) + " d" + std::to_string(a.d) + (a.causal ? " causal" : ""),
            mm, [&](Env& e) {
              auto qt = e.act({a.b, a.nq, wdt}, &q), kt = e.act({a.b, a.nk, wdt}, &k), vt = e.act({a.b, a.nk, wdt}, &v);
              auto yt = e.act({a.b, a.nq, wdt});
              e.be->attention(yt, qt, kt, vt, static_cast<int>(a.heads), a.causal);
              return e.get(yt);
            });
  }
}

void run_other_ops(sd::Backend& cpu, sd::Backend& gpu, Rng& rng) {
  for (bool silu : {false, true}) {
    const auto x = rng.vec(2 * 64 * 9 * 7, 3.f), g = rng.vec(64), b = rng.vec(64);
    compare(cpu, gpu, std::string("group_norm") + (silu ? "+silu" : ""), 1e-5, [&](Env& e) {
      auto xt = e.act({2, 64, 9, 7}, &x), gt = e.param({64}, &g), bt = e.param({64}, &b), yt = e.act({2, 64, 9, 7});
      e.be->group_norm(yt, xt, 32, gt, bt, 1e-6f, silu);
      return e.get(yt);
    });
  }
  // SD-sized groups (several chunks per group, float4 path) and in place (y is x) with odd planes.
  {
    auto x = rng.gauss(2 * 320 * 24 * 24, 2.f);
    const auto g = rng.vec(320), b = rng.vec(320);
    for (size_t i = 0; i < x.size(); ++i) x[i] += 5.f * static_cast<float>((i / 5760) % 3);  // group means 0, 5, 10
    compare(cpu, gpu, "group_norm+silu 2x320x24x24 (2 chunks/group)", 1e-5, [&](Env& e) {
      auto xt = e.act({2, 320, 24, 24}, &x), gt = e.param({320}, &g), bt = e.param({320}, &b), yt = e.act({2, 320, 24, 24});
      e.be->group_norm(yt, xt, 32, gt, bt, 1e-6f, true);
      return e.get(yt);
    });
    const auto x2 = rng.gauss(1 * 64 * 33 * 35), g2 = rng.vec(64), b2 = rng.vec(64);
    compare(cpu, gpu, "group_norm in place 1x64x33x35", 1e-5, [&](Env& e) {
      auto xt = e.act({1, 64, 33, 35}, &x2), gt = e.param({64}, &g2), bt = e.param({64}, &b2);
      e.be->group_norm(xt, xt, 32, gt, bt, 1e-5f, false);
      return e.get(xt);
    });
  }
  {
    const auto x = rng.vec(77 * 2 * 130, 2.f), g = rng.vec(130), b = rng.vec(130);
    compare(cpu, gpu, "layer_norm", 1e-5, [&](Env& e) {
      auto xt = e.act({2, 77, 130}, &x), gt = e.param({130}, &g), bt = e.param({130}, &b), yt = e.act({2, 77, 130});
      e.be->layer_norm(yt, xt, gt, bt, 1e-5f);
      return e.get(yt);
    });
    compare(cpu, gpu, "softmax", 1e-5, [&](Env& e) {
      auto xt = e.act({154, 130}, &x), yt = e.act({154, 130});
      e.be->softmax(yt, xt);
      return e.get(yt);
    });
  }
  const auto x = rng.vec(3 * 5 * 6 * 2, 3.f), b1 = rng.vec(5), y2 = rng.vec(3 * 5 * 6 * 2);
  for (auto op : {sd::Unary::Silu, sd::Unary::Gelu, sd::Unary::QuickGelu})
    compare(cpu, gpu, "unary " + std::to_string(static_cast<int>(op)), 1e-6, [&](Env& e) {
      auto xt = e.act({3, 5, 6, 2}, &x), yt = e.act({3, 5, 6, 2});
      e.be->unary(yt, xt, op);
      return e.get(yt);
    });
  compare(cpu, gpu, "geglu", 1e-6, [&](Env& e) {
    auto xt = e.act({18, 10}, &x), yt = e.act({18, 5});
    e.be->geglu(yt, xt);
    return e.get(yt);
  });
  compare(cpu, gpu, "add broadcast [3,5,6,2]+[5,1,1]", 0, [&](Env& e) {
    auto xt = e.act({3, 5, 6, 2}, &x), bt = e.act({5, 1, 1}, &b1), yt = e.act({3, 5, 6, 2});
    e.be->add(yt, xt, bt);
    return e.get(yt);
  });
  compare(cpu, gpu, "mul same shape", 0, [&](Env& e) {
    auto xt = e.act({3, 5, 6, 2}, &x), bt = e.act({3, 5, 6, 2}, &y2), yt = e.act({3, 5, 6, 2});
    e.be->mul(yt, xt, bt);
    return e.get(yt);
  });
  compare(cpu, gpu, "upsample 6x2 -> 12x3", 0, [&](Env& e) {
    auto xt = e.act({3, 5, 6, 2}, &x), yt = e.act({3, 5, 12, 3});
    e.be->upsample_nearest(yt, xt);
    return e.get(yt);
  });
  compare(cpu, gpu, "concat_channels", 0, [&](Env& e) {
    auto at = e.act({3, 5, 6, 2}, &x), bt = e.act({3, 5, 6, 2}, &y2), yt = e.act({3, 10, 6, 2});
    e.be->concat_channels(yt, at, bt);
    return e.get(yt);
  });
  compare(cpu, gpu, "transpose12", 0, [&](Env& e) {
    auto xt = e.act({3, 10, 6}, &x), yt = e.act({3, 6, 10});
    e.be->transpose12(yt, xt);
    return e.get(yt);
  });
  // The vectorised paths (4 elements per access) and their scalar fallbacks: each broadcast kind
  // (b over a's leading dims, b over its trailing dims, any other), sizes on and off multiples of 4,
  // SD-wide layer_norm rows, a transpose over several 32x32 tiles with ragged edges.
  {
    struct Bin { std::vector<int64_t> a, b; };
    for (const Bin& c : {Bin{{2, 8, 4, 6}, {2, 8, 1, 1}}, Bin{{2, 8, 3, 5}, {2, 8, 1, 1}}, Bin{{3, 7, 12}, {12}},
                         Bin{{3, 7, 10}, {10}}, Bin{{2, 6, 4, 4}, {6, 4, 1}}, Bin{{4, 9, 8}, {4, 9, 8}},
                         Bin{{3, 7}, {1}}}) {
      int64_t na = 1, nb = 1;
      for (int64_t d : c.a) na *= d;
      for (int64_t d : c.b) nb *= d;
      const auto av = rng.vec(static_cast<size_t>(na), 2.f), bv = rng.vec(static_cast<size_t>(nb), 2.f);
      auto dims = [](const std::vector<int64_t>& v) {
        std::string r;
        for (int64_t d : v) r += (r.empty() ? "" : ",") + std::to_string(d);
        return "[" + r + "]";
      };
      for (bool mul : {false, true})
        compare(cpu, gpu, std::string(mul ? "mul " : "add ") + dims(c.a) + (mul ? "*" : "+") + dims(c.b), 0, [&](Env& e) {
          auto shaped = [&](int64_t n, const std::vector<int64_t>& d) {
            sd::Tensor t = e.be->alloc(e.be->activation_type(), {n});
            t.ndim = static_cast<int>(d.size());
            for (int i = 0; i < t.ndim; ++i) t.shape[i] = d[static_cast<size_t>(i)];
            return t;
          };
          sd::Tensor at = shaped(na, c.a), bt = shaped(nb, c.b), yt = shaped(na, c.a);
          e.put(at, av);
          e.put(bt, bv);
          if (mul) e.be->mul(yt, at, bt);
          else e.be->add(yt, at, bt);
          return e.get(yt);
        });
    }
    const auto g = rng.vec(16 * 24, 2.f), w = rng.vec(1280, 1.f), bb = rng.vec(1280, 1.f);
    compare(cpu, gpu, "geglu [16, 24] (vectorised)", 1e-6, [&](Env& e) {
      auto xt = e.act({16, 24}, &g), yt = e.act({16, 12});
      e.be->geglu(yt, xt);
      return e.get(yt);
    });
    for (int64_t C : {int64_t{320}, int64_t{1280}}) {
      const auto x = rng.vec(static_cast<size_t>(2 * 9 * C), 3.f);
      compare(cpu, gpu, "layer_norm [2, 9, " + std::to_string(C) + "] (vectorised)", 1e-5, [&](Env& e) {
        std::vector<float> gv(w.begin(), w.begin() + C), bv(bb.begin(), bb.begin() + C);
        auto xt = e.act({2, 9, C}, &x), gt = e.param({C}, &gv), bt = e.param({C}, &bv), yt = e.act({2, 9, C});
        e.be->layer_norm(yt, xt, gt, bt, 1e-5f);
        return e.get(yt);
      });
    }
    const auto t = rng.vec(2 * 70 * 45), u = rng.vec(3 * 5 * 7);
    compare(cpu, gpu, "transpose12 [2, 70, 45] (3x2 tiles, ragged)", 0, [&](Env& e) {
      auto xt = e.act({2, 70, 45}, &t), yt = e.act({2, 45, 70});
      e.be->transpose12(yt, xt);
      return e.get(yt);
    });
    compare(cpu, gpu, "concat_channels odd plane [2,3,5,3]+[2,4,5,3]", 0, [&](Env& e) {
      const std::vector<float> av(t.begin(), t.begin() + 90), bv(t.begin() + 90, t.begin() + 210);
      auto at = e.act({2, 3, 5, 3}, &av), bt = e.act({2, 4, 5, 3}, &bv), yt = e.act({2, 7, 5, 3});
      e.be->concat_channels(yt, at, bt);
      return e.get(yt);
    });
    for (int64_t n : {int64_t{105}, int64_t{104}}) {
      compare(cpu, gpu, "unary silu n" + std::to_string(n), 1e-6, [&](Env& e) {
        auto xt = e.act({n}, &u), yt = e.act({n});
        e.be->unary(yt, xt, sd::Unary::Silu);
        return e.get(yt);
      });
      compare(cpu, gpu, "scale n" + std::to_string(n), 0, [&](Env& e) {
        auto xt = e.act({n}, &u), yt = e.act({n});
        e.be->scale(yt, xt, 0.37f);
        return e.get(yt);
      });
    }
  }
  // Timesteps come from a device tensor; up to dim 1920 the frequencies travel as a kernel
  // parameter, wider ones are computed in the kernel (both by the CPU's float recipe).
  const std::vector<float> ts = {999.f, 437.25f, 0.f};
  for (int64_t dim : {320, 1920, 1922, 2048}) {
    compare(cpu, gpu, "timestep_embedding dim " + std::to_string(dim), 1e-6, [&](Env& e) {
      auto tt = e.param({3}, &ts), yt = e.act({3, dim});
      e.be->timestep_embedding(yt, tt);
      return e.get(yt);
    });
  }
}

// Kernel sets to run, separated by spaces or ';' (each one a SDNODE_CUDA_TC value: 0, 1, or a
// list such as gemm,norm).
std::vector<std::string> modes() {
  const char* m = std::getenv("SDNODE_CUDA_TEST_TC");
  std::vector<std::string> out;
  std::string cur;
  for (const char* c = m && *m ? m : "0 1"; ; ++c) {
    if (*c == ' ' || *c == ';' || *c == '\0') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
      if (*c == '\0') break;
    } else {
      cur += *c;
    }
  }
  return out;
}

bool has_flag(int argc, char** argv, const char* f) {
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], f) == 0) return true;
  return false;
}

int run_all(int argc, char** argv) {
  auto cpu = sd::make_cpu_backend(0);
  const size_t arena = size_t(768) << 20;
  cpu->reserve_activations(arena);
  int model_failures = 0;
  if (has_flag(argc, argv, "--bench-model-only") || has_flag(argc, argv, "--bench-gen")) {
    int failed = 0;
    if (has_flag(argc, argv, "--bench-model-only")) failed += run_model_bench(modes());
    if (has_flag(argc, argv, "--bench-gen")) failed += run_gen_bench(modes());
    return failed ? 1 : 0;
  }
  for (const std::string& mode : modes()) {
    setenv("SDNODE_CUDA_TC", mode.c_str(), 1);  // read by the backend when it is created
    std::string why;
    sd::BackendPtr gpu;
    try {
      gpu = sd::make_backend("cuda", 0, &why);
    } catch (const std::exception& e) {
      // SDNODE_CUDA_REQUIRE=1 (scripts/gpu-check.sh): on the GPU machine a missing backend is a failure.
      const char* req = std::getenv("SDNODE_CUDA_REQUIRE");
      const bool required = req && std::string(req) == "1";
      std::printf("%s, no CUDA backend: %s\n", required ? "FAIL sdcuda_tests: required" : "sdcuda_tests: skipped",
                  e.what());
      return required ? 1 : 0;
    }
    const Counts before = counts();
    std::printf("== sdcuda ops, SDNODE_CUDA_TC=%s (%s compute) on %s\n", mode.c_str(),
                gpu->f16_compute() ? "f16 tensor-core" : "f32 SIMT", why.c_str());
    gpu->reserve_activations(arena);
    Rng rng(7);
    run_matmul_ops(*cpu, *gpu, rng, gpu->f16_compute() ? kF16 : kF32);
    run_other_ops(*cpu, *gpu, rng);
    std::printf("sdcuda ops TC=%s: %d passed, %d failed\n", mode.c_str(), counts().pass - before.pass,
                counts().fail - before.fail);
    if (has_flag(argc, argv, "--bench")) run_kernel_bench(*gpu);
    gpu.reset();
    std::printf("== tiny-model goldens on CUDA, SDNODE_CUDA_TC=%s\n", mode.c_str());
    model_failures += run_cuda_model_goldens();
  }
  if (has_flag(argc, argv, "--bench-model")) model_failures += run_model_bench(modes());
  std::printf("sdcuda: %d passed, %d failed\n", counts().pass, counts().fail + model_failures);
  return counts().fail || model_failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run_all(argc, argv);
  } catch (const std::exception& e) {
    std::printf("FAIL sdcuda_tests: exception outside a case: %s\n", e.what());
    return 1;
  }
}
