#include "models/weights.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <stdexcept>

#ifndef _WIN32
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace sd {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }
bool ends_with(const std::string& s, const char* p) {
  const size_t n = std::strlen(p);
  return s.size() >= n && s.compare(s.size() - n, n, p) == 0;
}

bool is_sd_weight(const std::string& name) {
  return starts_with(name, "model.diffusion_model.") || starts_with(name, "first_stage_model.") ||
         starts_with(name, "cond_stage_model.transformer.");
}

// File dtypes the loader reads. BF16 is widened on the host; integer tensors (position_ids, ema
// counters) are not weights and are skipped.
enum class FileType { F32, F16, BF16, Q8_0, Q4_0, Skip, Unknown };

FileType file_type(std::string d) {
  std::transform(d.begin(), d.end(), d.begin(), [](unsigned char c) { return std::toupper(c); });
  if (d == "F32" || d == "FLOAT32") return FileType::F32;
  if (d == "F16" || d == "FLOAT16") return FileType::F16;
  if (d == "BF16") return FileType::BF16;
  if (d == "Q8_0") return FileType::Q8_0;
  if (d == "Q4_0") return FileType::Q4_0;
  if (d == "I64" || d == "I32" || d == "I16" || d == "I8" || d == "U8" || d == "BOOL" || d == "F64")
    return FileType::Skip;
  return FileType::Unknown;
}

}  // namespace

// ---- MappedFile --------------------------------------------------------------------------------

MappedFile::MappedFile(const std::string& path) {
#ifndef _WIN32
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open '" + path + "': " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw std::runtime_error("cannot stat '" + path + "': " + std::strerror(e));
  }
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int e = errno;
      ::close(fd);
      throw std::runtime_error("cannot map '" + path + "': " + std::strerror(e));
    }
    data_ = static_cast<const uint8_t*>(p);
    mapped_ = true;
  }
  ::close(fd);
#else
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open '" + path + "'");
  heap_.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  data_ = heap_.data();
  size_ = heap_.size();
#endif
}

void MappedFile::release(uint64_t offset, uint64_t len) const {
#ifndef _WIN32
  if (!mapped_ || len == 0) return;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t end_byte = std::min(size_, offset + len);
  // The mapping's last page may be partial: the whole page is ours when the tensor ends the file.
  const uint64_t begin = (offset + page - 1) / page * page;
  const uint64_t end = end_byte == size_ ? (size_ + page - 1) / page * page : end_byte / page * page;
  if (end > begin) ::madvise(const_cast<uint8_t*>(data_) + begin, end - begin, MADV_DONTNEED);
#else
  (void)offset;
  (void)len;
#endif
}

MappedFile::~MappedFile() {
#ifndef _WIN32
  if (mapped_) ::munmap(const_cast<uint8_t*>(data_), size_);
#endif
}

// ---- Weights -----------------------------------------------------------------------------------

bool Weights::add(Backend& be, const std::string& name, const Tensor& host, DType target, bool in_place) {
  // Upload as [rows0, rest] so conversion (and quantization) runs over whole Ci*k*k rows; 1x1 conv
  // weights stay [Co, Ci] (the networks also use them as per-token matrices).
  Tensor flat = host;
  if (host.ndim > 2) {
    int64_t rest = 1;
    for (int i = 1; i < host.ndim; ++i) rest *= host.shape[i];
    flat = host.reshaped({host.shape[0], rest});
  }
  Tensor dev = in_place ? be.adopt_weight(flat, target) : be.upload_weight(flat, target);
  const bool adopted = in_place && dev.data == host.data;
  const bool is_1x1 = host.ndim == 4 && host.shape[2] == 1 && host.shape[3] == 1;
  if (host.ndim > 2 && !is_1x1) {  // quantized convs keep 4-D too: conv2d blocks them along Ci*k*k
    dev.ndim = host.ndim;
    for (int i = 0; i < host.ndim; ++i) dev.shape[i] = host.shape[i];
  }
  map_[name] = dev;
  return adopted;
}

const Tensor* Weights::find(const std::string& name) const {
  auto it = map_.find(name);
  return it == map_.end() ? nullptr : &it->second;
}

const Tensor& Weights::get(const std::string& name) const {
  const Tensor* t = find(name);
  if (!t) throw std::runtime_error("missing weight '" + name + "'");
  return *t;
}

const Tensor& Weights::get(const std::string& name, std::initializer_list<int64_t> shape) const {
  const Tensor& t = get(name);
  std::vector<int64_t> want(shape);
  bool ok = static_cast<int>(want.size()) == t.ndim;
  for (int i = 0; ok && i < t.ndim; ++i) ok = t.shape[i] == want[i];
  if (!ok && want.size() == 4 && want[2] == 1 && want[3] == 1 && t.ndim == 2)
    ok = t.shape[0] == want[0] && t.shape[1] == want[1];  // 1x1 conv kept as a matrix
  if (!ok)
    throw std::runtime_error("weight '" + name + "' has shape " + t.shape_str() + ", expected " +
                             shape_str(want));
  return t;
}

std::vector<std::string> Weights::names() const {
  std::vector<std::string> r;
  r.reserve(map_.size());
  for (const auto& kv : map_) r.push_back(kv.first);
  std::sort(r.begin(), r.end());
  return r;
}

