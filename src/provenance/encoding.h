// Strict text encodings used by model-signing bundles: base64 (RFC 4648 §4, with the URL-safe
// alphabet of §5 also accepted on input) and lowercase hexadecimal.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ztslm::provenance {

// Decodes `text` as padded base64. Accepts the standard (+/) or the URL-safe (-_) alphabet but
// not a mix of both; requires `=` padding to a multiple of 4 and zero bits in the unused tail of
// the last symbol (so each byte string has exactly one accepted encoding per alphabet). No
// whitespace. kMalformed on any defect, kResourceExhausted when the output would exceed
// `max_bytes`.
Result<std::vector<std::byte>> base64_decode(std::string_view text, size_t max_bytes);

// Standard padded base64 of `bytes`.
std::string base64_encode(std::span<const std::byte> bytes);

// Lowercase hex of `bytes`.
std::string hex_encode(std::span<const std::byte> bytes);

// Decodes lowercase hex of exactly `n_bytes` bytes. kMalformed for a wrong length, an odd
// length, uppercase or non-hex characters.
Result<std::vector<std::byte>> hex_decode(std::string_view text, size_t n_bytes);

}  // namespace ztslm::provenance
