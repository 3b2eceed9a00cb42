// Quotas through a real gateway on loopback (TLS, port 0): 429 with Retry-After and an audit
// record that consumes nothing, token reservation and settlement, the concurrent limit, the
// class chosen by the policy's obligation, and counters that survive a restart.
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/inprocess_backend.h"
#include "policy/decision.h"
#include "policy/quota.h"
#include "server/e2e_util.h"
#include "server/policy_authz.h"
#include "server/quota_gate.h"
#include "server/server.h"
#include "test_util.h"

namespace ztslm::server {
namespace {

using nlohmann::json;
using ::ztslm::testing::testdata_path;

constexpr const char* kModelId = "tiny-llama-spm-Q8_0";

// Generations enter the real backend only when the test lets them (to hold one in flight).
class GatedBackend final : public Backend {
 public:
  explicit GatedBackend(Backend& inner) : inner_(&inner) {}
  ModelInfo model_info() const override { return inner_->model_info(); }
  Result<std::unique_ptr<BackendSession>> create_session() override { return inner_->create_session(); }
  Result<GenerateResult> generate(const GenerateRequest& req, const TokenCallback& on_text) override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++entered_;
      cv_.notify_all();
      cv_.wait(lock, [this] { return open_; });
    }
    return inner_->generate(req, on_text);
  }
  void close() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }
  void open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void wait_entered(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return entered_ >= n; });
  }

 private:
  Backend* inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  int entered_ = 0;
};

constexpr const char* kPolicy = R"(package ztslm.authz

import rego.v1

default allow := false

allow if "user" in input.principal.roles

reasons contains "no user role" if not "user" in input.principal.roles

default quota_class := "default"

quota_class := "elevated" if "vip" in input.principal.roles

obligations := {"max_tokens": 512, "quota_class": quota_class}
)";

class QuotaE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    ZTSLM_REQUIRE_SHARED();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    auto b = tiny_in_process_backend(256);
    ASSERT_TRUE(b.has_value()) << b.error().to_string();
    inner_ = std::move(b).value();
    backend_ = std::make_unique<GatedBackend>(*inner_);
    auth_ = std::make_unique<MemoryKeyAuth>(clock_);
    alice_ = auth_->create_key("alice", "t1", {"user"});
    bob_ = auth_->create_key("bob", "t1", {"user"});
    vip_ = auth_->create_key("vera", "t1", {"user", "vip"});
    state_dir_ = make_temp_dir();
    {
      std::ofstream f(state_dir_ + "/policy.rego");
      f << kPolicy;
    }
    ASSERT_TRUE(load_policy(pdp_, state_dir_ + "/policy.rego").ok());
    authorizer_ = std::make_unique<PolicyAuthorizer>(pdp_);
    cfg_ = *default_config();
    cfg_.port = 0;
    cfg_.state_dir = state_dir_;
    cfg_.limits.max_concurrent_generations = 4;
    QuotaClass def;
    def.principal.requests_per_minute = 2;
    QuotaClass elevated;
    elevated.principal.requests_per_minute = 4;
    cfg_.quotas.classes = {{"default", def}, {"elevated", elevated}};
  }
  void TearDown() override {
    server_.reset();
    if (!state_dir_.empty()) std::filesystem::remove_all(state_dir_);
  }

  // Starts the gateway; with `own_store` false it uses the server's own state_dir/quotas.db.
  void start(bool own_store) {
    ServerParts parts;
    parts.backend = backend_.get();
    parts.auth = auth_.get();
    parts.authorizer = authorizer_.get();
    parts.audit = &audit_;
    parts.clock = &clock_;
    if (own_store) {
      auto st = policy::QuotaStore::open(state_dir_ + "/quotas.db");
      ASSERT_TRUE(st.has_value()) << st.error().to_string();
      store_ = std::move(st).value();
      gate_ = std::make_unique<StoreQuotaGate>(*store_, cfg_.quotas);
      parts.quotas = gate_.get();
    }
    auto s = Server::start(cfg_, parts);
    ASSERT_TRUE(s.has_value()) << s.error().to_string();
    server_ = std::move(s).value();
  }
  void stop() {
    server_.reset();
    gate_.reset();
    store_.reset();
  }

  HttpResp chat(const std::string& key, int max_tokens = 4, const std::vector<std::string>& extra = {}) {
    json b = {{"model", kModelId},
              {"messages", {{{"role", "system"}, {"content", "You are a test."}}, {{"role", "user"}, {"content", "hi"}}}},
              {"max_tokens", max_tokens},
              {"temperature", 0}};
    std::vector<std::string> h = extra;
    h.push_back(bearer(key));
    return curl_request(server_->port(), server_->ca_file(), "POST", "/v1/chat/completions", b.dump(), h);
  }
  policy::QuotaUsage usage(const std::string& principal) const {
    return store_->usage(principal.empty() ? policy::QuotaScope::kTenant : policy::QuotaScope::kPrincipal, "t1",
                         principal, clock_.unix_seconds());
  }
  static uint64_t estimate() {  // the two messages of chat()
    return StoreQuotaGate::prompt_token_estimate(std::string("You are a test.hi").size(), 2);
  }

  ManualClock clock_;
  std::unique_ptr<cli::InProcessBackend> inner_;
  std::unique_ptr<GatedBackend> backend_;
  std::unique_ptr<MemoryKeyAuth> auth_;
  SimpleAuditSink audit_{"", 4096};
  policy::DecisionPoint pdp_{policy::DecisionPoint::Options{}};
  std::unique_ptr<PolicyAuthorizer> authorizer_;
  std::unique_ptr<policy::QuotaStore> store_;
  std::unique_ptr<StoreQuotaGate> gate_;
  std::unique_ptr<Server> server_;
  ServerConfig cfg_;
  std::string alice_, bob_, vip_, state_dir_;
};

