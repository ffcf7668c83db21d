// Integer-dot conv2d (q8_0 / q4_0 weights): every ISA level that has the path x stride/pad
// variants x odd shapes x batch 1, 2 x 1 and 3 threads, against
//  - conv2d_reference_qact (the same quantized activations and integer block sums, scalar): the
//    integer sums are exact, so the only difference is f32 rounding of the nb per-block terms
//    t_b = isum_b * (d_w * d_a) and the bias in another order (the kernel fuses the multiply-add
//    and adds per K chunk): each side is within gamma_(nb+2) * (sum_b |t_b| + |bias|), so
//    |y - ref| <= 2 (nb + 3) 2^-24 (sum_b |t_b| + |bias|);
//  - conv2d_reference (f32 activations, f64 sums): the activation-quantization bound of
//    gemm_test.cpp per block of each pixel's patch, |y - ref| <= sum_b (amax_b / 226 + 4e-6)
//    ||w_b||_1 + 1e-5 S, S = sum |x w| + |bias|; the worst fraction of it is printed.
// Plus: the portable im2col / transpose give the ISA helpers' bits, 1x1 convs equal
// gemm_reference_qact on the transposed input (the reference means what the GEMM means), and the
// dispatch in conv2d_cpu.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "core/quant.h"
#include "cpu/conv.h"
#include "cpu/conv_int8.h"
#include "cpu/cpu_backend.h"
#include "cpu/gemm.h"
#include "tests/test.h"

namespace {

using sd::ConvGeom;
using sd::DType;

struct Variant {
  int k, stride, pad_top, pad_left, extra;  // extra: bottom/right-only zero padding
  const char* name;
};

const Variant kVariants[] = {
    {3, 1, 1, 1, 0, "3x3 s1 p1"},
    {3, 2, 1, 1, 0, "3x3 s2 p1"},
    {1, 1, 0, 0, 0, "1x1"},
    {3, 2, 0, 0, 1, "3x3 s2 pad(0,1,0,1)"},
};

ConvGeom make_geom(const Variant& v, int64_t n, int64_t ci, int64_t co, int64_t h, int64_t w) {
  ConvGeom g{n, ci, h, w, co, 0, 0, v.k, v.stride, v.pad_top, v.pad_left};
  const int64_t ph = v.extra ? v.extra : 2 * v.pad_top, pw = v.extra ? v.extra : 2 * v.pad_left;
  g.Ho = (h + ph - v.k) / v.stride + 1;
  g.Wo = (w + pw - v.k) / v.stride + 1;
  return g;
}

struct Shape { int64_t ci, co, h, w; };

// Widths from 1 to 41, pixel counts that leave partial tiles, K from 32 to 9504 (one to ten K
// chunks, 1x1 with Ci = 1056 two), Co = 700 two channel blocks with a partial panel.
const Shape kShapes[] = {{32, 13, 7, 5},  {64, 20, 13, 9}, {96, 14, 11, 6}, {32, 10, 15, 19},
                         {32, 10, 6, 41}, {32, 3, 1, 2},   {160, 40, 9, 7}, {32, 700, 3, 4},
                         {288, 33, 5, 6}, {1056, 5, 3, 3}};

std::vector<uint8_t> make_weights(const std::vector<float>& wf, int64_t co, int64_t K, DType t) {
  const size_t rb = sd::dtype_row_bytes(t, K);
  std::vector<uint8_t> out(rb * static_cast<size_t>(co));
  for (int64_t r = 0; r < co; ++r) sd::from_f32_row(t, wf.data() + r * K, out.data() + r * rb, K);
  return out;
}

// The activation-quantization bound of the header comment, per output (test-local im2col).
std::vector<double> qact_bound(const ConvGeom& g, const std::vector<float>& x,
                               const std::vector<float>& wdeq, const std::vector<double>& S) {
  const int64_t K = g.Ci * g.k * g.k, nb = K / 32, P = g.Ho * g.Wo;
  std::vector<double> w1(static_cast<size_t>(g.Co * nb), 0.0);
  for (int64_t co = 0; co < g.Co; ++co)
    for (int64_t k = 0; k < K; ++k) w1[co * nb + k / 32] += std::fabs(wdeq[co * K + k]);
  std::vector<double> bound(S.size()), amax(static_cast<size_t>(nb));
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t p = 0; p < P; ++p) {
      const int64_t oy = p / g.Wo, ox = p % g.Wo;
      std::fill(amax.begin(), amax.end(), 0.0);
      for (int64_t k = 0; k < K; ++k) {
        const int64_t ci = k / (g.k * g.k), ky = (k / g.k) % g.k, kx = k % g.k;
        const int64_t iy = oy * g.stride + ky - g.pad_top, ix = ox * g.stride + kx - g.pad_left;
        if (iy < 0 || iy >= g.H || ix < 0 || ix >= g.W) continue;
        amax[k / 32] = std::fmax(amax[k / 32], std::fabs(x[((n * g.Ci + ci) * g.H + iy) * g.W + ix]));
      }
      for (int64_t co = 0; co < g.Co; ++co) {
        const size_t o = static_cast<size_t>((n * g.Co + co) * P + p);
        double e = 1e-5 * S[o];
        for (int64_t b = 0; b < nb; ++b) e += (amax[b] / 226 + 4e-6) * w1[co * nb + b];
        bound[o] = e;
      }
    }
  return bound;
}

