// End-to-end tests of a real gateway on loopback (port 0): TLS with the generated CA, the
// OpenAI routes through libcurl, and raw OpenSSL clients for slow-loris and connection floods.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/inprocess_backend.h"
#include "server/http/tls.h"
#include "server/server.h"
#include "server/e2e_util.h"
#include "test_util.h"

namespace ztslm::server {
namespace {

using nlohmann::json;
using ::ztslm::testing::testdata_path;

constexpr const char* kModelId = "tiny-llama-spm-Q8_0";

// One gateway shared by the tests of this suite (model load and key setup once).
class GatewayE2ETest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::ztslm::testing::shared_dir().empty()) return;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    auto b = tiny_in_process_backend(256);
    ZTSLM_CHECK(b.has_value());
    backend_ = std::move(b).value().release();
    clock_ = new ManualClock();
    auth_ = new MemoryKeyAuth(*clock_);
    audit_ = new SimpleAuditSink("", 4096);
    alice_ = auth_->create_key("alice", "t1", {"user"});
    bob_ = auth_->create_key("bob", "t1", {"user"});
    admin_ = auth_->create_key("root", "t1", {"admin"});
    reader_ = auth_->create_key("carol", "t1", {"reader"});
    state_dir_ = make_temp_dir();
    ServerConfig cfg = test_server_config(state_dir_);
    cfg.limits.header_timeout_ms = 300;  // slow-loris test waits this long, no more
    cfg.limits.max_body_bytes = 64 * 1024;
    cfg.limits.max_concurrent_generations = 2;
    cfg.sessions.max_sessions = 4;
    // The embedded default policy is in force; the test model is unsigned, which the operator
    // admits here.
    cfg.model.allow_unsigned = true;
    ServerParts parts;
    parts.backend = backend_;
    parts.auth = auth_;
    parts.audit = audit_;
    parts.clock = clock_;
    auto s = Server::start(cfg, parts);
    ZTSLM_CHECK(s.has_value());
    server_ = std::move(s).value().release();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete backend_;
    delete audit_;
    delete auth_;
    delete clock_;
    server_ = nullptr;
    if (!state_dir_.empty()) std::filesystem::remove_all(state_dir_);
  }
  void SetUp() override { ZTSLM_REQUIRE_SHARED(); }

  static HttpResp req(const std::string& method, const std::string& path, const std::string& body = "",
                      const std::vector<std::string>& headers = {}) {
    return curl_request(server_->port(), server_->ca_file(), method, path, body, headers);
  }
  static std::string chat_body(const std::string& user_text, bool stream = false, int max_tokens = 4) {
    json b = {{"model", kModelId},
              {"messages", {{{"role", "system"}, {"content", "You are a test."}}, {{"role", "user"}, {"content", user_text}}}},
              {"max_tokens", max_tokens},
              {"temperature", 0},
              {"seed", 7}};
    if (stream) {
      b["stream"] = true;
      b["stream_options"] = {{"include_usage", true}};
    }
    return b.dump();
  }

  static inline Server* server_ = nullptr;
  static inline cli::InProcessBackend* backend_ = nullptr;
  static inline ManualClock* clock_ = nullptr;
  static inline MemoryKeyAuth* auth_ = nullptr;
  static inline SimpleAuditSink* audit_ = nullptr;
  static inline std::string alice_, bob_, admin_, reader_, state_dir_;
};

TEST_F(GatewayE2ETest, HealthOverTls13WithGeneratedCaAndPrivateKeyFiles) {
  const HttpResp r = req("GET", "/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.j()["status"], "ok");
  EXPECT_EQ(req("GET", "/readyz").status, 200);
  namespace fs = std::filesystem;
  for (const char* f : {"ca.pem", "ca-key.pem", "server.pem", "server-key.pem"}) {
    const auto perms = fs::status(state_dir_ + "/tls/" + f).permissions();
    EXPECT_EQ(perms & (fs::perms::group_all | fs::perms::others_all), fs::perms::none) << f;
  }
  // A client that will not speak TLS 1.3 is refused.
  CURL* c = curl_easy_init();
  const std::string url = "https://127.0.0.1:" + std::to_string(server_->port()) + "/healthz";
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CAINFO, server_->ca_file().c_str());
  curl_easy_setopt(c, CURLOPT_SSLVERSION, (6L << 16) | 6L);  // CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2
  EXPECT_NE(curl_easy_perform(c), CURLE_OK);
  curl_easy_cleanup(c);
}

