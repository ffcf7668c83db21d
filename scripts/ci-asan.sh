#!/usr/bin/env bash
# CI job: the core's native tests built with AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/).
# One run on the best level: the op tests sweep every ISA level themselves. Any report fails the job.
source "$(dirname "$0")/ci-common.sh"
cmake_build build-asan -DSDNODE_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
./build-asan/sdcore_tests | grep -v "^ok "
