// A full-size SD 1.5-shaped model built in memory from the tiny-sd15 weight formula (the tiny key
// table scaled up as lib/model/formula.ts fullSizeKeys does): for benchmarks and the profile, never
// for golden tests (there is no full-size golden).
#pragma once
#include <memory>

#include "models/model.h"

namespace sdtest {

// weights: the dtype each tensor is converted to (per the loader's policy, as `--type` does).
std::unique_ptr<sd::SdModel> full_size_model(const sd::ModelOptions& opt, sd::DType weights);

}  // namespace sdtest
