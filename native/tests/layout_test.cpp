// upsample_nearest, concat_channels, transpose12, timestep_embedding and get_rows vs index formulas.
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "core/quant.h"
#include "tests/misc_test_util.h"
#include "tests/test.h"

using misctest::view;

SD_TEST(upsample_nearest_matches_reference) {
  struct Case { int64_t N, C, H, W, Ho, Wo; };
  for (const Case& c : {Case{2, 3, 5, 7, 10, 14}, Case{1, 2, 4, 3, 8, 6}, Case{1, 1, 3, 5, 6, 11}, Case{2, 2, 4, 4, 4, 4}}) {
    sdtest::Rng rng(static_cast<uint64_t>(c.H * c.W));
    auto x = rng.vec(static_cast<size_t>(c.N * c.C * c.H * c.W));
    std::vector<float> ref(static_cast<size_t>(c.N * c.C * c.Ho * c.Wo));
    for (int64_t p = 0; p < c.N * c.C; ++p)
      for (int64_t oy = 0; oy < c.Ho; ++oy)
        for (int64_t ox = 0; ox < c.Wo; ++ox)
          ref[(p * c.Ho + oy) * c.Wo + ox] = x[(p * c.H + oy * c.H / c.Ho) * c.W + ox * c.W / c.Wo];
    misctest::for_each_config([&](sd::Isa isa, int threads, sd::Backend& be) {
      std::vector<float> y(ref.size());
      auto tx = view(x, {c.N, c.C, c.H, c.W}), ty = view(y, {c.N, c.C, c.Ho, c.Wo});
      be.upsample_nearest(ty, tx);
      SD_CHECK(y == ref) << "threads " << threads << " " << tx.shape_str() << " -> " << ty.shape_str();
    });
  }
}

SD_TEST(concat_and_transpose12_match_reference) {
  sdtest::Rng rng(3);
  const int64_t N = 2, Ca = 3, Cb = 5, H = 4, W = 7;
  auto a = rng.vec(static_cast<size_t>(N * Ca * H * W)), b = rng.vec(static_cast<size_t>(N * Cb * H * W));
  std::vector<float> cref;
  for (int64_t n = 0; n < N; ++n) {
    cref.insert(cref.end(), a.begin() + n * Ca * H * W, a.begin() + (n + 1) * Ca * H * W);
    cref.insert(cref.end(), b.begin() + n * Cb * H * W, b.begin() + (n + 1) * Cb * H * W);
  }
  const int64_t B = 2, A = 70, C = 33;
  auto x = rng.vec(static_cast<size_t>(B * A * C));
  std::vector<float> tref(x.size());
  for (int64_t bb = 0; bb < B; ++bb)
    for (int64_t i = 0; i < A; ++i)
      for (int64_t j = 0; j < C; ++j) tref[(bb * C + j) * A + i] = x[(bb * A + i) * C + j];
  misctest::for_each_config([&](sd::Isa, int threads, sd::Backend& be) {
    std::vector<float> y(cref.size());
    auto ta = view(a, {N, Ca, H, W}), tb = view(b, {N, Cb, H, W}), ty = view(y, {N, Ca + Cb, H, W});
    be.concat_channels(ty, ta, tb);
    SD_CHECK(y == cref) << "concat threads " << threads;
    std::vector<float> t(x.size());
    auto tx = view(x, {B, A, C}), tt = view(t, {B, C, A});
    be.transpose12(tt, tx);
    SD_CHECK(t == tref) << "transpose12 threads " << threads;
  });
}

