// The op interface every backend implements. Networks (native/models) are written once against it.
//
// Public methods validate shapes and types (throwing std::invalid_argument with a message that
// names the op and the operand) and then call the backend's do_* implementation. While a backend is
// planning (see begin_plan), ops only validate and allocations only count bytes: running a forward
// once in that mode sizes the activation arena exactly, so real forwards never allocate.
//
// Conventions: activations are F32 on the CPU backend (a GPU backend may keep F16 internally; the
// model never reads activation memory directly). Weights are any DType; quantized weights are blocked
// along their innermost (K) dimension. All tensors are contiguous.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include "core/tensor.h"

namespace sd {

enum class Unary { Silu, Gelu /* erf form */, QuickGelu /* x * sigmoid(1.702 x) */ };

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // ---- memory --------------------------------------------------------------------------------
  // Activations: bump allocation from one arena; mark/rewind frees a block's temporaries.
  Tensor alloc(DType t, std::initializer_list<int64_t> dims);
  size_t mark() const { return planning_ ? plan_used_ : do_mark(); }
  void rewind(size_t m);
  // Sizing: begin_plan(); run the forward; size_t bytes = end_plan(); reserve_activations(bytes).
  void begin_plan();
  size_t end_plan();
  bool planning() const { return planning_; }
  virtual void reserve_activations(size_t bytes) = 0;
  virtual size_t activation_capacity() const = 0;
  // Frees the arena and any per-thread kernel scratch (the next forward reserves again). Only
  // between forwards. Default: nothing to free.
  virtual void release_activations() {}

  // Weights: copies `host` (F32/F16/Q8_0/Q4_0 in host memory) into backend-owned memory converted
  // to `target`, possibly repacked for the backend's kernels. Valid until the backend is destroyed.
  virtual Tensor upload_weight(const Tensor& host, DType target) = 0;
  // Like upload_weight, but where `host` already is what the backend would keep for `target`, the
  // backend may use host's bytes in place (the result's data == host.data) instead of copying. The
  // caller then keeps those bytes valid and unchanged until the backend is destroyed (SdModel owns
  // the file mapping for this). The default copies.
  virtual Tensor adopt_weight(const Tensor& host, DType target) { return upload_weight(host, target); }
  // The type activations are stored as: f32, or f16 on a backend that computes in f16 (CUDA's
  // "half" kernel set). Models allocate activations with it (Net::act) and every op checks its
  // activation arguments against it; upload/download convert from/to f32 host data.
  DType activation_type() const { return act_type_; }
  // Host <-> activation copies (float32 host data, numel must match).
  virtual void upload(Tensor& dst, const float* src) = 0;
  virtual void download(float* dst, const Tensor& src) = 0;
  virtual size_t weight_bytes() const = 0;
  // Device memory the backend holds now (weight storage, arena, kernel scratch): a GPU's VRAM
  // figures. 0 where memory is the process's own (the CPU: see its RSS).
  virtual size_t device_bytes() const { return 0; }

