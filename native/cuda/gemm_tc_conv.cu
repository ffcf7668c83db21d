// conv2d on tensor cores: the implicit-GEMM gather (ConvRows, no im2col buffer) feeding the kernel
// of gemm_tc_linear.cu (see there for the design).
#include <cstdint>

#include "cuda/gemm_tc_launch.cuh"

namespace sd {
namespace cuda {

using namespace tc_gemm;

void tc_conv2d(const TcCtx& c, Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, int stride, int pad,
               int up) {
  const int ks = static_cast<int>(w.shape[2]);
  const int64_t M = y.shape[0] * y.shape[2] * y.shape[3], N = w.shape[0], K = w.shape[1] * ks * ks;
  const int h = static_cast<int>(x.shape[2]), wd = static_cast<int>(x.shape[3]);
  const int ho = static_cast<int>(y.shape[2]), wo = static_cast<int>(y.shape[3]);
  with_act(x.type, [&](auto tag) {
    using T = decltype(tag);
    const ConvOut<T> st{y.as<T>(), N, static_cast<int64_t>(ho) * wo};
    if (ks == 3)
      launch(c, M, N, K, ConvRows<3, T>{x.as<T>(), M, K, h, wd, ho, wo, stride, pad, up}, w, bias, st, true);
    else
      launch(c, M, N, K, ConvRows<1, T>{x.as<T>(), M, K, h, wd, ho, wo, stride, pad, up}, w, bias, st, true);
  });
}

}  // namespace cuda
}  // namespace sd
