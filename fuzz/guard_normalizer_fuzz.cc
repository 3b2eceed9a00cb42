// Input checks and the analysis view on arbitrary bytes. Properties: invalid UTF-8 is rejected
// exactly when core's validator says so; findings lie inside the text, in order, and do not
// overlap; the analysis view is valid UTF-8 and idempotent (view(view(x)) == view(x)).
#include <cstdint>
#include <string_view>

#include "core/check.h"
#include "core/utf8.h"
#include "guard/unicode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ztslm::guard;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto report = check_input(text);
  ZTSLM_CHECK(report.has_value() == ztslm::is_valid_utf8(text));
  if (!report.has_value()) return 0;
  size_t last_end = 0;
  for (const UnicodeFinding& f : report->findings) {
    ZTSLM_CHECK(f.start < f.end && f.end <= size && f.start >= last_end);
    last_end = f.end;
  }
  auto view = analysis_view(text);
  ZTSLM_CHECK(view.has_value() && ztslm::is_valid_utf8(*view));
  auto again = analysis_view(*view);
  ZTSLM_CHECK(again.has_value() && *again == *view);
  return 0;
}
