// AlignedBuffer: an owned, zero-initialised, 64-byte-aligned byte buffer for per-session state
// (KV cache, activations). It is wiped with secure_zero before it is freed, because it holds
// data derived from a principal's prompt (context isolation).
#pragma once

#include <cstddef>
#include <new>
#include <span>
#include <utility>

#include "core/secure.h"

namespace ztslm::engine::kv {

class AlignedBuffer final {
 public:
  static constexpr size_t kAlignment = 64;

  AlignedBuffer() = default;
  // Allocates `n_bytes` zero bytes (allocation failure aborts, see STYLE.md §4; callers bound
  // `n_bytes` first).
  explicit AlignedBuffer(size_t n_bytes) : size_(n_bytes) {
    if (n_bytes == 0) return;
    data_ = static_cast<std::byte*>(::operator new(n_bytes, std::align_val_t{kAlignment}));
    secure_zero(data_, n_bytes);
  }
  ~AlignedBuffer() { release(); }
  AlignedBuffer(AlignedBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  std::byte* data() { return data_; }
  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  template <typename T>
  T* as() {
    return reinterpret_cast<T*>(data_);
  }
  template <typename T>
  const T* as() const {
    return reinterpret_cast<const T*>(data_);
  }
  // Overwrites the whole buffer with zeros (never optimised away).
  void wipe() {
    if (data_ != nullptr) secure_zero(data_, size_);
  }
  // True when every byte is zero (for tests of the zeroisation).
  bool is_zero() const {
    for (size_t i = 0; i < size_; ++i) {
      if (data_[i] != std::byte{0}) return false;
    }
    return true;
  }

 private:
  void release() {
    if (data_ == nullptr) return;
    secure_zero(data_, size_);
    ::operator delete(data_, std::align_val_t{kAlignment});
    data_ = nullptr;
    size_ = 0;
  }

  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace ztslm::engine::kv
