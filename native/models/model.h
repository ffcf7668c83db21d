// An SD 1.x model on one backend: weights, the three networks' configs, and activation memory
// planned per input shape (a forward is run once in planning mode to size the arena exactly, so
// repeated calls at one shape never allocate). One forward runs at a time (a mutex serialises).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "core/backend_loader.h"
#include "models/clip.h"
#include "models/unet.h"
#include "models/vae.h"
#include "models/weights.h"

namespace sd {

struct ModelOptions {
  std::string backend = "cpu";  // "cpu" | "cuda" | "auto"
  int threads = 0;              // 0 = physical cores
  bool has_dtype = false;       // false keeps each tensor's file dtype
  DType dtype = DType::F32;
  bool conv_q8_acts = false;    // Backend::set_quantized_conv_activations
};

class SdModel {
 public:
  // Maps `path` and reads the tensors the table lists; throws naming the failing tensor.
  SdModel(const std::string& path, const std::vector<TensorEntry>& table, const ModelOptions& opt);
  // Weights from elsewhere (benchmarks build them in memory): fill() adds them to the store.
  SdModel(const ModelOptions& opt, const std::function<void(Backend&, Weights&)>& fill);

  bool has_clip() const { return has_clip_; }
  bool has_unet() const { return has_unet_; }
  bool has_vae_decoder() const { return vae_.has_decoder; }
  bool has_vae_encoder() const { return vae_.has_encoder; }
  const ClipConfig& clip() const { return clip_; }
  const UnetConfig& unet() const { return unet_; }
  const VaeConfig& vae() const { return vae_; }
  Backend& backend() { return *be_; }
  // Why the backend was chosen ("auto" falls back to the CPU and says why).
  const std::string& backend_reason() const { return backend_why_; }
  size_t weight_bytes() const { return be_->weight_bytes(); }
  // Which weights are used in place from the mapped file and which were converted on load.
  const LoadStats& load_stats() const { return load_stats_; }
  const Weights& weights() const { return w_; }
  // The model file while weights are used from it in place (null otherwise).
  const MappedFile* mapped_file() const { return file_.get(); }
  size_t activation_bytes() const { return be_->activation_capacity(); }

  // ids [B, L] -> [B, L, hidden]
  std::vector<float> encode_text(const int32_t* ids, int64_t B, int64_t L, int skip);
  // x [B, C, h, w], t [B], ctx [B, L, D] -> [B, out, h, w]
  std::vector<float> run_unet(const float* x, int64_t B, int64_t C, int64_t h, int64_t w, const float* t,
                              const float* ctx, int64_t L, int64_t D);
  // z [B, 4, h, w] -> [B, 3, 8h, 8w]. tile > 0 decodes latent patches of at most tile x tile
  // (overlapping by at least `overlap`, default tile/4, blended linearly) when a side exceeds it,
  // so activation memory depends on the tile only (models/tiling.h).
  std::vector<float> vae_decode(const float* z, int64_t B, int64_t h, int64_t w, int64_t tile = 0, int64_t overlap = 0);
  // img [B, 3, H, W] -> [B, 8, H/8, W/8]; tile and overlap in latent units as for vae_decode.
  std::vector<float> vae_encode(const float* img, int64_t B, int64_t H, int64_t W, int64_t tile = 0, int64_t overlap = 0);
  const char* backend_name() const { return be_->name(); }
  // Gives back memory the next call rebuilds: "clip", "unet", "vae" drop the resident pages of that
  // network's weights used in place from the mapped file (re-read from the page cache or the file
  // when next used; converted weights stay), "activations" frees the arena and kernel scratch.
  // Returns the bytes of weights whose pages were dropped. Throws on another name.
  size_t release(const std::string& part);

 private:
  void configure(const std::string& what);
  using Key = std::tuple<int, int64_t, int64_t, int64_t, int64_t, int64_t>;
  // Runs body(net) once in planning mode for a new key, reserves the arena, then for real.
  template <typename F> void run(const Key& key, F&& body);
  std::vector<float> decode_whole(const float* z, int64_t B, int64_t h, int64_t w);
  std::vector<float> encode_whole(const float* img, int64_t B, int64_t H, int64_t W);

  // Declared first so it is destroyed last: weights used in place point into this mapping, and the
  // backend (and w_'s views) must be gone before it is unmapped.
  std::unique_ptr<const MappedFile> file_;
  LoadStats load_stats_;
  BackendPtr be_;
  std::string backend_why_;
  Weights w_;
  ClipConfig clip_;
  UnetConfig unet_;
  VaeConfig vae_;
  bool has_clip_ = false, has_unet_ = false;
  std::map<Key, size_t> plans_;
  // The arena's contents outlive a call only until another key runs, the arena grows or is freed:
  // each of those starts a new epoch. run_unet's cross-attention keys and values (unet.h CrossKV)
  // stay at the same arena offsets for one key, so they are reused while the epoch and the context
  // they were computed from are unchanged.
  uint64_t arena_epoch_ = 1, kv_epoch_ = 0;
  Key last_key_{-1, 0, 0, 0, 0, 0};
  std::vector<float> kv_ctx_;
  std::mutex mu_;
};

}  // namespace sd
