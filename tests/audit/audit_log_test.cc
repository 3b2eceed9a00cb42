#include "audit/audit_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "audit/canonical.h"
#include "audit/log_reader.h"
#include "audit_test_util.h"
#include "test_util.h"

namespace ztslm::audit {
namespace {

using testing::FakeClock;
using testing::join_lines;
using testing::read_file;
using testing::split_lines;
using testing::TempDir;
using testing::write_file;

AuditLogOptions options_in(const TempDir& dir, FakeClock* clock = nullptr) {
  AuditLogOptions o;
  o.path = dir.file("audit.log");
  o.state_dir = dir.path();
  o.sync = SyncMode::kFdatasync;
  if (clock != nullptr) o.clock = [clock] { return (*clock)(); };
  return o;
}

RequestRecord sample_request(int i) {
  RequestRecord r;
  r.request_id = "req-" + std::to_string(i);
  r.principal = "alice";
  r.tenant = "acme";
  r.auth_method = "api_key";
  r.method = "POST";
  r.route = "/v1/chat/completions";
  r.model = {"tiny", "sha256:abcd", "builder@example.com"};
  r.decision = Decision::kAllow;
  r.reasons = {"role user may generate"};
  r.findings = {{"pii.email", 2}, {"injection", 1}};
  r.injection_score = 0.25;
  r.guard_reasons = {"model"};
  r.guard_action = "spotlight";
  r.tokens_in = 12;
  r.tokens_out = 34;
  r.timings.total_us = 1500;
  r.timings.model_us = 1400;
  r.status = 200;
  return r;
}

VerifyReport verify_path(const std::string& path, bool live = false) {
  VerifyOptions o;
  o.allow_open_tail = live;
  auto r = verify_file(path, o);
  EXPECT_TRUE(r.has_value());
  return r.has_value() ? *r : VerifyReport();
}

TEST(AuditLogTest, WritesAVerifiableLog) {
  TempDir dir;
  FakeClock clock;
  {
    auto log = AuditLog::open(options_in(dir, &clock));
    ASSERT_TRUE(log.has_value()) << log.error().to_string();
    for (int i = 0; i < 5; ++i) {
      auto receipt = (*log)->append(sample_request(i));
      ASSERT_TRUE(receipt.has_value()) << receipt.error().to_string();
      EXPECT_EQ(receipt->seq, static_cast<uint64_t>(i + 1));  // seq 0 is the open record
    }
    AdminRecord admin;
    admin.action = "keys.create";
    admin.principal = "root";
    admin.target = "key-id-123";
    admin.decision = Decision::kAllow;
    admin.status = 201;
    ASSERT_TRUE((*log)->append(admin).has_value());
    ASSERT_TRUE((*log)->append(SystemEvent{0, "worker_restart", {{"exit", "signal 9"}}}).has_value());
    // Durable before append() returned: a live verify sees every record already.
    const VerifyReport live = verify_path(dir.file("audit.log"), true);
    EXPECT_TRUE(live.ok) << live.reason;
    EXPECT_EQ(live.n_records, 8u);
    EXPECT_TRUE((*log)->close().ok());
    EXPECT_FALSE((*log)->append(sample_request(9)).has_value());  // closed
  }
  const VerifyReport r = verify_path(dir.file("audit.log"));
  EXPECT_TRUE(r.ok) << r.bad_line << ": " << r.reason;
  EXPECT_EQ(r.n_records, 9u);
  EXPECT_TRUE(r.closed);

  // The request record holds what the issue asks for.
  const auto lines = split_lines(read_file(dir.file("audit.log")));
  const Json rec = Json::parse(lines[1]);
  EXPECT_EQ(rec["type"], "request");
  const Json& b = rec["body"];
  EXPECT_EQ(b["principal"], "alice");
  EXPECT_EQ(b["tenant"], "acme");
  EXPECT_EQ(b["auth"]["method"], "api_key");
  EXPECT_EQ(b["route"], "/v1/chat/completions");
  EXPECT_EQ(b["model"]["digest"], "sha256:abcd");
  EXPECT_EQ(b["decision"]["result"], "allow");
  EXPECT_EQ(b["findings"]["pii.email"], 2);
  EXPECT_EQ(b["guard"]["injection_score_milli"], 250);
  EXPECT_EQ(b["guard"]["reasons"], Json::array({"model"}));
  EXPECT_EQ(b["guard"]["action"], "spotlight");
  EXPECT_EQ(b["tokens"]["out"], 34);
  EXPECT_EQ(b["timings_us"]["model"], 1400);
  EXPECT_EQ(b["status"], 200);
  EXPECT_EQ(b["time_us"], clock());
}

TEST(AuditLogTest, KeysAreGeneratedPrivateAndReused) {
  TempDir dir;
  std::string pub;
  {
    auto log = AuditLog::open(options_in(dir));
    ASSERT_TRUE(log.has_value()) << log.error().to_string();
    pub = (*log)->public_key_hex();
  }
  for (const char* name : {"audit-hmac.key", "audit-signing.key"}) {
    struct stat st {};
    ASSERT_EQ(::stat(dir.file(name).c_str(), &st), 0) << name;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << name;
    EXPECT_EQ(st.st_size, 32) << name;
  }
  EXPECT_EQ(read_file(dir.file("audit-signing.pub")), pub + "\n");
  auto again = AuditLog::open(options_in(dir));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ((*again)->public_key_hex(), pub);
  EXPECT_TRUE((*again)->close().ok());
  VerifyOptions pinned;
  pinned.pinned_pubkey = read_public_key(dir.file("audit-signing.pub")).value();
  auto r = verify_file(dir.file("audit.log"), pinned);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->ok) << r->reason;
  EXPECT_EQ(r->n_sessions, 2u);
}

TEST(AuditLogTest, RejectsKeyFilesWithLoosePermissionsOrWrongSize) {
  TempDir dir;
  write_file(dir.file("audit-hmac.key"), std::string(32, 'k'));
  ::chmod(dir.file("audit-hmac.key").c_str(), 0644);
  EXPECT_THAT(AuditLog::open(options_in(dir)), StatusIs(StatusCode::kPermissionDenied));
  ::chmod(dir.file("audit-hmac.key").c_str(), 0600);
  write_file(dir.file("audit-hmac.key"), std::string(31, 'k'));
  EXPECT_THAT(AuditLog::open(options_in(dir)), StatusIs(StatusCode::kMalformed));
  ::unlink(dir.file("audit-hmac.key").c_str());
  ASSERT_EQ(::symlink("/etc/hostname", dir.file("audit-hmac.key").c_str()), 0);
  EXPECT_THAT(AuditLog::open(options_in(dir)), StatusIs(StatusCode::kPermissionDenied));
}

TEST(AuditLogTest, SecondWriterIsRefused) {
  TempDir dir;
  auto first = AuditLog::open(options_in(dir));
  ASSERT_TRUE(first.has_value());
  EXPECT_THAT(AuditLog::open(options_in(dir)), StatusIs(StatusCode::kFailedPrecondition));
}

TEST(AuditLogTest, HmacModeNeverWritesThePlaintext) {
  const std::string prompt = "my card is 4111-1111-1111-1111 SECRET-PROMPT";
  const std::string response = "RESPONSE-TEXT-xyz";
  for (BodyMode mode : {BodyMode::kHmac, BodyMode::kNone, BodyMode::kPlaintext}) {
    TempDir dir;
    AuditLogOptions o = options_in(dir);
    o.body_mode = mode;
    {
      auto log = AuditLog::open(o);
      ASSERT_TRUE(log.has_value()) << log.error().to_string();
      RequestRecord r = sample_request(1);
      r.prompt = prompt;
      r.response = response;
      ASSERT_TRUE((*log)->append(r).has_value());
    }
    const std::string file = read_file(dir.file("audit.log"));
    const Json body = Json::parse(split_lines(file)[1])["body"];
    EXPECT_EQ(body["prompt_bytes"], prompt.size());
    if (mode == BodyMode::kPlaintext) {
      EXPECT_NE(file.find("SECRET-PROMPT"), std::string::npos);
      EXPECT_EQ(body["response"], response);
      continue;
    }
    EXPECT_EQ(file.find("SECRET-PROMPT"), std::string::npos);
    // The whole card number: a short digit run such as "4111" can occur in a hex digest by chance.
    EXPECT_EQ(file.find("4111-1111-1111-1111"), std::string::npos);
    EXPECT_EQ(file.find("RESPONSE-TEXT"), std::string::npos);
    if (mode == BodyMode::kHmac) {
      const BodyMac mac(load_key_file(dir.file("audit-hmac.key")).value());
      EXPECT_EQ(body["prompt_hmac"], mac.hex(prompt));
      EXPECT_EQ(body["response_hmac"], mac.hex(response));
    } else {
      EXPECT_FALSE(body.contains("prompt_hmac"));
    }
  }
}

TEST(AuditLogTest, ConcurrentWritersAreGroupCommittedIntoOneValidChain) {
  TempDir dir;
  AuditLogOptions o = options_in(dir);
  o.queue_capacity = 8;  // small, so producers also meet back-pressure
  o.checkpoint_every_records = 50;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 100;
  std::vector<std::vector<uint64_t>> seqs(kThreads);
  AuditLogStats stats;
  {
    auto log = AuditLog::open(o);
    ASSERT_TRUE(log.has_value());
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          auto r = (*log)->append(sample_request(t * 1000 + i));
          if (r.has_value()) seqs[t].push_back(r->seq);
        }
      });
    }
    for (auto& th : threads) th.join();
    stats = (*log)->stats();
  }
  std::set<uint64_t> all;
  for (const auto& v : seqs) {
    EXPECT_EQ(v.size(), static_cast<size_t>(kPerThread));
    EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));  // a thread's records stay in its order
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_LT(stats.batches, static_cast<uint64_t>(kThreads * kPerThread));  // batched
  const VerifyReport r = verify_path(dir.file("audit.log"));
  EXPECT_TRUE(r.ok) << r.bad_line << ": " << r.reason;
  EXPECT_EQ(r.n_records - r.n_checkpoints, 1u + kThreads * kPerThread);
  EXPECT_EQ(r.n_checkpoints, kThreads * kPerThread / 50 + 1u);
}

