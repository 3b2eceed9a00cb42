// ByteReader: a non-owning, bounds-checked cursor over untrusted bytes (BoringSSL CBS style).
// Every read_* either succeeds and advances by exactly what it consumed, or returns false and
// leaves the reader unchanged. Integers are little-endian where the name says _le.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace ztslm {

class ByteReader final {
 public:
  ByteReader() = default;
  explicit ByteReader(std::span<const std::byte> data) : data_(data) {}

  size_t size() const { return data_.size() - pos_; }   // bytes left
  bool empty() const { return size() == 0; }
  size_t offset() const { return pos_; }                 // bytes consumed so far
  std::span<const std::byte> remaining() const { return data_.subspan(pos_); }
  std::string_view as_string_view() const {
    return {reinterpret_cast<const char*>(data_.data() + pos_), size()};
  }

  bool read_u8(uint8_t* out) { return read_le(out); }
  bool read_u16_le(uint16_t* out) { return read_le(out); }
  bool read_u32_le(uint32_t* out) { return read_le(out); }
  bool read_u64_le(uint64_t* out) { return read_le(out); }
  bool read_i8(int8_t* out) { return read_le(out); }
  bool read_i16_le(int16_t* out) { return read_le(out); }
  bool read_i32_le(int32_t* out) { return read_le(out); }
  bool read_i64_le(int64_t* out) { return read_le(out); }
  bool read_f32_le(float* out) { return read_le(out); }
  bool read_f64_le(double* out) { return read_le(out); }

  // Reads `n` bytes as a view into the underlying buffer.
  bool read_bytes(size_t n, std::span<const std::byte>* out) {
    if (n > size()) return false;
    *out = data_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  // Reads `n` bytes as a sub-reader that cannot see past them.
  bool read_sub(size_t n, ByteReader* out) {
    std::span<const std::byte> b;
    if (!read_bytes(n, &b)) return false;
    *out = ByteReader(b);
    return true;
  }
  // Reads a u64 little-endian length, then that many bytes as a sub-reader.
  bool read_prefixed_u64_le(ByteReader* out) {
    const size_t saved = pos_;
    uint64_t n = 0;
    if (!read_u64_le(&n) || n > size() || !read_sub(static_cast<size_t>(n), out)) {
      pos_ = saved;
      return false;
    }
    return true;
  }
  // Reads a u32 little-endian length, then that many bytes as a sub-reader.
  bool read_prefixed_u32_le(ByteReader* out) {
    const size_t saved = pos_;
    uint32_t n = 0;
    if (!read_u32_le(&n) || n > size() || !read_sub(n, out)) {
      pos_ = saved;
      return false;
    }
    return true;
  }
  bool skip(size_t n) {
    if (n > size()) return false;
    pos_ += n;
    return true;
  }
  // True when every byte was consumed (framed structures end with this check).
  bool expect_empty() const { return empty(); }

 private:
  template <typename T>
  bool read_le(T* out) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (sizeof(T) > size()) return false;
    // Little-endian host (checked at build time below); memcpy avoids unaligned access.
    std::memcpy(out, data_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }

  std::span<const std::byte> data_;
  size_t pos_ = 0;
};

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "ztslm assumes a little-endian host");

// Views `n` raw bytes as std::byte (for fuzzers and C APIs).
inline std::span<const std::byte> as_bytes(const void* data, size_t n) {
  return {static_cast<const std::byte*>(data), n};
}
inline std::span<const std::byte> as_bytes(std::string_view s) { return as_bytes(s.data(), s.size()); }

}  // namespace ztslm
