// The SD 1.x UNet (openaimodel.UNetModel under model.diffusion_model.*). The block list is read from
// the checkpoint keys, widths from the weight shapes; 8 heads as in every SD 1.x model.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "models/layers.h"

namespace sd {

struct UnetConfig {
  int64_t in_channels = 0;     // 4, or 9 for inpainting models
  int64_t out_channels = 0;
  int64_t model_channels = 0;  // 320 in SD 1.x
  int64_t context_dim = 0;     // 768 in SD 1.x
  int64_t input_blocks = 0, output_blocks = 0;
  int heads = 8;
  // Prefixes of the transformer blocks ("...transformer_blocks.0."), sorted: where CrossKV's
  // tensors belong.
  std::vector<std::string> cross_blocks;
};

UnetConfig unet_config(const Weights& w);

// Tokens per feed-forward chunk (default: 2048 with f32 activations, 8192 with f16; <= 0 restores
// it). Tests shrink it so the tiny model's few tokens take the chunked path too. Not thread-safe:
// set before forwards run.
void unet_set_ff_chunk_rows(int64_t rows);
int64_t unet_ff_chunk_rows();  // part of a step's replay key: another chunking is another graph

// The cross-attention keys and values of every transformer block for one text context, [B, L,
// inner] each, in cfg.cross_blocks' order. They depend on the context alone, so a sampler's steps
// over one prompt need them once: SdModel::run_unet computes them when the context changes and its
// steps only read them (16 projections of the 77 text tokens a step at SD 1.x's size).
struct CrossKV {
  std::vector<Tensor> k, v;
};
// Allocates them from the arena, for a context of B x L tokens.
CrossKV unet_alloc_cross_kv(Net& net, const UnetConfig& cfg, int64_t B, int64_t L);
// ctx [B, L, context_dim] -> kv (allocated by unet_alloc_cross_kv for that B and L).
void unet_cross_kv(Net& net, const UnetConfig& cfg, const Tensor& ctx, CrossKV& kv);

// x [B, in_channels, h, w], t [B] timesteps (f32 on the backend), kv for a context of B rows
// -> eps [B, out_channels, h, w].
// Odd downsampled sizes are upsampled back to the skip's size (diffusers' forward_upsample_size).
Tensor unet_forward(Net& net, const UnetConfig& cfg, const Tensor& x, const Tensor& t, const CrossKV& kv);
// The same from ctx [B, L, context_dim]: allocates and computes the CrossKV first.
Tensor unet_forward(Net& net, const UnetConfig& cfg, const Tensor& x, const Tensor& t, const Tensor& ctx);

}  // namespace sd
