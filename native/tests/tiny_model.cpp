#include "tests/tiny_model.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "core/fp16.h"
#include "tests/test.h"

namespace sdtest {
namespace {

uint32_t fmix32(uint32_t x) {
  x ^= x >> 16; x *= 0x85EBCA6Bu; x ^= x >> 13; x *= 0xC2B2AE35u; x ^= x >> 16;
  return x;
}

std::string read_text(const std::string& path) {
  std::vector<uint8_t> b;
  if (!read_file(path, &b)) throw std::runtime_error("cannot read " + path);
  return std::string(b.begin(), b.end());
}

// Value text after `"key": ` inside [from, to).
size_t field(const std::string& s, const char* key, size_t from, size_t to) {
  const std::string k = std::string("\"") + key + "\": ";
  const size_t p = s.find(k, from);
  if (p == std::string::npos || p >= to) return std::string::npos;
  return p + k.size();
}

std::vector<int64_t> int_list(const std::string& s, size_t p) {
  std::vector<int64_t> v;
  ++p;  // '['
  while (s[p] != ']') {
    char* end;
    v.push_back(std::strtoll(s.c_str() + p, &end, 10));
    p = end - s.c_str();
    while (s[p] == ',' || s[p] == ' ') ++p;
  }
  return v;
}

std::string str_at(const std::string& s, size_t p) {  // p at the opening quote
  return s.substr(p + 1, s.find('"', p + 1) - p - 1);
}

}  // namespace

std::vector<uint16_t> formula_values(const std::string& name, int64_t n, double s, double m, uint32_t seed) {
  uint32_t h = 0x811C9DC5u;
  for (unsigned char c : name) h = (h ^ c) * 0x01000193u;
  const uint32_t key = fmix32(h ^ seed);
  std::vector<uint16_t> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double u = static_cast<double>(fmix32(key + static_cast<uint32_t>(i) * 0x9E3779B9u) >> 8) / 16777216.0;
    const double r = 2.0 * u - 1.0;
    const double v = s * r + m;  // two roundings: built with -ffp-contract=off
    out[static_cast<size_t>(i)] = sd::fp32_to_fp16(static_cast<float>(v));
  }
  return out;
}

std::vector<FormulaTensor> tiny_model_tensors() {
  const std::string s = read_text(fixtures_dir() + "/tiny-sd15/keys.json");
  std::vector<FormulaTensor> out;
  size_t p = s.find("\"tensors\": [");
  if (p == std::string::npos) throw std::runtime_error("keys.json: no tensors");
  const std::string start = "{\"name\": ";
  p = s.find(start, p);
  while (p != std::string::npos) {
    const size_t next = s.find(start, p + 1), end = next == std::string::npos ? s.size() : next;
    FormulaTensor t;
    t.name = str_at(s, p + start.size());
    const std::string rule = str_at(s, field(s, "rule", p, end));
    if (rule != "special") {
      t.shape = int_list(s, field(s, "shape", p, end));
      const double sv = std::strtod(s.c_str() + field(s, "s", p, end), nullptr);
      const double mv = std::strtod(s.c_str() + field(s, "m", p, end), nullptr);
      int64_t n = 1;
      for (int64_t d : t.shape) n *= d;
      t.f16 = formula_values(t.name, n, sv, mv, 1234);
      out.push_back(std::move(t));
    }
    p = next;
  }
  return out;
}

std::vector<sd::TensorEntry> write_safetensors(const std::string& path, const std::vector<FormulaTensor>& ts, bool f32,
                                               const EditFn& edit) {
  std::vector<sd::TensorEntry> table;
  std::string header = "{";
  uint64_t off = 0;
  for (const auto& t : ts) {
    sd::TensorEntry e;
    e.name = t.name;
    e.dtype = f32 ? "F32" : "F16";
    e.shape = t.shape;
    e.byte_length = t.f16.size() * (f32 ? 4 : 2);
    e.offset = off;
    if (header.size() > 1) header += ",";
    header += "\"" + t.name + "\":{\"dtype\":\"" + e.dtype + "\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) header += (i ? "," : "") + std::to_string(t.shape[i]);
    header += "],\"data_offsets\":[" + std::to_string(off) + "," + std::to_string(off + e.byte_length) + "]}";
    off += e.byte_length;
    table.push_back(e);
  }
  header += "}";
  while (header.size() % 8) header += ' ';
  const uint64_t base = 8 + header.size();
  for (auto& e : table) e.offset += base;
  std::ofstream f(path, std::ios::binary);
  const uint64_t hl = header.size();
  f.write(reinterpret_cast<const char*>(&hl), 8);
  f.write(header.data(), static_cast<std::streamsize>(header.size()));
  for (const auto& t : ts) {
    if (f32) {
      std::vector<float> v(t.f16.size());
      for (size_t i = 0; i < v.size(); ++i) v[i] = sd::fp16_to_fp32(t.f16[i]);
      if (edit) edit(t, v);
      f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * 4));
    } else {
      f.write(reinterpret_cast<const char*>(t.f16.data()), static_cast<std::streamsize>(t.f16.size() * 2));
    }
  }
  if (!f) throw std::runtime_error("cannot write " + path);
  return table;
}

Golden golden(const std::string& name) {
  static std::vector<uint8_t> file;
  if (file.empty() && !read_file(fixtures_dir() + "/tiny-sd15/golden.safetensors", &file))
    throw std::runtime_error("cannot read golden.safetensors");
  uint64_t hl;
  std::memcpy(&hl, file.data(), 8);
  const std::string h(file.begin() + 8, file.begin() + 8 + static_cast<long>(hl));
  const size_t p = h.find("\"" + name + "\":{");
  if (p == std::string::npos) throw std::runtime_error("golden has no " + name);
  const size_t end = h.find('}', p);
  Golden g;
  g.shape = int_list(h, h.find("\"shape\":", p) + 8);
  const std::vector<int64_t> offs = int_list(h, h.find("\"data_offsets\":", p) + 15);
  const bool is_i32 = h.find("\"I32\"", p) < end;
  const uint8_t* d = file.data() + 8 + hl + offs[0];
  const size_t n = static_cast<size_t>((offs[1] - offs[0]) / 4);
  if (is_i32) { g.i.resize(n); std::memcpy(g.i.data(), d, n * 4); }
  else { g.f.resize(n); std::memcpy(g.f.data(), d, n * 4); }
  return g;
}

}  // namespace sdtest
