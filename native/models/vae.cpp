// Reads side by side with ldm/modules/diffusionmodules/model.py (Encoder, Decoder, ResnetBlock,
// AttnBlock). GroupNorm is 32 groups, eps 1e-6 everywhere.
#include "models/vae.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace sd {
namespace {

const std::string kRoot = "first_stage_model.";
constexpr float kEps = 1e-6f;

// norm1 -> SiLU -> conv1 -> norm2 -> SiLU -> conv2, + x (nin_shortcut when widths differ).
// Two scratch tensors are reused (norm output, conv output) to keep full-resolution peaks low.
Tensor resnet(Net& n, const Tensor& x, const std::string& p) {
  const int64_t B = x.shape[0], Ci = x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t Co = n.w.get(p + "conv1.weight").shape[0];
  Tensor out = n.f32({B, Co, H, W});
  const size_t m = n.be.mark();
  Tensor a = n.f32({B, std::max(Ci, Co), H, W});
  Tensor b = n.f32({B, Co, H, W});
  Tensor an = a.reshaped({B, Ci, H, W});
  n.be.group_norm(an, x, 32, n.w.get(p + "norm1.weight"), n.w.get(p + "norm1.bias"), kEps, true);
  n.be.conv2d(b, an, n.w.get(p + "conv1.weight"), n.w.find(p + "conv1.bias"), 1, 1);
  Tensor ao = a.reshaped({B, Co, H, W});
  n.be.group_norm(ao, b, 32, n.w.get(p + "norm2.weight"), n.w.get(p + "norm2.bias"), kEps, true);
  n.be.conv2d(b, ao, n.w.get(p + "conv2.weight"), n.w.find(p + "conv2.bias"), 1, 1);
  Tensor skip = n.w.has(p + "nin_shortcut.weight") ? n.conv1x1(x, p + "nin_shortcut") : x;
  n.be.add(out, skip, b);
  n.be.rewind(m);
  return out;
}

// Single-head self-attention over the H*W positions, scale C^-0.5; q/k/v/proj_out are 1x1 convs,
// applied here as per-token linears.
Tensor attn_block(Net& n, const Tensor& x, const std::string& p) {
  const int64_t B = x.shape[0], C = x.shape[1], HW = x.shape[2] * x.shape[3];
  Tensor out = n.like(x);
  const size_t m = n.be.mark();
  Tensor h = n.group_norm(x, p + "norm", kEps, false);
  Tensor t = n.transpose12(h.reshaped({B, C, HW}));             // [B, HW, C]
  Tensor q = n.linear(t, p + "q"), k = n.linear(t, p + "k"), v = n.linear(t, p + "v");
  Tensor a = n.like(q);
  n.be.attention(a, q, k, v, 1, false);
  Tensor o = n.linear(a, p + "proj_out");
  Tensor back = n.transpose12(o);                               // [B, C, HW]
  n.be.add(out, back.reshaped({B, C, x.shape[2], x.shape[3]}), x);
  n.be.rewind(m);
  return out;
}

std::string level(const char* part, const char* kind, int64_t i) {
  return kRoot + part + "." + kind + "." + std::to_string(i) + ".";
}

Tensor mid(Net& n, Tensor h, const std::string& p) {
  h = resnet(n, h, p + "mid.block_1.");
  h = attn_block(n, h, p + "mid.attn_1.");
  return resnet(n, h, p + "mid.block_2.");
}

}  // namespace

VaeConfig vae_config(const Weights& w) {
  VaeConfig c;
  c.has_decoder = w.has(kRoot + "decoder.conv_in.weight");
  c.has_encoder = w.has(kRoot + "encoder.conv_in.weight");
  if (!c.has_decoder && !c.has_encoder) throw std::runtime_error("missing weight '" + kRoot + "decoder.conv_in.weight'");
  if (c.has_decoder) {
    c.z_channels = w.get(kRoot + "post_quant_conv.weight").shape[0];
    c.image_channels = w.get(kRoot + "decoder.conv_out.weight").shape[0];
    while (w.has(level("decoder", "up", c.levels) + "block.0.conv1.weight")) ++c.levels;
  } else {
    c.z_channels = w.get(kRoot + "quant_conv.weight").shape[0] / 2;
    c.image_channels = w.get(kRoot + "encoder.conv_in.weight").shape[1];
    while (w.has(level("encoder", "down", c.levels) + "block.0.conv1.weight")) ++c.levels;
  }
  if (c.levels < 1) throw std::runtime_error("VAE has no resolution levels");
  return c;
}

Tensor vae_decode(Net& n, const VaeConfig& c, const Tensor& z) {
  if (!c.has_decoder) throw std::runtime_error("this model has no VAE decoder (missing '" + kRoot + "decoder.conv_in.weight')");
  const std::string p = kRoot + "decoder.";
  const int64_t B = z.shape[0];
  Tensor h = n.conv(z, kRoot + "post_quant_conv");              // [B, 4, h, w]
  h = n.conv(h, p + "conv_in");                                 // [B, ch * mult[-1], h, w]
  h = mid(n, h, p);
  for (int64_t i = c.levels - 1; i >= 0; --i) {
    const std::string up = level("decoder", "up", i);
    for (int64_t j = 0; n.w.has(up + "block." + std::to_string(j) + ".conv1.weight"); ++j)
      h = resnet(n, h, up + "block." + std::to_string(j) + ".");
    if (n.w.has(up + "upsample.conv.weight")) {
      Tensor u = n.f32({B, h.shape[1], 2 * h.shape[2], 2 * h.shape[3]});
      n.be.upsample_nearest(u, h);
      h = n.conv(u, up + "upsample.conv");
    }
  }
  h = n.group_norm(h, p + "norm_out", kEps, true);
  return n.conv(h, p + "conv_out");                             // [B, 3, 8h, 8w]
}

Tensor vae_encode(Net& n, const VaeConfig& c, const Tensor& img) {
  if (!c.has_encoder) throw std::runtime_error("this model has no VAE encoder (missing '" + kRoot + "encoder.conv_in.weight')");
  const std::string p = kRoot + "encoder.";
  Tensor h = n.conv(img, p + "conv_in");                        // [B, ch, H, W]
  for (int64_t i = 0; n.w.has(level("encoder", "down", i) + "block.0.conv1.weight"); ++i) {
    const std::string down = level("encoder", "down", i);
    for (int64_t j = 0; n.w.has(down + "block." + std::to_string(j) + ".conv1.weight"); ++j)
      h = resnet(n, h, down + "block." + std::to_string(j) + ".");
    if (n.w.has(down + "downsample.conv.weight")) {
      Tensor padded = n.pad_right_bottom(h);                    // [B, C, H + 1, W + 1]
      h = n.conv(padded, down + "downsample.conv", 2, 0);       // [B, C, H / 2, W / 2]
    }
  }
  h = mid(n, h, p);
  h = n.group_norm(h, p + "norm_out", kEps, true);
  h = n.conv(h, p + "conv_out");                                // [B, 2 * z, H/8, W/8]
  return n.conv(h, kRoot + "quant_conv");                       // mean ‖ logvar
}

}  // namespace sd
