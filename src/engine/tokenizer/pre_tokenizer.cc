#include "engine/tokenizer/pre_tokenizer.h"

#include "core/check.h"
#include "engine/tokenizer/unicode_tables.h"

namespace ztslm::engine::tokenizer {
namespace {

constexpr char32_t kOutOfRange = 0xFFFFFFFF;

// A view of one piece [begin, end) of the code points with the accessors both matchers use:
// positions outside the piece read as "no code point" with no flags, like the regex's end.
class Cursor {
 public:
  Cursor(std::span<const char32_t> cpts, size_t begin, size_t end)
      : cpts_(cpts), begin_(begin), end_(end), prev_end_(begin) {}

  char32_t cpt(size_t pos) const { return pos >= begin_ && pos < end_ ? cpts_[pos] : kOutOfRange; }
  uint16_t flags(size_t pos) const {
    return pos >= begin_ && pos < end_ ? codepoint_flags(cpts_[pos]) : uint16_t{0};
  }
  size_t end() const { return end_; }

  // Ends the current piece at `pos` (nothing when empty); returns its length.
  size_t emit(size_t pos, std::vector<size_t>& ends) {
    ZTSLM_DCHECK(prev_end_ <= pos && pos <= end_);
    const size_t len = pos - prev_end_;
    if (len > 0) ends.push_back(pos);
    prev_end_ = pos;
    return len;
  }

