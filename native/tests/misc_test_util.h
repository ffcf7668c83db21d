// Helpers shared by the norm / elementwise / attention tests: run a body on every ISA level this
// CPU and build have, with 1 and 3 threads, and a backend whose tensors wrap test-owned vectors.
#pragma once
#include <cmath>
#include <memory>
#include <vector>

#include "core/cpu_features.h"
#include "ops.h"

namespace misctest {

// Restores the best level even when a check throws.
struct IsaRestore {
  ~IsaRestore() { sd::isa_force(sd::isa_best()); }
};

// fn(isa, threads, backend) for every available level and thread counts 1 and 3.
template <typename F>
void for_each_config(F fn) {
  IsaRestore restore;
  for (sd::Isa isa : {sd::Isa::Scalar, sd::Isa::Avx2, sd::Isa::Avx512, sd::Isa::Neon, sd::Isa::Dotprod}) {
    if (!sd::isa_force(isa)) continue;
    for (int threads : {1, 3}) {
      auto be = sd::make_cpu_backend(threads);
      fn(isa, threads, *be);
    }
    sd::isa_force(sd::isa_best());
  }
}

inline sd::Tensor view(std::vector<float>& v, std::initializer_list<int64_t> dims) {
  return sd::Tensor(sd::DType::F32, dims, v.data());
}

// Largest |a - ref| / max(|ref|, 1) over the elements: relative for big values, absolute near 0.
inline double max_mixed_err(const std::vector<float>& a, const std::vector<double>& ref) {
  double e = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(a[i] - ref[i]) / std::fmax(std::fabs(ref[i]), 1.0);
    if (!(d <= e)) e = std::isnan(d) ? INFINITY : d;
  }
  return e;
}

inline double max_rel_err_d(const std::vector<float>& a, const std::vector<double>& ref) {
  double scale = 1e-30, e = 0.0;
  for (double r : ref) scale = std::fmax(scale, std::fabs(r));
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(a[i] - ref[i]);
    if (!(d <= e)) e = std::isnan(d) ? INFINITY : d;
  }
  return e / scale;
}

}  // namespace misctest
