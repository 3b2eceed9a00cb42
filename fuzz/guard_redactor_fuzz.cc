// Streaming redactor. The first byte picks a chunking seed and the policy; the rest is the
// stream. Property: the streamed output equals redact() of the whole text, and the blocked flag
// agrees.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/check.h"
#include "guard/redact.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ztslm::guard;
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  RedactionPolicy policy;
  if (mode & 1) policy[DlpType::kPhone] = DlpAction::kFlag;
  if (mode & 2) policy[DlpType::kEmail] = DlpAction::kBlock;
  if (mode & 4) policy[DlpType::kPrivateKey] = DlpAction::kBlock;
  auto whole = redact(text, policy);
  ZTSLM_CHECK(whole.has_value());
  StreamRedactor stream(policy);
  std::string out;
  uint64_t state = mode * 0x9E3779B97F4A7C15ull + 1;
  size_t pos = 0;
  while (pos < text.size()) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const size_t n = std::min<size_t>(text.size() - pos, 1 + (state >> 33) % ((mode >> 3) + 1 + 3));
    auto part = stream.push(text.substr(pos, n));
    ZTSLM_CHECK(part.has_value());
    out += *part;
    pos += n;
  }
  auto rest = stream.finish();
  ZTSLM_CHECK(rest.has_value());
  out += *rest;
  ZTSLM_CHECK(out == whole->text);
  ZTSLM_CHECK(stream.blocked() == whole->blocked);
  return 0;
}
