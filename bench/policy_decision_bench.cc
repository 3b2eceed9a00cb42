// The default policy's decision (data.ztslm.authz over policy/default.rego) for a typical
// request. Goal: p50 <= 5 us, p99 <= 25 us on one core. Each benchmark first checks the
// decision it measures (allow with the expected max_tokens obligation), then reports the
// latency distribution as counters (p50_us, p99_us) next to Google Benchmark's mean.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "policy/decision.h"
#include "policy/json.h"

namespace {

using ztslm::policy::DecisionPoint;
using ztslm::policy::Value;

const char* kTypicalInput = R"({
  "principal": {"id": "svc-chat", "tenant": "acme", "roles": ["analyst"], "method": "jwt",
                "attributes": {"department": "research"}},
  "route": "/v1/chat/completions",
  "request": {"model": "phi-3-mini", "max_tokens": 1024, "stream": true, "n_messages": 4},
  "model": {"name": "phi-3-mini", "digest": "sha256:5d1f", "signer": "ztslm-release", "verified": true},
  "session": {"id": "sess-42", "tenant": "acme"},
  "client": {"address": "10.1.2.3"},
  "time": 1767225600000000000,
  "guard": {"injection_score": 0.07, "findings": [{"type": "email", "severity": "low"}]}
})";

std::string policy_dir() {
  const char* env = std::getenv("ZTSLM_POLICY_DIR");
  return env != nullptr ? env : std::string(ZTSLM_SOURCE_DIR) + "/policy";
}

DecisionPoint& pdp() {
  static DecisionPoint* p = [] {
    auto* d = new DecisionPoint(DecisionPoint::Options{});
    auto files = ztslm::policy::read_policy_files({policy_dir()});
    if (!files.has_value()) {
      std::fprintf(stderr, "%s\n", files.error().to_string().c_str());
      std::abort();
    }
    ztslm::Status s = d->load(*files, Value());
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.to_string().c_str());
      std::abort();
    }
    return d;
  }();
  return *p;
}

void BM_DefaultPolicyDecision(benchmark::State& state) {
  DecisionPoint& d = pdp();
  const Value input = *ztslm::policy::parse_json(kTypicalInput);
  const auto check = d.decide(input);
  if (!check.allow || check.obligations.get("max_tokens") != Value::integer(2048)) {
    state.SkipWithError("default policy did not allow the typical request with max_tokens 2048");
    return;
  }
  std::vector<double> lat_ns;
  lat_ns.reserve(1 << 20);
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    auto dec = d.decide(input);
    const auto t1 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(dec);
    if (lat_ns.size() < lat_ns.capacity()) {
      lat_ns.push_back(static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
    }
  }
  std::sort(lat_ns.begin(), lat_ns.end());
  if (!lat_ns.empty()) {
    state.counters["p50_us"] = lat_ns[lat_ns.size() / 2] / 1000.0;
    state.counters["p99_us"] = lat_ns[lat_ns.size() * 99 / 100] / 1000.0;
  }
}
BENCHMARK(BM_DefaultPolicyDecision)->MinTime(2.0);

void BM_DefaultPolicyDeny(benchmark::State& state) {
  DecisionPoint& d = pdp();
  Value input = *ztslm::policy::parse_json(kTypicalInput);
  input = *ztslm::policy::parse_json(std::string(kTypicalInput).replace(
      std::string(kTypicalInput).find("\"session\": {\"id\": \"sess-42\", \"tenant\": \"acme\"}"),
      std::string("\"session\": {\"id\": \"sess-42\", \"tenant\": \"acme\"}").size(),
      "\"session\": {\"id\": \"sess-42\", \"tenant\": \"globex\"}"));
  if (d.decide(input).allow) {
    state.SkipWithError("cross-tenant request was allowed");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(d.decide(input));
}
BENCHMARK(BM_DefaultPolicyDeny);

void BM_ParseInputJson(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(ztslm::policy::parse_json(kTypicalInput));
}
BENCHMARK(BM_ParseInputJson);

}  // namespace

BENCHMARK_MAIN();
