// Strict JSON (RFC 8259) to Rego values, for `data` documents, `input` and json.unmarshal.
// Accepts one JSON text with optional surrounding whitespace; strings must be valid UTF-8.
#pragma once

#include <string_view>

#include "core/result.h"
#include "policy/value.h"

namespace ztslm::policy {

struct JsonLimits {
  size_t max_bytes = 64u << 20;  // documents above this are refused before parsing
  size_t max_depth = 256;        // nesting; bounds recursion (stack) on hostile input
};

// Parses `text`. Returns kMalformed with "json: <what> at offset N" on a syntax error and
// kResourceExhausted when `limits` are exceeded.
Result<Value> parse_json(std::string_view text, const JsonLimits& limits = JsonLimits());

}  // namespace ztslm::policy
