// Activation memory: one aligned block reserved up front from the shapes of a forward pass, then
// bump-allocated. reset() rewinds it between forwards, so a sampling loop never allocates.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>

#include "core/tensor.h"

namespace sd {

struct AlignedFree {
  size_t mapped = 0;  // bytes of a private mapping, 0 for a malloc'd block
  void operator()(void* p) const noexcept;
};
using AlignedBuffer = std::unique_ptr<uint8_t, AlignedFree>;
// 64-byte aligned, zero-filled is not promised. Throws std::bad_alloc on failure. Blocks of 1 MiB
// and more are mapped directly: glibc raises its mmap threshold to 32 MB after the first large
// free, and then keeps freed arenas and scratch in its heaps (a VAE decode after sampling held
// ~70 MB more RSS than it used).
AlignedBuffer aligned_alloc_bytes(size_t bytes, size_t alignment = 64);

class Arena {
 public:
  static constexpr size_t kAlign = 64;
  Arena() = default;
  explicit Arena(size_t capacity) { reserve(capacity); }

  // Drops everything and makes room for `capacity` bytes.
  void reserve(size_t capacity);
  void reset() { used_ = 0; }
  size_t used() const { return used_; }
  size_t capacity() const { return capacity_; }
  size_t high_water() const { return high_; }

  // Throws std::length_error when the reservation is too small: that is a sizing bug, not user input.
  void* alloc(size_t bytes);
  Tensor tensor(DType t, std::initializer_list<int64_t> dims);

  // Marks let a block free its temporaries: size_t m = arena.mark(); ...; arena.rewind(m);
  size_t mark() const { return used_; }
  void rewind(size_t m) { used_ = m; }

 private:
  AlignedBuffer buf_;
  size_t capacity_ = 0, used_ = 0, high_ = 0;
};

}  // namespace sd
