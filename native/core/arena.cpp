#include "core/arena.h"

#include <cstdlib>
#include <new>
#include <string>

namespace sd {

void AlignedFree::operator()(void* p) const noexcept { std::free(p); }

AlignedBuffer aligned_alloc_bytes(size_t bytes, size_t alignment) {
  void* p = nullptr;
  if (bytes == 0) bytes = alignment;
  if (posix_memalign(&p, alignment, bytes) != 0 || !p) throw std::bad_alloc();
  return AlignedBuffer(static_cast<uint8_t*>(p));
}

void Arena::reserve(size_t capacity) {
  buf_.reset();  // the old block first, so growing never holds both
  buf_ = aligned_alloc_bytes(capacity, kAlign);
  capacity_ = capacity;
  used_ = high_ = 0;
}

void* Arena::alloc(size_t bytes) {
  const size_t start = (used_ + kAlign - 1) & ~(kAlign - 1);
  if (start + bytes > capacity_)
    throw std::length_error("arena exhausted: need " + std::to_string(start + bytes) + " of " +
                            std::to_string(capacity_) + " bytes");
  used_ = start + bytes;
  if (used_ > high_) high_ = used_;
  return buf_.get() + start;
}

Tensor Arena::tensor(DType t, std::initializer_list<int64_t> dims) {
  Tensor out(t, dims);
  out.data = alloc(out.nbytes());
  return out;
}

}  // namespace sd
