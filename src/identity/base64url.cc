#include "identity/base64url.h"

#include <array>
#include <cstdint>

namespace ztslm::identity {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<int8_t, 256> make_decode_table() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<uint8_t>(kAlphabet[i])] = static_cast<int8_t>(i);
  return t;
}
constexpr std::array<int8_t, 256> kDecode = make_decode_table();

}  // namespace

Result<std::string> base64url_decode(std::string_view text, size_t max_bytes) {
  const size_t rem = text.size() % 4;
  if (rem == 1) return Status::malformed("base64url length {} is 1 mod 4", text.size());
  const size_t n_out = text.size() / 4 * 3 + (rem == 0 ? 0 : rem - 1);
  if (n_out > max_bytes) {
    return Status::resource_exhausted("base64url data of {} bytes exceeds limit {}", n_out, max_bytes);
  }
  std::string out;
  out.reserve(n_out);
  uint32_t acc = 0;
  int n_bits = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const int8_t v = kDecode[static_cast<uint8_t>(text[i])];
    if (v < 0) return Status::malformed("base64url: invalid character at offset {}", i);
    acc = (acc << 6) | static_cast<uint32_t>(v);
    n_bits += 6;
    if (n_bits >= 8) {
      n_bits -= 8;
      out.push_back(static_cast<char>((acc >> n_bits) & 0xffu));
    }
  }
  // SECURITY: leftover bits must be zero, or two different strings decode to the same bytes
  // (a token could be altered without changing what its signature covers after decoding).
  if (n_bits > 0 && (acc & ((1u << n_bits) - 1u)) != 0) {
    return Status::malformed("base64url: non-zero trailing bits");
  }
  return out;
}

std::string base64url_encode(std::span<const std::byte> bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  uint32_t acc = 0;
  int n_bits = 0;
  for (std::byte b : bytes) {
    acc = (acc << 8) | static_cast<uint32_t>(b);
    n_bits += 8;
    while (n_bits >= 6) {
      n_bits -= 6;
      out.push_back(kAlphabet[(acc >> n_bits) & 0x3fu]);
    }
  }
  if (n_bits > 0) out.push_back(kAlphabet[(acc << (6 - n_bits)) & 0x3fu]);
  return out;
}

std::string base64url_encode(std::string_view bytes) {
  return base64url_encode(std::span<const std::byte>(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()));
}

}  // namespace ztslm::identity
