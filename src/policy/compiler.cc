// Name resolution and variable slots for compiled policies (see internal/compiled.h).
#include <algorithm>
#include <map>
#include <set>

#include "policy/internal/builtins.h"
#include "policy/internal/compiled.h"

namespace ztslm::policy {
namespace {

std::string join_path(const std::vector<std::string>& p) {
  std::string s = "data";
  for (const std::string& x : p) s += "." + x;
  return s;
}

Status compile_error(const std::string& file, Location loc, std::string_view code,
                     const std::string& what) {
  return Status::malformed("{}:{}:{}: {}: {}", file, loc.line, loc.col, code, what);
}

struct Scope {
  std::map<std::string, int> vars;
  std::set<std::string> assigned;  // declared with := or some in this scope
  std::set<std::string> args;      // function parameters (may not be re-assigned)
  Scope* parent = nullptr;
};

class Resolver {
 public:
  Resolver(const Policy::Impl& impl, const Module* mod, std::string file)
      : impl_(impl), mod_(mod), file_(std::move(file)) {
    if (mod_ != nullptr) {
      for (const Import& imp : mod_->imports) imports_[imp.alias] = imp.path;
    }
  }

  Status resolve_rule(Rule& r) {
    n_slots_ = 0;
    Scope args_scope;
    for (TermPtr& a : r.args) {
      std::vector<std::string> names;
      collect_pattern_vars(*a, &names);
      for (const std::string& n : names) declare(&args_scope, n);
    }
    for (TermPtr& a : r.args) {
      ZTSLM_TRY(resolve_term(a, &args_scope));
    }
    ZTSLM_TRY(resolve_branch(r, &args_scope));
    for (auto& e : r.else_chain) {
      ZTSLM_TRY(resolve_branch(*e, &args_scope));
    }
    std::set<int> args_bound;
    for (const auto& [name, slot] : args_scope.vars) args_bound.insert(slot);
    reorder_body(r.body, args_bound);
    for (auto& e : r.else_chain) reorder_body(e->body, args_bound);
    r.n_slots = n_slots_;
    for (auto& e : r.else_chain) e->n_slots = n_slots_;
    return Status();
  }

  Status resolve_query(Query& q) {
    n_slots_ = 0;
    Scope top;
    query_names_ = &q.var_names;
    query_slots_ = &q.var_slots;
    ZTSLM_TRY(resolve_body(q.body, &top));
    q.n_slots = n_slots_;
    reorder_body(q.body, {});
    return Status();
  }

 private:
  Status resolve_branch(Rule& r, Scope* args_scope) {
    Scope body_scope;
    body_scope.parent = args_scope;
    for (const auto& [name, slot] : args_scope->vars) body_scope.args.insert(name);
    // Head variables that the body does not bind are still body-scope variables.
    ZTSLM_TRY(resolve_body(r.body, &body_scope));
    for (TermPtr& k : r.keys) ZTSLM_TRY(resolve_term(k, &body_scope));
    if (r.value) ZTSLM_TRY(resolve_term(r.value, &body_scope));
    return Status();
  }

  int declare(Scope* s, const std::string& name) {
    auto it = s->vars.find(name);
    if (it != s->vars.end()) return it->second;
    const int slot = n_slots_++;
    s->vars[name] = slot;
    if (query_names_ != nullptr && s->parent == nullptr && name.rfind("__", 0) != 0) {
      query_names_->push_back(name);
      query_slots_->push_back(slot);
    }
    return slot;
  }
  static int lookup(const Scope* s, const std::string& name) {
    for (; s != nullptr; s = s->parent) {
      auto it = s->vars.find(name);
      if (it != s->vars.end()) return it->second;
    }
    return -1;
  }
  bool is_global(const std::string& name) const {
    if (name == "data" || name == "input") return true;
    if (imports_.count(name) != 0) return true;
    return mod_ != nullptr && rule_name_in_package(name);
  }
  bool rule_name_in_package(const std::string& name) const {
    const PathNode* n = &impl_.root;
    for (const std::string& p : mod_->package) {
      auto it = n->children.find(p);
      if (it == n->children.end()) return false;
      n = it->second.get();
    }
    return n->children.count(name) != 0;
  }

  static void collect_pattern_vars(const Term& t, std::vector<std::string>* out) {
    switch (t.kind) {
      case TermKind::kVar:
        if (!t.is_wildcard) out->push_back(t.name);
        break;
      case TermKind::kArray:
      case TermKind::kSet:
        for (const auto& x : t.items) collect_pattern_vars(*x, out);
        break;
      case TermKind::kObject:
        for (size_t i = 1; i < t.items.size(); i += 2) collect_pattern_vars(*t.items[i], out);
        break;
      default: break;
    }
  }

  // Names appearing as plain variables in `t` outside closures (comprehensions).
  void collect_free_vars(const Term& t, std::vector<std::string>* out) {
    switch (t.kind) {
      case TermKind::kVar:
        if (!t.is_wildcard) out->push_back(t.name);
        break;
      case TermKind::kRef:
      case TermKind::kArray:
      case TermKind::kSet:
      case TermKind::kObject:
      case TermKind::kCall:
        for (const auto& x : t.items) collect_free_vars(*x, out);
        break;
      default: break;
    }
  }

