// The Winograd transforms (conv_winograd_xform.inc) built for the AVX2 level.
#include <cstdint>

#include "cpu/conv_winograd.h"

namespace sd {
#define WINO_FN(name) name##_avx2
#include "cpu/conv_winograd_xform.inc"
#undef WINO_FN
}  // namespace sd
