// linear and conv2d on tensor cores: one 128x128x32 block tile, 8 warps of 64x32, mma.sync
// m16n8k16 (two m16n8k8 on sm_75) fed by ldmatrix from padded shared-memory tiles.
//
// Every thread stages its share of the A and W tiles (each loader maps threads to rows and k-chunks
// to suit its reads; protocol in gemm_tc_kernel.cuh): f32 activations (or the implicit-GEMM gather
// of the conv input) and weights (f32, f16, or q8_0/q4_0 half-blocks: a chunk never straddles a
// 32-block) are converted to f16 while being written to shared memory (f16 activations are copied
// as they are, like f16 weights). The pipeline is double-buffered: the next tile's global loads are
// issued before the current tile's mma loop and converted + stored after it, so one __syncthreads
// per tile suffices. Loads that need converting (f32 activations, f32 and quantized weights) go
// through registers, since cp.async cannot convert in flight; f16 rows are copied straight into the
// shared tile with cp.async.
#include <algorithm>
#include <cstdint>

#include "cuda/gemm_tc_launch.cuh"

namespace sd {
namespace cuda {

using namespace tc_gemm;

size_t tc_gemm_async_smem_bytes() { return tc_gemm_async_smem<4>(); }

void tc_linear(const TcCtx& c, Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, bool accumulate) {
  const int64_t K = w.shape[1], N = w.shape[0], M = x.rows();
  if (x.type == DType::F16) {  // f16 activations go global -> shared as they are (cp.async)
    const __half* a = x.as<__half>();
    const F16Rows rows{a, M, K, F16Rows::vec_ok(a, K)};
    if (accumulate) return launch(c, M, N, K, rows, w, bias, DenseOut<__half, true>{y.as<__half>(), N}, false);
    return launch(c, M, N, K, rows, w, bias, DenseOut<__half>{y.as<__half>(), N}, false);
  }
  const float* a = x.f32();
  const bool vec = K % 4 == 0 && reinterpret_cast<uintptr_t>(a) % 16 == 0;
  const F32Rows rows{a, M, K, K, vec};
  if (accumulate) return launch(c, M, N, K, rows, w, bias, DenseOut<float, true>{y.f32(), N}, false);
  launch(c, M, N, K, rows, w, bias, DenseOut<float>{y.f32(), N}, false);
}

namespace {
// The weight types whose loaders take a row map (Stack): f16, q8_0, q4_0.
bool stackable(DType t) { return t == DType::F16 || t == DType::Q8_0 || t == DType::Q4_0; }

// Calls f(wl) with the loader for N stacked rows of K weights from w (the first of the tensors the
// caller's Stack names); vec: every tensor in the stack can take 16-byte copies (f16 only).
template <class F>
void with_stackable(const Tensor& w, int64_t N, int64_t K, bool vec, F&& f) {
  if (w.type == DType::F16) return f(F16Rows{w.as<__half>(), N, K, vec});
  const int64_t row_bytes = static_cast<int64_t>(dtype_row_bytes(w.type, K));
  if (w.type == DType::Q8_0) return f(QRows<false>{w.as<uint8_t>(), N, K, row_bytes});
  f(QRows<true>{w.as<uint8_t>(), N, K, row_bytes});
}
}  // namespace

void tc_linear_to_channels(const TcCtx& c, Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias,
                           const Tensor& res) {
  const int64_t K = w.shape[1], N = w.shape[0], M = x.rows(), plane = y.shape[2] * y.shape[3];
  // n_major: the split-K partials by channel, so the reduction writes whole planes in order.
  if (x.type == DType::F16) {
    const __half* a = x.as<__half>();
    return launch(c, M, N, K, F16Rows{a, M, K, F16Rows::vec_ok(a, K)}, w, bias,
                  ConvOut<__half>{y.as<__half>(), N, plane, res.as<__half>()}, true);
  }
  const float* a = x.f32();
  const F32Rows rows{a, M, K, K, K % 4 == 0 && reinterpret_cast<uintptr_t>(a) % 16 == 0};
  launch(c, M, N, K, rows, w, bias, ConvOut<float>{y.f32(), N, plane, res.f32()}, true);
}

bool tc_linear_n_fits(const Tensor& x, const Tensor* const* ws, int n) {
  if (x.type != DType::F16 || n < 2 || n > 3) return false;
  const Tensor& w0 = *ws[0];
  if (w0.shape[0] % 2 != 0 || !stackable(w0.type)) return false;
  for (int i = 1; i < n; ++i)
    if (ws[i]->type != w0.type || !same_shape(*ws[i], w0)) return false;
  return true;
}

void tc_linear_n(const TcCtx& c, Tensor* const* ys, const Tensor& x, const Tensor* const* ws, int n) {
  const int64_t K = ws[0]->shape[1], part = ws[0]->shape[0], N = part * n, M = x.rows();
  const __half* a = x.as<__half>();
  const F16Rows rows{a, M, K, F16Rows::vec_ok(a, K)};
  SplitCols<__half> st{{ys[0]->as<__half>(), ys[1]->as<__half>(), n > 2 ? ys[2]->as<__half>() : nullptr}, part};
  bool vec = true;
  for (int i = 0; i < n; ++i) vec = vec && F16Rows::vec_ok(ws[i]->data, K);
  with_stackable(*ws[0], N, K, vec, [&](auto wl) {
    wl.stack.part = part;
    for (int i = 1; i < n; ++i) wl.stack.more[i - 1] = static_cast<decltype(wl.base)>(ws[i]->data);
    launch_w(c, M, N, K, rows, wl, nullptr, st, false);
  });
}

bool tc_linear_geglu_fits(const Tensor& x, const Tensor& w) {
  return x.type == DType::F16 && w.ndim == 2 && w.shape[0] % 16 == 0 && stackable(w.type);
}

void tc_linear_geglu(const TcCtx& c, Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias) {
  const int64_t K = w.shape[1], N = w.shape[0], M = x.rows();
  const __half* a = x.as<__half>();
  const F16Rows rows{a, M, K, F16Rows::vec_ok(a, K)};
  const GegluOut<__half> st{y.as<__half>(), N / 2};
  with_stackable(w, N, K, F16Rows::vec_ok(w.data, K), [&](auto wl) {
    wl.stack.geglu_f = N / 2;
    launch_w(c, M, N, K, rows, wl, bias ? bias->f32() : nullptr, st, false);
  });
}

}  // namespace cuda
}  // namespace sd
