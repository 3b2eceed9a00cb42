#include "core/result.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace ztslm {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return Status::out_of_range("value {} is not positive", v);
  return v;
}

Result<int> doubled(int v) {
  ZTSLM_ASSIGN_OR_RETURN(int x, parse_positive(v));
  return 2 * x;
}

Status check_both(int a, int b) {
  ZTSLM_TRY(parse_positive(a));
  ZTSLM_TRY(parse_positive(b));
  return Status();
}

TEST(ResultTest, ValueAndErrorPropagate) {
  EXPECT_EQ(doubled(4).value(), 8);
  const Result<int> bad = doubled(-1);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(bad.error().message(), "value -1 is not positive");
  EXPECT_TRUE(check_both(1, 2).ok());
  EXPECT_EQ(check_both(1, 0).code(), StatusCode::kOutOfRange);
}

TEST(ResultTest, HoldsMoveOnlyValues) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r.has_value());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

TEST(StatusTest, FormatsMessagesAndContext) {
  const Status s = Status::malformed("tensor count {} exceeds limit {}", 70000, 65536);
  EXPECT_EQ(s.to_string(), "Malformed: tensor count 70000 exceeds limit 65536");
  EXPECT_EQ(s.with_context("model.gguf").message(),
            "model.gguf: tensor count 70000 exceeds limit 65536");
  EXPECT_EQ(str_format("{} {} {}", "a", 1.5, true), "a 1.5 true");
  EXPECT_EQ(str_format("only {}", 1, 2), "only 1");
  EXPECT_TRUE(Status().ok());
}

}  // namespace
}  // namespace ztslm
