// Input checks on untrusted text: UTF-8 validation, Unicode smuggling findings with positions,
// and the normalised analysis view the detectors read.
//
// Accepts: UTF-8 (RFC 3629). Unicode data (NFKC, case folding, general categories) comes from
// utf8proc; the confusable skeleton is this project's own table of Cyrillic/Greek/Latin-extended
// letters that render like basic Latin letters (a subset of Unicode TR39 confusables).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ztslm::guard {

// What a Unicode finding is.
enum class UnicodeKind : uint8_t {
  kTagCharacter,       // U+E0000..U+E007F: invisible ASCII copies ("ASCII smuggling")
  kBidiControl,        // U+202A..U+202E, U+2066..U+2069, U+200E/F, U+061C ("trojan source")
  kInvisible,          // zero-width and other format/filler characters (Cf, Hangul fillers, ...)
  kVariationSelector,  // a variation selector that does not belong to its base, or a run of them
  kMixedScript,        // a word mixing Latin with Cyrillic/Greek look-alikes
};

// Stable lowercase name ("tag_character").
std::string_view unicode_kind_name(UnicodeKind kind);

// One run of suspicious characters: byte offsets into the checked text (end exclusive), the
// number of code points in the run and the first code point.
struct UnicodeFinding {
  UnicodeKind kind;
  size_t start = 0;
  size_t end = 0;
  size_t n_codepoints = 0;
  char32_t first = 0;
};

struct InputLimits {
  size_t max_text_bytes = 4u << 20;  // one message part; larger bodies are rejected earlier
  size_t max_findings = 256;         // findings beyond this are counted, not listed
};

struct InputReport {
  std::vector<UnicodeFinding> findings;
  size_t n_findings_dropped = 0;  // beyond `max_findings`
  size_t count(UnicodeKind kind) const;
};

// Validates `text` as UTF-8 and lists smuggling findings. kMalformed names the byte offset of
// the first ill-formed sequence; kResourceExhausted when `text` exceeds `max_text_bytes`.
Result<InputReport> check_input(std::string_view text, const InputLimits& limits = {});

// True for characters the analysis view removes: tag characters, variation selectors, format
// characters (Cf, bidi controls included), fillers and the combining grapheme joiner.
bool is_invisible(char32_t cp);

// The analysis view of valid UTF-8 `text`: invisibles removed, NFKC, case folded, confusables
// mapped to their Latin skeleton, whitespace runs collapsed to one space. Returns kMalformed for
// invalid UTF-8 (callers validate first; this is a second line).
Result<std::string> analysis_view(std::string_view text);

// The hidden ASCII carried by tag characters U+E0020..U+E007E in `text` (empty when none).
std::string tag_payload(std::string_view text);

// Bytes smuggled as variation selectors (U+FE00..FE0F = 0..15, U+E0100..E01EF = 16..255), one
// byte per selector; empty when `text` holds fewer than 4 selectors.
std::string variation_selector_payload(std::string_view text);

}  // namespace ztslm::guard
