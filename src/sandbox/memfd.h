// Sealed memfds: the gateway copies a verified model into an anonymous memory file and seals it
// (no writes, no resizes, no further seal changes), so the bytes a worker maps are exactly the
// bytes that were hashed, and no process holding the fd can change them afterwards.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "core/result.h"
#include "sandbox/unique_fd.h"

namespace ztslm::sandbox {

// Every seal a model memfd must carry.
inline constexpr unsigned kModelSeals = 0x0001u /*F_SEAL_SEAL*/ | 0x0002u /*F_SEAL_SHRINK*/ |
                                        0x0004u /*F_SEAL_GROW*/ | 0x0008u /*F_SEAL_WRITE*/;

// Builds one sealed memfd: create, append the bytes, seal.
class SealedMemfdWriter final {
 public:
  // A new close-on-exec memfd named `name` (shown in /proc/<pid>/fd) that allows sealing.
  // `expected_bytes` (may be 0) is reserved up front. kInternal when memfd_create fails,
  // kResourceExhausted when the reservation fails.
  static Result<SealedMemfdWriter> create(const std::string& name, uint64_t expected_bytes = 0);
  SealedMemfdWriter(SealedMemfdWriter&&) noexcept = default;
  SealedMemfdWriter& operator=(SealedMemfdWriter&&) noexcept = default;

  // Appends `bytes`. kResourceExhausted when memory runs out (ENOSPC/ENOMEM), kInternal otherwise.
  Status append(std::span<const std::byte> bytes);
  uint64_t size() const { return size_; }
  // Truncates to the bytes written, adds kModelSeals and returns the fd; the writer is empty
  // afterwards. The fd is close-on-exec: the caller clears that for the child it passes it to.
  Result<UniqueFd> seal();

 private:
  SealedMemfdWriter() = default;
  UniqueFd fd_;
  uint64_t size_ = 0;
};

// OK when `fd` is a memfd carrying every seal of kModelSeals; kPermissionDenied otherwise. A
// worker checks this before it maps a model fd handed to it.
Status require_sealed(int fd);

}  // namespace ztslm::sandbox
