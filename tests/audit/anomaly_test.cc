#include "audit/anomaly.h"

#include <gtest/gtest.h>

namespace ztslm::audit {
namespace {

constexpr int64_t kWindow = 60'000'000;

AnomalyOptions test_options() {
  AnomalyOptions o;
  o.window_us = kWindow;
  o.alpha = 0.5;
  o.warmup_windows = 3;
  o.factor = 4.0;
  o.min_requests = 5;
  o.min_tokens = 100;
  o.min_ratio = 0.05;
  o.min_requests_for_ratio = 10;
  return o;
}

// `n` requests of `tokens` each spread over window `w` (starting at t0).
std::vector<AnomalyEvent> feed(AnomalyDetector& d, const char* who, int64_t t0, int w, int n,
                               uint64_t tokens = 10, int denied = 0, int guard = 0) {
  std::vector<AnomalyEvent> all;
  for (int i = 0; i < n; ++i) {
    Observation o;
    o.principal = who;
    o.tenant = "acme";
    o.now_us = t0 + w * kWindow + i * (kWindow / (n + 1));
    o.tokens = tokens;
    o.denied = i < denied;
    o.guard_hit = i < guard;
    auto ev = d.observe(o);
    all.insert(all.end(), ev.begin(), ev.end());
  }
  return all;
}

TEST(AnomalyTest, RequestBurstAfterWarmupRaisesOneEvent) {
  Registry reg;
  auto& counter = reg.counter("ztslm_anomalies_total", "x", {"signal"});
  AnomalyDetector d(test_options(), &counter);
  const int64_t t0 = 1'000'000;
  for (int w = 0; w < 3; ++w) EXPECT_TRUE(feed(d, "alice", t0, w, 10).empty());
  EXPECT_TRUE(feed(d, "alice", t0, 3, 10).empty());  // normal window after warm-up
  const Baseline b = d.baseline("alice");
  EXPECT_EQ(b.windows, 3u);
  EXPECT_DOUBLE_EQ(b.request_rate, 10.0);
  // 4x the baseline of 10 is 40: the 41st request in a window is the anomaly, raised once.
  auto ev = feed(d, "alice", t0, 4, 100, /*tokens=*/0);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].signal, "request_rate");
  EXPECT_EQ(ev[0].principal, "alice");
  EXPECT_EQ(ev[0].tenant, "acme");
  EXPECT_DOUBLE_EQ(ev[0].observed, 41.0);
  EXPECT_DOUBLE_EQ(ev[0].baseline, 10.0);
  EXPECT_DOUBLE_EQ(ev[0].threshold, 40.0);
  EXPECT_EQ(counter.with({"request_rate"}).value(), 1u);
}

TEST(AnomalyTest, NothingDuringWarmup) {
  AnomalyDetector d(test_options());
  EXPECT_TRUE(feed(d, "bob", 0, 0, 10).empty());
  EXPECT_TRUE(feed(d, "bob", 0, 1, 500, 1000, 400, 400).empty());  // window 2 of 3
}

TEST(AnomalyTest, TokensDenyAndGuardRatesAreSeparateSignals) {
  AnomalyDetector d(test_options());
  for (int w = 0; w < 3; ++w) EXPECT_TRUE(feed(d, "carol", 0, w, 10, 50).empty());
  // Same request count, but 10x tokens, 30% denied, 50% guard hits.
  auto ev = feed(d, "carol", 0, 3, 10, 500, 3, 5);
  std::vector<std::string> signals;
  for (const auto& e : ev) signals.push_back(e.signal);
  EXPECT_EQ(signals, (std::vector<std::string>{"tokens", "deny_rate", "guard_hit_rate"}));
  EXPECT_DOUBLE_EQ(ev[1].observed, 0.3);
  EXPECT_DOUBLE_EQ(ev[1].threshold, 0.2);  // 4 x floor 0.05
}

TEST(AnomalyTest, BaselineFollowsEwmaAndIdleWindowsDecay) {
  AnomalyDetector d(test_options());
  feed(d, "dave", 0, 0, 10);
  feed(d, "dave", 0, 1, 20);
  feed(d, "dave", 0, 2, 1);  // closes window 1: ewma = 0.5 * 20 + 0.5 * 10 = 15
  EXPECT_DOUBLE_EQ(d.baseline("dave").request_rate, 15.0);
  feed(d, "dave", 0, 5, 1);  // closes window 2 (1 request) and skips 2 idle windows
  EXPECT_DOUBLE_EQ(d.baseline("dave").request_rate, (0.5 * 1 + 0.5 * 15) * 0.25);
  EXPECT_EQ(d.baseline("dave").windows, 5u);
}

TEST(AnomalyTest, TrackedPrincipalsAreBoundedLeastRecentlySeenFirst) {
  AnomalyOptions o = test_options();
  o.max_principals = 3;
  AnomalyDetector d(o);
  for (const char* p : {"p1", "p2", "p3"}) feed(d, p, 0, 0, 1);
  feed(d, "p1", 0, 0, 1);  // p1 is now the most recent
  feed(d, "p4", 0, 0, 1);  // evicts p2
  EXPECT_EQ(d.tracked(), 3u);
  EXPECT_EQ(d.baseline("p2").windows, 0u);
  feed(d, "p1", 0, 1, 1);
  EXPECT_EQ(d.baseline("p1").windows, 1u);
}

TEST(AnomalyTest, PrincipalsAreIndependent) {
  AnomalyDetector d(test_options());
  for (int w = 0; w < 3; ++w) {
    feed(d, "quiet", 0, w, 5, /*tokens=*/1);
    feed(d, "busy", 0, w, 100, 1);
  }
  EXPECT_TRUE(feed(d, "busy", 0, 3, 100, 1).empty());
  auto ev = feed(d, "quiet", 0, 3, 100, 1);  // 100 requests vs 4 x 5; 100 tokens vs 4 x 100
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].principal, "quiet");
}

}  // namespace
}  // namespace ztslm::audit
