// DLP scanner and validators on arbitrary bytes. Properties: findings are sorted, inside the
// text and non-overlapping; each finding re-validates on its own bytes where the type has a
// checksum (card Luhn, IBAN mod-97, SSN ranges, IPv4, JWT header).
#include <cstdint>
#include <string_view>

#include "core/check.h"
#include "guard/dlp.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ztslm::guard;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto scan = DlpScanner::shared().scan(text);
  ZTSLM_CHECK(scan.has_value());
  size_t last_end = 0;
  for (const DlpFinding& f : scan->findings) {
    ZTSLM_CHECK(f.start < f.end && f.end <= size && f.start >= last_end);
    last_end = f.end;
    const std::string_view item = text.substr(f.start, f.end - f.start);
    switch (f.type) {
      case DlpType::kCreditCard: ZTSLM_CHECK(luhn_valid(item)); break;
      case DlpType::kIban: ZTSLM_CHECK(iban_valid(item)); break;
      case DlpType::kUsSsn: ZTSLM_CHECK(us_ssn_valid(item)); break;
      case DlpType::kIpv4: ZTSLM_CHECK(ipv4_valid(item)); break;
      case DlpType::kJwt: ZTSLM_CHECK(jwt_valid(item)); break;
      default: break;
    }
  }
  (void)shannon_entropy(text);
  (void)is_placeholder(text);
  return 0;
}
