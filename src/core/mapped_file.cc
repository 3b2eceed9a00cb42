#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace ztslm {

MappedFile::~MappedFile() {
  if (data_ != nullptr && size_ > 0) munmap(const_cast<std::byte*>(data_), size_);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr && size_ > 0) munmap(const_cast<std::byte*>(data_), size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

Result<MappedFile> MappedFile::from_fd(int fd, size_t max_bytes) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return Status::invalid_argument("cannot stat file: {}", std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return Status::invalid_argument("not a regular file");
  if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) > max_bytes) {
    return Status::resource_exhausted("file size {} exceeds limit {}", st.st_size, max_bytes);
  }
  MappedFile m;
  m.size_ = static_cast<size_t>(st.st_size);
  if (m.size_ == 0) return m;
  void* p = mmap(nullptr, m.size_, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) {
    m.size_ = 0;
    return Status::resource_exhausted("cannot map file: {}", std::strerror(errno));
  }
  m.data_ = static_cast<const std::byte*>(p);
  return m;
}

Result<MappedFile> MappedFile::open(const std::string& path, size_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::not_found("cannot open {}: {}", path, std::strerror(errno));
  auto r = from_fd(fd, max_bytes);
  ::close(fd);
  if (!r.has_value()) return r.error().with_context(path);
  return r;
}

}  // namespace ztslm
