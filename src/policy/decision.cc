#include "policy/decision.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "core/utf8.h"
#include "policy/json.h"

namespace ztslm::policy {
namespace {

namespace fs = std::filesystem;

Result<std::string> read_file(const std::string& path, size_t max_bytes) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) return Status::not_found("policy: cannot read {}", printable(path, 200));
  if (size > max_bytes) {
    return Status::resource_exhausted("policy: file {} of {} bytes exceeds limit {}",
                                      printable(path, 200), static_cast<uint64_t>(size), max_bytes);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found("policy: cannot open {}", printable(path, 200));
  std::string text(static_cast<size_t>(size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  if (static_cast<size_t>(in.gcount()) != size) {
    return Status::unavailable("policy: short read on {}", printable(path, 200));
  }
  return text;
}

}  // namespace

Result<std::vector<SourceFile>> read_policy_files(const std::vector<std::string>& paths,
                                                  const LoadLimits& limits) {
  std::vector<std::string> files;
  for (const std::string& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::recursive_directory_iterator();
           it.increment(ec)) {
        if (it->is_regular_file(ec) && it->path().extension() == ".rego") {
          files.push_back(it->path().string());
          if (files.size() > limits.max_files) {
            return Status::resource_exhausted("policy: more than {} policy files", limits.max_files);
          }
        }
      }
      if (ec) return Status::unavailable("policy: cannot list {}", printable(p, 200));
    } else if (fs::is_regular_file(p, ec)) {
      files.push_back(p);
    } else {
      return Status::not_found("policy: no such file or directory {}", printable(p, 200));
    }
  }
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  if (files.size() > limits.max_files) {
    return Status::resource_exhausted("policy: {} policy files exceed limit {}", files.size(),
                                      limits.max_files);
  }
  std::vector<SourceFile> out;
  for (const std::string& f : files) {
    ZTSLM_ASSIGN_OR_RETURN(std::string text, read_file(f, limits.max_file_bytes));
    out.push_back({f, std::move(text)});
  }
  return out;
}

Result<Value> read_json_file(const std::string& path, const LoadLimits& limits) {
  ZTSLM_ASSIGN_OR_RETURN(std::string text, read_file(path, limits.max_data_bytes));
  JsonLimits jl;
  jl.max_bytes = limits.max_data_bytes;
  auto v = parse_json(text, jl);
  if (!v.has_value()) return v.error().with_context(printable(path, 200));
  return v;
}

std::vector<TestResult> run_policy_tests(const Policy& policy, const EvalOptions& opts) {
  std::vector<TestResult> out;
  for (const std::string& name : policy.test_rules()) {
    TestResult t;
    t.name = name;
    const auto start = std::chrono::steady_clock::now();
    auto v = policy.eval_path(name, opts);
    t.duration_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    if (!v.has_value()) {
      t.message = v.error().message();
    } else if (!v->is_defined()) {
      t.message = "undefined";
    } else if (v->is_bool() && !v->as_bool()) {
      t.message = "false";
    } else {
      t.passed = true;
    }
    out.push_back(std::move(t));
  }
  return out;
}

DecisionPoint::DecisionPoint(Options options) : options_(std::move(options)) {
  std::string_view q = options_.query;
  if (q.rfind("data.", 0) == 0) q.remove_prefix(5);
  size_t start = 0;
  for (size_t i = 0; i <= q.size() && !q.empty(); ++i) {
    if (i == q.size() || q[i] == '.') {
      query_path_.emplace_back(q.substr(start, i - start));
      start = i + 1;
    }
  }
  for (const char* field : {"allow", "reasons", "obligations"}) {
    field_paths_.push_back(query_path_);
    field_paths_.back().emplace_back(field);
  }
}

Status DecisionPoint::load(const std::vector<SourceFile>& files, Value data) {
  ZTSLM_ASSIGN_OR_RETURN(std::shared_ptr<const Policy> policy, Policy::compile(files, std::move(data)));
  if (options_.require_tests_pass) {
    EvalOptions opts;
    opts.limits = options_.limits;
    opts.clock = options_.clock;
    std::string failed;
    size_t n_failed = 0;
    for (const TestResult& t : run_policy_tests(*policy, opts)) {
      if (t.passed) continue;
      ++n_failed;
      if (failed.size() < 400) failed += (failed.empty() ? "" : "; ") + t.name + ": " + t.message;
    }
    if (n_failed > 0) {
      return Status::failed_precondition("policy: {} test rule(s) failed, keeping the policy in force: {}",
                                         n_failed, failed);
    }
  }
  current_.store(std::move(policy));
  generation_.fetch_add(1);
  return Status();
}

Decision DecisionPoint::decide(const Value& input) const {
  Decision d;
  const std::shared_ptr<const Policy> policy = current_.load();
  if (!policy) {
    d.error = Status::failed_precondition("policy: no policy loaded");
    d.reasons.push_back("no policy loaded");
    return d;
  }
  EvalOptions opts;
  opts.input = input;
  opts.limits = options_.limits;
  opts.clock = options_.clock;
  auto v = policy->eval_paths(field_paths_, opts);
  if (!v.has_value()) {
    d.error = v.error();
    d.reasons.push_back("policy evaluation failed: " + v.error().message());
    return d;
  }
  const Value& allow = (*v)[0];
  const Value& reasons = (*v)[1];
  const Value& obligations = (*v)[2];
  if (!allow.is_defined()) {
    d.reasons.push_back("policy decision is undefined");
    return d;
  }
  d.allow = allow.is_bool() && allow.as_bool();
  if (reasons.is_array() || reasons.is_set()) {
    for (const Value& r : reasons.as_array()) {
      d.reasons.push_back(r.is_string() ? r.as_string() : to_json(r));
    }
  }
  if (obligations.is_object()) d.obligations = obligations;
  if (!d.allow && d.reasons.empty()) d.reasons.push_back("denied by policy");
  return d;
}

}  // namespace ztslm::policy
