// Abstract syntax of Rego modules and queries, as produced by policy/parser.h and annotated
// (variable slots, resolved references) by the compiler in policy/policy.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "policy/value.h"

namespace ztslm::policy {

struct Location {
  uint32_t line = 0;
  uint32_t col = 0;
};

enum class TermKind : uint8_t {
  kScalar,       // value
  kVar,          // name (slot after compile); `data`/`input` are roots
  kRef,          // items[0] = head, items[1..] = operands
  kArray,        // items
  kSet,          // items
  kObject,       // items = k0, v0, k1, v1, ...
  kArrayCompr,   // head, body
  kSetCompr,     // head, body
  kObjectCompr,  // head (key), head2 (value), body
  kCall,         // name = operator, items = args
};

struct Body;
struct Term;
using TermPtr = std::shared_ptr<Term>;

struct RuleSet;
struct Builtin;

struct Term {
  TermKind kind = TermKind::kScalar;
  Location loc;
  Value value;                  // kScalar
  std::string name;             // kVar: variable name; kCall: operator as written/resolved
  int slot = -1;                // kVar: frame slot; -1 for roots (data, input)
  bool is_wildcard = false;     // kVar named `_` (or generated)
  std::vector<TermPtr> items;
  TermPtr head, head2;
  std::shared_ptr<Body> body;
  // kCall after compile: one of these.
  const Builtin* builtin = nullptr;
  std::vector<std::string> func_path;  // user function: full data path
  // kRef with a `data` head after compile: true when no operand is a variable (a constant path)
  bool ground_ref = false;
  // kRef into data whose constant prefix names a rule set: evaluated directly (no tree walk).
  // kCall of a user function: its rule set.
  const RuleSet* ref_rules = nullptr;
  uint32_t ref_rules_end = 0;  // index of the first operand after the rule set's path
  bool is_operator = false;  // kCall written as an operator (`+`, `==`, `in`): always a built-in
  int slot_begin = 0, slot_end = 0;  // comprehensions: the slots their own variables use
};

enum class ExprKind : uint8_t {
  kTerm,    // a (true unless false/undefined)
  kUnify,   // a = b
  kAssign,  // a := b
  kSome,    // some x, y (declarations only)
  kSomeIn,  // some [key,] val in domain
  kEvery,   // every [key,] val in domain { body }
};

struct WithMod {
  TermPtr target;  // a ref: input..., data..., or a function/built-in name
  TermPtr value;
  std::vector<std::string> target_path;  // resolved: "input", ... / "data", ... / "fn", name
  std::string mock_fn;  // function target replaced by this function ("count", "data.a.f")
};

struct Expr {
  ExprKind kind = ExprKind::kTerm;
  Location loc;
  bool negated = false;
  TermPtr a, b;
  TermPtr key, val, domain;      // kSomeIn / kEvery
  std::shared_ptr<Body> body;    // kEvery
  std::vector<TermPtr> some_vars;  // kSome
  std::vector<WithMod> withs;
  int slot_begin = 0, slot_end = 0;  // kEvery: the slots its own variables use
};

struct Body {
  std::vector<Expr> exprs;
};

enum class RuleKind : uint8_t { kComplete, kPartialSet, kPartialObject, kFunction };

struct Rule {
  RuleKind kind = RuleKind::kComplete;
  Location loc;
  std::string file;
  bool is_default = false;
  std::vector<std::string> path;  // full data path: package + constant head parts
  std::vector<TermPtr> keys;      // partial set: [member]; partial object: dynamic key suffix
  std::vector<TermPtr> args;      // function parameters (patterns)
  TermPtr value;                  // head value; null means `true`
  Body body;                      // empty body: always true
  std::vector<std::shared_ptr<Rule>> else_chain;  // `else` branches, in order
  int n_slots = 0;                // frame size after compile
  bool assign_op = false;         // head used `:=`
};

struct Import {
  Location loc;
  std::vector<std::string> path;  // "data", "a", "b" or "input", "x"; rego.v1 / future.* dropped
  std::string alias;
};

struct Module {
  std::string file;
  bool v1 = true;  // Rego v1 syntax (v0 when parsed as v0 without `import rego.v1`)
  std::vector<std::string> package;  // without the leading "data"
  std::vector<Import> imports;
  std::vector<std::shared_ptr<Rule>> rules;
};

// A parsed query: a body whose named variables are the result bindings.
struct Query {
  Body body;
  std::vector<std::string> var_names;  // named (non-wildcard) variables in order of appearance
  std::vector<int> var_slots;
  int n_slots = 0;
};

}  // namespace ztslm::policy
