// ByteWriter: appends little-endian integers and bytes to a growable buffer (for writers of
// our own formats; never for parsing).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

namespace ztslm {

class ByteWriter final {
 public:
  void put_u8(uint8_t v) { put_le(v); }
  void put_u16_le(uint16_t v) { put_le(v); }
  void put_u32_le(uint32_t v) { put_le(v); }
  void put_u64_le(uint64_t v) { put_le(v); }
  void put_i8(int8_t v) { put_le(v); }
  void put_i16_le(int16_t v) { put_le(v); }
  void put_i32_le(int32_t v) { put_le(v); }
  void put_i64_le(int64_t v) { put_le(v); }
  void put_f32_le(float v) { put_le(v); }
  void put_f64_le(double v) { put_le(v); }
  void put_bytes(std::span<const std::byte> b) { buf_.insert(buf_.end(), b.begin(), b.end()); }
  void put_string(std::string_view s) {
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    buf_.insert(buf_.end(), p, p + s.size());
  }
  void put_zeros(size_t n) { buf_.resize(buf_.size() + n, std::byte{0}); }

  size_t size() const { return buf_.size(); }
  const std::vector<std::byte>& bytes() const { return buf_; }
  std::vector<std::byte> take() { return std::move(buf_); }

 private:
  template <typename T>
  void put_le(T v) {
    const size_t at = buf_.size();
    buf_.resize(at + sizeof(T));
    std::memcpy(buf_.data() + at, &v, sizeof(T));
  }
  std::vector<std::byte> buf_;
};

}  // namespace ztslm
