// "cpu-f16act": a test backend that stores activations as f16 and runs every op on the CPU backend
// in f32 (inputs widened, the output rounded back to f16), as the fixture README's "fp16 activations
// (emulated)" study does. It runs the model code's f16-activation path (Net::act, views and offsets
// by element size, upload/download conversion, the ops' type checks) on a machine without a GPU, so
// the CUDA backend's f16 activations meet models that are known to handle them.
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/backend_loader.h"
#include "core/quant.h"
#include "ops.h"

namespace {

using sd::DType;
using sd::Tensor;

// An f32 copy of an f16 activation.
struct Wide {
  std::vector<float> buf;
  Tensor t;
  explicit Wide(const Tensor& h) : buf(static_cast<size_t>(h.numel())), t(h) {
    sd::to_f32_row(DType::F16, h.data, buf.data(), h.numel());
    t.type = DType::F32;
    t.data = buf.data();
  }
};

// An f32 result that store() rounds into the f16 destination (after every input has been read, so
// in-place ops are safe).
struct Narrow {
  Tensor& dst;
  std::vector<float> buf;
  Tensor t;
  explicit Narrow(Tensor& d) : dst(d), buf(static_cast<size_t>(d.numel())), t(d) {
    t.type = DType::F32;
    t.data = buf.data();
  }
  void store() { sd::from_f32_row(DType::F16, buf.data(), dst.data, dst.numel()); }
};

class HalfActBackend final : public sd::Backend {
 public:
  explicit HalfActBackend(int threads) : cpu_(sd::make_cpu_backend(threads)) { set_activation_type(DType::F16); }
  const char* name() const override { return "cpu-f16act"; }

  void reserve_activations(size_t bytes) override {
    arena_ = sd::aligned_alloc_bytes(bytes ? bytes : 64);
    capacity_ = bytes;
    used_ = 0;
  }
  size_t activation_capacity() const override { return capacity_; }
  Tensor upload_weight(const Tensor& host, DType target) override { return cpu_->upload_weight(host, target); }
  Tensor adopt_weight(const Tensor& host, DType target) override { return cpu_->adopt_weight(host, target); }
  void upload(Tensor& dst, const float* src) override {
    if (dst.type == DType::F32) std::memcpy(dst.data, src, dst.nbytes());
    else sd::from_f32_row(DType::F16, src, dst.data, dst.numel());
  }
  void download(float* dst, const Tensor& src) override {
    if (src.type == DType::F32) std::memcpy(dst, src.data, src.nbytes());
    else sd::to_f32_row(DType::F16, src.data, dst, src.numel());
  }
  size_t weight_bytes() const override { return cpu_->weight_bytes(); }
  void set_threads(int n) override { cpu_->set_threads(n); }
  int threads() const override { return cpu_->threads(); }
  bool f16_compute() const override { return true; }

 protected:
  void* do_alloc(size_t bytes) override {
    const size_t start = (used_ + 63) & ~size_t(63);
    if (start + bytes > capacity_) throw std::length_error("cpu-f16act arena exhausted");
    used_ = start + bytes;
    return arena_.get() + start;
  }
  size_t do_mark() const override { return used_; }
  void do_rewind(size_t m) override { used_ = m; }

