// unary activations, GEGLU, and add/mul with numpy broadcasting of b against a.
#include <algorithm>

#include "cpu/cpu_backend.h"
#include "cpu/misc_kernels.h"

namespace sd {
namespace {

constexpr int64_t kChunk = 16384;  // elements per task for flat loops

int unary_code(Unary u) {
  switch (u) {
    case Unary::Silu: return kUnarySilu;
    case Unary::Gelu: return kUnaryGelu;
    default: return kUnaryQuickGelu;
  }
}

// a's shape collapsed to runs of dims where b either matches a (b_bcast false) or is 1 (true).
struct BroadcastPlan {
  int n = 0;
  int64_t size[kMaxDims];
  bool bcast[kMaxDims];
  int64_t bstride[kMaxDims];  // b's element stride per collapsed dim (0 when broadcast)
};

BroadcastPlan plan_broadcast(const Tensor& a, const Tensor& b) {
  BroadcastPlan p;
  for (int i = 0; i < a.ndim; ++i) {
    const int bi = i - (a.ndim - b.ndim);
    const int64_t ad = a.shape[i], bd = bi >= 0 ? b.shape[bi] : 1;
    if (ad == 1) continue;  // size-1 dims of a carry no index
    const bool bc = bd == 1;
    if (p.n > 0 && p.bcast[p.n - 1] == bc) {
      p.size[p.n - 1] *= ad;
    } else {
      p.size[p.n] = ad;
      p.bcast[p.n] = bc;
      ++p.n;
    }
  }
  if (p.n == 0) {
    p.n = 1;
    p.size[0] = 1;
    p.bcast[0] = false;
  }
  int64_t s = 1;
  for (int i = p.n - 1; i >= 0; --i) {
    p.bstride[i] = p.bcast[i] ? 0 : s;
    if (!p.bcast[i]) s *= p.size[i];
  }
  return p;
}

void binary(CpuBackend& be, Tensor& y, const Tensor& a, const Tensor& b, int op) {
  if (a.numel() == 0) return;
  const MiscKernels& kern = misc_kernels();
  const BroadcastPlan p = plan_broadcast(a, b);
  const int64_t inner = p.size[p.n - 1];
  const int64_t rows = a.numel() / inner;
  const int64_t chunks = (inner + kChunk - 1) / kChunk;
  const float* ap = a.f32();
  const float* bp = b.f32();
  float* yp = y.f32();
  be.pool().parallel_for(rows * chunks, std::max<int64_t>(1, kChunk / inner), [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t row = t / chunks, c0 = (t % chunks) * kChunk;
      const int64_t n = std::min(kChunk, inner - c0);
      // b's offset for this row: walk the outer collapsed dims.
      int64_t boff = 0, rem = row;
      for (int i = p.n - 2; i >= 0; --i) {
        boff += (rem % p.size[i]) * p.bstride[i];
        rem /= p.size[i];
      }
      const int64_t off = row * inner + c0;
      if (p.bcast[p.n - 1])
        kern.binary_scalar_row(yp + off, ap + off, bp[boff], n, op);
      else
        kern.binary_row(yp + off, ap + off, bp + boff + c0, n, op);
    }
  });
}

}  // namespace

void CpuBackend::do_unary(Tensor& y, const Tensor& x, Unary op) {
  const MiscKernels& kern = misc_kernels();
  const int code = unary_code(op);
  const int64_t n = x.numel();
  pool().parallel_for((n + kChunk - 1) / kChunk, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t c = b; c < e; ++c) {
      const int64_t off = c * kChunk;
      kern.unary_row(y.f32() + off, x.f32() + off, std::min(kChunk, n - off), code);
    }
  });
}

void CpuBackend::do_geglu(Tensor& y, const Tensor& x) {
  const MiscKernels& kern = misc_kernels();
  const int64_t n = y.row_len();
  pool().parallel_for(y.rows(), std::max<int64_t>(1, kChunk / n), [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) kern.geglu_row(y.f32() + r * n, x.f32() + r * 2 * n, n);
  });
}

void CpuBackend::do_add(Tensor& y, const Tensor& a, const Tensor& b) { binary(*this, y, a, b, kBinAdd); }
void CpuBackend::do_mul(Tensor& y, const Tensor& a, const Tensor& b) { binary(*this, y, a, b, kBinMul); }

}  // namespace sd
