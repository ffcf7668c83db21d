// GEMM paths (every weight dtype x every ISA level this CPU runs x odd shapes x 1..3 threads)
// against the scalar references in cpu/gemm.cpp, plus the integer block dots against GGML's own
// ggml_mul_mat results (test/fixtures/quant/mulmat.*.f32, see ../shared/fixtures/quant/README.md).
//
// Tolerances, per element, with S = sum_k |a_k| |w_k| (w dequantized):
// - f32 / f16 / dequantized q8_0 / q4_0 (float path): |c - ref| <= 1e-5 S. The reference sums in
//   f64 on the same dequantized weights, so this only admits f32 rounding (~sqrt(K) eps S).
// - integer path vs gemm_reference_qact (same quantized activations, scalar): |c - ref| <= 1e-5 S.
// - integer path vs the f32 reference: the activation quantizer rounds x * 127/amax to an integer
//   (error <= amax/254) and stores d = amax/127 as f16 (relative error <= 2^-11, so <= amax/2048 on
//   q * d; absolute 127 * 2^-25 when d is an f16 subnormal). Per block b:
//   |e| <= amax_b (1/254 + 1/2048) + 127 * 2^-25 <= amax_b / 226 + 4e-6, hence
//   |c - ref| <= sum_b (amax_b / 226 + 4e-6) ||w_b||_1 + 1e-5 S. This bound is checked for every
//   element; the worst observed fraction of it is printed.
// - against GGML's mulmat fixture: |c - ggml| <= 2e-6 S (f32 accumulation order differs from
//   GGML's 8-lane AVX2 sum; the integer sums are exact); non-finite entries must be non-finite.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "core/fp16.h"
#include "core/quant.h"
#include "cpu/cpu_backend.h"
#include "cpu/gemm.h"
#include "tests/test.h"

namespace {

using sd::DType;
using sd::Isa;

struct Shape { int64_t M, N, K; };

const Shape kShapes[] = {{1, 1, 32},  {3, 5, 4},    {5, 7, 36},    {13, 33, 64},  {2, 130, 320},
                         {37, 50, 96}, {29, 97, 800}, {70, 45, 1088}, {154, 40, 768}};
const DType kTypes[] = {DType::F32, DType::F16, DType::Q8_0, DType::Q4_0};
const Isa kIsas[] = {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon, Isa::Dotprod};

struct Problem {
  Shape s;
  DType t;
  int64_t lda, ldc;
  std::vector<float> A, bias, wdeq;  // wdeq: W dequantized, N x K
  std::vector<uint8_t> W;
  std::vector<float> S;              // sum_k |a||w| per element
};

Problem make_problem(Shape s, DType t, uint64_t seed) {
  Problem p;
  p.s = s;
  p.t = t;
  p.lda = s.K + 3;
  p.ldc = s.N + 5;
  sdtest::Rng rng(seed);
  p.A = rng.vec(static_cast<size_t>(s.M * p.lda));
  p.bias = rng.vec(static_cast<size_t>(s.N));
  const std::vector<float> w = rng.vec(static_cast<size_t>(s.N * s.K));
  const size_t rb = sd::dtype_row_bytes(t, s.K);
  p.W.resize(rb * s.N);
  p.wdeq.resize(w.size());
  for (int64_t n = 0; n < s.N; ++n) {
    sd::from_f32_row(t, w.data() + n * s.K, p.W.data() + n * rb, s.K);
    sd::to_f32_row(t, p.W.data() + n * rb, p.wdeq.data() + n * s.K, s.K);
  }
  std::vector<float> absA(p.A.size()), absW(p.wdeq.size());
  for (size_t i = 0; i < absA.size(); ++i) absA[i] = std::fabs(p.A[i]);
  for (size_t i = 0; i < absW.size(); ++i) absW[i] = std::fabs(p.wdeq[i]);
  p.S.resize(static_cast<size_t>(s.M * s.N));
  sd::gemm_reference(s.M, s.N, s.K, absA.data(), p.lda, absW.data(), DType::F32, nullptr, p.S.data(), s.N);
  return p;
}

// Runs gemm into a C with row padding filled with a sentinel, checks the padding is untouched.
std::vector<float> run_gemm(sd::CpuBackend& be, const Problem& p) {
  std::vector<float> C(static_cast<size_t>(p.s.M * p.ldc), 12345.0f);
  sd::gemm(be, p.s.M, p.s.N, p.s.K, p.A.data(), p.lda, p.W.data(), p.t, p.bias.data(), C.data(), p.ldc);
  bool pad_ok = true;
  for (int64_t m = 0; m < p.s.M; ++m)
    for (int64_t n = p.s.N; n < p.ldc; ++n) pad_ok = pad_ok && C[m * p.ldc + n] == 12345.0f;
  SD_CHECK(pad_ok) << "gemm wrote past N in a row";
  return C;
}

std::vector<float> reference(const Problem& p, bool qact) {
  std::vector<float> C(static_cast<size_t>(p.s.M * p.ldc), 0.0f);
  (qact ? sd::gemm_reference_qact : sd::gemm_reference)(p.s.M, p.s.N, p.s.K, p.A.data(), p.lda, p.W.data(),
                                                         p.t, p.bias.data(), C.data(), p.ldc);
  return C;
}

// Max over elements of |c - ref| / tol(m, n); <= 1 passes.
template <typename Tol>
double worst_ratio(const Problem& p, const std::vector<float>& c, const std::vector<float>& ref, Tol tol) {
  double worst = 0;
  for (int64_t m = 0; m < p.s.M; ++m)
    for (int64_t n = 0; n < p.s.N; ++n) {
      const double d = std::fabs(double(c[m * p.ldc + n]) - ref[m * p.ldc + n]);
      const double r = std::isnan(d) ? INFINITY : d / tol(m, n);
      if (r > worst) worst = r;
    }
  return worst;
}

std::string label(const Problem& p, Isa isa, int threads, bool int_path) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s %s M=%lld N=%lld K=%lld threads=%d %s", sd::isa_name(isa),
                sd::dtype_name(p.t), (long long)p.s.M, (long long)p.s.N, (long long)p.s.K, threads,
                int_path ? "int" : "float");
  return buf;
}