TEST_F(GatewayE2ETest, NoCredentialIs401WithoutDetailAndIsAudited) {
  const size_t before = audit_->records().size();
  const HttpResp r = req("GET", "/v1/models");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.j()["error"]["type"], "authentication_error");
  EXPECT_EQ(r.j()["error"]["message"], "invalid or missing credentials");
  const auto recs = audit_->records();
  ASSERT_GT(recs.size(), before);
  EXPECT_EQ(recs.back().auth_failure, "missing");
  EXPECT_EQ(recs.back().http_status, 401);
  // Unknown routes are not revealed to anonymous callers either.
  EXPECT_EQ(req("GET", "/v1/whatever").status, 401);
}

TEST_F(GatewayE2ETest, BadExpiredAndRevokedKeysAre401) {
  EXPECT_EQ(req("GET", "/v1/models", "", {"Authorization: Bearer ztslm_sk_0000_bogus"}).status, 401);
  EXPECT_EQ(req("GET", "/v1/models", "", {"Authorization: Basic YWxhZGRpbg=="}).status, 401);
  std::string tampered = alice_;
  tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(req("GET", "/v1/models", "", {bearer(tampered)}).status, 401);

  const std::string expiring = auth_->create_key("dave", "t1", {"user"}, clock_->unix_seconds() + 60);
  EXPECT_EQ(req("GET", "/v1/models", "", {bearer(expiring)}).status, 200);
  clock_->advance_ms(61 * 1000);
  EXPECT_EQ(req("GET", "/v1/models", "", {bearer(expiring)}).status, 401);
  EXPECT_EQ(audit_->records().back().auth_failure, "expired");

  const std::string doomed = auth_->create_key("erin", "t1", {"user"});
  EXPECT_EQ(req("GET", "/v1/models", "", {bearer(doomed)}).status, 200);
  std::string_view id, secret;
  ASSERT_TRUE(MemoryKeyAuth::split_key(doomed, id, secret));
  ASSERT_TRUE(auth_->revoke(std::string(id)));
  EXPECT_EQ(req("GET", "/v1/models", "", {bearer(doomed)}).status, 401);
  EXPECT_EQ(audit_->records().back().auth_failure, "revoked");
}

TEST_F(GatewayE2ETest, RolesDenyByDefault) {
  // policy/default.rego: a role no rule names may do nothing; metrics need admin.
  EXPECT_EQ(req("GET", "/v1/models", "", {bearer(reader_)}).status, 403);
  EXPECT_EQ(req("POST", "/v1/chat/completions", chat_body("hi"), {bearer(reader_)}).status, 403);
  EXPECT_EQ(req("POST", "/v1/sessions", "", {bearer(reader_)}).status, 403);
  EXPECT_EQ(req("GET", "/metrics", "", {bearer(alice_)}).status, 403);
  // Above the user role's max_tokens cap (512).
  EXPECT_EQ(req("POST", "/v1/chat/completions", chat_body("hi", false, 513), {bearer(alice_)}).status, 403);
  // One auth failure in this test's own process, so its counter series exists (ctest runs each
  // test alone).
  EXPECT_EQ(req("GET", "/v1/models", "", {}).status, 401);
  const HttpResp m = req("GET", "/metrics", "", {bearer(admin_)});
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("ztslm_http_requests_total{"), std::string::npos);
  EXPECT_NE(m.body.find("ztslm_auth_failures_total"), std::string::npos);
  EXPECT_NE(m.body.find("ztslm_gateway_overhead_seconds_bucket"), std::string::npos);
}

TEST_F(GatewayE2ETest, ModelsList) {
  const HttpResp r = req("GET", "/v1/models", "", {bearer(alice_)});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.j()["object"], "list");
  EXPECT_EQ(r.j()["data"][0]["id"], kModelId);
  EXPECT_NE(r.headers.find("X-Request-Id: req_"), std::string::npos);
}