 private:
  std::span<const char32_t> cpts_;
  size_t begin_;
  size_t end_;
  size_t prev_end_;
};

bool is_letter(uint16_t f) { return (f & kFlagLetter) != 0; }
bool is_number(uint16_t f) { return (f & kFlagNumber) != 0; }
bool is_space(uint16_t f) { return (f & kFlagWhitespace) != 0; }
bool is_crlf(char32_t c) { return c == '\r' || c == '\n'; }
char32_t ascii_lower(char32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

// Length of a contraction ('s 't 'm 'd 're 've 'll) at `pos`, or 0. `fold` makes the letters
// case-insensitive (R_LLAMA3 / R_QWEN2); only ASCII letters fold to these targets.
size_t contraction(const Cursor& c, size_t pos, bool fold) {
  if (c.cpt(pos) != '\'' || pos + 1 >= c.end()) return 0;
  auto at = [&](size_t p) { return fold ? ascii_lower(c.cpt(p)) : c.cpt(p); };
  const char32_t n1 = at(pos + 1);
  if (n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd') return 2;
  if (pos + 2 >= c.end()) return 0;
  const char32_t n2 = at(pos + 2);
  if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l')) return 3;
  return 0;
}

// R_LLAMA3 (max_digits 3) and R_QWEN2 (max_digits 1), rules 1-6 of §5.5.
void split_llama3(std::span<const char32_t> cpts, size_t begin, size_t end, size_t max_digits,
                  std::vector<size_t>& ends) {
  Cursor c(cpts, begin, end);
  size_t pos = begin;
  while (pos < end) {
    const char32_t cp = c.cpt(pos);
    const uint16_t fl = c.flags(pos);
    // 1: (?i:'s|'t|'re|'ve|'m|'ll|'d)
    if (const size_t n = contraction(c, pos, /*fold=*/true); n > 0) {
      pos += c.emit(pos + n, ends);
      continue;
    }
    // 2: [^\r\n\p{L}\p{N}]?\p{L}+
    if (!(is_crlf(cp) || is_number(fl)) && (is_letter(fl) || is_letter(c.flags(pos + 1)))) {
      ++pos;
      while (is_letter(c.flags(pos))) ++pos;
      c.emit(pos, ends);
      continue;
    }
    // 3: \p{N}{1,3} (qwen2: \p{N})
    if (is_number(fl)) {
      size_t run_start = pos;
      while (is_number(c.flags(pos))) {
        if (++pos - run_start >= max_digits) {
          c.emit(pos, ends);
          run_start = pos;
        }
      }
      c.emit(pos, ends);
      continue;
    }
    // 4: ' ?[^\s\p{L}\p{N}]+[\r\n]*'. Every in-range code point has a non-zero category bit, so
    // the regex's "any other character" is "flags != 0" here.
    uint16_t fl2 = cp == ' ' ? c.flags(pos + 1) : fl;
    if (!(is_space(fl2) || is_letter(fl2) || is_number(fl2)) && fl != 0) {
      if (cp == ' ') ++pos;
      while (!(is_space(fl2) || is_letter(fl2) || is_number(fl2)) && fl2 != 0) fl2 = c.flags(++pos);
      while (is_crlf(c.cpt(pos))) ++pos;
      c.emit(pos, ends);
      continue;
    }
    // 5: \s*[\r\n]+ | \s+(?!\S) | \s+
    size_t n_space = 0;
    size_t last_crlf_end = 0;
    while (is_space(c.flags(pos + n_space))) {
      if (is_crlf(c.cpt(pos + n_space))) last_crlf_end = pos + n_space + 1;
      ++n_space;
    }
    if (last_crlf_end > 0) {
      pos = last_crlf_end;
      c.emit(pos, ends);
      continue;
    }
    if (n_space > 1 && c.cpt(pos + n_space) != kOutOfRange) {
      pos += n_space - 1;  // leave one space to prefix the next word
      c.emit(pos, ends);
      continue;
    }
    if (n_space > 0) {
      pos += n_space;
      c.emit(pos, ends);
      continue;
    }
    // 6: anything else, one code point
    c.emit(++pos, ends);
  }
}

// R_GPT2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
void split_gpt2(std::span<const char32_t> cpts, size_t begin, size_t end,
                std::vector<size_t>& ends) {
  Cursor c(cpts, begin, end);
  size_t pos = begin;
  while (pos < end) {
    const char32_t cp = c.cpt(pos);
    if (const size_t n = contraction(c, pos, /*fold=*/false); n > 0) {
      pos += c.emit(pos + n, ends);
      continue;
    }
    uint16_t fl2 = cp == ' ' ? c.flags(pos + 1) : c.flags(pos);
    if (is_letter(fl2)) {
      if (cp == ' ') ++pos;
      while (is_letter(fl2)) fl2 = c.flags(++pos);
      c.emit(pos, ends);
      continue;
    }
    if (is_number(fl2)) {
      if (cp == ' ') ++pos;
      while (is_number(fl2)) fl2 = c.flags(++pos);
      c.emit(pos, ends);
      continue;
    }
    if (!(is_space(fl2) || is_letter(fl2) || is_number(fl2)) && fl2 != 0) {
      if (cp == ' ') ++pos;
      while (!(is_space(fl2) || is_letter(fl2) || is_number(fl2)) && fl2 != 0) fl2 = c.flags(++pos);
      c.emit(pos, ends);
      continue;
    }
    size_t n_space = 0;
    while (is_space(c.flags(pos + n_space))) ++n_space;
    if (n_space > 1 && c.cpt(pos + n_space) != kOutOfRange) {
      pos += n_space - 1;
      c.emit(pos, ends);
      continue;
    }
    if (n_space > 0) {
      pos += n_space;
      c.emit(pos, ends);
      continue;
    }
    c.emit(++pos, ends);
  }
}

// `\p{N}`: every number code point becomes a piece of its own; the text between them too.
void split_numbers(std::span<const char32_t> cpts, std::vector<size_t>& ends) {
  size_t pos = 0;
  size_t piece_start = 0;
  for (; pos < cpts.size(); ++pos) {
    if (!is_number(codepoint_flags(cpts[pos]))) continue;
    if (pos > piece_start) ends.push_back(pos);
    ends.push_back(pos + 1);
    piece_start = pos + 1;
  }
  if (pos > piece_start) ends.push_back(pos);
}

}  // namespace

void pre_tokenize(PreTokenizer pre, std::span<const char32_t> cpts, std::vector<size_t>& ends,
                  std::vector<size_t>& scratch) {
  ends.clear();
  switch (pre) {
    case PreTokenizer::kLlama3:
      split_llama3(cpts, 0, cpts.size(), 3, ends);
      return;
    case PreTokenizer::kQwen2:
      split_llama3(cpts, 0, cpts.size(), 1, ends);
      return;
    case PreTokenizer::kGpt2:
      split_gpt2(cpts, 0, cpts.size(), ends);
      return;
    case PreTokenizer::kStarcoder: {
      scratch.clear();
      split_numbers(cpts, scratch);
      size_t begin = 0;
      for (const size_t piece_end : scratch) {
        split_gpt2(cpts, begin, piece_end, ends);
        begin = piece_end;
      }
      return;
    }
    case PreTokenizer::kNone:
      break;
  }
  ZTSLM_CHECK(false && "pre_tokenize called without a pre-tokenizer");
}

}  // namespace ztslm::engine::tokenizer
