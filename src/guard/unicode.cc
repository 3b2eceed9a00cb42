#include "guard/unicode.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>

#include "core/utf8.h"

namespace ztslm::guard {
namespace {

enum class Script : uint8_t { kOther, kLatin, kGreek, kCyrillic };

Script script_of(char32_t cp) {
  if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return Script::kLatin;
  if (cp < 0xC0) return Script::kOther;
  if ((cp >= 0xC0 && cp <= 0x24F && cp != 0xD7 && cp != 0xF7) || (cp >= 0x1E00 && cp <= 0x1EFF) ||
      (cp >= 0x250 && cp <= 0x2AF))
    return Script::kLatin;
  if ((cp >= 0x370 && cp <= 0x3FF) || (cp >= 0x1F00 && cp <= 0x1FFF)) return Script::kGreek;
  if ((cp >= 0x400 && cp <= 0x52F) || (cp >= 0x2DE0 && cp <= 0x2DFF) ||
      (cp >= 0xA640 && cp <= 0xA69F))
    return Script::kCyrillic;
  return Script::kOther;
}

// Letters of other scripts that render like a basic Latin letter (both cases; the skeleton runs
// after case folding, so folded forms are listed too). Sorted by code point.
struct Confusable {
  char32_t cp;
  char latin;
};
constexpr Confusable kConfusables[] = {
    {0x0131, 'i'}, {0x0251, 'a'}, {0x0261, 'g'}, {0x0269, 'i'}, {0x026A, 'i'}, {0x0299, 'b'},
    {0x0391, 'a'}, {0x0392, 'b'}, {0x0395, 'e'}, {0x0396, 'z'}, {0x0397, 'h'}, {0x0399, 'i'},
    {0x039A, 'k'}, {0x039C, 'm'}, {0x039D, 'n'}, {0x039F, 'o'}, {0x03A1, 'p'}, {0x03A4, 't'},
    {0x03A5, 'y'}, {0x03A7, 'x'}, {0x03B1, 'a'}, {0x03B2, 'b'}, {0x03B3, 'y'}, {0x03B5, 'e'},
    {0x03B6, 'z'}, {0x03B7, 'n'}, {0x03B9, 'i'}, {0x03BA, 'k'}, {0x03BC, 'u'}, {0x03BD, 'v'},
    {0x03BF, 'o'}, {0x03C1, 'p'}, {0x03C2, 'c'}, {0x03C3, 'o'}, {0x03C4, 't'}, {0x03C5, 'u'},
    {0x03C7, 'x'}, {0x03C9, 'w'}, {0x03F2, 'c'}, {0x03F3, 'j'}, {0x0405, 's'}, {0x0406, 'i'},
    {0x0408, 'j'}, {0x0410, 'a'}, {0x0412, 'b'}, {0x0415, 'e'}, {0x041A, 'k'}, {0x041C, 'm'},
    {0x041D, 'h'}, {0x041E, 'o'}, {0x0420, 'p'}, {0x0421, 'c'}, {0x0422, 't'}, {0x0423, 'y'},
    {0x0425, 'x'}, {0x0430, 'a'}, {0x0432, 'b'}, {0x0435, 'e'}, {0x043A, 'k'}, {0x043C, 'm'},
    {0x043D, 'h'}, {0x043E, 'o'}, {0x0440, 'p'}, {0x0441, 'c'}, {0x0442, 't'}, {0x0443, 'y'},
    {0x0445, 'x'}, {0x0448, 'w'}, {0x0455, 's'}, {0x0456, 'i'}, {0x0458, 'j'}, {0x045B, 'h'},
    {0x04AE, 'y'}, {0x04AF, 'y'}, {0x04BB, 'h'}, {0x04C0, 'l'}, {0x04CF, 'l'}, {0x0501, 'd'},
    {0x050C, 'g'}, {0x051B, 'q'}, {0x051D, 'w'},
};

char confusable_latin(char32_t cp) {
  const auto* it = std::lower_bound(std::begin(kConfusables), std::end(kConfusables), cp,
                                    [](const Confusable& c, char32_t v) { return c.cp < v; });
  return (it != std::end(kConfusables) && it->cp == cp) ? it->latin : '\0';
}

bool is_bidi_control(char32_t cp) {
  return (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200E ||
         cp == 0x200F || cp == 0x061C;
}

bool is_tag(char32_t cp) { return cp >= 0xE0000 && cp <= 0xE007F; }

bool is_variation_selector(char32_t cp) {
  return (cp >= 0xFE00 && cp <= 0xFE0F) || (cp >= 0xE0100 && cp <= 0xE01EF) ||
         (cp >= 0x180B && cp <= 0x180D) || cp == 0x180F;
}

// Bases that legitimately take a variation selector: emoji and symbols (text/emoji
// presentation), CJK ideographs (ideographic variation sequences), and a few math symbols.
bool takes_variation_selector(char32_t base) {
  return (base >= 0x2000 && base <= 0x2BFF) || (base >= 0x1F000 && base <= 0x1FAFF) ||
         (base >= 0x3000 && base <= 0x9FFF) || (base >= 0x20000 && base <= 0x3FFFF) ||
         (base >= 0xF900 && base <= 0xFAFF) || base == 0x00A9 || base == 0x00AE ||
         (base >= '0' && base <= '9') || base == '#' || base == '*' ||
         (base >= 0x1800 && base <= 0x18AF);  // Mongolian free variation selectors
}

bool is_letter_or_mark(char32_t cp) {
  if (cp < 0x80) return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
  const utf8proc_category_t cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_ME;
}

// Decodes valid UTF-8 (already validated) one code point at a time.
struct Cursor {
  std::string_view s;
  size_t pos = 0;
  bool next(char32_t* cp, size_t* len) {
    if (pos >= s.size()) return false;
    if (!decode_utf8(s, pos, cp, len)) {
      *cp = 0xFFFD;
      *len = 1;
    }
    pos += *len;
    return true;
  }
};

class FindingSink {
 public:
  FindingSink(InputReport& report, size_t max_findings) : report_(report), max_(max_findings) {}
  // Extends the open run when it has the same kind and touches `start`.
  void add(UnicodeKind kind, size_t start, size_t end, char32_t cp) {
    if (!report_.findings.empty()) {
      UnicodeFinding& last = report_.findings.back();
      if (last.kind == kind && last.end == start) {
        last.end = end;
        ++last.n_codepoints;
        return;
      }
    }
    if (report_.findings.size() >= max_) {
      ++report_.n_findings_dropped;
      return;
    }
    report_.findings.push_back(UnicodeFinding{kind, start, end, 1, cp});
  }

 private:
  InputReport& report_;
  size_t max_;
};

}  // namespace

std::string_view unicode_kind_name(UnicodeKind kind) {
  switch (kind) {
    case UnicodeKind::kTagCharacter: return "tag_character";
    case UnicodeKind::kBidiControl: return "bidi_control";
    case UnicodeKind::kInvisible: return "invisible";
    case UnicodeKind::kVariationSelector: return "variation_selector";
    case UnicodeKind::kMixedScript: return "mixed_script";
  }
  return "unknown";
}

size_t InputReport::count(UnicodeKind kind) const {
  return static_cast<size_t>(std::count_if(findings.begin(), findings.end(),
                                           [&](const UnicodeFinding& f) { return f.kind == kind; }));
}

bool is_invisible(char32_t cp) {
  if (cp < 0x80) return false;
  if (is_tag(cp) || is_variation_selector(cp) || is_bidi_control(cp)) return true;
  switch (cp) {
    case 0x00AD: case 0x034F: case 0x115F: case 0x1160: case 0x17B4: case 0x17B5:
    case 0x180E: case 0x2800: case 0x3164: case 0xFFA0: case 0xFEFF:
      return true;
    default: break;
  }
  if (cp >= 0x200B && cp <= 0x200D) return true;
  if (cp >= 0x2060 && cp <= 0x206F) return true;
  if (cp >= 0xFFF0 && cp <= 0xFFFB) return true;
  if (cp >= 0x1D173 && cp <= 0x1D17A) return true;
  return utf8proc_category(static_cast<utf8proc_int32_t>(cp)) == UTF8PROC_CATEGORY_CF;
}

Result<InputReport> check_input(std::string_view text, const InputLimits& limits) {
  if (text.size() > limits.max_text_bytes) {
    return Status::resource_exhausted("text of {} bytes exceeds limit {}", text.size(),
                                      limits.max_text_bytes);
  }
  const size_t valid = utf8_valid_prefix(text);
  if (valid != text.size()) {
    return Status::malformed("invalid utf-8 at byte offset {}", valid);
  }
  InputReport report;
  FindingSink sink(report, limits.max_findings);
  // Word state for mixed-script detection.
  size_t word_start = 0;
  bool word_latin = false, word_other = false, word_confusable = false;
  char32_t word_first_other = 0;
  auto close_word = [&](size_t end) {
    if (word_latin && word_other && word_confusable) {
      sink.add(UnicodeKind::kMixedScript, word_start, end, word_first_other);
    }
    word_latin = word_other = word_confusable = false;
  };
  bool in_word = false;
  char32_t prev_base = 0;   // last visible code point
  size_t vs_run = 0;        // consecutive variation selectors
  Cursor cur{text};
  char32_t cp = 0;
  size_t len = 0;
  while (true) {
    const size_t at = cur.pos;
    if (!cur.next(&cp, &len)) break;
    if (cp < 0x80) {
      vs_run = 0;
      prev_base = cp;
      const bool letter = (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
      if (letter) {
        if (!in_word) {
          in_word = true;
          word_start = at;
        }
        word_latin = true;
      } else if (in_word) {
        close_word(at);
        in_word = false;
      }
      continue;
    }
    if (is_tag(cp)) {
      sink.add(UnicodeKind::kTagCharacter, at, at + len, cp);
      continue;  // invisible: does not break a word
    }
    if (is_variation_selector(cp)) {
      ++vs_run;
      const bool supplementary = cp >= 0xE0100;
      const bool ok_base = takes_variation_selector(prev_base) &&
                           (!supplementary || (prev_base >= 0x3000));
      if (vs_run > 1 || !ok_base) sink.add(UnicodeKind::kVariationSelector, at, at + len, cp);
      continue;
    }
    vs_run = 0;
    if (is_bidi_control(cp)) {
      sink.add(UnicodeKind::kBidiControl, at, at + len, cp);
      continue;
    }
    if (is_invisible(cp)) {
      // ZWJ inside emoji sequences is legitimate; elsewhere it is an invisible.
      const bool emoji_zwj = cp == 0x200D && prev_base >= 0x1F000;
      if (!emoji_zwj) sink.add(UnicodeKind::kInvisible, at, at + len, cp);
      continue;
    }
    prev_base = cp;
    if (is_letter_or_mark(cp)) {
      if (!in_word) {
        in_word = true;
        word_start = at;
      }
      const Script sc = script_of(cp);
      if (sc == Script::kLatin) {
        word_latin = true;
      } else if (sc == Script::kGreek || sc == Script::kCyrillic) {
        if (!word_other) word_first_other = cp;
        word_other = true;
        if (confusable_latin(cp) != '\0') word_confusable = true;
      }
    } else if (in_word) {
      close_word(at);
      in_word = false;
    }
  }
  if (in_word) close_word(text.size());
  return report;
}

Result<std::string> analysis_view(std::string_view text) {
  if (!is_valid_utf8(text)) return Status::malformed("analysis view of invalid utf-8");
  // 1. Invisibles removed.
  std::string visible;
  visible.reserve(text.size());
  {
    Cursor cur{text};
    char32_t cp = 0;
    size_t len = 0;
    size_t run_start = 0;
    while (true) {
      const size_t at = cur.pos;
      if (!cur.next(&cp, &len)) break;
      if (cp >= 0x80 && is_invisible(cp)) {
        visible.append(text.substr(run_start, at - run_start));
        run_start = at + len;
      }
    }
    visible.append(text.substr(run_start));
  }
  // 2. NFKC + case folding (utf8proc allocates the result with malloc).
  utf8proc_uint8_t* mapped = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(
      reinterpret_cast<const utf8proc_uint8_t*>(visible.data()),
      static_cast<utf8proc_ssize_t>(visible.size()), &mapped,
      static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT |
                                     UTF8PROC_CASEFOLD));
  if (n < 0) {
    std::free(mapped);
    return Status::malformed("nfkc normalisation failed: {}", utf8proc_errmsg(n));
  }
  const std::string_view folded(reinterpret_cast<const char*>(mapped), static_cast<size_t>(n));
  // 3. Skeleton per word (only in words that hold a Latin letter or consist of look-alikes
  //    only, so that genuine Greek/Cyrillic text keeps its letters) and whitespace collapse.
  std::string out;
  out.reserve(folded.size());
  size_t pos = 0;
  while (pos < folded.size()) {
    const unsigned char c = static_cast<unsigned char>(folded[pos]);
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      if (!out.empty() && out.back() != ' ') out.push_back(' ');
      ++pos;
      continue;
    }
    // A word: up to the next ASCII whitespace.
    size_t end = pos;
    while (end < folded.size()) {
      const char d = folded[end];
      if (d == ' ' || d == '\t' || d == '\n' || d == '\r' || d == '\f' || d == '\v') break;
      ++end;
    }
    const std::string_view word = folded.substr(pos, end - pos);
    bool has_latin = false, all_confusable = true, has_other = false;
    {
      Cursor cur{word};
      char32_t cp = 0;
      size_t len = 0;
      while (cur.next(&cp, &len)) {
        const Script sc = script_of(cp);
        if (sc == Script::kLatin) has_latin = true;
        if (sc == Script::kGreek || sc == Script::kCyrillic) {
          has_other = true;
          if (confusable_latin(cp) == '\0') all_confusable = false;
        } else if (sc != Script::kLatin && is_letter_or_mark(cp)) {
          all_confusable = false;
        }
      }
    }
    if (has_other && (has_latin || all_confusable)) {
      Cursor cur{word};
      char32_t cp = 0;
      size_t len = 0;
      while (cur.next(&cp, &len)) {
        const char latin = confusable_latin(cp);
        if (latin != '\0') {
          out.push_back(latin);
        } else {
          append_utf8(out, cp);
        }
      }
    } else {
      out.append(word);
    }
    pos = end;
  }
  std::free(mapped);
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string tag_payload(std::string_view text) {
  std::string out;
  Cursor cur{text};
  char32_t cp = 0;
  size_t len = 0;
  while (cur.next(&cp, &len)) {
    if (cp >= 0xE0020 && cp <= 0xE007E) out.push_back(static_cast<char>(cp - 0xE0000));
  }
  return out;
}

std::string variation_selector_payload(std::string_view text) {
  std::string out;
  Cursor cur{text};
  char32_t cp = 0;
  size_t len = 0;
  while (cur.next(&cp, &len)) {
    if (cp >= 0xFE00 && cp <= 0xFE0F) {
      out.push_back(static_cast<char>(cp - 0xFE00));
    } else if (cp >= 0xE0100 && cp <= 0xE01EF) {
      out.push_back(static_cast<char>(cp - 0xE0100 + 16));
    }
  }
  if (out.size() < 4) out.clear();
  return out;
}

}  // namespace ztslm::guard
