#include "policy/policy.h"

#include "policy/internal/compiled.h"
#include "policy/internal/eval.h"

namespace ztslm::policy {

Policy::Policy() : impl_(std::make_unique<Impl>()) {}
Policy::~Policy() = default;

Result<std::shared_ptr<const Policy>> Policy::compile(const std::vector<SourceFile>& files,
                                                      Value data,
                                                      const CompileOptions& options) {
  if (files.size() > options.max_modules) {
    return Status::resource_exhausted("policy: {} modules exceed limit {}", files.size(),
                                      options.max_modules);
  }
  std::vector<Module> modules;
  modules.reserve(files.size());
  for (const SourceFile& f : files) {
    ZTSLM_ASSIGN_OR_RETURN(Module m, parse_module(f.text, f.name, options.version,
                                                  options.parse_limits));
    modules.push_back(std::move(m));
  }
  return compile_modules(std::move(modules), std::move(data));
}

Result<std::shared_ptr<const Policy>> Policy::compile_modules(std::vector<Module> modules,
                                                              Value data) {
  if (data.is_defined() && !data.is_object()) {
    return Status::invalid_argument("policy: data document must be an object, got {}",
                                    data.type_name());
  }
  std::shared_ptr<Policy> p(new Policy());
  p->impl_->modules = std::move(modules);
  if (data.is_defined()) p->impl_->data = std::move(data);
  ZTSLM_TRY(compile_impl(*p->impl_));
  // Evaluate request-independent rules once. A rule whose evaluation fails (a conflict, a
  // budget) stays dynamic so the error surfaces where it is used.
  analyse_dependencies(*p->impl_);
  std::vector<std::pair<RuleSet*, Value>> consts;
  for (auto& rs : p->impl_->rule_sets) {
    if (rs->dependency != 2 || rs->kind == RuleKind::kFunction) continue;
    if (!rs->path.empty() && rs->path.back().rfind("test_", 0) == 0) continue;
    EvalOptions opts;
    opts.strict_builtin_errors = true;  // any built-in error leaves the rule dynamic
    Evaluator ev(*p->impl_, opts);
    auto v = ev.eval_path(rs->path);
    if (v.has_value()) consts.emplace_back(rs.get(), *v);
  }
  for (auto& [rs, v] : consts) {
    rs->has_const = true;
    rs->const_value = std::move(v);
  }
  return std::shared_ptr<const Policy>(std::move(p));
}

Result<std::vector<Bindings>> Policy::query(std::string_view query_text,
                                            const EvalOptions& opts) const {
  ZTSLM_ASSIGN_OR_RETURN(Body body, parse_query(query_text));
  ZTSLM_ASSIGN_OR_RETURN(Query q, compile_query(*impl_, std::move(body)));
  Evaluator ev(*impl_, opts);
  return ev.run_query(q);
}

Result<Value> Policy::eval_path(std::string_view path, const EvalOptions& opts) const {
  if (path.rfind("data.", 0) == 0) path.remove_prefix(5);
  else if (path == "data") path = "";
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t i = 0; i <= path.size() && !path.empty(); ++i) {
    if (i == path.size() || path[i] == '.') {
      if (i == start) return Status::invalid_argument("policy: empty element in path");
      parts.emplace_back(path.substr(start, i - start));
      start = i + 1;
    }
  }
  Evaluator ev(*impl_, opts);
  return ev.eval_path(parts);
}

Result<std::vector<Value>> Policy::eval_paths(const std::vector<std::vector<std::string>>& paths,
                                              const EvalOptions& opts) const {
  Evaluator ev(*impl_, opts);
  std::vector<Value> out;
  out.reserve(paths.size());
  for (const auto& p : paths) {
    ZTSLM_ASSIGN_OR_RETURN(Value v, ev.eval_path(p));
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<std::string> Policy::test_rules() const {
  std::vector<std::string> out;
  for (const auto& rs : impl_->rule_sets) {
    if (rs->kind == RuleKind::kFunction || rs->path.empty()) continue;
    if (rs->path.back().rfind("test_", 0) == 0) out.push_back(rs->path_text);
  }
  return out;
}

const std::vector<Module>& Policy::modules() const { return impl_->modules; }
const Value& Policy::data() const { return impl_->data; }

Result<Value> eval_constant_term(std::string_view text, const EvalOptions& opts) {
  ZTSLM_ASSIGN_OR_RETURN(TermPtr t, parse_term(text));
  Body body;
  Expr e;
  e.kind = ExprKind::kTerm;
  e.a = t;
  body.exprs.push_back(e);
  static const Policy::Impl* empty = new Policy::Impl();
  ZTSLM_ASSIGN_OR_RETURN(Query q, compile_query(*empty, std::move(body)));
  Evaluator ev(*empty, opts);
  return ev.eval_closed_term(*q.body.exprs[0].a, q.n_slots);
}

}  // namespace ztslm::policy
