// The kernels CudaBackend uses when SDNODE_CUDA_TC=1: tensor cores (f16 inputs, f32 accumulation)
// for linear/conv/attention, and a group_norm spread over many blocks.
// f32 activations are rounded to f16 when a tile is staged into shared memory (f16 ones, the "half"
// set, are copied as they are); weights (f32/f16/q8_0/q4_0) are dequantized into the same f16 tiles.
// Results therefore match the CPU within fp16, not fp32, tolerances.
#pragma once
#include <cuda_runtime.h>

#include <functional>

#include "ops.h"

namespace sd {
namespace cuda {

// What the GEMM launches need from the backend: its stream, the SM count (split-K sizing), the
// pipeline depth and stream-ordered device scratch for split-K partial sums.
struct TcCtx {
  cudaStream_t stream;
  int sms;  // the block slots split-K plans fill: SMs x resident blocks per SM (SDNODE_CUDA_SPLITK_SLOTS)
  bool split_k;  // SDNODE_CUDA_SPLITK=0 turns split-K off (to measure what it gives)
  int stages;    // 4: the multi-stage GEMM pipeline for cp.async loaders (sm_80+ with room for two
                 // blocks per SM); 2: the double-buffered kernel for all (SDNODE_CUDA_STAGES=2)
  bool mixed_pipe = false;  // the multi-stage pipeline for a cp.async A with register-staged
                            // (quantized) weights too (SDNODE_CUDA_QPIPE=1)
  std::function<void*(size_t)> workspace;
};
// The shared memory of one multi-stage GEMM block (TcCtx::stages = 4).
size_t tc_gemm_async_smem_bytes();
// y[M, N] = x[M, K] . w[N, K]^T + bias[N]: any M, N, K (tails are masked).
// accumulate: y += that instead (the residual added in the epilogue: Backend::linear_add).
void tc_linear(const TcCtx& c, Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, bool accumulate = false);
// Backend::linear_to_channels: y [B, C, H, W] = res + (x [B, H * W, K] . w^T + bias), stored NCHW by
// the epilogue; B * H * W < 2^31 (tc_conv2d_fits' bound on the output).
void tc_linear_to_channels(const TcCtx& c, Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias,
                           const Tensor& res);
// Implicit-GEMM conv2d (no im2col buffer), 1x1 and 3x3, stride 1 or 2, padding as v0; up = 1 reads
// x as if upsampled 2x (nearest), for conv2d_upsampled. chan [N, Co] and res (y's shape), where
// given, are added in the epilogue (Backend::conv2d_add).
void tc_conv2d(const TcCtx& c, Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, int stride, int pad,
               int up = 0, const Tensor* chan = nullptr, const Tensor* res = nullptr);
// Whether tc_conv2d takes input x and output y: its gather indexes one image with int offsets, and
// its stores find an output pixel's image with an int division.
inline bool tc_conv2d_fits(const Tensor& x, const Tensor& y) {
  const int64_t limit = int64_t{1} << 31;
  return (x.shape[1] + 2) * x.shape[2] * x.shape[3] < limit && y.shape[0] * y.shape[2] * y.shape[3] < limit;
}
// Backend::linear_n as one GEMM over the weights stacked by rows (n <= 3, no bias), its columns
// stored to the n outputs: for f16 activations and weights of one shape and type (f16, q8_0, q4_0)
// with an even row count (tc_linear_n_fits).
bool tc_linear_n_fits(const Tensor& x, const Tensor* const* ws, int n);
void tc_linear_n(const TcCtx& c, Tensor* const* ys, const Tensor& x, const Tensor* const* ws, int n);
// Backend::linear_geglu as one GEMM whose epilogue applies the GEGLU (gemm_tc_kernel.cuh GegluOut),
// for f16 activations and f16, q8_0 or q4_0 weights of 2F rows, F % 8 == 0 (tc_linear_geglu_fits).
bool tc_linear_geglu_fits(const Tensor& x, const Tensor& w);
void tc_linear_geglu(const TcCtx& c, Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias);
// The NHWC conv path (gemm_tc_conv.cu; 3x3 with f16 weights or, q_taps, q8_0/q4_0 ones; 1x1):
// whether it takes w, x and y; the one-time in-place layout of 3x3 weights it needs, tap-major
// (the caller keeps track; quantized ones take a copy of their bytes from c.workspace); the conv,
// which takes a scratch copy of x from c.workspace (x.numel() halves, with any split-K partials).
bool tc_conv2d_nhwc_fits(const Tensor& x, const Tensor& y, const Tensor& w, bool q_taps);
void tc_conv_weight_to_taps(const TcCtx& c, const Tensor& w);
// Backend::norm_conv2d's group_norm, applied by tc_conv2d_nhwc's input copy (gn: x is then the
// un-normalised input; its statistics take group_norm_split_scratch() more bytes of the workspace).
struct TcGroupNorm {
  int groups;
  const Tensor *gamma, *beta;
  float eps;
  bool silu;
};
void tc_conv2d_nhwc(const TcCtx& c, Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, int stride,
                    int pad, int up, const Tensor* chan = nullptr, const Tensor* res = nullptr,
                    const TcGroupNorm* gn = nullptr);
// A 3x3 conv whose weights were laid out tap-major, over an input the NHWC path does not take (its
// copy would be too large): the gather reads the NCHW input in the weights' k order.
bool tc_conv2d_taps_fits(const Tensor& x, const Tensor& y, const Tensor& w);
void tc_conv2d_taps(const TcCtx& c, Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, int stride,
                    int pad, int up, const Tensor* chan = nullptr, const Tensor* res = nullptr);
// Flash attention for head dims up to 160; returns false (nothing launched) for larger heads.
// `scratch`: device memory of tc_attention_scratch() bytes (f16 copies of K and V), stream-ordered.
size_t tc_attention_scratch(const Tensor& q, const Tensor& k, int heads);  // 0: head dim not handled
bool tc_attention(cudaStream_t s, Tensor& y, const Tensor& q, const Tensor& k, const Tensor& v, int heads, bool causal,
                  void* scratch);
// Head dims above 160 (the VAE's 512): two TC GEMMs around a row softmax, scores materialised per
// chunk of query rows; `scratch`: tc_attention_wide_scratch() bytes (f16 Q/K/V^T per head, scores,
// split-K partials), which must not be the workspace `c` hands out.
size_t tc_attention_wide_scratch(const TcCtx& c, const Tensor& q, const Tensor& k, int heads);
void tc_attention_wide(const TcCtx& c, Tensor& y, const Tensor& q, const Tensor& k, const Tensor& v, int heads,
                       bool causal, void* scratch);

// group_norm (+SiLU) over many blocks per group; `stats` holds group_norm_split_scratch() bytes
// (0: shape not handled, use the v0 kernel).
size_t group_norm_split_scratch(const Tensor& x, int groups);
// Its first half: the per-(sample, group) sums and sums of squares into `stats`.
void group_norm_split_stats(cudaStream_t s, const Tensor& x, int groups, double* stats);
void group_norm_split(cudaStream_t s, Tensor& y, const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta,
                      float eps, bool silu, double* stats);

}  // namespace cuda
}  // namespace sd
