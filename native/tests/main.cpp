#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>

#include "tests/test.h"

namespace sdtest {

namespace {
int g_failures_in_case = 0;
}

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

int main(int argc, char** argv) {
  int passed = 0, failed = 0;
  for (const auto& c : sdtest::registry()) {
    bool selected = argc < 2;
    for (int i = 1; i < argc; ++i) selected = selected || std::strstr(c.name, argv[i]) != nullptr;
    if (!selected) continue;
    sdtest::g_failures_in_case = 0;
    try {
      c.fn();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "  FAIL %s: exception: %s\n", c.name, e.what());
      ++sdtest::g_failures_in_case;
    }
    if (sdtest::g_failures_in_case == 0) {
      ++passed;
      std::printf("ok   %s\n", c.name);
    } else {
      ++failed;
      std::printf("FAIL %s\n", c.name);
    }
  }
  std::printf("sdcore: %d passed, %d failed\n", passed, failed);
  return failed == 0 && passed > 0 ? 0 : 1;
}
