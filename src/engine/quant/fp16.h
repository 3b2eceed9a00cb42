// Scalar F32 <-> F16 and F32 <-> BF16 conversions (spec/ENGINE.md §2, notation).
// f16_from_f32 rounds to nearest even, keeps subnormals, overflows to ±inf and maps every NaN
// to 0x7E00 | sign. f32_from_f16 and f32_from_bf16 are exact widenings.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace ztslm::engine {

// Exact widening of an IEEE binary16 value.
inline float f32_from_f16(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  const uint32_t man = h & 0x3FFu;
  if (exp == 0) {
    // Zero or subnormal: man * 2^-24, exact in F32.
    const float v = static_cast<float>(man) * 5.9604644775390625e-08f;
    return std::bit_cast<float>(std::bit_cast<uint32_t>(v) | sign);
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7F800000u | (man << 13));
  return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (man << 13));
}

// RNE rounding of `f` to binary16.
inline uint16_t f16_from_f32(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) return static_cast<uint16_t>(sign | 0x7E00u);  // NaN
  // 65520 (0x477FF000) is half-way between the largest half 65504 and 65536: ties go to
  // the even neighbour, which is infinity.
  if (ax >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);
  if (ax < 0x38800000u) {
    // Below the smallest normal half 2^-14: a multiple of 2^-24. Scaling by 2^24 is exact and
    // nearbyint rounds half to even (default rounding mode); 1024 encodes 2^-14 itself.
    const float v = std::bit_cast<float>(ax) * 16777216.0f;
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(v)));
  }
  const uint32_t r = ax + 0xFFFu + ((ax >> 13) & 1u) - 0x38000000u;
  return static_cast<uint16_t>(sign | (r >> 13));
}

inline float f32_from_bf16(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

// RNE rounding to BF16; a NaN becomes a quiet NaN with its sign and top payload bits.
inline uint16_t bf16_from_f32(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x0040u);
  return static_cast<uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

}  // namespace ztslm::engine
