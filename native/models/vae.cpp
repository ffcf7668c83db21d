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

// norm1 -> SiLU -> conv1 -> norm2 -> SiLU -> conv2, + x (nin_shortcut when widths differ), into
// `out` (which must not alias x). x is consumed: the shortcut goes to `out` first, then x's buffer
// (`room`, the ping-pong buffer x lies at the start of, at least B * Co * H * W floats) takes norm1's
// output in place (Backend::norm_conv2d's room, which a backend may leave unwritten) and later
// conv2's. So a block adds one scratch tensor (conv1's output) to the
// two ping-pong buffers: at 512x512 the decoder's arena is 0.67 GB instead of 0.94 GB.
void resnet(Net& n, Tensor& out, Tensor& x, const Tensor& room, const std::string& p) {
  const int64_t B = x.shape[0], Ci = x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t Co = out.shape[1];
  if (room.data != x.data || room.numel() < B * std::max(Ci, Co) * H * W)
    throw std::logic_error("vae resnet: x must start a buffer that holds the block's widest activation");
  const size_t m = n.be.mark();
  if (n.w.has(p + "nin_shortcut.weight")) {
    n.be.conv2d(out, x, n.w.get(p + "nin_shortcut.weight", {Co, Ci, 1, 1}).reshaped({Co, Ci, 1, 1}),
                n.w.find(p + "nin_shortcut.bias"), 1, 0);
  } else {
    n.be.copy(out, x);
  }
  Tensor b = n.act({B, Co, H, W});
  n.be.norm_conv2d(b, x, x, 32, n.w.get(p + "norm1.weight"), n.w.get(p + "norm1.bias"), kEps, true,
                   n.w.get(p + "conv1.weight", {Co, Ci, 3, 3}), n.w.find(p + "conv1.bias"), 1, 1, nullptr, nullptr);
  Tensor t(room.type, {B, Co, H, W}, room.data);
  n.be.norm_conv2d(t, b, b, 32, n.w.get(p + "norm2.weight"), n.w.get(p + "norm2.bias"), kEps, true,
                   n.w.get(p + "conv2.weight", {Co, Co, 3, 3}), n.w.find(p + "conv2.bias"), 1, 1, nullptr, nullptr);
  n.be.add(out, out, t);
  n.be.rewind(m);
}

// Single-head self-attention over the H*W positions, scale C^-0.5; q/k/v/proj_out are 1x1 convs,
// applied here as per-token linears. Into `out` (not aliasing x).
void attn_block(Net& n, Tensor& out, const Tensor& x, const std::string& p) {
  const int64_t B = x.shape[0], C = x.shape[1], HW = x.shape[2] * x.shape[3];
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
}

std::string level(const char* part, const char* kind, int64_t i) {
  return kRoot + part + "." + kind + "." + std::to_string(i) + ".";
}
std::string block(const std::string& lvl, int64_t j) { return lvl + "block." + std::to_string(j) + "."; }

int fused_upsample_mode = -1;  // vae_set_fused_upsample

// The main path alternates between two buffers: each block reads one and writes the other, so
// full-resolution activations do not pile up in the arena. Each buffer is sized for the largest
// activation placed in it (DecoderWalk), which the upsample's parity makes uneven.
struct PingPong {
  Net& n;
  Tensor buf[2];
  int cur = 0;
  PingPong(Net& net, int64_t numel0, int64_t numel1) : n(net) {
    buf[0] = n.act({numel0});
    buf[1] = n.act({numel1});
  }
  PingPong(Net& net, int64_t max_numel) : PingPong(net, max_numel, max_numel) {}
  // A [B, C, H, W] view of the buffer that does not hold the current activation; it becomes current.
  Tensor next(int64_t B, int64_t C, int64_t H, int64_t W) {
    cur ^= 1;
    if (B * C * H * W > buf[cur].numel()) throw std::logic_error("vae: ping-pong buffer sized too small");
    return Tensor(buf[cur].type, {B, C, H, W}, buf[cur].data);
  }
  // The whole buffer that is not current: after next(), the one holding the previous activation.
  const Tensor& other() const { return buf[cur ^ 1]; }
};

int64_t out_channels(const Weights& w, const std::string& p) { return w.get(p + ".weight").shape[0]; }

