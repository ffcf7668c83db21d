#include "models/layers.h"

#include <stdexcept>

namespace sd {

Tensor Net::like(const Tensor& x) {
  switch (x.ndim) {
    case 1: return act({x.shape[0]});
    case 2: return act({x.shape[0], x.shape[1]});
    case 3: return act({x.shape[0], x.shape[1], x.shape[2]});
    default: return act({x.shape[0], x.shape[1], x.shape[2], x.shape[3]});
  }
}

namespace {
// `p.weight`, which must have `ndim` dims (`what` names such a weight in the error).
const Tensor& weight_of(const Weights& w, const std::string& p, int ndim, const char* what) {
  const Tensor& wt = w.get(p + ".weight");
  if (wt.ndim != ndim) throw std::runtime_error("weight '" + p + ".weight' " + wt.shape_str() + " is not " + what);
  return wt;
}
// The weight of a linear ([N, K]) and of a conv ([Co, Ci, k, k]).
const Tensor& matrix(const Weights& w, const std::string& p) { return weight_of(w, p, 2, "a matrix"); }
const Tensor& kernel(const Weights& w, const std::string& p) { return weight_of(w, p, 4, "a conv kernel"); }
}  // namespace

Tensor Net::conv(const Tensor& x, const std::string& p, int stride, int pad) {
  const Tensor& wt = w.get(p + ".weight");
  if (wt.ndim == 2) {  // stored as a matrix: a 1x1 conv
    if (stride != 1) throw std::runtime_error("weight '" + p + ".weight' is 1x1 but used with stride");
    return conv1x1(x, p);
  }
  const int64_t k = wt.shape[2];
  if (pad < 0) pad = static_cast<int>(k / 2);
  const int64_t ho = (x.shape[2] + 2 * pad - k) / stride + 1, wo = (x.shape[3] + 2 * pad - k) / stride + 1;
  Tensor y = act({x.shape[0], wt.shape[0], ho, wo});
  be.conv2d(y, x, wt, w.find(p + ".bias"), stride, pad);
  return y;  // [N, Co, Ho, Wo]
}

Tensor Net::conv_add(const Tensor& x, const std::string& p, const Tensor* chan, const Tensor* res) {
  const Tensor& wt = kernel(w, p);
  Tensor y = act({x.shape[0], wt.shape[0], x.shape[2], x.shape[3]});
  conv_add_into(y, x, p, chan, res);
  return y;
}

void Net::conv_add_into(Tensor& y, const Tensor& x, const std::string& p, const Tensor* chan, const Tensor* res) {
  const Tensor& wt = kernel(w, p);
  be.conv2d_add(y, x, wt, w.find(p + ".bias"), 1, static_cast<int>(wt.shape[2] / 2), chan, res);
}

Tensor Net::norm_conv_add(const Tensor& x, const std::string& norm, float eps, const std::string& p,
                          const Tensor* chan, const Tensor* res) {
  const Tensor& wt = kernel(w, p);
  Tensor y = act({x.shape[0], wt.shape[0], x.shape[2], x.shape[3]});
  norm_conv_add_into(y, x, norm, eps, p, chan, res);
  return y;
}

void Net::norm_conv_add_into(Tensor& y, const Tensor& x, const std::string& norm, float eps, const std::string& p,
                             const Tensor* chan, const Tensor* res) {
  const Tensor& wt = kernel(w, p);
  Tensor t = like(x);
  be.norm_conv2d(y, t, x, 32, w.get(norm + ".weight"), w.get(norm + ".bias"), eps, true, wt, w.find(p + ".bias"), 1,
                 static_cast<int>(wt.shape[2] / 2), chan, res);
}

Tensor Net::conv1x1(const Tensor& x, const std::string& p) {
  const Tensor& wt = w.get(p + ".weight");
  const Tensor* b = w.find(p + ".bias");
  const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  if (wt.ndim != 2 || wt.shape[1] != C)
    throw std::runtime_error("weight '" + p + ".weight' " + wt.shape_str() + " is not a 1x1 conv over " +
                             std::to_string(C) + " channels");
  const int64_t Co = wt.shape[0];
  Tensor y = act({N, Co, H, W});
  Tensor w4 = wt.reshaped({Co, C, 1, 1});
  be.conv2d(y, x, w4, b, 1, 0);
  return y;
}

Tensor Net::linear(const Tensor& x, const std::string& p, bool bias) {
  const Tensor& wt = matrix(w, p);
  const Tensor* b = bias ? &w.get(p + ".bias") : nullptr;
  Tensor y = x;
  y.shape[y.ndim - 1] = wt.shape[0];
  y = like(y);
  be.linear(y, x, wt, b);
  return y;
}

void Net::linear_into(Tensor& y, const Tensor& x, const std::string& p, bool bias) {
  const Tensor& wt = matrix(w, p);
  be.linear(y, x, wt, bias ? &w.get(p + ".bias") : nullptr);
}

Tensor Net::linear_geglu(const Tensor& x, const std::string& p) {
  const Tensor& wt = matrix(w, p);
  const Tensor& b = w.get(p + ".bias");
  if (!be.fuses_linear_geglu(x, wt)) {
    Tensor pr = linear(x, p);
    Tensor g = pr;
    g.shape[g.ndim - 1] /= 2;
    g = like(g);
    be.geglu(g, pr);
    return g;
  }
  Tensor g = x;
  g.shape[g.ndim - 1] = wt.shape[0] / 2;
  g = like(g);
  be.linear_geglu(g, x, wt, &b);
  return g;
}

void Net::linear_to_channels(Tensor& y, const Tensor& x, const std::string& p, const Tensor& res) {
  const Tensor& wt = matrix(w, p);
  const Tensor& b = w.get(p + ".bias");
  if (be.fuses_linear_to_channels()) return be.linear_to_channels(y, x, wt, &b, res);
  Tensor back = transpose12(linear(x, p));                      // [B, C, H * W]
  be.add(y, back.reshaped({y.shape[0], y.shape[1], y.shape[2], y.shape[3]}), res);
}

void Net::linear_add_into(Tensor& y, const Tensor& x, const std::string& p, bool bias) {
  if (!be.fuses_linear_add()) return add_inplace(y, linear(x, p, bias));
  const Tensor& wt = matrix(w, p);
  be.linear_add(y, x, wt, bias ? &w.get(p + ".bias") : nullptr);
}

void Net::linear_n_into(std::initializer_list<Tensor*> ys, const Tensor& x, std::initializer_list<std::string> ps) {
  if (ys.size() != ps.size() || ps.size() > static_cast<size_t>(Backend::kMaxLinearN))
    throw std::invalid_argument("linear_n_into: " + std::to_string(ys.size()) + " outputs for " +
                                std::to_string(ps.size()) + " weights");
  const Tensor* ws[Backend::kMaxLinearN];
  int i = 0;
  for (const std::string& p : ps) {
    const Tensor& wt = matrix(w, p);
    ws[i++] = &wt;
  }
  be.linear_n(ys.begin(), x, ws, i);
}

Tensor Net::group_norm(const Tensor& x, const std::string& p, float eps, bool silu, int groups) {
  Tensor y = like(x);
  be.group_norm(y, x, groups, w.get(p + ".weight"), w.get(p + ".bias"), eps, silu);
  return y;
}

Tensor Net::layer_norm(const Tensor& x, const std::string& p, float eps) {
  Tensor y = like(x);
  be.layer_norm(y, x, w.get(p + ".weight"), w.get(p + ".bias"), eps);
  return y;
}

Tensor Net::add(const Tensor& a, const Tensor& b) {
  Tensor y = like(a);
  be.add(y, a, b);
  return y;
}

Tensor Net::transpose12(const Tensor& x) {
  Tensor y = act({x.shape[0], x.shape[2], x.shape[1]});
  be.transpose12(y, x);
  return y;
}

Tensor Net::pad_right_bottom(const Tensor& x) {
  const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  Tensor y = act({N, C, H + 1, W + 1});
  const size_t m = be.mark();
  // Zeros come from scaling a prefix of an existing activation by 0 (activations are finite).
  Tensor z1 = act({N * C * H, 1, 1, 1});
  be.scale(z1, Tensor(x.type, {N * C * H, 1, 1, 1}, x.data), 0.0f);
  Tensor rows = act({N * C * H, W + 1, 1, 1});  // every row gets a zero column on the right
  be.concat_channels(rows, x.reshaped({N * C * H, W, 1, 1}), z1);
  Tensor z2 = act({N * C, W + 1, 1, 1});
  be.scale(z2, Tensor(rows.type, {N * C, W + 1, 1, 1}, rows.data), 0.0f);
  Tensor y2 = y.reshaped({N * C, (H + 1) * (W + 1), 1, 1});  // every plane gets a zero row at the bottom
  be.concat_channels(y2, rows.reshaped({N * C, H * (W + 1), 1, 1}), z2);
  be.rewind(m);
  return y;  // [N, C, H + 1, W + 1]
}

}  // namespace sd
