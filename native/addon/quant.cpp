// quantize / dequantize: f32 rows to and from the stored dtypes with the core's GGML-exact
// reference quantizers. lib/quant.ts validates first; the checks here keep direct addon calls safe.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "addon/registry.h"
#include "core/dtype.h"
#include "core/quant.h"

namespace sdnode {
namespace {

// The stored types these functions convert to and from (f32 would be a plain copy).
sd::DType parse_type(const Napi::CallbackInfo& info, size_t index, const char* fn) {
  if (info.Length() <= index || !info[index].IsString()) {
    throw TypeErr(std::string(fn) + ": type must be a string ('f16', 'q8_0' or 'q4_0')");
  }
  const std::string name = info[index].As<Napi::String>();
  sd::DType t;
  if (!sd::dtype_from_name(name.c_str(), &t) || t == sd::DType::F32) {
    throw RangeErr(std::string(fn) + ": type must be 'f16', 'q8_0' or 'q4_0', got '" + name + "'");
  }
  return t;
}

void check_count(int64_t n, sd::DType t, const char* fn, const char* arg) {
  const int64_t blk = sd::dtype_block_elems(t);
  if (n % blk != 0) {
    throw RangeErr(std::string(fn) + ": " + arg + " (" + std::to_string(n) + ") must be a multiple of " +
                   std::to_string(blk) + " for " + sd::dtype_name(t));
  }
}

Napi::Value quantize(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw TypeErr("quantize: values must be a Float32Array");
  }
  const sd::DType t = parse_type(info, 1, "quantize");
  Napi::Float32Array values = info[0].As<Napi::Float32Array>();
  const int64_t n = static_cast<int64_t>(values.ElementLength());
  check_count(n, t, "quantize", "values.length");
  const size_t out_bytes = sd::dtype_row_bytes(t, n);
  Napi::Uint8Array out = Napi::Uint8Array::New(info.Env(), out_bytes);
  // A fresh ArrayBuffer is suitably aligned for the 2-byte block headers.
  if (n > 0) sd::from_f32_row(t, values.Data(), out.Data(), n);
  return out;
}

Napi::Value dequantize(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw TypeErr("dequantize: bytes must be a Uint8Array");
  }
  const sd::DType t = parse_type(info, 1, "dequantize");
  if (info.Length() < 3 || !info[2].IsNumber()) throw TypeErr("dequantize: count must be a number");
  const double count = info[2].As<Napi::Number>().DoubleValue();
  if (!(count >= 0) || count != static_cast<double>(static_cast<int64_t>(count)) || count > 9007199254740991.0) {
    throw RangeErr("dequantize: count must be a non-negative integer");
  }
  const int64_t n = static_cast<int64_t>(count);
  check_count(n, t, "dequantize", "count");
  Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
  const size_t want = sd::dtype_row_bytes(t, n);
  if (bytes.ByteLength() != want) {
    throw RangeErr("dequantize: bytes.length (" + std::to_string(bytes.ByteLength()) + ") must be " +
                   std::to_string(want) + " for " + std::to_string(n) + " " + sd::dtype_name(t) + " values");
  }
  Napi::Float32Array out = Napi::Float32Array::New(info.Env(), static_cast<size_t>(n));
  if (n == 0) return out;
  const uint8_t* src = bytes.Data();
  // A view at an odd byte offset would misalign the uint16 block headers: decode from a copy.
  std::vector<uint16_t> aligned;
  if (reinterpret_cast<uintptr_t>(src) % alignof(uint16_t) != 0) {
    aligned.resize((want + 1) / 2);
    std::memcpy(aligned.data(), src, want);
    src = reinterpret_cast<const uint8_t*>(aligned.data());
  }
  sd::to_f32_row(t, src, out.Data(), n);
  return out;
}

}  // namespace

SDNODE_EXPORT("quantize", quantize);
SDNODE_EXPORT("dequantize", dequantize);

}  // namespace sdnode
