// Multi-head attention: tasks are (batch, head, block of kAttnQChunk queries), each run by the table's
// flash-style tile kernel with per-thread scratch, so memory stays O(N) and the result does not
// depend on the thread count.
#include <atomic>
#include <cmath>
#include <cstdlib>

#include "cpu/cpu_backend.h"
#include "cpu/misc_kernels.h"

namespace sd {

void CpuBackend::do_attention(Tensor& y, const Tensor& q, const Tensor& k, const Tensor& v,
                              int heads, bool causal) {
  const MiscKernels& kern = misc_kernels();
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
  p.legacy = std::getenv("SDNODE_ATTN_LEGACY") != nullptr;
  static std::atomic<uint64_t> calls{0};
  p.call_id = ++calls;
  if (p.Nq == 0 || p.Nk == 0 || p.B == 0) return;
  const int64_t qtiles = (p.Nq + kAttnQChunk - 1) / kAttnQChunk;
  const size_t floats = attn_scratch_floats(p.Nk, p.D), lanes = attn_lanes_scratch_floats(p.Nk, p.D);
  const size_t bytes = (floats > lanes ? floats : lanes) * sizeof(float);
  // Grow every thread's scratch up front: scratch() is not safe to grow concurrently.
  for (int t = 0; t < threads(); ++t) scratch(t, bytes);
  pool().run(p.B * p.H * qtiles, [&](int64_t task, int thread) {
    const int64_t qt = task % qtiles, bh = task / qtiles;
    kern.attention_tile(p, bh / p.H, bh % p.H, qt * kAttnQChunk,
                        reinterpret_cast<float*>(scratch(thread, bytes)));
  });
}

size_t attn_lanes_scratch_floats(int64_t Nk, int64_t D) {
  const int64_t R = kAttnLaneRows, Tk = kAttnLaneTk;
  // tag | K^T (tiles round Nk up by < Tk) | V | Q^T, O^T | S^T | m, l, tmax
  return static_cast<size_t>(16 + (Nk + Tk) * D + Nk * D + 16 + 2 * D * R + Tk * R + 3 * R + 64);
}

}  // namespace sd
