// MappedFile: a read-only, private memory mapping of a whole file (model weights, vocabularies).
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "core/result.h"

namespace ztslm {

class MappedFile final {
 public:
  MappedFile() = default;
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // Maps `path` read-only. kNotFound when it cannot be opened, kInvalidArgument when it is not a
  // regular file, kResourceExhausted above `max_bytes`.
  static Result<MappedFile> open(const std::string& path, size_t max_bytes = size_t{1} << 40);
  // Maps the regular file (or sealed memfd) behind `fd` read-only; `fd` stays owned by the caller.
  static Result<MappedFile> from_fd(int fd, size_t max_bytes = size_t{1} << 40);

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  size_t size() const { return size_; }

 private:
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace ztslm
