// Audit log append (group commit, with and without fdatasync), verification, metric increments
// and anomaly observation. The log lives under $TMPDIR; each log benchmark verifies the file it
// wrote before reporting.
#include <benchmark/benchmark.h>

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "audit/anomaly.h"
#include "audit/audit_log.h"
#include "audit/gateway_metrics.h"
#include "audit/log_reader.h"
#include "core/check.h"

namespace ztslm::audit {
namespace {

std::string g_dir;
std::unique_ptr<AuditLog> g_log;

RequestRecord sample() {
  static const std::string prompt(2000, 'p');
  static const std::string response(500, 'r');
  RequestRecord r;
  r.request_id = "0f8e6c2a-bench";
  r.principal = "spiffe://example.org/bench";
  r.tenant = "acme";
  r.auth_method = "mtls";
  r.method = "POST";
  r.route = "/v1/chat/completions";
  r.model = {"tiny-qwen2", "sha256:9f86d081884c7d659a2feaa0c55ad015", "release@example.org"};
  r.decision = Decision::kAllow;
  r.reasons = {"role user may generate"};
  r.findings = {{"pii.email", 1}};
  r.tokens_in = 512;
  r.tokens_out = 128;
  r.timings.total_us = 150000;
  r.timings.model_us = 149950;
  r.status = 200;
  r.prompt = prompt;
  r.response = response;
  return r;
}

void open_log(SyncMode sync) {
  std::string tmpl = std::filesystem::temp_directory_path().string() + "/ztslm-audit-bench-XXXXXX";
  g_dir = mkdtemp(tmpl.data());
  AuditLogOptions o;
  o.path = g_dir + "/audit.log";
  o.state_dir = g_dir;
  o.sync = sync;
  auto log = AuditLog::open(o);
  ZTSLM_CHECK(log.has_value());
  g_log = std::move(*log);
}

void close_and_verify() {
  ZTSLM_CHECK(g_log->close().ok());
  g_log.reset();
  auto r = verify_file(g_dir + "/audit.log", VerifyOptions());
  ZTSLM_CHECK(r.has_value() && r->ok);
  std::filesystem::remove_all(g_dir);
}

void setup_sync(const benchmark::State&) { open_log(SyncMode::kFdatasync); }
void setup_nosync(const benchmark::State&) { open_log(SyncMode::kNone); }
void teardown(const benchmark::State&) { close_and_verify(); }

void BM_Append(benchmark::State& state) {
  const RequestRecord r = sample();
  for (auto _ : state) {
    auto receipt = g_log->append(r);
    if (!receipt.has_value()) state.SkipWithError("append failed");
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    const AuditLogStats s = g_log->stats();
    state.counters["records_per_batch"] =
        s.batches == 0 ? 0.0 : static_cast<double>(s.records) / static_cast<double>(s.batches);
  }
}
BENCHMARK(BM_Append)->Name("BM_AppendFdatasync")->Setup(setup_sync)->Teardown(teardown)
    ->Threads(1)->Threads(8)->Threads(32)->UseRealTime();
BENCHMARK(BM_Append)->Name("BM_AppendNoSync")->Setup(setup_nosync)->Teardown(teardown)
    ->Threads(1)->Threads(8)->UseRealTime();

void BM_EncodeRequestHmac(benchmark::State& state) {
  const BodyMac mac(SecretKey::generate().value());
  const RequestRecord r = sample();
  const BodyEncoding enc{BodyMode::kHmac, &mac};
  for (auto _ : state) {
    benchmark::DoNotOptimize(encode_request(r, enc, RecordLimits(), 1));
  }
}
BENCHMARK(BM_EncodeRequestHmac);

void BM_Verify(benchmark::State& state) {
  open_log(SyncMode::kNone);
  const RequestRecord r = sample();
  for (int i = 0; i < 2000; ++i) ZTSLM_CHECK(g_log->append(r).has_value());
  ZTSLM_CHECK(g_log->close().ok());
  g_log.reset();
  int64_t records = 0;
  for (auto _ : state) {
    auto rep = verify_file(g_dir + "/audit.log", VerifyOptions());
    ZTSLM_CHECK(rep.has_value() && rep->ok);
    records += static_cast<int64_t>(rep->n_records);
  }
  state.SetItemsProcessed(records);
  std::filesystem::remove_all(g_dir);
}
BENCHMARK(BM_Verify)->Unit(benchmark::kMillisecond);

Registry& registry() {
  static Registry r;
  return r;
}
GatewayMetrics& metrics() {
  static GatewayMetrics m(registry());
  return m;
}

void BM_CounterInc(benchmark::State& state) {
  Counter& c = metrics().tokens_out;
  const uint64_t before = c.value();
  for (auto _ : state) c.inc();
  if (state.thread_index() == 0) ZTSLM_CHECK(c.value() > before);
}
BENCHMARK(BM_CounterInc)->Threads(1)->Threads(2)->Threads(8);

void BM_LabelledCounterLookupInc(benchmark::State& state) {
  for (auto _ : state) metrics().requests.with({"/v1/chat/completions", "200"}).inc();
}
BENCHMARK(BM_LabelledCounterLookupInc)->Threads(1)->Threads(2);

void BM_HistogramObserve(benchmark::State& state) {
  Histogram& h = metrics().overhead;
  double v = 1e-6;
  for (auto _ : state) {
    h.observe(v);
    v = v < 1e-3 ? v * 1.1 : 1e-6;
  }
}
BENCHMARK(BM_HistogramObserve)->Threads(1)->Threads(2)->Threads(8);

void BM_Render(benchmark::State& state) {
  metrics().guard_findings.with({"pii.email"}).inc();
  for (auto _ : state) benchmark::DoNotOptimize(registry().render());
}
BENCHMARK(BM_Render);

void BM_AnomalyObserve(benchmark::State& state) {
  AnomalyDetector d(AnomalyOptions(), &metrics().anomalies);
  std::string names[64];
  for (int i = 0; i < 64; ++i) names[i] = "principal-" + std::to_string(i);
  int64_t now = 0;
  size_t i = 0;
  for (auto _ : state) {
    Observation o;
    o.principal = names[i++ & 63];
    o.now_us = now += 1000;
    o.tokens = 100;
    benchmark::DoNotOptimize(d.observe(o));
  }
}
BENCHMARK(BM_AnomalyObserve);

}  // namespace
}  // namespace ztslm::audit

BENCHMARK_MAIN();
