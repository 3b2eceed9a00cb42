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

#include <stdlib.h>

#include <filesystem>

#include "policy/decision.h"
#include "policy/json.h"
#include "policy/quota.h"

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

// Percentiles of `lat_ns` as counters.
void report(benchmark::State& state, std::vector<double>& lat_ns) {
  std::sort(lat_ns.begin(), lat_ns.end());
  if (lat_ns.empty()) return;
  state.counters["p50_us"] = lat_ns[lat_ns.size() / 2] / 1000.0;
  state.counters["p99_us"] = lat_ns[lat_ns.size() * 99 / 100] / 1000.0;
}

// A quota store on a real SQLite file (write-behind, as the gateway runs it).
struct BenchStore {
  std::string dir;
  std::unique_ptr<ztslm::policy::QuotaStore> store;
  BenchStore() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ztslm-quota-bench-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    dir = tmpl;
    auto s = ztslm::policy::QuotaStore::open(dir + "/quotas.db");
    if (!s.has_value()) std::abort();
    store = std::move(s).value();
  }
  ~BenchStore() {
    store.reset();
    std::filesystem::remove_all(dir);
  }
};

ztslm::policy::QuotaRequest quota_request(const std::string& principal, int64_t now) {
  ztslm::policy::QuotaRequest r;
  r.tenant = "acme";
  r.principal = principal;
  r.principal_limits = {600000000, 600000000000, 6000000000000, 64};  // limits checked, never hit
  r.tenant_limits = r.principal_limits;
  r.reserve_tokens = 1024 + 40;
  r.now_unix = now;
  return r;
}

// The quota check alone: admit (both scopes, all four limits) and settle, over 1000 principals.
void BM_QuotaAdmitSettle(benchmark::State& state) {
  BenchStore bs;
  std::vector<std::string> principals;
  for (int i = 0; i < 1000; ++i) principals.push_back("svc-" + std::to_string(i));
  ztslm::policy::QuotaDenial denial;
  if (!bs.store->admit(quota_request(principals[0], 1767225600), denial).has_value()) {
    state.SkipWithError("quota admission refused");
    return;
  }
  std::vector<double> lat_ns;
  lat_ns.reserve(1 << 20);
  size_t i = 0;
  for (auto _ : state) {
    const ztslm::policy::QuotaRequest r = quota_request(principals[i++ % principals.size()], 1767225600);
    const auto t0 = std::chrono::steady_clock::now();
    auto lease = bs.store->admit(r, denial);
    lease->settle(300);
    const auto t1 = std::chrono::steady_clock::now();
    if (lat_ns.size() < lat_ns.capacity()) {
      lat_ns.push_back(static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
    }
  }
  report(state, lat_ns);
}
BENCHMARK(BM_QuotaAdmitSettle)->MinTime(2.0);

// What the gateway does per generation before the backend: the decision, then the quota check.
void BM_DecisionThenQuota(benchmark::State& state) {
  DecisionPoint& d = pdp();
  BenchStore bs;
  const Value input = *ztslm::policy::parse_json(kTypicalInput);
  ztslm::policy::QuotaDenial denial;
  std::vector<double> lat_ns;
  lat_ns.reserve(1 << 20);
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    auto dec = d.decide(input);
    const Value qc = dec.obligations.get("quota_class");  // picks the limits in the gateway
    benchmark::DoNotOptimize(qc);
    auto lease = bs.store->admit(quota_request("svc-chat", 1767225600), denial);
    lease->settle(300);
    const auto t1 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(dec);
    if (lat_ns.size() < lat_ns.capacity()) {
      lat_ns.push_back(static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
    }
  }
  report(state, lat_ns);
}
BENCHMARK(BM_DecisionThenQuota)->MinTime(2.0);

void BM_ParseInputJson(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(ztslm::policy::parse_json(kTypicalInput));
}
BENCHMARK(BM_ParseInputJson);

}  // namespace

BENCHMARK_MAIN();
