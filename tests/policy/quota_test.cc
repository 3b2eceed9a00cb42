// Quota store against a real SQLite file in a temporary directory.
#include "policy/quota.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

namespace ztslm::policy {
namespace {

constexpr int64_t kT0 = 1700000020;  // 40 s into a UTC minute

class QuotaStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ztslm-quota-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/quotas.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<QuotaStore> open(uint32_t flush_ms = 1000) {
    auto s = QuotaStore::open(path_, QuotaStore::Options{flush_ms});
    EXPECT_TRUE(s.has_value()) << s.error().to_string();
    return s.has_value() ? std::move(s).value() : nullptr;
  }
  static QuotaRequest req(std::string_view tenant, std::string_view principal, uint64_t tokens, int64_t now,
                          QuotaLimits pl = {}, QuotaLimits tl = {}) {
    QuotaRequest r;
    r.tenant = tenant;
    r.principal = principal;
    r.reserve_tokens = tokens;
    r.now_unix = now;
    r.principal_limits = pl;
    r.tenant_limits = tl;
    return r;
  }

  std::string dir_, path_;
};

TEST_F(QuotaStoreTest, RequestsPerMinuteFixedWindowWithRetryAfter) {
  auto store = open();
  QuotaLimits pl;
  pl.requests_per_minute = 2;
  QuotaDenial d;
  {
    auto a = store->admit(req("acme", "alice", 0, kT0, pl), d);
    ASSERT_TRUE(a.has_value());
    a->settle(0);
  }
  auto b = store->admit(req("acme", "alice", 0, kT0 + 1, pl), d);
  ASSERT_TRUE(b.has_value());
  b->settle(0);
  auto c = store->admit(req("acme", "alice", 0, kT0 + 5, pl), d);
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(d.reason(), "quota:requests_per_minute:principal");
  // The minute started at kT0 - 40; at kT0 + 5 it frees in 15 s.
  EXPECT_EQ(d.retry_after_s, 15);
  // The denial consumed nothing.
  EXPECT_EQ(store->usage(QuotaScope::kPrincipal, "acme", "alice", kT0 + 5).requests_minute, 2u);
  EXPECT_EQ(store->usage(QuotaScope::kTenant, "acme", "", kT0 + 5).requests_minute, 2u);
  // Another principal of the same tenant has its own count.
  EXPECT_TRUE(store->admit(req("acme", "bob", 0, kT0 + 5, pl), d).has_value());
  // The next minute is a new window.
  EXPECT_TRUE(store->admit(req("acme", "alice", 0, kT0 + 20, pl), d).has_value());
}

TEST_F(QuotaStoreTest, TenantLimitCoversAllItsPrincipals) {
  auto store = open();
  QuotaLimits tl;
  tl.tokens_per_minute = 100;
  QuotaDenial d;
  auto a = store->admit(req("acme", "alice", 60, kT0, {}, tl), d);
  ASSERT_TRUE(a.has_value());
  auto b = store->admit(req("acme", "bob", 60, kT0, {}, tl), d);
  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(d.reason(), "quota:tokens_per_minute:tenant");
  // Another tenant is not affected.
  EXPECT_TRUE(store->admit(req("globex", "bob", 60, kT0, {}, tl), d).has_value());
  // Settling with the real (smaller) usage frees the difference at once.
  a->settle(30);
  EXPECT_EQ(store->usage(QuotaScope::kTenant, "acme", "", kT0).tokens_minute, 30u);
  EXPECT_TRUE(store->admit(req("acme", "bob", 60, kT0, {}, tl), d).has_value());
}

TEST_F(QuotaStoreTest, ReservationsStopConcurrentOvershoot) {
  auto store = open();
  QuotaLimits pl;
  pl.tokens_per_minute = 1000;
  pl.tokens_per_day = 1500;
  QuotaDenial d;
  // Three requests in flight, each may generate 400 tokens: only two fit the minute.
  auto a = store->admit(req("acme", "alice", 400, kT0, pl), d);
  auto b = store->admit(req("acme", "alice", 400, kT0, pl), d);
  auto c = store->admit(req("acme", "alice", 400, kT0, pl), d);
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(b.has_value());
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(d.limit, "tokens_per_minute");
  a->settle(100);
  b->settle(100);
  // Next minute: the minute is empty, the day holds 200 of 1500.
  auto e = store->admit(req("acme", "alice", 1300, kT0 + 60, pl), d);
  ASSERT_FALSE(e.has_value());  // exceeds the minute by itself
  EXPECT_EQ(d.limit, "tokens_per_minute");
  auto f = store->admit(req("acme", "alice", 900, kT0 + 60, pl), d);
  ASSERT_TRUE(f.has_value());
  auto g = store->admit(req("acme", "alice", 500, kT0 + 120, pl), d);
  ASSERT_FALSE(g.has_value());
  EXPECT_EQ(d.reason(), "quota:tokens_per_day:principal");
  // The UTC day started at 1699920000; it ends 86400 s later.
  EXPECT_EQ(d.retry_after_s, 1699920000 + 86400 - (kT0 + 120));
}

TEST_F(QuotaStoreTest, ConcurrentSlotReleasedBySettleRefundAndDestruction) {
  auto store = open();
  QuotaLimits pl;
  pl.concurrent = 1;
  QuotaDenial d;
  {
    auto a = store->admit(req("acme", "alice", 10, kT0, pl), d);
    ASSERT_TRUE(a.has_value());
    auto b = store->admit(req("acme", "alice", 10, kT0, pl), d);
    ASSERT_FALSE(b.has_value());
    EXPECT_EQ(d.reason(), "quota:concurrent:principal");
    EXPECT_EQ(d.retry_after_s, 1);
  }  // destroyed unsettled: slot free, whole reservation charged
  EXPECT_EQ(store->usage(QuotaScope::kPrincipal, "acme", "alice", kT0).concurrent, 0u);
  EXPECT_EQ(store->usage(QuotaScope::kPrincipal, "acme", "alice", kT0).tokens_minute, 10u);
  auto c = store->admit(req("acme", "alice", 10, kT0, pl), d);
  ASSERT_TRUE(c.has_value());
  c->refund();  // as if never admitted
  const QuotaUsage u = store->usage(QuotaScope::kPrincipal, "acme", "alice", kT0);
  EXPECT_EQ(u.concurrent, 0u);
  EXPECT_EQ(u.requests_minute, 1u);
  EXPECT_EQ(u.tokens_minute, 10u);
  // A moved lease releases once.
  auto e = store->admit(req("acme", "alice", 5, kT0, pl), d);
  ASSERT_TRUE(e.has_value());
  QuotaLease moved = std::move(e).value();
  QuotaLease again = std::move(moved);
  again.settle(1);
  EXPECT_EQ(store->usage(QuotaScope::kPrincipal, "acme", "alice", kT0).tokens_minute, 11u);
  EXPECT_EQ(store->usage(QuotaScope::kTenant, "acme", "", kT0).concurrent, 0u);
}

TEST_F(QuotaStoreTest, ManyThreadsNeverExceedTheLimit) {
  auto store = open();
  QuotaLimits pl;
  pl.requests_per_minute = 50;
  pl.concurrent = 0;
  std::atomic<int> admitted{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        QuotaDenial d;
        auto l = store->admit(req("acme", "alice", 3, kT0, pl), d);
        if (l.has_value()) {
          admitted.fetch_add(1);
          l->settle(2);
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(admitted.load(), 50);
  const QuotaUsage u = store->usage(QuotaScope::kPrincipal, "acme", "alice", kT0);
  EXPECT_EQ(u.requests_minute, 50u);
  EXPECT_EQ(u.tokens_minute, 100u);
  EXPECT_EQ(u.concurrent, 0u);
}

TEST_F(QuotaStoreTest, CountersSurviveReopen) {
  QuotaLimits pl;
  pl.requests_per_minute = 3;
  pl.tokens_per_day = 1000;
  {
    auto store = open(60000);  // write-behind; closing writes the rest
    QuotaDenial d;
    for (int i = 0; i < 3; ++i) {
      auto l = store->admit(req("acme", "alice", 100, kT0, pl), d);
      ASSERT_TRUE(l.has_value());
      l->settle(200);
    }
  }
  {
    auto store = open(0);  // write-through
    QuotaDenial d;
    EXPECT_EQ(store->usage(QuotaScope::kPrincipal, "acme", "alice", kT0).requests_minute, 3u);
    EXPECT_EQ(store->usage(QuotaScope::kTenant, "acme", "", kT0).tokens_day, 600u);
    EXPECT_FALSE(store->admit(req("acme", "alice", 1, kT0 + 1, pl), d).has_value());
    EXPECT_EQ(d.limit, "requests_per_minute");
    // Next minute: the day still holds 600 of 1000.
    EXPECT_FALSE(store->admit(req("acme", "alice", 500, kT0 + 30, pl), d).has_value());
    EXPECT_EQ(d.limit, "tokens_per_day");
    auto l = store->admit(req("acme", "alice", 300, kT0 + 30, pl), d);
    ASSERT_TRUE(l.has_value());
    l->settle(300);
  }
  {
    auto store = open();
    EXPECT_EQ(store->usage(QuotaScope::kPrincipal, "acme", "alice", kT0 + 30).tokens_day, 900u);
  }
}

// A process that dies without closing the store keeps what its last write held and loses
// only the admissions after it (the documented write-behind bound).
TEST_F(QuotaStoreTest, CrashLosesOnlyWhatWasNotYetWritten) {
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto s = QuotaStore::open(path_, QuotaStore::Options{600000});
    if (!s.has_value()) _exit(2);
    QuotaDenial d;
    auto a = (*s)->admit(req("acme", "alice", 7, kT0), d);
    if (!a.has_value()) _exit(3);
    a->settle(7);
    if (!(*s)->flush().ok()) _exit(4);
    auto b = (*s)->admit(req("acme", "alice", 5, kT0), d);  // never written
    if (!b.has_value()) _exit(5);
    _exit(0);  // no destructors: a crash
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  auto store = open();
  const QuotaUsage u = store->usage(QuotaScope::kPrincipal, "acme", "alice", kT0);
  EXPECT_EQ(u.requests_minute, 1u);
  EXPECT_EQ(u.tokens_minute, 7u);
  EXPECT_EQ(u.concurrent, 0u);
}

TEST_F(QuotaStoreTest, CorruptFileIsAClearError) {
  {
    std::ofstream f(path_, std::ios::binary);
    f << std::string(4096, 'x');
  }
  auto s = QuotaStore::open(path_);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), StatusCode::kUnavailable);
  EXPECT_NE(s.error().message().find("not a valid quota database"), std::string::npos) << s.error().to_string();
  EXPECT_NE(s.error().message().find(path_), std::string::npos);
}

TEST_F(QuotaStoreTest, SecondOpenerIsRefusedWhileLocked) {
  auto first = open();
  ASSERT_NE(first, nullptr);
  auto second = QuotaStore::open(path_);
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code(), StatusCode::kUnavailable);
  EXPECT_NE(second.error().message().find("locked by another process"), std::string::npos)
      << second.error().to_string();
  first.reset();
  EXPECT_TRUE(QuotaStore::open(path_).has_value());
}

TEST_F(QuotaStoreTest, UnsupportedSchemaVersionAndBadRowsAreRefused) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 9", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto s = QuotaStore::open(path_);
  ASSERT_FALSE(s.has_value());
  EXPECT_NE(s.error().message().find("schema version 9"), std::string::npos) << s.error().to_string();

  std::filesystem::remove(path_);
  { auto fresh = open(); }
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "INSERT INTO quota_counters VALUES (0, 'acme', 'alice', 1700000000, -5, 0, 1699920000, 0)",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto bad = QuotaStore::open(path_);
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find("invalid counter row"), std::string::npos) << bad.error().to_string();
}

TEST_F(QuotaStoreTest, BadSubjectNamesChangeNothing) {
  auto store = open();
  QuotaDenial d;
  const std::string nul("a\0b", 3);
  auto r = store->admit(req("acme", nul, 1, kT0), d);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->usage(QuotaScope::kTenant, "acme", "", kT0).requests_minute, 0u);
}

}  // namespace
}  // namespace ztslm::policy
