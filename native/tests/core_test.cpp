// Thread pool, arena and fp16 conversion basics.
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/fp16.h"
#include "core/threadpool.h"
#include "ops.h"
#include "tests/test.h"

SD_TEST(threadpool_runs_every_task_once) {
  for (int threads : {1, 2, 3, 5}) {
    sd::ThreadPool pool(threads);
    for (int64_t n : {0, 1, 7, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      pool.run(n, [&](int64_t t, int th) {
        SD_CHECK(th >= 0 && th < threads);
        hits[static_cast<size_t>(t)]++;
      });
      for (auto& h : hits) SD_CHECK(h.load() == 1);
    }
  }
}

SD_TEST(threadpool_rethrows_task_errors) {
  sd::ThreadPool pool(2);
  bool caught = false;
  try {
    pool.run(10, [](int64_t t, int) { if (t == 3) throw std::runtime_error("boom"); });
  } catch (const std::runtime_error&) { caught = true; }
  SD_CHECK(caught);
  int count = 0;
  pool.run(4, [&](int64_t, int) { __atomic_add_fetch(&count, 1, __ATOMIC_RELAXED); });
  SD_CHECK(count == 4) << "pool unusable after an exception";
}

SD_TEST(arena_aligns_and_rewinds) {
  sd::Arena a(1 << 16);
  void* p = a.alloc(10);
  void* q = a.alloc(10);
  SD_CHECK(reinterpret_cast<uintptr_t>(p) % 64 == 0);
  SD_CHECK(reinterpret_cast<uintptr_t>(q) % 64 == 0);
  size_t m = a.mark();
  a.alloc(1000);
  a.rewind(m);
  SD_CHECK(a.used() == m);
  bool threw = false;
  try { a.alloc(1 << 20); } catch (const std::length_error&) { threw = true; }
  SD_CHECK(threw);
}

SD_TEST(tensor_nbytes_counts_blocks_over_the_flattened_data) {
  // A quantized 3x3 conv weight: rows of Ci*9 elements although the last dim is 3 (it once
  // counted 0 bytes, so releasing its pages skipped every conv).
  SD_CHECK(sd::Tensor(sd::DType::Q4_0, {320, 320, 3, 3}, nullptr).nbytes() == 320u * 320 * 9 / 32 * 18);
  SD_CHECK(sd::Tensor(sd::DType::Q8_0, {640, 2880}, nullptr).nbytes() == 640u * 90 * 34);
  SD_CHECK(sd::Tensor(sd::DType::F16, {3, 5}, nullptr).nbytes() == 30u);
  SD_CHECK(sd::Tensor(sd::DType::F32, {7}, nullptr).nbytes() == 28u);
}

SD_TEST(fp16_edge_cases) {
  using sd::fp32_to_fp16;
  SD_CHECK(fp32_to_fp16(65504.f) == 0x7BFF);
  SD_CHECK(fp32_to_fp16(65520.f) == 0x7C00);
  SD_CHECK(fp32_to_fp16(65519.99f) == 0x7BFF);
  SD_CHECK(fp32_to_fp16(std::ldexp(1.f, -25)) == 0x0000);
  SD_CHECK(fp32_to_fp16(std::nextafter(std::ldexp(1.f, -25), 1.f)) == 0x0001);
  SD_CHECK(fp32_to_fp16(-0.f) == 0x8000);
  SD_CHECK(fp32_to_fp16(NAN) == 0x7E00);
  SD_CHECK(fp32_to_fp16(1.f) == 0x3C00);
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const uint16_t hb = static_cast<uint16_t>(h);
    if ((hb & 0x7C00) == 0x7C00 && (hb & 0x3FF)) continue;  // NaN payloads collapse
    SD_CHECK(fp32_to_fp16(sd::fp16_to_fp32(hb)) == hb) << "round trip of " << h;
  }
}

SD_TEST(backend_profile_counts_calls_and_flops) {
  auto be = sd::make_cpu_backend(1);
  be->reserve_activations(1 << 20);
  std::vector<float> wdata(5 * 32, 0.5f);
  sd::Tensor w = be->upload_weight(sd::Tensor(sd::DType::F32, {5, 32}, wdata.data()), sd::DType::F32);
  sd::Tensor x = be->alloc(sd::DType::F32, {3, 32}), y = be->alloc(sd::DType::F32, {3, 5});
  std::vector<float> ones(3 * 32, 1.0f);
  be->upload(x, ones.data());
  be->linear(y, x, w, nullptr);  // not profiled
  be->set_profiling(true);
  be->linear(y, x, w, nullptr);
  be->linear(y, x, w, nullptr);
  be->unary(y, y, sd::Unary::Silu);
  be->set_profiling(false);
  const auto& p = be->profile();
  SD_CHECK(p.size() == 2) << p.size() << " kinds";
  SD_CHECK(p.at("linear").calls == 2 && p.at("linear").flops == 2.0 * 2 * 3 * 5 * 32) << p.at("linear").flops;
  SD_CHECK(p.at("elementwise").calls == 1 && p.at("linear").seconds >= 0);
  std::vector<float> out(15);
  be->download(out.data(), y);
  const float v = 16.0f / (1.0f + std::exp(-16.0f));  // silu(32 * 0.5)
  for (float o : out) SD_CHECK_NEAR(o, v, 1e-5);
}

