#include "audit/chain.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>

#include "audit/canonical.h"
#include "audit/keys.h"
#include "audit_test_util.h"

namespace ztslm::audit {
namespace {

using testing::join_lines;
using testing::split_lines;

Signer test_signer(uint8_t fill = 7) {
  std::array<uint8_t, kKeyBytes> seed;
  seed.fill(fill);
  return Signer::from_seed(SecretKey(seed)).value();
}

// open, `n` request records with a checkpoint after every 4th, then a closing checkpoint.
std::string make_log(const Signer& signer, int n, bool close = true) {
  ChainWriter w;
  std::string out;
  int64_t ts = 1000;
  w.start_session();
  w.append("open", canonical_dump(Json{{"pubkey", signer.public_key_hex()}}), ts, &out);
  for (int i = 0; i < n; ++i) {
    Json body = {{"request_id", "r" + std::to_string(i)}, {"status", 200}, {"route", "/v1/x"}};
    w.append("request", canonical_dump(body), ++ts, &out);
    if (i % 4 == 3) {
      EXPECT_TRUE(w.append_checkpoint(signer, "count", false, ++ts, &out).has_value());
    }
  }
  if (close) {
    EXPECT_TRUE(w.append_checkpoint(signer, "close", true, ++ts, &out).has_value());
  }
  return out;
}

// Recomputes prev/hash from line `from` on, as an attacker who knows the format would.
void rechain(std::vector<std::string>& lines, size_t from) {
  std::string prev = from == 0 ? std::string(kGenesisHash)
                               : Json::parse(lines[from - 1])["hash"].get<std::string>();
  for (size_t i = from; i < lines.size(); ++i) {
    Json j = Json::parse(lines[i]);
    j["prev"] = prev;
    j.erase("hash");
    const std::string h = sha256_hex(canonical_dump(j));
    j["hash"] = h;
    lines[i] = canonical_dump(j);
    prev = h;
  }
}

VerifyReport verify(const std::string& bytes, VerifyOptions opt = VerifyOptions()) {
  return verify_bytes(bytes, opt);
}

TEST(ChainTest, WriterOutputVerifies) {
  const Signer s = test_signer();
  const std::string log = make_log(s, 10);
  const VerifyReport r = verify(log);
  EXPECT_TRUE(r.ok) << r.bad_line << ": " << r.reason;
  EXPECT_EQ(r.n_records, 1u + 10u + 2u + 1u);
  EXPECT_EQ(r.n_checkpoints, 3u);
  EXPECT_EQ(r.n_sessions, 1u);
  EXPECT_TRUE(r.closed);
  VerifyOptions pinned;
  pinned.pinned_pubkey = s.public_key_hex();
  EXPECT_TRUE(verify(log, pinned).ok);
}

TEST(ChainTest, ModifiedRecordIsDetected) {
  auto lines = split_lines(make_log(test_signer(), 10));
  std::string& l = lines[3];
  l.replace(l.find("\"status\":200"), 12, "\"status\":500");
  const VerifyReport r = verify(join_lines(lines));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_line, 4u);
  EXPECT_NE(r.reason.find("record modified"), std::string::npos) << r.reason;
}

TEST(ChainTest, ModifiedRecordWithRecomputedChainFailsAtNextCheckpoint) {
  auto lines = split_lines(make_log(test_signer(), 10));
  // Line 3 is request r1; the first checkpoint is line 6.
  lines[2].replace(lines[2].find("\"status\":200"), 12, "\"status\":403");
  rechain(lines, 2);
  const VerifyReport r = verify(join_lines(lines));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_line, 6u);
  EXPECT_NE(r.reason.find("signature"), std::string::npos) << r.reason;
}

TEST(ChainTest, DeletedRecordIsDetected) {
  auto lines = split_lines(make_log(test_signer(), 10));
  lines.erase(lines.begin() + 4);
  const VerifyReport r = verify(join_lines(lines));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_line, 5u);
  EXPECT_NE(r.reason.find("removed"), std::string::npos) << r.reason;
}

TEST(ChainTest, DeletedRecordWithRecomputedChainFailsAtCheckpoint) {
  auto lines = split_lines(make_log(test_signer(), 10));
  lines.erase(lines.begin() + 2);
  rechain(lines, 2);  // seq now has a gap: renumbering is also needed
  for (size_t i = 2; i < lines.size(); ++i) {
    Json j = Json::parse(lines[i]);
    j["seq"] = i;
    lines[i] = canonical_dump(j);
  }
  rechain(lines, 2);
  const VerifyReport r = verify(join_lines(lines));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_line, 5u);  // the checkpoint: its record count and signature no longer match
}

TEST(ChainTest, ReorderedRecordsAreDetected) {
  auto lines = split_lines(make_log(test_signer(), 10));
  std::swap(lines[2], lines[3]);
  const VerifyReport r = verify(join_lines(lines));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_line, 3u);
}

TEST(ChainTest, InsertedRecordIsDetected) {
  auto lines = split_lines(make_log(test_signer(), 10));
  lines.insert(lines.begin() + 3, lines[2]);  // a replayed copy
  const VerifyReport r = verify(join_lines(lines));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_line, 4u);
}

TEST(ChainTest, RecordAppendedOutOfChainIsDetected) {
  const Signer s = test_signer();
  auto lines = split_lines(make_log(s, 10));
  // A well-formed record whose prev is not the last hash.
  ChainWriter other;
  std::string extra;
  other.append("request", "{}", 5, &extra);
  lines.push_back(extra.substr(0, extra.size() - 1));
  const VerifyReport r = verify(join_lines(lines));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_line, lines.size());
}