TEST(AuditLogTest, CheckpointsByCountAndByTime) {
  TempDir dir;
  FakeClock clock;
  AuditLogOptions o = options_in(dir, &clock);
  o.checkpoint_every_records = 3;
  o.checkpoint_every_us = 60'000'000;
  auto log = AuditLog::open(o);
  ASSERT_TRUE(log.has_value());
  ASSERT_TRUE((*log)->append(sample_request(1)).has_value());
  ASSERT_TRUE((*log)->append(sample_request(2)).has_value());  // open + 2 = 3: count checkpoint
  EXPECT_EQ((*log)->stats().checkpoints, 1u);
  ASSERT_TRUE((*log)->append(sample_request(3)).has_value());
  ASSERT_TRUE((*log)->tick().ok());
  EXPECT_EQ((*log)->stats().checkpoints, 1u);  // not due yet
  clock.advance_us(60'000'000);
  ASSERT_TRUE((*log)->tick().ok());
  EXPECT_EQ((*log)->stats().checkpoints, 2u);
  ASSERT_TRUE((*log)->tick().ok());
  EXPECT_EQ((*log)->stats().checkpoints, 2u);  // nothing unsigned
  const auto lines = split_lines(read_file(dir.file("audit.log")));
  const Json cp = Json::parse(lines.back());
  EXPECT_EQ(cp["type"], "checkpoint");
  EXPECT_EQ(cp["body"]["reason"], "time");
  EXPECT_EQ(cp["body"]["records"], 1);
  EXPECT_EQ(cp["ts"], clock());
  EXPECT_TRUE(verify_path(dir.file("audit.log"), true).ok);
}

