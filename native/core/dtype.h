// Element types and GGML-compatible block layouts. Enum values equal GGML's type ids so GGUF
// tensor types map one to one.
#pragma once
#include <cstddef>
#include <cstdint>

namespace sd {

enum class DType : uint32_t { F32 = 0, F16 = 1, Q4_0 = 2, Q8_0 = 8 };

constexpr int QK8_0 = 32;
constexpr int QK4_0 = 32;

struct block_q8_0 {
  uint16_t d;          // scale, IEEE binary16 bits
  int8_t qs[QK8_0];    // quants
};
static_assert(sizeof(block_q8_0) == 34, "q8_0 block must be 34 bytes like GGML's");

struct block_q4_0 {
  uint16_t d;              // scale, IEEE binary16 bits
  uint8_t qs[QK4_0 / 2];   // low nibble of byte j = element j, high nibble = element j + 16
};
static_assert(sizeof(block_q4_0) == 18, "q4_0 block must be 18 bytes like GGML's");

// Elements per block (1 for plain types) and bytes per block.
constexpr int64_t dtype_block_elems(DType t) {
  return (t == DType::Q8_0 || t == DType::Q4_0) ? 32 : 1;
}
constexpr int64_t dtype_block_bytes(DType t) {
  return t == DType::F32 ? 4 : t == DType::F16 ? 2 : t == DType::Q8_0 ? 34 : 18;
}
constexpr bool dtype_is_quantized(DType t) { return t == DType::Q8_0 || t == DType::Q4_0; }

// Bytes of a row of n elements; n must be a multiple of the block size (callers check).
constexpr size_t dtype_row_bytes(DType t, int64_t n) {
  return static_cast<size_t>(n / dtype_block_elems(t) * dtype_block_bytes(t));
}

const char* dtype_name(DType t);
// Parses "f32" | "f16" | "q8_0" | "q4_0"; returns false for anything else.
bool dtype_from_name(const char* name, DType* out);

}  // namespace sd
