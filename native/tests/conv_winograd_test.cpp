// Winograd F(2x2, 3x3) conv (conv_winograd.cpp) against the direct double-accumulation reference
// (conv2d_reference), for odd sizes, several tile blocks / K blocks / output-channel chunks, batch
// 2, all weight dtypes, bias or not, AVX2 and AVX-512, and 1/2/3 threads (same bits).
//
// Bound. Winograd sums other terms than the direct method: y = sum_ci A^T (U (.) V) A with
// U = G g G^T and V = B^T d B, whose cross terms (g_k times inputs outside output r's window)
// cancel only in exact arithmetic. So its error is not bounded by the direct scale
// abs_sum = sum |x w| + |b| (an input that is zero on r's window but large next to it gives
// abs_sum = 0 and a nonzero rounding error); it is bounded by the same sum taken over the
// algorithm's own terms, wmag = sum_ci |A^T| (|G||g||G^T| (.) |B^T||d||B|) |A| + |b|. Following each
// term through the float steps (Higham Thm 3.1): V has 2 roundings, U 4 (the 0.5 scalings are
// exact), the Ci-sum is one FMA chain (Ci roundings), the output transform 4 and the bias 1, so
// |y - y_exact| <= gamma_(Ci+11) * wmag; the test uses (Ci + 12) * 2^-24 * wmag per element.
// For scale it also prints the largest error in units of 2^-24 * abs_sum (2.1 when written) and
// against the direct path's on the same data (at most 1.54x). Weights are dequantized exactly as
// the reference does, so quantized dtypes use the same bound against the quantized weights.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/cpu_features.h"
#include "core/quant.h"
#include "cpu/conv.h"
#include "cpu/conv_int8.h"
#include "cpu/cpu_backend.h"
#include "tests/test.h"

namespace {

using sd::ConvGeom;
using sd::DType;

struct Guard {  // restores the defaults when a test ends (also on a failed check)
  ~Guard() {
    sd::isa_force(sd::isa_best());
    sd::conv_force_winograd(sd::ConvWinograd::Auto);
    sd::conv_force_quant_path(sd::ConvQuantPath::Auto);
  }
};

// wmag (see the header) per output, from f32 weights w (Co x Ci*9, already dequantized).
std::vector<double> winograd_magnitude(const ConvGeom& g, const float* x, const float* w,
                                       const float* bias) {
  const double G[4][3] = {{1, 0, 0}, {.5, .5, .5}, {.5, .5, .5}, {0, 0, 1}};  // |G|
  const double Bt[4][4] = {{1, 0, 1, 0}, {0, 1, 1, 0}, {0, 1, 1, 0}, {0, 1, 0, 1}};  // |B^T|
  const double At[2][4] = {{1, 1, 1, 0}, {0, 1, 1, 1}};  // |A^T|
  const int64_t th = (g.H + 1) / 2, tw = (g.W + 1) / 2;
  std::vector<double> U(static_cast<size_t>(g.Co * g.Ci * 16));
  for (int64_t i = 0; i < g.Co * g.Ci; ++i) {
    const float* k = w + i * 9;
    for (int a = 0; a < 4; ++a)
      for (int b = 0; b < 4; ++b) {
        double s = 0;
        for (int r = 0; r < 3; ++r)
          for (int c = 0; c < 3; ++c) s += G[a][r] * std::fabs(k[r * 3 + c]) * G[b][c];
        U[i * 16 + a * 4 + b] = s;
      }
  }
  std::vector<double> out(static_cast<size_t>(g.N * g.Co * g.H * g.W));
  std::vector<double> V(static_cast<size_t>(g.Ci * 16));
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t ty = 0; ty < th; ++ty)
      for (int64_t tx = 0; tx < tw; ++tx) {
        for (int64_t ci = 0; ci < g.Ci; ++ci) {
          double d[4][4];
          for (int r = 0; r < 4; ++r)
            for (int c = 0; c < 4; ++c) {
              const int64_t iy = 2 * ty - 1 + r, ix = 2 * tx - 1 + c;
              d[r][c] = (iy < 0 || iy >= g.H || ix < 0 || ix >= g.W)
                            ? 0.0
                            : std::fabs(x[((n * g.Ci + ci) * g.H + iy) * g.W + ix]);
            }
          for (int a = 0; a < 4; ++a)
            for (int b = 0; b < 4; ++b) {
              double s = 0;
              for (int r = 0; r < 4; ++r)
                for (int c = 0; c < 4; ++c) s += Bt[a][r] * d[r][c] * Bt[b][c];
              V[ci * 16 + a * 4 + b] = s;
            }
        }
        for (int64_t co = 0; co < g.Co; ++co)
          for (int r = 0; r < 2; ++r)
            for (int c = 0; c < 2; ++c) {
              const int64_t oy = 2 * ty + r, ox = 2 * tx + c;
              if (oy >= g.H || ox >= g.W) continue;
              double s = bias ? std::fabs(bias[co]) : 0.0;
              for (int64_t ci = 0; ci < g.Ci; ++ci)
                for (int xi = 0; xi < 16; ++xi)
                  s += At[r][xi / 4] * At[c][xi % 4] * U[(co * g.Ci + ci) * 16 + xi] *
                       V[ci * 16 + xi];
              out[((n * g.Co + co) * g.H + oy) * g.W + ox] = s;
            }
      }
  return out;
}

