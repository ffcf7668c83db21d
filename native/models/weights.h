// The weight store: checkpoint key -> backend tensor, with lookups that name the missing or
// mis-shaped key. Weights come from a read-only mapping of the model file (tensor table computed in
// TypeScript by lib/formats) and are converted only where the target dtype differs.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "ops.h"

namespace sd {

// One tensor of the model file: dtype name as the readers spell it ("F32", "F16", "BF16", "Q8_0",
// "Q4_0", "I64", ...), PyTorch shape, absolute byte offset and length in the file.
struct TensorEntry {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t offset = 0;
  uint64_t byte_length = 0;
};

// A read-only view of a whole file (mmap on POSIX, a heap copy elsewhere). Throws on I/O errors.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  // Drops the whole pages inside [offset, offset + len) from this process's resident set once they
  // have been converted (they are re-read from the file if touched again), so a converting load
  // peaks near the size of the converted weights rather than file + weights. Pages shared with a
  // neighbouring tensor stay (that one may be used in place).
  void release(uint64_t offset, uint64_t len) const;
  // True when p points into this file's bytes.
  bool contains(const void* p) const {
    const auto* b = static_cast<const uint8_t*>(p);
    return size_ > 0 && b >= data_ && b < data_ + size_;
  }

 private:
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  std::vector<uint8_t> heap_;
  bool mapped_ = false;
};

class Weights {
 public:
  // Stores `host` on the backend as `target` (see choose_dtype). With `in_place` the backend may keep
  // using host's bytes (Backend::adopt_weight): they must then outlive the backend. Returns true when
  // it did; otherwise the host bytes may be released after.
  bool add(Backend& be, const std::string& name, const Tensor& host, DType target, bool in_place = false);
  // Registers a tensor already in backend memory (or, for sizing runs in planning mode, one with a
  // shape and no data).
  void put(const std::string& name, const Tensor& t) { map_[name] = t; }
  bool has(const std::string& name) const { return map_.count(name) != 0; }
  const Tensor* find(const std::string& name) const;
  // Throws std::runtime_error "missing weight '<name>'" when absent.
  const Tensor& get(const std::string& name) const;
  // Also checks the shape (PyTorch order; 1x1 conv weights may be stored as [Co, Ci]).
  const Tensor& get(const std::string& name, std::initializer_list<int64_t> shape) const;
  size_t size() const { return map_.size(); }
  std::vector<std::string> names() const;

 private:
  std::unordered_map<std::string, Tensor> map_;
};

// The dtype a weight is kept in: norms, biases and the position table stay f32 (ops read them as
// f32); quantized types apply to linear and conv weights whose flattened rows (K, or Ci*k*k) are a
// multiple of 32, the others fall back to f16. `requested` null keeps the file's dtype.
DType choose_dtype(const std::string& name, const std::vector<int64_t>& shape, DType file,
                   const DType* requested);

// What a load did: tensors used in place from the mapping vs converted (or copied) to the backend.
struct LoadStats {
  size_t in_place = 0, converted = 0;
  uint64_t in_place_bytes = 0, converted_bytes = 0;  // bytes in the file
};

// Reads every SD weight (model.diffusion_model.*, first_stage_model.*, cond_stage_model.*) of the
// table out of the mapped file into `out`. A tensor whose file dtype is its target dtype is used in
// place where the backend can (the file must then outlive the backend: see SdModel); the others
// are converted one by one and their source pages released, so memory peaks near the converted
// size plus one tensor. Throws std::invalid_argument naming the tensor when an entry is out of the
// file, has a byte length that does not match its shape, or an unusable dtype.
LoadStats load_weights(Backend& be, const MappedFile& file, const std::vector<TensorEntry>& table,
                       const DType* requested, Weights* out);

// Older checkpoints keep CLIP under cond_stage_model.transformer.* without "text_model.".
std::string canonical_name(const std::string& name);

}  // namespace sd