  // True when `name` occurs as a variable in an expression of `body` before `e`.
  static bool used_before(const Body& body, const Expr* e, const std::string& name) {
    for (const Expr& x : body.exprs) {
      if (&x == e) return false;
      std::vector<std::string> names;
      if (x.a) collect_pattern_vars(*x.a, &names);
      if (x.b) collect_pattern_vars(*x.b, &names);
      if (std::find(names.begin(), names.end(), name) != names.end()) return true;
    }
    return false;
  }

  // Unifying literals of different shapes can never succeed: OPA's type checker rejects it.
  static Status check_match(const std::string& file, const Expr& e) {
    const Term& a = *e.a;
    const Term& b = *e.b;
    const bool a_coll = a.kind == TermKind::kArray || a.kind == TermKind::kObject;
    const bool b_coll = b.kind == TermKind::kArray || b.kind == TermKind::kObject;
    if (!a_coll || !b_coll) return Status();
    if (a.kind != b.kind || a.items.size() != b.items.size()) {
      return compile_error(file, e.loc, "rego_type_error",
                           "match error: incompatible destructuring patterns (mismatch in number of "
                           "array elements or object keys)");
    }
    if (a.kind == TermKind::kObject) {
      std::set<std::string> ka, kb;
      for (size_t i = 0; i < a.items.size(); i += 2) {
        if (a.items[i]->kind == TermKind::kScalar) ka.insert(to_rego(a.items[i]->value));
        if (b.items[i]->kind == TermKind::kScalar) kb.insert(to_rego(b.items[i]->value));
      }
      if (ka.size() * 2 == a.items.size() && kb.size() * 2 == b.items.size() && ka != kb) {
        return compile_error(file, e.loc, "rego_type_error", "match error: object keys mismatch");
      }
    }
    return Status();
  }

  // Pre-pass: variables of this body (declared or first used here) get slots in `scope` so
  // that closures nested anywhere in the body see them.
  Status predeclare(Body& body, Scope* scope) {
    for (Expr& e : body.exprs) {
      std::vector<std::string> names;
      if (e.kind == ExprKind::kAssign) {
        collect_pattern_vars(*e.a, &names);
        if (names.empty() && e.a->kind != TermKind::kVar) {
          return compile_error(file_, e.loc, "rego_compile_error",
                               "cannot assign to " + std::string(e.a->kind == TermKind::kRef
                                                                     ? "ref"
                                                                     : "non-variable"));
        }
        for (const std::string& n : names) {
          if ((n == "input" || n == "data") && (mod_ == nullptr || mod_->v1)) {
            return compile_error(file_, e.loc, "rego_compile_error",
                                 "variables must not shadow " + n + " (use a different variable name)");
          }
          if (scope->assigned.count(n) != 0 || scope->args.count(n) != 0) {
            return compile_error(file_, e.loc, "rego_compile_error", "var " + n + " assigned above");
          }
          scope->assigned.insert(n);
          declare(scope, n);
        }
        names.clear();
        collect_free_vars(*e.b, &names);
      } else if (e.kind == ExprKind::kSome) {
        for (const TermPtr& v : e.some_vars) {
          if (scope->assigned.count(v->name) != 0) {
            return compile_error(file_, e.loc, "rego_compile_error",
                                 "var " + v->name + " assigned above");
          }
          scope->assigned.insert(v->name);
          declare(scope, v->name);
        }
        continue;
      } else if (e.kind == ExprKind::kSomeIn) {
        if (e.val->kind == TermKind::kArray && e.domain->kind == TermKind::kArray) {
          for (const auto& x : e.domain->items) {
            if (x->kind == TermKind::kArray && x->items.size() != e.val->items.size()) {
              return compile_error(file_, e.loc, "rego_type_error",
                                   "match error: mismatch in number of array elements");
            }
          }
        }
        std::vector<std::string> decl;
        if (e.key) collect_pattern_vars(*e.key, &decl);
        collect_pattern_vars(*e.val, &decl);
        for (const std::string& n : decl) {
          if (scope->assigned.count(n) != 0 || scope->args.count(n) != 0 ||
              (scope->vars.count(n) != 0 && used_before(body, &e, n))) {
            return compile_error(file_, e.loc, "rego_compile_error",
                                 "var " + n + " used before definition below");
          }
          scope->assigned.insert(n);
          declare(scope, n);
        }
        collect_free_vars(*e.domain, &names);
      } else if (e.kind == ExprKind::kEvery) {
        collect_free_vars(*e.domain, &names);
      } else {
        if (e.a) collect_free_vars(*e.a, &names);
        if (e.b) collect_free_vars(*e.b, &names);
      }
      for (const std::string& n : names) {
        if (lookup(scope, n) >= 0 || is_global(n)) continue;
        declare(scope, n);
      }
    }
    return Status();
  }

  Status resolve_body(Body& body, Scope* scope) {
    ZTSLM_TRY(predeclare(body, scope));
    for (Expr& e : body.exprs) ZTSLM_TRY(resolve_expr(e, scope));
    return Status();
  }

