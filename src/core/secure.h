// Secret handling: constant-time comparison and zeroisation that the compiler cannot elide.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

namespace ztslm {

// Overwrites `n` bytes at `p` with zeros; never optimised away.
void secure_zero(void* p, size_t n);

// True when `a` and `b` are equal. The time taken depends only on the lengths, never on the
// position of the first difference.
bool ct_equal(std::span<const std::byte> a, std::span<const std::byte> b);
bool ct_equal(std::string_view a, std::string_view b);

}  // namespace ztslm
