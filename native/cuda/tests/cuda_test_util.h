// Helpers shared by the CUDA test/bench files: deterministic inputs, the error metric, pass/fail
// counting, and running one op body on both backends.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "core/quant.h"
#include "ops.h"

namespace cudatest {

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  float next() {  // uniform in [-1, 1)
    s ^= s >> 12; s ^= s << 25; s ^= s >> 27;
    return static_cast<float>(((s * 0x2545F4914F6CDD1Dull) >> 40) * (1.0 / 16777216.0)) * 2.f - 1.f;
  }
  std::vector<float> vec(size_t n, float scale = 1.f) {
    std::vector<float> v(n);
    for (auto& x : v) x = next() * scale;
    return v;
  }
  std::vector<float> gauss(size_t n, float sigma = 1.f) {  // Box-Muller
    std::vector<float> v(n);
    for (auto& x : v) {
      const double u1 = 0.5 * (next() + 1.0) + 1e-12, u2 = 0.5 * (next() + 1.0);
      x = static_cast<float>(sigma * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
    }
    return v;
  }
};

// max |a - ref| / max |ref| (NaN counts as infinite), and where it is worst.
struct ErrStat {
  double err = 0;
  size_t worst = 0, over = 0;  // flat index of the worst element; elements over `tol` (when given)
  float out = 0, ref = 0;
};

inline ErrStat err_stat(const std::vector<float>& a, const std::vector<float>& ref, double tol = 0) {
  ErrStat st;
  if (a.size() != ref.size()) {
    st.err = INFINITY;
    return st;
  }
  double scale = 1e-6;
  for (float r : ref) scale = std::fmax(scale, std::fabs(r));
  for (size_t i = 0; i < a.size(); ++i) {
    double d = std::fabs(static_cast<double>(a[i]) - ref[i]) / scale;
    if (std::isnan(d)) d = INFINITY;
    if (d > tol) st.over++;
    if (d > st.err || (i == 0 && d == INFINITY)) st.err = d, st.worst = i;
  }
  if (!a.empty()) st.out = a[st.worst], st.ref = ref[st.worst];
  return st;
}

inline double rel_err(const std::vector<float>& a, const std::vector<float>& ref) { return err_stat(a, ref).err; }

struct Counts {
  int pass = 0, fail = 0;
};
inline Counts& counts() {
  static Counts c;
  return c;
}

inline void report(const std::string& name, double err, double tol) {
  const bool ok = err <= tol;
  (ok ? counts().pass : counts().fail)++;
  std::printf("%s %-52s rel err %.2e (tol %.0e)\n", ok ? "ok  " : "FAIL", name.c_str(), err, tol);
  std::fflush(stdout);
}

// As report(), and on failure says where: the worst flat index (row-major over the output's
// dims, given for decoding), its values, and how many elements are over the tolerance.
inline void report(const std::string& name, const std::vector<float>& out, const std::vector<float>& ref, double tol,
                   const std::string& dims = "") {
  const ErrStat st = err_stat(out, ref, tol);
  report(name, st.err, tol);
  if (st.err > tol)
    std::printf("     worst at flat index %zu of %zu%s: got %.6g want %.6g; %zu elements over tol\n", st.worst,
                ref.size(), dims.empty() ? "" : (" (dims " + dims + ")").c_str(), st.out, st.ref, st.over);
}

inline void report_exception(const std::string& name, const char* what) {
  counts().fail++;
  std::printf("FAIL %-52s exception: %s\n", name.c_str(), what);
  std::fflush(stdout);
}

// v with every element rounded to f16 and back: the values an f16 kernel sees.
inline std::vector<float> round_f16(std::vector<float> v) {
  std::vector<uint16_t> h(v.size());
  sd::from_f32_row(sd::DType::F16, v.data(), h.data(), static_cast<int64_t>(v.size()));
  sd::to_f32_row(sd::DType::F16, h.data(), v.data(), static_cast<int64_t>(v.size()));
  return v;
}

// Runs an op body on a backend with its inputs uploaded; returns the downloaded output.
struct Env {
  sd::Backend* be;
  // The CPU side of a comparison with a backend storing f16 activations: inputs are rounded to f16
  // first, so both sides compute on the same values.
  bool round16 = false;
  // An activation (the backend's activation type), optionally uploaded from f32 data.
  sd::Tensor act(std::initializer_list<int64_t> dims, const std::vector<float>* data = nullptr) {
    sd::Tensor t = be->alloc(be->activation_type(), dims);
    if (data) put(t, *data);
    return t;
  }
  // An f32 operand that is not an activation (bias, gamma, beta, timesteps).
  sd::Tensor param(std::initializer_list<int64_t> dims, const std::vector<float>* data = nullptr) {
    sd::Tensor t = be->alloc(sd::DType::F32, dims);
    if (data) be->upload(t, data->data());
    return t;
  }
  void put(sd::Tensor& t, const std::vector<float>& data) {
    if (!round16) return be->upload(t, data.data());
    be->upload(t, round_f16(data).data());
  }
  std::vector<float> get(const sd::Tensor& t) {
    std::vector<float> v(static_cast<size_t>(t.numel()));
    be->download(v.data(), t);
    return v;
  }
  // Waits for the backend's queued work (a 1-element download is stream-ordered).
  void sync(const sd::Tensor& t) {
    float one;
    sd::Tensor view(t.type, {1}, t.data);
    be->download(&one, view);
  }
};

using OpFn = std::function<std::vector<float>(Env&)>;

// With f16 activations on the GPU the CPU gets the same f16-rounded inputs, and every op's output
// carries its own f16 rounding (unit roundoff 2^-11 of values up to max|ref|): tolerance >= kHalfOut.
constexpr double kHalfOut = 1e-3;

inline void compare(sd::Backend& cpu, sd::Backend& gpu, const std::string& name, double tol, const OpFn& fn) {
  try {
    cpu.rewind(0);
    gpu.rewind(0);
    const bool half = gpu.activation_type() == sd::DType::F16;
    Env ec{&cpu, half}, eg{&gpu};
    const std::vector<float> ref = fn(ec), out = fn(eg);
    report(name, out, ref, half ? std::max(tol, kHalfOut) : tol);
  } catch (const std::exception& e) {
    report_exception(name, e.what());
  }
}

inline sd::Tensor weight(sd::Backend& be, const std::vector<float>& w, std::initializer_list<int64_t> dims, sd::DType t) {
  sd::Tensor host(sd::DType::F32, dims, const_cast<float*>(w.data()));
  return be.upload_weight(host, t);
}

}  // namespace cudatest
