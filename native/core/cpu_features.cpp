#include "core/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <set>
#include <thread>
#include <utility>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#ifndef HWCAP_ASIMDHP
#define HWCAP_ASIMDHP (1 << 10)
#endif
#endif

namespace sd {
namespace {

#if defined(__x86_64__) || defined(_M_X64)
uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}
#endif

// Physical cores from sysfs (distinct core ids per package); falls back to logical count.
int count_physical_cores(int logical) {
  std::set<std::pair<int, int>> cores;
  for (int cpu = 0; cpu < logical; ++cpu) {
    const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream c(base + "core_id"), p(base + "physical_package_id");
    int core = -1, pkg = -1;
    if (!(c >> core) || !(p >> pkg)) return logical;
    cores.insert({pkg, core});
  }
  return cores.empty() ? logical : static_cast<int>(cores.size());
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned hc = std::thread::hardware_concurrency();
  f.logical_cores = hc ? static_cast<int>(hc) : 1;
  f.physical_cores = count_physical_cores(f.logical_cores);
#if defined(__x86_64__) || defined(_M_X64)
  unsigned a, b, c, d;
  if (__get_cpuid(1, &a, &b, &c, &d)) {
    const bool osxsave = c & (1u << 27);
    const bool avx = c & (1u << 28);
    f.fma = c & (1u << 12);
    f.f16c = c & (1u << 29);
    const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    const bool os_ymm = (xcr0 & 0x6) == 0x6;
    const bool os_zmm = (xcr0 & 0xE6) == 0xE6;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
      f.avx2 = avx && os_ymm && (b & (1u << 5));
      f.avx512f = os_zmm && (b & (1u << 16));
      f.avx512dq = os_zmm && (b & (1u << 17));
      f.avx512bw = os_zmm && (b & (1u << 30));
      f.avx512vl = os_zmm && (b & (1u << 31));
      f.avx512vnni = os_zmm && (c & (1u << 11));
    }
    if (!os_ymm) f.fma = f.f16c = false;
  }
#elif defined(__aarch64__)
  f.neon = true;  // mandatory in armv8-a
#if defined(__linux__)
  const unsigned long hw = getauxval(AT_HWCAP);
  f.dotprod = hw & HWCAP_ASIMDDP;
  f.fp16 = hw & HWCAP_ASIMDHP;
#endif
#endif
  return f;
}

Isa compute_best() {
  const CpuFeatures& f = cpu_features();
  (void)f;
#if defined(SDNODE_HAVE_AVX512)
  if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni && f.fma && f.f16c)
    return Isa::Avx512;
#endif
#if defined(SDNODE_HAVE_AVX2)
  if (f.avx2 && f.fma && f.f16c) return Isa::Avx2;
#endif
#if defined(SDNODE_HAVE_DOTPROD)
  if (f.dotprod && f.fp16) return Isa::Dotprod;
#endif
#if defined(SDNODE_HAVE_NEON)
  if (f.neon) return Isa::Neon;
#endif
  return Isa::Scalar;
}

bool same_family(Isa a, Isa b) {
  if (a == Isa::Scalar || b == Isa::Scalar) return true;
  return (static_cast<int>(a) >= 10) == (static_cast<int>(b) >= 10);
}

std::atomic<int> g_active{-1};
std::atomic<unsigned> g_generation{1};

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

Isa isa_best() {
  static const Isa best = compute_best();
  return best;
}

bool isa_supported(Isa level) {
  const Isa best = isa_best();
  return same_family(level, best) && static_cast<int>(level) <= static_cast<int>(best);
}

bool isa_force(Isa level) {
  if (!isa_supported(level)) return false;
  g_active.store(static_cast<int>(level));
  g_generation.fetch_add(1);
  return true;
}

Isa isa_active() {
  int v = g_active.load();
  if (v < 0) {
    Isa level = isa_best();
    if (const char* env = std::getenv("SDNODE_ISA")) {
      Isa want;
      if (isa_from_name(env, &want) && isa_supported(want)) level = want;
    }
    int expected = -1;
    g_active.compare_exchange_strong(expected, static_cast<int>(level));
    v = g_active.load();
  }
  return static_cast<Isa>(v);
}

unsigned isa_generation() { return g_generation.load(); }

const char* isa_name(Isa level) {
  switch (level) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    case Isa::Neon: return "neon";
    case Isa::Dotprod: return "dotprod";
  }
  return "unknown";
}

bool isa_from_name(const std::string& name, Isa* out) {
  static const std::pair<const char*, Isa> table[] = {{"scalar", Isa::Scalar}, {"avx2", Isa::Avx2},
      {"avx512", Isa::Avx512}, {"neon", Isa::Neon}, {"dotprod", Isa::Dotprod}};
  for (const auto& e : table) {
    if (name == e.first) { *out = e.second; return true; }
  }
  return false;
}

}  // namespace sd