TEST_F(GatewayE2ETest, ChatNonStreaming) {
  const HttpResp r = req("POST", "/v1/chat/completions", chat_body("Hello there", false, 5), {bearer(alice_)});
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = r.j();
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["model"], kModelId);
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_TRUE(j["choices"][0]["message"]["content"].is_string());
  EXPECT_EQ(j["usage"]["completion_tokens"], 5);  // random weights rarely hit EOG in 5 tokens
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), 5);
  EXPECT_EQ(j["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  EXPECT_EQ(j["usage"]["total_tokens"].get<int>(),
            j["usage"]["prompt_tokens"].get<int>() + j["usage"]["completion_tokens"].get<int>());
  // Greedy decoding is deterministic: the same request gives the same text.
  const HttpResp again = req("POST", "/v1/chat/completions", chat_body("Hello there", false, 5), {bearer(alice_)});
  EXPECT_EQ(again.j()["choices"][0]["message"]["content"], j["choices"][0]["message"]["content"]);
  const auto rec = audit_->records().back();
  EXPECT_EQ(rec.principal, "alice");
  EXPECT_EQ(rec.decision, "allow");
  EXPECT_EQ(rec.tokens_out, 5u);
}

TEST_F(GatewayE2ETest, ChatStreamingMatchesNonStreaming) {
  const HttpResp whole = req("POST", "/v1/chat/completions", chat_body("Stream me", false, 6), {bearer(alice_)});
  const HttpResp r = req("POST", "/v1/chat/completions", chat_body("Stream me", true, 6), {bearer(alice_)});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.headers.find("text/event-stream"), std::string::npos);
  std::string text;
  std::vector<json> chunks;
  bool done = false;
  size_t pos = 0;
  while (pos < r.body.size()) {
    const size_t end = r.body.find("\n\n", pos);
    ASSERT_NE(end, std::string::npos);
    const std::string ev = r.body.substr(pos, end - pos);
    pos = end + 2;
    ASSERT_TRUE(ev.starts_with("data: ")) << ev;
    if (ev == "data: [DONE]") {
      done = true;
      continue;
    }
    chunks.push_back(json::parse(ev.substr(6)));
    EXPECT_EQ(chunks.back()["object"], "chat.completion.chunk");
    if (!chunks.back()["choices"].empty() && chunks.back()["choices"][0]["delta"].contains("content")) {
      text += chunks.back()["choices"][0]["delta"]["content"].get<std::string>();
    }
  }
  EXPECT_TRUE(done);
  ASSERT_GE(chunks.size(), 3u);
  EXPECT_EQ(chunks.front()["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(chunks[chunks.size() - 2]["choices"][0]["finish_reason"], "length");
  const json& usage = chunks.back();
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 6);
  EXPECT_TRUE(usage["usage"]["prompt_tokens_details"].contains("cached_tokens"));
  EXPECT_EQ(text, whole.j()["choices"][0]["message"]["content"].get<std::string>());
}

TEST_F(GatewayE2ETest, CompletionsRoute) {
  const json b = {{"model", kModelId}, {"prompt", "Once upon a time"}, {"max_tokens", 3}, {"temperature", 0}};
  const HttpResp r = req("POST", "/v1/completions", b.dump(), {bearer(alice_)});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.j()["object"], "text_completion");
  EXPECT_TRUE(r.j()["choices"][0]["text"].is_string());
  EXPECT_EQ(r.j()["usage"]["completion_tokens"], 3);
}

