// conv2d: every kernel/stride/pad variant x weight dtype x ISA level x batch x thread count against
// the direct double-accumulation reference (conv2d_reference), plus the op-interface wiring.
//
// Tolerance: the blocked kernels keep activations in f32 and dequantize weights exactly as the
// reference does (f16 -> f32 and q*_0 -> q * d are exact in f32 and use the same d), so the only
// difference is f32 rounding of a K-term sum in some order. Any order obeys
// |y - y_exact| <= gamma_(K+2) * (sum |x w| + |b|), gamma_n ~ n * 2^-24 (Higham, Thm 3.1); the
// test uses (K + 3) * 2^-24 * that sum per element. Quantized dtypes use the same bound against the
// reference run on the same quantized weights; their error against f32 weights is the
// quantization error, which quant_test bounds. Quantized weights run on the float path here (the
// integer path quantizes activations too: conv_int8_test.cpp checks it against its own oracle).
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
#include "tests/test.h"

namespace {

using sd::ConvGeom;
using sd::DType;

struct Variant {
  int k, stride, pad_top, pad_left;
  int extra;  // extra bottom/right zero padding (the VAE encoder's F.pad(x, (0, 1, 0, 1)))
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
  // Symmetric variants pad both sides by pad_top; the asymmetric one pads only bottom/right.
  if (v.extra) {
    g.Ho = (h + v.extra - v.k) / v.stride + 1;
    g.Wo = (w + v.extra - v.k) / v.stride + 1;
  } else {
    g.Ho = (h + 2 * v.pad_top - v.k) / v.stride + 1;
    g.Wo = (w + 2 * v.pad_left - v.k) / v.stride + 1;
  }
  return g;
}

// Weights as the backend stores them: Co rows of K elements in `t`.
std::vector<uint8_t> make_weights(const std::vector<float>& wf, int64_t co, int64_t K, DType t) {
  const size_t rb = sd::dtype_row_bytes(t, K);
  std::vector<uint8_t> out(rb * static_cast<size_t>(co));
  for (int64_t r = 0; r < co; ++r) sd::from_f32_row(t, wf.data() + r * K, out.data() + r * rb, K);
  return out;
}

std::vector<sd::Isa> isa_levels() {
  std::vector<sd::Isa> out;
  for (sd::Isa l : {sd::Isa::Scalar, sd::Isa::Avx2, sd::Isa::Avx512, sd::Isa::Neon, sd::Isa::Dotprod})
    if (sd::isa_supported(l)) out.push_back(l);
  return out;
}

// Restores the best ISA level when a test ends (also on a failed check).
struct IsaGuard {
  ~IsaGuard() { sd::isa_force(sd::isa_best()); }
};

// Quantized weights take the float (dequantizing) path while it lives.
struct FloatQuantPath {
  FloatQuantPath() { sd::conv_force_quant_path(sd::ConvQuantPath::Float); }
  ~FloatQuantPath() { sd::conv_force_quant_path(sd::ConvQuantPath::Auto); }
};

struct Shape { int64_t ci, co, h, w; };

}  // namespace

SD_TEST(conv2d_matches_reference) {
  IsaGuard guard;
  FloatQuantPath float_path;
  // Widths < 40 take the packed path (stride 1 too); 6x41 the padded-tile path with panels
  // crossing rows; 64x64 the padded-tile path with row-aligned panels (and Ci = 4: K = 36, not
  // blockable). K = 864 and 360 span several K blocks, 360 with a partial one.
  const Shape shapes[] = {{32, 13, 7, 5},  {64, 20, 13, 9},  {96, 14, 11, 6}, {40, 7, 9, 12},
                          {32, 10, 15, 19}, {32, 10, 6, 41}, {4, 5, 64, 64}, {32, 3, 1, 2}};
  const DType dtypes[] = {DType::F32, DType::F16, DType::Q8_0, DType::Q4_0};
  sd::CpuBackend be1(1), be3(3);
  int runs = 0;
  for (const Variant& v : kVariants)
    for (const Shape& s : shapes)
      for (int64_t n : {1, 2}) {
        const ConvGeom g = make_geom(v, n, s.ci, s.co, s.h, s.w);
        const int64_t K = s.ci * v.k * v.k;
        sdtest::Rng rng(static_cast<uint64_t>(K * 131 + s.co * 7 + n + v.stride * 3 + v.extra));
        const std::vector<float> x = rng.vec(static_cast<size_t>(n * s.ci * s.h * s.w));
        const std::vector<float> wf = rng.vec(static_cast<size_t>(s.co * K), -0.3f, 0.3f);
        const std::vector<float> bias = rng.vec(static_cast<size_t>(s.co));
        const size_t ny = static_cast<size_t>(n * s.co * g.Ho * g.Wo);
        for (DType t : dtypes) {
          if (sd::dtype_is_quantized(t) && K % 32 != 0) continue;
          const std::vector<uint8_t> w = make_weights(wf, s.co, K, t);
          std::vector<float> ref(ny);
          std::vector<double> mag(ny);
          for (int with_bias = 0; with_bias < 2; ++with_bias) {
            const float* b = with_bias ? bias.data() : nullptr;
            sd::conv2d_reference(g, x.data(), w.data(), t, b, ref.data(), mag.data());
            for (sd::Isa isa : isa_levels()) {
              SD_CHECK(sd::isa_force(isa));
              std::vector<float> y1(ny, NAN), y3(ny, NAN);
              sd::conv2d_cpu(be1, g, x.data(), w.data(), t, b, y1.data());
              sd::conv2d_cpu(be3, g, x.data(), w.data(), t, b, y3.data());
              ++runs;
              const double u = std::ldexp(1.0, -24) * static_cast<double>(K + 3);
              size_t bad = 0, first = 0;
              for (size_t i = 0; i < ny; ++i)
                if (!(std::fabs(double(y1[i]) - ref[i]) <= u * mag[i] + 1e-30)) {
                  if (!bad) first = i;
                  ++bad;
                }
              SD_CHECK(bad == 0) << v.name << " " << sd::dtype_name(t) << " " << sd::isa_name(isa)
                                 << " N=" << n << " Ci=" << s.ci << " Co=" << s.co << " " << s.h
                                 << "x" << s.w << ": " << bad << " outside bound, first at " << first
                                 << " got " << y1[first] << " want " << ref[first];
              SD_CHECK(std::memcmp(y1.data(), y3.data(), ny * 4) == 0)
                  << v.name << " " << sd::dtype_name(t) << " " << sd::isa_name(isa)
                  << ": 1 and 3 threads differ";
            }
          }
        }
      }
  SD_CHECK(runs > 500) << runs;
}

