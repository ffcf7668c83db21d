// CI runs this binary under several CPU models and SDNODE_ISA levels (scripts/ci-*.sh); with
// SDNODE_EXPECT_ISA set, it proves the run really exercised that kernel level (e.g. that qemu's
// cortex-a72 lacks dotprod and falls back to NEON) instead of silently testing another one.
#include <cstdlib>
#include <string>

#include "core/cpu_features.h"
#include "tests/test.h"

SD_TEST(ci_expected_isa_is_active) {
  const char* want = std::getenv("SDNODE_EXPECT_ISA");
  if (!want || !*want) return;
  SD_CHECK(std::string(sd::isa_name(sd::isa_active())) == want)
      << "active " << sd::isa_name(sd::isa_active()) << ", best " << sd::isa_name(sd::isa_best()) << ", expected " << want;
}
