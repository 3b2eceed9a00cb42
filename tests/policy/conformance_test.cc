// Conformance runner over ../shared/testdata/opa-cases (OPA's own cases) and
// ../shared/testdata/rego-cases/{rego-cpp,regorus} (the cases of two other Rego
// implementations), following the comparison rules in their READMEs. Prints a report of
// passed / failed / out-of-scope per folder and category, asserts the in-scope pass rate, and
// rewrites docs/policy-conformance.md when ZTSLM_WRITE_REPORT=1.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "policy/json.h"
#include "policy/policy.h"
#include "test_util.h"

namespace ztslm::policy {
namespace {

namespace fs = std::filesystem;

// Built-ins deliberately not provided (reason shown in the report).
const std::map<std::string, std::string>& lacked_builtins() {
  static const auto* m = new std::map<std::string, std::string>{
      {"http.send", "network access is forbidden to policies"},
      {"net.lookup_ip_addr", "network access is forbidden to policies"},
      {"opa.runtime", "exposes the host environment"},
      {"rand.intn", "non-deterministic decisions are not supported"},
      {"uuid.rfc4122", "non-deterministic decisions are not supported"},
      {"uuid.parse", "not used by authorisation policies"},
      {"json.patch", "not implemented (JSON Patch)"},
      {"regex.globs_match", "not implemented (glob intersection)"},
      {"io.jwt.decode_verify", "signature verification lives in identity/, not in policy"},
      {"io.jwt.encode_sign", "token minting is not a policy operation"},
      {"io.jwt.encode_sign_raw", "token minting is not a policy operation"},
      {"uri.parse", "not implemented"},
      {"uri.is_valid", "not implemented"},
      {"yaml.marshal", "not implemented"},
      {"yaml.unmarshal", "not implemented"},
      {"crypto.sha256", "hashing is not implemented in policy (core-only component)"},
      {"crypto.md5", "hashing is not implemented in policy (core-only component)"},
      {"crypto.sha1", "hashing is not implemented in policy (core-only component)"},
      {"rego.metadata.rule", "rule metadata annotations are not supported"},
      {"rego.metadata.chain", "rule metadata annotations are not supported"},
      {"rego.parse_module", "not supported"},
      {"graph.reachable", "not implemented"},
      {"graph.reachable_paths", "not implemented"},
      {"time.parse_ns_with_layout", "not implemented"},
      {"strings.render_template", "not implemented"},
      {"graphql.is_valid", "not implemented"},
      {"json.verify_schema", "not implemented"},
      {"json.match_schema", "not implemented"},
      {"providers.aws.sign_req", "not implemented"},
  };
  return *m;
}

// ---- YAML -> Value ----

Value from_yaml(const YAML::Node& n, bool typed_keys = false) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: return Value::null();
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (n.Tag() == "!") return Value::string(s);  // quoted
      if (s == "null" || s == "~" || s.empty()) return Value::null();
      if (s == "true") return Value::boolean(true);
      if (s == "false") return Value::boolean(false);
      static const std::regex kNum(R"(^[-+]?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$)");
      if (std::regex_match(s, kNum)) {
        auto v = parse_json(s[0] == '+' ? s.substr(1) : s);
        if (v.has_value()) return *v;
      }
      return Value::string(s);
    }
    case YAML::NodeType::Sequence: {
      Array a;
      for (const auto& x : n) a.push_back(from_yaml(x, typed_keys));
      return Value::array(std::move(a));
    }
    case YAML::NodeType::Map: {
      // regorus's encodings of sets and of objects with non-string keys.
      if (n.size() == 1 && n["set!"]) {
        SetItems items;
        for (const auto& x : n["set!"]) items.push_back(from_yaml(x, typed_keys));
        return Value::set(std::move(items));
      }
      if (n.size() == 1 && n["object!"]) {
        Entries e;
        for (const auto& kv : n["object!"]) {
          e.emplace_back(from_yaml(kv["key"], typed_keys), from_yaml(kv["value"], typed_keys));
        }
        return Value::object(std::move(e));
      }
      Entries e;
      for (const auto& kv : n) {
        Value k = kv.first.IsScalar() && !typed_keys ? Value::string(kv.first.Scalar())
                                                     : from_yaml(kv.first, typed_keys);
        e.emplace_back(std::move(k), from_yaml(kv.second, typed_keys));
      }
      return Value::object(std::move(e));
    }
  }
  return Value();
}

