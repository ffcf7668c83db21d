// Reads side by side with ldm/modules/diffusionmodules/openaimodel.py and ldm/modules/attention.py.
#include "models/unet.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

namespace sd {
namespace {

const std::string kRoot = "model.diffusion_model.";
int64_t ff_chunk_rows = 0;  // 0: by activation type (ff_chunk)

// f32 activations (the CPU): 2048 tokens, for the arena (below). f16 (a GPU): 8192, all of a 512x512
// CFG step's level-0 tokens at once: its chunks' GEMMs (2048 x 1280 > 320) had filled 48 of an
// H200's 264 block slots (44 TFLOP/s), and in f16 the whole 4C-wide inner activation is 63 MB,
// under the VAE decoder's arena that sets the peak anyway.
int64_t ff_chunk(DType act) {
  if (ff_chunk_rows > 0) return ff_chunk_rows;
  return act == DType::F16 ? 8192 : 2048;
}

std::string blk(const char* group, int64_t i) { return kRoot + group + "." + std::to_string(i) + "."; }

// ResBlock: GN -> SiLU -> conv; + emb_layers(SiLU(emb)); GN -> SiLU -> conv; + skip. Each norm goes
// with its conv and the adds with the convs (Backend::norm_conv2d: on a GPU the norm in the conv's
// input layout pass, the adds in its epilogue; the same bits as the separate ops on the CPU).
// Writes into `out` [B, Co, H, W], which must not alias x.
void res_block(Net& n, Tensor& out, const Tensor& x, const Tensor& emb_act, const std::string& p) {
  const size_t m = n.be.mark();
  Tensor e = n.linear(emb_act, p + "emb_layers.1");             // [B, Co]
  Tensor h = n.norm_conv_add(x, p + "in_layers.0", 1e-5f, p + "in_layers.2", &e, nullptr);  // [B, Co, H, W]
  const Tensor skip = n.w.has(p + "skip_connection.weight") ? n.conv(x, p + "skip_connection") : x;
  n.norm_conv_add_into(out, h, p + "out_layers.0", 1e-5f, p + "out_layers.3", nullptr, &skip);
  n.be.rewind(m);
}

int64_t res_out_channels(const Weights& w, const std::string& p) { return w.get(p + "in_layers.2.weight").shape[0]; }

Tensor res_block(Net& n, const Tensor& x, const Tensor& emb_act, const std::string& p) {
  Tensor out = n.act({x.shape[0], res_out_channels(n.w, p), x.shape[2], x.shape[3]});
  res_block(n, out, x, emb_act, p);
  return out;
}

// The CrossKV slot of the transformer block at prefix p.
size_t cross_index(const UnetConfig& c, const std::string& p) {
  const auto it = std::lower_bound(c.cross_blocks.begin(), c.cross_blocks.end(), p);
  if (it == c.cross_blocks.end() || *it != p) throw std::logic_error("no cross-attention keys for '" + p + "'");
  return static_cast<size_t>(it - c.cross_blocks.begin());
}

// ck, cv: the block's cross-attention keys and values (CrossKV).
void basic_block(Net& n, Tensor& x, const Tensor& ck, const Tensor& cv, const std::string& p, int heads) {
  const size_t m = n.be.mark();
  {  // self-attention; q, k, v first so the norm's output can be rewound before attention
    Tensor q = n.like(x), k = n.like(x), v = n.like(x);         // [B, HW, C]
    const size_t mh = n.be.mark();
    Tensor h = n.layer_norm(x, p + "norm1");
    n.linear_n_into({&q, &k, &v}, h, {p + "attn1.to_q", p + "attn1.to_k", p + "attn1.to_v"});
    n.be.rewind(mh);
    Tensor a = n.like(q);
    n.be.attention(a, q, k, v, heads, false);
    n.linear_add_into(x, a, p + "attn1.to_out.0");
    n.be.rewind(m);
  }
  {  // cross-attention over the text context
    Tensor q = n.like(x);                                       // [B, HW, C]
    const size_t mh = n.be.mark();
    Tensor h = n.layer_norm(x, p + "norm2");
    n.linear_into(q, h, p + "attn2.to_q", false);
    n.be.rewind(mh);
    Tensor a = n.like(q);
    n.be.attention(a, q, ck, cv, heads, false);
    n.linear_add_into(x, a, p + "attn2.to_out.0");
    n.be.rewind(m);
  }
  // GEGLU feed-forward, a chunk of tokens at a time: every op in it works per token, and its
  // 4C-wide inner activations are the UNet's largest (8192 tokens x 2560 x 4 B = 84 MB at 512x512
  // with CFG), so chunking takes ~95 MB off the arena at 512 (334 -> 240 MB) for the same bits.
  const int64_t C = x.shape[2], rows = x.shape[0] * x.shape[1], chunk = std::min(rows, ff_chunk(x.type));
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t nr = std::min(chunk, rows - r0);
    Tensor xr(x.type, {nr, C}, x.data ? static_cast<uint8_t*>(x.data) + dtype_row_bytes(x.type, r0 * C) : nullptr);
    Tensor h = n.layer_norm(xr, p + "norm3");
    Tensor g = n.linear_geglu(h, p + "ff.net.0.proj");          // [nr, F]: a * gelu(gate)
    n.linear_add_into(xr, g, p + "ff.net.2");
    n.be.rewind(m);
  }
}

// SpatialTransformer: GN(eps 1e-6) -> proj_in -> blocks over [B, HW, C] -> proj_out -> + x.
// Writes into `out` (x's shape), which must not alias x.
void spatial_transformer(Net& n, Tensor& out, const Tensor& x, const UnetConfig& c, const CrossKV& kv,
                         const std::string& p) {
  const int64_t B = x.shape[0], C = x.shape[1], HW = x.shape[2] * x.shape[3];
  const size_t m = n.be.mark();
  // proj_in's output first, so the norm and transpose temporaries are rewound before the blocks.
  const Tensor& w_in = n.w.get(p + "proj_in.weight");
  Tensor t = n.act({B, HW, w_in.shape[0]});
  {
    const size_t mt = n.be.mark();
    Tensor h = n.group_norm(x, p + "norm", 1e-6f, false);
    n.linear_into(t, n.transpose12(h.reshaped({B, C, HW})), p + "proj_in");  // 1x1 conv == per-token linear
    n.be.rewind(mt);
  }
  for (int64_t d = 0; n.w.has(p + "transformer_blocks." + std::to_string(d) + ".norm1.weight"); ++d) {
    const std::string pb = p + "transformer_blocks." + std::to_string(d) + ".";
    const size_t i = cross_index(c, pb);
    basic_block(n, t, kv.k[i], kv.v[i], pb, c.heads);
  }
  n.linear_to_channels(out, t, p + "proj_out", x);             // x + proj_out(t), back to [B, C, H, W]
  n.be.rewind(m);
}

Tensor spatial_transformer(Net& n, const Tensor& x, const UnetConfig& c, const CrossKV& kv, const std::string& p) {
  Tensor out = n.like(x);
  spatial_transformer(n, out, x, c, kv, p);
  return out;
}

}  // namespace

