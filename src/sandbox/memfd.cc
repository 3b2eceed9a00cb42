#include "sandbox/memfd.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ztslm::sandbox {

Result<SealedMemfdWriter> SealedMemfdWriter::create(const std::string& name, uint64_t expected_bytes) {
  const int fd = ::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return Status::internal("memfd_create failed: {}", std::strerror(errno));
  SealedMemfdWriter w;
  w.fd_.reset(fd);
  if (expected_bytes > 0) {
    // Reserve the pages now so a machine without the memory fails here, not mid-copy.
    const int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(expected_bytes));
    if (rc != 0) {
      return Status::resource_exhausted("cannot reserve {} bytes for the model memfd: {}", expected_bytes,
                                        std::strerror(rc));
    }
  }
  return w;
}

Status SealedMemfdWriter::append(std::span<const std::byte> bytes) {
  if (!fd_.valid()) return Status::failed_precondition("memfd already sealed");
  while (!bytes.empty()) {
    const ssize_t n = ::pwrite(fd_.get(), bytes.data(), bytes.size(), static_cast<off_t>(size_));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (errno == ENOSPC || errno == ENOMEM) return Status::resource_exhausted("model memfd: out of memory");
      return Status::internal("model memfd write failed: {}", std::strerror(errno));
    }
    size_ += static_cast<uint64_t>(n);
    bytes = bytes.subspan(static_cast<size_t>(n));
  }
  return Status();
}

Result<UniqueFd> SealedMemfdWriter::seal() {
  if (!fd_.valid()) return Status::failed_precondition("memfd already sealed");
  if (::ftruncate(fd_.get(), static_cast<off_t>(size_)) != 0) {
    return Status::internal("model memfd truncate failed: {}", std::strerror(errno));
  }
  // F_SEAL_WRITE fails with EBUSY while a writable shared mapping exists; we never create one.
  if (::fcntl(fd_.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return Status::internal("model memfd sealing failed: {}", std::strerror(errno));
  }
  return std::move(fd_);
}

Status require_sealed(int fd) {
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0) return Status::permission_denied("model fd {} is not a sealable memfd", fd);
  if ((static_cast<unsigned>(seals) & kModelSeals) != kModelSeals) {
    return Status::permission_denied("model fd {} lacks seals (has {}, needs write|shrink|grow|seal)", fd, seals);
  }
  return Status();
}

static_assert(kModelSeals == (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE));

}  // namespace ztslm::sandbox
