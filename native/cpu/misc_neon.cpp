// The neon kernel table: the generic row and attention kernels over the neon vector wrapper.
#include "cpu/vec_neon.h"
#include "cpu/simd_rows.inc"
#include "cpu/simd_attention.inc"
