#include "server/session/session_store.h"

#include <atomic>
#include <set>
#include <string>

#include "test_util.h"

namespace ztslm::server {
namespace {

std::atomic<int> g_live{0};

class FakeSession final : public BackendSession {
 public:
  FakeSession() { ++g_live; }
  ~FakeSession() override { --g_live; }
};

SessionStore::Factory fake_factory() {
  return [] { return Result<std::unique_ptr<BackendSession>>(std::unique_ptr<BackendSession>(new FakeSession())); };
}

// A state of a given size that records its destruction by tag.
std::set<std::string> g_destroyed;

class SizedSession final : public BackendSession {
 public:
  SizedSession(std::string tag, size_t bytes) : tag_(std::move(tag)), bytes_(bytes) {}
  ~SizedSession() override { g_destroyed.insert(tag_); }
  size_t memory_bytes() const override { return bytes_; }

 private:
  std::string tag_;
  size_t bytes_;
};

SessionConfig small_config() {
  SessionConfig c;
  c.max_sessions = 2;
  c.max_per_principal = 2;
  c.idle_ttl_s = 10;
  c.max_age_s = 100;
  return c;
}

const SessionOwner kAlice{"alice", "t1"};
const SessionOwner kBob{"bob", "t1"};
const SessionOwner kAliceOtherTenant{"alice", "t2"};

TEST(SessionStoreTest, BoundToItsPrincipal) {
  ManualClock clock;
  SessionStore store(small_config(), clock, fake_factory());
  auto s = store.create(kAlice);
  ASSERT_TRUE(s.has_value());
  EXPECT_TRUE(s->id.starts_with("sess_"));
  EXPECT_THAT(store.acquire(s->id, kBob), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store.acquire(s->id, kAliceOtherTenant), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store.remove(s->id, kBob), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store.acquire("sess_unknown", kAlice), StatusIs(StatusCode::kNotFound));
  auto lease = store.acquire(s->id, kAlice);
  ASSERT_TRUE(lease.has_value());
  EXPECT_NE(lease->backend(), nullptr);
  // One request at a time per session.
  EXPECT_THAT(store.acquire(s->id, kAlice), StatusIs(StatusCode::kFailedPrecondition));
}

TEST(SessionStoreTest, IdleTtlAndMaxAgeExpire) {
  ManualClock clock;
  const int live0 = g_live;
  SessionStore store(small_config(), clock, fake_factory());
  auto s = store.create(kAlice);
  ASSERT_TRUE(s.has_value());
  clock.advance_ms(9000);
  { ASSERT_TRUE(store.acquire(s->id, kAlice).has_value()); }  // use refreshes the idle timer
  clock.advance_ms(9000);
  { ASSERT_TRUE(store.acquire(s->id, kAlice).has_value()); }
  clock.advance_ms(10000);
  EXPECT_THAT(store.acquire(s->id, kAlice), StatusIs(StatusCode::kNotFound));
  EXPECT_EQ(g_live, live0);  // expired state destroyed (wiped)

  SessionConfig c = small_config();
  c.idle_ttl_s = 1000;
  c.max_age_s = 5;
  SessionStore aged(c, clock, fake_factory());
  auto t = aged.create(kAlice);
  ASSERT_TRUE(t.has_value());
  for (int i = 0; i < 4; ++i) {
    clock.advance_ms(1000);
    ASSERT_TRUE(aged.acquire(t->id, kAlice).has_value());
  }
  clock.advance_ms(1000);
  EXPECT_THAT(aged.acquire(t->id, kAlice), StatusIs(StatusCode::kNotFound));
}

TEST(SessionStoreTest, LruEvictsIdleAndDestroysState) {
  ManualClock clock;
  const int live0 = g_live;
  SessionStore store(small_config(), clock, fake_factory());
  auto a = store.create(kAlice);
  clock.advance_ms(1);
  auto b = store.create(kBob);
  ASSERT_TRUE(a.has_value() && b.has_value());
  { ASSERT_TRUE(store.acquire(a->id, kAlice).has_value()); }  // a is now most recent
  auto c = store.create(kAliceOtherTenant);                    // evicts b
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(store.evictions(), 1u);
  EXPECT_EQ(g_live, live0 + 2);
  EXPECT_THAT(store.acquire(b->id, kBob), StatusIs(StatusCode::kNotFound));
  EXPECT_TRUE(store.acquire(a->id, kAlice).has_value());
}

TEST(SessionStoreTest, BusySessionsAreNotEvictedAndDeleteWaitsForLease) {
  ManualClock clock;
  const int live0 = g_live;
  SessionStore store(small_config(), clock, fake_factory());
  auto a = store.create(kAlice);
  auto b = store.create(kBob);
  ASSERT_TRUE(a.has_value() && b.has_value());
  auto la = store.acquire(a->id, kAlice);
  auto lb = store.acquire(b->id, kBob);
  ASSERT_TRUE(la.has_value() && lb.has_value());
  EXPECT_THAT(store.create(kAliceOtherTenant), StatusIs(StatusCode::kResourceExhausted));
  ASSERT_TRUE(store.remove(a->id, kAlice).ok());
  EXPECT_EQ(g_live, live0 + 2);  // still leased: state alive until the request ends
  *la = SessionLease();
  EXPECT_EQ(g_live, live0 + 1);
}

TEST(SessionStoreTest, PerPrincipalLimit) {
  ManualClock clock;
  SessionConfig c = small_config();
  c.max_sessions = 10;
  c.max_per_principal = 1;
  SessionStore store(c, clock, fake_factory());
  ASSERT_TRUE(store.create(kAlice).has_value());
  EXPECT_THAT(store.create(kAlice), StatusIs(StatusCode::kResourceExhausted));
  EXPECT_TRUE(store.create(kBob).has_value());
}

// A store bounded only by bytes (`max_bytes`), whose sessions each claim `bytes` and are tagged
// `prefix` + their creation number.
SessionStore byte_bounded_store(ManualClock& clock, const std::string& prefix, size_t bytes,
                                size_t max_bytes = 10000) {
  SessionConfig c = small_config();
  c.max_sessions = 100;
  c.max_per_principal = 100;
  c.max_bytes = max_bytes;
  auto n = std::make_shared<int>(0);
  return SessionStore(c, clock, [n, prefix, bytes] {
    const std::string tag = prefix + std::to_string((*n)++);
    return Result<std::unique_ptr<BackendSession>>(std::unique_ptr<BackendSession>(new SizedSession(tag, bytes)));
  });
}

TEST(SessionStoreTest, ByteBoundEvictsTheLeastRecentlyUsedAndDestroysIt) {
  ManualClock clock;
  SessionStore store = byte_bounded_store(clock, "s", 4000);
  g_destroyed.clear();
  auto s0 = store.create(kAlice);
  clock.advance_ms(10);
  auto s1 = store.create(kBob);
  ASSERT_TRUE(s0.has_value() && s1.has_value());
  EXPECT_EQ(store.bytes(), 8000u);
  clock.advance_ms(10);
  { ASSERT_TRUE(store.acquire(s0->id, kAlice).has_value()); }  // s0 is now the most recently used
  // A third state (12000 > 10000) evicts exactly the least recently used one, s1, and wipes it.
  auto s2 = store.create(kAlice);
  ASSERT_TRUE(s2.has_value());
  EXPECT_EQ(g_destroyed, (std::set<std::string>{"s1"}));
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(store.bytes(), 8000u);
  EXPECT_EQ(store.evictions(), 1u);
  EXPECT_THAT(store.acquire(s1->id, kBob), StatusIs(StatusCode::kNotFound));
  EXPECT_TRUE(store.acquire(s0->id, kAlice).has_value());
}

TEST(SessionStoreTest, ByteBoundNeverEvictsBusySessionsAndChangesNothingWhenFull) {
  ManualClock clock;
  SessionStore store = byte_bounded_store(clock, "b", 6000);
  g_destroyed.clear();
  auto s0 = store.create(kAlice);
  ASSERT_TRUE(s0.has_value());
  auto lease = store.acquire(s0->id, kAlice);
  ASSERT_TRUE(lease.has_value());
  // The only session that could make room is busy: refused, and only the new state is wiped.
  EXPECT_THAT(store.create(kBob), StatusIs(StatusCode::kResourceExhausted));
  EXPECT_EQ(g_destroyed, (std::set<std::string>{"b1"}));
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(store.bytes(), 6000u);
  EXPECT_EQ(store.evictions(), 0u);
  // A state larger than the whole bound is refused outright.
  SessionStore small = byte_bounded_store(clock, "big", 6000, 5000);
  EXPECT_THAT(small.create(kAlice), StatusIs(StatusCode::kResourceExhausted));
  EXPECT_EQ(small.size(), 0u);
}

}  // namespace
}  // namespace ztslm::server