  Status resolve_expr(Expr& e, Scope* scope) {
    switch (e.kind) {
      case ExprKind::kTerm:
        expr_call_ = e.a.get();
        ZTSLM_TRY(resolve_term(e.a, scope));
        break;
      case ExprKind::kUnify:
      case ExprKind::kAssign:
        ZTSLM_TRY(check_match(file_, e));
        ZTSLM_TRY(resolve_term(e.a, scope));
        ZTSLM_TRY(resolve_term(e.b, scope));
        if (e.kind == ExprKind::kAssign && e.a->kind != TermKind::kVar &&
            e.a->kind != TermKind::kArray && e.a->kind != TermKind::kObject) {
          return compile_error(file_, e.loc, "rego_compile_error",
                               "cannot assign to " + std::string(e.a->kind == TermKind::kRef
                                                                     ? "ref"
                                                                     : "non-variable"));
        }
        break;
      case ExprKind::kSome:
        for (TermPtr& v : e.some_vars) ZTSLM_TRY(resolve_term(v, scope));
        break;
      case ExprKind::kSomeIn:
        ZTSLM_TRY(resolve_term(e.domain, scope));
        if (e.key) ZTSLM_TRY(resolve_term(e.key, scope));
        ZTSLM_TRY(resolve_term(e.val, scope));
        break;
      case ExprKind::kEvery: {
        ZTSLM_TRY(resolve_term(e.domain, scope));
        e.slot_begin = n_slots_;
        auto* vs = new Scope();
        owned_scopes_.emplace_back(vs);
        vs->parent = scope;
        if (e.key) {
          vs->assigned.insert(e.key->name);
          declare(vs, e.key->name);
          ZTSLM_TRY(resolve_term(e.key, vs));
        }
        vs->assigned.insert(e.val->name);
        declare(vs, e.val->name);
        ZTSLM_TRY(resolve_term(e.val, vs));
        auto* bs = new Scope();
        owned_scopes_.emplace_back(bs);
        bs->parent = vs;
        ZTSLM_TRY(resolve_body(*e.body, bs));
        e.slot_end = n_slots_;
        {
          std::set<int> bound = outside_range(e.slot_begin, e.slot_end);
          if (e.key) bound.insert(e.key->slot);
          bound.insert(e.val->slot);
          reorder_body(*e.body, bound);
        }
        break;
      }
    }
    for (WithMod& w : e.withs) {
      ZTSLM_TRY(resolve_with(w, e.loc, scope));
    }
    return Status();
  }

  Status resolve_with(WithMod& w, Location loc, Scope* scope) {
    ZTSLM_TRY(resolve_target(w, loc, scope));
    if (w.target_path.size() == 2 && w.target_path[0] == "fn") {
      // A function replaced by a function (built-in or user) or by a value.
      const Term& v = *w.value;
      if (v.kind == TermKind::kVar && lookup(scope, v.name) < 0 && !is_global(v.name) &&
          find_builtin(v.name) != nullptr) {
        w.mock_fn = v.name;
        return Status();
      }
      if (v.kind == TermKind::kRef && v.items[0]->kind == TermKind::kVar &&
          lookup(scope, v.items[0]->name) < 0 && !is_global(v.items[0]->name)) {
        std::string name = v.items[0]->name;
        bool ok = true;
        for (size_t i = 1; i < v.items.size(); ++i) {
          if (v.items[i]->kind != TermKind::kScalar || !v.items[i]->value.is_string()) ok = false;
          else name += "." + v.items[i]->value.as_string();
        }
        if (ok && find_builtin(name) != nullptr) {
          w.mock_fn = name;
          return Status();
        }
      }
    }
    ZTSLM_TRY(resolve_term(w.value, scope));
    const Term& v = *w.value;
    if (w.target_path.size() == 2 && w.target_path[0] == "fn" && v.kind == TermKind::kRef &&
        v.ground_ref && v.items[0]->name == "data") {
      std::vector<std::string> p;
      for (size_t i = 1; i < v.items.size(); ++i) p.push_back(v.items[i]->value.as_string());
      const RuleSet* rs = find_rule_set(impl_, p);
      if (rs != nullptr && rs->kind == RuleKind::kFunction) w.mock_fn = rs->path_text;
    }
    return Status();
  }