// linear_n is n linears of one input (the CPU runs it as such; a GPU may fuse them): the outputs
// match linear's, and a mismatched weight is refused by name.
SD_TEST(backend_linear_n_matches_linear_and_checks_shapes) {
  auto be = sd::make_cpu_backend(1);
  be->reserve_activations(1 << 20);
  std::vector<float> w0(6 * 32), w1(6 * 32), xd(3 * 32);
  for (size_t i = 0; i < w0.size(); ++i) w0[i] = 0.01f * static_cast<float>(i % 17), w1[i] = -0.02f * static_cast<float>(i % 5);
  for (size_t i = 0; i < xd.size(); ++i) xd[i] = 0.1f * static_cast<float>(i % 7) - 0.3f;
  sd::Tensor a = be->upload_weight(sd::Tensor(sd::DType::F32, {6, 32}, w0.data()), sd::DType::F32);
  sd::Tensor b = be->upload_weight(sd::Tensor(sd::DType::F32, {6, 32}, w1.data()), sd::DType::F32);
  sd::Tensor x = be->alloc(sd::DType::F32, {3, 32});
  be->upload(x, xd.data());
  sd::Tensor y0 = be->alloc(sd::DType::F32, {3, 6}), y1 = be->alloc(sd::DType::F32, {3, 6});
  sd::Tensor* ys[2] = {&y0, &y1};
  const sd::Tensor* ws[2] = {&a, &b};
  be->linear_n(ys, x, ws, 2);
  std::vector<float> got(18);
  for (int i = 0; i < 2; ++i) {
    be->download(got.data(), *ys[i]);
    const std::vector<float>& w = i ? w1 : w0;
    for (int m = 0; m < 3; ++m)
      for (int n = 0; n < 6; ++n) {
        double s = 0;
        for (int k = 0; k < 32; ++k) s += static_cast<double>(xd[m * 32 + k]) * w[n * 32 + k];
        SD_CHECK_NEAR(got[m * 6 + n], s, 1e-5);
      }
  }
  sd::Tensor bad = be->upload_weight(sd::Tensor(sd::DType::F32, {6, 16}, w0.data()), sd::DType::F32);
  const sd::Tensor* wbad[2] = {&a, &bad};
  bool named = false;
  try {
    be->linear_n(ys, x, wbad, 2);
  } catch (const std::exception& e) {
    named = std::string(e.what()).find("linear_n") != std::string::npos;
  }
  SD_CHECK(named) << "a weight of another K must be refused by linear_n";
}

