#include "server/metrics.h"

#include "test_util.h"

namespace ztslm::server {
namespace {

TEST(LatencyHistogramTest, QuantilesFollowTheData) {
  LatencyHistogram h;
  for (int i = 0; i < 900; ++i) h.observe_us(10.0);
  for (int i = 0; i < 100; ++i) h.observe_us(1000.0);
  EXPECT_EQ(h.count(), 1000u);
  const double p50 = h.quantile_us(0.5), p99 = h.quantile_us(0.99);
  // Buckets grow by 2^(1/4) (19%): a quantile lies within one bucket of the true value.
  EXPECT_GT(p50, 10.0 / 1.19);
  EXPECT_LE(p50, 10.0 * 1.19);
  EXPECT_GT(p99, 1000.0 / 1.19);
  EXPECT_LE(p99, 1000.0 * 1.19);
  EXPECT_NEAR(h.sum_us(), 900 * 10.0 + 100 * 1000.0, 1.0);
}

TEST(MetricsTest, ExpositionHasCountersAndHistograms) {
  Metrics m;
  m.add("ztslm_requests_total", "route=\"/v1/models\",code=\"200\"", 3);
  m.gateway_overhead().observe_us(20);
  const std::string text = m.render();
  EXPECT_NE(text.find("ztslm_requests_total{route=\"/v1/models\",code=\"200\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE ztslm_gateway_overhead_seconds histogram"), std::string::npos);
  EXPECT_NE(text.find("ztslm_gateway_overhead_seconds_count 1\n"), std::string::npos);
  EXPECT_NE(text.find("ztslm_gateway_overhead_seconds_bucket{le=\"+Inf\"} 1\n"), std::string::npos);
}

}  // namespace
}  // namespace ztslm::server

#include "server/guard_filter.h"

namespace ztslm::server {
namespace {

TEST(RedactingFilterTest, SecretSplitAcrossChunksIsNeverEmittedInPart) {
  RedactingFilterFactory factory;
  auto f = std::move(factory.create({})).value();
  // An AWS access key id split over three chunks, as a model might stream it.
  const std::string pieces[] = {"my key is AKIA", "IOSFODNN7", "EXAMPLE ok"};
  std::string out;
  bool stop = false;
  for (const auto& p : pieces) out += f->on_chunk(p, stop);
  out += f->finish();
  EXPECT_EQ(out.find("IOSFODNN7"), std::string::npos) << out;
  EXPECT_NE(out.find("[REDACTED:"), std::string::npos) << out;
  EXPECT_FALSE(f->findings().empty());
}

TEST(RedactingFilterTest, CanarySplitAcrossChunksIsNeverEmittedInPart) {
  RedactingFilterFactory factory;
  OutputPolicy op;
  op.canary = "zc-0123456789abcdef0123";
  op.system_prompt = "You are a test.";
  auto f = std::move(factory.create(op)).value();
  std::string text(600, 'a');
  for (size_t i = 0; i < text.size(); i += 7) text[i] = ' ';
  text += "the marker zc-0123456789abcdef0123 ends here";
  std::string out;
  bool stop = false;
  for (size_t i = 0; i < text.size() && !stop; i += 2) out += f->on_chunk(std::string_view(text).substr(i, 2), stop);
  if (!stop) out += f->finish();
  EXPECT_EQ(out.find("zc-"), std::string::npos);
  EXPECT_EQ(f->block_reason(), "system_prompt_leak");
  EXPECT_TRUE(text.starts_with(out));  // what went out is a clean prefix
}

TEST(RedactingFilterTest, PolicyActionsAreCheckedAndApplied) {
  RedactingFilterFactory factory;
  OutputPolicy bad_type;
  bad_type.actions = {{"no_such_type", "redact"}};
  EXPECT_FALSE(factory.create(bad_type).has_value());
  OutputPolicy bad_action;
  bad_action.actions = {{"email", "mask"}};
  EXPECT_FALSE(factory.create(bad_action).has_value());
  OutputPolicy flag;
  flag.actions = {{"email", "flag"}};
  auto f = std::move(factory.create(flag)).value();
  bool stop = false;
  std::string out = f->on_chunk("write to alice@example.com today", stop);
  out += f->finish();
  EXPECT_EQ(out, "write to alice@example.com today");
  EXPECT_EQ(f->findings().at("email"), 1u);
  EXPECT_EQ(f->block_reason(), "");
}

}  // namespace
}  // namespace ztslm::server
