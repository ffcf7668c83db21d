// Multi-head attention. Heads up to the SIMD level's max_head run the query-lanes kernel
// (simd_attention_lanes.inc); wider heads and the scalar level run the table's flash-style tile
// kernel. Either way a task is a fixed (batch, heads, query chunk) piece with per-thread scratch,
// so memory stays O(N) and the result does not depend on the thread count.
#include <atomic>
#include <cmath>

#include "core/cpu_features.h"
#include "cpu/cpu_backend.h"
#include "cpu/misc_kernels.h"

namespace sd {

const AttnLaneKernels* attn_lane_kernels() {
  switch (isa_active()) {
#if defined(SDNODE_HAVE_AVX512)
    case Isa::Avx512: return &avx512::kAttnLaneKernels;
#endif
#if defined(SDNODE_HAVE_AVX2)
    case Isa::Avx2: return &avx2::kAttnLaneKernels;
#endif
#if defined(SDNODE_HAVE_NEON)
    case Isa::Neon:
    case Isa::Dotprod: return &neon::kAttnLaneKernels;
#endif
    default: return nullptr;
  }
}

size_t attn_lanes_scratch_floats(int64_t Nk, int64_t D, int64_t heads) {
  const int64_t R = kAttnLaneRows, Tk = kAttnLaneTk;
  // tag | per head: K^T (tiles round Nk up by < Tk), V | Q^T, O^T | S^T | m, l, tmax
  const int64_t per_head = (Nk + Tk) * D + Nk * D + 16 + 2 * D * R;
  return static_cast<size_t>(16 + heads * per_head + Tk * R + 3 * R + 64);
}

void CpuBackend::do_attention(Tensor& y, const Tensor& q, const Tensor& k, const Tensor& v,
                              int heads, bool causal) {
  AttnProblem p;
  p.q = q.f32();
  p.k = k.f32();
  p.v = v.f32();
  p.y = y.f32();
  p.B = q.shape[0];
  p.Nq = q.shape[1];
  p.Nk = k.shape[1];
  p.H = heads;
  p.D = q.shape[2] / heads;
  p.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(p.D)));
  p.causal = causal;
  static std::atomic<uint64_t> calls{0};
  p.call_id = ++calls;
  if (p.Nq == 0 || p.Nk == 0 || p.B == 0) return;

  const AttnLaneKernels* lanes = attn_lane_kernels();
  if (lanes && p.D <= lanes->max_head) {
    // All heads per task when their packed K/V are small (see kAttnLaneAllHeadsBytes).
    const bool all = p.H * p.Nk * p.D * 2 * static_cast<int64_t>(sizeof(float)) <= kAttnLaneAllHeadsBytes;
    const int64_t hg = all ? p.H : 1, chunk = all ? kAttnLaneChunk : kAttnQChunk;
    const int64_t qtiles = (p.Nq + chunk - 1) / chunk, groups = p.H / hg;
    const size_t bytes = attn_lanes_scratch_floats(p.Nk, p.D, hg) * sizeof(float);
    for (int t = 0; t < threads(); ++t) scratch(t, bytes);
    pool().run(p.B * groups * qtiles, [&](int64_t task, int thread) {
      // Query chunks innermost: consecutive tasks share their heads' packed K/V.
      const int64_t qt = task % qtiles, g = task / qtiles % groups, b = task / qtiles / groups;
      const int64_t q0 = qt * chunk, nq = p.Nq - q0 < chunk ? p.Nq - q0 : chunk;
      lanes->rows(p, b, g * hg, g * hg + hg, q0, nq, reinterpret_cast<float*>(scratch(thread, bytes)));
    });
    return;
  }

  const MiscKernels& kern = misc_kernels();
  const int64_t qtiles = (p.Nq + kAttnQChunk - 1) / kAttnQChunk;
  const size_t bytes = attn_scratch_floats(p.Nk, p.D) * sizeof(float);
  // Grow every thread's scratch up front: scratch() is not safe to grow concurrently.
  for (int t = 0; t < threads(); ++t) scratch(t, bytes);
  pool().run(p.B * p.H * qtiles, [&](int64_t task, int thread) {
    const int64_t qt = task % qtiles, bh = task / qtiles;
    kern.attention_tile(p, bh / p.H, bh % p.H, qt * kAttnQChunk,
                        reinterpret_cast<float*>(scratch(thread, bytes)));
  });
}

}  // namespace sd
