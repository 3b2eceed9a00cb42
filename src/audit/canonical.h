// Canonical JSON for audit records, and the bounded parser that reads records back.
//
// Canonical form (the only form a verifier accepts, so that no byte of a line is ignorable):
//   - one JSON object per line, no whitespace outside strings, keys sorted bytewise, no
//     duplicate keys;
//   - strings are UTF-8; '"' and '\\' are escaped, control characters below 0x20 are written as
//     \b \f \n \r \t or \u00xx (lowercase hex); nothing else is escaped (no "\/", no \u for
//     printable characters);
//   - numbers are integers in [-2^63, 2^64) without sign on zero, leading zeros or exponent;
//     floating point values are not allowed anywhere.
// This is exactly what nlohmann::json::dump() produces for a value built from integers,
// strings, booleans, null, arrays and objects; `parse_canonical` re-serialises what it parsed
// and rejects the line unless the bytes are identical.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace ztslm::audit {

using Json = nlohmann::json;

// Bounds for reading records back (the log file is untrusted: an attacker may have edited it).
struct ParseLimits {
  size_t max_line_bytes = size_t{1} << 20;  // plaintext bodies are capped well below this
  size_t max_depth = 16;                    // records nest 3 levels; room for extensions
};

// Canonical serialisation of `value` (see above). Invalid UTF-8 in strings is replaced by
// U+FFFD, so the result always re-parses. Never throws.
std::string canonical_dump(const Json& value);

// Parses lines of the log with simdjson into Json values. One per thread (it owns simdjson's
// buffers); not thread-safe.
class RecordParser final {
 public:
  explicit RecordParser(const ParseLimits& limits = ParseLimits());
  ~RecordParser();
  RecordParser(const RecordParser&) = delete;
  RecordParser& operator=(const RecordParser&) = delete;

  // Parses one line (without its '\n') as a canonical JSON object. kResourceExhausted past the
  // limits; kMalformed when it is not JSON, not an object, holds a floating-point number or
  // invalid UTF-8, or is not byte-for-byte canonical. Never throws.
  Result<Json> parse(std::string_view line);

  const ParseLimits& limits() const { return limits_; }

 private:
  struct Impl;
  ParseLimits limits_;
  std::unique_ptr<Impl> impl_;
};

// Lowercase hex of `bytes`.
std::string to_hex(std::span<const uint8_t> bytes);
// Decodes exactly `out.size()` bytes of lowercase hex from `hex`; false on any other input.
bool from_hex(std::string_view hex, std::span<uint8_t> out);

// SHA-256 of `data` as 64 lowercase hex characters.
std::string sha256_hex(std::string_view data);

}  // namespace ztslm::audit