struct Shape { int64_t n, ci, co, h, w; };

}  // namespace

SD_TEST(conv_winograd_matches_reference) {
  Guard guard;
  sd::conv_force_quant_path(sd::ConvQuantPath::Float);  // q8/q4 reach conv2d_winograd
  // Odd sizes (5x7, 13x9, 24x23: partial tiles), 288 tiles at batch 2 (3 tile blocks), Ci = 288
  // (K blocks 128+128+32), Ci = 37 (f32/f16 only), Co not a multiple of MR, and Ci = 1024 with
  // Co = 264 (two output-channel chunks of the 16 MB transformed-weight cap).
  const Shape shapes[] = {{1, 32, 13, 7, 5},   {2, 64, 20, 13, 9},  {2, 32, 24, 24, 23},
                          {1, 288, 30, 9, 11}, {2, 37, 7, 6, 41},   {1, 3, 5, 5, 7},
                          {1, 1024, 264, 4, 6}, {2, 96, 25, 1, 3}};
  const DType dtypes[] = {DType::F32, DType::F16, DType::Q8_0, DType::Q4_0};
  sd::CpuBackend be1(1), be2(2), be3(3);
  double worst_bound = 0, worst_direct = 0, worst_ratio = 0;
  int runs = 0;
  for (const Shape& s : shapes) {
    const int64_t K = s.ci * 9;
    const ConvGeom g{s.n, s.ci, s.h, s.w, s.co, s.h, s.w, 3, 1, 1, 1};
    sdtest::Rng rng(static_cast<uint64_t>(K * 31 + s.co * 7 + s.n + s.h));
    const std::vector<float> x = rng.vec(static_cast<size_t>(s.n * s.ci * s.h * s.w));
    const std::vector<float> wf = rng.vec(static_cast<size_t>(s.co * K), -0.3f, 0.3f);
    const std::vector<float> bias = rng.vec(static_cast<size_t>(s.co));
    const size_t ny = static_cast<size_t>(s.n * s.co * s.h * s.w);
    for (DType t : dtypes) {
      if (sd::dtype_is_quantized(t) && K % 32 != 0) continue;
      if (s.ci == 1024 && t != DType::F32) continue;  // the chunking does not depend on dtype
      const size_t rb = sd::dtype_row_bytes(t, K);
      std::vector<uint8_t> w(rb * static_cast<size_t>(s.co));
      std::vector<float> wq(static_cast<size_t>(s.co * K));  // the weights as the kernels see them
      for (int64_t r = 0; r < s.co; ++r) {
        sd::from_f32_row(t, wf.data() + r * K, w.data() + r * rb, K);
        sd::to_f32_row(t, w.data() + r * rb, wq.data() + r * K, K);
      }
      for (int with_bias = 0; with_bias < 2; ++with_bias) {
        const float* b = with_bias ? bias.data() : nullptr;
        std::vector<float> ref(ny);
        std::vector<double> mag(ny);
        sd::conv2d_reference(g, x.data(), w.data(), t, b, ref.data(), mag.data());
        const std::vector<double> wmag = winograd_magnitude(g, x.data(), wq.data(), b);
        for (sd::Isa isa : {sd::Isa::Scalar, sd::Isa::Avx2, sd::Isa::Avx512}) {
          if (!sd::isa_force(isa)) continue;
          sd::conv_force_winograd(sd::ConvWinograd::On);
          std::vector<float> y1(ny, NAN), y2(ny, NAN), y3(ny, NAN), yd(ny, NAN);
          const bool took = sd::conv2d_winograd(be1, g, x.data(), w.data(), t, b, y1.data());
          if (isa == sd::Isa::Scalar) {  // no Winograd kernels at that level: the caller's path
            SD_CHECK(!took) << "scalar level took the Winograd path";
            continue;
          }
          SD_CHECK(took) << "Winograd path not taken";
          if (!took) continue;
          sd::conv2d_cpu(be2, g, x.data(), w.data(), t, b, y2.data());  // through the op entry
          sd::conv2d_cpu(be3, g, x.data(), w.data(), t, b, y3.data());
          sd::conv_force_winograd(sd::ConvWinograd::Off);
          sd::conv2d_cpu(be2, g, x.data(), w.data(), t, b, yd.data());
          ++runs;
          const double u = std::ldexp(1.0, -24), c = static_cast<double>(s.ci + 12) * u;
          size_t bad = 0, first = 0;
          double emax = 0, dmax = 0;
          for (size_t i = 0; i < ny; ++i) {
            const double e = std::fabs(double(y1[i]) - ref[i]);
            if (!(e <= c * wmag[i] + 1e-30)) {
              if (!bad) first = i;
              ++bad;
            }
            worst_bound = std::max(worst_bound, e / (c * wmag[i] + 1e-30));
            emax = std::max(emax, e / (u * mag[i] + 1e-30));
            dmax = std::max(dmax, std::fabs(double(yd[i]) - ref[i]) / (u * mag[i] + 1e-30));
          }
          worst_direct = std::max(worst_direct, emax);
          if (dmax > 0) worst_ratio = std::max(worst_ratio, emax / dmax);
          SD_CHECK(bad == 0) << sd::dtype_name(t) << " " << sd::isa_name(isa) << " N=" << s.n
                             << " Ci=" << s.ci << " Co=" << s.co << " " << s.h << "x" << s.w
                             << ": " << bad << " outside bound, first at " << first << " got "
                             << y1[first] << " want " << ref[first];
          SD_CHECK(std::memcmp(y1.data(), y2.data(), ny * 4) == 0 &&
                   std::memcmp(y1.data(), y3.data(), ny * 4) == 0)
              << sd::dtype_name(t) << " " << sd::isa_name(isa) << " Ci=" << s.ci
              << ": 1, 2 and 3 threads differ";
        }
      }
    }
  }
  std::printf("  winograd: %d runs; max err / bound %.3f; max err %.1f u*abs_sum (%.2fx the direct "
              "path's on the same data)\n", runs, worst_bound, worst_direct, worst_ratio);
  // x86 with AVX2: 50 runs per level (aarch64 has no Winograd level: only the decline checks).
  if (sd::isa_supported(sd::Isa::Avx2)) SD_CHECK(runs >= 50) << runs;
}

