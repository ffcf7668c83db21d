// The CUDA backend: the op interface on an NVIDIA GPU. Built as its own shared library
// (sdnode_cuda.so) that the addon dlopens only when asked for and a driver is present, so the addon
// itself never links the CUDA runtime.
//
// v0: f32 activations, SIMT kernels (tiled GEMM/implicit-GEMM conv with weights dequantized inside
// shared-memory tiles, flash-style attention with online softmax, fused group_norm+SiLU).
// Tensor-core path (tc_kernels.h), the default: linear, conv2d and attention with f16 inputs and
// f32 accumulation, plus a many-block group_norm; SDNODE_CUDA_TC=0 (read once when the backend is
// created) selects v0 instead (scripts/cuda-emu-check.sh runs the TC kernels on the host; a GPU
// run of scripts/gpu-check.sh passed with both on an H200). The "half" part of SDNODE_CUDA_TC (in
// "1", the default) stores activations as f16 (Backend::activation_type; every kernel is templated
// on it, act.cuh): half the arena and the memory traffic, with GroupNorm/LayerNorm statistics,
// softmax and accumulation kept in f32.
//
// CUDA graphs (graph.cu), on unless SDNODE_CUDA_GRAPH=0 (read once when the backend is created):
// run_replayable() runs a UNet step op by op the first time it sees a shape, captures it into a
// graph the second time and from then on launches that graph, so a step costs one launch instead
// of one host call per kernel. No op syncs the host or copies from host memory inside a step
// (kernel-parameter tables, device-side timesteps); the scratch buffer may grow only outside a
// capture.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <vector>

#include "cuda/launch.h"
#include "cuda/pdl.cuh"
#include "cuda/tc_kernels.h"
#include "ops.h"