TEST_F(QuotaE2ETest, RequestsPerMinuteExceededIs429WithRetryAfterAuditedAndConsumesNothing) {
  start(true);
  ASSERT_EQ(chat(alice_).status, 200);
  ASSERT_EQ(chat(alice_).status, 200);
  const policy::QuotaUsage before = usage("alice");
  EXPECT_EQ(before.requests_minute, 2u);
  const size_t n_sessions = server_->gateway().sessions().size();

  const HttpResp r = chat(alice_, 4, {"X-Session-Id: sess_nonexistent"});
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(r.j()["error"]["type"], "rate_limit_error");
  EXPECT_EQ(r.j()["error"]["code"], "rate_limit_exceeded");
  // The ManualClock's minute started 20 s before its first second.
  const int64_t t = clock_.unix_seconds();
  const int64_t left = (t / 60) * 60 + 60 - t;
  EXPECT_NE(r.headers.find("Retry-After: " + std::to_string(left) + "\r\n"), std::string::npos) << r.headers;
  const AuditRecord rec = audit_.records().back();
  EXPECT_EQ(rec.decision, "deny");
  EXPECT_EQ(rec.http_status, 429);
  ASSERT_FALSE(rec.reasons.empty());
  EXPECT_EQ(rec.reasons.back(), "quota:requests_per_minute:principal");
  EXPECT_EQ(rec.tokens_out, 0u);
  // Nothing consumed: counters, sessions, generation slots as before.
  const policy::QuotaUsage after = usage("alice");
  EXPECT_EQ(after.requests_minute, before.requests_minute);
  EXPECT_EQ(after.tokens_minute, before.tokens_minute);
  EXPECT_EQ(after.concurrent, 0u);
  EXPECT_EQ(server_->gateway().sessions().size(), n_sessions);
  EXPECT_EQ(server_->gateway().active_generations(), 0u);
  // Another principal of the tenant still has its own minute; the next minute frees alice.
  EXPECT_EQ(chat(bob_).status, 200);
  clock_.advance_ms(left * 1000);
  EXPECT_EQ(chat(alice_).status, 200);
}