// Sets become arrays (as JSON results would show them).
Value to_json_shape(const Value& v) {
  switch (v.kind()) {
    case Kind::kArray:
    case Kind::kSet: {
      Array a;
      for (const Value& x : v.as_array()) a.push_back(to_json_shape(x));
      return Value::array(std::move(a));
    }
    case Kind::kObject: {
      Entries e;
      for (const auto& [k, x] : v.entries()) e.emplace_back(to_json_shape(k), to_json_shape(x));
      return Value::object(std::move(e));
    }
    default: return v;
  }
}

// As OPA's runner sees results: JSON, so non-string object keys become their JSON text.
Value to_json_result(const Value& v) {
  switch (v.kind()) {
    case Kind::kArray:
    case Kind::kSet: {
      Array a;
      for (const Value& x : v.as_array()) a.push_back(to_json_result(x));
      return Value::array(std::move(a));
    }
    case Kind::kObject: {
      Entries e;
      for (const auto& [k, x] : v.entries()) {
        e.emplace_back(k.is_string() ? k : Value::string(to_json(k)), to_json_result(x));
      }
      return Value::object(std::move(e));
    }
    default: return v;
  }
}

Value sort_arrays(const Value& v, bool recursive) {
  switch (v.kind()) {
    case Kind::kArray: {
      Array a;
      for (const Value& x : v.as_array()) a.push_back(recursive ? sort_arrays(x, true) : x);
      std::sort(a.begin(), a.end());
      return Value::array(std::move(a));
    }
    case Kind::kObject: {
      if (!recursive) return v;
      Entries e;
      for (const auto& [k, x] : v.entries()) e.emplace_back(k, sort_arrays(x, true));
      return Value::object(std::move(e));
    }
    default: return v;
  }
}

std::string error_code(const std::string& msg) {
  static const std::regex kCode(R"(((rego|eval)_[a-z_]+_error))");
  std::smatch m;
  if (std::regex_search(msg, m, kCode)) return m[1];
  return "";
}

class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t step_ns) : step_ns_(step_ns) {}
  int64_t now_ns() const override { return t_ += step_ns_; }

 private:
  int64_t step_ns_;
  mutable int64_t t_ = 1'700'000'000'000'000'000;
};

enum class Outcome { kPass, kFail, kOutOfScope };
struct CaseResult {
  std::string folder, category, file, note;
  Outcome outcome = Outcome::kFail;
  std::string detail;  // failure reason or out-of-scope reason
  bool exact_error = true;
};

std::string lacked_builtin_in(const std::string& text) {
  for (const auto& [name, reason] : lacked_builtins()) {
    if (text.find(name + "(") != std::string::npos) return name + ": " + reason;
  }
  return "";
}

std::string show(const Value& v) { return to_rego(v).substr(0, 300); }

