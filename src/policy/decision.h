// The policy decision point the gateway calls: policies are loaded once, compiled into an
// immutable object, and evaluated per request against the documented `input` (README.md).
// A reload compiles the new files and runs their `test_` rules first; only a policy that
// parses, compiles and passes its tests replaces the one in force (an atomic shared_ptr swap),
// so in-flight decisions finish on the policy they started with.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "policy/policy.h"

namespace ztslm::policy {

// What the gateway enforces. `allow` is false whenever evaluation failed (then `error` is set
// and `reasons` says why): a policy fault is a deny, never an allow.
struct Decision {
  bool allow = false;
  std::vector<std::string> reasons;
  Value obligations = Value::empty_object();  // e.g. {"max_tokens": 512, "guard_profile": ...}
  Status error;
};

// Result of one `test_` rule.
struct TestResult {
  std::string name;  // "data.ztslm.authz.test_tenant_isolation"
  bool passed = false;
  std::string message;  // why it failed ("undefined", "false", an error)
  int64_t duration_ns = 0;
};

struct LoadLimits {
  size_t max_file_bytes = 1u << 20;  // one policy module
  size_t max_files = 1024;
  size_t max_data_bytes = 64u << 20;
};

// Reads `paths` (files, or directories searched recursively for *.rego) into sources, sorted by
// path. Fails with kNotFound / kResourceExhausted / kInvalidArgument.
Result<std::vector<SourceFile>> read_policy_files(const std::vector<std::string>& paths,
                                                  const LoadLimits& limits = {});
// Reads and parses a JSON document (for --data / --input).
Result<Value> read_json_file(const std::string& path, const LoadLimits& limits = {});

// Runs every `test_*` rule of `policy` (each must evaluate to a value other than false).
std::vector<TestResult> run_policy_tests(const Policy& policy, const EvalOptions& opts);

class DecisionPoint final {
 public:
  struct Options {
    // Package whose `allow`, `reasons` and `obligations` rules make the decision (only those
    // three are evaluated, so test_ rules in the same package cost nothing per request).
    std::string query = "data.ztslm.authz";
    EvalLimits limits;                       // per decision
    const Clock* clock = nullptr;            // null: system clock
    bool require_tests_pass = true;          // a load whose test_ rules fail is refused
  };

  explicit DecisionPoint(Options options);

  // Compiles `files` with base document `data` and, when they pass their tests, makes them the
  // policy in force. On any failure the previous policy stays in force and the error (with the
  // failing tests) is returned.
  Status load(const std::vector<SourceFile>& files, Value data);

  // Evaluates the configured decision for `input`. Thread-safe; never throws.
  Decision decide(const Value& input) const;

  // The policy in force (null before the first successful load).
  std::shared_ptr<const Policy> current() const { return current_.load(); }
  // Number of successful loads.
  uint64_t generation() const { return generation_.load(); }

 private:
  Options options_;
  std::vector<std::string> query_path_;
  std::vector<std::vector<std::string>> field_paths_;  // query + allow / reasons / obligations
  std::atomic<std::shared_ptr<const Policy>> current_;
  std::atomic<uint64_t> generation_{0};
};

}  // namespace ztslm::policy
