#include <cstdio>
#include <cstring>
#include <exception>

#include "core/cpu_features.h"
#include "tests/test.h"

namespace sdtest {
extern int g_failures_in_case;
}

int main(int argc, char** argv) {
  // Line-buffered even into a pipe, so that a crashing case is found by the last "ok" before it.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  int passed = 0, failed = 0;
  // The level SDNODE_ISA asked for; every case starts there, since tests that sweep the levels
  // finish by forcing isa_best() and CI runs the whole suite per level (scripts/ci-*.sh).
  const sd::Isa start_level = sd::isa_active();
  for (const auto& c : sdtest::registry()) {
    bool selected = argc < 2;
    for (int i = 1; i < argc; ++i) selected = selected || std::strstr(c.name, argv[i]) != nullptr;
    if (!selected) continue;
    sdtest::g_failures_in_case = 0;
    sd::isa_force(start_level);
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