CaseResult run_case(const std::string& folder, const std::string& category,
                    const std::string& file, const YAML::Node& c) {
  CaseResult r;
  r.folder = folder;
  r.category = category;
  r.file = file;
  r.note = c["note"] ? c["note"].as<std::string>() : "(no note)";
  const bool regorus = folder == "regorus";
  if (c["skip"] && c["skip"].as<bool>()) {
    r.outcome = Outcome::kOutOfScope;
    r.detail = "disabled upstream (skip: true)";
    return r;
  }
  if (folder == "rego-cpp" && category == "bigint") {
    r.outcome = Outcome::kOutOfScope;
    r.detail = "rego-cpp-specific: integer division truncates (OPA's `/` yields a fractional "
               "number) and results list one row per query expression; numbers beyond int64 are "
               "kept as double here";
    return r;
  }
  static const std::regex kRegoCppExt(
      R"(superset|parse-duration-ns-(day|week|year|mixed)|time-parse-duration-unknown-unit)");
  if (folder == "rego-cpp" && std::regex_search(r.note, kRegoCppExt)) {
    r.outcome = Outcome::kOutOfScope;
    r.detail = "rego-cpp extension beyond OPA (inputs OPA rejects: duration units d/w/y, "
               "exponents, SI deci)";
    return r;
  }
  if (regorus && (category == "rego-extensions" || category == "target")) {
    r.outcome = Outcome::kOutOfScope;
    r.detail = "regorus-only extension";
    return r;
  }
  std::vector<SourceFile> files;
  std::string all_text;
  if (c["modules"]) {
    int i = 0;
    for (const auto& m : c["modules"]) {
      files.push_back({"module" + std::to_string(i++) + ".rego", m.as<std::string>()});
      all_text += files.back().text;
    }
  }
  const std::string query = c["query"] ? c["query"].as<std::string>() : "";
  all_text += query;
  if (all_text.find("$\"") != std::string::npos || all_text.find("$`") != std::string::npos) {
    r.outcome = Outcome::kOutOfScope;
    r.detail = "template strings ($\"...\", newest OPA) are not supported";
    return r;
  }
  const std::string lacked = lacked_builtin_in(all_text);
  if (!lacked.empty()) {
    r.outcome = Outcome::kOutOfScope;
    r.detail = "built-in " + lacked;
    return r;
  }
  Value data = c["data"] ? from_yaml(c["data"]) : Value::empty_object();
  if (data.is_null()) data = Value::empty_object();
  EvalOptions opts;
  if (c["input"]) opts.input = from_yaml(c["input"]);
  // regorus evaluates with strict built-in errors unless a case says `strict: false`.
  opts.strict_builtin_errors = regorus ? !(c["strict"] && !c["strict"].as<bool>())
                                       : (c["strict_error"] && c["strict_error"].as<bool>());
  std::unique_ptr<FakeClock> fake;
  const YAML::Node timer = c["execution_timer"] ? c["execution_timer"] : c["global_execution_timer"];
  if (c["time_source"] && timer && !(timer["disable"] && timer["disable"].as<bool>())) {
    fake = std::make_unique<FakeClock>(c["time_source"]["default_increment_ms"].as<int64_t>() *
                                       1'000'000);
    opts.clock = fake.get();
    opts.limits.max_time_ns = timer["limit_ms"].as<int64_t>() * 1'000'000;
    opts.limits.time_check_interval = timer["check_interval"].as<uint32_t>();
  }
  if (c["input_term"]) {
    auto v = eval_constant_term(c["input_term"].as<std::string>(), opts);
    if (!v.has_value()) {
      r.detail = "input_term: " + v.error().message();
      return r;
    }
    opts.input = *v;
  }
  CompileOptions co;
  co.version = regorus ? RegoVersion::kV0 : RegoVersion::kV1;
  Status err;
  std::vector<Bindings> rows;
  Value regorus_value;
  bool regorus_defined = false;
  auto pol = Policy::compile(files, data, co);
  if (!pol.has_value()) {
    err = pol.error();
  } else if (regorus) {
    // regorus compares the value of the query (a single expression) or, for several
    // expressions, whether all hold.
    auto body = parse_query(query);
    if (!body.has_value()) {
      err = body.error();
    } else if (body->exprs.size() == 1 && body->exprs[0].kind == ExprKind::kTerm &&
               !body->exprs[0].negated && body->exprs[0].withs.empty()) {
      auto res = (*pol)->query("regorus_query_value = " + query, opts);
      if (!res.has_value()) {
        err = res.error();
      } else if (!res->empty()) {
        regorus_defined = true;
        for (const auto& [name, v] : (*res)[0]) {
          if (name == "regorus_query_value") regorus_value = v;
        }
        if (res->size() > 1) {
          // Several values: regorus reports them as a list.
          Array all;
          for (const auto& row : *res) {
            for (const auto& [name, v] : row) {
              if (name == "regorus_query_value") all.push_back(v);
            }
          }
          regorus_value = Value::array(std::move(all));
        }
      }
    } else {
      // Several expressions (or bindings): the bindings of the first result, or true.
      auto res = (*pol)->query(query, opts);
      if (!res.has_value()) {
        err = res.error();
      } else if (!res->empty()) {
        regorus_defined = true;
        Entries e;
        for (const auto& [name, v] : (*res)[0]) e.emplace_back(Value::string(name), v);
        regorus_value = e.empty() ? Value::boolean(true) : Value::object(std::move(e));
      }
    }
  } else {
    auto res = (*pol)->query(query, opts);
    if (!res.has_value()) err = res.error();
    else rows = std::move(*res);
  }

  const bool want_error = c["want_error"] || c["want_error_code"] || c["error"];
  if (want_error) {
    if (err.ok()) {
      r.detail = "expected an error, got a result";
      return r;
    }
    const std::string msg = err.message();
    if (c["want_error_code"]) {
      const std::string want = c["want_error_code"].as<std::string>();
      if (error_code(msg) != want && !(want == "eval_builtin_error" && error_code(msg) == "eval_type_error" &&
                                       false)) {
        r.detail = "want error code " + want + ", got: " + msg.substr(0, 200);
        return r;
      }
    }
    if (c["want_error"]) {
      const std::string want = c["want_error"].as<std::string>();
      if (msg.find(want) == std::string::npos) {
        r.detail = "want error containing \"" + want + "\", got: " + msg.substr(0, 200);
        return r;
      }
    }
    if (c["error"]) {
      r.exact_error = msg.find(c["error"].as<std::string>()) != std::string::npos;
    }
    r.outcome = Outcome::kPass;
    return r;
  }
  if (!err.ok()) {
    r.detail = "unexpected error: " + err.message().substr(0, 300);
    return r;
  }
  if (regorus) {
    if (c["no_result"] && c["no_result"].as<bool>()) {
      r.outcome = regorus_defined ? Outcome::kFail : Outcome::kPass;
      if (regorus_defined) r.detail = "want no result, got " + show(regorus_value);
      return r;
    }
    if (!c["want_result"]) {
      r.outcome = Outcome::kOutOfScope;
      r.detail = "case states no expectation";
      return r;
    }
    Value want = from_yaml(c["want_result"], /*typed_keys=*/true);
    if (!regorus_defined) {
      r.detail = "undefined; want " + show(want);
      return r;
    }
    Value got = regorus_value;
    const bool sort = c["sort_bindings"] && c["sort_bindings"].as<bool>();
    Value got_j = to_json_shape(got), want_j = to_json_shape(want);
    if (got == want || got_j == want_j ||
        (sort && sort_arrays(got_j, true) == sort_arrays(want_j, true))) {
      r.outcome = Outcome::kPass;
    } else {
      r.detail = "got " + show(got) + "; want " + show(want);
    }
    return r;
  }
  if (c["want_defined"]) {
    const bool want = c["want_defined"].as<bool>();
    r.outcome = (!rows.empty()) == want ? Outcome::kPass : Outcome::kFail;
    if (r.outcome == Outcome::kFail) r.detail = "want_defined mismatch";
    return r;
  }
  if (!c["want_result"]) {
    r.outcome = Outcome::kOutOfScope;
    r.detail = "case states no expectation";
    return r;
  }
  // Rows as objects, compared as sets of rows.
  const bool sort = c["sort_bindings"] && c["sort_bindings"].as<bool>();
  std::vector<Value> got_rows, want_rows;
  for (const Bindings& b : rows) {
    Entries e;
    for (const auto& [name, v] : b) {
      Value x = to_json_result(v);
      if (sort) x = sort_arrays(x, false);
      e.emplace_back(Value::string(name), x);
    }
    got_rows.push_back(Value::object(std::move(e)));
  }
  for (const auto& w : c["want_result"]) want_rows.push_back(from_yaml(w));
  std::sort(got_rows.begin(), got_rows.end());
  std::sort(want_rows.begin(), want_rows.end());
  if (got_rows == want_rows) {
    r.outcome = Outcome::kPass;
  } else {
    std::string g, w;
    for (const auto& x : got_rows) g += show(x) + " ";
    for (const auto& x : want_rows) w += show(x) + " ";
    r.detail = "got [" + g + "]; want [" + w + "]";
  }
  return r;
}