Tensor mid(Net& n, PingPong& pp, Tensor h, const std::string& p) {
  const int64_t B = h.shape[0], H = h.shape[2], W = h.shape[3];
  Tensor y = pp.next(B, out_channels(n.w, p + "mid.block_1.conv1"), H, W);
  resnet(n, y, h, pp.other(), p + "mid.block_1.");
  h = y;
  y = pp.next(B, h.shape[1], H, W);
  attn_block(n, y, h, p + "mid.attn_1.");
  h = y;
  y = pp.next(B, out_channels(n.w, p + "mid.block_2.conv1"), H, W);
  resnet(n, y, h, pp.other(), p + "mid.block_2.");
  return y;
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

void vae_set_fused_upsample(int mode) { fused_upsample_mode = mode < 0 ? -1 : mode > 0 ? 1 : 0; }

namespace {

// The decoder's ping-pong sequence without the math: the largest activation each buffer receives
// (a resnet also needs the buffer holding its input to fit max(Ci, Co) wide). Mirrors vae_decode's
// loop; PingPong::next and resnet check every view against what this sized.
struct DecoderWalk {
  int64_t need[2] = {0, 0};
  int64_t H = 0, W = 0;  // the image's size
  int cur = 0;
  void next(int64_t numel) { cur ^= 1; need[cur] = std::max(need[cur], numel); }
  void input_needs(int64_t numel) { need[cur ^ 1] = std::max(need[cur ^ 1], numel); }
};

DecoderWalk walk_decoder(const Weights& w, const VaeConfig& c, int64_t B, int64_t H, int64_t W, bool fused) {
  const std::string p = kRoot + "decoder.";
  DecoderWalk k;
  int64_t ch = out_channels(w, p + "conv_in");
  k.next(B * ch * H * W);
  auto res = [&](const std::string& blk) {
    const int64_t co = out_channels(w, blk + "conv1");
    k.next(B * co * H * W);
    k.input_needs(B * std::max(ch, co) * H * W);
    ch = co;
  };
  res(p + "mid.block_1.");
  k.next(B * ch * H * W);  // attention
  res(p + "mid.block_2.");
  for (int64_t i = c.levels - 1; i >= 0; --i) {
    const std::string up = level("decoder", "up", i);
    for (int64_t j = 0; w.has(block(up, j) + "conv1.weight"); ++j) res(block(up, j));
    if (w.has(up + "upsample.conv.weight")) {
      H *= 2, W *= 2;
      if (!fused) k.next(B * ch * H * W);
      ch = out_channels(w, up + "upsample.conv");
      k.next(B * ch * H * W);
    }
  }
  k.next(B * ch * H * W);  // norm_out
  k.H = H, k.W = W;
  return k;
}

}  // namespace

Tensor vae_decode(Net& n, const VaeConfig& c, const Tensor& z) {
  if (!c.has_decoder) throw std::runtime_error("this model has no VAE decoder (missing '" + kRoot + "decoder.conv_in.weight')");
  const std::string p = kRoot + "decoder.";
  const int64_t B = z.shape[0];
  // Backends that fuse the nearest 2x upsample into the next conv never store the 2x input: at
  // 512x512 that is 256 channels at full resolution, and one buffer shrinks to half (0.67 -> 0.54 GB).
  const bool fused = fused_upsample_mode < 0 ? n.be.fuses_upsample_conv() : fused_upsample_mode == 1;
  const DecoderWalk walk = walk_decoder(n.w, c, B, z.shape[2], z.shape[3], fused);
  Tensor out = n.act({B, c.image_channels, walk.H, walk.W});
  const size_t m = n.be.mark();
  PingPong pp(n, walk.need[0], walk.need[1]);
  Tensor zq = n.conv(z, kRoot + "post_quant_conv");             // [B, 4, h, w]
  Tensor h = pp.next(B, out_channels(n.w, p + "conv_in"), z.shape[2], z.shape[3]);
  n.be.conv2d(h, zq, n.w.get(p + "conv_in.weight"), n.w.find(p + "conv_in.bias"), 1, 1);
  h = mid(n, pp, h, p);                                         // [B, ch * mult[-1], h, w]
  for (int64_t i = c.levels - 1; i >= 0; --i) {
    const std::string up = level("decoder", "up", i);
    for (int64_t j = 0; n.w.has(block(up, j) + "conv1.weight"); ++j) {
      Tensor y = pp.next(B, out_channels(n.w, block(up, j) + "conv1"), h.shape[2], h.shape[3]);
      resnet(n, y, h, pp.other(), block(up, j));
      h = y;
    }
    if (n.w.has(up + "upsample.conv.weight")) {                 // nearest x2, conv3x3
      const Tensor& wt = n.w.get(up + "upsample.conv.weight");
      const Tensor* bias = n.w.find(up + "upsample.conv.bias");
      if (fused) {
        Tensor y = pp.next(B, wt.shape[0], 2 * h.shape[2], 2 * h.shape[3]);
        n.be.conv2d_upsampled(y, h, wt, bias);
        h = y;
      } else {
        Tensor u = pp.next(B, h.shape[1], 2 * h.shape[2], 2 * h.shape[3]);
        n.be.upsample_nearest(u, h);
        h = pp.next(B, wt.shape[0], u.shape[2], u.shape[3]);
        n.be.conv2d(h, u, wt, bias, 1, 1);
      }
    }
  }
  Tensor y = pp.next(B, h.shape[1], h.shape[2], h.shape[3]);
  n.be.group_norm(y, h, 32, n.w.get(p + "norm_out.weight"), n.w.get(p + "norm_out.bias"), kEps, true);
  n.be.conv2d(out, y, n.w.get(p + "conv_out.weight"), n.w.find(p + "conv_out.bias"), 1, 1);
  n.be.rewind(m);
  return out;                                                   // [B, 3, 8h, 8w]
}

Tensor vae_encode(Net& n, const VaeConfig& c, const Tensor& img) {
  if (!c.has_encoder) throw std::runtime_error("this model has no VAE encoder (missing '" + kRoot + "encoder.conv_in.weight')");
  const std::string p = kRoot + "encoder.";
  const int64_t B = img.shape[0];
  int64_t H = img.shape[2], W = img.shape[3], most = B * out_channels(n.w, p + "conv_in") * H * W;
  for (int64_t i = 0; i < c.levels; ++i) {
    const std::string down = level("encoder", "down", i);
    for (int64_t j = 0; n.w.has(block(down, j) + "conv1.weight"); ++j)
      most = std::max(most, B * out_channels(n.w, block(down, j) + "conv1") * H * W);
    if (n.w.has(down + "downsample.conv.weight")) H /= 2, W /= 2;
  }
  const int64_t z2 = out_channels(n.w, kRoot + "quant_conv");
  Tensor out = n.act({B, z2, H, W});
  const size_t m = n.be.mark();
  PingPong pp(n, most);
  Tensor h = pp.next(B, out_channels(n.w, p + "conv_in"), img.shape[2], img.shape[3]);
  n.be.conv2d(h, img, n.w.get(p + "conv_in.weight"), n.w.find(p + "conv_in.bias"), 1, 1);
  for (int64_t i = 0; i < c.levels; ++i) {
    const std::string down = level("encoder", "down", i);
    for (int64_t j = 0; n.w.has(block(down, j) + "conv1.weight"); ++j) {
      Tensor y = pp.next(B, out_channels(n.w, block(down, j) + "conv1"), h.shape[2], h.shape[3]);
      resnet(n, y, h, pp.other(), block(down, j));
      h = y;
    }
    if (n.w.has(down + "downsample.conv.weight")) {             // pad right/bottom by 1, conv3x3 stride 2
      const size_t mp = n.be.mark();
      Tensor padded = n.pad_right_bottom(h);                    // [B, C, H + 1, W + 1]
      Tensor y = pp.next(B, h.shape[1], h.shape[2] / 2, h.shape[3] / 2);
      n.be.conv2d(y, padded, n.w.get(down + "downsample.conv.weight"), n.w.find(down + "downsample.conv.bias"), 2, 0);
      n.be.rewind(mp);
      h = y;
    }
  }
  h = mid(n, pp, h, p);
  Tensor y = pp.next(B, h.shape[1], h.shape[2], h.shape[3]);
  n.be.group_norm(y, h, 32, n.w.get(p + "norm_out.weight"), n.w.get(p + "norm_out.bias"), kEps, true);
  Tensor moments = n.conv(y, p + "conv_out");                   // [B, 2 * z, H/8, W/8]
  n.be.conv2d(out, moments, n.w.get(kRoot + "quant_conv.weight").reshaped({z2, z2, 1, 1}),
              n.w.find(kRoot + "quant_conv.bias"), 1, 0);       // mean ‖ logvar
  n.be.rewind(m);
  return out;
}

}  // namespace sd