// The activation-quantization bound of the header comment, per element.
std::vector<double> qact_bound(const Problem& p) {
  const int64_t nb = p.s.K / 32;
  std::vector<double> amax(static_cast<size_t>(p.s.M * nb)), w1(static_cast<size_t>(p.s.N * nb));
  for (int64_t m = 0; m < p.s.M; ++m)
    for (int64_t b = 0; b < nb; ++b) {
      double a = 0;
      for (int j = 0; j < 32; ++j) a = std::fmax(a, std::fabs(p.A[m * p.lda + b * 32 + j]));
      amax[m * nb + b] = a;
    }
  for (int64_t n = 0; n < p.s.N; ++n)
    for (int64_t b = 0; b < nb; ++b) {
      double s = 0;
      for (int j = 0; j < 32; ++j) s += std::fabs(p.wdeq[n * p.s.K + b * 32 + j]);
      w1[n * nb + b] = s;
    }
  std::vector<double> bound(static_cast<size_t>(p.s.M * p.s.N));
  for (int64_t m = 0; m < p.s.M; ++m)
    for (int64_t n = 0; n < p.s.N; ++n) {
      double e = 1e-5 * p.S[m * p.s.N + n];
      for (int64_t b = 0; b < nb; ++b) e += (amax[m * nb + b] / 226 + 4e-6) * w1[n * nb + b];
      bound[m * p.s.N + n] = e;
    }
  return bound;
}

void check_paths(DType t, sd::GemmQuantPath path) {
  const bool quant = sd::dtype_is_quantized(t);
  const Isa saved = sd::isa_active();
  double worst_qbound = 0;
  std::string ran;
  for (const Shape& s : kShapes) {
    if (quant && s.K % 32 != 0) continue;
    const Problem p = make_problem(s, t, static_cast<uint64_t>(s.M * 1000003 + s.N * 1009 + s.K));
    const std::vector<float> ref = reference(p, false);
    std::vector<float> ref_q;
    std::vector<double> qb;
    for (Isa isa : kIsas) {
      if (!sd::isa_force(isa)) continue;
      sd::gemm_force_quant_path(path);
      const bool int_path = sd::gemm_uses_int_path(t, s.M, s.N, s.K);
      if (quant && path == sd::GemmQuantPath::Int && !int_path) continue;  // no int kernel here
      if (ran.find(sd::isa_name(isa)) == std::string::npos) ran += std::string(" ") + sd::isa_name(isa);
      if (int_path && ref_q.empty()) {
        ref_q = reference(p, true);
        qb = qact_bound(p);
      }
      std::vector<float> first;
      for (int threads = 1; threads <= 3; ++threads) {
        sd::CpuBackend be(threads);
        const std::vector<float> c = run_gemm(be, p);
        const std::string what = label(p, isa, threads, int_path);
        const auto tol_f = [&](int64_t m, int64_t n) { return 1e-5 * p.S[m * s.N + n] + 1e-30; };
        if (!int_path) {
          const double r = worst_ratio(p, c, ref, tol_f);
          SD_CHECK(r <= 1.0) << what << ": error " << r << " x tolerance vs gemm_reference";
        } else {
          const double rq = worst_ratio(p, c, ref_q, tol_f);
          SD_CHECK(rq <= 1.0) << what << ": error " << rq << " x tolerance vs gemm_reference_qact";
          const double rb = worst_ratio(p, c, ref, [&](int64_t m, int64_t n) { return qb[m * s.N + n]; });
          SD_CHECK(rb <= 1.0) << what << ": error " << rb << " x the activation-quantization bound";
          if (rb > worst_qbound) worst_qbound = rb;
        }
        if (threads == 1) first = c;
        else SD_CHECK(std::memcmp(first.data(), c.data(), c.size() * 4) == 0) << what << ": differs from 1 thread";
      }
    }
  }
  sd::gemm_force_quant_path(sd::GemmQuantPath::Auto);
  sd::isa_force(saved);
  std::printf("     %s %s: levels run:%s\n", sd::dtype_name(t), quant ? (path == sd::GemmQuantPath::Int ? "int" : "float") : "",
              ran.empty() ? " none (no kernel for this path here)" : ran.c_str());
  if (worst_qbound > 0)
    std::printf("     %s int path: worst error = %.3f of the activation-quantization bound\n", sd::dtype_name(t),
                worst_qbound);
}

