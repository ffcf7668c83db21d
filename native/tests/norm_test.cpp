// group_norm, layer_norm and softmax on every ISA level vs independent double-precision formulas.
#include <cmath>

#include "tests/misc_test_util.h"
#include "tests/test.h"

using misctest::view;

namespace {

// x: [N, C, S]; per (n, group) statistics over C/G * S values.
std::vector<double> group_norm_ref(const std::vector<float>& x, int64_t N, int64_t C, int64_t S,
                                   int G, const std::vector<float>& gamma,
                                   const std::vector<float>& beta, double eps, bool silu) {
  std::vector<double> y(x.size());
  const int64_t cpg = C / G;
  for (int64_t n = 0; n < N; ++n)
    for (int g = 0; g < G; ++g) {
      const size_t base = static_cast<size_t>((n * C + g * cpg) * S), cnt = static_cast<size_t>(cpg * S);
      double s = 0, q = 0;
      for (size_t i = 0; i < cnt; ++i) s += x[base + i];
      const double mean = s / cnt;
      for (size_t i = 0; i < cnt; ++i) q += (x[base + i] - mean) * (x[base + i] - mean);
      const double rstd = 1.0 / std::sqrt(q / cnt + eps);
      for (size_t i = 0; i < cnt; ++i) {
        const int64_t c = g * cpg + static_cast<int64_t>(i) / S;
        double v = (x[base + i] - mean) * rstd * gamma[c] + beta[c];
        if (silu) v = v / (1.0 + std::exp(-v));
        y[base + i] = v;
      }
    }
  return y;
}

}  // namespace

SD_TEST(group_norm_matches_reference) {
  struct Case { int64_t N, C, H, W; int G; float eps; bool silu; };
  const Case cases[] = {{2, 64, 7, 9, 32, 1e-5f, true},  {2, 64, 7, 9, 32, 1e-5f, false},
                        {1, 96, 13, 5, 32, 1e-6f, true}, {3, 6, 17, 1, 3, 1e-6f, false},
                        {1, 32, 1, 1, 32, 1e-5f, true},  {2, 320, 11, 6, 32, 1e-5f, true}};
  for (const Case& c : cases) {
    sdtest::Rng rng(static_cast<uint64_t>(c.C * 131 + c.H));
    auto x = rng.vec(static_cast<size_t>(c.N * c.C * c.H * c.W), -1.f, 3.f);  // non-zero mean
    auto gamma = rng.vec(static_cast<size_t>(c.C), 0.5f, 1.5f), beta = rng.vec(static_cast<size_t>(c.C));
    const auto ref = group_norm_ref(x, c.N, c.C, c.H * c.W, c.G, gamma, beta, c.eps, c.silu);
    misctest::for_each_config([&](sd::Isa isa, int threads, sd::Backend& be) {
      std::vector<float> y(x.size());
      auto tx = view(x, {c.N, c.C, c.H, c.W}), ty = view(y, {c.N, c.C, c.H, c.W});
      auto tg = view(gamma, {c.C}), tb = view(beta, {c.C});
      be.group_norm(ty, tx, c.G, tg, tb, c.eps, c.silu);
      const double err = misctest::max_rel_err_d(y, ref);
      SD_CHECK(err <= 1e-5) << sd::isa_name(isa) << " threads " << threads << " C " << c.C
                            << " silu " << c.silu << " rel err " << err;
    });
  }
}

SD_TEST(layer_norm_matches_reference) {
  struct Case { int64_t B, T, C; };
  for (const Case& c : {Case{3, 5, 37}, Case{2, 7, 320}, Case{1, 3, 768}, Case{2, 1, 1}}) {
    sdtest::Rng rng(static_cast<uint64_t>(c.C + c.T));
    auto x = rng.vec(static_cast<size_t>(c.B * c.T * c.C), -2.f, 4.f);
    auto gamma = rng.vec(static_cast<size_t>(c.C), 0.5f, 1.5f), beta = rng.vec(static_cast<size_t>(c.C));
    std::vector<double> ref(x.size());
    for (int64_t r = 0; r < c.B * c.T; ++r) {
      const float* xr = x.data() + r * c.C;
      double s = 0, q = 0;
      for (int64_t i = 0; i < c.C; ++i) s += xr[i];
      const double mean = s / c.C;
      for (int64_t i = 0; i < c.C; ++i) q += (xr[i] - mean) * (xr[i] - mean);
      const double rstd = 1.0 / std::sqrt(q / c.C + 1e-5);
      for (int64_t i = 0; i < c.C; ++i) ref[r * c.C + i] = (xr[i] - mean) * rstd * gamma[i] + beta[i];
    }
    misctest::for_each_config([&](sd::Isa isa, int threads, sd::Backend& be) {
      std::vector<float> y(x.size());
      auto tx = view(x, {c.B, c.T, c.C}), ty = view(y, {c.B, c.T, c.C});
      auto tg = view(gamma, {c.C}), tb = view(beta, {c.C});
      be.layer_norm(ty, tx, tg, tb, 1e-5f);
      const double err = misctest::max_rel_err_d(y, ref);
      SD_CHECK(err <= 1e-5) << sd::isa_name(isa) << " threads " << threads << " C " << c.C << " rel err " << err;
    });
  }
}

SD_TEST(softmax_matches_reference) {
  for (int64_t n : {1, 7, 77, 1000}) {
    sdtest::Rng rng(static_cast<uint64_t>(n));
    const int64_t rows = 5;
    auto x = rng.vec(static_cast<size_t>(rows * n), -12.f, 12.f);
    std::vector<double> ref(x.size());
    for (int64_t r = 0; r < rows; ++r) {
      double mx = -INFINITY, s = 0;
      for (int64_t i = 0; i < n; ++i) mx = std::fmax(mx, x[r * n + i]);
      for (int64_t i = 0; i < n; ++i) s += std::exp(x[r * n + i] - mx);
      for (int64_t i = 0; i < n; ++i) ref[r * n + i] = std::exp(x[r * n + i] - mx) / s;
    }
    misctest::for_each_config([&](sd::Isa isa, int threads, sd::Backend& be) {
      std::vector<float> y(x.size());
      auto tx = view(x, {rows, n}), ty = view(y, {rows, n});
      be.softmax(ty, tx);
      // Per element relative: every probability, not just the largest, must be right.
      double err = 0;
      for (size_t i = 0; i < y.size(); ++i) err = std::fmax(err, std::fabs(y[i] - ref[i]) / ref[i]);
      SD_CHECK(err <= 1e-5) << sd::isa_name(isa) << " threads " << threads << " n " << n << " rel err " << err;
    });
  }
}
