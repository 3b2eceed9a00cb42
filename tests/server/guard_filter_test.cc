#include "server/guard_filter.h"

#include "test_util.h"

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
