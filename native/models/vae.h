// The SD 1.x VAE (AutoencoderKL under first_stage_model.*): decoder with post_quant_conv, encoder
// with quant_conv. Channel widths and levels are read from the weights.
#pragma once
#include <cstdint>

#include "models/layers.h"

namespace sd {

struct VaeConfig {
  int64_t z_channels = 0;      // latent channels (4)
  int64_t image_channels = 0;  // 3
  int64_t levels = 0;          // resolution levels (4): the image is 2^(levels-1) times the latent
  bool has_encoder = false, has_decoder = false;
  int64_t factor() const { return int64_t(1) << (levels - 1); }
};

VaeConfig vae_config(const Weights& w);

// z [B, z_channels, h, w] (already divided by the scale factor) -> image [B, 3, 8h, 8w], unclamped.
Tensor vae_decode(Net& net, const VaeConfig& cfg, const Tensor& z);
// Whether vae_decode fuses each nearest 2x upsample into the conv after it (Backend::conv2d_upsampled):
// -1 (default) where the backend fuses it, 0 never, 1 always (tests run both on the CPU).
void vae_set_fused_upsample(int mode);
// image [B, 3, H, W] in [-1, 1] -> moments [B, 2 * z_channels, H/8, W/8]: mean then logvar, unclamped.
Tensor vae_encode(Net& net, const VaeConfig& cfg, const Tensor& img);

}  // namespace sd