TEST(ChainTest, RecordAppendedAfterClosingCheckpointIsDetected) {
  const Signer s = test_signer();
  auto lines = split_lines(make_log(s, 3));
  Json j = Json::parse(lines[1]);
  j["seq"] = lines.size();
  lines.push_back(canonical_dump(j));
  rechain(lines, lines.size() - 1);
  const VerifyReport r = verify(join_lines(lines));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_line, lines.size());
  EXPECT_NE(r.reason.find("after the closing checkpoint"), std::string::npos) << r.reason;
}

TEST(ChainTest, TruncatedTailIsDetected) {
  auto lines = split_lines(make_log(test_signer(), 10));
  lines.resize(lines.size() - 2);  // whole lines removed: no closing checkpoint any more
  VerifyReport r = verify(join_lines(lines));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_line, lines.size() + 1);
  EXPECT_NE(r.reason.find("without a closing checkpoint"), std::string::npos) << r.reason;
  VerifyOptions live;
  live.allow_open_tail = true;
  r = verify(join_lines(lines), live);
  EXPECT_TRUE(r.ok) << r.reason;
  EXPECT_EQ(r.unsigned_tail, 1u);
}

TEST(ChainTest, TornLastLineIsDetected) {
  const std::string log = make_log(test_signer(), 5);
  const std::string torn = log.substr(0, log.size() - 20);
  const VerifyReport r = verify(torn);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_line, split_lines(log).size());
  EXPECT_NE(r.reason.find("truncated tail"), std::string::npos) << r.reason;
}

TEST(ChainTest, BadCheckpointSignatureIsDetected) {
  auto lines = split_lines(make_log(test_signer(), 4));
  // Line 6 is the count checkpoint; flip one hex digit of its signature and re-hash.
  Json j = Json::parse(lines[5]);
  std::string sig = j["body"]["sig"];
  sig[10] = sig[10] == '0' ? '1' : '0';
  j["body"]["sig"] = sig;
  lines[5] = canonical_dump(j);
  rechain(lines, 5);
  const VerifyReport r = verify(join_lines(lines));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_line, 6u);
  EXPECT_NE(r.reason.find("signature does not verify"), std::string::npos) << r.reason;
}

TEST(ChainTest, ResignedLogFailsAgainstPinnedKey) {
  const Signer real = test_signer(1);
  const Signer forged = test_signer(2);
  const std::string forged_log = make_log(forged, 4);
  EXPECT_TRUE(verify(forged_log).ok);  // self-consistent ...
  VerifyOptions pinned;
  pinned.pinned_pubkey = real.public_key_hex();
  const VerifyReport r = verify(forged_log, pinned);  // ... but not signed by the pinned key
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_line, 1u);
}

TEST(ChainTest, NonCanonicalBytesAreRejected) {
  const std::string log = make_log(test_signer(), 2);
  auto lines = split_lines(log);
  const std::vector<std::pair<std::string, std::string>> edits = {
      {"{\"body\"", "{ \"body\""},         // whitespace
      {"\"route\":\"/v1/x\"", "\"route\":\"\\/v1\\/x\""},  // escaped slash
      {"\"status\":200", "\"status\":200.0"},  // float
      {"\"status\":200", "\"status\":2e2"},
  };
  for (const auto& [from, to] : edits) {
    auto copy = lines;
    const size_t at = copy[1].find(from);
    ASSERT_NE(at, std::string::npos) << from;
    copy[1].replace(at, from.size(), to);
    const VerifyReport r = verify(join_lines(copy));
    EXPECT_FALSE(r.ok) << to;
    EXPECT_EQ(r.bad_line, 2u) << to;
  }
}

TEST(ChainTest, EveryByteFlipIsDetected) {
  const std::string log = make_log(test_signer(), 5);
  for (size_t i = 0; i < log.size(); ++i) {
    for (uint8_t bit : {uint8_t{0x01}, uint8_t{0x20}}) {
      std::string copy = log;
      copy[i] = static_cast<char>(static_cast<uint8_t>(copy[i]) ^ bit);
      const VerifyReport r = verify(copy);
      ASSERT_FALSE(r.ok) << "flip at " << i;
    }
  }
}

TEST(ChainTest, EmptyAndGarbageInputsFail) {
  EXPECT_FALSE(verify("").ok);
  EXPECT_FALSE(verify("\n").ok);
  EXPECT_FALSE(verify("not json\n").ok);
  EXPECT_FALSE(verify(std::string(3, '\0')).ok);
  VerifyOptions small;
  small.limits.max_line_bytes = 64;
  const VerifyReport r = verify(make_log(test_signer(), 1), small);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.reason.find("exceeds limit"), std::string::npos) << r.reason;
}

TEST(ChainTest, DeepNestingIsBounded) {
  std::string deep(100, '[');
  deep = "{\"a\":" + deep + std::string(100, ']') + "}\n";
  const VerifyReport r = verify(deep);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.reason.find("depth"), std::string::npos) << r.reason;
}

TEST(ChainTest, CheckSingleRecordAcceptsAnyIntactRecord) {
  const auto lines = split_lines(make_log(test_signer(), 4));
  RecordParser parser;
  auto last = check_single_record(lines.back(), parser);
  ASSERT_TRUE(last.has_value()) << last.error().to_string();
  EXPECT_TRUE(last->closing);
  EXPECT_EQ(last->seq, lines.size() - 1);
  std::string bad = lines.back();
  bad[bad.size() - 3] = '2';  // "v":1 -> "v":2... keeps json valid
  EXPECT_FALSE(check_single_record(bad, parser).has_value());
}

}  // namespace
}  // namespace ztslm::audit