  Status resolve_target(WithMod& w, Location loc, Scope* scope) {
    // Target: input..., data..., or a function name.
    std::vector<std::string> names;
    const Term* t = w.target.get();
    std::vector<std::string> parts;
    if (t->kind == TermKind::kVar) {
      parts.push_back(t->name);
    } else if (t->kind == TermKind::kRef && t->items[0]->kind == TermKind::kVar) {
      parts.push_back(t->items[0]->name);
      for (size_t i = 1; i < t->items.size(); ++i) {
        const Term& o = *t->items[i];
        if (o.kind != TermKind::kScalar || !o.value.is_string()) {
          return compile_error(file_, loc, "rego_compile_error",
                               "with keyword target must be a static reference");
        }
        parts.push_back(o.value.as_string());
      }
    } else {
      return compile_error(file_, loc, "rego_compile_error",
                           "with keyword target must reference existing input, data, or a function");
    }
    if (parts[0] == "input" || parts[0] == "data") {
      // A function path under data is mocked as a function.
      if (parts[0] == "data") {
        std::vector<std::string> p(parts.begin() + 1, parts.end());
        const RuleSet* rs = find_rule_set(impl_, p);
        if (rs != nullptr && rs->kind == RuleKind::kFunction) {
          w.target_path = {"fn", rs->path_text};
          return Status();
        }
      }
      w.target_path = parts;
      return Status();
    }
    if (lookup(scope, parts[0]) >= 0) {
      return compile_error(file_, loc, "rego_compile_error",
                           "with keyword target must reference existing input, data, or a function");
    }
    auto imp = imports_.find(parts[0]);
    if (imp != imports_.end()) {
      std::vector<std::string> full = imp->second;
      full.insert(full.end(), parts.begin() + 1, parts.end());
      if (full[0] == "data") {
        std::vector<std::string> p(full.begin() + 1, full.end());
        const RuleSet* rs = find_rule_set(impl_, p);
        if (rs != nullptr && rs->kind == RuleKind::kFunction) {
          w.target_path = {"fn", rs->path_text};
          return Status();
        }
      }
      w.target_path = full;
      return Status();
    }
    if (mod_ != nullptr && rule_name_in_package(parts[0])) {
      std::vector<std::string> p = mod_->package;
      p.insert(p.end(), parts.begin(), parts.end());
      const RuleSet* rs = find_rule_set(impl_, p);
      if (rs != nullptr && rs->kind == RuleKind::kFunction) {
        w.target_path = {"fn", rs->path_text};
        return Status();
      }
      w.target_path = {"data"};
      w.target_path.insert(w.target_path.end(), p.begin(), p.end());
      return Status();
    }
    std::string name = parts[0];
    for (size_t i = 1; i < parts.size(); ++i) name += "." + parts[i];
    if (find_builtin(name) == nullptr) {
      return compile_error(file_, loc, "rego_compile_error",
                           "with keyword target must reference existing input, data, or a function");
    }
    w.target_path = {"fn", name};
    return Status();
  }

  // Rewrites `t` in place.
  Status resolve_term(TermPtr& t, Scope* scope) {
    switch (t->kind) {
      case TermKind::kScalar: return Status();
      case TermKind::kVar: return resolve_var(t, scope);
      case TermKind::kRef: {
        ZTSLM_TRY(resolve_term(t->items[0], scope));
        for (size_t i = 1; i < t->items.size(); ++i) ZTSLM_TRY(resolve_term(t->items[i], scope));
        // Flatten a head that resolved to a ref (rule name or import alias).
        if (t->items[0]->kind == TermKind::kRef) {
          std::vector<TermPtr> items = t->items[0]->items;
          items.insert(items.end(), t->items.begin() + 1, t->items.end());
          t->items = std::move(items);
        }
        mark_ground(*t);
        link_rules(*t);
        return Status();
      }
      case TermKind::kArray:
      case TermKind::kSet:
      case TermKind::kObject:
        for (TermPtr& x : t->items) ZTSLM_TRY(resolve_term(x, scope));
        return Status();
      case TermKind::kCall: {
        for (TermPtr& x : t->items) ZTSLM_TRY(resolve_term(x, scope));
        return resolve_call(*t);
      }
      case TermKind::kArrayCompr:
      case TermKind::kSetCompr:
      case TermKind::kObjectCompr: {
        auto* cs = new Scope();
        owned_scopes_.emplace_back(cs);
        cs->parent = scope;
        t->slot_begin = n_slots_;
        // The comprehension's own variables are not query bindings.
        auto* saved_names = query_names_;
        query_names_ = nullptr;
        ZTSLM_TRY(resolve_body(*t->body, cs));
        ZTSLM_TRY(resolve_term(t->head, cs));
        if (t->head2) ZTSLM_TRY(resolve_term(t->head2, cs));
        query_names_ = saved_names;
        t->slot_end = n_slots_;
        reorder_body(*t->body, outside_range(t->slot_begin, t->slot_end));
        return Status();
      }
    }
    return Status();
  }

  // For data.a.b.c[...]: when a constant prefix reaches a rule set with nothing below it,
  // remember it so evaluation skips the path walk.
  void link_rules(Term& ref) const {
    ref.ref_rules = nullptr;
    if (ref.items[0]->kind != TermKind::kVar || ref.items[0]->slot != -1 ||
        ref.items[0]->name != "data") {
      return;
    }
    const PathNode* n = &impl_.root;
    for (size_t i = 1; i < ref.items.size(); ++i) {
      const Term& op = *ref.items[i];
      if (op.kind != TermKind::kScalar || !op.value.is_string()) return;
      auto it = n->children.find(op.value.as_string());
      if (it == n->children.end()) return;
      n = it->second.get();
      if (n->rules != nullptr) {
        if (n->children.empty() && n->rules->kind != RuleKind::kFunction) {
          ref.ref_rules = n->rules;
          ref.ref_rules_end = static_cast<uint32_t>(i + 1);
        }
        return;
      }
    }
  }

