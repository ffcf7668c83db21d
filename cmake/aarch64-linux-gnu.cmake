# Cross build for linux-arm64 with Debian's toolchain (apt-get install g++-aarch64-linux-gnu).
# Used by `npm run prebuild:arm64` (addon) and scripts/ci-arm64.sh (core tests under qemu-aarch64).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_STRIP aarch64-linux-gnu-strip)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Debian 12's aarch64 GCC 12.2 crashes (ICE in vect_transform_reduction) vectorizing an fmax
# reduction of floats widened to double, a pattern the scalar references and tests use. Keeping
# fmax a library call avoids it; NEON kernels use intrinsics and are unaffected. Not via
# CMAKE_CXX_FLAGS(_INIT): cmake-js sets CMAKE_CXX_FLAGS on its command line, which would drop it.
add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-fno-builtin-fmax>)
