// CLIP ViT-L/14 text encoder in the Hugging Face layout SD 1.x checkpoints use
// (cond_stage_model.transformer.text_model.*). Sizes are read from the weights; heads = hidden / 64.
#pragma once
#include <cstdint>

#include "models/layers.h"

namespace sd {

struct ClipConfig {
  int64_t vocab = 0, positions = 0, hidden = 0, layers = 0, heads = 0;
};

// Throws naming the first missing or mis-shaped key.
ClipConfig clip_config(const Weights& w);

// ids: host [B, L] with L a multiple of `positions` (77); longer prompts are encoded as independent
// 77-token chunks (as AUTOMATIC1111 does) and concatenated. skip 1 = last layer, 2 = penultimate,
// both passed through final_layer_norm. Returns [B, L, hidden].
Tensor clip_forward(Net& net, const ClipConfig& cfg, const int32_t* ids, int64_t B, int64_t L, int skip);

}  // namespace sd