  static void mark_ground(Term& ref) {
    ref.ground_ref = false;
    if (ref.items[0]->kind != TermKind::kVar || ref.items[0]->slot != -1) return;
    for (size_t i = 1; i < ref.items.size(); ++i) {
      if (ref.items[i]->kind != TermKind::kScalar) return;
    }
    ref.ground_ref = true;
  }

  Status resolve_var(TermPtr& t, Scope* scope) {
    if (t->is_wildcard) {
      t->slot = n_slots_++;
      return Status();
    }
    const int slot = lookup(scope, t->name);
    if (slot >= 0) {
      t->slot = slot;
      return Status();
    }
    if (t->name == "data" || t->name == "input") {
      t->slot = -1;
      return Status();
    }
    auto imp = imports_.find(t->name);
    if (imp != imports_.end()) {
      t = make_root_ref(imp->second, t->loc);
      if (t->kind == TermKind::kRef) link_rules(*t);
      return Status();
    }
    if (mod_ != nullptr && rule_name_in_package(t->name)) {
      std::vector<std::string> p = {"data"};
      p.insert(p.end(), mod_->package.begin(), mod_->package.end());
      p.push_back(t->name);
      t = make_root_ref(p, t->loc);
      if (t->kind == TermKind::kRef) link_rules(*t);
      return Status();
    }
    t->slot = declare(scope, t->name);
    return Status();
  }

  static TermPtr make_root_ref(const std::vector<std::string>& path, Location loc) {
    auto root = std::make_shared<Term>();
    root->kind = TermKind::kVar;
    root->name = path[0];
    root->slot = -1;
    root->loc = loc;
    if (path.size() == 1) return root;
    auto r = std::make_shared<Term>();
    r->kind = TermKind::kRef;
    r->loc = loc;
    r->items.push_back(root);
    for (size_t i = 1; i < path.size(); ++i) {
      auto s = std::make_shared<Term>();
      s->kind = TermKind::kScalar;
      s->value = Value::string(path[i]);
      s->loc = loc;
      r->items.push_back(s);
    }
    mark_ground(*r);
    return r;
  }

  static bool const_value(const Term& t, Value* out) {
    switch (t.kind) {
      case TermKind::kScalar: *out = t.value; return true;
      case TermKind::kArray:
      case TermKind::kSet: {
        Array items;
        for (const auto& x : t.items) {
          Value v;
          if (!const_value(*x, &v)) return false;
          items.push_back(v);
        }
        *out = t.kind == TermKind::kArray ? Value::array(std::move(items)) : Value::set(std::move(items));
        return true;
      }
      case TermKind::kObject: {
        Entries e;
        for (size_t i = 0; i + 1 < t.items.size(); i += 2) {
          Value k, v;
          if (!const_value(*t.items[i], &k) || !const_value(*t.items[i + 1], &v)) return false;
          e.emplace_back(k, v);
        }
        *out = Value::object(std::move(e));
        return true;
      }
      default: return false;
    }
  }

  // A built-in called with constant operands of the wrong type is a compile-time type error
  // (what OPA's type checker reports for such calls).
  Status check_constant_call(const Term& t, const Builtin& b) {
    if (b.arity < 0 || b.name == "walk" || b.name == "time.now_ns" || b.name == "print") {
      return Status();
    }
    std::vector<Value> args;
    for (size_t i = 0; i < static_cast<size_t>(b.arity) && i < t.items.size(); ++i) {
      Value v;
      if (!const_value(*t.items[i], &v)) return Status();
      args.push_back(v);
    }
    if (args.size() != static_cast<size_t>(b.arity)) return Status();
    BuiltinCtx ctx;
    size_t bytes = 0;
    ctx.bytes_used = &bytes;
    ctx.max_bytes = 1u << 20;
    Value out;
    Status s = b.fn(ctx, args.data(), args.size(), &out);
    if (!s.ok() && s.message().rfind("eval_type_error: ", 0) == 0) {
      return compile_error(file_, t.loc, "rego_type_error",
                           s.message().substr(std::string_view("eval_type_error: ").size()));
    }
    return Status();
  }

