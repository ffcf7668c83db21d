// Building blocks shared by the three networks: each takes the checkpoint prefix of its weights
// ("...in_layers.2") and allocates its output from the backend's arena. Temporaries are released
// with mark/rewind, so a block leaves only its output behind.
#pragma once
#include <string>

#include "models/weights.h"
#include "ops.h"

namespace sd {

struct Net {
  Backend& be;
  const Weights& w;

  // A new activation, stored as the backend's activation_type() (f32, or f16 on a GPU).
  Tensor act(std::initializer_list<int64_t> dims) { return be.alloc(be.activation_type(), dims); }
  // A new activation with x's shape.
  Tensor like(const Tensor& x);

  // [N, Ci, H, W] -> [N, Co, Ho, Wo]; `p.weight` [Co, Ci, k, k], `p.bias` [Co]. Pad k/2 unless given.
  Tensor conv(const Tensor& x, const std::string& p, int stride = 1, int pad = -1);
  // conv(x) (padded k/2, stride 1) + chan[N, Co] broadcast over H, W + res, either optional, in one
  // Backend::conv2d_add (a backend may add them in the conv's epilogue); into a new tensor or y.
  Tensor conv_add(const Tensor& x, const std::string& p, const Tensor* chan, const Tensor* res);
  void conv_add_into(Tensor& y, const Tensor& x, const std::string& p, const Tensor* chan, const Tensor* res);
  // GroupNorm (32 groups, weights at `norm`) -> SiLU -> the 3x3 conv at `p` (padding 1) + chan + res,
  // as Backend::norm_conv2d; the normalised input's room is allocated here (the planner sees it).
  Tensor norm_conv_add(const Tensor& x, const std::string& norm, float eps, const std::string& p, const Tensor* chan,
                       const Tensor* res);
  void norm_conv_add_into(Tensor& y, const Tensor& x, const std::string& norm, float eps, const std::string& p,
                          const Tensor* chan, const Tensor* res);
  // 1x1 conv over channels of [N, Ci, H, W] with a weight stored as [Co, Ci] (any dtype).
  Tensor conv1x1(const Tensor& x, const std::string& p);
  // [..., K] -> [..., N]; `p.weight` [N, K], `p.bias` [N] when bias.
  Tensor linear(const Tensor& x, const std::string& p, bool bias = true);
  // Into y (allocated by the caller, e.g. before temporaries it then rewinds).
  void linear_into(Tensor& y, const Tensor& x, const std::string& p, bool bias = true);
  // y += linear(x): in the GEMM's epilogue where the backend fuses it, else a linear and an add.
  void linear_add_into(Tensor& y, const Tensor& x, const std::string& p, bool bias = true);
  // Bias-free projections of one input into caller-allocated ys (attention's q, k, v): one
  // Backend::linear_n, which a GPU runs as one GEMM.
  void linear_n_into(std::initializer_list<Tensor*> ys, const Tensor& x, std::initializer_list<std::string> ps);
  // GEGLU: a * gelu(gate) for [a | gate] = linear(x) (`p.weight` [2F, K]) -> [..., F]; one fused
  // GEMM where the backend has it (Backend::linear_geglu), else a linear and a geglu.
  Tensor linear_geglu(const Tensor& x, const std::string& p);
  // y [B, C, H, W] = res + linear(x) transposed, for tokens x [B, H * W, K]: one GEMM where the
  // backend fuses it (Backend::linear_to_channels), else a linear, a transpose12 and an add.
  void linear_to_channels(Tensor& y, const Tensor& x, const std::string& p, const Tensor& res);
  Tensor group_norm(const Tensor& x, const std::string& p, float eps, bool silu, int groups = 32);
  Tensor layer_norm(const Tensor& x, const std::string& p, float eps = 1e-5f);
  // y = a + b (b broadcast as in ops.h), into a new tensor or in place into a.
  Tensor add(const Tensor& a, const Tensor& b);
  void add_inplace(Tensor& a, const Tensor& b) { be.add(a, a, b); }
  // [B, A, C] <-> [B, C, A]
  Tensor transpose12(const Tensor& x);
  // Zero-pads [N, C, H, W] by one row at the bottom and one column at the right (the VAE encoder's
  // asymmetric downsample padding), built from concat_channels over reshaped views.
  Tensor pad_right_bottom(const Tensor& x);
};

}  // namespace sd