TEST_F(GatewayE2ETest, MalformedAndOversizedBodies) {
  const auto sessions = [&] {
    const std::string m = req("GET", "/metrics", "", {bearer(admin_)}).body;
    const size_t at = m.find("\nztslm_active_sessions ");
    return at == std::string::npos ? std::string("absent") : m.substr(at, m.find('\n', at + 1) - at);
  };
  const std::string sessions_before = sessions();
  // Each refusal: a clear 4xx in OpenAI's error format, one audit record with that status,
  // and no state left behind.
  const auto bad = [&](const std::string& body, long want, const char* what) {
    const size_t before = audit_->records().size();
    const HttpResp r = req("POST", "/v1/chat/completions", body, {bearer(alice_)});
    EXPECT_EQ(r.status, want) << what << ": " << r.body;
    EXPECT_TRUE(r.j().contains("error")) << what;
    const auto recs = audit_->records();
    EXPECT_EQ(recs.size(), before + 1) << what;
    if (recs.size() == before + 1) {
      EXPECT_EQ(recs.back().http_status, want) << what;
      // A body over the limit is refused by the HTTP layer before anything reads it, so before
      // authentication: that record names no principal.
      EXPECT_EQ(recs.back().principal, want == 413 ? "" : "alice") << what;
    }
    return r;
  };
  bad("{", 400, "truncated json");
  bad("", 400, "empty body");
  const HttpResp t = bad(R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[]})", 400, "tools");
  EXPECT_NE(t.j()["error"]["message"].get<std::string>().find("tools"), std::string::npos);
  bad(json({{"model", kModelId}, {"messages", {{{"role", "user"}, {"content", "x"}}}}, {"n", 2}}).dump(), 400, "n=2");
  bad(json({{"model", "gpt-4"}, {"messages", {{{"role", "user"}, {"content", "x"}}}}}).dump(), 404, "unknown model");
  bad(std::string(64, '[') + std::string(64, ']'), 400, "deep nesting");
  bad("{\"model\":\"" + std::string(70 * 1024, 'a') + "\"}", 413, "body over the limit");
  // A prompt longer than the context is a clean 400, not a hang or a 500.
  std::string long_text;
  for (int i = 0; i < 400; ++i) long_text += "word ";
  bad(chat_body(long_text), 400, "prompt over context");
  // The server still serves after all of that, and no session was created.
  EXPECT_EQ(req("GET", "/v1/models", "", {bearer(alice_)}).status, 200);
  EXPECT_EQ(sessions(), sessions_before);
}

