// Decoded views of payloads embedded in untrusted text: base64 (standard and URL alphabets),
// hex, URL percent-encoding, ROT13, and the invisible-character encodings (tag characters,
// variation selectors). The detectors read these views next to the analysis view, so that an
// instruction hidden in an encoding is judged as text. Sizes and nesting depth are bounded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ztslm::guard {

enum class Encoding : uint8_t { kBase64, kHex, kUrl, kRot13, kTag, kVariationSelector };

// Stable lowercase name ("base64").
std::string_view encoding_name(Encoding e);

// One decoded payload: where it came from in its parent view (byte offsets; the original text
// for depth 1), the nesting depth (1 = found in the original text) and the decoded text (valid
// UTF-8, mostly printable).
struct DecodedView {
  Encoding encoding;
  size_t start = 0;
  size_t end = 0;
  int depth = 1;
  std::string text;
};

struct DecodeLimits {
  size_t max_views = 16;              // views kept per message part
  int max_depth = 2;                  // base64 inside hex inside ... stops here
  size_t max_total_bytes = 64u << 10; // sum of all decoded views
  size_t min_run = 16;                // shortest base64/hex run considered a payload
  bool include_rot13 = true;          // ROT13 view of the whole text (cheap, always plausible)
};

// Finds and decodes embedded payloads in `text` (any bytes). Never fails: what cannot be
// decoded, is not text, or exceeds a limit is skipped.
std::vector<DecodedView> decode_payloads(std::string_view text, const DecodeLimits& limits = {});

// Strict decoders (also used by the fuzzers). Each appends to `out` and returns false (leaving
// `out` in an unspecified state) when `in` is not a valid encoding.
bool base64_decode(std::string_view in, std::string* out);  // both alphabets, optional padding
bool hex_decode(std::string_view in, std::string* out);     // even number of hex digits
// Percent-decoding; '+' stays '+'. Invalid escapes are copied through. Returns the number of
// escapes decoded.
size_t url_decode(std::string_view in, std::string* out);
// ROT13 of ASCII letters; other bytes unchanged.
std::string rot13(std::string_view in);

// True when `s` is valid UTF-8 of which at least `min_ratio` of the code points are printable
// (letters, digits, punctuation, spaces).
bool is_mostly_printable(std::string_view s, double min_ratio = 0.85);

}  // namespace ztslm::guard
