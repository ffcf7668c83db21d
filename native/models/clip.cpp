// Reads side by side with transformers' CLIPTextTransformer (pre-LN encoder, causal mask).
#include "models/clip.h"

#include <stdexcept>
#include <string>
#include <vector>

namespace sd {
namespace {

const std::string kRoot = "cond_stage_model.transformer.text_model.";

std::string layer(int64_t i) { return kRoot + "encoder.layers." + std::to_string(i) + "."; }

// x += attn(LN1 x); x += mlp(LN2 x), x: [S, 77, D]
void encoder_layer(Net& n, const ClipConfig& c, Tensor& x, const std::string& p) {
  const size_t m = n.be.mark();
  Tensor h = n.layer_norm(x, p + "layer_norm1");              // [S, 77, D]
  Tensor q = n.linear(h, p + "self_attn.q_proj");
  Tensor k = n.linear(h, p + "self_attn.k_proj");
  Tensor v = n.linear(h, p + "self_attn.v_proj");
  Tensor a = n.like(q);
  n.be.attention(a, q, k, v, static_cast<int>(c.heads), /*causal=*/true);
  Tensor o = n.linear(a, p + "self_attn.out_proj");
  n.add_inplace(x, o);
  n.be.rewind(m);

  h = n.layer_norm(x, p + "layer_norm2");
  Tensor f = n.linear(h, p + "mlp.fc1");                       // [S, 77, 4D]
  n.be.unary(f, f, Unary::QuickGelu);
  Tensor g = n.linear(f, p + "mlp.fc2");                       // [S, 77, D]
  n.add_inplace(x, g);
  n.be.rewind(m);
}

}  // namespace

ClipConfig clip_config(const Weights& w) {
  ClipConfig c;
  const Tensor& tok = w.get(kRoot + "embeddings.token_embedding.weight");
  c.vocab = tok.shape[0];
  c.hidden = tok.shape[1];
  const Tensor& pos = w.get(kRoot + "embeddings.position_embedding.weight");
  c.positions = pos.shape[0];
  w.get(kRoot + "embeddings.position_embedding.weight", {c.positions, c.hidden});
  while (w.has(layer(c.layers) + "layer_norm1.weight")) ++c.layers;
  if (c.layers < 2) throw std::runtime_error("CLIP needs at least 2 encoder layers, found " + std::to_string(c.layers));
  if (c.hidden % 64 != 0) throw std::runtime_error("CLIP hidden size " + std::to_string(c.hidden) + " is not a multiple of 64");
  c.heads = c.hidden / 64;
  const int64_t D = c.hidden;
  for (int64_t i = 0; i < c.layers; ++i) {
    const std::string p = layer(i);
    for (const char* pr : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj"}) {
      w.get(p + pr + ".weight", {D, D});
      w.get(p + pr + ".bias", {D});
    }
    const int64_t F = w.get(p + "mlp.fc1.weight").shape[0];
    w.get(p + "mlp.fc1.weight", {F, D});
    w.get(p + "mlp.fc2.weight", {D, F});
  }
  w.get(kRoot + "final_layer_norm.weight", {D});
  return c;
}

Tensor clip_forward(Net& n, const ClipConfig& c, const int32_t* ids, int64_t B, int64_t L, int skip) {
  if (L % c.positions != 0)
    throw std::invalid_argument("token length " + std::to_string(L) + " is not a multiple of " + std::to_string(c.positions));
  if (skip < 1 || skip > c.layers) throw std::invalid_argument("clip skip must be 1.." + std::to_string(c.layers));
  const int64_t S = B * (L / c.positions), P = c.positions, D = c.hidden;
  Tensor out = n.act({B, L, D});
  const size_t m = n.be.mark();
  Tensor x = n.act({S, P, D});                                 // token_embedding[ids] + position_embedding
  Tensor rows = x.reshaped({S * P, D});
  n.be.get_rows(rows, n.w.get(kRoot + "embeddings.token_embedding.weight"), ids, S * P);
  {  // the position table as an activation (a plain copy in f32), so the add sees one type
    const size_t mp = n.be.mark();
    Tensor pos = n.act({P, D});
    std::vector<int32_t> at(static_cast<size_t>(P));
    for (int64_t i = 0; i < P; ++i) at[i] = static_cast<int32_t>(i);
    n.be.get_rows(pos, n.w.get(kRoot + "embeddings.position_embedding.weight"), at.data(), P);
    n.add_inplace(x, pos);
    n.be.rewind(mp);
  }
  for (int64_t i = 0; i < c.layers - (skip - 1); ++i) encoder_layer(n, c, x, layer(i));
  Tensor o = out.reshaped({S, P, D});
  n.be.layer_norm(o, x, n.w.get(kRoot + "final_layer_norm.weight"), n.w.get(kRoot + "final_layer_norm.bias"), 1e-5f);
  n.be.rewind(m);
  return out;  // [B, L, D]
}

}  // namespace sd