TEST(AuditLogTest, TornTailIsCutAndTheChainContinuesWithARecoveryRecord) {
  TempDir dir;
  const std::string path = dir.file("audit.log");
  {
    auto log = AuditLog::open(options_in(dir));
    ASSERT_TRUE(log.has_value());
    for (int i = 0; i < 4; ++i) ASSERT_TRUE((*log)->append(sample_request(i)).has_value());
  }
  // Simulate a crash in the middle of a write: the closing checkpoint was never written and
  // the last record only half.
  auto lines = split_lines(read_file(path));
  lines.pop_back();
  const std::string last_good = Json::parse(lines.back())["hash"];
  const std::string half = lines.back().substr(0, 40);
  write_file(path, join_lines(lines) + half);
  EXPECT_EQ(verify_path(path).reason.find("truncated tail"), 0u);
  {
    auto log = AuditLog::open(options_in(dir));
    ASSERT_TRUE(log.has_value()) << log.error().to_string();
    const RecoveryInfo& info = (*log)->recovery();
    EXPECT_TRUE(info.recovered);
    EXPECT_EQ(info.reason, "torn tail");
    EXPECT_EQ(info.torn_bytes, half.size());
    EXPECT_EQ(info.last_good_hash, last_good);
    ASSERT_TRUE((*log)->append(sample_request(10)).has_value());
  }
  const VerifyReport r = verify_path(path);
  EXPECT_TRUE(r.ok) << r.bad_line << ": " << r.reason;
  EXPECT_EQ(r.n_recoveries, 1u);
  EXPECT_EQ(r.n_sessions, 2u);
  const Json rec = Json::parse(split_lines(read_file(path))[lines.size()]);
  EXPECT_EQ(rec["type"], "recovery");
  EXPECT_EQ(rec["prev"], last_good);
  EXPECT_EQ(rec["body"]["torn_sha256"], sha256_hex(half));
}