namespace sd {

struct CudaFree {
  void operator()(void* p) const noexcept { cudaFree(p); }
};
using DeviceBuffer = std::unique_ptr<void, CudaFree>;

struct CudaGraphFree {
  void operator()(cudaGraph_t g) const noexcept { cudaGraphDestroy(g); }
};
struct CudaGraphExecFree {
  void operator()(cudaGraphExec_t g) const noexcept { cudaGraphExecDestroy(g); }
};
using GraphPtr = std::unique_ptr<std::remove_pointer_t<cudaGraph_t>, CudaGraphFree>;
using GraphExecPtr = std::unique_ptr<std::remove_pointer_t<cudaGraphExec_t>, CudaGraphExecFree>;

void cuda_check(cudaError_t e, const char* what);
#define SD_CUDA(call) ::sd::cuda_check((call), #call)
// Checks for launch errors without synchronising.
#define SD_CUDA_LAUNCHED(name) ::sd::cuda_check(cudaGetLastError(), name)

// Grid-stride launch geometry for n elements.
inline unsigned blocks_for(int64_t n, int threads = 256) {
  int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 65535 * 16 ? (b < 1 ? 1 : b) : 65535 * 16);
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device);
  ~CudaBackend() override;
  const char* name() const override { return "cuda"; }
  bool fuses_upsample_conv() const override { return true; }
  bool fuses_linear_add() const override { return tc_gemm_; }
  bool fuses_linear_geglu(const Tensor& x, const Tensor& w) const override;
  bool fuses_linear_to_channels() const override;

  void reserve_activations(size_t bytes) override;
  void release_activations() override;
  size_t activation_capacity() const override { return capacity_; }
  Tensor upload_weight(const Tensor& host, DType target) override;
  void upload(Tensor& dst, const float* src) override;
  void download(float* dst, const Tensor& src) override;
  size_t weight_bytes() const override { return weight_bytes_; }
  size_t device_bytes() const override { return weight_reserved_ + capacity_ + scratch_bytes_; }

  bool f16_compute() const override { return tc_gemm_ || tc_attn_ || activation_type() == DType::F16; }
  // Graph capture and replay when SDNODE_CUDA_GRAPH=1 (graph.cu); otherwise body() op by op.
  void run_replayable(const std::string& key, const std::function<void()>& body) override;

  cudaStream_t stream() const { return stream_; }
  // Device scratch that grows only (per-op temporaries: f16 K/V for attention, group statistics).
  // Growing syncs the stream and invalidates recorded graphs, so it throws during a capture.
  void* scratch(size_t bytes);

 protected:
  void* do_alloc(size_t bytes) override;
  size_t do_mark() const override { return used_; }
  void do_rewind(size_t m) override { used_ = m; }

  void do_linear(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias) override;
  void do_linear_n(Tensor* const* ys, const Tensor& x, const Tensor* const* ws, int n) override;
  void do_linear_geglu(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias) override;
  void do_linear_to_channels(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias,
                             const Tensor& res) override;
  void do_linear_add(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias) override;
  void do_conv2d(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, int stride,
                 int pad) override;
  void do_group_norm(Tensor& y, const Tensor& x, int groups, const Tensor& gamma,
                     const Tensor& beta, float eps, bool silu) override;
  void do_layer_norm(Tensor& y, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                     float eps) override;
  void do_attention(Tensor& y, const Tensor& q, const Tensor& k, const Tensor& v, int heads,
                    bool causal) override;
  void do_softmax(Tensor& y, const Tensor& x) override;
  void do_unary(Tensor& y, const Tensor& x, Unary op) override;
  void do_geglu(Tensor& y, const Tensor& x) override;
  void do_add(Tensor& y, const Tensor& a, const Tensor& b) override;
  void do_mul(Tensor& y, const Tensor& a, const Tensor& b) override;
  void do_scale(Tensor& y, const Tensor& x, float s) override;
  void do_copy(Tensor& y, const Tensor& x) override;
  void do_upsample_nearest(Tensor& y, const Tensor& x) override;
  void do_conv2d_upsampled(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias) override;
  void do_conv2d_add(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, int stride, int pad,
                     const Tensor* chan, const Tensor* res) override;
  void do_norm_conv2d(Tensor& y, Tensor& t, const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta,
                      float eps, bool silu, const Tensor& w, const Tensor* bias, int stride, int pad, const Tensor* chan,
                      const Tensor* res) override;
  void do_concat_channels(Tensor& y, const Tensor& a, const Tensor& b) override;
  void do_transpose12(Tensor& y, const Tensor& x) override;
  void do_timestep_embedding(Tensor& y, const Tensor& t, float max_period) override;
  void do_get_rows(Tensor& y, const Tensor& table, const int32_t* ids, int64_t n_ids) override;

 private:
  // Declared first in every do_*: while op profiling is on (Backend::set_profiling), times the
  // op's kernels with events and waits for them on leaving (device_op_seconds). Also makes the
  // backend's device current: ops and copies may come from any thread (the addon's load and run
  // workers are libuv pool threads), whose current device is 0 unless set.
  struct OpSync {
    CudaBackend* be;
    bool timed = false;
    explicit OpSync(CudaBackend* b) : be(b) {
      be->bind();
      if (be->profiling() && be->op_depth_++ == 0) timed = be->profile_begin();
    }
    ~OpSync() {
      if (!be->profiling()) return;
      if (timed) be->profile_end();
      else cudaStreamSynchronize(be->stream_);  // errors surface at the next launch check
      --be->op_depth_;
    }
  };
  // The op's events: a short spin kernel first holds the idle stream while the host enqueues the
  // op's kernels, so the span between the events is device time alone, not launch latency.
  bool profile_begin();
  void profile_end();
  double device_op_seconds() override {
    const double s = last_op_s_;
    last_op_s_ = -1;
    return s;
  }
  cudaEvent_t prof_ev_[2] = {nullptr, nullptr};
  int op_depth_ = 0;
  double last_op_s_ = -1;

  // cudaSetDevice(device_) for this thread; not during a capture (the capturing thread already is).
  void bind() const;

  // The tensor-core GEMMs' view of this backend (stream, SM count, scratch for split-K).
  cuda::TcCtx tc_ctx();
  // conv2d and conv2d_upsampled (up = 1: x is read at half resolution).
  // chan, res: Backend::conv2d_add's, added in the epilogue (after the v0 kernel, by adds).
  void conv(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, int stride, int pad, int up,
            const Tensor* chan = nullptr, const Tensor* res = nullptr);
  // Whether the NHWC conv path takes this conv; the conv through it (laying a 3x3 weight out
  // tap-major on its first use), with gn: x normalised by its input copy (do_norm_conv2d).
  bool nhwc_takes(const Tensor& y, const Tensor& x, const Tensor& w) const;
  void conv_nhwc(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, int stride, int pad, int up,
                 const Tensor* chan, const Tensor* res, const cuda::TcGroupNorm* gn = nullptr);
  // add (mul = false) and mul, with a's shape and b broadcast to it.
  void binary(Tensor& y, const Tensor& a, const Tensor& b, bool mul);

  // One recorded step per key, with the state its baked-in pointers depend on: it is launched only
  // while the arena, the arena mark at entry and the scratch buffer are the ones it was captured at.
  struct Recorded {
    std::string key;
    GraphExecPtr exec;  // null after the first (eager) run, which sizes the scratch buffer
    const void* arena = nullptr;
    size_t entry = 0, exit = 0;  // arena mark before and after the step
    const void* scratch = nullptr;
    size_t scratch_bytes = 0;
    uint64_t last_use = 0;
  };
  static constexpr size_t kMaxGraphs = 8;  // least recently used beyond this are dropped
  Recorded* find_recorded(const std::string& key);
  // Captures body into r and launches it; false (after cleaning up and saying why on stderr) if
  // the step cannot be captured, in which case nothing of it ran.
  bool capture(Recorded& r, const std::function<void()>& body);
  void drop_graphs() { graphs_.clear(); }

  int device_;
  int sms_ = 0;  // streaming multiprocessors (split-K sizing)
  bool split_k_ = true;  // SDNODE_CUDA_SPLITK=0: off
  // Resident GEMM blocks per SM the split-K planner counts: 2 from sm_80 on (SDNODE_CUDA_SPLITK_SLOTS=1:
  // one, as before). The small-grid convs had run one 8-warp block per SM (ncu: 12.5 % occupancy).
  int split_slots_ = 1;
  int stages_ = 2;  // TcCtx::stages
  // TcCtx::mixed_pipe: the multi-stage kernel for quantized weights too (SDNODE_CUDA_QPIPE=1, with
  // stages_ 4). Off by default until a GPU run has measured it (written without one).
  bool q_pipe_ = false;
  bool nhwc_ = true;  // the NHWC conv path (SDNODE_CUDA_NHWC=0: off, to measure what it gives)
  bool nhwc_1x1_ = true;  // ... for 1x1 convs too (SDNODE_CUDA_NHWC=3x3: 3x3 only)
  // ... for 3x3 convs with q8_0/q4_0 weights too, repacked tap-major on first use (SDNODE_CUDA_QTAPS=1).
  // Off by default until a GPU run has measured it (written without one; the host emulation checks
  // the kernels).
  bool q_taps_ = false;
  // Programmatic dependent launch of every kernel (launch.h, pdl.cuh): sm_90+ with
  // SDNODE_CUDA_PDL=1. Off by default until a GPU run has measured it (written without one).
  bool pdl_ = false;
  // Epilogue fusions, SDNODE_CUDA_FUSE=1 (or a comma list of their names); off by default until a
  // GPU run has measured them (written without one; the host emulation checks the kernels).
  // geglu: the feed-forward's GEGLU in its first GEMM (fuses_linear_geglu); proj_out: the spatial
  // transformer's proj_out, transpose back and skip add as one GEMM with an NCHW residual store
  // (fuses_linear_to_channels); conv_add: a ResBlock's timestep embedding and skip added by its
  // convs (do_conv2d_add); norm_conv: a ResBlock's GroupNorm + SiLU applied by its conv's NHWC input
  // copy (do_norm_conv2d), the normalised tensor never stored.
  bool geglu_ = false, proj_out_ = false, conv_add_ = false, norm_conv_ = false;
  // 3x3 conv weights laid out tap-major in place (f16 reordered to [co][ky][kx][ci], q8_0/q4_0
  // repacked) for the NHWC conv and ConvTapRows (gemm.cu).
  std::unordered_set<const void*> tap_major_;
  bool graphs_on_ = false;  // SDNODE_CUDA_GRAPH=1
  bool capturing_ = false;
  std::vector<Recorded> graphs_;
  std::set<std::string> uncapturable_;  // keys whose capture failed once: always op by op
  uint64_t graph_clock_ = 0;
  // TC-mode kernels (SDNODE_CUDA_TC=1, or a list of gemm,attn,norm)
  bool tc_gemm_ = false, tc_attn_ = false, tc_norm_ = false;
  cudaStream_t stream_ = nullptr;
  DeviceBuffer arena_;
  size_t capacity_ = 0, used_ = 0;
  void* weight_slot(size_t bytes);
  struct WeightChunk {
    DeviceBuffer mem;
    size_t size, used;
  };
  std::vector<WeightChunk> weights_;  // the chunks weights are sub-allocated from
  size_t weight_reserved_ = 0;
  size_t weight_bytes_ = 0;
  DeviceBuffer scratch_;
  size_t scratch_bytes_ = 0;
};

}  // namespace sd

// The library's C entry points (looked up with dlsym by native/core/backend_loader.cpp).
extern "C" {
// Fills `info` with a one-line description of device `device`; returns 0, or -1 with the reason.
int sdnode_cuda_probe(int device, char* info, size_t info_len);
// Creates the backend; returns 0, or -1 with the reason in err.
int sdnode_cuda_create(int device, sd::Backend** out, char* err, size_t err_len);
void sdnode_cuda_destroy(sd::Backend* backend);
}
