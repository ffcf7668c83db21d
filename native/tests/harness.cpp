// The harness pieces shared by sdcore_tests and sdcuda_tests (main() lives in main.cpp).
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "core/cpu_features.h"
#include "tests/test.h"

namespace sdtest {

int g_failures_in_case = 0;

std::vector<Case>& registry() {
  static std::vector<Case> r;
  return r;
}

Check::Check(bool ok, const char* expr, const char* file, int line)
    : ok_(ok), expr_(expr), file_(file), line_(line) {}

Check::~Check() {
  if (!ok_) {
    ++g_failures_in_case;
    std::fprintf(stderr, "  FAIL %s:%d: %s %s\n", file_, line_, expr_, msg_.str().c_str());
  }
}

double max_rel_err(const float* a, const float* ref, size_t n, double floor) {
  double scale = floor, err = 0;
  for (size_t i = 0; i < n; ++i) scale = std::fmax(scale, std::fabs(static_cast<double>(ref[i])));
  for (size_t i = 0; i < n; ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - static_cast<double>(ref[i]));
    if (!(d <= err)) err = std::isnan(d) ? INFINITY : d;
  }
  return err / scale;
}

std::string fixtures_dir() {
  const char* env = std::getenv("SDNODE_FIXTURES");
  return env ? env : "test/fixtures";
}

bool read_file(const std::string& path, std::vector<uint8_t>* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  out->assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return true;
}

}  // namespace sdtest