TEST(AuditLogTest, UncleanShutdownWithoutTornBytesIsRecovered) {
  TempDir dir;
  const std::string path = dir.file("audit.log");
  {
    auto log = AuditLog::open(options_in(dir));
    ASSERT_TRUE(log.has_value());
    ASSERT_TRUE((*log)->append(sample_request(1)).has_value());
  }
  auto lines = split_lines(read_file(path));
  lines.pop_back();  // no closing checkpoint
  write_file(path, join_lines(lines));
  {
    auto log = AuditLog::open(options_in(dir));
    ASSERT_TRUE(log.has_value());
    EXPECT_EQ((*log)->recovery().reason, "unclean shutdown");
    EXPECT_EQ((*log)->recovery().torn_bytes, 0u);
  }
  EXPECT_TRUE(verify_path(path).ok);
}

TEST(AuditLogTest, WholeFileTornStartsAFreshChainWithRecovery) {
  TempDir dir;
  write_file(dir.file("audit.log"), "{\"body\":{");
  ::chmod(dir.file("audit.log").c_str(), 0600);
  {
    auto log = AuditLog::open(options_in(dir));
    ASSERT_TRUE(log.has_value()) << log.error().to_string();
    EXPECT_EQ((*log)->recovery().torn_bytes, 9u);
  }
  const VerifyReport r = verify_path(dir.file("audit.log"));
  EXPECT_TRUE(r.ok) << r.reason;
  EXPECT_EQ(r.n_recoveries, 1u);
}

TEST(AuditLogTest, CorruptLastRecordRefusesToOpen) {
  TempDir dir;
  const std::string path = dir.file("audit.log");
  { ASSERT_TRUE(AuditLog::open(options_in(dir)).has_value()); }
  auto lines = split_lines(read_file(path));
  lines.back().replace(lines.back().find("\"closing\":true"), 14, "\"closing\":fals");
  write_file(path, join_lines(lines));
  EXPECT_THAT(AuditLog::open(options_in(dir)), StatusIs(StatusCode::kMalformed));
}

