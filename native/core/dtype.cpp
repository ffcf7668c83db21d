#include "core/dtype.h"

#include <cstring>

namespace sd {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::Q8_0: return "q8_0";
    case DType::Q4_0: return "q4_0";
  }
  return "unknown";
}

bool dtype_from_name(const char* name, DType* out) {
  static const struct { const char* n; DType t; } table[] = {
      {"f32", DType::F32}, {"f16", DType::F16}, {"q8_0", DType::Q8_0}, {"q4_0", DType::Q4_0}};
  for (const auto& e : table) {
    if (std::strcmp(name, e.n) == 0) { *out = e.t; return true; }
  }
  return false;
}

}  // namespace sd
