// Attention on every ISA level vs a naive double-precision attention that materialises the full
// score matrix (test only), including causal masking, cross-attention, odd head sizes and the
// sizes SD uses; plus bitwise independence from the thread count.
#include <cmath>

#include "tests/misc_test_util.h"
#include "tests/test.h"

using misctest::view;

namespace {

struct Shape { int64_t B, Nq, Nk, H, D; bool causal; };

// Rows [r0, r1) of every (b, h); y has the full [B, Nq, H*D] layout (other rows left 0).
std::vector<double> naive_attention(const Shape& s, const std::vector<float>& q,
                                    const std::vector<float>& k, const std::vector<float>& v,
                                    int64_t r0, int64_t r1) {
  const int64_t HD = s.H * s.D;
  std::vector<double> y(static_cast<size_t>(s.B * s.Nq * HD), 0.0);
  std::vector<double> scores(static_cast<size_t>((r1 - r0) * s.Nk));  // [rows, Nk]
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h) {
      for (int64_t i = r0; i < r1; ++i)
        for (int64_t j = 0; j < s.Nk; ++j) {
          double acc = 0;
          for (int64_t d = 0; d < s.D; ++d)
            acc += static_cast<double>(q[(b * s.Nq + i) * HD + h * s.D + d]) * k[(b * s.Nk + j) * HD + h * s.D + d];
          scores[(i - r0) * s.Nk + j] = (s.causal && j > i) ? -INFINITY : acc / std::sqrt(static_cast<double>(s.D));
        }
      for (int64_t i = r0; i < r1; ++i) {
        double* row = &scores[(i - r0) * s.Nk];
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < s.Nk; ++j) mx = std::fmax(mx, row[j]);
        for (int64_t j = 0; j < s.Nk; ++j) sum += (row[j] = std::exp(row[j] - mx));
        for (int64_t d = 0; d < s.D; ++d) {
          double acc = 0;
          for (int64_t j = 0; j < s.Nk; ++j) acc += row[j] * v[(b * s.Nk + j) * HD + h * s.D + d];
          y[(b * s.Nq + i) * HD + h * s.D + d] = acc / sum;
        }
      }
    }
  return y;
}

// Max error over rows [r0, r1) relative to the largest |reference| there.
double rows_rel_err(const Shape& s, const std::vector<float>& y, const std::vector<double>& ref,
                    int64_t r0, int64_t r1) {
  const int64_t HD = s.H * s.D;
  double scale = 1e-30, err = 0;
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t i = r0; i < r1; ++i)
      for (int64_t c = 0; c < HD; ++c) {
        const size_t at = static_cast<size_t>((b * s.Nq + i) * HD + c);
        scale = std::fmax(scale, std::fabs(ref[at]));
        const double d = std::fabs(y[at] - ref[at]);
        if (!(d <= err)) err = std::isnan(d) ? INFINITY : d;
      }
  return err / scale;
}

void check_attention(const Shape& s, float qk_range, int64_t r0, int64_t r1) {
  sdtest::Rng rng(static_cast<uint64_t>(s.Nq * 1000 + s.Nk * 10 + s.D));
  const int64_t HD = s.H * s.D;
  auto q = rng.vec(static_cast<size_t>(s.B * s.Nq * HD), -qk_range, qk_range);
  auto k = rng.vec(static_cast<size_t>(s.B * s.Nk * HD), -qk_range, qk_range);
  auto v = rng.vec(static_cast<size_t>(s.B * s.Nk * HD));
  const auto ref = naive_attention(s, q, k, v, r0, r1);
  misctest::for_each_config([&](sd::Isa isa, int threads, sd::Backend& be) {
    std::vector<float> y(q.size());
    auto tq = view(q, {s.B, s.Nq, HD}), tk = view(k, {s.B, s.Nk, HD}), tv = view(v, {s.B, s.Nk, HD});
    auto ty = view(y, {s.B, s.Nq, HD});
    be.attention(ty, tq, tk, tv, static_cast<int>(s.H), s.causal);
    const double err = rows_rel_err(s, y, ref, r0, r1);
    SD_CHECK(err <= 1e-5) << sd::isa_name(isa) << " threads " << threads << " B" << s.B << " Nq" << s.Nq
                          << " Nk" << s.Nk << " H" << s.H << " D" << s.D << (s.causal ? " causal" : "")
                          << " rel err " << err;
    if (threads == 3) {  // same bits as one thread
      auto be1 = sd::make_cpu_backend(1);
      std::vector<float> y1(q.size());
      auto ty1 = view(y1, {s.B, s.Nq, HD});
      be1->attention(ty1, tq, tk, tv, static_cast<int>(s.H), s.causal);
      SD_CHECK(y1 == y) << sd::isa_name(isa) << " result depends on the thread count";
    }
  });
}

}  // namespace

SD_TEST(attention_self_and_cross_match_naive) {
  check_attention({2, 100, 100, 2, 40, false}, 1.f, 0, 100);  // UNet self-attention head size
  check_attention({2, 130, 77, 2, 80, false}, 1.f, 0, 130);   // cross-attention over 77 tokens
  check_attention({1, 70, 154, 1, 160, false}, 1.f, 0, 70);   // 2 x 77 prompt chunks
  check_attention({2, 300, 231, 2, 160, false}, 1.f, 0, 300); // 3 x 77, two query chunks
  check_attention({1, 65, 65, 1, 512, false}, 0.3f, 0, 65);   // VAE mid-block: one head of 512
  check_attention({3, 9, 5, 3, 3, false}, 1.f, 0, 9);         // odd tiny head
  check_attention({1, 17, 1, 2, 8, false}, 1.f, 0, 17);       // a single key
}

SD_TEST(attention_causal_matches_naive) {
  check_attention({2, 77, 77, 3, 64, true}, 1.f, 0, 77);  // CLIP text encoder (fewer heads)
  check_attention({1, 300, 300, 1, 24, true}, 2.f, 0, 300);  // spans two query chunks
  check_attention({1, 300, 300, 1, 112, true}, 1.f, 0, 300);  // big-head path (key tiles outer)
  // K/V over 1 MB: the SIMD kernel runs one head per task instead of all heads together.
  check_attention({1, 90, 90, 16, 96, true}, 1.f, 0, 90);
}

SD_TEST(attention_peaked_scores_match_naive) {
  // Large logits: the running max moves often and most weights underflow.
  check_attention({1, 90, 200, 2, 40, false}, 4.f, 0, 90);
  // Logits spread over ~100 (std 16): many weights fall under 2^-64 of the row's largest, which the
  // SIMD kernels flush to 0 (denormals would trap to microcode). Wider ranges are limited by the
  // float rounding of the scores themselves (~1e-7 * range^2 relative), not by the kernels.
  check_attention({2, 70, 300, 2, 40, false}, 7.f, 0, 70);
}

SD_TEST(attention_4096_keys) {
  // SD's self-attention length on the key side (long online-softmax accumulation), with enough
  // queries for two query chunks; kept to 300 queries so the scalar oracle stays quick under qemu.
  check_attention({1, 300, 4096, 1, 40, false}, 1.f, 0, 300);
}