  Status resolve_call(Term& t) {
    const bool allow_out = &t == expr_call_;
    std::vector<std::string> parts;
    size_t start = 0;
    const std::string& name = t.name;
    for (size_t i = 0; i <= name.size(); ++i) {
      if (i == name.size() || name[i] == '.') {
        parts.push_back(name.substr(start, i - start));
        start = i + 1;
      }
    }
    std::vector<std::string> path;  // data path without "data"
    bool user = false;
    if (t.is_operator) {
      // Operators are built-ins even where a rule shares the name ("lt", "plus").
    } else if (parts[0] == "data") {
      path.assign(parts.begin() + 1, parts.end());
      user = true;
    } else if (imports_.count(parts[0]) != 0) {
      const auto& ip = imports_.at(parts[0]);
      if (ip[0] == "data") {
        path.assign(ip.begin() + 1, ip.end());
        path.insert(path.end(), parts.begin() + 1, parts.end());
        user = true;
      }
    } else if (mod_ != nullptr && rule_name_in_package(parts[0])) {
      path = mod_->package;
      path.insert(path.end(), parts.begin(), parts.end());
      user = true;
    }
    if (user) {
      const RuleSet* rs = find_rule_set(impl_, path);
      if (rs == nullptr || rs->kind != RuleKind::kFunction) {
        return compile_error(file_, t.loc, "rego_type_error", "undefined function " + join_path(path));
      }
      if (t.items.size() != rs->arity && !(allow_out && t.items.size() == rs->arity + 1)) {
        return compile_error(file_, t.loc, "rego_type_error",
                             join_path(path) + ": arity mismatch");
      }
      t.func_path = path;
      t.name = join_path(path);
      t.ref_rules = rs;  // kCall: the function's rule set
      return Status();
    }
    const Builtin* b = find_builtin(name);
    static const std::set<std::string> kDeprecated = {
        "cast_array", "cast_set", "cast_string", "cast_boolean", "cast_null", "cast_object",
        "re_match", "any", "all", "set_diff", "net.cidr_overlap"};
    if (b != nullptr && !t.is_operator && (mod_ == nullptr || mod_->v1) && kDeprecated.count(name) != 0) {
      return compile_error(file_, t.loc, "rego_type_error",
                           "could not find function " + name + " (deprecated built-ins are not available in v1)");
    }
    if (b == nullptr) {
      return compile_error(file_, t.loc, "rego_type_error", "undefined function " + name);
    }
    if (b->arity >= 0 && t.items.size() != static_cast<size_t>(b->arity) &&
        !(allow_out && t.items.size() == static_cast<size_t>(b->arity) + 1)) {
      return compile_error(file_, t.loc, "rego_type_error",
                           name + ": arity mismatch: expected " + std::to_string(b->arity) +
                               " arguments");
    }
    t.builtin = b;
    return check_constant_call(t, *b);
  }

  // ---- safety: order body expressions so that variables are bound before they are used ----
  std::set<int> outside_range(int lo, int hi) const {
    std::set<int> s;
    for (int i = 0; i < n_slots_; ++i) {
      if (i < lo || i >= hi) s.insert(i);
    }
    return s;
  }

  struct Uses {
    std::set<int> in;    // must be bound before
    std::set<int> iter;  // bound by evaluating the term (ref operands, call outputs)
    std::set<int> pat;   // bound by unification with the other side
  };

  void classify(const Term& t, bool pattern, Uses& u) const {
    switch (t.kind) {
      case TermKind::kScalar: return;
      case TermKind::kVar:
        if (t.slot < 0 || t.is_wildcard) return;
        (pattern ? u.pat : u.in).insert(t.slot);
        return;
      case TermKind::kRef: {
        classify(*t.items[0], false, u);
        for (size_t i = 1; i < t.items.size(); ++i) {
          const Term& op = *t.items[i];
          if (op.kind == TermKind::kVar || op.kind == TermKind::kArray ||
              op.kind == TermKind::kObject) {
            Uses inner;
            classify(op, true, inner);
            u.in.insert(inner.in.begin(), inner.in.end());
            u.iter.insert(inner.pat.begin(), inner.pat.end());
            u.iter.insert(inner.iter.begin(), inner.iter.end());
          } else {
            classify(op, false, u);
          }
        }
        return;
      }
      case TermKind::kArray:
      case TermKind::kSet:
        for (const auto& x : t.items) classify(*x, pattern && t.kind == TermKind::kArray, u);
        return;
      case TermKind::kObject:
        for (size_t i = 0; i + 1 < t.items.size(); i += 2) {
          classify(*t.items[i], false, u);
          classify(*t.items[i + 1], pattern, u);
        }
        return;
      case TermKind::kCall: {
        size_t arity = t.items.size();
        if (t.builtin != nullptr && t.builtin->arity >= 0) arity = static_cast<size_t>(t.builtin->arity);
        if (t.builtin == nullptr && !t.func_path.empty()) {
          if (const RuleSet* rs = find_rule_set(impl_, t.func_path)) arity = rs->arity;
        }
        for (size_t i = 0; i < t.items.size(); ++i) {
          if (i >= arity) {
            Uses out;
            classify(*t.items[i], true, out);
            u.in.insert(out.in.begin(), out.in.end());
            u.iter.insert(out.pat.begin(), out.pat.end());
            u.iter.insert(out.iter.begin(), out.iter.end());
          } else {
            classify(*t.items[i], false, u);
          }
        }
        return;
      }
      case TermKind::kArrayCompr:
      case TermKind::kSetCompr:
      case TermKind::kObjectCompr: {
        std::set<int> all;
        collect_slots_in_body(*t.body, all);
        Uses h;
        classify(*t.head, false, h);
        if (t.head2) classify(*t.head2, false, h);
        for (const auto* s : {&h.in, &h.iter, &h.pat}) all.insert(s->begin(), s->end());
        for (int s : all) {
          if (s < t.slot_begin || s >= t.slot_end) u.in.insert(s);
        }
        return;
      }
    }
  }

