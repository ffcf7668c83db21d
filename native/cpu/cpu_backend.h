// The CPU backend. Member functions are defined by op family across native/cpu/*.cpp; each family
// picks its kernels for isa_active() (scalar reference, AVX2, AVX-512, NEON, dotprod).
#pragma once
#include <memory>
#include <vector>

#include "core/arena.h"
#include "core/threadpool.h"
#include "ops.h"

namespace sd {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads);
  const char* name() const override { return "cpu"; }

  void reserve_activations(size_t bytes) override { arena_.reserve(bytes); }
  size_t activation_capacity() const override { return arena_.capacity(); }
  void release_activations() override;
  Tensor upload_weight(const Tensor& host, DType target) override;
  Tensor adopt_weight(const Tensor& host, DType target) override;
  void upload(Tensor& dst, const float* src) override;
  void download(float* dst, const Tensor& src) override;
  size_t weight_bytes() const override { return weight_bytes_; }
  void set_threads(int n) override;
  int threads() const override { return pool_->size(); }
  void set_quantized_conv_activations(bool on) override { conv_q8_acts_ = on; }
  bool quantized_conv_activations() const { return conv_q8_acts_; }

  ThreadPool& pool() { return *pool_; }
  // Per-thread scratch for kernels (packing panels, quantized activations); grows only, so after
  // the first forward of a shape it never allocates. Index by the pool's thread id.
  uint8_t* scratch(int thread, size_t bytes);
  // One grow-only buffer for an op's whole-call temporaries (Winograd's transformed weights, up
  // to 16 MB), so they are not mapped and faulted in again on every call. Ops on one backend run
  // one at a time.
  uint8_t* op_buffer(size_t bytes);

 protected:
  void* do_alloc(size_t bytes) override { return arena_.alloc(bytes); }
  size_t do_mark() const override { return arena_.mark(); }
  void do_rewind(size_t m) override { arena_.rewind(m); }

  void do_linear(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias) override;
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
  void do_concat_channels(Tensor& y, const Tensor& a, const Tensor& b) override;
  void do_transpose12(Tensor& y, const Tensor& x) override;
  void do_timestep_embedding(Tensor& y, const Tensor& t, float max_period) override;
  void do_get_rows(Tensor& y, const Tensor& table, const int32_t* ids, int64_t n_ids) override;

 private:
  std::unique_ptr<ThreadPool> pool_;
  Arena arena_;
  std::vector<AlignedBuffer> weights_;
  size_t weight_bytes_ = 0;
  bool conv_q8_acts_ = false;
  std::vector<AlignedBuffer> scratch_;
  std::vector<size_t> scratch_size_;
  AlignedBuffer op_buf_;
  size_t op_buf_size_ = 0;
};

}  // namespace sd
