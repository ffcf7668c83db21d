// The load path: weights whose file dtype is their target are used in place from the mapping (and
// the mapping lives as long as the model), converted ones are the backend's copies and their source
// pages leave the resident set, misaligned data is copied.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <unistd.h>

#include "core/cpu_features.h"
#include "core/fp16.h"
#include "core/quant.h"
#include "models/model.h"
#include "tests/test.h"
#include "tests/tiny_model.h"

using namespace sdtest;

namespace {

std::string tmp_path(const char* tag) {
  return "/tmp/sdnode-load-test-" + std::string(tag) + "-" + std::to_string(getpid());
}

sd::ModelOptions opts(bool has_dtype, sd::DType dt = sd::DType::F32) {
  sd::ModelOptions o;
  o.threads = 2;
  o.has_dtype = has_dtype;
  o.dtype = dt;
  return o;
}

// Resident bytes of the mapping that holds `p`, from /proc/self/smaps (-1 where unavailable).
long long mapping_rss(const void* p) {
  std::ifstream f("/proc/self/smaps");
  if (!f) return -1;
  const auto a = reinterpret_cast<uintptr_t>(p);
  std::string line;
  bool in = false;
  while (std::getline(f, line)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(':') > line.find(' ')) {
      in = a >= lo && a < hi;
      continue;
    }
    long long kb = 0;
    if (in && std::sscanf(line.c_str(), "Rss: %lld kB", &kb) == 1) return kb * 1024;
  }
  return -1;
}

}  // namespace

SD_TEST(models_load_same_dtype_in_place) {
  const std::string path = tmp_path("f32") + ".safetensors";
  const auto table = write_safetensors(path, tiny_model_tensors(), /*f32=*/true);
  sd::SdModel m(path, table, opts(false));
  std::remove(path.c_str());  // the mapping outlives the name
  const sd::MappedFile* file = m.mapped_file();
  SD_CHECK(file != nullptr) << "an all-f32 load keeps the mapping";
  if (!file) return;
  SD_CHECK(m.load_stats().converted == 0) << m.load_stats().converted << " tensors converted";
  SD_CHECK(m.load_stats().in_place == m.weights().size()) << m.load_stats().in_place << " of " << m.weights().size();
  for (const std::string& n : m.weights().names())
    SD_CHECK(file->contains(m.weights().get(n).data)) << n << " was copied";
  // Used from the (unlinked) mapping, CLIP still matches the golden at the fp32 tolerance.
  const Golden tok = golden("clip.tokens"), ref = golden("clip.out");
  const auto out = m.encode_text(tok.i.data(), 2, 77, 1);
  SD_CHECK(out.size() == ref.f.size());
  if (out.size() == ref.f.size()) {
    const double e = max_rel_err(out.data(), ref.f.data(), out.size());
    SD_CHECK(e <= 1e-5) << "clip err " << e;
  }
}

SD_TEST(models_load_converted_pages_released) {
  const std::string path = tmp_path("q8") + ".safetensors";
  const auto table = write_safetensors(path, tiny_model_tensors(), /*f32=*/true);
  sd::SdModel m(path, table, opts(true, sd::DType::Q8_0));
  std::remove(path.c_str());
  const sd::LoadStats& st = m.load_stats();
  SD_CHECK(st.converted > 0 && st.in_place > 0) << st.converted << " converted, " << st.in_place << " in place";
  const sd::MappedFile* file = m.mapped_file();
  SD_CHECK(file != nullptr) << "f32 norms and biases stay in the mapping";
  if (!file) return;
  for (const std::string& n : m.weights().names()) {
    const sd::Tensor& t = m.weights().get(n);
    SD_CHECK(file->contains(t.data) == (t.type == sd::DType::F32)) << n << " " << sd::dtype_name(t.type);
  }
#ifdef __linux__
  // Only in-place tensors (plus pages they share with converted neighbours) stay resident.
  const long long rss = mapping_rss(file->data());  // -1 under emulators without smaps
  const long long page = ::sysconf(_SC_PAGESIZE);
  const long long bound = static_cast<long long>(st.in_place_bytes) + 2 * page * static_cast<long long>(st.in_place);
  if (rss >= 0) SD_CHECK(rss <= bound) << "mapping RSS " << rss << " > " << bound << " (file " << file->size() << ")";
  else std::printf("  (no /proc/self/smaps: resident-set check skipped)\n");
#endif
}