// ---- loading -----------------------------------------------------------------------------------

std::string canonical_name(const std::string& name) {
  static const char kOld[] = "cond_stage_model.transformer.";
  if (starts_with(name, kOld) && !starts_with(name, "cond_stage_model.transformer.text_model."))
    return std::string(kOld) + "text_model." + name.substr(sizeof(kOld) - 1);
  return name;
}

DType choose_dtype(const std::string& name, const std::vector<int64_t>& shape, DType file,
                   const DType* requested) {
  if (shape.size() <= 1 || ends_with(name, "position_embedding.weight")) return DType::F32;
  DType want = requested ? *requested : file;
  if (!dtype_is_quantized(want)) return want;
  // Blocks run along the flattened row (K for linears, Ci*k*k for convs): rows that do not fill
  // whole blocks cannot be quantized (the tiny model's conv_in with Ci*9 = 36, VAE 4-channel convs).
  int64_t row = 1;
  for (size_t i = 1; i < shape.size(); ++i) row *= shape[i];
  if (row % 32 != 0) return DType::F16;
  return want;
}

LoadStats load_weights(Backend& be, const MappedFile& file, const std::vector<TensorEntry>& table,
                       const DType* requested, Weights* out) {
  LoadStats stats;
  std::vector<float> widened;
  for (const TensorEntry& e : table) {
    const std::string name = canonical_name(e.name);
    if (!is_sd_weight(name)) continue;
    const FileType ft = file_type(e.dtype);
    if (ft == FileType::Skip) continue;
    if (ft == FileType::Unknown)
      throw std::invalid_argument("tensor '" + e.name + "' has unsupported dtype " + e.dtype);
    if (e.shape.empty() || e.shape.size() > 4)
      throw std::invalid_argument("tensor '" + e.name + "' has unsupported shape " + shape_str(e.shape));
    int64_t numel = 1;
    for (int64_t d : e.shape) {
      if (d <= 0) throw std::invalid_argument("tensor '" + e.name + "' has shape " + shape_str(e.shape));
      numel *= d;
    }
    const int64_t row = numel / e.shape[0];  // quantized blocks run along the flattened row (K or Ci*k*k)
    DType host_type = DType::F32;
    uint64_t want_bytes = 0;
    switch (ft) {
      case FileType::F32: host_type = DType::F32; want_bytes = numel * 4; break;
      case FileType::F16: host_type = DType::F16; want_bytes = numel * 2; break;
      case FileType::BF16: host_type = DType::F32; want_bytes = numel * 2; break;
      case FileType::Q8_0:
      case FileType::Q4_0:
        host_type = ft == FileType::Q8_0 ? DType::Q8_0 : DType::Q4_0;
        if (row % 32 != 0)
          throw std::invalid_argument("tensor '" + e.name + "' " + shape_str(e.shape) + " is quantized but its rows are not a multiple of 32");
        want_bytes = (numel / 32) * dtype_block_bytes(host_type);
        break;
      default: break;
    }
    if (e.byte_length != want_bytes)
      throw std::invalid_argument("tensor '" + e.name + "' " + shape_str(e.shape) + " " + e.dtype + " needs " +
                                  std::to_string(want_bytes) + " bytes, the table says " +
                                  std::to_string(e.byte_length));
    if (e.offset > file.size() || e.byte_length > file.size() - e.offset)
      throw std::invalid_argument("tensor '" + e.name + "' lies outside the file (offset " +
                                  std::to_string(e.offset) + ", " + std::to_string(e.byte_length) +
                                  " bytes, file " + std::to_string(file.size()) + " bytes)");
    const uint8_t* src = file.data() + e.offset;
    if (ft == FileType::BF16) {
      widened.resize(static_cast<size_t>(numel));
      for (int64_t i = 0; i < numel; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        const uint32_t bits = static_cast<uint32_t>(h) << 16;
        std::memcpy(&widened[static_cast<size_t>(i)], &bits, 4);
      }
      src = reinterpret_cast<const uint8_t*>(widened.data());
    } else if (reinterpret_cast<uintptr_t>(src) % dtype_block_bytes(host_type == DType::F32 ? DType::F32 : DType::F16) != 0) {
      // Misaligned element data (legal in some files): copy so the converters read aligned values.
      widened.resize(static_cast<size_t>((e.byte_length + 3) / 4));
      std::memcpy(widened.data(), src, e.byte_length);
      src = reinterpret_cast<const uint8_t*>(widened.data());
    }
    Tensor host(host_type, {});
    host.ndim = static_cast<int>(e.shape.size());
    for (int i = 0; i < host.ndim; ++i) host.shape[i] = e.shape[i];
    host.data = const_cast<uint8_t*>(src);
    const bool mapped = file.contains(src);  // not a widened or realigned copy
    if (out->add(be, name, host, choose_dtype(name, e.shape, host_type, requested), mapped)) {
      ++stats.in_place;
      stats.in_place_bytes += e.byte_length;
    } else {
      ++stats.converted;
      stats.converted_bytes += e.byte_length;
      file.release(e.offset, e.byte_length);
    }
  }
  return stats;
}

}  // namespace sd
