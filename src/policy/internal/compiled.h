// Private: the compiled form of a policy (rule sets by data path) shared by the compiler and
// the evaluator.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "policy/ast.h"
#include "policy/policy.h"

namespace ztslm::policy {

// All rules that define one data path (a complete document, a partial set or object, or a
// function), with at most one default.
struct RuleSet {
  std::vector<std::string> path;
  std::string path_text;  // "data.a.b"
  RuleKind kind = RuleKind::kComplete;
  std::vector<std::shared_ptr<Rule>> rules;
  std::shared_ptr<Rule> default_rule;
  size_t arity = 0;  // functions
  size_t index = 0;  // position in Policy::Impl::rule_sets (evaluation caches)
  // Rules that depend on neither `input` nor the clock nor `with` are evaluated once when the
  // policy is compiled; decisions reuse the value (unless a `with` replaces data or functions).
  int dependency = 0;  // 0 unknown, 1 visiting, 2 constant, 3 depends on the request
  bool has_const = false;
  Value const_value;
};

// The tree of packages and rule paths under `data`.
struct PathNode {
  std::map<std::string, std::unique_ptr<PathNode>> children;
  RuleSet* rules = nullptr;
  bool has_non_function = false;  // some rule below is not a function (visible as a document)
};

struct Policy::Impl {
  std::vector<Module> modules;
  std::vector<std::unique_ptr<RuleSet>> rule_sets;
  PathNode root;
  Value data = Value::empty_object();
};

// Resolves names and allocates variable slots in `modules`, builds rule sets and the path tree.
Status compile_impl(Policy::Impl& impl);

// Resolves a parsed query body against the compiled policy: `data`/`input` roots, built-ins,
// variable slots. Returns the annotated query.
Result<Query> compile_query(const Policy::Impl& impl, Body body);

// Marks rule sets whose value cannot depend on the request (see RuleSet::dependency).
void analyse_dependencies(Policy::Impl& impl);

// Finds the rule set at `path` (without "data"), or null.
const RuleSet* find_rule_set(const Policy::Impl& impl, const std::vector<std::string>& path);

}  // namespace ztslm::policy