std::vector<uint8_t> fixture(const char* name) {
  std::vector<uint8_t> bytes;
  const std::string path = sdtest::fixtures_dir() + "/quant/" + name;
  SD_CHECK(sdtest::read_file(path, &bytes)) << "cannot read " << path;
  return bytes;
}

// GGML's ggml_mul_mat(W = rows.<type>, X = rows.f32): out[x_row * 64 + w_row].
void check_ggml_mulmat(DType t, const char* wfile, const char* outfile) {
  const std::vector<uint8_t> xb = fixture("rows.f32"), wb = fixture(wfile), ob = fixture(outfile);
  if (xb.size() != 64 * 256 * 4 || ob.size() != 64 * 64 * 4 || wb.size() != 64 * sd::dtype_row_bytes(t, 256)) {
    SD_CHECK(false) << "fixture sizes";
    return;
  }
  std::vector<float> X(64 * 256), G(64 * 64), wdeq(64 * 256), S(64 * 64);
  std::memcpy(X.data(), xb.data(), xb.size());
  std::memcpy(G.data(), ob.data(), ob.size());
  for (int r = 0; r < 64; ++r) sd::to_f32_row(t, wb.data() + r * sd::dtype_row_bytes(t, 256), wdeq.data() + r * 256, 256);
  std::vector<float> absX(X), absW(wdeq);
  for (auto& v : absX) v = std::fabs(v);
  for (auto& v : absW) v = std::fabs(v);
  sd::gemm_reference(64, 64, 256, absX.data(), 256, absW.data(), DType::F32, nullptr, S.data(), 64);
  const auto check = [&](const std::vector<float>& C, const std::string& what) {
    int bad = 0, exact = 0, finite = 0;
    double worst = 0;
    for (int i = 0; i < 64 * 64; ++i) {
      if (!std::isfinite(G[i])) {
        bad += std::isfinite(C[i]) ? 1 : 0;
        continue;
      }
      ++finite;
      exact += C[i] == G[i];
      const double r = std::fabs(double(C[i]) - G[i]) / (2e-6 * S[i] + 1e-30);
      if (!(r <= 1.0)) ++bad;
      if (r > worst || std::isnan(r)) worst = std::isnan(r) ? INFINITY : r;
    }
    SD_CHECK(bad == 0) << what << ": " << bad << " entries off GGML's mulmat, worst " << worst << " x tol";
    std::printf("     %s: %d/%d finite entries bit-equal to GGML, worst %.3f x tol\n", what.c_str(), exact, finite, worst);
  };
  std::vector<float> C(64 * 64);
  const Isa saved = sd::isa_active();
  sd::gemm_reference_qact(64, 64, 256, X.data(), 256, wb.data(), t, nullptr, C.data(), 64);
  check(C, std::string("reference_qact ") + sd::dtype_name(t));
  for (Isa isa : kIsas) {
    if (!sd::isa_force(isa)) continue;
    sd::gemm_force_quant_path(sd::GemmQuantPath::Int);
    if (sd::gemm_uses_int_path(t, 64, 64, 256)) {
      sd::CpuBackend be(2);
      sd::gemm(be, 64, 64, 256, X.data(), 256, wb.data(), t, nullptr, C.data(), 64);
      check(C, std::string(sd::isa_name(isa)) + " int " + sd::dtype_name(t));
    }
  }
  sd::gemm_force_quant_path(sd::GemmQuantPath::Auto);
  sd::isa_force(saved);
}