// Element data at odd offsets is legal in some files: it is copied (and converted) correctly, and
// naturally aligned data next to it is still used in place.
SD_TEST(models_load_misaligned_copied) {
  const std::string path = tmp_path("raw") + ".bin";
  Rng rng(7);
  const std::vector<float> a = rng.vec(4 * 32), b = rng.vec(4 * 32);
  std::vector<uint16_t> h(4 * 32);
  for (size_t i = 0; i < h.size(); ++i) h[i] = sd::fp32_to_fp16(a[i]);
  std::vector<uint8_t> bytes(1);  // f32 at offset 1
  auto put = [&](const void* p, size_t n) {
    const auto* c = static_cast<const uint8_t*>(p);
    bytes.insert(bytes.end(), c, c + n);
  };
  put(a.data(), a.size() * 4);            // 1 .. 513
  put(h.data(), h.size() * 2);            // 513 .. 769 (odd: misaligned f16)
  bytes.resize(772, 0);
  put(b.data(), b.size() * 4);            // 772: aligned f32
  {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  const std::vector<sd::TensorEntry> table = {
      {"model.diffusion_model.a.weight", "F32", {4, 32}, 1, 512},
      {"model.diffusion_model.h.weight", "F16", {4, 32}, 513, 256},
      {"model.diffusion_model.b.weight", "F32", {4, 32}, 772, 512},
  };
  auto be = sd::make_cpu_backend(2);
  sd::Weights w;
  sd::LoadStats st;
  {
    sd::MappedFile file(path);
    st = sd::load_weights(*be, file, table, nullptr, &w);
    SD_CHECK(!file.contains(w.get("model.diffusion_model.a.weight").data));
    SD_CHECK(!file.contains(w.get("model.diffusion_model.h.weight").data));
    SD_CHECK(file.contains(w.get("model.diffusion_model.b.weight").data));
    SD_CHECK(st.in_place == 1 && st.converted == 2) << st.in_place << " in place, " << st.converted << " copied";
    SD_CHECK(std::memcmp(w.get("model.diffusion_model.b.weight").data, b.data(), 512) == 0);
  }
  std::remove(path.c_str());
  SD_CHECK(std::memcmp(w.get("model.diffusion_model.a.weight").data, a.data(), 512) == 0);
  SD_CHECK(std::memcmp(w.get("model.diffusion_model.h.weight").data, h.data(), 256) == 0);
}

// Converting loads quantize with the reference quantizer (byte-identical to GGML's files).
SD_TEST(models_load_quantized_matches_reference) {
  const std::string path = tmp_path("qref") + ".bin";
  Rng rng(11);
  std::vector<float> v = rng.vec(64 * 96);
  v[5] = 0.5f * (1.0f / 127.0f);  // ties for the rounding rule land in some blocks
  {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * 4));
  }
  const std::vector<sd::TensorEntry> table = {{"model.diffusion_model.q.weight", "F32", {64, 96}, 0, 64 * 96 * 4}};
  for (sd::DType q : {sd::DType::Q8_0, sd::DType::Q4_0}) {
    auto be = sd::make_cpu_backend(2);
    sd::Weights w;
    sd::MappedFile file(path);
    sd::load_weights(*be, file, table, &q, &w);
    const sd::Tensor& t = w.get("model.diffusion_model.q.weight");
    std::vector<uint8_t> ref(static_cast<size_t>(64 * sd::dtype_row_bytes(q, 96)));
    for (int r = 0; r < 64; ++r) {
      uint8_t* dst = ref.data() + r * sd::dtype_row_bytes(q, 96);
      if (q == sd::DType::Q8_0) sd::quantize_row_q8_0_ref(v.data() + r * 96, reinterpret_cast<sd::block_q8_0*>(dst), 96);
      else sd::quantize_row_q4_0_ref(v.data() + r * 96, reinterpret_cast<sd::block_q4_0*>(dst), 96);
    }
    SD_CHECK(t.type == q && t.nbytes() == ref.size());
    SD_CHECK(std::memcmp(t.data, ref.data(), ref.size()) == 0) << sd::dtype_name(q) << " differs from the reference";
  }
  std::remove(path.c_str());
}