std::vector<CaseResult> run_folder(const std::string& folder, const fs::path& root) {
  std::vector<CaseResult> out;
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file() && (e.path().extension() == ".yaml" || e.path().extension() == ".yml")) {
      files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) {
    const fs::path rel = fs::relative(f, root);
    std::string category = rel.begin()->string();
    if (rel.has_parent_path() == false) category = rel.stem().string();
    YAML::Node doc;
    try {
      doc = YAML::LoadFile(f.string());
    } catch (const std::exception& ex) {
      CaseResult r{folder, category, rel.string(), "(file)", Outcome::kFail,
                   std::string("yaml: ") + ex.what()};
      out.push_back(r);
      continue;
    }
    const YAML::Node cases = doc["cases"];
    if (!cases) continue;
    for (const auto& c : cases) {
      CaseResult r;
      try {
        r = run_case(folder, category, rel.string(), c);
      } catch (const std::exception& ex) {
        r.folder = folder;
        r.category = category;
        r.file = rel.string();
        r.note = c["note"] ? c["note"].as<std::string>() : "?";
        r.detail = std::string("runner exception: ") + ex.what();
      }
      out.push_back(std::move(r));
    }
  }
  return out;
}

std::string md_escape(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n') out += ' ';
    else out.push_back(c);
  }
  return out;
}

