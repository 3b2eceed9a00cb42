// Payload decoders on arbitrary bytes. Properties: views respect the limits (count, depth,
// total bytes); hex and base64 round-trip what they decode; ROT13 is an involution.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/check.h"
#include "guard/decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ztslm::guard;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  DecodeLimits lim;
  lim.max_views = 8;
  lim.max_total_bytes = 4096;
  const auto views = decode_payloads(text, lim);
  ZTSLM_CHECK(views.size() <= lim.max_views);
  size_t total = 0;
  for (const DecodedView& v : views) {
    ZTSLM_CHECK(v.depth >= 1 && v.depth <= lim.max_depth);
    total += v.text.size();
  }
  ZTSLM_CHECK(total <= lim.max_total_bytes);
  ZTSLM_CHECK(rot13(rot13(text)) == text);
  std::string hex;
  if (hex_decode(text, &hex)) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string re;
    for (const char c : hex) {
      re.push_back(kHex[static_cast<unsigned char>(c) >> 4]);
      re.push_back(kHex[static_cast<unsigned char>(c) & 15]);
    }
    std::string lower(text);
    for (char& c : lower) c = static_cast<char>((c >= 'A' && c <= 'F') ? c + 32 : c);
    ZTSLM_CHECK(re == lower);
  }
  std::string url;
  url_decode(text, &url);
  ZTSLM_CHECK(url.size() <= text.size());
  return 0;
}
