// Shape and type validation shared by every backend, and the planning (arena sizing) mode.
#include "ops.h"

#include <chrono>
#include <stdexcept>
#include <string>

namespace sd {
namespace {

[[noreturn]] void fail(const char* op, const std::string& msg) {
  throw std::invalid_argument(std::string(op) + ": " + msg);
}

void need_f32(const char* op, const char* what, const Tensor& t) {
  if (t.type != DType::F32) fail(op, std::string(what) + " must be f32, got " + dtype_name(t.type));
}

// Activations are stored as the backend's activation_type() (f32, or f16 on a GPU backend).
void need_act(const char* op, const char* what, const Tensor& t, DType act) {
  if (t.type != act)
    fail(op, std::string(what) + " must be " + dtype_name(act) + " (this backend's activations), got " + dtype_name(t.type));
}

void need_ndim(const char* op, const char* what, const Tensor& t, int ndim) {
  if (t.ndim != ndim)
    fail(op, std::string(what) + " must have " + std::to_string(ndim) + " dims, got " + t.shape_str());
}

void need_same(const char* op, const char* a, const Tensor& x, const char* b, const Tensor& y) {
  if (!same_shape(x, y))
    fail(op, std::string(a) + " " + x.shape_str() + " and " + b + " " + y.shape_str() + " differ");
}

void need_numel(const char* op, const char* what, const Tensor& t, int64_t n) {
  if (t.numel() != n)
    fail(op, std::string(what) + " must have " + std::to_string(n) + " elements, got " + t.shape_str());
}

void need_weight_rows(const char* op, const Tensor& w) {
  if (dtype_is_quantized(w.type) && w.row_len() % 32 != 0)
    fail(op, "quantized weight rows must be a multiple of 32, got " + w.shape_str());
}

void check_broadcast(const char* op, const Tensor& y, const Tensor& a, const Tensor& b, DType act) {
  need_act(op, "a", a, act);
  need_act(op, "b", b, act);
  need_act(op, "y", y, act);
  need_same(op, "y", y, "a", a);
  if (b.ndim > a.ndim) fail(op, "b " + b.shape_str() + " has more dims than a " + a.shape_str());
  for (int i = 0; i < b.ndim; ++i) {
    const int64_t bd = b.shape[b.ndim - 1 - i], ad = a.shape[a.ndim - 1 - i];
    if (bd != 1 && bd != ad)
      fail(op, "b " + b.shape_str() + " does not broadcast to a " + a.shape_str());
  }
}

}  // namespace

// Times one op when profiling is on (RAII, so an op that throws is not counted twice or leaked).
// A backend whose ops run asynchronously reports each op's device time (device_op_seconds); the
// host clock, which then also holds the launch and the wait, is the fallback.
struct Backend::OpTimer {
  Backend* be;
  const char* kind;
  double flops;
  std::string detail;  // appended to kind when detailed profiling is on
  std::chrono::steady_clock::time_point t0;
  OpTimer(Backend* b, const char* k, double f, std::string d = {})
      : be(b), kind(k), flops(f), detail(std::move(d)) {
    if (be->profiling_) t0 = std::chrono::steady_clock::now();
  }
  // The common detail: the op's name and one tensor's shape, built only when asked for.
  OpTimer(Backend* b, const char* k, double f, const char* what, const Tensor& t)
      : OpTimer(b, k, f, b->profile_detail_ ? std::string(what) + " " + t.shape_str() : std::string()) {}
  ~OpTimer() {
    if (!be->profiling_) return;
    OpStats& st = be->profile_[be->profile_detail_ && !detail.empty() ? kind + (" " + detail) : kind];
    st.calls += 1;
    const double dev = be->device_op_seconds();
    st.seconds += dev >= 0 ? dev : std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    st.flops += flops;
  }
};

Tensor Backend::alloc(DType t, std::initializer_list<int64_t> dims) {
  Tensor out(t, dims);
  const size_t bytes = (out.nbytes() + 63) & ~size_t(63);
  if (planning_) {
    plan_used_ += bytes;
    if (plan_used_ > plan_high_) plan_high_ = plan_used_;
    out.data = nullptr;
  } else {
    out.data = do_alloc(bytes);
  }
  return out;
}

void Backend::rewind(size_t m) {
  if (planning_) plan_used_ = m;
  else do_rewind(m);
}

void Backend::begin_plan() {
  planning_ = true;
  plan_used_ = plan_high_ = 0;
}

size_t Backend::end_plan() {
  planning_ = false;
  // Slack for alignment differences between the counted and the real arena.
  return plan_high_ + 4096;
}

namespace {
// Shared by linear, linear_add and linear_n: y[rows, N] = x[rows, K] . w[N, K]^T (+ bias[N]).
void check_linear(const char* op, const Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, DType act) {
  need_act(op, "x", x, act);
  need_act(op, "y", y, act);
  need_ndim(op, "w", w, 2);
  need_weight_rows(op, w);
  const int64_t K = w.shape[1], N = w.shape[0];
  if (x.row_len() != K) fail(op, "x " + x.shape_str() + " does not match w " + w.shape_str());
  if (y.row_len() != N || y.rows() != x.rows())
    fail(op, "y " + y.shape_str() + " must be [" + std::to_string(x.rows()) + ", " + std::to_string(N) + "]");
  if (bias) { need_f32(op, "bias", *bias); need_numel(op, "bias", *bias, N); }
}

double linear_flops(const Tensor& x, const Tensor& w) {
  return 2.0 * static_cast<double>(x.rows()) * static_cast<double>(w.shape[0]) * static_cast<double>(w.shape[1]);
}

// The by-shape profile's name: "rows x K > N", `extra`, the weight type.
std::string linear_detail(const Tensor& x, const Tensor& w, const std::string& extra) {
  return std::to_string(x.rows()) + "x" + std::to_string(w.shape[1]) + ">" + std::to_string(w.shape[0]) + extra +
         " " + dtype_name(w.type);
}
}  // namespace

void Backend::linear(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias) {
  check_linear("linear", y, x, w, bias, activation_type());
  if (planning_) return;
  OpTimer timer(this, "linear", linear_flops(x, w), profile_detail_ ? linear_detail(x, w, "") : std::string());
  do_linear(y, x, w, bias);
}

void Backend::linear_add(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias) {
  const char* op = "linear_add";
  if (!fuses_linear_add()) fail(op, "not fused by this backend (callers check fuses_linear_add)");
  check_linear(op, y, x, w, bias, activation_type());
  const uint8_t *xb = static_cast<const uint8_t*>(x.data), *yb = static_cast<const uint8_t*>(y.data);
  if (xb && yb && xb < yb + y.nbytes() && yb < xb + x.nbytes()) fail(op, "y overlaps x");
  if (planning_) return;
  OpTimer timer(this, "linear", linear_flops(x, w), profile_detail_ ? linear_detail(x, w, " +y") : std::string());
  do_linear_add(y, x, w, bias);
}

void Backend::linear_geglu(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias) {
  const char* op = "linear_geglu";
  need_act(op, "x", x, activation_type());
  need_act(op, "y", y, activation_type());
  need_ndim(op, "w", w, 2);
  need_weight_rows(op, w);
  const int64_t K = w.shape[1], F = w.shape[0] / 2;
  if (w.shape[0] % 2 != 0) fail(op, "w " + w.shape_str() + " must have an even row count ([a | gate] halves)");
  if (x.row_len() != K) fail(op, "x " + x.shape_str() + " does not match w " + w.shape_str());
  if (y.row_len() != F || y.rows() != x.rows())
    fail(op, "y " + y.shape_str() + " must be [" + std::to_string(x.rows()) + ", " + std::to_string(F) + "]");
  if (bias) { need_f32(op, "bias", *bias); need_numel(op, "bias", *bias, 2 * F); }
  if (!fuses_linear_geglu(x, w)) fail(op, "not fused by this backend for these shapes (callers check fuses_linear_geglu)");
  if (planning_) return;
  OpTimer timer(this, "linear", linear_flops(x, w), profile_detail_ ? linear_detail(x, w, " geglu") : std::string());
  do_linear_geglu(y, x, w, bias);
}

void Backend::linear_to_channels(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, const Tensor& res) {
  const char* op = "linear_to_channels";
  if (!fuses_linear_to_channels()) fail(op, "not fused by this backend (callers check fuses_linear_to_channels)");
  need_ndim(op, "x", x, 3);
  need_ndim(op, "y", y, 4);
  need_act(op, "x", x, activation_type());
  need_act(op, "y", y, activation_type());
  need_act(op, "res", res, activation_type());
  need_same(op, "y", y, "res", res);
  need_ndim(op, "w", w, 2);
  need_weight_rows(op, w);
  const int64_t B = x.shape[0], P = x.shape[1], K = w.shape[1], C = w.shape[0];
  if (x.shape[2] != K) fail(op, "x " + x.shape_str() + " does not match w " + w.shape_str());
  if (y.shape[0] != B || y.shape[1] != C || y.shape[2] * y.shape[3] != P)
    fail(op, "y " + y.shape_str() + " must be [" + std::to_string(B) + ", " + std::to_string(C) + ", H, W] with H * W = " +
                 std::to_string(P));
  if (bias) { need_f32(op, "bias", *bias); need_numel(op, "bias", *bias, C); }
  const uint8_t *xb = static_cast<const uint8_t*>(x.data), *yb = static_cast<const uint8_t*>(y.data);
  if (xb && yb && xb < yb + y.nbytes() && yb < xb + x.nbytes()) fail(op, "y overlaps x");
  if (planning_) return;
  OpTimer timer(this, "linear", linear_flops(x, w), profile_detail_ ? linear_detail(x, w, " >nchw +res") : std::string());
  do_linear_to_channels(y, x, w, bias, res);
}

void Backend::linear_n(Tensor* const* ys, const Tensor& x, const Tensor* const* ws, int n) {
  const char* op = "linear_n";
  if (n < 1 || n > kMaxLinearN) fail(op, "takes 1.." + std::to_string(kMaxLinearN) + " weights, got " + std::to_string(n));
  double flops = 0;
  for (int i = 0; i < n; ++i) {
    check_linear(op, *ys[i], x, *ws[i], nullptr, activation_type());
    flops += linear_flops(x, *ws[i]);
  }
  if (planning_) return;
  OpTimer timer(this, "linear", flops,
                profile_detail_ ? linear_detail(x, *ws[0], n > 1 ? " x" + std::to_string(n) : "") : std::string());
  do_linear_n(ys, x, ws, n);
}

namespace {
// Shared by conv2d and conv2d_upsampled; H, W: the input's size as the conv sees it.
void check_conv(const char* op, const Tensor& y, const Tensor& x, int64_t H, int64_t W, const Tensor& w,
                const Tensor* bias, int stride, int pad, DType act) {
  need_act(op, "x", x, act);
  need_act(op, "y", y, act);
  need_ndim(op, "x", x, 4);
  need_ndim(op, "y", y, 4);
  need_ndim(op, "w", w, 4);
  const int64_t k = w.shape[2];
  // Quantized conv weights are blocked along the flattened Ci*k*k row, not the innermost dim.
  if (dtype_is_quantized(w.type) && (w.shape[1] * k * w.shape[3]) % 32 != 0)
    fail(op, "quantized weight rows (Ci*k*k) must be a multiple of 32, got " + w.shape_str());
  if (w.shape[3] != k || (k != 1 && k != 3)) fail(op, "kernel must be 1x1 or 3x3, got " + w.shape_str());
  if (stride < 1 || stride > 2 || pad < 0 || pad > 1) fail(op, "stride must be 1..2 and pad 0..1");
  if (x.shape[1] != w.shape[1]) fail(op, "x " + x.shape_str() + " channels do not match w " + w.shape_str());
  const int64_t ho = (H + 2 * pad - k) / stride + 1, wo = (W + 2 * pad - k) / stride + 1;
  if (y.shape[0] != x.shape[0] || y.shape[1] != w.shape[0] || y.shape[2] != ho || y.shape[3] != wo)
    fail(op, "y " + y.shape_str() + " must be [" + std::to_string(x.shape[0]) + ", " +
                 std::to_string(w.shape[0]) + ", " + std::to_string(ho) + ", " + std::to_string(wo) + "]");
  if (bias) { need_f32(op, "bias", *bias); need_numel(op, "bias", *bias, w.shape[0]); }
}

std::string conv_detail(const Tensor& x, int64_t H, int64_t W, const Tensor& w, int stride) {
  return std::to_string(x.shape[1]) + ">" + std::to_string(w.shape[0]) + " @" + std::to_string(H) + "x" +
         std::to_string(W) + " n" + std::to_string(x.shape[0]) + " s" + std::to_string(stride) + " " +
         dtype_name(w.type);
}
}  // namespace

void Backend::conv2d(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, int stride,
                     int pad) {
  check_conv("conv2d", y, x, x.ndim == 4 ? x.shape[2] : 0, x.ndim == 4 ? x.shape[3] : 0, w, bias, stride, pad,
             activation_type());
  if (planning_) return;
  const int64_t k = w.shape[2];
  OpTimer timer(this, k == 3 ? "conv 3x3" : "conv 1x1", 2.0 * static_cast<double>(y.numel()) * static_cast<double>(x.shape[1] * k * k),
                profile_detail_ ? conv_detail(x, x.shape[2], x.shape[3], w, stride) : std::string());
  do_conv2d(y, x, w, bias, stride, pad);
}

namespace {
// conv2d_add's operands beyond check_conv's: chan, res, and y clear of x and res.
void check_conv_adds(const char* op, const Tensor& y, const Tensor& x, const Tensor* chan, const Tensor* res, DType act) {
  if (chan) {
    need_act(op, "chan", *chan, act);
    if (chan->numel() != y.shape[0] * y.shape[1] || chan->row_len() != y.shape[1])
      fail(op, "chan " + chan->shape_str() + " must be [" + std::to_string(y.shape[0]) + ", " +
                   std::to_string(y.shape[1]) + "]");
  }
  if (res) {
    need_act(op, "res", *res, act);
    need_same(op, "y", y, "res", *res);
    const uint8_t *rb = static_cast<const uint8_t*>(res->data), *yb = static_cast<const uint8_t*>(y.data);
    if (rb && yb && rb < yb + y.nbytes() && yb < rb + res->nbytes()) fail(op, "res overlaps y");
  }
  const uint8_t *xb = static_cast<const uint8_t*>(x.data), *yb = static_cast<const uint8_t*>(y.data);
  if (xb && yb && xb < yb + y.nbytes() && yb < xb + x.nbytes()) fail(op, "y overlaps x");
}

void check_group_norm(const char* op, const Tensor& y, const Tensor& x, int groups, const Tensor& gamma,
                      const Tensor& beta, DType act) {
  need_act(op, "x", x, act);
  need_act(op, "y", y, act);
  need_same(op, "y", y, "x", x);
  if (x.ndim < 2) fail(op, "x must be [N, C, ...], got " + x.shape_str());
  const int64_t C = x.shape[1];
  if (groups < 1 || C % groups != 0) fail(op, "channels " + std::to_string(C) + " not divisible by groups " + std::to_string(groups));
  need_numel(op, "gamma", gamma, C);
  need_numel(op, "beta", beta, C);
  need_f32(op, "gamma", gamma);
  need_f32(op, "beta", beta);
}
}  // namespace

void Backend::conv2d_add(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, int stride, int pad,
                         const Tensor* chan, const Tensor* res) {
  const char* op = "conv2d_add";
  check_conv(op, y, x, x.ndim == 4 ? x.shape[2] : 0, x.ndim == 4 ? x.shape[3] : 0, w, bias, stride, pad,
             activation_type());
  check_conv_adds(op, y, x, chan, res, activation_type());
  if (planning_) return;
  const int64_t k = w.shape[2];
  const double flops = 2.0 * static_cast<double>(y.numel()) * static_cast<double>(x.shape[1] * k * k);
  OpTimer timer(this, k == 3 ? "conv 3x3" : "conv 1x1", flops,
                profile_detail_ ? conv_detail(x, x.shape[2], x.shape[3], w, stride) + " +add" : std::string());
  do_conv2d_add(y, x, w, bias, stride, pad, chan, res);
}

void Backend::norm_conv2d(Tensor& y, Tensor& t, const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta,
                          float eps, bool silu, const Tensor& w, const Tensor* bias, int stride, int pad,
                          const Tensor* chan, const Tensor* res) {
  const char* op = "norm_conv2d";
  check_group_norm(op, t, x, groups, gamma, beta, activation_type());
  check_conv(op, y, t, t.ndim == 4 ? t.shape[2] : 0, t.ndim == 4 ? t.shape[3] : 0, w, bias, stride, pad,
             activation_type());
  check_conv_adds(op, y, t, chan, res, activation_type());
  check_conv_adds(op, y, x, nullptr, nullptr, activation_type());
  if (planning_) return;
  const int64_t k = w.shape[2];
  const double flops = 2.0 * static_cast<double>(y.numel()) * static_cast<double>(x.shape[1] * k * k);
  OpTimer timer(this, k == 3 ? "conv 3x3" : "conv 1x1", flops,
                profile_detail_ ? conv_detail(x, x.shape[2], x.shape[3], w, stride) + " +norm" : std::string());
  do_norm_conv2d(y, t, x, groups, gamma, beta, eps, silu, w, bias, stride, pad, chan, res);
}

void Backend::conv2d_upsampled(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias) {
  const char* op = "conv2d_upsampled";
  const int64_t H = x.ndim == 4 ? 2 * x.shape[2] : 0, W = x.ndim == 4 ? 2 * x.shape[3] : 0;
  check_conv(op, y, x, H, W, w, bias, 1, 1, activation_type());
  if (w.shape[2] != 3) fail(op, "kernel must be 3x3, got " + w.shape_str());
  if (planning_) return;
  OpTimer timer(this, "conv 3x3", 2.0 * static_cast<double>(y.numel()) * static_cast<double>(x.shape[1] * 9),
                profile_detail_ ? conv_detail(x, H, W, w, 1) + " up" : std::string());
  do_conv2d_upsampled(y, x, w, bias);
}

void Backend::group_norm(Tensor& y, const Tensor& x, int groups, const Tensor& gamma,
                         const Tensor& beta, float eps, bool silu) {
  check_group_norm("group_norm", y, x, groups, gamma, beta, activation_type());
  if (planning_) return;
  OpTimer timer(this, "norms", 0.0, silu ? "group_norm+silu" : "group_norm", x);
  do_group_norm(y, x, groups, gamma, beta, eps, silu);
}

void Backend::layer_norm(Tensor& y, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                         float eps) {
  const char* op = "layer_norm";
  need_act(op, "x", x, activation_type());
  need_act(op, "y", y, activation_type());
  need_same(op, "y", y, "x", x);
  need_numel(op, "gamma", gamma, x.row_len());
  need_numel(op, "beta", beta, x.row_len());
  need_f32(op, "gamma", gamma);
  need_f32(op, "beta", beta);
  if (planning_) return;
  OpTimer timer(this, "norms", 0.0, "layer_norm", x);
  do_layer_norm(y, x, gamma, beta, eps);
}

void Backend::attention(Tensor& y, const Tensor& q, const Tensor& k, const Tensor& v, int heads,
                        bool causal) {
  const char* op = "attention";
  need_act(op, "q", q, activation_type());
  need_act(op, "k", k, activation_type());
  need_act(op, "v", v, activation_type());
  need_act(op, "y", y, activation_type());
  need_ndim(op, "q", q, 3);
  need_ndim(op, "k", k, 3);
  need_same(op, "k", k, "v", v);
  need_same(op, "y", y, "q", q);
  if (heads < 1 || q.shape[2] % heads != 0) fail(op, "width " + std::to_string(q.shape[2]) + " not divisible by heads");
  if (k.shape[0] != q.shape[0] || k.shape[2] != q.shape[2])
    fail(op, "k " + k.shape_str() + " does not match q " + q.shape_str());
  if (causal && k.shape[1] != q.shape[1]) fail(op, "causal attention needs as many keys as queries");
  if (planning_) return;
  OpTimer timer(this, "attention", 4.0 * static_cast<double>(q.shape[0]) * static_cast<double>(q.shape[1]) * static_cast<double>(k.shape[1]) * static_cast<double>(q.shape[2]),
                profile_detail_ ? q.shape_str() + " k" + std::to_string(k.shape[1]) + " h" + std::to_string(heads) : std::string());
  do_attention(y, q, k, v, heads, causal);
}

void Backend::softmax(Tensor& y, const Tensor& x) {
  need_act("softmax", "x", x, activation_type());
  need_act("softmax", "y", y, activation_type());
  need_same("softmax", "y", y, "x", x);
  if (planning_) return;
  OpTimer timer(this, "elementwise", 0.0, "softmax", x);
  do_softmax(y, x);
}

void Backend::unary(Tensor& y, const Tensor& x, Unary u) {
  need_act("unary", "x", x, activation_type());
  need_act("unary", "y", y, activation_type());
  need_same("unary", "y", y, "x", x);
  if (planning_) return;
  OpTimer timer(this, "elementwise", 0.0, "unary", x);
  do_unary(y, x, u);
}

void Backend::geglu(Tensor& y, const Tensor& x) {
  const char* op = "geglu";
  need_act(op, "x", x, activation_type());
  need_act(op, "y", y, activation_type());
  if (x.row_len() % 2 != 0 || y.row_len() * 2 != x.row_len() || y.rows() != x.rows())
    fail(op, "y " + y.shape_str() + " must be x " + x.shape_str() + " with the last dim halved");
  if (planning_) return;
  OpTimer timer(this, "elementwise", 0.0, "geglu", x);
  do_geglu(y, x);
}

void Backend::add(Tensor& y, const Tensor& a, const Tensor& b) {
  check_broadcast("add", y, a, b, activation_type());
  if (planning_) return;
  OpTimer timer(this, "elementwise", 0.0, profile_detail_ ? "add " + a.shape_str() + "+" + b.shape_str() : std::string());
  do_add(y, a, b);
}

void Backend::mul(Tensor& y, const Tensor& a, const Tensor& b) {
  check_broadcast("mul", y, a, b, activation_type());
  if (planning_) return;
  OpTimer timer(this, "elementwise", 0.0, profile_detail_ ? "mul " + a.shape_str() + "*" + b.shape_str() : std::string());
  do_mul(y, a, b);
}

void Backend::scale(Tensor& y, const Tensor& x, float s) {
  need_act("scale", "x", x, activation_type());
  need_act("scale", "y", y, activation_type());
  need_same("scale", "y", y, "x", x);
  if (planning_) return;
  OpTimer timer(this, "elementwise", 0.0, "scale", x);
  do_scale(y, x, s);
}

void Backend::copy(Tensor& y, const Tensor& x) {
  if (y.type != x.type || y.numel() != x.numel())
    fail("copy", "y " + y.shape_str() + " and x " + x.shape_str() + " differ in type or size");
  if (planning_) return;
  OpTimer timer(this, "layout", 0.0, "copy", x);
  do_copy(y, x);
}

void Backend::upsample_nearest(Tensor& y, const Tensor& x) {
  const char* op = "upsample_nearest";
  need_act(op, "x", x, activation_type());
  need_act(op, "y", y, activation_type());
  need_ndim(op, "x", x, 4);
  need_ndim(op, "y", y, 4);
  if (y.shape[0] != x.shape[0] || y.shape[1] != x.shape[1] || y.shape[2] < x.shape[2] || y.shape[3] < x.shape[3])
    fail(op, "y " + y.shape_str() + " cannot be an upsampling of x " + x.shape_str());
  if (planning_) return;
  OpTimer timer(this, "layout", 0.0, "upsample", x);
  do_upsample_nearest(y, x);
}

void Backend::concat_channels(Tensor& y, const Tensor& a, const Tensor& b) {
  const char* op = "concat_channels";
  need_act(op, "a", a, activation_type());
  need_act(op, "b", b, activation_type());
  need_act(op, "y", y, activation_type());
  need_ndim(op, "a", a, 4);
  need_ndim(op, "b", b, 4);
  need_ndim(op, "y", y, 4);
  if (a.shape[0] != b.shape[0] || a.shape[2] != b.shape[2] || a.shape[3] != b.shape[3] ||
      y.shape[0] != a.shape[0] || y.shape[1] != a.shape[1] + b.shape[1] || y.shape[2] != a.shape[2] ||
      y.shape[3] != a.shape[3])
    fail(op, "cannot concatenate " + a.shape_str() + " and " + b.shape_str() + " into " + y.shape_str());
  if (planning_) return;
  OpTimer timer(this, "layout", 0.0, "concat", y);
  do_concat_channels(y, a, b);
}

void Backend::transpose12(Tensor& y, const Tensor& x) {
  const char* op = "transpose12";
  need_act(op, "x", x, activation_type());
  need_act(op, "y", y, activation_type());
  need_ndim(op, "x", x, 3);
  need_ndim(op, "y", y, 3);
  if (y.shape[0] != x.shape[0] || y.shape[1] != x.shape[2] || y.shape[2] != x.shape[1])
    fail(op, "y " + y.shape_str() + " must be x " + x.shape_str() + " with dims 1 and 2 swapped");
  if (planning_) return;
  OpTimer timer(this, "layout", 0.0, "transpose12", x);
  do_transpose12(y, x);
}

void Backend::timestep_embedding(Tensor& y, const Tensor& t, float max_period) {
  const char* op = "timestep_embedding";
  need_ndim(op, "y", y, 2);
  need_act(op, "y", y, activation_type());
  if (y.shape[1] % 2 != 0) fail(op, "dim must be even, got y " + y.shape_str());
  need_ndim(op, "t", t, 1);
  need_f32(op, "t", t);
  need_numel(op, "t", t, y.shape[0]);
  if (planning_) return;
  OpTimer timer(this, "layout", 0.0);
  do_timestep_embedding(y, t, max_period);
}

void Backend::get_rows(Tensor& y, const Tensor& table, const int32_t* ids, int64_t n_ids) {
  const char* op = "get_rows";
  need_act(op, "y", y, activation_type());
  need_ndim(op, "table", table, 2);
  if (y.rows() != n_ids || y.row_len() != table.shape[1])
    fail(op, "y " + y.shape_str() + " must be [" + std::to_string(n_ids) + ", " + std::to_string(table.shape[1]) + "]");
  for (int64_t i = 0; i < n_ids; ++i)
    if (ids[i] < 0 || ids[i] >= table.shape[0])
      fail(op, "id " + std::to_string(ids[i]) + " at " + std::to_string(i) + " outside [0, " + std::to_string(table.shape[0]) + ")");
  if (planning_) return;
  OpTimer timer(this, "layout", 0.0);
  do_get_rows(y, table, ids, n_ids);
}

}  // namespace sd