struct IsaGuard {
  ~IsaGuard() {
    sd::isa_force(sd::isa_best());
    sd::conv_force_quant_path(sd::ConvQuantPath::Auto);
    sd::conv_int8_force_portable_helpers(false);
  }
};

}  // namespace

SD_TEST(conv_int8_matches_reference) {
  IsaGuard guard;
  sd::conv_force_quant_path(sd::ConvQuantPath::Int);
  sd::CpuBackend be1(1), be3(3);
  int int_runs = 0;
  double worst_q = 0, worst_b = 0;
  std::string levels;
  for (const Variant& v : kVariants)
    for (const Shape& s : kShapes)
      for (int64_t n : {1, 2}) {
        const ConvGeom g = make_geom(v, n, s.ci, s.co, s.h, s.w);
        const int64_t K = s.ci * v.k * v.k, nb = K / 32;
        sdtest::Rng rng(static_cast<uint64_t>(K * 131 + s.co * 7 + n + v.stride * 3 + v.extra + s.w));
        const std::vector<float> x = rng.vec(static_cast<size_t>(n * s.ci * s.h * s.w));
        const std::vector<float> wf = rng.vec(static_cast<size_t>(s.co * K), -0.3f, 0.3f);
        const std::vector<float> bias = rng.vec(static_cast<size_t>(s.co));
        const size_t ny = static_cast<size_t>(n * s.co * g.Ho * g.Wo);
        for (DType t : {DType::Q8_0, DType::Q4_0}) {
          const std::vector<uint8_t> w = make_weights(wf, s.co, K, t);
          std::vector<float> wdeq(wf.size());
          for (int64_t r = 0; r < s.co; ++r)
            sd::to_f32_row(t, w.data() + r * sd::dtype_row_bytes(t, K), wdeq.data() + r * K, K);
          for (int with_bias = 0; with_bias < 2; ++with_bias) {
            const float* b = with_bias ? bias.data() : nullptr;
            std::vector<float> ref_q(ny), ref(ny);
            std::vector<double> mag(ny), S(ny);
            sd::conv2d_reference_qact(g, x.data(), w.data(), t, b, ref_q.data(), mag.data());
            sd::conv2d_reference(g, x.data(), w.data(), t, b, ref.data(), S.data());
            const std::vector<double> qb = qact_bound(g, x, wdeq, S);
            for (sd::Isa isa : {sd::Isa::Scalar, sd::Isa::Avx2, sd::Isa::Avx512, sd::Isa::Neon,
                                sd::Isa::Dotprod}) {
              if (!sd::isa_force(isa)) continue;
              char what[200];
              std::snprintf(what, sizeof what, "%s %s %s N=%lld Ci=%lld Co=%lld %lldx%lld bias=%d",
                            v.name, sd::dtype_name(t), sd::isa_name(isa), (long long)n,
                            (long long)s.ci, (long long)s.co, (long long)s.h, (long long)s.w,
                            with_bias);
              std::vector<float> y1(ny, NAN), y3(ny, NAN);
              const bool r1 = sd::conv2d_int8(be1, g, x.data(), w.data(), t, b, y1.data());
              // The portable im2col / transpose (the NEON levels' helpers) on 3 threads.
              sd::conv_int8_force_portable_helpers(true);
              const bool r3 = sd::conv2d_int8(be3, g, x.data(), w.data(), t, b, y3.data());
              sd::conv_int8_force_portable_helpers(false);
              SD_CHECK(r1 == r3 && r1 == sd::conv_uses_int_path(t, g.k)) << what << ": path choice";
              if (!r1) {
                bool untouched = true;
                for (size_t i = 0; i < ny; ++i) untouched = untouched && std::isnan(y1[i]);
                SD_CHECK(untouched) << what << ": wrote output but returned false";
                continue;
              }
              const std::string lv = std::string(" ") + sd::isa_name(isa) + "/" + sd::dtype_name(t);
              if (levels.find(lv) == std::string::npos) levels += lv;
              ++int_runs;
              const double u = 2.0 * static_cast<double>(nb + 3) * std::ldexp(1.0, -24);
              size_t bad_q = 0, bad_b = 0, first = 0;
              for (size_t i = 0; i < ny; ++i) {
                const double dq = std::fabs(double(y1[i]) - ref_q[i]);
                const double rq = dq / (u * mag[i] + 1e-30), rb = std::fabs(double(y1[i]) - ref[i]) / qb[i];
                if (!(rq <= 1.0)) { if (!bad_q) first = i; ++bad_q; }
                if (!(rb <= 1.0)) ++bad_b;
                if (rq > worst_q) worst_q = rq;
                if (rb > worst_b) worst_b = rb;
              }
              SD_CHECK(bad_q == 0) << what << ": " << bad_q << " outside the qact-reference bound, first at "
                                   << first << " got " << y1[first] << " want " << ref_q[first];
              SD_CHECK(bad_b == 0) << what << ": " << bad_b << " outside the activation-quantization bound";
              SD_CHECK(std::memcmp(y1.data(), y3.data(), ny * 4) == 0)
                  << what << ": 1 thread and 3 threads with the portable helpers differ";
              // conv2d_cpu dispatches to the same path.
              std::vector<float> yc(ny, NAN);
              sd::conv2d_cpu(be3, g, x.data(), w.data(), t, b, yc.data());
              SD_CHECK(std::memcmp(y1.data(), yc.data(), ny * 4) == 0) << what << ": conv2d_cpu differs";
            }
          }
        }
      }
  std::printf("     integer path levels:%s; %d runs; worst %.3f of the qact-reference bound, %.3f of "
              "the activation-quantization bound\n", levels.empty() ? " none" : levels.c_str(), int_runs,
              worst_q, worst_b);
#if defined(SDNODE_HAVE_AVX512)
  if (sd::isa_supported(sd::Isa::Avx512)) SD_CHECK(int_runs > 0) << "AVX-512 machine ran no integer conv";
#endif
}

