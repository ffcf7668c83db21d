// Test helpers for the tiny-sd15 fixtures: rebuild the formula-weight model from keys.json (the
// README's normative formula), write it as a .safetensors, and read golden tensors.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "models/weights.h"

namespace sdtest {

struct FormulaTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<uint16_t> f16;  // the generated float16 bits
};

// fnv1a32 / fmix32 weight formula of tiny-sd15/README.md (seed 1234).
std::vector<uint16_t> formula_values(const std::string& name, int64_t n, double s, double m, uint32_t seed);
// Every formula tensor of keys.json, in checkpoint order (specials are skipped). Throws on I/O.
std::vector<FormulaTensor> tiny_model_tensors();
// Writes the tensors as one .safetensors in F16 or F32 and returns the tensor table for it.
// `edit` (F32 only) may change a tensor's float values before they are written.
using EditFn = std::function<void(const FormulaTensor&, std::vector<float>&)>;
std::vector<sd::TensorEntry> write_safetensors(const std::string& path, const std::vector<FormulaTensor>& t, bool f32,
                                               const EditFn& edit = nullptr);

struct Golden {
  std::vector<int64_t> shape;
  std::vector<float> f;      // F32 tensors
  std::vector<int32_t> i;    // I32 tensors
};
// Reads one tensor of tiny-sd15/golden.safetensors.
Golden golden(const std::string& name);

}  // namespace sdtest
