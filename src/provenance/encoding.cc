#include "provenance/encoding.h"

#include <array>
#include <cstdint>

namespace ztslm::provenance {
namespace {

constexpr char kStd[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// 0..63 for a symbol of the alphabet, -1 otherwise.
int symbol_value(char c, bool url_safe) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (!url_safe && c == '+') return 62;
  if (!url_safe && c == '/') return 63;
  if (url_safe && c == '-') return 62;
  if (url_safe && c == '_') return 63;
  return -1;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

Result<std::vector<std::byte>> base64_decode(std::string_view text, size_t max_bytes) {
  if (text.size() % 4 != 0) return Status::malformed("base64 length {} is not a multiple of 4", text.size());
  const bool url_safe = text.find_first_of("-_") != std::string_view::npos;
  size_t n_pad = 0;
  if (!text.empty() && text.back() == '=') ++n_pad;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++n_pad;
  const size_t n_out = text.size() / 4 * 3 - n_pad;
  if (n_out > max_bytes) {
    return Status::resource_exhausted("base64 data of {} bytes exceeds limit {}", n_out, max_bytes);
  }
  std::vector<std::byte> out;
  out.reserve(n_out);
  const size_t n_sym = text.size() - n_pad;
  uint32_t acc = 0;
  int n_bits = 0;
  for (size_t i = 0; i < n_sym; ++i) {
    const int v = symbol_value(text[i], url_safe);
    if (v < 0) return Status::malformed("invalid base64 character at offset {}", i);
    acc = (acc << 6) | static_cast<uint32_t>(v);
    n_bits += 6;
    if (n_bits >= 8) {
      n_bits -= 8;
      out.push_back(static_cast<std::byte>((acc >> n_bits) & 0xFF));
    }
  }
  // SECURITY: non-zero leftover bits would give one byte string several encodings.
  if (n_bits > 0 && (acc & ((1u << n_bits) - 1)) != 0) {
    return Status::malformed("base64 has non-zero padding bits");
  }
  return out;
}

std::string base64_encode(std::span<const std::byte> bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (static_cast<uint32_t>(bytes[i]) << 16) |
                       (static_cast<uint32_t>(bytes[i + 1]) << 8) | static_cast<uint32_t>(bytes[i + 2]);
    out.push_back(kStd[(v >> 18) & 63]);
    out.push_back(kStd[(v >> 12) & 63]);
    out.push_back(kStd[(v >> 6) & 63]);
    out.push_back(kStd[v & 63]);
  }
  const size_t rest = bytes.size() - i;
  if (rest == 1) {
    const uint32_t v = static_cast<uint32_t>(bytes[i]) << 16;
    out.push_back(kStd[(v >> 18) & 63]);
    out.push_back(kStd[(v >> 12) & 63]);
    out.append("==");
  } else if (rest == 2) {
    const uint32_t v = (static_cast<uint32_t>(bytes[i]) << 16) | (static_cast<uint32_t>(bytes[i + 1]) << 8);
    out.push_back(kStd[(v >> 18) & 63]);
    out.push_back(kStd[(v >> 12) & 63]);
    out.push_back(kStd[(v >> 6) & 63]);
    out.push_back('=');
  }
  return out;
}

std::string hex_encode(std::span<const std::byte> bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::byte b : bytes) {
    out.push_back(kHex[static_cast<uint8_t>(b) >> 4]);
    out.push_back(kHex[static_cast<uint8_t>(b) & 15]);
  }
  return out;
}

Result<std::vector<std::byte>> hex_decode(std::string_view text, size_t n_bytes) {
  if (text.size() != 2 * n_bytes) {
    return Status::malformed("hex digest has {} characters, expected {}", text.size(), 2 * n_bytes);
  }
  std::vector<std::byte> out(n_bytes);
  for (size_t i = 0; i < n_bytes; ++i) {
    const int hi = hex_value(text[2 * i]);
    const int lo = hex_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return Status::malformed("hex digest has a non-lowercase-hex character");
    out[i] = static_cast<std::byte>((hi << 4) | lo);
  }
  return out;
}

}  // namespace ztslm::provenance