  void collect_slots_in_body(const Body& b, std::set<int>& out) const {
    for (const Expr& e : b.exprs) {
      Uses u;
      expr_uses(e, u);
      for (const auto* s : {&u.in, &u.iter, &u.pat}) out.insert(s->begin(), s->end());
    }
  }

  void expr_uses(const Expr& e, Uses& u) const {
    switch (e.kind) {
      case ExprKind::kTerm: classify(*e.a, false, u); break;
      case ExprKind::kUnify:
      case ExprKind::kAssign:
        classify(*e.a, true, u);
        classify(*e.b, true, u);
        break;
      case ExprKind::kSome: break;
      case ExprKind::kSomeIn:
        classify(*e.domain, false, u);
        if (e.key) classify(*e.key, true, u);
        classify(*e.val, true, u);
        break;
      case ExprKind::kEvery: {
        classify(*e.domain, false, u);
        std::set<int> all;
        collect_slots_in_body(*e.body, all);
        for (int s : all) {
          if (s < e.slot_begin || s >= e.slot_end) u.in.insert(s);
        }
        break;
      }
    }
    for (const WithMod& w : e.withs) classify(*w.value, false, u);
  }

  static bool subset(const std::set<int>& a, const std::set<int>& b) {
    for (int x : a) {
      if (b.count(x) == 0) return false;
    }
    return true;
  }

  bool ready(const Expr& e, const std::set<int>& bound) const {
    Uses u;
    expr_uses(e, u);
    if (e.negated) {
      return subset(u.in, bound) && subset(u.iter, bound) && subset(u.pat, bound);
    }
    if (!subset(u.in, bound)) return false;
    if (e.kind == ExprKind::kUnify || e.kind == ExprKind::kAssign) {
      Uses l, r;
      classify(*e.a, true, l);
      classify(*e.b, true, r);
      const bool both_lit = (e.a->kind == TermKind::kArray || e.a->kind == TermKind::kObject) &&
                            (e.b->kind == TermKind::kArray || e.b->kind == TermKind::kObject);
      return subset(l.pat, bound) || subset(r.pat, bound) || both_lit;
    }
    return true;
  }

  void reorder_body(Body& b, const std::set<int>& initially_bound) const {
    std::set<int> bound = initially_bound;
    std::vector<Expr> rest = std::move(b.exprs);
    std::vector<Expr> out;
    out.reserve(rest.size());
    while (!rest.empty()) {
      size_t pick = 0;
      bool found = false;
      for (size_t i = 0; i < rest.size(); ++i) {
        if (ready(rest[i], bound)) {
          pick = i;
          found = true;
          break;
        }
      }
      // Nothing is ready: keep the written order; evaluation reports the unsafe variable.
      if (!found) pick = 0;
      Uses u;
      expr_uses(rest[pick], u);
      for (const auto* s : {&u.in, &u.iter, &u.pat}) bound.insert(s->begin(), s->end());
      out.push_back(std::move(rest[pick]));
      rest.erase(rest.begin() + static_cast<std::ptrdiff_t>(pick));
    }
    b.exprs = std::move(out);
  }

