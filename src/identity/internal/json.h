// Strict parsing of small untrusted JSON documents (JOSE headers, claims, JWKS) with simdjson:
// size and depth bounds, UTF-8 validated by simdjson, duplicate member names rejected at every
// level (parsers disagree on which duplicate wins, so accepting one is an ambiguity).
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ztslm::identity::internal {

struct JsonLimits {
  size_t max_bytes = 64 * 1024;  // JWKS with a dozen RSA-4096 keys fits in 64 KiB
  size_t max_depth = 8;          // JOSE objects are flat; a JWKS is three levels deep
};

// A parsed document. The element views memory owned by `parser`, so the document must not
// outlive it and is not copyable.
class JsonDoc final {
 public:
  JsonDoc() = default;
  JsonDoc(const JsonDoc&) = delete;
  JsonDoc& operator=(const JsonDoc&) = delete;

  // Parses `text`. Returns kMalformed for invalid JSON (including bad UTF-8, duplicate member
  // names, nesting past `limits.max_depth`) and kResourceExhausted when `text` exceeds
  // `limits.max_bytes`.
  Status parse(std::string_view text, const JsonLimits& limits);

  simdjson::dom::element root() const { return root_; }

 private:
  simdjson::dom::parser parser_;
  simdjson::dom::element root_;
};

// Member `key` of `obj` as a string; nullopt when absent; kMalformed when it is not a string.
Result<std::optional<std::string_view>> get_string(simdjson::dom::object obj, std::string_view key);

}  // namespace ztslm::identity::internal
