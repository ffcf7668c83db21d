// Software IEEE binary16 <-> binary32, bit-exact with GGML's ggml_compute_fp32_to_fp16 (round to
// nearest even, subnormals kept, NaN -> 0x7E00 with sign) and with F16C.
#pragma once
#include <cstdint>
#include <cstring>

namespace sd {

inline uint32_t f32_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float f32_from_bits(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  if (exp == 0) {
    if (mant == 0) return f32_from_bits(sign);
    // Subnormal: normalise into an f32 normal.
    int e = -1;
    do { mant <<= 1; ++e; } while ((mant & 0x400u) == 0);
    mant &= 0x3FFu;
    return f32_from_bits(sign | static_cast<uint32_t>(127 - 15 - e) << 23 | mant << 13);
  }
  if (exp == 31) return f32_from_bits(sign | 0x7F800000u | mant << 13);
  return f32_from_bits(sign | (exp + (127 - 15)) << 23 | mant << 13);
}

inline uint16_t fp32_to_fp16(float f) {
  const uint32_t x = f32_bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) return static_cast<uint16_t>(sign | 0x7E00u);  // NaN
  if (ax >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // >= 65520 -> inf
  if (ax < 0x38800000u) {
    // Result is an fp16 subnormal or zero: scale by 2^24 and round to nearest even.
    if (ax < 0x33000000u) return sign;  // < 2^-25: rounds to zero (2^-25 itself handled below)
    const uint32_t e = ax >> 23;
    const uint32_t m = (ax & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126 - e;  // 14 + (113 - e)
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return static_cast<uint16_t>(sign | q);
  }
  // Normal: rebias exponent, round mantissa to 10 bits (nearest even); carry may bump exponent.
  uint32_t r = ax + 0xC8000000u;  // exponent rebias: -(127-15) << 23
  r += 0x0FFFu + ((r >> 13) & 1u);
  return static_cast<uint16_t>(sign | (r >> 13));
}

}  // namespace sd
