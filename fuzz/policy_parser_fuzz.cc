// Fuzz target for the Rego parser and compiler. Properties: no crash; every parse error names
// its position as "FILE:LINE:COL: rego_parse_error" (or is a limit); parsing is deterministic;
// a module that parses compiles to a Status (never a crash), and so does a query.
#include <cstddef>
#include <cstdint>
#include <regex>
#include <string>

#include "core/check.h"
#include "policy/parser.h"
#include "policy/policy.h"

namespace {

bool has_position(const std::string& msg) {
  static const std::regex kPos(R"(^(fuzz\.rego|query|term):[0-9]+:[0-9]+: rego_parse_error: )");
  return std::regex_search(msg, kPos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ztslm::policy;
  const std::string text(reinterpret_cast<const char*>(data), size);
  ParseLimits lim;
  lim.max_source_bytes = 64 * 1024;
  auto m = parse_module(text, "fuzz.rego", RegoVersion::kV1, lim);
  if (!m.has_value()) {
    const ztslm::Status& s = m.error();
    ZTSLM_CHECK(s.code() == ztslm::StatusCode::kResourceExhausted || has_position(s.message()));
  }
  auto again = parse_module(text, "fuzz.rego", RegoVersion::kV1, lim);
  ZTSLM_CHECK(again.has_value() == m.has_value());
  if (m.has_value()) {
    ZTSLM_CHECK(again->rules.size() == m->rules.size());
    std::vector<Module> mods;
    mods.push_back(std::move(*m));
    auto compiled = Policy::compile_modules(std::move(mods), Value());
    (void)compiled;
  }
  auto v0 = parse_module(text, "fuzz.rego", RegoVersion::kV0, lim);
  (void)v0;
  auto q = parse_query(text, lim);
  if (!q.has_value()) {
    const ztslm::Status& s = q.error();
    ZTSLM_CHECK(s.code() == ztslm::StatusCode::kResourceExhausted || has_position(s.message()));
  }
  return 0;
}
