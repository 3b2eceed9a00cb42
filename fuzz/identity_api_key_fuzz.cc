// Fuzz target for the API-key parser. Properties: an accepted key matches the documented format
// exactly (zt_ + 8 [a-z0-9] + _ + 32..64 [A-Za-z0-9]); its parts are views that reassemble to
// the input; and the Bearer header parser hands back a suffix of its input with no spaces.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/check.h"
#include "identity/api_key.h"
#include "identity/authenticator.h"

namespace {

bool matches_format(std::string_view s) {
  auto id_char = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  auto b62 = [&](char c) { return id_char(c) || (c >= 'A' && c <= 'Z'); };
  if (s.size() < 3 + 8 + 1 + 32 || s.size() > 3 + 8 + 1 + 64 || s.substr(0, 3) != "zt_" || s[11] != '_') return false;
  for (size_t i = 3; i < 11; ++i) {
    if (!id_char(s[i])) return false;
  }
  for (size_t i = 12; i < s.size(); ++i) {
    if (!b62(s[i])) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ztslm::identity;  // NOLINT
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = parse_api_key(text);
  ZTSLM_CHECK(parsed.has_value() == matches_format(text));
  if (parsed.has_value()) {
    ZTSLM_CHECK(std::string("zt_") + std::string(parsed->key_id) + "_" + std::string(parsed->secret) == text);
    ZTSLM_CHECK(parsed->key_id.data() == text.data() + 3);
  }
  auto bearer = parse_bearer(text);
  if (bearer.has_value()) {
    ZTSLM_CHECK(!bearer->empty() && bearer->size() + 7 == text.size());
    ZTSLM_CHECK(bearer->data() == text.data() + 7);
    ZTSLM_CHECK(bearer->find(' ') == std::string_view::npos);
  }
  return 0;
}
