#include "core/quant.h"

#include <cmath>
#include <cstring>

#include "core/fp16.h"

namespace sd {

void quantize_row_q8_0_ref(const float* x, block_q8_0* y, int64_t n) {
  const int64_t nb = n / QK8_0;
  for (int64_t i = 0; i < nb; ++i) {
    const float* xb = x + i * QK8_0;
    float amax = 0.0f;
    for (int j = 0; j < QK8_0; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < QK8_0; ++j) y[i].qs[j] = static_cast<int8_t>(std::roundf(xb[j] * id));
  }
}

void quantize_row_q4_0_ref(const float* x, block_q4_0* y, int64_t n) {
  const int64_t nb = n / QK4_0;
  for (int64_t i = 0; i < nb; ++i) {
    const float* xb = x + i * QK4_0;
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QK4_0; ++j) {
      const float v = xb[j];
      if (amax < std::fabs(v)) { amax = std::fabs(v); max = v; }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      const float x0 = xb[j] * id, x1 = xb[j + QK4_0 / 2] * id;
      int q0 = static_cast<int8_t>(x0 + 8.5f), q1 = static_cast<int8_t>(x1 + 8.5f);
      if (q0 > 15) q0 = 15;
      if (q1 > 15) q1 = 15;
      y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void quantize_row_q8_0_act(const float* x, block_q8_0* y, int64_t n) {
  const int64_t nb = n / QK8_0;
  for (int64_t i = 0; i < nb; ++i) {
    const float* xb = x + i * QK8_0;
    float amax = 0.0f;
    for (int j = 0; j < QK8_0; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
    y[i].d = fp32_to_fp16(amax / 127.0f);
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    // nearbyintf rounds half to even in the default rounding mode, like _mm256_round_ps.
    for (int j = 0; j < QK8_0; ++j) y[i].qs[j] = static_cast<int8_t>(std::nearbyintf(xb[j] * id));
  }
}

void dequantize_row_q8_0(const block_q8_0* x, float* y, int64_t n) {
  const int64_t nb = n / QK8_0;
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < QK8_0; ++j) y[i * QK8_0 + j] = x[i].qs[j] * d;
  }
}

void dequantize_row_q4_0(const block_q4_0* x, float* y, int64_t n) {
  const int64_t nb = n / QK4_0;
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      const int x0 = (x[i].qs[j] & 0x0F) - 8, x1 = (x[i].qs[j] >> 4) - 8;
      y[i * QK4_0 + j] = x0 * d;
      y[i * QK4_0 + j + QK4_0 / 2] = x1 * d;
    }
  }
}

void fp32_to_fp16_row(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

void fp16_to_fp32_row(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(x[i]);
}

void to_f32_row(DType t, const void* x, float* y, int64_t n) {
  switch (t) {
    case DType::F32: std::memcpy(y, x, static_cast<size_t>(n) * 4); break;
    case DType::F16: fp16_to_fp32_row(static_cast<const uint16_t*>(x), y, n); break;
    case DType::Q8_0: dequantize_row_q8_0(static_cast<const block_q8_0*>(x), y, n); break;
    case DType::Q4_0: dequantize_row_q4_0(static_cast<const block_q4_0*>(x), y, n); break;
  }
}

void from_f32_row(DType t, const float* x, void* y, int64_t n) {
  switch (t) {
    case DType::F32: std::memcpy(y, x, static_cast<size_t>(n) * 4); break;
    case DType::F16: fp32_to_fp16_row(x, static_cast<uint16_t*>(y), n); break;
    case DType::Q8_0: quantize_row_q8_0_ref(x, static_cast<block_q8_0*>(y), n); break;
    case DType::Q4_0: quantize_row_q4_0_ref(x, static_cast<block_q4_0*>(y), n); break;
  }
}

}  // namespace sd