// The SIMD row converters behind loading give the scalar reference's bits at every ISA level:
// random rows plus ties for each rounding rule, zeros, signed zeros, huge, tiny and NaN values.
SD_TEST(models_load_converters_match_scalar) {
  const int64_t rows = 24, n = 96;
  Rng rng(5);
  std::vector<float> x = rng.vec(rows * n, -3.f, 3.f);
  for (int64_t i = 0; i < n; ++i) x[i] = 0.0f;                        // all-zero row
  for (int64_t i = 0; i < n; ++i) x[n + i] = (i % 2) ? -0.0f : 0.0f;  // signed zeros
  for (int64_t i = 0; i < n; ++i) x[2 * n + i] = static_cast<float>(i % 64 - 32) * 0.5f;  // x.5 ties after scaling
  x[3 * n] = 127.0f; x[3 * n + 1] = 0.5f; x[3 * n + 2] = -0.5f; x[3 * n + 3] = 1.5f;  // q8_0: id = 1
  x[4 * n] = 8.0f; x[4 * n + 1] = -8.0f; x[4 * n + 2] = 3.0f;          // q4_0: equal magnitudes, first wins
  x[5 * n] = -8.0f; x[5 * n + 1] = 8.0f;
  x[6 * n + 3] = 70000.0f; x[6 * n + 4] = 1e-8f; x[6 * n + 5] = -6e-5f; x[6 * n + 6] = 65519.0f;
  x[7 * n + 7] = std::nanf("");
  std::vector<uint16_t> h(x.size());
  for (size_t i = 0; i < h.size(); ++i) h[i] = sd::fp32_to_fp16(x[i]);
  h[8 * n + 9] = 0x7C01;  // a signalling NaN keeps its payload
  h[8 * n + 10] = 0xFE00;
  // Quantizing inf or NaN converts NaN to an integer in the reference (undefined behaviour): the
  // quantizers get copies whose non-finite rows (6: inf as f16, 7, 8) are replaced by finite ones.
  std::vector<float> xq = x;
  for (int64_t r = 6; r <= 8; ++r) std::copy(x.begin() + 9 * n, x.begin() + 10 * n, xq.begin() + r * n);
  std::vector<uint16_t> hq(xq.size());
  for (size_t i = 0; i < hq.size(); ++i) hq[i] = sd::fp32_to_fp16(xq[i]);
  const std::string path = tmp_path("cvt") + ".bin";
  {
    std::ofstream f(path, std::ios::binary);
    for (const auto* v : {&x, &xq}) f.write(reinterpret_cast<const char*>(v->data()), static_cast<std::streamsize>(v->size() * 4));
    for (const auto* v : {&h, &hq}) f.write(reinterpret_cast<const char*>(v->data()), static_cast<std::streamsize>(v->size() * 2));
  }
  const uint64_t fb = x.size() * 4, hb = fb / 2;
  const std::vector<sd::TensorEntry> table = {{"model.diffusion_model.x.weight", "F32", {rows, n}, 0, fb},
                                              {"model.diffusion_model.xq.weight", "F32", {rows, n}, fb, fb},
                                              {"model.diffusion_model.h.weight", "F16", {rows, n}, 2 * fb, hb},
                                              {"model.diffusion_model.hq.weight", "F16", {rows, n}, 2 * fb + hb, hb}};
  for (sd::DType q : {sd::DType::F32, sd::DType::F16, sd::DType::Q8_0, sd::DType::Q4_0}) {
    const bool quant = sd::dtype_is_quantized(q);
    for (int src = 0; src < 2; ++src) {
      std::vector<float> v(x.size());  // the source as f32
      if (src == 0) v = quant ? xq : x;
      else sd::to_f32_row(sd::DType::F16, (quant ? hq : h).data(), v.data(), static_cast<int64_t>(v.size()));
      const size_t rb = sd::dtype_row_bytes(q, n);
      std::vector<uint8_t> ref(rows * rb);
      for (int64_t r = 0; r < rows; ++r) sd::from_f32_row(q, v.data() + r * n, ref.data() + r * rb, n);
      if (src == 1 && q == sd::DType::F16) std::memcpy(ref.data(), h.data(), ref.size());  // in place: the file's bits
      const std::string name = std::string("model.diffusion_model.") + (src ? "h" : "x") + (quant ? "q" : "") + ".weight";
      for (sd::Isa level : {sd::Isa::Scalar, sd::Isa::Avx2, sd::Isa::Avx512, sd::Isa::Neon, sd::Isa::Dotprod}) {
        if (!sd::isa_force(level)) continue;
        auto be = sd::make_cpu_backend(2);
        sd::Weights w;
        sd::MappedFile file(path);
        sd::load_weights(*be, file, {table[2 * src + (quant ? 1 : 0)]}, &q, &w);  // only this one
        const sd::Tensor& t = w.get(name);
        SD_CHECK(t.nbytes() == ref.size());
        if (t.nbytes() != ref.size()) continue;
        for (int64_t r = 0; r < rows; ++r)
          SD_CHECK(std::memcmp(static_cast<const uint8_t*>(t.data) + r * rb, ref.data() + r * rb, rb) == 0)
              << name << " -> " << sd::dtype_name(q) << " row " << r << " at " << sd::isa_name(level) << " differs";
      }
      sd::isa_force(sd::isa_best());
    }
  }
  std::remove(path.c_str());
}