void unet_set_ff_chunk_rows(int64_t rows) { ff_chunk_rows = rows > 0 ? rows : 0; }
int64_t unet_ff_chunk_rows() { return ff_chunk_rows; }

UnetConfig unet_config(const Weights& w) {
  UnetConfig c;
  const Tensor& conv_in = w.get(kRoot + "input_blocks.0.0.weight");
  if (conv_in.ndim != 4) throw std::runtime_error("weight 'model.diffusion_model.input_blocks.0.0.weight' must be a 3x3 conv, got " + conv_in.shape_str());
  c.model_channels = conv_in.shape[0];
  c.in_channels = conv_in.shape[1];
  c.out_channels = w.get(kRoot + "out.2.weight").shape[0];
  w.get(kRoot + "time_embed.0.weight");
  while (w.has(blk("input_blocks", c.input_blocks) + "0.in_layers.0.weight") ||
         w.has(blk("input_blocks", c.input_blocks) + "0.op.weight") || c.input_blocks == 0)
    ++c.input_blocks;
  while (w.has(blk("output_blocks", c.output_blocks) + "0.in_layers.0.weight")) ++c.output_blocks;
  if (c.output_blocks != c.input_blocks)
    throw std::runtime_error("UNet has " + std::to_string(c.input_blocks) + " input blocks but " +
                             std::to_string(c.output_blocks) + " output blocks");
  for (int64_t i = 1; i < c.input_blocks && !c.context_dim; ++i)
    if (const Tensor* k = w.find(blk("input_blocks", i) + "1.transformer_blocks.0.attn2.to_k.weight")) c.context_dim = k->shape[1];
  if (!c.context_dim) c.context_dim = w.get(kRoot + "middle_block.1.transformer_blocks.0.attn2.to_k.weight").shape[1];
  const std::string tail = "attn2.to_k.weight";
  for (const std::string& name : w.names())
    if (name.rfind(kRoot, 0) == 0 && name.size() > tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0)
      c.cross_blocks.push_back(name.substr(0, name.size() - tail.size()));
  std::sort(c.cross_blocks.begin(), c.cross_blocks.end());
  return c;
}

CrossKV unet_alloc_cross_kv(Net& n, const UnetConfig& c, int64_t B, int64_t L) {
  CrossKV kv;
  for (const std::string& p : c.cross_blocks) {
    const int64_t inner = n.w.get(p + "attn2.to_k.weight").shape[0];
    kv.k.push_back(n.act({B, L, inner}));
    kv.v.push_back(n.act({B, L, inner}));
  }
  return kv;
}

void unet_cross_kv(Net& n, const UnetConfig& c, const Tensor& ctx, CrossKV& kv) {
  if (kv.k.size() != c.cross_blocks.size() || kv.v.size() != c.cross_blocks.size())
    throw std::logic_error("unet_cross_kv: kv was not allocated for this UNet");
  for (size_t i = 0; i < c.cross_blocks.size(); ++i) {
    const std::string& p = c.cross_blocks[i];
    n.linear_n_into({&kv.k[i], &kv.v[i]}, ctx, {p + "attn2.to_k", p + "attn2.to_v"});
  }
}