// q8_0 weights at the ends of the int8 range (-128 is legal in a q8_0 file though GGML's quantizer
// never writes it) against activations that quantize to +-127: the products that saturate
// vpmaddubsw-style 16-bit pair sums. Every level's integer path against gemm_reference_qact.
void check_q8_0_extremes() {
  const int64_t M = 13, N = 17, K = 96, nb = K / 32;
  sdtest::Rng rng(99);
  std::vector<sd::block_q8_0> W(static_cast<size_t>(N * nb));
  const int8_t ends[] = {-128, -127, 127};
  for (auto& blk : W) {
    blk.d = sd::fp32_to_fp16(rng.uniform(0.5f, 2.0f));
    for (auto& q : blk.qs) q = rng.uniform() < 0.8f ? ends[rng.next() % 3] : static_cast<int8_t>(rng.next());
  }
  std::vector<float> A(static_cast<size_t>(M * K)), wdeq(static_cast<size_t>(N * K)), S(static_cast<size_t>(M * N));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k)  // +-amax per block, so q = +-127; one block of zeros (d = 0)
      A[m * K + k] = (m == 3 && k < 32) ? 0.0f : ((rng.next() & 1) ? 1.5f : -1.5f);
  for (int64_t n = 0; n < N; ++n) sd::to_f32_row(DType::Q8_0, &W[n * nb], wdeq.data() + n * K, K);
  std::vector<float> absA(A), absW(wdeq);
  for (auto& v : absA) v = std::fabs(v);
  for (auto& v : absW) v = std::fabs(v);
  sd::gemm_reference(M, N, K, absA.data(), K, absW.data(), DType::F32, nullptr, S.data(), N);
  std::vector<float> ref(static_cast<size_t>(M * N)), C(ref.size());
  sd::gemm_reference_qact(M, N, K, A.data(), K, W.data(), DType::Q8_0, nullptr, ref.data(), N);
  const Isa saved = sd::isa_active();
  std::string ran;
  for (Isa isa : kIsas) {
    if (!sd::isa_force(isa)) continue;
    sd::gemm_force_quant_path(sd::GemmQuantPath::Int);
    if (!sd::gemm_uses_int_path(DType::Q8_0, M, N, K)) continue;
    ran += std::string(" ") + sd::isa_name(isa);
    sd::CpuBackend be(2);
    sd::gemm(be, M, N, K, A.data(), K, W.data(), DType::Q8_0, nullptr, C.data(), N);
    double worst = 0;
    for (size_t i = 0; i < C.size(); ++i) {
      const double r = std::fabs(double(C[i]) - ref[i]) / (1e-5 * S[i] + 1e-30);
      worst = std::isnan(r) ? INFINITY : std::fmax(worst, r);
    }
    SD_CHECK(worst <= 1.0) << sd::isa_name(isa) << " int q8_0 extremes: error " << worst << " x tolerance";
  }
  sd::gemm_force_quant_path(sd::GemmQuantPath::Auto);
  sd::isa_force(saved);
  std::printf("     q8_0 extremes: levels run:%s\n", ran.empty() ? " none" : ran.c_str());
}

}  // namespace

SD_TEST(gemm_f32) { check_paths(DType::F32, sd::GemmQuantPath::Auto); }
SD_TEST(gemm_f16) { check_paths(DType::F16, sd::GemmQuantPath::Auto); }
SD_TEST(gemm_q8_0_float_path) { check_paths(DType::Q8_0, sd::GemmQuantPath::Float); }
SD_TEST(gemm_q4_0_float_path) { check_paths(DType::Q4_0, sd::GemmQuantPath::Float); }
SD_TEST(gemm_q8_0_int_path) { check_paths(DType::Q8_0, sd::GemmQuantPath::Int); }
SD_TEST(gemm_q4_0_int_path) { check_paths(DType::Q4_0, sd::GemmQuantPath::Int); }
SD_TEST(gemm_q8_0_int_extremes) { check_q8_0_extremes(); }
SD_TEST(gemm_q8_0_vs_ggml_mulmat) { check_ggml_mulmat(DType::Q8_0, "rows.q8_0", "mulmat.q8_0.f32"); }
SD_TEST(gemm_q4_0_vs_ggml_mulmat) { check_ggml_mulmat(DType::Q4_0, "rows.q4_0", "mulmat.q4_0.f32"); }
