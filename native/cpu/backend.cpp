// CpuBackend: memory, weight upload and the plain data movement ops.
#include "cpu/cpu_backend.h"

#include <cstdint>
#include <cstring>

#include "core/cpu_features.h"
#include "core/quant.h"
#include "cpu/convert_kernels.h"

namespace sd {
namespace {

bool simd_convert() {
#if defined(SDNODE_HAVE_AVX2)
  const Isa l = isa_active();
  return l == Isa::Avx2 || l == Isa::Avx512;
#else
  return false;
#endif
}

// Row converters: the AVX2 ones give the reference's bits (tests compare them at every level).
void convert_to_f32(DType t, const uint8_t* x, float* y, int64_t n, bool simd) {
#if defined(SDNODE_HAVE_AVX2)
  if (simd && t == DType::F16) return convert_f16_to_f32_avx2(reinterpret_cast<const uint16_t*>(x), y, n);
#endif
  (void)simd;
  to_f32_row(t, x, y, n);
}

void convert_from_f32(DType t, const float* x, uint8_t* y, int64_t n, bool simd) {
#if defined(SDNODE_HAVE_AVX2)
  if (simd && t == DType::F16) return convert_f32_to_f16_avx2(x, reinterpret_cast<uint16_t*>(y), n);
  if (simd && t == DType::Q8_0) return quantize_q8_0_avx2(x, y, n);
  if (simd && t == DType::Q4_0) return quantize_q4_0_avx2(x, y, n);
#endif
  (void)simd;
  from_f32_row(t, x, y, n);
}

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) {
  return std::make_unique<CpuBackend>(threads > 0 ? threads : default_thread_count());
}

CpuBackend::CpuBackend(int threads) { set_threads(threads); }

void CpuBackend::set_threads(int n) {
  if (n < 1) n = default_thread_count();
  if (pool_ && pool_->size() == n) return;
  pool_ = std::make_unique<ThreadPool>(n);
  scratch_.clear();
  scratch_size_.clear();
  scratch_.resize(n);
  scratch_size_.resize(n, 0);
}

void CpuBackend::release_activations() {
  arena_ = Arena();
  for (size_t t = 0; t < scratch_.size(); ++t) {
    scratch_[t].reset();
    scratch_size_[t] = 0;
  }
  op_buf_.reset();
  op_buf_size_ = 0;
}

uint8_t* CpuBackend::op_buffer(size_t bytes) {
  if (op_buf_size_ < bytes) {
    op_buf_.reset();  // the old block first, so growing never holds both
    op_buf_ = aligned_alloc_bytes(bytes);
    op_buf_size_ = bytes;
  }
  return op_buf_.get();
}

uint8_t* CpuBackend::scratch(int thread, size_t bytes) {
  if (scratch_size_[thread] < bytes) {
    scratch_[thread] = aligned_alloc_bytes(bytes);
    scratch_size_[thread] = bytes;
  }
  return scratch_[thread].get();
}

Tensor CpuBackend::upload_weight(const Tensor& host, DType target) {
  Tensor out = host;
  out.type = target;
  if (dtype_is_quantized(target) && host.row_len() % 32 != 0)
    throw std::invalid_argument("upload_weight: rows of " + host.shape_str() + " are not a multiple of 32 for " +
                                dtype_name(target));
  AlignedBuffer buf = aligned_alloc_bytes(out.nbytes());
  const int64_t rows = host.rows(), n = host.row_len();
  if (host.type == target) {
    std::memcpy(buf.get(), host.data, out.nbytes());
  } else {
    const size_t in_row = dtype_row_bytes(host.type, n), out_row = dtype_row_bytes(target, n);
    const auto* src = static_cast<const uint8_t*>(host.data);
    uint8_t* dst = buf.get();
    const bool simd = simd_convert();
    // Loading converts about a billion weights: rows go to the pool, f32 rows are read in place.
    pool_->parallel_for(rows, 16, [&](int64_t b, int64_t e, int thread) {
      std::vector<float> tmp(host.type == DType::F32 || target == DType::F32 ? 0 : static_cast<size_t>(n));
      for (int64_t r = b; r < e; ++r) {
        const uint8_t* s = src + r * in_row;
        uint8_t* d = dst + r * out_row;
        if (target == DType::F32) {
          convert_to_f32(host.type, s, reinterpret_cast<float*>(d), n, simd);
        } else if (host.type == DType::F32) {
          convert_from_f32(target, reinterpret_cast<const float*>(s), d, n, simd);
        } else {
          convert_to_f32(host.type, s, tmp.data(), n, simd);
          convert_from_f32(target, tmp.data(), d, n, simd);
        }
      }
    });
  }
  out.data = buf.get();
  weight_bytes_ += out.nbytes();
  weights_.push_back(std::move(buf));
  return out;
}

// The CPU kernels read weights with unaligned loads (or memcpy) and pack them per call, so bytes of
// the target dtype are usable wherever they lie, provided elements are naturally aligned (compiled
// scalar loops may assume that of a float* or a block's uint16 scale).
Tensor CpuBackend::adopt_weight(const Tensor& host, DType target) {
  const size_t natural = host.type == DType::F32 ? 4 : 2;
  if (host.type != target || reinterpret_cast<uintptr_t>(host.data) % natural != 0) return upload_weight(host, target);
  weight_bytes_ += host.nbytes();
  return host;
}

void CpuBackend::upload(Tensor& dst, const float* src) {
  std::memcpy(dst.data, src, dst.nbytes());
}

void CpuBackend::download(float* dst, const Tensor& src) {
  std::memcpy(dst, src.data, src.nbytes());
}

void CpuBackend::do_copy(Tensor& y, const Tensor& x) { std::memcpy(y.data, x.data, x.nbytes()); }

void CpuBackend::do_scale(Tensor& y, const Tensor& x, float s) {
  const float* xp = x.f32();
  float* yp = y.f32();
  const int64_t n = x.numel();
  for (int64_t i = 0; i < n; ++i) yp[i] = xp[i] * s;
}

}  // namespace sd
