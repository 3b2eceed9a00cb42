// Private: the evaluator. A backtracking interpreter in continuation-passing style: each
// evaluation function calls its continuation once per solution and returns false to stop
// (an error, kept in `err_`, or an early exit requested by the caller).
#pragma once

#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "policy/internal/builtins.h"
#include "policy/internal/compiled.h"
#include "policy/policy.h"

namespace ztslm::policy {

// A non-owning reference to a callable (no allocation). The referenced callable must outlive
// the FnRef; it is only ever passed down the stack.
template <typename Sig>
class FnRef;
template <typename R, typename... A>
class FnRef<R(A...)> {
 public:
  template <typename F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, FnRef>)
  FnRef(F&& f)  // NOLINT(google-explicit-constructor)
      : obj_(const_cast<void*>(static_cast<const void*>(&f))),
        call_([](void* o, A... a) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(o))(std::forward<A>(a)...);
        }) {}
  R operator()(A... a) const { return call_(obj_, std::forward<A>(a)...); }

 private:
  void* obj_;
  R (*call_)(void*, A...);
};

class Evaluator final {
 public:
  Evaluator(const Policy::Impl& impl, const EvalOptions& opts);

  Result<std::vector<Bindings>> run_query(const Query& q);
  Result<Value> eval_path(const std::vector<std::string>& path);
  // Evaluates a term that needs no frame variables.
  Result<Value> eval_closed_term(const Term& t, int n_slots);

 private:
  using K = FnRef<bool()>;
  using VK = FnRef<bool(const Value&)>;
  // Variable slots of one rule evaluation; small frames live inline (no allocation).
  class Frame {
   public:
    explicit Frame(size_t n = 0) {
      if (n > kInline) {
        heap_.resize(n);
        p_ = heap_.data();
      }
    }
    Frame(const Frame&) = delete;
    Frame& operator=(const Frame&) = delete;
    Value& operator[](size_t i) { return p_[i]; }
    const Value& operator[](size_t i) const { return p_[i]; }

   private:
    static constexpr size_t kInline = 8;
    Value inline_[kInline];
    std::vector<Value> heap_;
    Value* p_ = inline_;
  };

  struct Override {
    std::vector<std::string> path;  // under data
    Value value;
  };
  struct Mock {
    Value value;         // replacement value, or
    std::string fn;      // replacement function name
  };
  struct CacheEntry {
    bool done = false;
    Value value;
  };

  bool fail(Status s);
  bool step();
  bool account(size_t bytes);
  Status finish_status();

  bool eval_body(const Body& b, size_t i, Frame& f, K k);
  bool eval_expr(const Expr& e, Frame& f, K k);
  bool eval_expr_core(const Expr& e, Frame& f, K k);
  bool eval_expr_pos(const Expr& e, Frame& f, K k);
  bool eval_with(const Expr& e, Frame& f, K k);
  bool eval_every(const Expr& e, Frame& f, K k);
  bool eval_some_in(const Expr& e, Frame& f, K k);

  bool eval_term(const Term& t, Frame& f, VK k);
  bool eval_items(const std::vector<TermPtr>& items, size_t i, Frame& f, std::vector<Value>& acc,
                  K k);
  bool eval_ref(const Term& t, Frame& f, VK k);
  bool apply_ops(const Value& v, const Term& t, size_t i, Frame& f, VK k);
  bool eval_data(const Term& t, size_t i, const PathNode* node, const Value& base, Frame& f,
                 VK k);
  bool materialize(const PathNode* node, const Value& base, Value* out);
  bool rule_node_value(const PathNode* node, Value* out);
  bool eval_call(const Term& t, Frame& f, VK k);
  bool call_named(const std::string& name, const Builtin* builtin, const RuleSet* rs,
                  const std::vector<Value>& args, const Term& at, VK k);
  bool call_builtin(const Builtin& b, const std::vector<Value>& args, VK k);
  bool eval_items_to(const std::vector<TermPtr>& items, size_t i, size_t end, Frame& f,
                     std::vector<Value>& acc, K k);
  bool call_function(const RuleSet& rs, const std::vector<Value>& args, Value* out);
  bool eval_compr(const Term& t, Frame& f, VK k);

  bool unify(const Term& a, const Term& b, Frame& f, K k);
  bool unify_value(const Term& pat, const Value& v, Frame& f, K k);
  bool unify_items(const std::vector<TermPtr>& pats, const Array& vals, size_t i, Frame& f, K k);
  bool unify_args(const std::vector<TermPtr>& pats, const std::vector<Value>& vals, size_t i,
                  Frame& f, K k);
  bool has_unbound(const Term& t, const Frame& f) const;

  bool eval_rule_set(const RuleSet& rs, Value* out);
  bool eval_branches(const Rule& r, Frame& fr, VK k);
  bool eval_head(const Rule& r, Frame& fr, VK k);

  Value patch_overrides_below(Value v);
  const Override* find_override() const;

  const Policy::Impl& impl_;
  EvalOptions opts_;
  const Clock* clock_;
  int64_t deadline_ns_ = 0;
  uint64_t steps_ = 0;
  size_t bytes_ = 0;
  size_t depth_ = 0;
  Status err_;
  BuiltinCtx bctx_;

  // Context that `with` replaces.
  Value input_;
  std::vector<Override> overrides_;
  std::map<std::string, Mock> mocks_;
  std::vector<CacheEntry> cache_;
  std::vector<bool> in_progress_;
  std::vector<std::string> data_path_;
  std::vector<std::vector<Value>> arg_pool_;
};

}  // namespace ztslm::policy
