// Compiled Rego policies and their evaluation.
//
// `Policy::compile` parses and resolves a set of modules together with a base `data` document
// and returns an immutable object shared by any number of threads. Each evaluation runs with its
// own budget (EvalLimits): a step budget, a wall-clock budget read from an injected Clock, a
// bound on the bytes it allocates for values, and a nesting bound; a blown budget ends the
// evaluation with kResourceExhausted / kDeadlineExceeded, which callers turn into a deny.
//
// Errors carry OPA's error class in the message so callers and the conformance runner can tell
// them apart: "rego_parse_error", "rego_compile_error", "rego_type_error",
// "rego_unsafe_var_error", "rego_recursion_error" (compile time, kMalformed) and
// "eval_conflict_error", "eval_type_error", "eval_builtin_error" (kFailedPrecondition).
//
// SECURITY: no built-in reaches the network or the filesystem; time.now_ns reads the Clock.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "policy/ast.h"
#include "policy/parser.h"
#include "policy/value.h"

namespace ztslm::policy {

// Wall-clock source (nanoseconds since the Unix epoch). Injected so tests never sleep.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t now_ns() const = 0;
};
// The system clock (CLOCK_REALTIME).
const Clock& system_clock();

struct EvalLimits {
  uint64_t max_steps = 2'000'000;     // expressions + iterations; a decision needs hundreds
  int64_t max_time_ns = 100'000'000;  // 100 ms of wall time per evaluation
  size_t max_bytes = 64u << 20;       // bytes of values built during one evaluation
  size_t max_depth = 400;             // nested rule/function/expression evaluation (stack)
  uint32_t time_check_interval = 256; // steps between reads of the clock
};

struct EvalOptions {
  Value input;                 // undefined: no input document
  EvalLimits limits;
  const Clock* clock = nullptr;  // null: system_clock()
  bool strict_builtin_errors = false;  // built-in errors surface instead of "undefined"
  // Receives print() output (one line per call); null: print is a no-op.
  std::vector<std::string>* print_sink = nullptr;
};

// One result row: variable name -> value.
using Bindings = std::vector<std::pair<std::string, Value>>;

struct SourceFile {
  std::string name;  // for error locations
  std::string text;
};

struct CompileOptions {
  RegoVersion version = RegoVersion::kV1;
  ParseLimits parse_limits;
  size_t max_modules = 1024;  // modules per policy
};

struct RuleSet;  // rules sharing one data path (defined in internal/compiled.h)
struct PathNode;

class Policy final {
 public:
  // Parses `files` and compiles them with base document `data` (an object, or undefined for {}).
  static Result<std::shared_ptr<const Policy>> compile(const std::vector<SourceFile>& files,
                                                       Value data,
                                                       const CompileOptions& options = {});
  // Compiles already-parsed modules.
  static Result<std::shared_ptr<const Policy>> compile_modules(std::vector<Module> modules,
                                                               Value data);
  ~Policy();
  Policy(const Policy&) = delete;
  Policy& operator=(const Policy&) = delete;

  // Evaluates a query text ("data.x.allow = a; a == true") and returns one Bindings per
  // solution (empty vector: undefined). Named query variables become the bindings.
  Result<std::vector<Bindings>> query(std::string_view query_text, const EvalOptions& opts) const;
  // Evaluates the document at `path` ("data.ztslm.authz", or a path without "data.").
  // Undefined is a Value of Kind::kUndefined, not an error.
  Result<Value> eval_path(std::string_view path, const EvalOptions& opts) const;

  // Evaluates several documents (paths without "data", as element lists) in one evaluation, so
  // rules they share are computed once. The budget covers all of them.
  Result<std::vector<Value>> eval_paths(const std::vector<std::vector<std::string>>& paths,
                                        const EvalOptions& opts) const;

  // Names of the rules whose last path element starts with "test_" (full paths "data.a.test_x").
  std::vector<std::string> test_rules() const;

  const std::vector<Module>& modules() const;
  const Value& data() const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  Policy();
  std::unique_ptr<Impl> impl_;
};

// Parses `text` as a Rego term whose value needs no policy (for `input_term`): literals,
// collections, comprehensions and built-in calls over constants.
Result<Value> eval_constant_term(std::string_view text, const EvalOptions& opts);

}  // namespace ztslm::policy
