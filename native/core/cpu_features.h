// Run-time CPU feature detection and the ISA level the kernels dispatch on.
#pragma once
#include <string>

namespace sd {

// Ordered within each architecture: a higher level implies the lower ones.
enum class Isa : int { Scalar = 0, Avx2 = 1, Avx512 = 2, Neon = 11, Dotprod = 12 };

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512vnni = false;
  bool neon = false, dotprod = false, fp16 = false;
  int physical_cores = 1;
  int logical_cores = 1;
};

const CpuFeatures& cpu_features();

// The best level this CPU runs *and* this binary was compiled with.
Isa isa_best();
// The level kernels use now: isa_best(), lowered by the SDNODE_ISA environment variable
// ("scalar", "avx2", "avx512", "neon", "dotprod") or by isa_force().
Isa isa_active();
// Lowers the active level for tests and benchmarks. Returns false (and changes nothing) when the
// CPU or the build lacks the level.
bool isa_force(Isa level);
bool isa_supported(Isa level);
const char* isa_name(Isa level);
bool isa_from_name(const std::string& name, Isa* out);
// A counter that changes every time the active level changes, so dispatch tables can refresh.
unsigned isa_generation();

}  // namespace sd
