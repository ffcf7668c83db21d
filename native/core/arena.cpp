#include "core/arena.h"

#include <cstdlib>
#include <new>
#include <string>

#if defined(__SANITIZE_ADDRESS__)
#define SDNODE_MAP_LARGE 0  // malloc'd blocks keep ASan's redzones
#elif defined(__linux__) || defined(__APPLE__)
#include <sys/mman.h>
#define SDNODE_MAP_LARGE 1
#else
#define SDNODE_MAP_LARGE 0
#endif

namespace sd {

void AlignedFree::operator()(void* p) const noexcept {
#if SDNODE_MAP_LARGE
  if (mapped) {
    munmap(p, mapped);
    return;
  }
#endif
  std::free(p);
}

AlignedBuffer aligned_alloc_bytes(size_t bytes, size_t alignment) {
  void* p = nullptr;
  if (bytes == 0) bytes = alignment;
#if SDNODE_MAP_LARGE
  if (bytes >= (size_t{1} << 20) && alignment <= 4096) {
    p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    return AlignedBuffer(static_cast<uint8_t*>(p), AlignedFree{bytes});
  }
#endif
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
