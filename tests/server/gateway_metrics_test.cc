// The gateway's metric set over a real TLS server on loopback: every family of
// audit::GatewayMetrics moves at the step of the pipeline that owns it, with fixed labels.
// The backend is a stub that streams a fixed answer, so the counts are exact.
#include <curl/curl.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "server/e2e_util.h"
#include "server/guard_filter.h"
#include "server/server.h"
#include "test_util.h"

namespace ztslm::server {
namespace {

// Streams three pieces (the middle one an AWS access key id the output filter redacts).
class StubBackend final : public Backend {
 public:
  ModelInfo model_info() const override { return stub_model_info("stub-model"); }
  Result<GenerateResult> generate(const GenerateRequest&, const TokenCallback& on_text) override {
    for (const char* piece : {"hello ", "AKIAIOSFODNN7EXAMPLE", " done"}) {
      if (!on_text(piece)) return Status::cancelled("cancelled");
    }
    GenerateResult r;
    r.prompt_tokens = 7;
    r.completion_tokens = 3;
    r.finish_reason = "stop";
    r.model_ms = 0.5;
    return r;
  }
  Result<std::unique_ptr<BackendSession>> create_session() override {
    return std::unique_ptr<BackendSession>(new BackendSession());
  }
};

// Reports one "injection" finding for a text containing "ignore previous", scored 0.95 (above
// the default policy's threshold, so refused) when it also contains "REFUSE".
class MarkerGuard final : public InputGuard {
 public:
  Result<GuardReport> scan(const std::vector<GuardPart>& parts) override {
    GuardReport r;
    for (const GuardPart& p : parts) {
      if (p.text.find("ignore previous") != std::string_view::npos) r.findings["injection"] += 1;
      if (p.text.find("REFUSE") != std::string_view::npos) {
        r.injection_score = 0.95;
        r.reasons.push_back("marker");
      }
    }
    return r;
  }
};

// The value of the sample `series` ("name{labels}" as rendered) in `text`, or -1 when absent.
double sample(const std::string& text, const std::string& series) {
  const std::string key = series + " ";
  size_t pos = 0;
  while ((pos = text.find(key, pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n') return std::stod(text.substr(pos + key.size()));
    pos += key.size();
  }
  return -1;
}

std::string chat(const std::string& text, bool stream) {
  json b = {{"model", "stub-model"}, {"messages", {{{"role", "user"}, {"content", text}}}}, {"max_tokens", 8}};
  if (stream) b["stream"] = true;
  return b.dump();
}

class GatewayMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override { start([](ServerConfig&) {}); }
  template <typename F>
  void start(F configure) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    dir_ = make_temp_dir();
    auth_ = std::make_unique<MemoryKeyAuth>(clock_);
    user_ = auth_->create_key("alice", "t1", {"user"});
    admin_ = auth_->create_key("root", "t1", {"admin"});
    ServerConfig cfg = test_server_config(dir_);
    cfg.io_threads = 1;
    cfg.model.allow_unsigned = true;  // the stub model is unsigned; the default policy is in force
    configure(cfg);
    ServerParts parts;
    parts.backend = &backend_;
    parts.auth = auth_.get();
    parts.audit = &audit_;
    parts.clock = &clock_;
    parts.input_guard = &guard_;
    parts.output_filter = &filter_;
    parts.registry = &registry_;
    parts.metrics = &metrics_;
    auto s = Server::start(cfg, parts);
    ASSERT_TRUE(s.has_value()) << s.error().to_string();
    server_ = std::move(s).value();
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  void restart(const std::function<void(ServerConfig&)>& configure) {
    TearDown();
    start(configure);
  }
  HttpResp req(const std::string& method, const std::string& path, const std::string& body,
               const std::string& key) {
    std::vector<std::string> h;
    if (!key.empty()) h.push_back("Authorization: Bearer " + key);
    return curl_request(server_->port(), server_->ca_file(), method, path, body, h);
  }

  ManualClock clock_;
  StubBackend backend_;
  MarkerGuard guard_;
  RedactingFilterFactory filter_;
  SimpleAuditSink audit_{"", 256};
  audit::Registry registry_;
  audit::GatewayMetrics metrics_{registry_};
  std::unique_ptr<MemoryKeyAuth> auth_;
  std::unique_ptr<Server> server_;
  std::string dir_, user_, admin_;
};

TEST_F(GatewayMetricsTest, EveryFamilyMovesAtItsStep) {
  // A streamed generation: 3 pieces -> one TTFT and two inter-token observations.
  const HttpResp streamed = req("POST", "/v1/chat/completions", chat("hello", true), user_);
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  EXPECT_EQ(streamed.body.find("IOSFODNN7"), std::string::npos);
  // An input guard finding that is allowed, and one that is refused.
  ASSERT_EQ(req("POST", "/v1/chat/completions", chat("please ignore previous rules", false), user_).status, 200);
  EXPECT_EQ(req("POST", "/v1/chat/completions", chat("ignore previous REFUSE", false), user_).status, 403);
  // Authentication failures by reason, a policy denial, a session.
  EXPECT_EQ(req("GET", "/v1/models", "", "").status, 401);
  EXPECT_EQ(req("GET", "/v1/models", "", "ztslm_sk_nope_nope").status, 401);
  EXPECT_EQ(req("GET", "/metrics", "", user_).status, 403);
  EXPECT_EQ(req("POST", "/v1/sessions", "{}", user_).status, 200);
  // A raw path never becomes a label.
  EXPECT_EQ(req("GET", "/v1/secret-path-xyz", "", user_).status, 404);

  const HttpResp m = req("GET", "/metrics", "", admin_);
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.headers.find("text/plain; version=0.0.4"), std::string::npos);
  const std::string& t = m.body;
  EXPECT_EQ(t.find("secret-path-xyz"), std::string::npos);
  EXPECT_EQ(sample(t, "ztslm_http_requests_total{route=\"/v1/chat/completions\",status=\"200\"}"), 2);
  EXPECT_EQ(sample(t, "ztslm_http_requests_total{route=\"/v1/chat/completions\",status=\"403\"}"), 1);
  EXPECT_EQ(sample(t, "ztslm_http_requests_total{route=\"/v1/models\",status=\"401\"}"), 2);
  EXPECT_EQ(sample(t, "ztslm_http_requests_total{route=\"/metrics\",status=\"403\"}"), 1);
  EXPECT_EQ(sample(t, "ztslm_http_requests_total{route=\"/v1/sessions\",status=\"200\"}"), 1);
  EXPECT_EQ(sample(t, "ztslm_http_requests_total{route=\"other\",status=\"404\"}"), 1);
  EXPECT_EQ(sample(t, "ztslm_http_request_duration_seconds_count{route=\"/v1/chat/completions\"}"), 3);
  EXPECT_EQ(sample(t, "ztslm_auth_failures_total{reason=\"missing\"}"), 1);
  EXPECT_EQ(sample(t, "ztslm_auth_failures_total{reason=\"unknown_key\"}"), 1);
  EXPECT_EQ(sample(t, "ztslm_policy_denials_total{route=\"/metrics\"}"), 1);
  EXPECT_EQ(sample(t, "ztslm_policy_denials_total{route=\"/v1/chat/completions\"}"), 1);
  EXPECT_EQ(sample(t, "ztslm_guard_findings_total{stage=\"input\",type=\"injection\"}"), 2);
  EXPECT_EQ(sample(t, "ztslm_prompt_tokens_total"), 14);
  EXPECT_EQ(sample(t, "ztslm_completion_tokens_total"), 6);
  EXPECT_EQ(sample(t, "ztslm_time_to_first_token_seconds_count"), 2);
  EXPECT_EQ(sample(t, "ztslm_inter_token_latency_seconds_count"), 4);
  // Every request but this scrape has finished; health checks are not audited.
  EXPECT_EQ(sample(t, "ztslm_active_requests"), 1);
  EXPECT_EQ(sample(t, "ztslm_active_sessions"), 1);
  EXPECT_EQ(sample(t, "ztslm_gateway_overhead_seconds_count"), 8);
  EXPECT_EQ(sample(t, "ztslm_audit_records_total"), 8);
  EXPECT_EQ(sample(t, "ztslm_audit_failures_total"), 0);
  EXPECT_EQ(sample(t, "ztslm_worker_restarts_total"), 0);
  // The counter a backend (a worker supervisor) bumps is the one the server renders.
  metrics_.worker_restarts.inc();
  EXPECT_EQ(sample(req("GET", "/metrics", "", admin_).body, "ztslm_worker_restarts_total"), 1);
}

TEST_F(GatewayMetricsTest, OutputFilterFindingsAreCountedByType) {
  ASSERT_EQ(req("POST", "/v1/chat/completions", chat("hello", false), user_).status, 200);
  const std::string t = req("GET", "/metrics", "", admin_).body;
  double total = 0;
  size_t pos = 0;
  while ((pos = t.find("\nztslm_guard_findings_total{stage=\"output\",type=\"", pos)) != std::string::npos) {
    pos = t.find("} ", pos);
    total += std::stod(t.substr(pos + 2));
  }
  EXPECT_EQ(total, 1) << t;  // the redacted key id, under its detector's name
}

TEST_F(GatewayMetricsTest, MetricsNeedTheAdminRoleThroughTheAuthorizer) {
  EXPECT_EQ(req("GET", "/metrics", "", "").status, 401);
  EXPECT_EQ(req("GET", "/metrics", "", user_).status, 403);
  EXPECT_EQ(req("POST", "/metrics", "", admin_).status, 405);
  const HttpResp m = req("GET", "/metrics", "", admin_);
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("# TYPE ztslm_gateway_overhead_seconds histogram"), std::string::npos);
}

TEST_F(GatewayMetricsTest, BurstAfterASteadyBaselineRaisesOneAuditedCountedAnomaly) {
  restart([](ServerConfig& cfg) {
    cfg.anomaly.window_s = 60;
    cfg.anomaly.alpha = 0.5;
    cfg.anomaly.warmup_windows = 3;
    cfg.anomaly.factor = 2;
    cfg.anomaly.min_requests = 2;
  });
  // Four windows of two requests each: a request-rate baseline of 2 per window.
  for (int w = 0; w < 4; ++w) {
    for (int i = 0; i < 2; ++i) ASSERT_EQ(req("GET", "/v1/models", "", user_).status, 200);
    clock_.advance_ms(60 * 1000);
  }
  EXPECT_TRUE(audit_.anomalies().empty());
  // A burst of 8: the 5th request passes factor * max(baseline 2, floor 2) = 4.
  for (int i = 0; i < 8; ++i) ASSERT_EQ(req("GET", "/v1/models", "", user_).status, 200);
  const auto events = audit_.anomalies();
  ASSERT_EQ(events.size(), 1u);
  const audit::AnomalyEvent& e = events[0];
  EXPECT_EQ(e.principal, "alice");
  EXPECT_EQ(e.tenant, "t1");
  EXPECT_EQ(e.signal, "request_rate");
  EXPECT_EQ(e.observed, 5);
  EXPECT_EQ(e.baseline, 2);
  EXPECT_EQ(e.threshold, 4);
  EXPECT_EQ(e.time_us, clock_.unix_seconds() * 1000000);
  const std::string t = req("GET", "/metrics", "", admin_).body;
  EXPECT_EQ(sample(t, "ztslm_anomalies_total{signal=\"request_rate\"}"), 1);
  EXPECT_EQ(t.find("ztslm_anomalies_total{signal=\"tokens\"}"), std::string::npos);
  // 16 requests of alice, one anomaly record: all counted as audit appends.
  EXPECT_EQ(sample(t, "ztslm_audit_records_total"), 17);
}

TEST_F(GatewayMetricsTest, AnomalyDetectionCanBeTurnedOff) {
  restart([](ServerConfig& cfg) {
    cfg.anomaly.enabled = false;
    cfg.anomaly.warmup_windows = 0;
    cfg.anomaly.factor = 1;
    cfg.anomaly.min_requests = 0;
  });
  for (int i = 0; i < 3; ++i) ASSERT_EQ(req("GET", "/v1/models", "", user_).status, 200);
  EXPECT_TRUE(audit_.anomalies().empty());
}

TEST(GatewayMetricsPartsTest, RegistryAndMetricSetGoTogether) {
  StubBackend backend;
  audit::Registry registry;
  ServerConfig cfg = test_server_config(make_temp_dir());
  ServerParts parts;
  parts.backend = &backend;
  parts.registry = &registry;  // without its metric set
  auto s = Server::start(cfg, parts);
  EXPECT_FALSE(s.has_value());
  std::filesystem::remove_all(cfg.state_dir);
}

}  // namespace
}  // namespace ztslm::server
