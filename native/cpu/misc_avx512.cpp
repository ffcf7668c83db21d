// The avx512 kernel tables: the generic row and attention kernels over the avx512 vector wrapper
// (MiscKernels from simd_misc_table.inc, AttnLaneKernels from simd_attention_lanes.inc).
#include "cpu/vec_avx512.h"
#include "cpu/simd_rows.inc"
#include "cpu/simd_attention.inc"
#include "cpu/simd_attention_lanes.inc"
#include "cpu/simd_misc_table.inc"