TEST_F(QuotaE2ETest, TokensPerMinuteReservedThenSettledWithTheRealUsage) {
  cfg_.quotas.classes["default"].principal.requests_per_minute = 0;
  cfg_.quotas.classes["default"].tenant.tokens_per_minute = 150;
  start(true);
  const HttpResp first = chat(alice_, 4);
  ASSERT_EQ(first.status, 200) << first.body;
  const uint64_t used = first.j()["usage"]["total_tokens"].get<uint64_t>();
  // Settled: the tenant is charged what the request really used, not its reservation.
  EXPECT_EQ(usage("").tokens_minute, used);
  EXPECT_EQ(usage("alice").tokens_minute, used);
  // A request whose cap plus prompt estimate does not fit what is left is refused ...
  ASSERT_LT(used + estimate() + 1, 150u);
  const uint64_t left = 150 - used;
  const int too_many = static_cast<int>(left - estimate() + 1);
  ASSERT_LE(too_many, 512);  // under the policy's cap, so the reservation is what was asked
  const HttpResp r = chat(bob_, too_many);
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_NE(r.headers.find("Retry-After: "), std::string::npos);
  EXPECT_EQ(audit_.records().back().reasons.back(), "quota:tokens_per_minute:tenant");
  EXPECT_EQ(usage("").tokens_minute, used);
  // ... one that fits is served.
  EXPECT_EQ(chat(bob_, 4).status, 200);
}

TEST_F(QuotaE2ETest, ConcurrentGenerationsLimitedAndReleased) {
  cfg_.quotas.classes["default"].principal.requests_per_minute = 0;
  cfg_.quotas.classes["default"].principal.concurrent = 1;
  cfg_.quotas.classes["default"].tenant.concurrent = 1;
  start(true);
  backend_->close();
  HttpResp held;
  std::thread t([&] { held = chat(alice_); });
  backend_->wait_entered(1);
  EXPECT_EQ(usage("alice").concurrent, 1u);
  const HttpResp r = chat(alice_);
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_NE(r.headers.find("Retry-After: 1\r\n"), std::string::npos);
  EXPECT_EQ(audit_.records().back().reasons.back(), "quota:concurrent:principal");
  // The tenant allows one generation at a time too: bob, with a slot of his own, waits for it.
  const HttpResp b = chat(bob_);
  EXPECT_EQ(b.status, 429) << b.body;
  EXPECT_EQ(audit_.records().back().reasons.back(), "quota:concurrent:tenant");
  backend_->open();
  t.join();
  EXPECT_EQ(held.status, 200);
  EXPECT_EQ(usage("alice").concurrent, 0u);
  EXPECT_EQ(chat(alice_).status, 200);
}

TEST_F(QuotaE2ETest, QuotaClassFromThePolicyObligationPicksTheLimits) {
  start(true);
  for (int i = 0; i < 2; ++i) ASSERT_EQ(chat(alice_).status, 200);
  EXPECT_EQ(chat(alice_).status, 429);
  // vera's policy obligation names "elevated": four a minute.
  for (int i = 0; i < 4; ++i) ASSERT_EQ(chat(vip_).status, 200);
  EXPECT_EQ(chat(vip_).status, 429);
}

TEST_F(QuotaE2ETest, CountersSurviveARestartWithTheSameStateDir) {
  start(false);  // the server's own state_dir/quotas.db
  ASSERT_EQ(chat(alice_).status, 200);
  ASSERT_EQ(chat(alice_).status, 200);
  EXPECT_EQ(chat(alice_).status, 429);
  stop();
  start(false);
  const HttpResp r = chat(alice_);
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(audit_.records().back().reasons.back(), "quota:requests_per_minute:principal");
  EXPECT_EQ(chat(bob_).status, 200);
}

}  // namespace
}  // namespace ztslm::server