// The op interface (validation + CpuBackend::do_conv2d) reaches the kernels with the right geometry.
SD_TEST(conv2d_op_interface) {
  sd::CpuBackend be(2);
  sdtest::Rng rng(5);
  const int64_t N = 2, Ci = 8, Co = 9, H = 10, W = 7;
  std::vector<float> x = rng.vec(N * Ci * H * W), wf = rng.vec(Co * Ci * 9), b = rng.vec(Co);
  for (int stride : {1, 2}) {
    const int64_t Ho = (H + 2 - 3) / stride + 1, Wo = (W + 2 - 3) / stride + 1;
    std::vector<float> y(N * Co * Ho * Wo), ref(y.size());
    sd::Tensor tx(DType::F32, {N, Ci, H, W}, x.data()), tw(DType::F32, {Co, Ci, 3, 3}, wf.data()),
        tb(DType::F32, {Co}, b.data()), ty(DType::F32, {N, Co, Ho, Wo}, y.data());
    be.conv2d(ty, tx, tw, &tb, stride, 1);
    const ConvGeom g{N, Ci, H, W, Co, Ho, Wo, 3, stride, 1, 1};
    sd::conv2d_reference(g, x.data(), wf.data(), DType::F32, b.data(), ref.data());
    SD_CHECK(sdtest::max_rel_err(y.data(), ref.data(), y.size()) < 1e-5) << "stride " << stride;
    bool threw = false;
    sd::Tensor bad(DType::F32, {N, Co, Ho + 1, Wo}, y.data());
    try { be.conv2d(bad, tx, tw, &tb, stride, 1); } catch (const std::invalid_argument&) { threw = true; }
    SD_CHECK(threw) << "wrong output shape accepted";
  }
}

// Quantized conv weights are blocked along Ci*k*k (tensor.h): the op accepts [Co, 32, 3, 3] q8_0
// and rejects a K = 36 row (Ci = 4, SD's first conv, which stays f16/f32).
SD_TEST(conv2d_op_quantized_rows) {
  FloatQuantPath float_path;
  sd::CpuBackend be(2);
  sdtest::Rng rng(9);
  const int64_t N = 1, Ci = 32, Co = 6, H = 5, W = 6;
  std::vector<float> x = rng.vec(N * Ci * H * W), wf = rng.vec(Co * Ci * 9), y(N * Co * H * W),
                     ref(y.size());
  for (DType t : {DType::Q8_0, DType::Q4_0}) {
    std::vector<uint8_t> w = make_weights(wf, Co, Ci * 9, t);
    sd::Tensor tx(DType::F32, {N, Ci, H, W}, x.data()), tw(t, {Co, Ci, 3, 3}, w.data()),
        ty(DType::F32, {N, Co, H, W}, y.data());
    be.conv2d(ty, tx, tw, nullptr, 1, 1);
    const ConvGeom g{N, Ci, H, W, Co, H, W, 3, 1, 1, 1};
    sd::conv2d_reference(g, x.data(), w.data(), t, nullptr, ref.data());
    SD_CHECK(sdtest::max_rel_err(y.data(), ref.data(), y.size()) < 1e-5) << sd::dtype_name(t);
    sd::Tensor x4(DType::F32, {N, 4, H, W}, x.data()), w4(t, {Co, 4, 3, 3}, w.data());
    bool threw = false;
    try { be.conv2d(ty, x4, w4, nullptr, 1, 1); } catch (const std::invalid_argument&) { threw = true; }
    SD_CHECK(threw) << "K = 36 accepted for " << sd::dtype_name(t);
  }
}

// Degenerate sizes: no input channels gives the bias; an empty output is a no-op.
SD_TEST(conv2d_degenerate_sizes) {
  sd::CpuBackend be(2);
  const float bias[3] = {1.5f, -2.0f, 0.25f};
  std::vector<float> y(2 * 3 * 4 * 5, NAN);
  sd::conv2d_cpu(be, ConvGeom{2, 0, 4, 5, 3, 4, 5, 3, 1, 1, 1}, nullptr, nullptr, DType::F32, bias,
                 y.data());
  for (size_t i = 0; i < y.size(); ++i) SD_CHECK(y[i] == bias[(i / 20) % 3]) << i;
  sd::conv2d_cpu(be, ConvGeom{2, 8, 4, 5, 3, 0, 5, 3, 1, 1, 1}, nullptr, nullptr, DType::F32, bias,
                 nullptr);
}
