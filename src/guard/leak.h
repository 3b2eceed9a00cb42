// System-prompt leak detection and spotlighting of untrusted documents.
//
// Canary: the gateway puts a random per-request token into the system prompt; output that
// contains it (also after the analysis view: case, confusables and invisibles do not hide it) is
// a leak. Overlap: output that repeats a long run of consecutive words of the system prompt
// (word n-grams of the analysis views) is a leak too.
//
// Spotlighting (delimit + datamark): an untrusted document or tool result is wrapped between
// random-id markers and its whitespace is replaced by a marker character, so the model can tell
// data from instructions; the system prompt gets a matching explanation.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ztslm::guard {

// A fresh random canary ("zc-" + 20 lowercase hex digits) from the OS random source.
// kUnavailable if the OS has no entropy to give.
Result<std::string> make_canary();

struct LeakLimits {
  size_t ngram_words = 8;        // n-gram length compared
  size_t min_overlap_words = 16; // a copied run this long is a leak
};

struct LeakResult {
  bool canary_found = false;
  size_t longest_overlap_words = 0;  // longest run of consecutive system-prompt words in output
  bool leaked = false;
};

// Checks `output` for `canary` (empty: not checked) and for overlap with `system_prompt`.
Result<LeakResult> detect_leak(std::string_view output, std::string_view canary,
                               std::string_view system_prompt, const LeakLimits& limits = {});

struct Spotlight {
  std::string text;         // the wrapped, datamarked document
  std::string instruction;  // the sentence to append to the system prompt
};

// Spotlights `document` with marker id `id` (caller-random, e.g. 8 hex digits). Occurrences of
// the marker strings inside the document are neutralised first, so a document cannot close its
// own block. The datamark is U+02C6 (MODIFIER LETTER CIRCUMFLEX ACCENT).
Spotlight spotlight(std::string_view document, std::string_view id);

}  // namespace ztslm::guard
