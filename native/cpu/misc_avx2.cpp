// The avx2 kernel tables: the generic row and attention kernels over the avx2 vector wrapper
// (MiscKernels from simd_misc_table.inc, AttnLaneKernels from simd_attention_lanes.inc).
#include "cpu/vec_avx2.h"
#include "cpu/simd_rows.inc"
#include "cpu/simd_attention.inc"
#include "cpu/simd_attention_lanes.inc"
#include "cpu/simd_misc_table.inc"
