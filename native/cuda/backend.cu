// CudaBackend: device memory (one activation arena, weights uploaded once) and the C entry points.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/quant.h"
#include "cuda/cuda_backend.h"

namespace sd {

void cuda_check(cudaError_t e, const char* what) {
  // A failed call also leaves its error as the thread's last error; clear it, or the next launch
  // check would report it again under that op's name (sticky errors stay whatever this does).
  if (e == cudaSuccess) return;
  (void)cudaGetLastError();
  throw std::runtime_error(std::string("CUDA: ") + what + ": " + cudaGetErrorString(e));
}

CudaBackend::CudaBackend(int device) : device_(device) {
  // On by default since scripts/gpu-check.sh passed with it on an H200 (2026-11-27). "1" (or unset)
  // takes every TC-mode part, "0" none (the v0 f32 SIMT kernels); a comma list of gemm (linear +
  // conv), attn, norm, half (activations stored as f16) takes some, to bisect a fault.
  const char* tc = std::getenv("SDNODE_CUDA_TC");
  const std::string sel = tc && *tc ? tc : "1";
  auto has = [&](const char* part) {
    return sel == "1" || ("," + sel + ",").find(std::string(",") + part + ",") != std::string::npos;
  };
  tc_gemm_ = has("gemm");
  tc_attn_ = has("attn");
  tc_norm_ = has("norm");
  if (has("half")) set_activation_type(DType::F16);
  const char* sk = std::getenv("SDNODE_CUDA_SPLITK");
  split_k_ = !(sk && std::string(sk) == "0");
  // Graph replay of UNet steps (graph.cu): on unless SDNODE_CUDA_GRAPH=0.
  const char* graph = std::getenv("SDNODE_CUDA_GRAPH");
  graphs_on_ = !(graph && std::string(graph) == "0");
  SD_CUDA(cudaSetDevice(device));
  SD_CUDA(cudaDeviceGetAttribute(&sms_, cudaDevAttrMultiProcessorCount, device));
  // The 4-stage GEMM (80 KB of tiles a block) where cp.async exists and two blocks fit an SM
  // (A100/H100/H200: 164-228 KB; the 100 KB of sm_86/89 would hold one, halving the warps).
  int major = 0, smem_sm = 0;
  SD_CUDA(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  SD_CUDA(cudaDeviceGetAttribute(&smem_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device));
  // Split-K plans for two resident blocks per SM where they fit (both GEMM kernels from sm_80 on):
  // on an H200 that took the UNet step from 7.36 to 6.92 ms at 256x256 and 15.00 to 14.37 ms at 512.
  const char* slots = std::getenv("SDNODE_CUDA_SPLITK_SLOTS");
  split_slots_ = slots && std::string(slots) == "1" ? 1 : (major >= 8 ? 2 : 1);
  const char* st = std::getenv("SDNODE_CUDA_STAGES");
  const bool deep = major >= 8 && static_cast<size_t>(smem_sm) >= 2 * (cuda::tc_gemm_async_smem_bytes() + 1024);
  stages_ = deep && !(st && std::string(st) == "2") ? 4 : 2;
  const char* qp = std::getenv("SDNODE_CUDA_QPIPE");
  q_pipe_ = stages_ == 4 && qp && std::string(qp) == "1";
  const char* nh = std::getenv("SDNODE_CUDA_NHWC");
  nhwc_ = !(nh && std::string(nh) == "0");
  nhwc_1x1_ = nhwc_ && !(nh && std::string(nh) == "3x3");
  const char* qt = std::getenv("SDNODE_CUDA_QTAPS");
  q_taps_ = nhwc_ && qt && std::string(qt) == "1";
  const char* pdl = std::getenv("SDNODE_CUDA_PDL");
  pdl_ = major >= 9 && pdl && std::string(pdl) == "1";
  const char* fuse = std::getenv("SDNODE_CUDA_FUSE");
  const std::string fl = fuse ? fuse : "";
  auto fused = [&](const char* part) {
    return fl == "1" || ("," + fl + ",").find(std::string(",") + part + ",") != std::string::npos;
  };
  geglu_ = fused("geglu");
  proj_out_ = fused("proj_out");
  conv_add_ = fused("conv_add");
  norm_conv_ = fused("norm_conv");
  SD_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
}

CudaBackend::~CudaBackend() {
  cudaSetDevice(device_);
  if (stream_) cudaStreamSynchronize(stream_);
  drop_graphs();
  weights_.clear();
  arena_.reset();
  scratch_.reset();
  for (cudaEvent_t e : prof_ev_)
    if (e) cudaEventDestroy(e);
  if (stream_) cudaStreamDestroy(stream_);
}

namespace {
__global__ void spin_kernel(long long cycles) {
  cuda::pdl_entry();
  const long long t0 = clock64();
  while (clock64() - t0 < cycles) {
  }
}
}  // namespace

bool CudaBackend::profile_begin() {
  for (cudaEvent_t& e : prof_ev_)
    if (!e && cudaEventCreate(&e) != cudaSuccess) return false;
  cuda::enqueue(spin_kernel, 1, 1, 0, stream_, 100000);  // ~50 us at 2 GHz: longer than the host's enqueueing
  return cudaEventRecord(prof_ev_[0], stream_) == cudaSuccess;
}

void CudaBackend::profile_end() {
  float ms = 0;
  if (cudaEventRecord(prof_ev_[1], stream_) == cudaSuccess && cudaEventSynchronize(prof_ev_[1]) == cudaSuccess &&
      cudaEventElapsedTime(&ms, prof_ev_[0], prof_ev_[1]) == cudaSuccess)
    last_op_s_ = ms * 1e-3;
  else
    cudaStreamSynchronize(stream_);
}

namespace cuda {
namespace {
thread_local bool t_pdl = false;
}
void set_thread_pdl(bool on) { t_pdl = on; }
bool thread_pdl() { return t_pdl; }
}  // namespace cuda

void CudaBackend::bind() const {
  cuda::set_thread_pdl(pdl_);
  if (!capturing_) SD_CUDA(cudaSetDevice(device_));
}

void CudaBackend::reserve_activations(size_t bytes) {
  SD_CUDA(cudaSetDevice(device_));
  SD_CUDA(cudaStreamSynchronize(stream_));
  drop_graphs();  // they point into the arena being replaced
  arena_.reset();
  capacity_ = used_ = 0;  // if the allocation below fails, no later call may use the freed arena
  void* p = nullptr;
  SD_CUDA(cudaMalloc(&p, bytes ? bytes : 256));
  arena_.reset(p);
  capacity_ = bytes;
  used_ = 0;
}

void CudaBackend::release_activations() {
  SD_CUDA(cudaSetDevice(device_));
  SD_CUDA(cudaStreamSynchronize(stream_));
  drop_graphs();
  arena_.reset();
  capacity_ = used_ = 0;
  scratch_.reset();
  scratch_bytes_ = 0;
  uncapturable_.clear();  // a failed capture may have been a one-off (an input error); try again
}

void* CudaBackend::do_alloc(size_t bytes) {
  // Backend::alloc plans with 64-byte rounding; the same alignment here keeps the arena's use
  // equal to the plan (cudaMalloc's base is 256-aligned; kernels need 16 bytes for vector loads).
  const size_t start = (used_ + 63) & ~size_t(63);
  if (start + bytes > capacity_)
    throw std::length_error("cuda arena exhausted: need " + std::to_string(start + bytes) + " of " +
                            std::to_string(capacity_) + " bytes");
  used_ = start + bytes;
  return static_cast<char*>(arena_.get()) + start;
}

void* CudaBackend::scratch(size_t bytes) {
  if (bytes > scratch_bytes_) {
    bind();
    // A capture cannot hold the sync (and its graph would point at the buffer freed here); the
    // eager first run of every step sizes the buffer, so this only happens if that was skipped.
    if (capturing_)
      throw std::runtime_error("cuda scratch must grow to " + std::to_string(bytes) + " bytes during a graph capture");
    SD_CUDA(cudaStreamSynchronize(stream_));
    drop_graphs();
    scratch_.reset();
    scratch_bytes_ = 0;  // if the allocation below fails, no later call may use the freed buffer
    void* p = nullptr;
    SD_CUDA(cudaMalloc(&p, bytes));
    scratch_.reset(p);
    scratch_bytes_ = bytes;
  }
  return scratch_.get();
}

Tensor CudaBackend::upload_weight(const Tensor& host, DType target) {
  bind();  // weight_slot's cudaMalloc and the copy are this device's
  Tensor out = host;
  out.type = target;
  const int64_t rows = host.rows(), n = host.row_len();
  if (dtype_is_quantized(target) && n % 32 != 0)
    throw std::invalid_argument("upload_weight: rows of " + host.shape_str() + " are not a multiple of 32");
  std::vector<uint8_t> converted;
  const void* src = host.data;
  if (host.type != target) {
    converted.resize(out.nbytes());
    std::vector<float> tmp(static_cast<size_t>(n));
    const size_t in_row = dtype_row_bytes(host.type, n), out_row = dtype_row_bytes(target, n);
    for (int64_t r = 0; r < rows; ++r) {
      to_f32_row(host.type, static_cast<const uint8_t*>(host.data) + r * in_row, tmp.data(), n);
      from_f32_row(target, tmp.data(), converted.data() + r * out_row, n);
    }
    src = converted.data();
  }
  void* p = weight_slot(out.nbytes());
  // On the backend's stream: the legacy stream is not ordered with it (non-blocking), and a
  // pageable cudaMemcpy may return before its DMA has landed.
  SD_CUDA(cudaMemcpyAsync(p, src, out.nbytes(), cudaMemcpyHostToDevice, stream_));
  SD_CUDA(cudaStreamSynchronize(stream_));
  out.data = p;
  weight_bytes_ += out.nbytes();
  return out;
}

// Weights are sub-allocated from 64 MiB chunks: cudaMalloc rounds large requests up to 2 MiB pages,
// which over an SD 1.5 checkpoint's ~1100 tensors wasted about a MiB per large tensor. First fit
// over the chunks, so the small tensors that follow a large one fill the tails it left.
void* CudaBackend::weight_slot(size_t bytes) {
  constexpr size_t kChunk = size_t(64) << 20, kAlign = 256;
  const size_t need = (bytes + kAlign - 1) & ~(kAlign - 1);
  for (WeightChunk& c : weights_)
    if (c.used + need <= c.size) {
      void* p = static_cast<char*>(c.mem.get()) + c.used;
      c.used += need;
      return p;
    }
  const size_t size = need > kChunk ? need : kChunk;
  void* p = nullptr;
  SD_CUDA(cudaMalloc(&p, size));
  weights_.push_back(WeightChunk{DeviceBuffer(p), size, need});
  weight_reserved_ += size;
  return p;
}

// f16 tensors (activations in the "half" set) are converted on the host, where the f32 data is.
void CudaBackend::upload(Tensor& dst, const float* src) {
  bind();
  std::vector<uint8_t> conv;
  const void* from = src;
  if (dst.type != DType::F32) {
    conv.resize(dst.nbytes());
    from_f32_row(dst.type, src, conv.data(), dst.numel());
    from = conv.data();
  }
  SD_CUDA(cudaMemcpyAsync(dst.data, from, dst.nbytes(), cudaMemcpyHostToDevice, stream_));
  SD_CUDA(cudaStreamSynchronize(stream_));
}

void CudaBackend::download(float* dst, const Tensor& src) {
  bind();
  if (src.type == DType::F32) {
    SD_CUDA(cudaMemcpyAsync(dst, src.data, src.nbytes(), cudaMemcpyDeviceToHost, stream_));
    SD_CUDA(cudaStreamSynchronize(stream_));
    return;
  }
  std::vector<uint8_t> conv(src.nbytes());
  SD_CUDA(cudaMemcpyAsync(conv.data(), src.data, src.nbytes(), cudaMemcpyDeviceToHost, stream_));
  SD_CUDA(cudaStreamSynchronize(stream_));
  to_f32_row(src.type, conv.data(), dst, src.numel());
}

}  // namespace sd

namespace {
void put(char* dst, size_t len, const std::string& s) {
  if (!dst || !len) return;
  std::snprintf(dst, len, "%s", s.c_str());
}
}  // namespace

extern "C" __attribute__((visibility("default"))) int sdnode_cuda_probe(int device, char* info, size_t info_len) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) { put(info, info_len, std::string("no usable CUDA driver/device: ") + cudaGetErrorString(e)); return -1; }
  if (device < 0 || device >= count) { put(info, info_len, "CUDA device " + std::to_string(device) + " not present (" + std::to_string(count) + " found)"); return -1; }
  cudaDeviceProp p;
  e = cudaGetDeviceProperties(&p, device);
  if (e != cudaSuccess) { put(info, info_len, cudaGetErrorString(e)); return -1; }
  put(info, info_len, std::string(p.name) + ", sm_" + std::to_string(p.major) + std::to_string(p.minor) + ", " +
                          std::to_string(p.totalGlobalMem >> 20) + " MiB");
  return 0;
}

extern "C" __attribute__((visibility("default"))) int sdnode_cuda_create(int device, sd::Backend** out, char* err, size_t err_len) {
  *out = nullptr;
  char info[256];
  if (sdnode_cuda_probe(device, info, sizeof info) != 0) { put(err, err_len, info); return -1; }
  try {
    *out = new sd::CudaBackend(device);
    return 0;
  } catch (const std::exception& e) {
    put(err, err_len, e.what());
    return -1;
  }
}

extern "C" __attribute__((visibility("default"))) void sdnode_cuda_destroy(sd::Backend* backend) { delete backend; }