// Geometry the path must leave to the implicit GEMM.
SD_TEST(conv_winograd_declines) {
  Guard guard;
  sd::conv_force_winograd(sd::ConvWinograd::On);
  sd::CpuBackend be(1);
  std::vector<float> x(2 * 32 * 9 * 9, 1.0f), w(8 * 32 * 9, 1.0f), y(2 * 8 * 9 * 9);
  const ConvGeom bad[] = {
      {2, 32, 9, 9, 8, 5, 5, 3, 2, 1, 1},  // stride 2
      {2, 32, 9, 9, 8, 7, 7, 3, 1, 0, 0},  // pad 0
      {2, 32, 9, 9, 8, 8, 8, 3, 1, 0, 0},  // the VAE encoder's (0, 1, 0, 1) padding
      {2, 32, 9, 9, 8, 9, 9, 1, 1, 0, 0},  // 1x1
  };
  for (const ConvGeom& g : bad)
    SD_CHECK(!sd::conv2d_winograd(be, g, x.data(), w.data(), DType::F32, nullptr, y.data()))
        << "k " << g.k << " stride " << g.stride << " pad " << g.pad_top << " Ho " << g.Ho;
  // Quantized rows need K % 32 == 0 (Ci = 4: K = 36).
  const ConvGeom q{1, 4, 9, 9, 8, 9, 9, 3, 1, 1, 1};
  SD_CHECK(!sd::conv2d_winograd(be, q, x.data(), w.data(), DType::Q8_0, nullptr, y.data()));
}
