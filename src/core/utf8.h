// UTF-8 validation and decoding (RFC 3629: no surrogates, no overlongs, max U+10FFFF).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ztslm {

// True when `s` is entirely well-formed UTF-8.
bool is_valid_utf8(std::string_view s);

// Decodes the code point at `s[pos]`. On success sets `*cp`, `*len` (1..4) and returns true.
// On an ill-formed or truncated sequence returns false with `*len` = 1 (skip one byte).
bool decode_utf8(std::string_view s, size_t pos, char32_t* cp, size_t* len);

// Appends the UTF-8 encoding of `cp` (which must be a scalar value) to `out`.
void append_utf8(std::string& out, char32_t cp);

// Number of bytes at the end of `s` that form the start of a well-formed sequence that is not
// complete yet (0..3). Streaming decoders hold these bytes back until the next chunk.
size_t utf8_incomplete_suffix(std::string_view s);

// Length of the longest prefix of `s` that is well-formed UTF-8.
size_t utf8_valid_prefix(std::string_view s);

// A copy of untrusted `s` safe for messages: at most `max_len` bytes of printable ASCII;
// other bytes become \xHH, and a cut is marked with "...".
std::string printable(std::string_view s, size_t max_len = 64);

}  // namespace ztslm
