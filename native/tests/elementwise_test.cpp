// Activations, GEGLU and broadcasting add/mul on every ISA level vs independent formulas.
#include <cmath>

#include "tests/misc_test_util.h"
#include "tests/test.h"

using misctest::view;

namespace {

double ref_unary(sd::Unary op, double x) {
  switch (op) {
    case sd::Unary::Silu: return x / (1.0 + std::exp(-x));
    case sd::Unary::Gelu: return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    default: return x / (1.0 + std::exp(-1.702 * x));
  }
}

}  // namespace

SD_TEST(unary_activations_match_reference) {
  sdtest::Rng rng(7);
  auto x = rng.vec(1003, -9.f, 9.f);
  // Edges: saturation, underflow of the sigmoid, zero, and a dense sweep for the erf fit.
  for (float e : {-100.f, -88.5f, -30.f, -1e-6f, 0.f, 1e-6f, 30.f, 88.5f, 100.f}) x.push_back(e);
  for (int i = -6000; i <= 6000; ++i) x.push_back(static_cast<float>(i) * 1e-3f);
  const int64_t n = static_cast<int64_t>(x.size());
  for (sd::Unary op : {sd::Unary::Silu, sd::Unary::Gelu, sd::Unary::QuickGelu}) {
    std::vector<double> ref(x.size());
    for (size_t i = 0; i < x.size(); ++i) ref[i] = ref_unary(op, x[i]);
    misctest::for_each_config([&](sd::Isa isa, int threads, sd::Backend& be) {
      std::vector<float> y(x.size());
      auto tx = view(x, {n}), ty = view(y, {n});
      be.unary(ty, tx, op);
      // |err| <= 2e-6 * max(|ref|, 1): the SIMD erf is within 1e-6 absolute, exp within ~2 ulp.
      const double err = misctest::max_mixed_err(y, ref);
      SD_CHECK(err <= 2e-6) << sd::isa_name(isa) << " threads " << threads << " op "
                            << static_cast<int>(op) << " err " << err;
      if (op == sd::Unary::Gelu) {
        // The erf inside: gelu = x/2 (1 + erf(x/sqrt2)), so |d erf| = 2 |d gelu| / |x|; where
        // that is well conditioned (|x| >= 0.5) it must be within 1e-6 absolute.
        double erf_err = 0;
        for (size_t i = 0; i < x.size(); ++i)
          if (std::fabs(x[i]) >= 0.5f) erf_err = std::fmax(erf_err, 2.0 * std::fabs(y[i] - ref[i]) / std::fabs(x[i]));
        SD_CHECK(erf_err <= 1e-6) << sd::isa_name(isa) << " implied erf abs err " << erf_err;
      }
    });
  }
}

SD_TEST(geglu_matches_reference) {
  for (int64_t N : {1, 45, 160}) {
    const int64_t M = 7;
    sdtest::Rng rng(static_cast<uint64_t>(N));
    auto x = rng.vec(static_cast<size_t>(M * 2 * N), -4.f, 4.f);
    std::vector<double> ref(static_cast<size_t>(M * N));
    for (int64_t m = 0; m < M; ++m)
      for (int64_t i = 0; i < N; ++i)
        ref[m * N + i] = x[m * 2 * N + i] * ref_unary(sd::Unary::Gelu, x[m * 2 * N + N + i]);
    misctest::for_each_config([&](sd::Isa isa, int threads, sd::Backend& be) {
      std::vector<float> y(ref.size());
      auto tx = view(x, {M, 2 * N}), ty = view(y, {M, N});
      be.geglu(ty, tx);
      const double err = misctest::max_mixed_err(y, ref);
      SD_CHECK(err <= 2e-6) << sd::isa_name(isa) << " threads " << threads << " N " << N << " err " << err;
    });
  }
}

SD_TEST(add_mul_broadcast_match_reference) {
  struct Case { std::vector<int64_t> a, b; };
  const Case cases[] = {
      {{2, 3, 5, 7}, {2, 3, 5, 7}},  // same shape
      {{2, 5, 7, 3}, {2, 5, 1, 1}},  // [N,C,H,W] + [N,C,1,1] (time embedding into a ResBlock)
      {{37, 45}, {45}},              // [M,C] + [C] (bias)
      {{2, 3, 4, 5}, {3, 1, 5}},     // mixed
      {{2, 3, 4, 5}, {1}},           // scalar
      {{2, 1, 5}, {5}},              // size-1 dim in a
      {{1, 20000}, {20000}},         // inner dim longer than one task
      {{3, 2, 9}, {3, 1, 9}},        // broadcast in the middle
  };
  for (const Case& c : cases) {
    int64_t na = 1, nb = 1;
    for (auto d : c.a) na *= d;
    for (auto d : c.b) nb *= d;
    sdtest::Rng rng(static_cast<uint64_t>(na + nb));
    auto a = rng.vec(static_cast<size_t>(na)), b = rng.vec(static_cast<size_t>(nb));
    // Reference by explicit index arithmetic on 4-D padded shapes.
    int64_t ad[4] = {1, 1, 1, 1}, bd[4] = {1, 1, 1, 1};
    for (size_t i = 0; i < c.a.size(); ++i) ad[4 - c.a.size() + i] = c.a[i];
    for (size_t i = 0; i < c.b.size(); ++i) bd[4 - c.b.size() + i] = c.b[i];
    std::vector<float> ref_add(a.size()), ref_mul(a.size());
    for (int64_t i0 = 0; i0 < ad[0]; ++i0)
      for (int64_t i1 = 0; i1 < ad[1]; ++i1)
        for (int64_t i2 = 0; i2 < ad[2]; ++i2)
          for (int64_t i3 = 0; i3 < ad[3]; ++i3) {
            const int64_t ia = ((i0 * ad[1] + i1) * ad[2] + i2) * ad[3] + i3;
            const int64_t ib = (((bd[0] == 1 ? 0 : i0) * bd[1] + (bd[1] == 1 ? 0 : i1)) * bd[2] +
                                (bd[2] == 1 ? 0 : i2)) * bd[3] + (bd[3] == 1 ? 0 : i3);
            ref_add[ia] = a[ia] + b[ib];
            ref_mul[ia] = a[ia] * b[ib];
          }
    sd::Tensor ta(sd::DType::F32, {}, a.data()), tb(sd::DType::F32, {}, b.data());
    for (auto d : c.a) ta.shape[ta.ndim++] = d;
    for (auto d : c.b) tb.shape[tb.ndim++] = d;
    misctest::for_each_config([&](sd::Isa isa, int threads, sd::Backend& be) {
      std::vector<float> y(a.size());
      sd::Tensor ty = ta;
      ty.data = y.data();
      be.add(ty, ta, tb);
      SD_CHECK(y == ref_add) << sd::isa_name(isa) << " threads " << threads << " add " << ta.shape_str() << " + " << tb.shape_str();
      be.mul(ty, ta, tb);
      SD_CHECK(y == ref_mul) << sd::isa_name(isa) << " threads " << threads << " mul " << ta.shape_str() << " * " << tb.shape_str();
    });
  }
}