  // ---- ops -----------------------------------------------------------------------------------
  // y[M, N] = x[M, K] . w[N, K]^T + bias[N]. x and y may have leading dims (rows = numel / K).
  void linear(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias);
  // ys[i] = x . ws[i]^T for i < n (n <= kMaxLinearN), no bias: several projections of one input
  // (attention's q, k, v). Each is exactly linear(); a backend may run them as one GEMM.
  static constexpr int kMaxLinearN = 3;
  void linear_n(Tensor* const* ys, const Tensor& x, const Tensor* const* ws, int n);
  // y += x . w^T + bias (a residual added in the GEMM's epilogue; y must not overlap x). Models
  // call it only where fuses_linear_add(); elsewhere they add a linear's output themselves, since an
  // op may not take arena memory the planner did not see.
  void linear_add(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias);
  virtual bool fuses_linear_add() const { return false; }
  // y[rows, F] = a * gelu(g), where [a | g] = x . w^T + bias and w is [2F, K]: the GEGLU
  // feed-forward's projection and activation with the [rows, 2F] product never stored (geglu()
  // below). Models call it only where fuses_linear_geglu(x, w), a function of shapes and types, so
  // planning and running agree; elsewhere linear, then geglu.
  void linear_geglu(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias);
  virtual bool fuses_linear_geglu(const Tensor& /*x*/, const Tensor& /*w*/) const { return false; }
  // y[B, C, H, W] = res + (x . w^T + bias) for tokens x [B, H * W, K] and w [C, K]: a token-major
  // linear stored channel-major onto a residual (the spatial transformer's proj_out, transpose back
  // and skip add as one GEMM epilogue). y may be res, not x. Models call it only where
  // fuses_linear_to_channels(); elsewhere a linear, a transpose12 and an add.
  void linear_to_channels(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, const Tensor& res);
  virtual bool fuses_linear_to_channels() const { return false; }
  // y[N, Co, Ho, Wo] = conv(x[N, Ci, H, W], w[Co, Ci, k, k]) + bias[Co]; k in {1, 3}, square kernel.
  void conv2d(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, int stride, int pad);
  // conv2d + chan[N, Co] (broadcast over Ho, Wo) + res (y's shape; not y, not x), either optional:
  // a ResBlock's timestep embedding and its skip, which a backend may add in the conv's epilogue.
  // The default: the conv, then the adds in that order (so a backend that does not fuse them gives
  // the same bits as conv2d and add).
  void conv2d_add(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, int stride, int pad,
                  const Tensor* chan, const Tensor* res);
  // group_norm(t, x, ...), then conv2d_add(y, t, ...): a ResBlock's GroupNorm -> SiLU -> conv. t
  // (x's shape; may be x) is the normalised input's room; a backend that normalises x while it lays
  // it out for the conv (CUDA's NHWC path) does not write it, so t's contents are unspecified after
  // the call. The default runs the two ops (the same bits as calling them).
  void norm_conv2d(Tensor& y, Tensor& t, const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta,
                   float eps, bool silu, const Tensor& w, const Tensor* bias, int stride, int pad, const Tensor* chan,
                   const Tensor* res);
  // Per (sample, group) normalisation over C/groups * H * W, then per-channel affine; optional SiLU.
  // y may be x (in place): every backend reads a group's statistics before writing it.
  void group_norm(Tensor& y, const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta,
                  float eps, bool silu);
  // Normalises the innermost dimension.
  void layer_norm(Tensor& y, const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps);
  // Multi-head attention, O(N) memory. q[B, Nq, H*D], k/v[B, Nk, H*D] -> y[B, Nq, H*D];
  // scale 1/sqrt(D); causal masks key j > query i (needs Nq == Nk).
  void attention(Tensor& y, const Tensor& q, const Tensor& k, const Tensor& v, int heads,
                 bool causal);
  void softmax(Tensor& y, const Tensor& x);  // over the innermost dimension
  void unary(Tensor& y, const Tensor& x, Unary op);
  // y[M, N] = x[M, :N] * gelu(x[M, N:]) for x[M, 2N] (diffusers' GEGLU: proj output split in two).
  void geglu(Tensor& y, const Tensor& x);
  // Elementwise with numpy broadcasting of b against a (b's dims right-aligned, each 1 or equal).
  void add(Tensor& y, const Tensor& a, const Tensor& b);
  void mul(Tensor& y, const Tensor& a, const Tensor& b);
  void scale(Tensor& y, const Tensor& x, float s);
  void copy(Tensor& y, const Tensor& x);
  // Nearest-neighbour resize of [N, C, H, W] to y's [Ho, Wo] (src = floor(dst * H / Ho)), as
  // F.interpolate(mode='nearest') does; the UNet uses 2x, or the skip's size when that is odd.
  void upsample_nearest(Tensor& y, const Tensor& x);
  // conv2d(y, x upsampled 2x by nearest neighbour, w 3x3, bias, stride 1, pad 1): the decoders'
  // Upsample. Where fuses_upsample_conv() the conv reads x at half resolution, so the 2x input is
  // never stored (the VAE's largest one is 256 channels at 512x512: 268 MB in f32); elsewhere it is
  // materialised in a temporary, so models call this only where the backend fuses it.
  void conv2d_upsampled(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias);
  virtual bool fuses_upsample_conv() const { return false; }
  // y[N, Ca + Cb, H, W] = cat(a, b) along channels.
  void concat_channels(Tensor& y, const Tensor& a, const Tensor& b);
  // y[B, C, A] = x[B, A, C] transposed (NCHW <-> tokens: [B, C, HW] <-> [B, HW, C]).
  void transpose12(Tensor& y, const Tensor& x);
  // y[B, dim]: [cos(t*f_i) for i < dim/2, sin(t*f_i) ...], f_i = exp(-ln(max_period) * i / (dim/2)).
  // t: f32 [B] on this backend (an activation, so a recorded forward reads each step's timesteps).
  void timestep_embedding(Tensor& y, const Tensor& t, float max_period = 10000.0f);
  // y[M, D] = table[ids[m], :] for a table of any dtype; ids are host int32 in [0, V).
  void get_rows(Tensor& y, const Tensor& table, const int32_t* ids, int64_t n_ids);

