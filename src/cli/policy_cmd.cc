// `ztslm policy eval|test|check`: evaluate Rego queries, run `test_` rules like `opa test`,
// and check policy files for parse and compile errors.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "policy/decision.h"
#include "policy/json.h"
#include "policy/parser.h"
#include "policy/policy.h"

namespace ztslm::cli {
namespace {

using policy::Policy;
using policy::Value;

struct EvalArgs {
  std::string input;
  std::string data;
  std::vector<std::string> policies;
  std::string query;
  bool strict = false;
};

// Loads policy files and the data document and compiles them.
Result<std::shared_ptr<const Policy>> load(const std::vector<std::string>& paths,
                                           const std::string& data_path) {
  std::vector<policy::SourceFile> files;
  if (!paths.empty()) {
    ZTSLM_ASSIGN_OR_RETURN(files, policy::read_policy_files(paths));
  }
  Value data;
  if (!data_path.empty()) {
    ZTSLM_ASSIGN_OR_RETURN(data, policy::read_json_file(data_path));
    if (!data.is_object()) return Status::invalid_argument("--data must hold a JSON object");
  }
  return Policy::compile(files, data);
}

int run_eval(const EvalArgs& a) {
  auto pol = load(a.policies, a.data);
  if (!pol.has_value()) return fail(pol.error());
  policy::EvalOptions opts;
  opts.strict_builtin_errors = a.strict;
  if (!a.input.empty()) {
    auto in = policy::read_json_file(a.input);
    if (!in.has_value()) return fail(in.error());
    opts.input = *in;
  }
  std::vector<std::string> prints;
  opts.print_sink = &prints;
  // A single term (`data.ztslm.authz`, `count(x)`) prints its value; anything else prints the
  // variable bindings of every solution.
  auto body = policy::parse_query(a.query);
  if (!body.has_value()) return fail(body.error());
  const bool single_term = body->exprs.size() == 1 &&
                           body->exprs[0].kind == policy::ExprKind::kTerm &&
                           !body->exprs[0].negated && body->exprs[0].withs.empty();
  auto rows = (*pol)->query(single_term ? "ztslm_query_value = " + a.query : a.query, opts);
  for (const std::string& line : prints) std::fprintf(stderr, "%s\n", line.c_str());
  if (!rows.has_value()) return fail(rows.error());
  if (rows->empty()) {
    std::fprintf(stderr, "ztslm: query is undefined\n");
    return 1;
  }
  if (single_term) {
    policy::SetItems values;
    for (const auto& row : *rows) {
      for (const auto& [name, v] : row) {
        if (name == "ztslm_query_value") values.push_back(v);
      }
    }
    policy::sort_unique(values);
    for (const Value& v : values) std::printf("%s\n", policy::to_json(v).c_str());
    return 0;
  }
  std::string out = "[";
  for (size_t i = 0; i < rows->size(); ++i) {
    policy::Entries e;
    for (const auto& [name, v] : (*rows)[i]) e.emplace_back(Value::string(name), v);
    if (i > 0) out += ",";
    out += policy::to_json(Value::object(std::move(e)));
  }
  out += "]";
  std::printf("%s\n", out.c_str());
  return 0;
}

int run_test(const std::vector<std::string>& dirs, bool verbose) {
  auto pol = load(dirs, "");
  if (!pol.has_value()) return fail(pol.error());
  policy::EvalOptions opts;
  const auto results = policy::run_policy_tests(**pol, opts);
  size_t n_pass = 0, n_fail = 0;
  for (const auto& t : results) {
    if (t.passed) {
      ++n_pass;
      if (verbose) std::printf("PASS %s (%.1f us)\n", t.name.c_str(), static_cast<double>(t.duration_ns) / 1000.0);
    } else {
      ++n_fail;
      std::printf("FAIL %s: %s\n", t.name.c_str(), t.message.c_str());
    }
  }
  std::printf("%s: %zu passed, %zu failed\n", n_fail == 0 ? "PASS" : "FAIL", n_pass, n_fail);
  if (results.empty()) {
    std::fprintf(stderr, "ztslm: no test_ rules found\n");
    return 1;
  }
  return n_fail == 0 ? 0 : 1;
}

int run_check(const std::vector<std::string>& files) {
  auto sources = policy::read_policy_files(files);
  if (!sources.has_value()) return fail(sources.error());
  int rc = 0;
  std::vector<policy::Module> modules;
  for (const auto& f : *sources) {
    auto m = policy::parse_module(f.text, f.name);
    if (!m.has_value()) {
      std::fprintf(stderr, "%s\n", m.error().message().c_str());
      rc = 1;
      continue;
    }
    modules.push_back(std::move(*m));
  }
  if (rc != 0) return rc;
  auto pol = Policy::compile_modules(std::move(modules), Value());
  if (!pol.has_value()) {
    std::fprintf(stderr, "%s\n", pol.error().message().c_str());
    return 1;
  }
  std::printf("ok: %zu file(s)\n", sources->size());
  return 0;
}

}  // namespace

void register_policy_commands(CLI::App& app) {
  CLI::App* pol = app.add_subcommand("policy", "evaluate, test and check Rego policies");
  pol->require_subcommand(1);

  static EvalArgs ea;
  auto* ev = pol->add_subcommand("eval", "evaluate a Rego query (e.g. data.ztslm.authz) against an input");
  ev->add_option("--input", ea.input, "input document (JSON file)");
  ev->add_option("--data", ea.data, "base data document (JSON file)");
  ev->add_option("-p,--policy", ea.policies, "policy file or directory (repeatable)");
  ev->add_flag("--strict-builtin-errors", ea.strict, "built-in errors fail the query instead of being undefined");
  ev->add_option("query", ea.query, "Rego query")->required();
  ev->callback([] { set_exit_code(run_eval(ea)); });

  static std::vector<std::string> test_dirs;
  static bool test_verbose = false;
  auto* te = pol->add_subcommand("test", "run the test_ rules of policies (exit 1 when one fails)");
  te->add_option("dirs", test_dirs, "policy files or directories")->required();
  te->add_flag("-v,--verbose", test_verbose, "print passing tests too");
  te->callback([] { set_exit_code(run_test(test_dirs, test_verbose)); });

  static std::vector<std::string> check_files;
  auto* ch = pol->add_subcommand("check", "parse and compile policy files; errors carry file:line:col");
  ch->add_option("files", check_files, "policy files or directories")->required();
  ch->callback([] { set_exit_code(run_check(check_files)); });
}

}  // namespace ztslm::cli
