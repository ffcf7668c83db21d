// Multi-head attention: tasks are (batch, head, block of kAttnQChunk queries), each run by the table's
// flash-style tile kernel with per-thread scratch, so memory stays O(N) and the result does not
// depend on the thread count.
#include <atomic>
#include <cmath>

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
  static std::atomic<uint64_t> calls{0};
  p.call_id = ++calls;
  if (p.Nq == 0 || p.Nk == 0 || p.B == 0) return;
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