Tensor unet_forward(Net& n, const UnetConfig& c, const Tensor& x, const Tensor& t, const Tensor& ctx) {
  if (ctx.ndim != 3) throw std::invalid_argument("UNet context must be [B, L, D], got " + ctx.shape_str());
  CrossKV kv = unet_alloc_cross_kv(n, c, ctx.shape[0], ctx.shape[1]);
  unet_cross_kv(n, c, ctx, kv);
  return unet_forward(n, c, x, t, kv);
}

Tensor unet_forward(Net& n, const UnetConfig& c, const Tensor& x, const Tensor& t, const CrossKV& kv) {
  const int64_t B = x.shape[0];
  // Timestep embedding (cos half first) -> time_embed.0 -> SiLU -> time_embed.2; every ResBlock
  // starts its emb_layers with SiLU, so keep SiLU(emb).
  Tensor te = n.act({B, c.model_channels});
  n.be.timestep_embedding(te, t);
  Tensor e1 = n.linear(te, kRoot + "time_embed.0");
  n.be.unary(e1, e1, Unary::Silu);
  Tensor emb = n.linear(e1, kRoot + "time_embed.2");
  n.be.unary(emb, emb, Unary::Silu);                            // [B, time_embed_dim]

  std::vector<Tensor> hs;
  Tensor h = n.conv(x, kRoot + "input_blocks.0.0");
  hs.push_back(h);
  for (int64_t i = 1; i < c.input_blocks; ++i) {
    const std::string p = blk("input_blocks", i);
    if (n.w.has(p + "0.op.weight")) {
      h = n.conv(h, p + "0.op", 2, 1);                          // Downsample
    } else {
      h = res_block(n, h, emb, p + "0.");
      if (n.w.has(p + "1.norm.weight")) h = spatial_transformer(n, h, c, kv, p + "1.");
    }
    hs.push_back(h);
  }
  const std::string mid = kRoot + "middle_block.";
  h = res_block(n, h, emb, mid + "0.");
  h = spatial_transformer(n, h, c, kv, mid + "1.");
  h = res_block(n, h, emb, mid + "2.");

  // Up path: skips stay alive, the main path alternates between two buffers sized for its largest
  // activation (a concatenation or an upsampled map), so block outputs do not pile up.
  int64_t most = 0;
  for (int64_t i = 0; i < c.output_blocks; ++i) {
    const std::string p = blk("output_blocks", i);
    const Tensor& s = hs[static_cast<size_t>(c.output_blocks - 1 - i)];
    const int64_t cin = n.w.get(p + "0.in_layers.0.weight").shape[0];
    most = std::max(most, B * cin * s.shape[2] * s.shape[3]);
    if (i + 1 < c.output_blocks) {
      const Tensor& s2 = hs[static_cast<size_t>(c.output_blocks - 2 - i)];
      most = std::max(most, B * res_out_channels(n.w, p + "0.") * s2.shape[2] * s2.shape[3]);
    }
  }
  Tensor buf[2] = {n.act({most}), n.act({most})};
  int cur = 1;
  auto next = [&](int64_t C, int64_t H, int64_t W) {
    cur ^= 1;
    return Tensor(buf[cur].type, {B, C, H, W}, buf[cur].data);
  };
  for (int64_t i = 0; i < c.output_blocks; ++i) {
    const std::string p = blk("output_blocks", i);
    const Tensor skip = hs.back();
    hs.pop_back();
    Tensor cat = next(h.shape[1] + skip.shape[1], skip.shape[2], skip.shape[3]);
    n.be.concat_channels(cat, h, skip);                         // [B, Ch + Cs, H, W], h first
    h = next(res_out_channels(n.w, p + "0."), cat.shape[2], cat.shape[3]);
    res_block(n, h, cat, emb, p + "0.");
    int idx = 1;
    if (n.w.has(p + "1.norm.weight")) {
      Tensor y = next(h.shape[1], h.shape[2], h.shape[3]);
      spatial_transformer(n, y, h, c, kv, p + std::to_string(idx++) + ".");
      h = y;
    }
    const std::string up = p + std::to_string(idx) + ".conv";
    if (n.w.has(up + ".weight")) {
      // Upsample to the size of the skip it will meet (2x unless a downsampled size was odd).
      const int64_t Ho = hs.empty() ? 2 * h.shape[2] : hs.back().shape[2];
      const int64_t Wo = hs.empty() ? 2 * h.shape[3] : hs.back().shape[3];
      Tensor u = next(h.shape[1], Ho, Wo);
      n.be.upsample_nearest(u, h);
      const Tensor& wt = n.w.get(up + ".weight");
      h = next(wt.shape[0], Ho, Wo);
      n.be.conv2d(h, u, wt, n.w.find(up + ".bias"), 1, 1);
    }
  }
  h = n.group_norm(h, kRoot + "out.0", 1e-5f, true);
  return n.conv(h, kRoot + "out.2");                            // [B, out_channels, h, w]
}

}  // namespace sd