  // Threads for backends that use host threads (CPU); others ignore it.
  virtual void set_threads(int n) {}
  // Convs with q8_0/q4_0 weights may quantize their activations to q8_0 blocks and use integer
  // dot products (faster on CPUs, less exact: see conv_int8.cpp). Backends without it ignore it.
  virtual void set_quantized_conv_activations(bool on) {}
  virtual int threads() const { return 1; }
  // Runs body(): a forward whose inputs already sit in activation tensors and whose result it
  // copies into one allocated before the call. A backend may record body's ops the first times it
  // sees `key` and afterwards replay them without issuing each op from the host (CUDA graphs), so
  // body must take every per-call value from device tensors, never from host memory, and must not
  // read results on the host. `key` names everything body's ops depend on besides the arena state
  // (the caller's shapes, and which arena tensors it passes): the same key at the same arena mark
  // means the same ops on the same pointers. Default: just runs body.
  virtual void run_replayable(const std::string& /*key*/, const std::function<void()>& body) { body(); }
  // True when linear/conv/attention round their inputs to fp16 (tensor cores, f32 accumulation):
  // results then match the CPU within fp16 tolerances, not fp32 ones (tests pick their tier by it).
  virtual bool f16_compute() const { return false; }

  // ---- profiling -----------------------------------------------------------------------------
  // When on, every op's time and FLOPs are summed by op kind ("conv 3x3", "conv 1x1", "linear",
  // "attention", "norms", "elementwise", "layout"): host time on the CPU backend, device time (from
  // events around the op's kernels, the op waited for) where a backend reports it.
  struct OpStats {
    int64_t calls = 0;
    double seconds = 0, flops = 0;
  };
  // detail: every kind also carries its op's shape ("conv 3x3 320>640 @32x32 n2 s1", "norms
  // group_norm+silu [2, 320, 64, 64]"), so a regression or a slow shape can be pinned to its layer.
  void set_profiling(bool on, bool detail = false) { profiling_ = on; profile_detail_ = detail; }
  bool profiling() const { return profiling_; }
  void reset_profile() { profile_.clear(); }
  const std::map<std::string, OpStats>& profile() const { return profile_; }

 protected:
  virtual void* do_alloc(size_t bytes) = 0;
  virtual size_t do_mark() const = 0;
  virtual void do_rewind(size_t m) = 0;

