// Private: the built-in function table.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "policy/value.h"

namespace ztslm::policy {

class Clock;

// Per-evaluation state a built-in may use.
struct BuiltinCtx {
  const Clock* clock = nullptr;
  int64_t now_ns = 0;  // fixed for one evaluation (OPA semantics)
  bool have_now = false;
  std::vector<std::string>* print_sink = nullptr;
  size_t* bytes_used = nullptr;  // memory accounting
  size_t max_bytes = 0;
};

// Returns ok with `*out` set (or left undefined for "no result"); an error Status carries
// "eval_type_error: ..." or "eval_builtin_error: ..." in its message.
using BuiltinFn = Status (*)(BuiltinCtx& ctx, const Value* args, size_t n_args, Value* out);

struct Builtin {
  std::string_view name;
  int arity;  // -1: variadic (print)
  BuiltinFn fn;
  bool is_walk = false;   // generator: evaluated by the evaluator itself
  bool is_print = false;  // takes undefined operands
};

// Looks up a built-in by its full dotted name; null when unknown.
const Builtin* find_builtin(std::string_view name);

// Error helpers for built-ins.
Status type_error(std::string_view fn, std::string_view what);
Status builtin_error(std::string_view fn, std::string_view what);

}  // namespace ztslm::policy
