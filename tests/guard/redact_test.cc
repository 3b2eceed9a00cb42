#include "guard/redact.h"

#include <map>
#include <random>

#include "corpus.h"

namespace ztslm::guard {
namespace {

using ::ztslm::guard::testing::read_jsonl;

std::string stream(const std::string& text, const RedactionPolicy& policy, std::mt19937_64& rng,
                   size_t max_chunk, StreamRedactor** keep = nullptr) {
  StreamRedactor r(policy);
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t n = std::min<size_t>(text.size() - pos, 1 + rng() % max_chunk);
    auto part = r.push(std::string_view(text).substr(pos, n));
    EXPECT_TRUE(part.has_value());
    out += *part;
    pos += n;
  }
  auto rest = r.finish();
  EXPECT_TRUE(rest.has_value());
  out += *rest;
  (void)keep;
  return out;
}

TEST(RedactTest, ReplacesWithTypedPlaceholder) {
  auto r = redact("card 4111 1111 1111 1111 and mail a.b@example.com", RedactionPolicy{});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->text, "card [REDACTED:credit_card] and mail [REDACTED:email]");
  EXPECT_EQ(r->findings.size(), 2u);
  EXPECT_FALSE(r->blocked);
}

TEST(RedactTest, BlockEndsOutputBeforeFinding) {
  RedactionPolicy p;
  p[DlpType::kAwsAccessKeyId] = DlpAction::kBlock;
  auto r = redact("mail a@example.com then AKIAIOSFODNN7EXAMPLE and more", p);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->blocked);
  EXPECT_EQ(r->text, "mail [REDACTED:email] then ");
}

TEST(RedactTest, FlagKeepsText) {
  RedactionPolicy p;
  p[DlpType::kEmail] = DlpAction::kFlag;
  auto r = redact("mail a@example.com", p);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->text, "mail a@example.com");
  ASSERT_EQ(r->findings.size(), 1u);
  EXPECT_EQ(r->findings[0].type, DlpType::kEmail);
}

TEST(StreamRedactorTest, NeverEmitsPartialSecretOneByteChunks) {
  const std::string key = "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";
  ASSERT_TRUE(github_token_checksum_valid(key));
  const std::string text = "token " + key + " end";
  StreamRedactor r(RedactionPolicy{});
  std::string out;
  for (const char c : text) {
    auto part = r.push(std::string_view(&c, 1));
    ASSERT_TRUE(part.has_value());
    out += *part;
    // No prefix of the key longer than 3 bytes is ever visible.
    EXPECT_EQ(out.find("ghp_"), std::string::npos);
  }
  out += *r.finish();
  EXPECT_EQ(out, "token [REDACTED:github_token] end");
}

TEST(StreamRedactorTest, HoldBackIsBounded) {
  StreamRedactor r(RedactionPolicy{});
  const std::string chunk(64, 'a');
  size_t max_held = 0;
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(r.push(chunk + " ").has_value());
    max_held = std::max(max_held, r.held_bytes());
  }
  EXPECT_LE(max_held, DlpScanner::shared().max_window() + 65);
}

// The property of issue 5: for many random chunkings of every corpus line, the streamed output
// equals the redaction of the whole text (with block and flag actions mixed in).
TEST(StreamRedactorTest, StreamedEqualsWholeOnCorpus) {
  ZTSLM_REQUIRE_SHARED();
  auto lines = read_jsonl("pii-dev.jsonl");
  ASSERT_GT(lines.size(), 1000u);
  std::mt19937_64 rng(5);
  RedactionPolicy mixed_policy;
  mixed_policy[DlpType::kPhone] = DlpAction::kFlag;
  mixed_policy[DlpType::kPrivateKey] = DlpAction::kBlock;
  const RedactionPolicy plain;
  size_t n_checked = 0;
  for (const auto& line : lines) {
    const std::string text = line["text"];
    for (const RedactionPolicy* policy : {&plain, static_cast<const RedactionPolicy*>(&mixed_policy)}) {
      auto whole = redact(text, *policy);
      ASSERT_TRUE(whole.has_value());
      for (const size_t max_chunk : {1, 7, 48}) {
        const std::string streamed = stream(text, *policy, rng, max_chunk);
        ASSERT_EQ(streamed, whole->text) << "chunk<=" << max_chunk << " line " << line["id"];
        ++n_checked;
      }
    }
  }
  EXPECT_GT(n_checked, 8000u);
}

// Concatenated corpus lines make long streams with many findings and open tokens.
TEST(StreamRedactorTest, StreamedEqualsWholeOnConcatenatedCorpus) {
  ZTSLM_REQUIRE_SHARED();
  auto lines = read_jsonl("pii-dev.jsonl");
  std::string text;
  for (const auto& line : lines) text += line["text"].get<std::string>() + "\n";
  auto whole = redact(text, RedactionPolicy{});
  ASSERT_TRUE(whole.has_value());
  std::mt19937_64 rng(11);
  for (const size_t max_chunk : {5, 40, 300}) {
    EXPECT_EQ(stream(text, RedactionPolicy{}, rng, max_chunk), whole->text);
  }
}

}  // namespace
}  // namespace ztslm::guard
