// A small regular-expression engine for the regex.* built-ins: RE2 syntax subset, matched by a
// Pike VM over code points, so matching time is linear in the text (no backtracking blow-up on
// hostile patterns).
//
// Syntax: literals, `.`, `[...]` / `[^...]` classes with ranges and `\d \w \s \D \W \S`,
// `^ $ \A \z \b \B`, groups `( )`, `(?: )`, `(?P<name> )`, flags `(?i)` `(?s)` `(?m)` at the
// start of a group or the pattern, alternation `|`, quantifiers `* + ? {n} {n,} {n,m}` and
// their lazy forms, escapes `\. \\ \n \t \r \f \v \xHH \x{H..}`.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ztslm::policy {

struct RegexLimits {
  size_t max_pattern_bytes = 4096;
  size_t max_program = 5000;    // instructions after expanding counted repetition
  size_t max_text_bytes = 1u << 20;
};

class Regex final {
 public:
  // Compiles `pattern`; kInvalidArgument on a syntax error or a limit.
  static Result<Regex> compile(std::string_view pattern, const RegexLimits& limits = {});

  // True when the pattern matches anywhere in `text` (UTF-8).
  bool search(std::string_view text) const;
  // Leftmost-first match starting at byte offset `from`: fills `groups` with byte offsets
  // [start0, end0, start1, end1, ...] (-1 for a group that did not take part) and returns true.
  bool find(std::string_view text, size_t from, std::vector<long>* groups) const;
  size_t n_groups() const;  // including group 0
  size_t program_size() const;  // instructions (matching costs text length x this)

  struct Prog;

 private:
  std::shared_ptr<const Prog> prog_;
};

}  // namespace ztslm::policy
