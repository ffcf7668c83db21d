#!/usr/bin/env bash
# CI job: the x64 native tests again on the lower ISA levels (npm test already ran the best one):
# scalar (baseline path) always, avx2 when the CPU has it (the default run used avx512 where present). Reuses build-tests/ from npm test.
source "$(dirname "$0")/ci-common.sh"
[ -x build-tests/sdcore_tests ] || cmake_build build-tests -DCMAKE_BUILD_TYPE=Release
levels="scalar"
# A level runs only when the CPU has it and some *_avx2.cpp is compiled in.
grep -qw avx2 /proc/cpuinfo && find native -name '*_avx2.cpp' | grep -q . && levels="$levels avx2"
for isa in $levels; do
  echo "ci-x64-isa: SDNODE_ISA=$isa"
  SDNODE_ISA="$isa" SDNODE_EXPECT_ISA="$isa" ./build-tests/sdcore_tests | grep -v "^ok "
done
