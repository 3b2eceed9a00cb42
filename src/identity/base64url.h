// Strict base64url (RFC 4648 section 5) as JWS compact serialization uses it (RFC 7515 section 2):
// alphabet A-Z a-z 0-9 - _, no padding, no whitespace, canonical trailing bits.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ztslm::identity {

// Decodes `text`. Returns kMalformed for any character outside the alphabet (including '=',
// '+', '/', whitespace), a length of 1 mod 4, or non-zero unused low bits in the last character
// (a second spelling of the same bytes). Returns kResourceExhausted when the decoded size would
// exceed `max_bytes` (checked before allocating).
Result<std::string> base64url_decode(std::string_view text, size_t max_bytes);

// Encodes `bytes` without padding.
std::string base64url_encode(std::span<const std::byte> bytes);
std::string base64url_encode(std::string_view bytes);

}  // namespace ztslm::identity