  virtual void do_linear(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias) = 0;
  virtual void do_linear_add(Tensor&, const Tensor&, const Tensor&, const Tensor*) {
    throw std::logic_error("linear_add: this backend does not fuse it (see fuses_linear_add)");
  }
  virtual void do_linear_geglu(Tensor&, const Tensor&, const Tensor&, const Tensor*) {
    throw std::logic_error("linear_geglu: this backend does not fuse it (see fuses_linear_geglu)");
  }
  virtual void do_conv2d_add(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, int stride, int pad,
                             const Tensor* chan, const Tensor* res) {
    do_conv2d(y, x, w, bias, stride, pad);
    if (chan) do_add(y, y, chan->reshaped({y.shape[0], y.shape[1], 1, 1}));
    if (res) do_add(y, y, *res);
  }
  virtual void do_norm_conv2d(Tensor& y, Tensor& t, const Tensor& x, int groups, const Tensor& gamma,
                              const Tensor& beta, float eps, bool silu, const Tensor& w, const Tensor* bias, int stride,
                              int pad, const Tensor* chan, const Tensor* res) {
    do_group_norm(t, x, groups, gamma, beta, eps, silu);
    do_conv2d_add(y, t, w, bias, stride, pad, chan, res);
  }
  virtual void do_linear_to_channels(Tensor&, const Tensor&, const Tensor&, const Tensor*, const Tensor&) {
    throw std::logic_error("linear_to_channels: this backend does not fuse it (see fuses_linear_to_channels)");
  }
  // Default: one do_linear per weight.
  virtual void do_linear_n(Tensor* const* ys, const Tensor& x, const Tensor* const* ws, int n) {
    for (int i = 0; i < n; ++i) do_linear(*ys[i], x, *ws[i], nullptr);
  }
  virtual void do_conv2d(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, int stride,
                         int pad) = 0;
  virtual void do_group_norm(Tensor& y, const Tensor& x, int groups, const Tensor& gamma,
                             const Tensor& beta, float eps, bool silu) = 0;
  virtual void do_layer_norm(Tensor& y, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                             float eps) = 0;
  virtual void do_attention(Tensor& y, const Tensor& q, const Tensor& k, const Tensor& v, int heads,
                            bool causal) = 0;
  virtual void do_softmax(Tensor& y, const Tensor& x) = 0;
  virtual void do_unary(Tensor& y, const Tensor& x, Unary op) = 0;
  virtual void do_geglu(Tensor& y, const Tensor& x) = 0;
  virtual void do_add(Tensor& y, const Tensor& a, const Tensor& b) = 0;
  virtual void do_mul(Tensor& y, const Tensor& a, const Tensor& b) = 0;
  virtual void do_scale(Tensor& y, const Tensor& x, float s) = 0;
  virtual void do_copy(Tensor& y, const Tensor& x) = 0;
  virtual void do_upsample_nearest(Tensor& y, const Tensor& x) = 0;
  virtual void do_conv2d_upsampled(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias) = 0;
  virtual void do_concat_channels(Tensor& y, const Tensor& a, const Tensor& b) = 0;
  virtual void do_transpose12(Tensor& y, const Tensor& x) = 0;
  virtual void do_timestep_embedding(Tensor& y, const Tensor& t, float max_period) = 0;
  virtual void do_get_rows(Tensor& y, const Tensor& table, const int32_t* ids, int64_t n_ids) = 0;

  void set_activation_type(DType t) { act_type_ = t; }
  // The device time of the op that just ran, once, when the backend measured it (else < 0).
  virtual double device_op_seconds() { return -1; }

 private:
  struct OpTimer;
  DType act_type_ = DType::F32;
  bool planning_ = false;
  bool profiling_ = false;
  bool profile_detail_ = false;
  std::map<std::string, OpStats> profile_;
  size_t plan_used_ = 0, plan_high_ = 0;
};

// The CPU backend (always available).
std::unique_ptr<Backend> make_cpu_backend(int threads);

}  // namespace sd