SD_TEST(timestep_embedding_matches_reference) {
  const int64_t dim = 320, half = dim / 2;
  std::vector<float> t = {0.f, 1.f, 999.f, 500.5f};
  const int64_t B = static_cast<int64_t>(t.size());
  auto be = sd::make_cpu_backend(1);
  std::vector<float> y(static_cast<size_t>(B * dim));
  auto ty = view(y, {B, dim});
  be->timestep_embedding(ty, view(t, {B}), 10000.f);
  // The exact recipe in float32 (PyTorch's arithmetic), then the same in double with a tolerance
  // that covers float32 argument rounding (|t * f| <= 1000, so ~1e-4 absolute).
  const float nl = static_cast<float>(-std::log(10000.0));
  double max_exact = 0, max_double = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < half; ++i) {
      const float f = static_cast<float>(std::exp(static_cast<double>(nl * static_cast<float>(i) / static_cast<float>(half))));
      const double arg = static_cast<double>(t[b] * f);
      max_exact = std::fmax(max_exact, std::fabs(y[b * dim + i] - std::cos(arg)));
      max_exact = std::fmax(max_exact, std::fabs(y[b * dim + half + i] - std::sin(arg)));
      const double ad = t[b] * std::exp(-std::log(10000.0) * i / half);
      max_double = std::fmax(max_double, std::fabs(y[b * dim + i] - std::cos(ad)));
      max_double = std::fmax(max_double, std::fabs(y[b * dim + half + i] - std::sin(ad)));
    }
  SD_CHECK(max_exact <= 1e-7) << "float32 recipe err " << max_exact;
  SD_CHECK(max_double <= 2e-4) << "double formula err " << max_double;
  SD_CHECK(y[0] == 1.f && y[half] == 0.f) << "t = 0 must give cos 1, sin 0";
}

// t is a backend tensor with one f32 per row of y; anything else is rejected naming t.
SD_TEST(timestep_embedding_rejects_bad_t) {
  auto be = sd::make_cpu_backend(1);
  std::vector<float> y(3 * 8), t3(3), t6(6);
  std::vector<uint16_t> h3(3);
  auto ty = view(y, {3, 8});
  auto message = [&](const sd::Tensor& t) -> std::string {
    try {
      be->timestep_embedding(ty, t);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "no error";
  };
  const std::string wrong_count = message(view(t6, {6}));
  SD_CHECK(wrong_count == "timestep_embedding: t must have 3 elements, got [6]") << wrong_count;
  const std::string wrong_dims = message(view(t6, {3, 2}));
  SD_CHECK(wrong_dims == "timestep_embedding: t must have 1 dims, got [3, 2]") << wrong_dims;
  const std::string wrong_type = message(sd::Tensor(sd::DType::F16, {3}, h3.data()));
  SD_CHECK(wrong_type == "timestep_embedding: t must be f32, got f16") << wrong_type;
  std::vector<float> odd(3 * 7);
  auto to = view(odd, {3, 7});
  std::string odd_dim = "no error";
  try {
    be->timestep_embedding(to, view(t3, {3}));
  } catch (const std::invalid_argument& e) {
    odd_dim = e.what();
  }
  SD_CHECK(odd_dim == "timestep_embedding: dim must be even, got y [3, 7]") << odd_dim;
  SD_CHECK(message(view(t3, {3})) == "no error");
}

SD_TEST(get_rows_gathers_every_dtype) {
  const int64_t V = 10, D = 64;
  sdtest::Rng rng(11);
  auto table = rng.vec(static_cast<size_t>(V * D));
  const int32_t ids[] = {3, 0, 9, 3, 7};
  const int64_t n = 5;
  for (sd::DType t : {sd::DType::F32, sd::DType::F16, sd::DType::Q8_0, sd::DType::Q4_0}) {
    const size_t rb = sd::dtype_row_bytes(t, D);
    std::vector<uint8_t> bytes(rb * V);
    for (int64_t r = 0; r < V; ++r) sd::from_f32_row(t, table.data() + r * D, bytes.data() + r * rb, D);
    std::vector<float> ref(static_cast<size_t>(n * D));
    for (int64_t i = 0; i < n; ++i) sd::to_f32_row(t, bytes.data() + ids[i] * rb, ref.data() + i * D, D);
    for (int i = 0; i < n * D && t == sd::DType::F32; ++i) SD_CHECK(ref[i] == table[ids[i / D] * D + i % D]);
    misctest::for_each_config([&](sd::Isa, int threads, sd::Backend& be) {
      std::vector<float> y(ref.size());
      sd::Tensor tt(t, {V, D}, bytes.data());
      auto ty = view(y, {n, D});
      be.get_rows(ty, tt, ids, n);
      SD_CHECK(y == ref) << sd::dtype_name(t) << " threads " << threads;
    });
  }
}