  const Policy::Impl& impl_;
  const Module* mod_;
  std::string file_;
  std::map<std::string, std::vector<std::string>> imports_;
  int n_slots_ = 0;
  std::vector<std::string>* query_names_ = nullptr;
  std::vector<int>* query_slots_ = nullptr;
  std::vector<std::unique_ptr<Scope>> owned_scopes_;
  const Term* expr_call_ = nullptr;  // the call that is a whole expression (may take an output)
};

}  // namespace

namespace {

bool depends(const Policy::Impl& impl, RuleSet& rs);

bool term_depends(const Policy::Impl& impl, const Term& t);

bool body_depends(const Policy::Impl& impl, const Body& b) {
  for (const Expr& e : b.exprs) {
    if (!e.withs.empty()) return true;
    for (const TermPtr* p : {&e.a, &e.b, &e.key, &e.val, &e.domain}) {
      if (*p && term_depends(impl, **p)) return true;
    }
    if (e.body && body_depends(impl, *e.body)) return true;
  }
  return false;
}

bool term_depends(const Policy::Impl& impl, const Term& t) {
  switch (t.kind) {
    case TermKind::kScalar: return false;
    case TermKind::kVar: return t.slot < 0;  // `input`, or the whole of `data`
    case TermKind::kRef: {
      const Term& head = *t.items[0];
      if (head.kind == TermKind::kVar && head.slot < 0) {
        if (head.name != "data" || t.ref_rules == nullptr) return true;
        if (depends(impl, const_cast<RuleSet&>(*t.ref_rules))) return true;
        for (size_t i = t.ref_rules_end; i < t.items.size(); ++i) {
          if (term_depends(impl, *t.items[i])) return true;
        }
        return false;
      }
      for (const auto& x : t.items) {
        if (term_depends(impl, *x)) return true;
      }
      return false;
    }
    case TermKind::kCall:
      if (t.builtin != nullptr) {
        if (t.builtin->name == "time.now_ns" || t.builtin->is_print) return true;
      } else if (t.ref_rules == nullptr || depends(impl, const_cast<RuleSet&>(*t.ref_rules))) {
        return true;
      }
      for (const auto& x : t.items) {
        if (term_depends(impl, *x)) return true;
      }
      return false;
    case TermKind::kArray:
    case TermKind::kSet:
    case TermKind::kObject:
      for (const auto& x : t.items) {
        if (term_depends(impl, *x)) return true;
      }
      return false;
    case TermKind::kArrayCompr:
    case TermKind::kSetCompr:
    case TermKind::kObjectCompr:
      return term_depends(impl, *t.head) || (t.head2 && term_depends(impl, *t.head2)) ||
             body_depends(impl, *t.body);
  }
  return true;
}

bool rule_depends(const Policy::Impl& impl, const Rule& r) {
  if (body_depends(impl, r.body)) return true;
  if (r.value && term_depends(impl, *r.value)) return true;
  for (const auto& k : r.keys) {
    if (term_depends(impl, *k)) return true;
  }
  for (const auto& e : r.else_chain) {
    if (rule_depends(impl, *e)) return true;
  }
  return false;
}

bool depends(const Policy::Impl& impl, RuleSet& rs) {
  if (rs.dependency == 2) return false;
  if (rs.dependency != 0) return true;  // 3, or 1 (recursion: treat as dependent)
  rs.dependency = 1;
  bool dep = false;
  for (const auto& r : rs.rules) dep = dep || rule_depends(impl, *r);
  if (rs.default_rule) dep = dep || rule_depends(impl, *rs.default_rule);
  rs.dependency = dep ? 3 : 2;
  return dep;
}

}  // namespace

void analyse_dependencies(Policy::Impl& impl) {
  for (auto& rs : impl.rule_sets) depends(impl, *rs);
}

const RuleSet* find_rule_set(const Policy::Impl& impl, const std::vector<std::string>& path) {
  const PathNode* n = &impl.root;
  for (const std::string& p : path) {
    auto it = n->children.find(p);
    if (it == n->children.end()) return nullptr;
    n = it->second.get();
  }
  return n->rules;
}

Status compile_impl(Policy::Impl& impl) {
  std::map<std::vector<std::string>, RuleSet*> by_path;
  for (Module& m : impl.modules) {
    for (auto& r : m.rules) {
      RuleSet*& rs = by_path[r->path];
      if (rs == nullptr) {
        impl.rule_sets.push_back(std::make_unique<RuleSet>());
        rs = impl.rule_sets.back().get();
        rs->path = r->path;
        rs->path_text = join_path(r->path);
        rs->kind = r->kind;
        rs->arity = r->args.size();
        rs->index = impl.rule_sets.size() - 1;
      } else if (rs->kind != r->kind) {
        return compile_error(m.file, r->loc, "rego_type_error",
                             "conflicting rules " + rs->path_text + " found");
      } else if (r->kind == RuleKind::kFunction && rs->arity != r->args.size()) {
        return compile_error(m.file, r->loc, "rego_type_error",
                             "conflicting rules " + rs->path_text + " found (arity)");
      }
      if (r->is_default) {
        if (rs->default_rule) {
          return compile_error(m.file, r->loc, "rego_type_error",
                               "multiple default rules " + rs->path_text + " found");
        }
        rs->default_rule = r;
      } else {
        rs->rules.push_back(r);
      }
    }
  }
  // Path tree: every package is a document (an empty package is {}).
  for (const Module& m : impl.modules) {
    PathNode* n = &impl.root;
    for (const std::string& p : m.package) {
      n->has_non_function = true;
      auto& c = n->children[p];
      if (!c) c = std::make_unique<PathNode>();
      n = c.get();
    }
    n->has_non_function = true;
  }
  for (auto& rs : impl.rule_sets) {
    PathNode* n = &impl.root;
    for (const std::string& p : rs->path) {
      // Interior nodes are documents (objects), even when only functions live below.
      n->has_non_function = true;
      auto& c = n->children[p];
      if (!c) c = std::make_unique<PathNode>();
      n = c.get();
    }
    if (rs->kind != RuleKind::kFunction) n->has_non_function = true;
    n->rules = rs.get();
  }
  for (auto& rs : impl.rule_sets) {
    const PathNode* n = &impl.root;
    for (const std::string& p : rs->path) n = n->children.at(p).get();
    if (!n->children.empty() && rs->kind != RuleKind::kPartialObject) {
      const Rule& r = rs->rules.empty() ? *rs->default_rule : *rs->rules[0];
      return compile_error(r.file, r.loc, "rego_type_error",
                           "rule " + rs->path_text + " conflicts with rules or packages below it");
    }
  }
  for (Module& m : impl.modules) {
    Resolver res(impl, &m, m.file);
    for (auto& r : m.rules) ZTSLM_TRY(res.resolve_rule(*r));
  }
  return Status();
}

Result<Query> compile_query(const Policy::Impl& impl, Body body) {
  Query q;
  q.body = std::move(body);
  Resolver res(impl, nullptr, "query");
  ZTSLM_TRY(res.resolve_query(q));
  return q;
}

}  // namespace ztslm::policy
