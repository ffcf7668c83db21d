// Runs the tensor-core kernels (gemm_tc_kernel.cuh, attention_tc_kernel.cuh, ...) on the host, with
// the warp-level ops emulated from the PTX ISA's fragment layouts (tests/emu/cuda/tc_common.cuh),
// and compares them with a double-precision reference on the same fp16-rounded inputs. It checks
// the kernels' tiling, fragment and masking arithmetic on a machine without a GPU; it cannot check
// the hardware's own behaviour (scripts/gpu-check.sh does). The cases are in tc_emu_gemm.cpp and
// tc_emu_attention.cpp, the harness in tc_emu_harness.h. Not part of the build:
//   bash scripts/cuda-emu-check.sh
#include <cstdio>

#include "tc_emu_harness.h"

namespace emu_test {
void run_gemm_tests();
void run_attention_norm_tests();
}  // namespace emu_test

int main() {
  using namespace emu_test;
  run_gemm_tests();
  run_attention_norm_tests();
  if (g_leftover) {
    std::printf("FAIL cp.async copies left pending when a thread ended\n");
    ++g_fail;
  }
  std::printf("tc emulation%s: %d passed, %d failed\n",
#ifdef SDNODE_EMU_SM75
              " (sm_75: m16n8k8 pairs)",
#else
              "",
#endif
              g_pass, g_fail);
  return g_fail ? 1 : 0;
}