// A 1x1 conv is the GEMM of the transposed input with the weights: the conv oracle gives
// gemm_reference_qact's bits (so the conv path means exactly what the quantized GEMM means).
SD_TEST(conv_int8_reference_is_the_gemm_reference) {
  const int64_t Ci = 96, Co = 11, H = 5, W = 7, P = H * W;
  sdtest::Rng rng(77);
  const std::vector<float> x = rng.vec(static_cast<size_t>(Ci * P)), bias = rng.vec(Co);
  const std::vector<float> wf = rng.vec(static_cast<size_t>(Co * Ci), -0.3f, 0.3f);
  std::vector<float> xt(x.size());
  for (int64_t c = 0; c < Ci; ++c)
    for (int64_t p = 0; p < P; ++p) xt[p * Ci + c] = x[c * P + p];
  for (DType t : {DType::Q8_0, DType::Q4_0}) {
    const std::vector<uint8_t> w = make_weights(wf, Co, Ci, t);
    std::vector<float> yc(static_cast<size_t>(Co * P)), yg(static_cast<size_t>(P * Co));
    const ConvGeom g{1, Ci, H, W, Co, H, W, 1, 1, 0, 0};
    sd::conv2d_reference_qact(g, x.data(), w.data(), t, bias.data(), yc.data());
    sd::gemm_reference_qact(P, Co, Ci, xt.data(), Ci, w.data(), t, bias.data(), yg.data(), Co);
    bool same = true;
    for (int64_t p = 0; p < P; ++p)
      for (int64_t co = 0; co < Co; ++co) same = same && yc[co * P + p] == yg[p * Co + co];
    SD_CHECK(same) << sd::dtype_name(t) << ": conv and GEMM qact references differ";
  }
}

// Float turns the integer path off at every level, Int on where a kernel exists; Auto follows
// SDNODE_CONV_INT8.
SD_TEST(conv_int8_force_path) {
  IsaGuard guard;
  sd::CpuBackend be(2);
  const ConvGeom g{1, 32, 4, 4, 8, 4, 4, 3, 1, 1, 1};
  sdtest::Rng rng(3);
  const std::vector<float> x = rng.vec(32 * 16), wf = rng.vec(8 * 288);
  const std::vector<uint8_t> w = make_weights(wf, 8, 288, DType::Q8_0);
  std::vector<float> y(8 * 16, NAN);
  sd::conv_force_quant_path(sd::ConvQuantPath::Float);
  SD_CHECK(!sd::conv2d_int8(be, g, x.data(), w.data(), DType::Q8_0, nullptr, y.data()));
  SD_CHECK(std::isnan(y[0]));
  SD_CHECK(!sd::conv_uses_int_path(DType::Q4_0, 3));
  const char* env = std::getenv("SDNODE_CONV_INT8");
  const bool env_on = env && env[0] == '1';
  if (sd::isa_force(sd::Isa::Avx512)) {
    sd::conv_force_quant_path(sd::ConvQuantPath::Auto);
    SD_CHECK(sd::conv_uses_int_path(DType::Q8_0, 3) == env_on);
    SD_CHECK(sd::conv_uses_int_path(DType::Q4_0, 1) == env_on);
    SD_CHECK(!sd::conv_uses_int_path(DType::F16, 3));
    sd::conv_force_quant_path(sd::ConvQuantPath::Int);
    SD_CHECK(sd::conv_uses_int_path(DType::Q8_0, 1) && sd::conv_uses_int_path(DType::Q4_0, 3));
    SD_CHECK(!sd::conv_uses_int_path(DType::F32, 3));
    SD_CHECK(sd::conv2d_int8(be, g, x.data(), w.data(), DType::Q8_0, nullptr, y.data()));
  }
  sd::conv_force_quant_path(sd::ConvQuantPath::Int);
  SD_CHECK(sd::isa_force(sd::Isa::Scalar));
  SD_CHECK(!sd::conv_uses_int_path(DType::Q8_0, 3)) << "no scalar integer kernel";
}
