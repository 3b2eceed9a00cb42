#include "policy/internal/eval.h"

#include <algorithm>
#include <ctime>

namespace ztslm::policy {
namespace {

class SystemClock final : public Clock {
 public:
  int64_t now_ns() const override {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  }
};

Status eval_error(std::string_view code, const std::string& what) {
  return Status::failed_precondition("{}: {}", code, what);
}

Status unsafe_var(const Term& t) {
  return Status::malformed("{}:{}: rego_unsafe_var_error: var {} is unsafe", t.loc.line,
                           t.loc.col, t.name);
}

// Sets `path` inside `v` (objects created as needed) to `nv`.
Value set_path(const Value& v, const std::vector<std::string>& path, size_t i, const Value& nv) {
  if (i == path.size()) return nv;
  Entries e = v.is_object() ? v.entries() : Entries();
  const Value key = Value::string(path[i]);
  Value child;
  for (auto& [k, x] : e) {
    if (k == key) child = x;
  }
  Value updated = set_path(child, path, i + 1, nv);
  bool found = false;
  for (auto& [k, x] : e) {
    if (k == key) {
      x = updated;
      found = true;
    }
  }
  if (!found) e.emplace_back(key, updated);
  return Value::object(std::move(e));
}

size_t shallow_bytes(const Value& v) {
  switch (v.kind()) {
    case Kind::kString: return 32 + v.size();
    case Kind::kArray:
    case Kind::kSet: return 32 + v.size() * sizeof(Value);
    case Kind::kObject: return 32 + v.size() * 2 * sizeof(Value);
    default: return 0;
  }
}

// Mutable nested object for partial object rules (keys may nest: p[a][b] := v).
struct MutNode {
  bool is_leaf = false;
  Value leaf;
  std::vector<Value> keys;     // small; linear search, sorted when converted
  std::vector<MutNode> kids;   // kids[i] belongs to keys[i]