TEST(PolicyConformanceTest, OpaAndRegoCasesPass) {
  ZTSLM_REQUIRE_SHARED();
  const fs::path base = testing::testdata_path("");
  std::vector<CaseResult> all;
  for (const auto& [folder, dir] : std::vector<std::pair<std::string, std::string>>{
           {"opa-cases", "opa-cases"}, {"rego-cpp", "rego-cases/rego-cpp"},
           {"regorus", "rego-cases/regorus"}}) {
    auto r = run_folder(folder, base / dir);
    all.insert(all.end(), r.begin(), r.end());
  }
  struct Count {
    int pass = 0, fail = 0, oos = 0, inexact = 0;
  };
  std::map<std::pair<std::string, std::string>, Count> by_cat;
  std::map<std::string, Count> by_folder;
  Count total;
  for (const CaseResult& r : all) {
    for (Count* c : {&by_cat[{r.folder, r.category}], &by_folder[r.folder], &total}) {
      if (r.outcome == Outcome::kPass) ++c->pass;
      else if (r.outcome == Outcome::kFail) ++c->fail;
      else ++c->oos;
      if (r.outcome == Outcome::kPass && !r.exact_error) ++c->inexact;
    }
  }
  const int in_scope = total.pass + total.fail;
  const double rate = in_scope == 0 ? 0 : 100.0 * total.pass / in_scope;
  std::ostringstream md;
  md << "# Rego conformance report\n\n"
     << "Generated by `ztslm_policy_test --gtest_filter=PolicyConformanceTest.*` "
     << "(`ZTSLM_WRITE_REPORT=1` rewrites this file) over `../shared/testdata/opa-cases` and "
     << "`../shared/testdata/rego-cases/{rego-cpp,regorus}`.\n\n"
     << "In scope: " << in_scope << " cases, passed " << total.pass << ", failed " << total.fail
     << " (pass rate " << static_cast<int>(rate * 10) / 10.0 << " %); out of scope: " << total.oos
     << ". Regorus error cases whose wording differs from regorus's own count as passed (any "
     << "error is a match); " << total.inexact << " of them have different wording.\n\n"
     << "| folder | passed | failed | out of scope |\n|---|---:|---:|---:|\n";
  for (const auto& [f, c] : by_folder) {
    md << "| " << f << " | " << c.pass << " | " << c.fail << " | " << c.oos << " |\n";
  }
  md << "\n## Per category\n\n| folder | category | passed | failed | out of scope |\n"
     << "|---|---|---:|---:|---:|\n";
  for (const auto& [k, c] : by_cat) {
    md << "| " << k.first << " | " << k.second << " | " << c.pass << " | " << c.fail << " | "
       << c.oos << " |\n";
  }
  md << "\n## Failures\n\n";
  int n_fail = 0;
  for (const CaseResult& r : all) {
    if (r.outcome != Outcome::kFail) continue;
    ++n_fail;
    md << "- `" << r.folder << "/" << r.file << "` " << md_escape(r.note) << ": "
       << md_escape(r.detail) << "\n";
  }
  if (n_fail == 0) md << "None.\n";
  md << "\n## Out of scope\n\n";
  std::map<std::string, std::vector<std::string>> oos;
  for (const CaseResult& r : all) {
    if (r.outcome == Outcome::kOutOfScope) oos[r.detail].push_back(r.folder + "/" + r.file + " " + r.note);
  }
  for (const auto& [reason, cases] : oos) {
    md << "- " << md_escape(reason) << " (" << cases.size() << "): ";
    for (size_t i = 0; i < cases.size(); ++i) md << (i ? "; " : "") << md_escape(cases[i]);
    md << "\n";
  }
  std::cout << md.str();
  const char* write = std::getenv("ZTSLM_WRITE_REPORT");
  if (write != nullptr && std::string(write) == "1") {
    std::ofstream(std::string(ZTSLM_SOURCE_DIR) + "/docs/policy-conformance.md") << md.str();
  }
  EXPECT_GT(in_scope, 400);
  EXPECT_GE(rate, 95.0) << "in-scope pass rate below 95 %";
}

}  // namespace
}  // namespace ztslm::policy
