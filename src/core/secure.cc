#include "core/secure.h"

#include <cstring>

namespace ztslm {

void secure_zero(void* p, size_t n) {
  if (p == nullptr || n == 0) return;
  std::memset(p, 0, n);
  // The barrier tells the compiler the zeroed memory is observed, so the memset stays.
  __asm__ __volatile__("" : : "r"(p) : "memory");
}

bool ct_equal(std::span<const std::byte> a, std::span<const std::byte> b) {
  if (a.size() != b.size()) return false;
  unsigned diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned>(a[i] ^ b[i]);
  }
  // SECURITY: no early exit, so timing does not reveal the length of a matching prefix.
  return diff == 0;
}

bool ct_equal(std::string_view a, std::string_view b) {
  return ct_equal(std::span<const std::byte>(reinterpret_cast<const std::byte*>(a.data()), a.size()),
                  std::span<const std::byte>(reinterpret_cast<const std::byte*>(b.data()), b.size()));
}

}  // namespace ztslm
