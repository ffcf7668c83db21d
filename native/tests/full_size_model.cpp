#include "tests/full_size_model.h"

#include <cmath>
#include <string>
#include <vector>

#include "tests/tiny_model.h"

namespace sdtest {
namespace {

// Full-size shape of a tiny-model tensor; CLIP layers 2..11 are added by the caller.
std::vector<int64_t> full_shape(const std::string& name, std::vector<int64_t> s) {
  const bool unet = name.rfind("model.diffusion_model.", 0) == 0, vae = name.rfind("first_stage_model.", 0) == 0;
  const bool kv = name.find("attn2.to_k.weight") != std::string::npos || name.find("attn2.to_v.weight") != std::string::npos;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s.size() == 4 && i >= 2) continue;
    if (unet) s[i] = s[i] == 4 ? 4 : (i == 1 && kv) ? 768 : s[i] * 10;
    else if (vae) s[i] = s[i] >= 32 ? s[i] * 4 : s[i];
    else s[i] = s[i] == 128 ? 768 : s[i] == 512 ? 3072 : s[i];
  }
  return s;
}

void add_formula(sd::Backend& be, sd::Weights& w, const std::string& name, const std::vector<int64_t>& shape,
                 const sd::DType* want) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  const bool weight = name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0;
  double s = 0.05 * std::sqrt(3.0), m = 0.0;
  if (name.find("token_embedding") != std::string::npos) s = std::sqrt(3.0);
  else if (name.find("position_embedding") != std::string::npos) s = 0.5 * std::sqrt(3.0);
  else if (shape.size() >= 2) s = std::sqrt(3.0 / static_cast<double>(n / shape[0]));
  else if (weight) s = 0.1 * std::sqrt(3.0), m = 1.0;
  std::vector<uint16_t> v = formula_values(name, n, s, m, 1234);
  sd::Tensor host(sd::DType::F16, {});
  host.ndim = static_cast<int>(shape.size());
  for (int i = 0; i < host.ndim; ++i) host.shape[i] = shape[i];
  host.data = v.data();
  w.add(be, name, host, sd::choose_dtype(name, shape, sd::DType::F16, want));
}

}  // namespace

std::unique_ptr<sd::SdModel> full_size_model(const sd::ModelOptions& opt, sd::DType want) {
  const auto tiny = tiny_model_tensors();
  return std::make_unique<sd::SdModel>(opt, [&](sd::Backend& be, sd::Weights& w) {
    for (const auto& t : tiny) {
      add_formula(be, w, t.name, full_shape(t.name, t.shape), &want);
      const std::string l1 = "encoder.layers.1.";
      const size_t at = t.name.find(l1);
      if (at != std::string::npos)  // CLIP ViT-L has 12 layers; the tiny model keeps 2
        for (int k = 2; k < 12; ++k)
          add_formula(be, w, t.name.substr(0, at) + "encoder.layers." + std::to_string(k) + "." + t.name.substr(at + l1.size()),
                      full_shape(t.name, t.shape), &want);
    }
  });
}

}  // namespace sdtest
