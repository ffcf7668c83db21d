// The SD 1.x UNet (openaimodel.UNetModel under model.diffusion_model.*). The block list is read from
// the checkpoint keys, widths from the weight shapes; 8 heads as in every SD 1.x model.
#pragma once
#include <cstdint>

#include "models/layers.h"

namespace sd {

struct UnetConfig {
  int64_t in_channels = 0;     // 4, or 9 for inpainting models
  int64_t out_channels = 0;
  int64_t model_channels = 0;  // 320 in SD 1.x
  int64_t context_dim = 0;     // 768 in SD 1.x
  int64_t input_blocks = 0, output_blocks = 0;
  int heads = 8;
};

UnetConfig unet_config(const Weights& w);

// Tokens per feed-forward chunk (default: 2048 with f32 activations, 8192 with f16; <= 0 restores
// it). Tests shrink it so the tiny model's few tokens take the chunked path too. Not thread-safe:
// set before forwards run.
void unet_set_ff_chunk_rows(int64_t rows);
int64_t unet_ff_chunk_rows();  // part of a step's replay key: another chunking is another graph

// x [B, in_channels, h, w], t [B] timesteps (f32 on the backend), ctx [B, L, context_dim]
// -> eps [B, out_channels, h, w].
// Odd downsampled sizes are upsampled back to the skip's size (diffusers' forward_upsample_size).
Tensor unet_forward(Net& net, const UnetConfig& cfg, const Tensor& x, const Tensor& t, const Tensor& ctx);

}  // namespace sd
