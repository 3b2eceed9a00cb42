// Overflow-checked integer arithmetic for sizes and offsets taken from untrusted input.
// Each returns false (and leaves `*out` unspecified) on overflow.
#pragma once

#include <cstdint>
#include <type_traits>

namespace ztslm {

template <typename T>
  requires std::is_integral_v<T>
[[nodiscard]] constexpr bool checked_add(T a, T b, T* out) {
  return !__builtin_add_overflow(a, b, out);
}

template <typename T>
  requires std::is_integral_v<T>
[[nodiscard]] constexpr bool checked_mul(T a, T b, T* out) {
  return !__builtin_mul_overflow(a, b, out);
}

// Rounds `n` up to a multiple of `align` (a power of two); false on overflow.
[[nodiscard]] constexpr bool checked_align_up(uint64_t n, uint64_t align, uint64_t* out) {
  uint64_t t = 0;
  if (!checked_add<uint64_t>(n, align - 1, &t)) return false;
  *out = t & ~(align - 1);
  return true;
}

constexpr bool is_power_of_two(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

}  // namespace ztslm