TEST_F(GatewayE2ETest, SessionsReuseKvWithinAndNeverAcrossPrincipals) {
  const HttpResp s = req("POST", "/v1/sessions", "", {bearer(alice_)});
  ASSERT_EQ(s.status, 200) << s.body;
  const std::string sid = s.j()["id"];
  const std::string body = chat_body("Tell me about the sea", false, 3);
  const HttpResp r1 = req("POST", "/v1/chat/completions", body, {bearer(alice_), "X-Session-Id: " + sid});
  ASSERT_EQ(r1.status, 200) << r1.body;
  EXPECT_EQ(r1.j()["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  const HttpResp r2 = req("POST", "/v1/chat/completions", body, {bearer(alice_), "X-Session-Id: " + sid});
  ASSERT_EQ(r2.status, 200) << r2.body;
  const int cached = r2.j()["usage"]["prompt_tokens_details"]["cached_tokens"];
  EXPECT_GT(cached, 0);
  EXPECT_EQ(cached, r2.j()["usage"]["prompt_tokens"].get<int>() - 1);
  // Same answer with and without the cache (greedy).
  EXPECT_EQ(r2.j()["choices"][0]["message"]["content"], r1.j()["choices"][0]["message"]["content"]);

  // Bob: Alice's session id is "not found"; the same prompt in his own session reuses nothing.
  const HttpResp stolen = req("POST", "/v1/chat/completions", body, {bearer(bob_), "X-Session-Id: " + sid});
  EXPECT_EQ(stolen.status, 404);
  EXPECT_EQ(req("DELETE", "/v1/sessions/" + sid, "", {bearer(bob_)}).status, 404);
  const HttpResp bs = req("POST", "/v1/sessions", "{}", {bearer(bob_)});
  ASSERT_EQ(bs.status, 200);
  const HttpResp rb = req("POST", "/v1/chat/completions", body, {bearer(bob_), "X-Session-Id: " + bs.j()["id"].get<std::string>()});
  ASSERT_EQ(rb.status, 200);
  EXPECT_EQ(rb.j()["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  const HttpResp nos = req("POST", "/v1/chat/completions", body, {bearer(bob_)});
  EXPECT_EQ(nos.j()["usage"]["prompt_tokens_details"]["cached_tokens"], 0);

  // Delete, then the id is gone; a body with fields is refused and creates nothing.
  EXPECT_EQ(req("DELETE", "/v1/sessions/" + sid, "", {bearer(alice_)}).status, 200);
  EXPECT_EQ(req("POST", "/v1/chat/completions", body, {bearer(alice_), "X-Session-Id: " + sid}).status, 404);
  const size_t n = server_->gateway().sessions().size();
  EXPECT_EQ(req("POST", "/v1/sessions", R"({"ttl":5})", {bearer(alice_)}).status, 400);
  EXPECT_EQ(server_->gateway().sessions().size(), n);
}

TEST_F(GatewayE2ETest, SlowLorisHeaderIsCutOffAtTheTimeout) {
  RawTls c(server_->port(), server_->ca_file());
  ASSERT_TRUE(c.connected());
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(c.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "));
  const std::string resp = c.read_all();  // returns when the server closes
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // The deadline covers handshake + header (300 ms here); the socket is closed when it fires.
  EXPECT_EQ(resp, "");
  EXPECT_GE(s, 0.2);
  EXPECT_LT(s, 5.0);
  // The record is written after the socket closes: wait for it (bounded), then check it.
  std::vector<AuditRecord> records = audit_->records();
  for (int i = 0; i < 500 && (records.empty() || records.back().http_status != 408); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    records = audit_->records();
  }
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records.back().http_status, 408);
}

TEST_F(GatewayE2ETest, HeaderOverTheLimitIs431) {
  RawTls c(server_->port(), server_->ca_file());
  ASSERT_TRUE(c.connected());
  c.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n");
  EXPECT_TRUE(c.read_all().starts_with("HTTP/1.1 431"));
}

TEST_F(GatewayE2ETest, KeepAliveServesSeveralRequestsOnOneConnection) {
  RawTls c(server_->port(), server_->ca_file());
  ASSERT_TRUE(c.connected());
  c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string all = c.read_all();
  size_t n = 0;
  for (size_t p = all.find("HTTP/1.1 200"); p != std::string::npos; p = all.find("HTTP/1.1 200", p + 1)) ++n;
  EXPECT_EQ(n, 2u) << all;
}

TEST(GatewayLimitsTest, ConnectionFloodBeyondTheLimitGets503) {
  ZTSLM_REQUIRE_SHARED();
  auto backend = tiny_in_process_backend(64);
  ASSERT_TRUE(backend.has_value());
  const std::string dir = make_temp_dir();
  ServerConfig cfg = test_server_config(dir);
  cfg.limits.max_connections = 4;
  ServerParts parts;
  parts.backend = backend->get();
  auto s = Server::start(cfg, parts);
  ASSERT_TRUE(s.has_value()) << s.error().to_string();
  std::vector<std::unique_ptr<RawTls>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<RawTls>((*s)->port(), (*s)->ca_file()));
    ASSERT_TRUE(held.back()->connected());
  }
  for (int i = 0; i < 3; ++i) {
    RawTls extra((*s)->port(), (*s)->ca_file());
    ASSERT_TRUE(extra.connected());
    EXPECT_TRUE(extra.read_all().starts_with("HTTP/1.1 503")) << i;
  }
  // Far beyond the cap connections are closed without TLS work; still never a hang.
  std::vector<std::unique_ptr<RawTls>> flood;
  for (int i = 0; i < 20; ++i) flood.push_back(std::make_unique<RawTls>((*s)->port(), (*s)->ca_file()));
  held.clear();
  flood.clear();
  (*s)->stop();
  std::filesystem::remove_all(dir);
}

TEST(GatewayLimitsTest, StopDrainsAndClosesCleanly) {
  ZTSLM_REQUIRE_SHARED();
  auto backend = tiny_in_process_backend(64);
  ASSERT_TRUE(backend.has_value());
  const std::string dir = make_temp_dir();
  ServerConfig cfg = test_server_config(dir);
  ServerParts parts;
  parts.backend = backend->get();
  auto s = Server::start(cfg, parts);
  ASSERT_TRUE(s.has_value());
  const uint16_t port = (*s)->port();
  RawTls idle(port, (*s)->ca_file());
  ASSERT_TRUE(idle.connected());
  EXPECT_EQ(curl_request(port, (*s)->ca_file(), "GET", "/readyz").status, 200);
  (*s)->stop();
  EXPECT_EQ(idle.read_all(), "");  // closed, not hanging
  EXPECT_LT(curl_request(port, (*s)->ca_file(), "GET", "/healthz").status, 0);  // no longer listening
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ztslm::server