TEST(AuditLogTest, OversizedRecordIsRefusedNotTruncatedSilently) {
  TempDir dir;
  AuditLogOptions o = options_in(dir);
  o.body_mode = BodyMode::kPlaintext;
  o.parse_limits.max_line_bytes = 4096;
  o.record_limits.max_plaintext_bytes = 100;
  auto log = AuditLog::open(o);
  ASSERT_TRUE(log.has_value());
  RequestRecord r = sample_request(1);
  const std::string big(1000, 'x');
  r.prompt = big;
  auto ok = (*log)->append(r);  // cut to 100 bytes and marked
  ASSERT_TRUE(ok.has_value());
  r.reasons.assign(60, std::string(200, 'r'));
  EXPECT_THAT((*log)->append(r), StatusIs(StatusCode::kResourceExhausted));
  EXPECT_TRUE((*log)->close().ok());
  const Json body = Json::parse(split_lines(read_file(dir.file("audit.log")))[1])["body"];
  EXPECT_EQ(body["prompt"].get<std::string>().size(), 100u);
  EXPECT_EQ(body["prompt_truncated"], true);
  EXPECT_EQ(body["prompt_bytes"], 1000);
}

TEST(AuditLogTest, HostileStringsStayInsideTheirField) {
  TempDir dir;
  auto log = AuditLog::open(options_in(dir));
  ASSERT_TRUE(log.has_value());
  RequestRecord r = sample_request(1);
  r.principal = "eve\n{\"type\":\"checkpoint\"}\"\\";
  r.route = std::string("/v1/\xff\xfe\x00zz", 9);  // invalid UTF-8 and a NUL
  r.request_id = std::string(5000, 'a');
  ASSERT_TRUE((*log)->append(r).has_value());
  EXPECT_TRUE((*log)->close().ok());
  const auto lines = split_lines(read_file(dir.file("audit.log")));
  ASSERT_EQ(lines.size(), 3u);  // open, request, close: the newline did not split the record
  const Json body = Json::parse(lines[1])["body"];
  EXPECT_EQ(body["principal"], r.principal);
  EXPECT_EQ(body["request_id"].get<std::string>().size(), 1024u);
  EXPECT_TRUE(verify_path(dir.file("audit.log")).ok);
}

TEST(LogReaderTest, TailPrintsTheLastRecordsAndFollowsAppends) {
  TempDir dir;
  auto log = AuditLog::open(options_in(dir));
  ASSERT_TRUE(log.has_value());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE((*log)->append(sample_request(i)).has_value());
  std::vector<std::string> seen;
  TailOptions t;
  t.last_n = 3;
  auto emit = [&](std::string_view l) { seen.emplace_back(l); };
  auto bad = [&](uint64_t, const Status& s) { ADD_FAILURE() << s.to_string(); };
  ASSERT_TRUE(tail_file(dir.file("audit.log"), t, emit, bad).ok());
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(Json::parse(seen.back())["seq"], 5);
  // Follow: the writer appends while tail polls; stop after two new records were seen.
  seen.clear();
  t.follow = true;
  t.poll_ms = 1;
  t.last_n = 0;
  int polls = 0;
  t.keep_going = [&] {
    if (++polls == 2) {
      EXPECT_TRUE((*log)->append(sample_request(6)).has_value());
      EXPECT_TRUE((*log)->append(sample_request(7)).has_value());
    }
    return seen.size() < 2 && polls < 10000;
  };
  ASSERT_TRUE(tail_file(dir.file("audit.log"), t, emit, bad).ok());
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(Json::parse(seen[1])["body"]["request_id"], "req-7");
}

TEST(LogReaderTest, OverlongLineIsReportedNotBuffered) {
  TempDir dir;
  write_file(dir.file("x.log"), std::string(200'000, 'a') + "\n");
  VerifyOptions o;
  o.limits.max_line_bytes = 1000;
  auto r = verify_file(dir.file("x.log"), o);
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->ok);
  EXPECT_EQ(r->bad_line, 1u);
  EXPECT_NE(r->reason.find("exceeds 1000 bytes"), std::string::npos) << r->reason;
  EXPECT_THAT(verify_file(dir.file("missing.log"), o), StatusIs(StatusCode::kNotFound));
}

}  // namespace
}  // namespace ztslm::audit