// linear_geglu is called only where the backend fuses it (a GPU's GEMM epilogue; Net::linear_geglu
// asks first): the CPU does not, so it refuses by name, after the shape checks, which name theirs.
SD_TEST(backend_linear_geglu_checks_shapes_and_needs_a_fusing_backend) {
  auto be = sd::make_cpu_backend(1);
  be->reserve_activations(1 << 20);
  std::vector<float> wd(16 * 32, 0.01f);
  sd::Tensor w = be->upload_weight(sd::Tensor(sd::DType::F32, {16, 32}, wd.data()), sd::DType::F32);
  sd::Tensor x = be->alloc(sd::DType::F32, {3, 32});
  sd::Tensor y = be->alloc(sd::DType::F32, {3, 8}), wrong = be->alloc(sd::DType::F32, {3, 16});
  SD_CHECK(!be->fuses_linear_geglu(x, w));
  auto why = [&](sd::Tensor& out) {
    try {
      be->linear_geglu(out, x, w, nullptr);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string shape = why(wrong), fused = why(y);
  SD_CHECK(shape.find("linear_geglu") != std::string::npos && shape.find("must be [3, 8]") != std::string::npos) << shape;
  SD_CHECK(fused.find("not fused") != std::string::npos) << fused;
}

// conv2d_add is conv2d, then + chan (per image and channel), then + res, in that order: the same
// bits as the three ops on a backend that does not fuse them (the CPU); a res that overlaps y, or a
// chan of another shape, is refused by name.
SD_TEST(backend_conv2d_add_is_conv_then_adds_and_checks_operands) {
  auto be = sd::make_cpu_backend(1);
  be->reserve_activations(1 << 20);
  std::vector<float> wd(4 * 3 * 9), xd(2 * 3 * 5 * 6), cd(2 * 4), rd(2 * 4 * 5 * 6);
  for (size_t i = 0; i < wd.size(); ++i) wd[i] = 0.05f * static_cast<float>(i % 11) - 0.2f;
  for (size_t i = 0; i < xd.size(); ++i) xd[i] = 0.1f * static_cast<float>(i % 7) - 0.3f;
  for (size_t i = 0; i < cd.size(); ++i) cd[i] = 0.7f * static_cast<float>(i) - 2.f;
  for (size_t i = 0; i < rd.size(); ++i) rd[i] = 0.01f * static_cast<float>(i % 13);
  sd::Tensor w = be->upload_weight(sd::Tensor(sd::DType::F32, {4, 3, 3, 3}, wd.data()), sd::DType::F32);
  sd::Tensor x = be->alloc(sd::DType::F32, {2, 3, 5, 6}), c = be->alloc(sd::DType::F32, {2, 4});
  sd::Tensor r = be->alloc(sd::DType::F32, {2, 4, 5, 6});
  be->upload(x, xd.data());
  be->upload(c, cd.data());
  be->upload(r, rd.data());
  sd::Tensor y = be->alloc(sd::DType::F32, {2, 4, 5, 6}), ref = be->alloc(sd::DType::F32, {2, 4, 5, 6});
  be->conv2d_add(y, x, w, nullptr, 1, 1, &c, &r);
  be->conv2d(ref, x, w, nullptr, 1, 1);
  be->add(ref, ref, c.reshaped({2, 4, 1, 1}));
  be->add(ref, ref, r);
  std::vector<float> got(rd.size()), want(rd.size());
  be->download(got.data(), y);
  be->download(want.data(), ref);
  SD_CHECK(got == want) << "conv2d_add differs from conv2d, add, add";
  auto why = [&](sd::Tensor& out, const sd::Tensor* chan, const sd::Tensor* res) {
    try {
      be->conv2d_add(out, x, w, nullptr, 1, 1, chan, res);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  sd::Tensor c3 = be->alloc(sd::DType::F32, {2, 3});
  const std::string overlap = why(y, nullptr, &y), chan = why(y, &c3, nullptr);
  SD_CHECK(overlap.find("conv2d_add") != std::string::npos && overlap.find("res overlaps y") != std::string::npos) << overlap;
  SD_CHECK(chan.find("chan [2, 3] must be [2, 4]") != std::string::npos) << chan;
}

SD_TEST(backend_profile_by_shape_names_each_layer) {
  auto be = sd::make_cpu_backend(1);
  be->reserve_activations(1 << 20);
  std::vector<float> wdata(4 * 2 * 9, 0.25f), ldata(5 * 32, 0.5f);
  sd::Tensor w = be->upload_weight(sd::Tensor(sd::DType::F32, {4, 2, 3, 3}, wdata.data()), sd::DType::F32);
  sd::Tensor lw = be->upload_weight(sd::Tensor(sd::DType::F32, {5, 32}, ldata.data()), sd::DType::F16);
  sd::Tensor x = be->alloc(sd::DType::F32, {1, 2, 5, 6}), y = be->alloc(sd::DType::F32, {1, 4, 5, 6});
  sd::Tensor lx = be->alloc(sd::DType::F32, {3, 32}), ly = be->alloc(sd::DType::F32, {3, 5});
  std::vector<float> ones(3 * 32, 1.0f);
  be->upload(x, ones.data());
  be->upload(lx, ones.data());
  be->set_profiling(true, true);
  be->conv2d(y, x, w, nullptr, 1, 1);
  be->linear(ly, lx, lw, nullptr);
  be->unary(y, y, sd::Unary::Silu);
  be->add(ly, ly, ly);
  be->set_profiling(false);
  const auto& p = be->profile();
  SD_CHECK(p.count("conv 3x3 2>4 @5x6 n1 s1 f32") == 1 && p.count("linear 3x32>5 f16") == 1);
  SD_CHECK(p.count("elementwise unary [1, 4, 5, 6]") == 1 && p.count("elementwise add [3, 5]+[3, 5]") == 1)
      << p.size() << " shapes";
  for (const auto& [k, st] : p) SD_CHECK(st.calls == 1) << k;
}