  MutNode* child(const Value& k) {
    for (size_t i = 0; i < keys.size(); ++i) {
      if (keys[i] == k) return &kids[i];
    }
    keys.push_back(k);
    kids.emplace_back();
    return &kids.back();
  }
  Value to_value() const {
    if (is_leaf) return leaf;
    Entries e;
    e.reserve(kids.size());
    for (size_t i = 0; i < kids.size(); ++i) e.emplace_back(keys[i], kids[i].to_value());
    return Value::object(std::move(e));
  }
};

}  // namespace

const Clock& system_clock() {
  static const SystemClock* c = new SystemClock();
  return *c;
}

Evaluator::Evaluator(const Policy::Impl& impl, const EvalOptions& opts)
    : impl_(impl), opts_(opts), clock_(opts.clock != nullptr ? opts.clock : &system_clock()) {
  deadline_ns_ = clock_->now_ns() + opts_.limits.max_time_ns;
  input_ = opts_.input;
  cache_.resize(impl_.rule_sets.size());
  in_progress_.resize(impl_.rule_sets.size());
  bctx_.clock = clock_;
  bctx_.print_sink = opts_.print_sink;
  bctx_.bytes_used = &bytes_;
  bctx_.max_bytes = opts_.limits.max_bytes;
}

bool Evaluator::fail(Status s) {
  if (err_.ok()) err_ = std::move(s);
  return false;
}

bool Evaluator::step() {
  if (!err_.ok()) return false;
  ++steps_;
  if (steps_ > opts_.limits.max_steps) {
    return fail(Status::resource_exhausted("policy evaluation exceeded step budget {}",
                                           opts_.limits.max_steps));
  }
  if (steps_ % std::max<uint32_t>(1, opts_.limits.time_check_interval) == 0 &&
      clock_->now_ns() > deadline_ns_) {
    return fail(Status::deadline_exceeded("policy evaluation exceeded time budget {} ms",
                                          opts_.limits.max_time_ns / 1'000'000));
  }
  return true;
}

bool Evaluator::account(size_t bytes) {
  bytes_ += bytes;
  if (bytes_ > opts_.limits.max_bytes) {
    return fail(Status::resource_exhausted("policy evaluation exceeded memory budget {} bytes",
                                           opts_.limits.max_bytes));
  }
  return true;
}

namespace {
struct DepthGuard {
  DepthGuard(size_t* d) : d_(d) { ++*d_; }  // NOLINT
  ~DepthGuard() { --*d_; }
  size_t* d_;
};
}  // namespace

#define ZTSLM_EVAL_DEPTH()                                                                 \
  DepthGuard depth_guard_(&depth_);                                                        \
  if (depth_ > opts_.limits.max_depth)                                                     \
    return fail(Status::resource_exhausted("policy evaluation exceeded nesting depth {}", \
                                           opts_.limits.max_depth))

// ---------------------------------------------------------------------------------------------
// Bodies and expressions

bool Evaluator::eval_body(const Body& b, size_t i, Frame& f, K k) {
  if (i == b.exprs.size()) return k();
  return eval_expr(b.exprs[i], f, [&]() { return eval_body(b, i + 1, f, k); });
}

bool Evaluator::eval_expr(const Expr& e, Frame& f, K k) {
  if (!step()) return false;
  ZTSLM_EVAL_DEPTH();
  if (!e.withs.empty()) return eval_with(e, f, k);
  return eval_expr_core(e, f, k);
}

bool Evaluator::eval_expr_core(const Expr& e, Frame& f, K k) {
  if (e.negated) {
    bool found = false;
    eval_expr_pos(e, f, [&]() {
      found = true;
      return false;
    });
    if (!err_.ok()) return false;
    if (found) return true;
    return k();
  }
  return eval_expr_pos(e, f, k);
}

bool Evaluator::eval_expr_pos(const Expr& e, Frame& f, K k) {
  switch (e.kind) {
    case ExprKind::kTerm: {
      return eval_term(*e.a, f, [&](const Value& v) {
        if (v.is_bool() && !v.as_bool()) return true;
        return k();
      });
    }
    case ExprKind::kUnify:
    case ExprKind::kAssign: return unify(*e.a, *e.b, f, k);
    case ExprKind::kSome: return k();
    case ExprKind::kSomeIn: return eval_some_in(e, f, k);
    case ExprKind::kEvery: return eval_every(e, f, k);
  }
  return true;
}

bool Evaluator::eval_some_in(const Expr& e, Frame& f, K k) {
  return eval_term(*e.domain, f, [&](const Value& dom) {
    const Value d = dom;
    auto visit = [&](const Value& key, const Value& val) {
      if (!step()) return false;
      if (e.key) {
        return unify_value(*e.key, key, f, [&]() { return unify_value(*e.val, val, f, k); });
      }
      return unify_value(*e.val, val, f, k);
    };
    switch (d.kind()) {
      case Kind::kArray: {
        const Array& a = d.as_array();
        for (size_t i = 0; i < a.size(); ++i) {
          if (!visit(Value::integer(static_cast<int64_t>(i)), a[i])) return false;
        }
        return true;
      }
      case Kind::kSet:
        for (const Value& x : d.items()) {
          if (!visit(x, x)) return false;
        }
        return true;
      case Kind::kObject:
        for (const auto& [key, val] : d.entries()) {
          if (!visit(key, val)) return false;
        }
        return true;
      default: return true;
    }
  });
}

bool Evaluator::eval_every(const Expr& e, Frame& f, K k) {
  return eval_term(*e.domain, f, [&](const Value& dom) {
    const Value d = dom;
    if (!d.is_collection()) return true;
    bool all = true;
    auto check = [&](const Value& key, const Value& val) {
      if (!step()) return false;
      if (e.key) f[static_cast<size_t>(e.key->slot)] = key;
      f[static_cast<size_t>(e.val->slot)] = val;
      bool found = false;
      eval_body(*e.body, 0, f, [&]() {
        found = true;
        return false;
      });
      if (e.key) f[static_cast<size_t>(e.key->slot)] = Value();
      f[static_cast<size_t>(e.val->slot)] = Value();
      if (!err_.ok()) return false;
      if (!found) {
        all = false;
        return false;
      }
      return true;
    };
    switch (d.kind()) {
      case Kind::kArray: {
        const Array& a = d.as_array();
        for (size_t i = 0; i < a.size(); ++i) {
          if (!check(Value::integer(static_cast<int64_t>(i)), a[i])) break;
        }
        break;
      }
      case Kind::kSet:
        for (const Value& x : d.items()) {
          if (!check(x, x)) break;
        }
        break;
      default:
        for (const auto& [key, val] : d.entries()) {
          if (!check(key, val)) break;
        }
        break;
    }
    if (!err_.ok()) return false;
    return all ? k() : true;
  });
}

bool Evaluator::eval_with(const Expr& e, Frame& f, K k) {
  // Values are evaluated in the outer context.
  std::vector<Value> vals;
  for (const WithMod& w : e.withs) {
    Value got;
    if (!w.mock_fn.empty()) {
      vals.emplace_back();
      continue;
    }
    eval_term(*w.value, f, [&](const Value& v) {
      got = v;
      return false;
    });
    if (!err_.ok()) return false;
    if (!got.is_defined()) return true;
    vals.push_back(got);
  }
  Value saved_input = input_;
  std::vector<Override> saved_overrides = overrides_;
  std::map<std::string, Mock> saved_mocks = mocks_;
  for (size_t i = 0; i < e.withs.size(); ++i) {
    const WithMod& w = e.withs[i];
    const std::vector<std::string>& p = w.target_path;
    if (p[0] == "input") {
      std::vector<std::string> sub(p.begin() + 1, p.end());
      input_ = set_path(input_, sub, 0, vals[i]);
    } else if (p[0] == "data") {
      overrides_.push_back({std::vector<std::string>(p.begin() + 1, p.end()), vals[i]});
    } else {
      Mock m;
      m.fn = w.mock_fn;
      m.value = vals[i];
      mocks_[p[1]] = m;
    }
  }
  std::vector<CacheEntry> saved_cache(impl_.rule_sets.size());
  saved_cache.swap(cache_);
  Value inner_input = input_;
  std::vector<Override> inner_overrides = overrides_;
  std::map<std::string, Mock> inner_mocks = mocks_;
  const bool r = eval_expr_core(e, f, [&]() {
    // The rest of the body runs in the outer context.
    std::swap(input_, saved_input);
    std::swap(overrides_, saved_overrides);
    std::swap(mocks_, saved_mocks);
    cache_.swap(saved_cache);
    const bool rr = k();
    std::swap(input_, saved_input);
    std::swap(overrides_, saved_overrides);
    std::swap(mocks_, saved_mocks);
    cache_.swap(saved_cache);
    return rr;
  });
  input_ = std::move(saved_input);
  overrides_ = std::move(saved_overrides);
  mocks_ = std::move(saved_mocks);
  cache_.swap(saved_cache);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Terms

bool Evaluator::eval_term(const Term& t, Frame& f, VK k) {
  switch (t.kind) {
    case TermKind::kScalar: return k(t.value);
    case TermKind::kVar: {
      if (t.slot < 0) {
        if (t.name == "input") return input_.is_defined() ? k(input_) : true;
        return eval_data(t, 0, &impl_.root, impl_.data, f, k);
      }
      // The slot stays bound while the continuation runs (only unbound after it returns).
      const Value& v = f[static_cast<size_t>(t.slot)];
      if (!v.is_defined()) return fail(unsafe_var(t));
      return k(v);
    }
    case TermKind::kRef: return eval_ref(t, f, k);
    case TermKind::kArray:
    case TermKind::kSet:
    case TermKind::kObject: {
      std::vector<Value> acc;
      acc.reserve(t.items.size());
      return eval_items(t.items, 0, f, acc, [&]() {
        if (!account(32 + acc.size() * sizeof(Value))) return false;
        if (t.kind == TermKind::kArray) return k(Value::array(acc));
        if (t.kind == TermKind::kSet) return k(Value::set(acc));
        Entries e;
        e.reserve(acc.size() / 2);
        for (size_t i = 0; i + 1 < acc.size(); i += 2) e.emplace_back(acc[i], acc[i + 1]);
        return k(Value::object(std::move(e)));
      });
    }
    case TermKind::kArrayCompr:
    case TermKind::kSetCompr:
    case TermKind::kObjectCompr: return eval_compr(t, f, k);
    case TermKind::kCall: return eval_call(t, f, k);
  }
  return true;
}

bool Evaluator::eval_items(const std::vector<TermPtr>& items, size_t i, Frame& f,
                           std::vector<Value>& acc, K k) {
  return eval_items_to(items, i, items.size(), f, acc, k);
}

bool Evaluator::eval_items_to(const std::vector<TermPtr>& items, size_t i, size_t end, Frame& f,
                              std::vector<Value>& acc, K k) {
  if (i == end) return k();
  const Term& t = *items[i];
  if (t.kind == TermKind::kScalar) {
    acc.push_back(t.value);
    const bool r = eval_items_to(items, i + 1, end, f, acc, k);
    acc.pop_back();
    return r;
  }
  return eval_term(t, f, [&](const Value& v) {
    acc.push_back(v);
    const bool r = eval_items_to(items, i + 1, end, f, acc, k);
    acc.pop_back();
    return r;
  });
}

bool Evaluator::eval_compr(const Term& t, Frame& f, VK k) {
  std::vector<Value> acc;
  Entries entries;
  const bool ok = eval_body(*t.body, 0, f, [&]() {
    if (t.kind == TermKind::kObjectCompr) {
      return eval_term(*t.head, f, [&](const Value& key) {
        return eval_term(*t.head2, f, [&](const Value& val) {
          for (const auto& [ek, ev] : entries) {
            if (ek == key) {
              if (ev == val) return true;
              return fail(eval_error("eval_conflict_error", "object keys must be unique"));
            }
          }
          entries.emplace_back(key, val);
          return account(2 * sizeof(Value) + shallow_bytes(key) / 4);
        });
      });
    }
    return eval_term(*t.head, f, [&](const Value& v) {
      acc.push_back(v);
      return account(sizeof(Value));
    });
  });
  if (!ok) return false;
  switch (t.kind) {
    case TermKind::kArrayCompr: return k(Value::array(std::move(acc)));
    case TermKind::kSetCompr: return k(Value::set(std::move(acc)));
    default: return k(Value::object(std::move(entries)));
  }
}

bool Evaluator::has_unbound(const Term& t, const Frame& f) const {
  switch (t.kind) {
    case TermKind::kVar: return t.slot >= 0 && !f[static_cast<size_t>(t.slot)].is_defined();
    case TermKind::kArray:
    case TermKind::kSet:
    case TermKind::kObject:
      for (const auto& x : t.items) {
        if (has_unbound(*x, f)) return true;
      }
      return false;
    default: return false;
  }
}

bool Evaluator::eval_ref(const Term& t, Frame& f, VK k) {
  const Term& head = *t.items[0];
  if (head.kind == TermKind::kVar && head.slot < 0) {
    if (head.name == "data") {
      if (t.ref_rules != nullptr && overrides_.empty()) {
        Value v;
        if (!eval_rule_set(*t.ref_rules, &v)) return false;
        if (!v.is_defined()) return true;
        return apply_ops(v, t, t.ref_rules_end, f, k);
      }
      // Each walk from the root tracks its own path (used by `with data...` overrides).
      std::vector<std::string> saved;
      saved.swap(data_path_);
      const bool r = eval_data(t, 1, &impl_.root, impl_.data, f, k);
      data_path_.swap(saved);
      return r;
    }
    if (!input_.is_defined()) return true;
    return apply_ops(input_, t, 1, f, k);
  }
  return eval_term(head, f, [&](const Value& hv) { return apply_ops(hv, t, 1, f, k); });
}

bool Evaluator::apply_ops(const Value& value, const Term& t, size_t i, Frame& f, VK k) {
  if (i == t.items.size()) return k(value);
  // `value` lives in a caller's frame for the whole call.
  const Value& v = value;
  const Term& op = *t.items[i];
  if (op.kind == TermKind::kScalar) {
    const Value x = v.index(op.value);
    if (!x.is_defined()) return true;
    return apply_ops(x, t, i + 1, f, k);
  }
  if (has_unbound(op, f)) {
    if (!step()) return false;
    switch (v.kind()) {
      case Kind::kArray: {
        const Array& a = v.as_array();
        for (size_t j = 0; j < a.size(); ++j) {
          if (!step()) return false;
          if (!unify_value(op, Value::integer(static_cast<int64_t>(j)), f,
                           [&]() { return apply_ops(a[j], t, i + 1, f, k); })) {
            return false;
          }
        }
        return true;
      }
      case Kind::kSet:
        for (const Value& x : v.items()) {
          if (!step()) return false;
          if (!unify_value(op, x, f, [&]() { return apply_ops(x, t, i + 1, f, k); })) return false;
        }
        return true;
      case Kind::kObject:
        for (const auto& entry : v.entries()) {
          const Value& key = entry.first;
          const Value& x = entry.second;
          if (!step()) return false;
          if (!unify_value(op, key, f, [&]() { return apply_ops(x, t, i + 1, f, k); })) {
            return false;
          }
        }
        return true;
      default: return true;
    }
  }
  return eval_term(op, f, [&](const Value& key) {
    const Value x = v.index(key);
    if (!x.is_defined()) return true;
    return apply_ops(x, t, i + 1, f, k);
  });
}

const Evaluator::Override* Evaluator::find_override() const {
  for (auto it = overrides_.rbegin(); it != overrides_.rend(); ++it) {
    if (it->path == data_path_) return &*it;
  }
  return nullptr;
}

Value Evaluator::patch_overrides_below(Value v) {
  for (const Override& o : overrides_) {
    if (o.path.size() > data_path_.size() &&
        std::equal(data_path_.begin(), data_path_.end(), o.path.begin())) {
      std::vector<std::string> sub(o.path.begin() + static_cast<std::ptrdiff_t>(data_path_.size()),
                                   o.path.end());
      v = set_path(v, sub, 0, o.value);
    }
  }
  return v;
}

bool Evaluator::eval_data(const Term& t, size_t i, const PathNode* node, const Value& base,
                          Frame& f, VK k) {
  Value b = base;
  if (!overrides_.empty()) {
    if (const Override* o = find_override()) {
      node = nullptr;
      b = o->value;
    }
    if (node == nullptr) b = patch_overrides_below(b);
  }
  if (node == nullptr) {
    if (!b.is_defined()) return true;
    return apply_ops(b, t, i, f, k);
  }
  if (node->rules != nullptr) {
    Value v;
    if (!rule_node_value(node, &v)) return false;
    if (!overrides_.empty()) v = patch_overrides_below(v);
    if (!v.is_defined()) return true;
    return apply_ops(v, t, i, f, k);
  }
  const size_t n = t.kind == TermKind::kRef ? t.items.size() : 0;
  if (i >= n) {
    Value m;
    if (!materialize(node, b, &m)) return false;
    if (!overrides_.empty()) m = patch_overrides_below(m);
    return k(m);
  }
  const Term& op = *t.items[i];
  auto step_into = [&](const Value& key) {
    if (!key.is_string()) {
      const Value x = b.index(key);
      if (!x.is_defined()) return true;
      return apply_ops(x, t, i + 1, f, k);
    }
    auto it = node->children.find(key.as_string());
    const PathNode* child = it == node->children.end() ? nullptr : it->second.get();
    if (child != nullptr && !child->has_non_function && child->rules == nullptr) child = nullptr;
    const bool track = !overrides_.empty();
    if (track) data_path_.push_back(key.as_string());
    const bool r = eval_data(t, i + 1, child, b.get(key), f, k);
    if (track) data_path_.pop_back();
    return r;
  };
  if (op.kind == TermKind::kScalar) return step_into(op.value);
  if (has_unbound(op, f)) {
    std::vector<std::string> keys;
    for (const auto& [name, c] : node->children) {
      if (c->has_non_function || (c->rules != nullptr && c->rules->kind != RuleKind::kFunction)) {
        keys.push_back(name);
      }
    }
    for (const auto& [key, x] : b.entries()) {
      if (key.is_string()) keys.push_back(key.as_string());
    }
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    for (const std::string& key : keys) {
      if (!step()) return false;
      const Value kv = Value::string(key);
      if (!unify_value(op, kv, f, [&]() {
            // A rule that is undefined is not a key of the document.
            return step_into(kv);
          })) {
        return false;
      }
    }
    return true;
  }
  return eval_term(op, f, step_into);
}

bool Evaluator::rule_node_value(const PathNode* node, Value* out) {
  Value v;
  if (!eval_rule_set(*node->rules, &v)) return false;
  if (!node->children.empty() && v.is_object()) {
    // Ref-head rules below a partial object (`c[x] := ...` and `c["k"] := ...`) merge.
    Value below;
    if (!materialize(node, Value(), &below)) return false;
    Entries e = v.entries();
    for (const auto& [k, x] : below.entries()) {
      const Value have = v.get(k);
      if (have.is_defined() && !(have == x)) {
        return fail(eval_error("eval_conflict_error", "object keys must be unique"));
      }
      if (!have.is_defined()) e.emplace_back(k, x);
    }
    v = Value::object(std::move(e));
  }
  *out = v;
  return true;
}

bool Evaluator::materialize(const PathNode* node, const Value& base, Value* out) {
  ZTSLM_EVAL_DEPTH();
  Entries e = base.is_object() ? base.entries() : Entries();
  for (const auto& [name, c] : node->children) {
    Value cv;
    const bool track = !overrides_.empty();
    if (track) data_path_.push_back(name);
    bool ok = true;
    if (c->rules != nullptr) {
      if (c->rules->kind != RuleKind::kFunction) ok = rule_node_value(c.get(), &cv);
    } else if (c->has_non_function) {
      ok = materialize(c.get(), base.get(name), &cv);
    }
    if (track) data_path_.pop_back();
    if (!ok) return false;
    if (!cv.is_defined()) continue;
    const Value key = Value::string(name);
    bool replaced = false;
    for (auto& [k, v] : e) {
      if (k == key) {
        v = cv;
        replaced = true;
      }
    }
    if (!replaced) e.emplace_back(key, cv);
  }
  if (!account(32 + e.size() * 2 * sizeof(Value))) return false;
  *out = Value::object(std::move(e));
  return true;
}

// ---------------------------------------------------------------------------------------------
// Calls

bool Evaluator::eval_call(const Term& t, Frame& f, VK k) {
  if (!step()) return false;
  size_t arity = t.items.size();
  const RuleSet* rs = nullptr;
  if (t.builtin != nullptr) {
    if (t.builtin->arity >= 0) arity = static_cast<size_t>(t.builtin->arity);
  } else {
    rs = t.ref_rules != nullptr ? t.ref_rules : find_rule_set(impl_, t.func_path);
    if (rs == nullptr) return fail(eval_error("eval_type_error", "undefined function " + t.name));
    arity = rs->arity;
  }
  const bool has_out = t.items.size() == arity + 1;
  if (t.builtin != nullptr && t.builtin->is_print) {
    std::vector<Value> args;
    for (const TermPtr& a : t.items) {
      Value got;
      if (!eval_term(*a, f, [&](const Value& v) {
            got = v;
            return false;
          }) &&
          !err_.ok()) {
        return false;
      }
      args.push_back(got);
    }
    return call_named(t.name, t.builtin, rs, args, t, k);
  }
  // Argument vectors are recycled across calls (no allocation per call once warm).
  std::vector<Value> args;
  if (!arg_pool_.empty()) {
    args.swap(arg_pool_.back());
    arg_pool_.pop_back();
  }
  args.reserve(t.items.size());
  const bool r = eval_items_to(t.items, 0, arity, f, args, [&]() {
    if (!has_out) return call_named(t.name, t.builtin, rs, args, t, k);
    return call_named(t.name, t.builtin, rs, args, t, [&](const Value& out) {
      return unify_value(*t.items.back(), out, f, [&]() { return k(Value::boolean(true)); });
    });
  });
  args.clear();
  arg_pool_.push_back(std::move(args));
  return r;
}

bool Evaluator::call_named(const std::string& name, const Builtin* builtin, const RuleSet* rs,
                           const std::vector<Value>& args, const Term& at, VK k) {
  if (!mocks_.empty()) {
    auto it = mocks_.find(name);
    if (it != mocks_.end()) {
      const Mock m = it->second;
      if (m.fn.empty()) return k(m.value);
      // Replacement function: avoid re-applying the same mock.
      std::map<std::string, Mock> saved = mocks_;
      mocks_.erase(m.fn == name ? name : std::string());
      const Builtin* b2 = find_builtin(m.fn);
      const RuleSet* r2 = nullptr;
      if (b2 == nullptr) {
        std::vector<std::string> p;
        std::string_view s = m.fn;
        if (s.rfind("data.", 0) == 0) s.remove_prefix(5);
        size_t start = 0;
        for (size_t i = 0; i <= s.size(); ++i) {
          if (i == s.size() || s[i] == '.') {
            p.emplace_back(s.substr(start, i - start));
            start = i + 1;
          }
        }
        r2 = find_rule_set(impl_, p);
        if (r2 == nullptr) {
          mocks_ = std::move(saved);
          return fail(eval_error("eval_type_error", "undefined function " + m.fn));
        }
      }
      const bool r = call_named(m.fn, b2, r2, args, at, k);
      mocks_ = std::move(saved);
      return r;
    }
  }
  if (builtin != nullptr) return call_builtin(*builtin, args, k);
  Value out;
  if (!call_function(*rs, args, &out)) return false;
  if (!out.is_defined()) return true;
  return k(out);
}

bool Evaluator::call_builtin(const Builtin& b, const std::vector<Value>& args, VK k) {
  if (b.arity >= 0 && args.size() != static_cast<size_t>(b.arity)) {
    return fail(eval_error("rego_type_error", std::string(b.name) + ": arity mismatch"));
  }
  if (b.is_walk) {
    // walk(x) yields [path, value] for every node of x, pre-order.
    struct Walker {
      Evaluator* ev;
      VK* k;
      bool run(const Value& v, Array& path) {
        if (!ev->step()) return false;
        if (!(*k)(Value::array({Value::array(path), v}))) return false;
        switch (v.kind()) {
          case Kind::kArray:
            for (size_t i = 0; i < v.as_array().size(); ++i) {
              path.push_back(Value::integer(static_cast<int64_t>(i)));
              const bool r = run(v.as_array()[i], path);
              path.pop_back();
              if (!r) return false;
            }
            return true;
          case Kind::kSet:
            for (const Value& x : v.items()) {
              path.push_back(x);
              const bool r = run(x, path);
              path.pop_back();
              if (!r) return false;
            }
            return true;
          case Kind::kObject:
            for (const auto& [key, x] : v.entries()) {
              path.push_back(key);
              const bool r = run(x, path);
              path.pop_back();
              if (!r) return false;
            }
            return true;
          default: return true;
        }
      }
    };
    Array path;
    Walker w{this, &k};
    return w.run(args[0], path);
  }
  Value out;
  Status s = b.fn(bctx_, args.data(), args.size(), &out);
  if (!s.ok()) {
    if (s.code() == StatusCode::kResourceExhausted) return fail(s);
    if (opts_.strict_builtin_errors ||
        s.message().rfind("eval_conflict_error", 0) == 0) {
      return fail(Status(StatusCode::kFailedPrecondition, s.message()));
    }
    return true;
  }
  if (!out.is_defined()) return true;
  if (!account(shallow_bytes(out))) return false;
  return k(out);
}

bool Evaluator::call_function(const RuleSet& rs, const std::vector<Value>& args, Value* out) {
  ZTSLM_EVAL_DEPTH();
  if (in_progress_[rs.index]) {
    return fail(Status::malformed("rego_recursion_error: rule {} is recursive", rs.path_text));
  }
  in_progress_[rs.index] = true;
  Value result;
  bool have = false;
  auto collect = [&](const Value& v) {
    if (!have) {
      result = v;
      have = true;
      return true;
    }
    if (result == v) return true;
    return fail(eval_error("eval_conflict_error",
                           "functions must not produce multiple outputs for same inputs"));
  };
  bool ok = true;
  for (const auto& rp : rs.rules) {
    const Rule& r = *rp;
    Frame fr(static_cast<size_t>(r.n_slots));
    ok = unify_args(r.args, args, 0, fr, [&]() { return eval_branches(r, fr, collect); });
    if (!ok) break;
  }
  if (ok && !have && rs.default_rule) {
    const Rule& r = *rs.default_rule;
    Frame fr(static_cast<size_t>(r.n_slots));
    ok = unify_args(r.args, args, 0, fr, [&]() { return eval_head(r, fr, collect); });
  }
  in_progress_[rs.index] = false;
  if (!ok && !err_.ok()) return false;
  *out = have ? result : Value();
  return true;
}

// ---------------------------------------------------------------------------------------------
// Unification

bool Evaluator::unify(const Term& a, const Term& b, Frame& f, K k) {
  const bool a_var = a.kind == TermKind::kVar && a.slot >= 0 && !f[static_cast<size_t>(a.slot)].is_defined();
  const bool b_var = b.kind == TermKind::kVar && b.slot >= 0 && !f[static_cast<size_t>(b.slot)].is_defined();
  if (a_var && b_var) return fail(unsafe_var(a));
  if (a_var) return eval_term(b, f, [&](const Value& v) { return unify_value(a, v, f, k); });
  if (b_var) return eval_term(a, f, [&](const Value& v) { return unify_value(b, v, f, k); });
  if (a.kind == TermKind::kArray && b.kind == TermKind::kArray) {
    if (a.items.size() != b.items.size()) return true;
    // Pairwise, left to right.
    struct Pairwise {
      Evaluator* ev;
      const Term& a;
      const Term& b;
      Frame& f;
      K k;
      bool run(size_t i) {
        if (i == a.items.size()) return k();
        return ev->unify(*a.items[i], *b.items[i], f, [&]() { return run(i + 1); });
      }
    };
    Pairwise p{this, a, b, f, k};
    return p.run(0);
  }
  const bool a_pat = has_unbound(a, f);
  const bool b_pat = has_unbound(b, f);
  if (a_pat && !b_pat) return eval_term(b, f, [&](const Value& v) { return unify_value(a, v, f, k); });
  if (b_pat) return eval_term(a, f, [&](const Value& v) { return unify_value(b, v, f, k); });
  return eval_term(a, f, [&](const Value& va) {
    const Value x = va;
    return eval_term(b, f, [&](const Value& vb) {
      if (x == vb) return k();
      return true;
    });
  });
}

bool Evaluator::unify_args(const std::vector<TermPtr>& pats, const std::vector<Value>& vals,
                           size_t i, Frame& f, K k) {
  if (i == pats.size()) return k();
  return unify_value(*pats[i], vals[i], f, [&]() { return unify_args(pats, vals, i + 1, f, k); });
}

bool Evaluator::unify_items(const std::vector<TermPtr>& pats, const Array& vals, size_t i,
                            Frame& f, K k) {
  if (i == pats.size()) return k();
  return unify_value(*pats[i], vals[i], f, [&]() { return unify_items(pats, vals, i + 1, f, k); });
}

bool Evaluator::unify_value(const Term& pat, const Value& v, Frame& f, K k) {
  switch (pat.kind) {
    case TermKind::kVar: {
      if (pat.slot < 0) {
        return eval_term(pat, f, [&](const Value& x) { return x == v ? k() : true; });
      }
      Value& slot = f[static_cast<size_t>(pat.slot)];
      if (slot.is_defined()) return slot == v ? k() : true;
      slot = v;
      const bool r = k();
      f[static_cast<size_t>(pat.slot)] = Value();
      return r;
    }
    case TermKind::kArray: {
      if (!has_unbound(pat, f)) break;
      if (!v.is_array() || v.size() != pat.items.size()) return true;
      const Value keep = v;
      return unify_items(pat.items, keep.as_array(), 0, f, k);
    }
    case TermKind::kObject: {
      if (!has_unbound(pat, f)) break;
      if (!v.is_object() || v.size() * 2 != pat.items.size()) return true;
      const Value keep = v;
      // Keys must be ground; match values.
      struct ObjUnify {
        Evaluator* ev;
        const Term& pat;
        const Value& v;
        Frame& f;
        K k;
        bool run(size_t i) {
          if (i >= pat.items.size()) return k();
          return ev->eval_term(*pat.items[i], f, [&](const Value& key) {
            const Value x = v.get(key);
            if (!x.is_defined()) return true;
            return ev->unify_value(*pat.items[i + 1], x, f, [&]() { return run(i + 2); });
          });
        }
      };
      ObjUnify u{this, pat, keep, f, k};
      return u.run(0);
    }
    default: break;
  }
  const Value keep = v;
  return eval_term(pat, f, [&](const Value& x) { return x == keep ? k() : true; });
}

// ---------------------------------------------------------------------------------------------
// Rules

bool Evaluator::eval_head(const Rule& r, Frame& fr, VK k) {
  if (!r.value) return k(Value::boolean(true));
  return eval_term(*r.value, fr, k);
}

namespace {
// A head whose value cannot depend on the body's bindings: one solution is enough.
bool constant_head(const Rule& r) {
  if (r.value && r.value->kind != TermKind::kScalar) return false;
  for (const auto& k : r.keys) {
    if (k->kind != TermKind::kScalar) return false;
  }
  return true;
}
}  // namespace

bool Evaluator::eval_branches(const Rule& r, Frame& fr, VK k) {
  bool any = false;
  bool stopped_early = false;
  auto on_value = [&](const Value& v) {
    any = true;
    if (!k(v)) return false;
    // Early exit: a constant head has produced its value; further solutions add nothing.
    if (constant_head(r)) {
      stopped_early = true;
      return false;
    }
    return true;
  };
  if (!eval_body(r.body, 0, fr, [&]() { return eval_head(r, fr, on_value); }) &&
      !(stopped_early && err_.ok())) {
    return false;
  }
  if (any) return true;
  for (const auto& e : r.else_chain) {
    auto on_else = [&](const Value& v) {
      any = true;
      if (!k(v)) return false;
      if (constant_head(*e)) {
        stopped_early = true;
        return false;
      }
      return true;
    };
    if (!eval_body(e->body, 0, fr, [&]() { return eval_head(*e, fr, on_else); }) &&
        !(stopped_early && err_.ok())) {
      return false;
    }
    if (any) return true;
  }
  return true;
}

bool Evaluator::eval_rule_set(const RuleSet& rs, Value* out) {
  if (rs.kind == RuleKind::kFunction) {
    *out = Value();
    return true;
  }
  if (rs.has_const && overrides_.empty() && mocks_.empty()) {
    *out = rs.const_value;
    return true;
  }
  CacheEntry& ce = cache_[rs.index];
  if (ce.done) {
    *out = ce.value;
    return true;
  }
  ZTSLM_EVAL_DEPTH();
  if (in_progress_[rs.index]) {
    return fail(Status::malformed("rego_recursion_error: rule {} is recursive", rs.path_text));
  }
  in_progress_[rs.index] = true;
  // Rules evaluate in the data context of their own package, not the caller's path.
  std::vector<std::string> saved_path;
  saved_path.swap(data_path_);
  Value result;
  bool ok = true;
  switch (rs.kind) {
    case RuleKind::kComplete: {
      bool have = false;
      auto collect = [&](const Value& v) {
        if (!have) {
          result = v;
          have = true;
          return true;
        }
        if (result == v) return true;
        return fail(eval_error("eval_conflict_error",
                               "complete rules must not produce multiple outputs (rule " +
                                   rs.path_text + " produced conflicting values)"));
      };
      for (const auto& rp : rs.rules) {
        Frame fr(static_cast<size_t>(rp->n_slots));
        if (!eval_branches(*rp, fr, collect)) {
          ok = false;
          break;
        }
      }
      if (ok && !have && rs.default_rule) {
        Frame fr(static_cast<size_t>(rs.default_rule->n_slots));
        ok = eval_head(*rs.default_rule, fr, collect);
      }
      break;
    }
    case RuleKind::kPartialSet: {
      SetItems items;
      for (const auto& rp : rs.rules) {
        const Rule& r = *rp;
        Frame fr(static_cast<size_t>(r.n_slots));
        bool early = false;
        if (!eval_body(r.body, 0, fr, [&]() {
              return eval_term(*r.keys[0], fr, [&](const Value& v) {
                items.push_back(v);
                if (!account(sizeof(Value))) return false;
                if (r.keys[0]->kind == TermKind::kScalar) {
                  early = true;
                  return false;
                }
                return true;
              });
            }) &&
            !(early && err_.ok())) {
          ok = false;
          break;
        }
      }
      result = Value::set(std::move(items));
      break;
    }
    case RuleKind::kPartialObject: {
      MutNode root;
      for (const auto& rp : rs.rules) {
        const Rule& r = *rp;
        Frame fr(static_cast<size_t>(r.n_slots));
        std::vector<Value> keys;
        bool early = false;
        if (!eval_body(r.body, 0, fr, [&]() {
              return eval_items(r.keys, 0, fr, keys, [&]() {
                return eval_head(r, fr, [&](const Value& v) {
                  MutNode* n = &root;
                  for (size_t i = 0; i < keys.size(); ++i) {
                    if (n->is_leaf) {
                      return fail(eval_error("eval_conflict_error", "object keys must be unique"));
                    }
                    n = n->child(keys[i]);
                  }
                  if (n->is_leaf) {
                    if (n->leaf == v) return true;
                    return fail(eval_error("eval_conflict_error", "object keys must be unique"));
                  }
                  if (!n->kids.empty()) {
                    return fail(eval_error("eval_conflict_error", "object keys must be unique"));
                  }
                  n->is_leaf = true;
                  n->leaf = v;
                  if (!account(3 * sizeof(Value))) return false;
                  if (constant_head(r)) {
                    early = true;
                    return false;
                  }
                  return true;
                });
              });
            }) &&
            !(early && err_.ok())) {
          ok = false;
          break;
        }
      }
      if (ok) result = root.to_value();
      break;
    }
    case RuleKind::kFunction: break;
  }
  data_path_.swap(saved_path);
  in_progress_[rs.index] = false;
  if (!ok && !err_.ok()) return false;
  CacheEntry& ce2 = cache_[rs.index];
  ce2.done = true;
  ce2.value = result;
  *out = result;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Entry points

Status Evaluator::finish_status() { return err_; }

Result<std::vector<Bindings>> Evaluator::run_query(const Query& q) {
  Frame fr(static_cast<size_t>(q.n_slots));
  std::vector<Bindings> rows;
  eval_body(q.body, 0, fr, [&]() {
    Bindings row;
    for (size_t i = 0; i < q.var_names.size(); ++i) {
      const Value& v = fr[static_cast<size_t>(q.var_slots[i])];
      if (v.is_defined()) row.emplace_back(q.var_names[i], v);
    }
    rows.push_back(std::move(row));
    return account(sizeof(Bindings) + 64);
  });
  if (!err_.ok()) return err_;
  return rows;
}

Result<Value> Evaluator::eval_path(const std::vector<std::string>& path) {
  if (overrides_.empty()) {
    // Direct hit on a rule set with nothing below it: no tree walk.
    const PathNode* n = &impl_.root;
    for (const std::string& p : path) {
      auto it = n->children.find(p);
      if (it == n->children.end()) {
        n = nullptr;
        break;
      }
      n = it->second.get();
    }
    if (n != nullptr && n->rules != nullptr && n->children.empty() &&
        n->rules->kind != RuleKind::kFunction) {
      Value v;
      if (!eval_rule_set(*n->rules, &v)) return err_;
      return v;
    }
  }
  auto ref = std::make_shared<Term>();
  ref->kind = TermKind::kRef;
  auto root = std::make_shared<Term>();
  root->kind = TermKind::kVar;
  root->name = "data";
  ref->items.push_back(root);
  for (const std::string& p : path) {
    auto s = std::make_shared<Term>();
    s->value = Value::string(p);
    ref->items.push_back(s);
  }
  Frame fr;
  Value out;
  eval_data(*ref, 1, &impl_.root, impl_.data, fr, [&](const Value& v) {
    out = v;
    return false;
  });
  if (!err_.ok()) return err_;
  return out;
}

Result<Value> Evaluator::eval_closed_term(const Term& t, int n_slots) {
  Frame fr(static_cast<size_t>(n_slots));
  Value out;
  eval_term(t, fr, [&](const Value& v) {
    out = v;
    return false;
  });
  if (!err_.ok()) return err_;
  return out;
}

}  // namespace ztslm::policy
