// conv2d on tensor cores: the implicit-GEMM gather feeding the kernel of gemm_tc_linear.cu (see
// there for the design). Two gathers:
// - NHWC (C % 8 == 0; 3x3 with f16 weights, 1x1 with any): the input is copied channels-last as
//   f16 (one memory-bound pass, a few percent of the conv's time) and 3x3 weights were reordered
//   tap-major once, so the gather is 16-byte cp.async copies (with f16 weights, in the multi-stage
//   pipeline);
// - ConvRows (the rest: 3x3 with quantized or f32 weights, whose 32-blocks run along (ci, ky, kx);
//   odd channel counts): element loads from the NCHW input through registers, no copy.
#include <algorithm>
#include <cstdint>

#include "cuda/conv_nhwc_kernel.cuh"
#include "cuda/gemm_tc_launch.cuh"
#include "cuda/norm_split_kernel.cuh"

namespace sd {
namespace cuda {

using namespace tc_gemm;

namespace {
template <class T>
ConvOut<T> conv_out(Tensor& y, const Tensor* chan, const Tensor* res) {
  return ConvOut<T>{y.as<T>(), y.shape[1], y.shape[2] * y.shape[3], res ? res->as<T>() : nullptr,
                    chan ? chan->as<T>() : nullptr};
}
}  // namespace

void tc_conv2d(const TcCtx& c, Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, int stride, int pad,
               int up, const Tensor* chan, const Tensor* res) {
  const int ks = static_cast<int>(w.shape[2]);
  const int64_t M = y.shape[0] * y.shape[2] * y.shape[3], N = w.shape[0], K = w.shape[1] * ks * ks;
  const int h = static_cast<int>(x.shape[2]), wd = static_cast<int>(x.shape[3]);
  const int ho = static_cast<int>(y.shape[2]), wo = static_cast<int>(y.shape[3]);
  with_act(x.type, [&](auto tag) {
    using T = decltype(tag);
    const ConvOut<T> st = conv_out<T>(y, chan, res);
    if (ks == 3)
      launch(c, M, N, K, ConvRows<3, T>{x.as<T>(), M, K, h, wd, ho, wo, stride, pad, up}, w, bias, st, true);
    else
      launch(c, M, N, K, ConvRows<1, T>{x.as<T>(), M, K, h, wd, ho, wo, stride, pad, up}, w, bias, st, true);
  });
}

// 1x1 convs over large inputs keep ConvRows: the VAE's (256 channels at 512x512) would add a 134 MB
// copy to a q4_0 generation's peak VRAM (0.92 -> 1.01 GB on an H200) for a decode no faster (16.67
// ms with 1x1 on ConvRows, 17.03 through NHWC, the same run); the UNet's copies are <= 5 MB at
// 512x512. Quantized 3x3 convs take the same limit: where the copy would be larger, their
// repacked weights are read with ConvTapRows (tc_conv2d_taps).
constexpr int64_t kNhwcCopyMaxBytes = int64_t{32} << 20;

bool tc_conv2d_nhwc_fits(const Tensor& x, const Tensor& y, const Tensor& w, bool q_taps) {
  const int64_t ci = w.shape[1], ks = w.shape[2], limit = int64_t{1} << 31;
  const bool big = x.numel() * static_cast<int64_t>(sizeof(__half)) > kNhwcCopyMaxBytes;
  // 3x3: f16 weights are reordered tap-major; q8_0/q4_0 ones repacked (q_taps: SDNODE_CUDA_QTAPS),
  // which needs whole 32-channel blocks; 1x1 rows already are tap-major, in every weight type.
  const bool q = w.type == DType::Q8_0 || w.type == DType::Q4_0;
  const bool kernel_ok = ks == 1 ? !big
                                 : ks == 3 && ((w.type == DType::F16 && ci * 9 * 2 <= nhwc::kMaxRowBytes) ||
                                               (q && q_taps && ci % 32 == 0 && !big));
  return kernel_ok && w.ndim == 4 && w.shape[3] == ks && ci % 8 == 0 && x.shape[1] == ci &&
         x.shape[2] * x.shape[3] * 4 < limit && 9 * ci < limit && y.shape[0] * y.shape[2] * y.shape[3] < limit;
}

bool tc_conv2d_taps_fits(const Tensor& x, const Tensor& y, const Tensor& w) {
  const int64_t ci = w.shape[1];
  return w.ndim == 4 && w.shape[2] == 3 && w.shape[3] == 3 && x.shape[1] == ci && ci % 16 == 0 &&
         9 * ci < (int64_t{1} << 31) && tc_conv2d_fits(x, y);
}

void tc_conv_weight_to_taps(const TcCtx& c, const Tensor& w) {
  const int ci = static_cast<int>(w.shape[1]), taps = static_cast<int>(w.shape[2] * w.shape[3]);
  const auto rows = static_cast<unsigned>(w.shape[0]);
  if (w.type == DType::F16) {
    const size_t smem = static_cast<size_t>(ci) * taps * sizeof(__half);
    cuda::enqueue(nhwc::reorder_taps_kernel, rows, nhwc::THREADS, smem, c.stream, w.as<__half>(), ci, taps);
  } else {
    void* copy = c.workspace(w.nbytes());
    SD_CUDA(cudaMemcpyAsync(copy, w.data, w.nbytes(), cudaMemcpyDeviceToDevice, c.stream));
    const auto* src = static_cast<const uint8_t*>(copy);
    auto* dst = static_cast<uint8_t*>(w.data);
    if (w.type == DType::Q4_0)
      cuda::enqueue(nhwc::repack_q_taps_kernel<true>, rows, nhwc::THREADS, 0, c.stream, src, dst, ci);
    else
      cuda::enqueue(nhwc::repack_q_taps_kernel<false>, rows, nhwc::THREADS, 0, c.stream, src, dst, ci);
  }
  SD_CUDA_LAUNCHED("conv weight to tap-major");
}

void tc_conv2d_nhwc(const TcCtx& c, Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, int stride,
                    int pad, int up, const Tensor* chan, const Tensor* res, const TcGroupNorm* gn) {
  const int ks = static_cast<int>(w.shape[2]);
  const int64_t M = y.shape[0] * y.shape[2] * y.shape[3], N = w.shape[0], K = w.shape[1] * ks * ks;
  const int C = static_cast<int>(x.shape[1]), h = static_cast<int>(x.shape[2]), wd = static_cast<int>(x.shape[3]);
  const int ho = static_cast<int>(y.shape[2]), wo = static_cast<int>(y.shape[3]);
  const int images = static_cast<int>(x.shape[0]), P = h * wd;
  // One scratch request for the NHWC copy, any group_norm statistics and the split-K partials.
  const auto round = [](size_t b) { return (b + 255) & ~size_t(255); };
  const size_t copy_bytes = round(static_cast<size_t>(x.numel()) * sizeof(__half));
  const size_t stats_bytes = gn ? round(group_norm_split_scratch(x, gn->groups)) : 0;
  const size_t split_bytes = splitk_workspace_bytes(split_plan(M, N, K, c.sms, c.split_k), M, N);
  char* base = static_cast<char*>(c.workspace(copy_bytes + stats_bytes + split_bytes));
  __half* xh = reinterpret_cast<__half*>(base);
  auto* stats = reinterpret_cast<double*>(base + copy_bytes);
  TcCtx after = c;
  after.workspace = [p = base + copy_bytes + stats_bytes](size_t) -> void* { return p; };
  if (gn) group_norm_split_stats(c.stream, x, gn->groups, stats);
  const float* b = bias ? bias->f32() : nullptr;
  with_act(x.type, [&](auto tag) {
    using T = decltype(tag);
    const auto copy = [&](auto map) {
      for (int i0 = 0; i0 < images; i0 += 65535) {  // grid.z holds at most 65535 images a launch
        const dim3 grid(static_cast<unsigned>((P + 31) / 32), static_cast<unsigned>((C + 31) / 32),
                        static_cast<unsigned>(std::min(images - i0, 65535)));
        const int64_t off = static_cast<int64_t>(i0) * C * P;
        auto m = map;
        if constexpr (decltype(map)::kPrepare) m.stats += 2 * static_cast<int64_t>(i0) * m.groups;  // image i0's groups
        cuda::enqueue(transpose_kernel<T, __half, decltype(map)>, grid, kTransposeThreads, 0, c.stream,
                      x.as<T>() + off, xh + off, C, P, m);
      }
    };
    if (gn)
      copy(gn_split::GnMap{stats, gn->gamma->f32(), gn->beta->f32(), C / gn->groups, gn->groups,
                           static_cast<int64_t>(C / gn->groups) * P, gn->eps, gn->silu});
    else
      copy(PlainMap{});
    SD_CUDA_LAUNCHED("conv input to NHWC");
    const ConvOut<T> st = conv_out<T>(y, chan, res);
    if (ks == 1) return launch(after, M, N, K, NhwcConvRows<1>{xh, M, C, h, wd, ho, wo, stride, pad, up}, w, bias, st, true);
    with_tap_weights(w.type, w.data, N, K, [&](auto wl, auto cb) {
      launch_w(after, M, N, K, NhwcConvRows<3, decltype(cb)::value>{xh, M, C, h, wd, ho, wo, stride, pad, up}, wl, b,
               st, true);
    });
  });
}

void tc_conv2d_taps(const TcCtx& c, Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, int stride,
                    int pad, int up, const Tensor* chan, const Tensor* res) {
  const int64_t M = y.shape[0] * y.shape[2] * y.shape[3], N = w.shape[0], K = w.shape[1] * 9;
  const int C = static_cast<int>(x.shape[1]), h = static_cast<int>(x.shape[2]), wd = static_cast<int>(x.shape[3]);
  const int ho = static_cast<int>(y.shape[2]), wo = static_cast<int>(y.shape[3]);
  const float* b = bias ? bias->f32() : nullptr;
  with_act(x.type, [&](auto tag) {
    using T = decltype(tag);
    const ConvOut<T> st = conv_out<T>(y, chan, res);
    with_tap_weights(w.type, w.data, N, K, [&](auto wl, auto cb) {
      launch_w(c, M, N, K, ConvTapRows<decltype(cb)::value, T>{x.as<T>(), M, C, h, wd, ho, wo, stride, pad, up}, wl, b,
               st, true);
    });
  });
}

}  // namespace cuda
}  // namespace sd
