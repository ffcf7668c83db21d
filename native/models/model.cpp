#include "models/model.h"

#include <cstring>
#include <stdexcept>

#include "models/tiling.h"

namespace sd {

SdModel::SdModel(const std::string& path, const std::vector<TensorEntry>& table, const ModelOptions& opt) {
  be_ = make_backend(opt.backend, opt.threads, &backend_why_);
  be_->set_quantized_conv_activations(opt.conv_q8_acts);
  file_ = std::make_unique<const MappedFile>(path);
  load_stats_ = load_weights(*be_, *file_, table, opt.has_dtype ? &opt.dtype : nullptr, &w_);
  // Keep the mapping only while weights live in it; converted ones are the backend's own copies.
  if (load_stats_.in_place == 0) file_.reset();
  configure("'" + path + "'");
}

SdModel::SdModel(const ModelOptions& opt, const std::function<void(Backend&, Weights&)>& fill) {
  be_ = make_backend(opt.backend, opt.threads, &backend_why_);
  be_->set_quantized_conv_activations(opt.conv_q8_acts);
  fill(*be_, w_);
  configure("the weights given");
}

void SdModel::configure(const std::string& what) {
  has_clip_ = w_.has("cond_stage_model.transformer.text_model.embeddings.token_embedding.weight");
  has_unet_ = w_.has("model.diffusion_model.input_blocks.0.0.weight");
  const bool has_vae = w_.has("first_stage_model.decoder.conv_in.weight") || w_.has("first_stage_model.encoder.conv_in.weight");
  if (!has_clip_ && !has_unet_ && !has_vae)
    throw std::invalid_argument(what + " holds no SD 1.x weights (no model.diffusion_model.*, first_stage_model.* or cond_stage_model.* tensors)");
  if (has_clip_) clip_ = clip_config(w_);
  if (has_unet_) unet_ = unet_config(w_);
  if (has_vae) vae_ = vae_config(w_);
}

template <typename F> void SdModel::run(const Key& key, F&& body) {
  Net net{*be_, w_};
  auto it = plans_.find(key);
  if (it == plans_.end()) {
    be_->begin_plan();
    try {
      body(net);
    } catch (...) {
      be_->end_plan();
      throw;
    }
    it = plans_.emplace(key, be_->end_plan()).first;
  }
  if (be_->activation_capacity() < it->second) {
    be_->reserve_activations(it->second);
    ++arena_epoch_;
  }
  if (key != last_key_) {
    last_key_ = key;
    ++arena_epoch_;
  }
  const size_t m = be_->mark();
  try {
    body(net);
  } catch (...) {
    be_->rewind(m);
    throw;
  }
  be_->rewind(m);
}

namespace {
void need(bool ok, const std::string& msg) {
  if (!ok) throw std::invalid_argument(msg);
}
}  // namespace

std::vector<float> SdModel::encode_text(const int32_t* ids, int64_t B, int64_t L, int skip) {
  need(has_clip_, "this model has no CLIP text encoder");
  need(B >= 1 && L >= 1 && L % clip_.positions == 0, "tokens must be [B, 77 * k]");
  for (int64_t i = 0; i < B * L; ++i)
    need(ids[i] >= 0 && ids[i] < clip_.vocab, "token id " + std::to_string(ids[i]) + " at " + std::to_string(i) +
                                                  " is outside [0, " + std::to_string(clip_.vocab) + ")");
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<float> out(static_cast<size_t>(B * L * clip_.hidden));
  run(Key{0, B, L, skip, 0, 0}, [&](Net& n) {
    Tensor y = clip_forward(n, clip_, ids, B, L, skip);
    if (!be_->planning()) be_->download(out.data(), y);
  });
  return out;
}

std::vector<float> SdModel::run_unet(const float* x, int64_t B, int64_t C, int64_t h, int64_t w, const float* t,
                                     const float* ctx, int64_t L, int64_t D) {
  need(has_unet_, "this model has no UNet");
  need(C == unet_.in_channels, "x has " + std::to_string(C) + " channels, the UNet takes " + std::to_string(unet_.in_channels));
  need(D == unet_.context_dim, "context width " + std::to_string(D) + " does not match the UNet's " + std::to_string(unet_.context_dim));
  need(B >= 1 && h >= 1 && w >= 1 && L >= 1, "empty input");
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<float> out(static_cast<size_t>(B * unet_.out_channels * h * w));
  const std::string key = "unet " + std::to_string(B) + "x" + std::to_string(C) + "x" + std::to_string(h) + "x" +
                          std::to_string(w) + " ctx " + std::to_string(L) + " ff " + std::to_string(unet_ff_chunk_rows());
  run(Key{1, B, C, h, w, L}, [&](Net& n) {
    // Inputs and the output live in arena tensors allocated before the step, so the step itself is
    // the same ops on the same pointers every call: a backend may replay it (Backend::run_replayable).
    // The timesteps stay f32 whatever the activations are (an f16 t would round 999.3 to 999.5).
    Tensor xt = n.act({B, C, h, w});
    Tensor ct = n.act({B, L, D});
    Tensor tt = be_->alloc(DType::F32, {B});
    Tensor yt = n.act({B, unet_.out_channels, h, w});
    CrossKV kv = unet_alloc_cross_kv(n, unet_, B, L);
    const size_t nctx = static_cast<size_t>(B * L * D);
    if (be_->planning()) {
      unet_cross_kv(n, unet_, ct, kv);
    } else {
      be_->upload(xt, x);
      be_->upload(tt, t);
      if (kv_epoch_ != arena_epoch_ || kv_ctx_.size() != nctx || std::memcmp(kv_ctx_.data(), ctx, nctx * sizeof(float)) != 0) {
        kv_epoch_ = 0;  // until they are all written
        be_->upload(ct, ctx);
        unet_cross_kv(n, unet_, ct, kv);
        kv_ctx_.assign(ctx, ctx + nctx);
        kv_epoch_ = arena_epoch_;
      }
    }
    be_->run_replayable(key, [&] { be_->copy(yt, unet_forward(n, unet_, xt, tt, kv)); });
    if (!be_->planning()) be_->download(out.data(), yt);
  });
  return out;
}

std::vector<float> SdModel::vae_decode(const float* z, int64_t B, int64_t h, int64_t w, int64_t tile, int64_t overlap) {
  need(vae_.has_decoder, "this model has no VAE decoder");
  need(B >= 1 && h >= 1 && w >= 1, "empty latent");
  if (tile > 0 && (h > tile || w > tile)) {
    const TileJob job{B, vae_.z_channels, h, w, vae_.image_channels, vae_.factor(), 1, tile, overlap};
    return run_tiled(job, z, [&](const float* in, int64_t th, int64_t tw) { return decode_whole(in, B, th, tw); });
  }
  return decode_whole(z, B, h, w);
}

std::vector<float> SdModel::decode_whole(const float* z, int64_t B, int64_t h, int64_t w) {
  const int64_t f = vae_.factor();
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<float> out(static_cast<size_t>(B * vae_.image_channels * h * f * w * f));
  run(Key{2, B, h, w, 0, 0}, [&](Net& n) {
    Tensor zt = n.act({B, vae_.z_channels, h, w});
    if (!be_->planning()) be_->upload(zt, z);
    Tensor y = sd::vae_decode(n, vae_, zt);
    if (!be_->planning()) be_->download(out.data(), y);
  });
  return out;
}

std::vector<float> SdModel::vae_encode(const float* img, int64_t B, int64_t H, int64_t W, int64_t tile, int64_t overlap) {
  need(vae_.has_encoder, "this model has no VAE encoder");
  const int64_t f = vae_.factor();
  need(B >= 1 && H >= f && W >= f && H % f == 0 && W % f == 0, "image sides must be positive multiples of " + std::to_string(f));
  if (tile > 0 && (H > tile * f || W > tile * f)) {
    const TileJob job{B, vae_.image_channels, H, W, 2 * vae_.z_channels, 1, f, tile * f, overlap * f};
    return run_tiled(job, img, [&](const float* in, int64_t th, int64_t tw) { return encode_whole(in, B, th, tw); });
  }
  return encode_whole(img, B, H, W);
}

std::vector<float> SdModel::encode_whole(const float* img, int64_t B, int64_t H, int64_t W) {
  const int64_t f = vae_.factor();
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<float> out(static_cast<size_t>(B * 2 * vae_.z_channels * (H / f) * (W / f)));
  run(Key{3, B, H, W, 0, 0}, [&](Net& n) {
    Tensor it = n.act({B, vae_.image_channels, H, W});
    if (!be_->planning()) be_->upload(it, img);
    Tensor y = sd::vae_encode(n, vae_, it);
    if (!be_->planning()) be_->download(out.data(), y);
  });
  return out;
}

size_t SdModel::release(const std::string& part) {
  std::lock_guard<std::mutex> lock(mu_);
  if (part == "activations") {
    be_->release_activations();
    ++arena_epoch_;
    return 0;
  }
  const char* prefix = part == "clip" ? "cond_stage_model." : part == "unet" ? "model.diffusion_model." :
                       part == "vae" ? "first_stage_model." : nullptr;
  need(prefix != nullptr, "release: unknown part '" + part + "' (clip, unet, vae or activations)");
  if (!file_) return 0;
  size_t bytes = 0;
  for (const std::string& name : w_.names()) {
    if (name.rfind(prefix, 0) != 0) continue;
    const Tensor& t = w_.get(name);
    if (!t.data || !file_->contains(t.data)) continue;
    file_->release(static_cast<uint64_t>(static_cast<const uint8_t*>(t.data) - file_->data()), t.nbytes());
    bytes += t.nbytes();
  }
  return bytes;
}

}  // namespace sd
