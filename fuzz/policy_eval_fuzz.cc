// Fuzz target for evaluation under the budget. The input is a policy module (optionally
// followed by "\n---\n" and a JSON input document). Property: evaluation of the whole `data`
// document always returns (a value, undefined, or an error Status) within the step, memory and
// time budgets: a budget error is the only way it may stop early, and the wall time stays
// below a generous bound of the time budget.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/check.h"
#include "policy/json.h"
#include "policy/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ztslm::policy;
  std::string text(reinterpret_cast<const char*>(data), size);
  Value input;
  const size_t sep = text.find("\n---\n");
  if (sep != std::string::npos) {
    auto in = parse_json(std::string_view(text).substr(sep + 5));
    if (in.has_value()) input = *in;
    text.resize(sep);
  }
  CompileOptions co;
  co.parse_limits.max_source_bytes = 64 * 1024;
  auto pol = Policy::compile({{"fuzz.rego", text}}, Value(), co);
  if (!pol.has_value()) return 0;
  EvalOptions opts;
  opts.input = input;
  opts.limits.max_steps = 20000;
  opts.limits.max_bytes = 4u << 20;
  opts.limits.max_time_ns = 200'000'000;
  opts.limits.max_depth = 200;
  const auto start = std::chrono::steady_clock::now();
  auto v = (*pol)->eval_path("data", opts);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  // The time budget is 200 ms; allow slack for sanitizers and one built-in call after the
  // last check.
  ZTSLM_CHECK(elapsed < std::chrono::seconds(5));
  if (!v.has_value()) {
    const auto code = v.error().code();
    ZTSLM_CHECK(code == ztslm::StatusCode::kResourceExhausted ||
                code == ztslm::StatusCode::kDeadlineExceeded ||
                code == ztslm::StatusCode::kFailedPrecondition ||
                code == ztslm::StatusCode::kMalformed);
  }
  return 0;
}
