// Quantizers and decoders against bytes GGML itself produced (test/fixtures/quant, see
// ../shared/fixtures/quant/README.md): 64 rows x 256 values covering zeros, tiny and huge scales,
// ties, f16 overflow/subnormals. Everything here must match bit for bit.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/fp16.h"
#include "core/quant.h"
#include "tests/test.h"

namespace {

constexpr int kRows = 64;
constexpr int kCols = 256;
constexpr int64_t kN = int64_t{kRows} * kCols;

std::vector<uint8_t> fixture(const char* name) {
  std::vector<uint8_t> bytes;
  const std::string path = sdtest::fixtures_dir() + "/quant/" + name;
  SD_CHECK(sdtest::read_file(path, &bytes)) << "cannot read " << path;
  return bytes;
}

std::vector<float> as_floats(const std::vector<uint8_t>& bytes) {
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

// Reports the first differing byte with its row and block so a failure points at a fixture row.
void check_bytes_equal(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want, size_t row_bytes,
                       size_t block_bytes, const char* what) {
  SD_CHECK(got.size() == want.size()) << what << ": size " << got.size() << " vs " << want.size();
  if (got.size() != want.size()) return;
  size_t diffs = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] != want[i]) {
      if (diffs++ == 0) first = i;
    }
  }
  SD_CHECK(diffs == 0) << what << ": " << diffs << " bytes differ, first at row " << first / row_bytes
                       << " block " << (first % row_bytes) / block_bytes << " byte " << first % block_bytes
                       << " (" << int(got[first]) << " vs " << int(want[first]) << ")";
}

// Bitwise float comparison: NaN payloads and signed zeros must match too.
void check_floats_bitwise(const std::vector<float>& got, const std::vector<uint8_t>& want_bytes, const char* what) {
  SD_CHECK(got.size() * 4 == want_bytes.size()) << what << ": size mismatch";
  if (got.size() * 4 != want_bytes.size()) return;
  const std::vector<float> want = as_floats(want_bytes);
  size_t diffs = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const bool same = sd::f32_bits(got[i]) == sd::f32_bits(want[i]) ||
                      (std::isnan(got[i]) && std::isnan(want[i]));  // GGML's NaNs come from inf*0
    if (!same && diffs++ == 0) first = i;
  }
  SD_CHECK(diffs == 0) << what << ": " << diffs << " values differ, first at row " << first / kCols << " col "
                       << first % kCols << " (" << got[first] << " vs " << want[first] << ")";
}

}  // namespace

SD_TEST(quant_q8_0_ref_matches_ggml) {
  const std::vector<float> x = as_floats(fixture("rows.f32"));
  SD_CHECK(static_cast<int64_t>(x.size()) == kN);
  if (static_cast<int64_t>(x.size()) != kN) return;
  std::vector<uint8_t> got(sd::dtype_row_bytes(sd::DType::Q8_0, kN));
  for (int r = 0; r < kRows; ++r) {
    sd::quantize_row_q8_0_ref(x.data() + r * kCols,
                              reinterpret_cast<sd::block_q8_0*>(got.data()) + r * (kCols / sd::QK8_0), kCols);
  }
  check_bytes_equal(got, fixture("rows.q8_0"), kCols / 32 * 34, 34, "q8_0 ref");
}

SD_TEST(quant_q8_0_act_matches_ggml_avx2_quantizer) {
  const std::vector<float> x = as_floats(fixture("rows.f32"));
  if (static_cast<int64_t>(x.size()) != kN) return;
  std::vector<uint8_t> got(sd::dtype_row_bytes(sd::DType::Q8_0, kN));
  sd::quantize_row_q8_0_act(x.data(), reinterpret_cast<sd::block_q8_0*>(got.data()), kN);
  check_bytes_equal(got, fixture("rows.q8_0.cpu-act"), kCols / 32 * 34, 34, "q8_0 activation");
}

SD_TEST(quant_q4_0_ref_matches_ggml) {
  const std::vector<float> x = as_floats(fixture("rows.f32"));
  if (static_cast<int64_t>(x.size()) != kN) return;
  std::vector<uint8_t> got(sd::dtype_row_bytes(sd::DType::Q4_0, kN));
  sd::quantize_row_q4_0_ref(x.data(), reinterpret_cast<sd::block_q4_0*>(got.data()), kN);
  check_bytes_equal(got, fixture("rows.q4_0"), kCols / 32 * 18, 18, "q4_0 ref");
}

SD_TEST(quant_f16_matches_ggml) {
  const std::vector<float> x = as_floats(fixture("rows.f32"));
  if (static_cast<int64_t>(x.size()) != kN) return;
  std::vector<uint8_t> got(static_cast<size_t>(kN) * 2);
  std::vector<uint16_t> h(static_cast<size_t>(kN));
  sd::fp32_to_fp16_row(x.data(), h.data(), kN);
  std::memcpy(got.data(), h.data(), got.size());
  check_bytes_equal(got, fixture("rows.f16"), kCols * 2, 2, "f16");
}

SD_TEST(quant_dequantize_matches_ggml) {
  struct Case { sd::DType t; const char* in; const char* out; };
  const Case cases[] = {{sd::DType::Q8_0, "rows.q8_0", "rows.q8_0.deq.f32"},
                        {sd::DType::Q4_0, "rows.q4_0", "rows.q4_0.deq.f32"},
                        {sd::DType::F16, "rows.f16", "rows.f16.deq.f32"}};
  for (const Case& c : cases) {
    const std::vector<uint8_t> in = fixture(c.in);
    SD_CHECK(in.size() == sd::dtype_row_bytes(c.t, kN)) << c.in << " has " << in.size() << " bytes";
    if (in.size() != sd::dtype_row_bytes(c.t, kN)) continue;
    std::vector<float> got(static_cast<size_t>(kN));
    sd::to_f32_row(c.t, in.data(), got.data(), kN);
    check_floats_bitwise(got, fixture(c.out), sd::dtype_name(c.t));
  }
}

// from_f32_row is what the converter and the addon call; it must pick the reference quantizers.
SD_TEST(quant_from_f32_row_uses_reference_quantizers) {
  const std::vector<float> x = as_floats(fixture("rows.f32"));
  if (static_cast<int64_t>(x.size()) != kN) return;
  const struct { sd::DType t; const char* want; size_t block; } cases[] = {
      {sd::DType::Q8_0, "rows.q8_0", 34}, {sd::DType::Q4_0, "rows.q4_0", 18}, {sd::DType::F16, "rows.f16", 2}};
  for (const auto& c : cases) {
    std::vector<uint8_t> got(sd::dtype_row_bytes(c.t, kN));
    sd::from_f32_row(c.t, x.data(), got.data(), kN);
    check_bytes_equal(got, fixture(c.want), sd::dtype_row_bytes(c.t, kCols), c.block, sd::dtype_name(c.t));
  }
}