  void do_linear(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias) override {
    Wide a(x);
    Narrow o(y);
    cpu_->linear(o.t, a.t, w, bias);
    o.store();
  }
  void do_conv2d(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias, int stride, int pad) override {
    Wide a(x);
    Narrow o(y);
    cpu_->conv2d(o.t, a.t, w, bias, stride, pad);
    o.store();
  }
  void do_conv2d_upsampled(Tensor& y, const Tensor& x, const Tensor& w, const Tensor* bias) override {
    Wide a(x);
    Narrow o(y);
    cpu_->conv2d_upsampled(o.t, a.t, w, bias);
    o.store();
  }
  void do_group_norm(Tensor& y, const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta, float eps,
                     bool silu) override {
    Wide a(x);
    Narrow o(y);
    cpu_->group_norm(o.t, a.t, groups, gamma, beta, eps, silu);
    o.store();
  }
  void do_layer_norm(Tensor& y, const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps) override {
    Wide a(x);
    Narrow o(y);
    cpu_->layer_norm(o.t, a.t, gamma, beta, eps);
    o.store();
  }
  void do_attention(Tensor& y, const Tensor& q, const Tensor& k, const Tensor& v, int heads, bool causal) override {
    Wide a(q), b(k), c(v);
    Narrow o(y);
    cpu_->attention(o.t, a.t, b.t, c.t, heads, causal);
    o.store();
  }
  void do_softmax(Tensor& y, const Tensor& x) override { unary_like(y, x, [&](Tensor& o, const Tensor& a) { cpu_->softmax(o, a); }); }
  void do_unary(Tensor& y, const Tensor& x, sd::Unary u) override {
    unary_like(y, x, [&](Tensor& o, const Tensor& a) { cpu_->unary(o, a, u); });
  }
  void do_geglu(Tensor& y, const Tensor& x) override { unary_like(y, x, [&](Tensor& o, const Tensor& a) { cpu_->geglu(o, a); }); }
  void do_scale(Tensor& y, const Tensor& x, float s) override {
    unary_like(y, x, [&](Tensor& o, const Tensor& a) { cpu_->scale(o, a, s); });
  }
  void do_upsample_nearest(Tensor& y, const Tensor& x) override {
    unary_like(y, x, [&](Tensor& o, const Tensor& a) { cpu_->upsample_nearest(o, a); });
  }
  void do_transpose12(Tensor& y, const Tensor& x) override {
    unary_like(y, x, [&](Tensor& o, const Tensor& a) { cpu_->transpose12(o, a); });
  }
  void do_add(Tensor& y, const Tensor& a, const Tensor& b) override {
    binary(y, a, b, [&](Tensor& o, const Tensor& p, const Tensor& q) { cpu_->add(o, p, q); });
  }
  void do_mul(Tensor& y, const Tensor& a, const Tensor& b) override {
    binary(y, a, b, [&](Tensor& o, const Tensor& p, const Tensor& q) { cpu_->mul(o, p, q); });
  }
  void do_concat_channels(Tensor& y, const Tensor& a, const Tensor& b) override {
    binary(y, a, b, [&](Tensor& o, const Tensor& p, const Tensor& q) { cpu_->concat_channels(o, p, q); });
  }
  void do_copy(Tensor& y, const Tensor& x) override { std::memmove(y.data, x.data, x.nbytes()); }
  void do_timestep_embedding(Tensor& y, const Tensor& t, float max_period) override {
    Narrow o(y);
    cpu_->timestep_embedding(o.t, t, max_period);
    o.store();
  }
  void do_get_rows(Tensor& y, const Tensor& table, const int32_t* ids, int64_t n_ids) override {
    Narrow o(y);
    cpu_->get_rows(o.t, table, ids, n_ids);
    o.store();
  }

 private:
  template <class F>
  void unary_like(Tensor& y, const Tensor& x, F&& f) {
    Wide a(x);
    Narrow o(y);
    f(o.t, a.t);
    o.store();
  }
  template <class F>
  void binary(Tensor& y, const Tensor& a, const Tensor& b, F&& f) {
    Wide p(a), q(b);
    Narrow o(y);
    f(o.t, p.t, q.t);
    o.store();
  }

  std::unique_ptr<sd::Backend> cpu_;
  sd::AlignedBuffer arena_;
  size_t capacity_ = 0, used_ = 0;
};

[[maybe_unused]] const bool registered = [] {
  sd::register_test_backend("cpu-f16act", [](int threads) -> sd::Backend* { return new HalfActBackend(threads); });
  return true;
}();

}  // namespace
