// A non-owning view of a contiguous tensor. Shapes are in PyTorch order (outermost first), so an
// activation is [N, C, H, W] and a linear weight is [out, in]. Quantized types are blocked along the
// innermost dimension (for conv weights [Cout, Cin, kh, kw] that is the flattened Cin*kh*kw row).
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "core/dtype.h"

namespace sd {

constexpr int kMaxDims = 4;

struct Tensor {
  DType type = DType::F32;
  int ndim = 0;
  int64_t shape[kMaxDims] = {1, 1, 1, 1};
  void* data = nullptr;

  Tensor() = default;
  Tensor(DType t, std::initializer_list<int64_t> dims, void* d = nullptr) : type(t), data(d) {
    for (int64_t v : dims) shape[ndim++] = v;
  }

  int64_t dim(int i) const { return i < 0 ? shape[ndim + i] : shape[i]; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[i];
    return n;
  }
  // Innermost row length and number of rows.
  int64_t row_len() const { return ndim ? shape[ndim - 1] : 1; }
  int64_t rows() const { return ndim ? numel() / shape[ndim - 1] : 1; }
  // Blocks run over the flattened data, so a quantized conv weight [Co, Ci, 3, 3] (rows of Ci*9
  // elements, last dim 3) counts numel / 32 blocks, not rows() rows of 3 elements.
  size_t nbytes() const {
    return static_cast<size_t>(numel() / dtype_block_elems(type)) * dtype_block_bytes(type);
  }

  float* f32() const { return static_cast<float*>(data); }
  template <typename T> T* as() const { return static_cast<T*>(data); }

  // A view with another shape over the same bytes (numel must match; caller checks).
  Tensor reshaped(std::initializer_list<int64_t> dims) const {
    Tensor t(type, dims, data);
    return t;
  }
  std::string shape_str() const;
};

bool same_shape(const Tensor& a, const Tensor& b);

}  // namespace sd
