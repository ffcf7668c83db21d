// A minimal test harness for the core (runs natively, under qemu-user and under ASan/UBSan).
//   SD_TEST(name) { SD_CHECK(cond) << "context"; SD_CHECK_NEAR(a, b, tol); }
// Run all: sdcore_tests; a subset: sdcore_tests <substring>...
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace sdtest {

struct Case {
  const char* name;
  void (*fn)();
};
std::vector<Case>& registry();
struct Reg {
  Reg(const char* name, void (*fn)()) { registry().push_back({name, fn}); }
};

// Records a failure when destroyed with ok == false, after collecting streamed context.
struct Check {
  Check(bool ok, const char* expr, const char* file, int line);
  ~Check();
  template <typename T> Check& operator<<(const T& v) {
    if (!ok_) msg_ << v;
    return *this;
  }
  bool ok_;
  std::ostringstream msg_;
  const char *expr_, *file_;
  int line_;
};

// Deterministic data for tests (xorshift64*), uniform in [lo, hi).
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() { s ^= s >> 12; s ^= s << 25; s ^= s >> 27; return s * 0x2545F4914F6CDD1Dull; }
  float uniform(float lo = -1.f, float hi = 1.f) {
    return lo + (hi - lo) * static_cast<float>((next() >> 40) * (1.0 / 16777216.0));
  }
  std::vector<float> vec(size_t n, float lo = -1.f, float hi = 1.f) {
    std::vector<float> v(n);
    for (auto& x : v) x = uniform(lo, hi);
    return v;
  }
};

// Max |a-b| / max(|b|_inf, floor): a relative error against the reference's scale.
double max_rel_err(const float* a, const float* ref, size_t n, double floor = 1e-6);
// Directory with the test fixtures (SDNODE_FIXTURES env, default "test/fixtures").
std::string fixtures_dir();
bool read_file(const std::string& path, std::vector<uint8_t>* out);

}  // namespace sdtest

#define SD_TEST(name)                                        \
  static void sdtest_##name();                               \
  static ::sdtest::Reg sdtest_reg_##name(#name, sdtest_##name); \
  static void sdtest_##name()
#define SD_CHECK(cond) ::sdtest::Check((cond), #cond, __FILE__, __LINE__)
#define SD_CHECK_NEAR(a, b, tol)                                                      \
  ::sdtest::Check(std::fabs(static_cast<double>(a) - static_cast<double>(b)) <= (tol), \
                  #a " ~= " #b, __FILE__, __LINE__)                                   \
      << (a) << " vs " << (b) << " (tol " << (tol) << ") "
