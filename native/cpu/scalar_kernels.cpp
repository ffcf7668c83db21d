// The scalar reference kernels (the oracle every SIMD table is tested against) and the dispatch
// that picks a table for isa_active(). Plain loops, double accumulation and double math.
#include <cmath>

#include "core/cpu_features.h"
#include "cpu/misc_kernels.h"

namespace sd {
namespace {

double silu_d(double v) { return v / (1.0 + std::exp(-v)); }
double gelu_d(double v) { return 0.5 * v * (1.0 + std::erf(v * 0.70710678118654752440)); }
double quick_gelu_d(double v) { return v / (1.0 + std::exp(-1.702 * v)); }

void mean_var(const float* x, int64_t n, double* mean, double* var) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  const double m = s / static_cast<double>(n);
  double q = 0.0;
  for (int64_t i = 0; i < n; ++i) q += (x[i] - m) * (x[i] - m);
  *mean = m;
  *var = q / static_cast<double>(n);
}

void group_norm_block(float* y, const float* x, int64_t cpg, int64_t hw, const float* gamma,
                      const float* beta, float eps, bool silu) {
  double mean, var;
  mean_var(x, cpg * hw, &mean, &var);  // x: [cpg, hw]
  const double rstd = 1.0 / std::sqrt(var + eps);
  for (int64_t c = 0; c < cpg; ++c)
    for (int64_t i = 0; i < hw; ++i) {
      const double v = (x[c * hw + i] - mean) * rstd * gamma[c] + beta[c];
      y[c * hw + i] = static_cast<float>(silu ? silu_d(v) : v);
    }
}

void layer_norm_row(float* y, const float* x, int64_t n, const float* gamma, const float* beta,
                    float eps) {
  double mean, var;
  mean_var(x, n, &mean, &var);
  const double rstd = 1.0 / std::sqrt(var + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>((x[i] - mean) * rstd * gamma[i] + beta[i]);
}

void softmax_row(float* y, const float* x, int64_t n) {
  double mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::fmax(mx, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(x[i] - mx);
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(std::exp(x[i] - mx) / sum);
}

void unary_row(float* y, const float* x, int64_t n, int op) {
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    y[i] = static_cast<float>(op == kUnarySilu ? silu_d(v) : op == kUnaryGelu ? gelu_d(v) : quick_gelu_d(v));
  }
}

void geglu_row(float* y, const float* x, int64_t n) {
  // x: [2n] = [value | gate]
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(x[i] * gelu_d(x[n + i]));
}

void binary_row(float* y, const float* a, const float* b, int64_t n, int op) {
  for (int64_t i = 0; i < n; ++i) y[i] = op == kBinAdd ? a[i] + b[i] : a[i] * b[i];
}

void binary_scalar_row(float* y, const float* a, float b, int64_t n, int op) {
  for (int64_t i = 0; i < n; ++i) y[i] = op == kBinAdd ? a[i] + b : a[i] * b;
}

// Per query: one pass over the keys with a running max (online softmax) in double; O(D) memory.
void attention_tile(const AttnProblem& p, int64_t b, int64_t h, int64_t q0, float* scratch) {
  const int64_t D = p.D, HD = p.H * p.D;
  const int64_t q1 = q0 + kAttnQChunk < p.Nq ? q0 + kAttnQChunk : p.Nq;
  double* o = reinterpret_cast<double*>(scratch);  // [D]
  for (int64_t i = q0; i < q1; ++i) {
    const float* q = p.q + (b * p.Nq + i) * HD + h * D;  // q: [D]
    const int64_t nk = p.causal ? i + 1 : p.Nk;
    double m = -INFINITY, l = 0.0;
    for (int64_t d = 0; d < D; ++d) o[d] = 0.0;
    for (int64_t j = 0; j < nk; ++j) {
      const float* k = p.k + (b * p.Nk + j) * HD + h * D;
      const float* v = p.v + (b * p.Nk + j) * HD + h * D;
      double s = 0.0;
      for (int64_t d = 0; d < D; ++d) s += static_cast<double>(q[d]) * k[d];
      s *= p.scale;
      if (s > m) {
        const double alpha = std::exp(m - s);
        l *= alpha;
        for (int64_t d = 0; d < D; ++d) o[d] *= alpha;
        m = s;
      }
      const double e = std::exp(s - m);
      l += e;
      for (int64_t d = 0; d < D; ++d) o[d] += e * v[d];
    }
    float* y = p.y + (b * p.Nq + i) * HD + h * D;
    for (int64_t d = 0; d < D; ++d) y[d] = static_cast<float>(o[d] / l);
  }
}

}  // namespace

size_t attn_scratch_floats(int64_t Nk, int64_t D) {
  const int64_t dp = (D + 15) / 16 * 16, tq = kAttnTq + kAttnRowPad;
  const int64_t nkp = (Nk + kAttnTk - 1) / kAttnTk * kAttnTk;
  const int64_t rows = kAttnQChunk + kAttnRowPad;  // O, m, l for a whole query chunk
  const int64_t simd = 16 + nkp * D + nkp * dp + tq * kAttnTk + rows * dp + 2 * rows + 64;
  return static_cast<size_t>(simd > 2 * D + 16 ? simd : 2 * D + 16);
}

namespace scalar {
extern const MiscKernels kMiscKernels = {group_norm_block, layer_norm_row, softmax_row, unary_row,
                                         geglu_row,        binary_row,     binary_scalar_row,
                                         attention_tile};
}

const MiscKernels& misc_kernels() {
  switch (isa_active()) {
#if defined(SDNODE_HAVE_AVX512)
    case Isa::Avx512: return avx512::kMiscKernels;
#endif
#if defined(SDNODE_HAVE_AVX2)
    case Isa::Avx2: return avx2::kMiscKernels;
#endif
#if defined(SDNODE_HAVE_NEON)
    case Isa::Neon:
    case Isa::Dotprod: return neon::kMiscKernels;
#endif
    default: return scalar::kMiscKernels;
  }
}

}  // namespace sd
