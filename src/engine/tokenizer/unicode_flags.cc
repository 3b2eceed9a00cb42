// Lookup of the generated category table (unicode_tables.cc).
#include <algorithm>
#include <memory>

#include "engine/tokenizer/unicode_tables.h"

namespace ztslm::engine::tokenizer {
namespace {

uint16_t search_flags(char32_t cp) {
  const UnicodeRange* begin = kUnicodeRanges;
  const UnicodeRange* end = kUnicodeRanges + kUnicodeRangeCount;
  // The last range whose first code point is <= cp.
  const UnicodeRange* it = std::upper_bound(
      begin, end, cp, [](char32_t v, const UnicodeRange& r) { return v < r.first; });
  uint16_t flags = it == begin ? uint16_t{0} : (it - 1)->flags;
  for (size_t i = 0; i < kUnicodeWhitespaceCount; ++i) {
    if (kUnicodeWhitespace[i] == cp) flags = static_cast<uint16_t>(flags | kFlagWhitespace);
  }
  return flags;
}

// Flags of U+0000..U+FFFF, built once (128 KiB).
const uint16_t* bmp_table() {
  static const std::unique_ptr<uint16_t[]> table = [] {
    auto t = std::make_unique<uint16_t[]>(0x10000);
    size_t r = 0;
    for (char32_t cp = 0; cp < 0x10000; ++cp) {
      while (r + 1 < kUnicodeRangeCount && kUnicodeRanges[r + 1].first <= cp) ++r;
      t[cp] = kUnicodeRanges[r].flags;
    }
    for (size_t i = 0; i < kUnicodeWhitespaceCount; ++i) {
      const char32_t ws = kUnicodeWhitespace[i];
      if (ws < 0x10000) t[ws] = static_cast<uint16_t>(t[ws] | kFlagWhitespace);
    }
    return t;
  }();
  return table.get();
}

}  // namespace

uint16_t codepoint_flags(char32_t cp) {
  if (cp < 0x10000) return bmp_table()[cp];
  if (cp > 0x10FFFF) return 0;
  return search_flags(cp);
}

}  // namespace ztslm::engine::tokenizer
