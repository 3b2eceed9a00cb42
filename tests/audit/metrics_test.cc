#include "audit/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <thread>
#include <vector>

#include "audit/gateway_metrics.h"

namespace ztslm::audit {
namespace {

TEST(MetricsTest, RendersTextFormatGolden) {
  Registry r;
  auto& req = r.counter("ztslm_http_requests_total", "HTTP requests by route and status.",
                        {"route", "status"});
  req.with({"/v1/models", "200"}).inc();
  req.with({"/v1/chat/completions", "200"}).inc(3);
  req.with({"/v1/chat/completions", "401"}).inc();
  r.gauge("ztslm_active_sessions", "Sessions currently held.").get().set(2);
  auto& h = r.histogram("ztslm_overhead_seconds", "Gateway overhead.", {0.001, 0.01, 0.1});
  h.get().observe(0.0005);
  h.get().observe(0.001);   // le is inclusive
  h.get().observe(0.05);
  h.get().observe(7);
  r.counter("ztslm_empty_total", "A labelled family with no series yet.", {"reason"});
  const std::string expected =
      "# HELP ztslm_http_requests_total HTTP requests by route and status.\n"
      "# TYPE ztslm_http_requests_total counter\n"
      "ztslm_http_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 3\n"
      "ztslm_http_requests_total{route=\"/v1/chat/completions\",status=\"401\"} 1\n"
      "ztslm_http_requests_total{route=\"/v1/models\",status=\"200\"} 1\n"
      "# HELP ztslm_active_sessions Sessions currently held.\n"
      "# TYPE ztslm_active_sessions gauge\n"
      "ztslm_active_sessions 2\n"
      "# HELP ztslm_overhead_seconds Gateway overhead.\n"
      "# TYPE ztslm_overhead_seconds histogram\n"
      "ztslm_overhead_seconds_bucket{le=\"0.001\"} 2\n"
      "ztslm_overhead_seconds_bucket{le=\"0.01\"} 2\n"
      "ztslm_overhead_seconds_bucket{le=\"0.1\"} 3\n"
      "ztslm_overhead_seconds_bucket{le=\"+Inf\"} 4\n"
      "ztslm_overhead_seconds_sum 7.0515\n"
      "ztslm_overhead_seconds_count 4\n"
      "# HELP ztslm_empty_total A labelled family with no series yet.\n"
      "# TYPE ztslm_empty_total counter\n";
  EXPECT_EQ(r.render(), expected);
}

TEST(MetricsTest, EscapesLabelValuesAndHelp) {
  Registry r;
  auto& c = r.counter("x_total", "Help with \\ backslash\nand newline.", {"reason"});
  c.with({"a\"b\\c\nd"}).inc();
  c.with({std::string_view("bad\xff utf8")}).inc();
  const std::string expected =
      "# HELP x_total Help with \\\\ backslash\\nand newline.\n"
      "# TYPE x_total counter\n"
      "x_total{reason=\"a\\\"b\\\\c\\nd\"} 1\n"
      "x_total{reason=\"bad\xEF\xBF\xBD utf8\"} 1\n";
  EXPECT_EQ(r.render(), expected);
}

TEST(MetricsTest, LabelledHistogramPutsLeLast) {
  Registry r;
  auto& h = r.histogram("lat_seconds", "Latency.", {0.5}, {"route"});
  h.with({"/a"}).observe(0.25);
  const std::string expected =
      "# HELP lat_seconds Latency.\n"
      "# TYPE lat_seconds histogram\n"
      "lat_seconds_bucket{route=\"/a\",le=\"0.5\"} 1\n"
      "lat_seconds_bucket{route=\"/a\",le=\"+Inf\"} 1\n"
      "lat_seconds_sum{route=\"/a\"} 0.25\n"
      "lat_seconds_count{route=\"/a\"} 1\n";
  EXPECT_EQ(r.render(), expected);
}

TEST(MetricsTest, SeriesPerFamilyAreCapped) {
  Registry r;
  auto& c = r.counter("routes_total", "Routes.", {"route"}, /*max_series=*/3);
  for (int i = 0; i < 10; ++i) c.with({"/r" + std::to_string(i)}).inc();
  const std::string text = r.render();
  EXPECT_NE(text.find("routes_total{route=\"__overflow__\"} 7\n"), std::string::npos) << text;
  EXPECT_EQ(c.with({"/r0"}).value(), 1u);  // existing series keep counting
}

TEST(MetricsTest, ConcurrentIncrementsAreAllCounted) {
  Registry r;
  Counter& c = r.counter("n_total", "N.").get();
  Histogram& h = r.histogram("h_seconds", "H.", {1.0}).get();
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.inc();
        h.observe(0.5);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(c.value(), 80000u);
  const Histogram::Snapshot s = h.snapshot();
  EXPECT_EQ(s.count, 80000u);
  EXPECT_DOUBLE_EQ(s.sum, 40000.0);
}

TEST(MetricsTest, HistogramQuantileInterpolatesInsideBuckets) {
  const double bounds[] = {10e-6, 50e-6, 100e-6, 500e-6};
  Histogram h(bounds);
  for (int i = 0; i < 90; ++i) h.observe(30e-6);   // (10, 50] us
  for (int i = 0; i < 10; ++i) h.observe(300e-6);  // (100, 500] us
  const Histogram::Snapshot s = h.snapshot();
  EXPECT_NEAR(s.quantile(0.5), 10e-6 + 40e-6 * (50.0 / 90.0), 1e-12);
  EXPECT_NEAR(s.quantile(0.99), 100e-6 + 400e-6 * 0.9, 1e-12);
  h.observe(5.0);
  EXPECT_DOUBLE_EQ(h.snapshot().quantile(1.0), 500e-6);  // +Inf bucket: last finite bound
  EXPECT_EQ(Histogram(bounds).snapshot().quantile(0.5), 0.0);
}

TEST(MetricsTest, FormatsValues) {
  EXPECT_EQ(format_metric_value(1.0), "1");
  EXPECT_EQ(format_metric_value(0.25), "0.25");
  EXPECT_EQ(format_metric_value(5e-6), "5e-06");
  EXPECT_EQ(format_metric_value(1.0 / 0.0), "+Inf");
  EXPECT_EQ(format_metric_value(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(format_metric_value(std::nan("")), "NaN");
}

TEST(GatewayMetricsTest, DefinesTheIssueMetricSet) {
  Registry r;
  GatewayMetrics m(r);
  m.requests.with({"/v1/chat/completions", "200"}).inc();
  m.auth_failures.with({"expired_key"}).inc();
  m.policy_denials.with({"/v1/completions"}).inc();
  m.guard_findings.with({"output", "pii.email"}).inc(2);
  m.tokens_in.inc(10);
  m.tokens_out.inc(20);
  m.ttft.observe(0.2);
  m.inter_token.observe(0.02);
  m.overhead.observe(40e-6);
  m.active_sessions.add(1);
  m.worker_restarts.inc();
  m.anomalies.with({"request_rate"}).inc();
  const std::string text = r.render();
  for (const char* line : {
           "ztslm_http_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 1\n",
           "ztslm_auth_failures_total{reason=\"expired_key\"} 1\n",
           "ztslm_policy_denials_total{route=\"/v1/completions\"} 1\n",
           "ztslm_guard_findings_total{stage=\"output\",type=\"pii.email\"} 2\n",
           "ztslm_prompt_tokens_total 10\n", "ztslm_completion_tokens_total 20\n",
           "ztslm_time_to_first_token_seconds_bucket{le=\"0.25\"} 1\n",
           "ztslm_inter_token_latency_seconds_bucket{le=\"0.02\"} 1\n",
           "ztslm_gateway_overhead_seconds_bucket{le=\"5e-05\"} 1\n",
           "ztslm_gateway_overhead_seconds_bucket{le=\"2.5e-05\"} 0\n",
           "ztslm_active_sessions 1\n", "ztslm_worker_restarts_total 1\n",
           "ztslm_anomalies_total{signal=\"request_rate\"} 1\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line;
  }
}

}  // namespace
}  // namespace ztslm::audit
