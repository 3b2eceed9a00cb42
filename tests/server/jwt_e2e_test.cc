// JWT bearer tokens through a real gateway on loopback (TLS, port 0), configured the way
// `ztslm serve` configures it: the `jwt:` settings → make_jwt_verifier → identity::Authenticator.
// Every must-reject token of ../shared/testdata/jose/attacks.json gets the same 401 body (the
// 64 KiB one is refused earlier, by the header limit, with 431); the reason is in the audit
// record only.
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/socket.h>

#include <atomic>
#include <ctime>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "identity/base64url.h"
#include "identity/identity_test_util.h"
#include "identity/principal.h"
#include "server/e2e_util.h"
#include "server/identity_auth.h"
#include "server/server.h"
#include "test_util.h"

namespace ztslm::server {
namespace {

using identity::base64url_encode;
using identity::testing::Pkey;
using identity::testing::read_file;

std::string jose_path(const std::string& rel) { return ::ztslm::testing::testdata_path("jose/" + rel); }

class StubBackend final : public Backend {
 public:
  ModelInfo model_info() const override { return stub_model_info("stub-model"); }
  Result<GenerateResult> generate(const GenerateRequest&, const TokenCallback&) override {
    return Status::unavailable("stub");
  }
  Result<std::unique_ptr<BackendSession>> create_session() override { return Status::unavailable("stub"); }
};

std::string bn_b64u(EVP_PKEY* k, const char* name, int pad_to = 0) {
  BIGNUM* bn = nullptr;
  ZTSLM_CHECK(EVP_PKEY_get_bn_param(k, name, &bn) == 1);
  std::string out(static_cast<size_t>(pad_to > 0 ? pad_to : BN_num_bytes(bn)), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
  BN_free(bn);
  return base64url_encode(out);
}

Pkey load_public_pem(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* k = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ZTSLM_CHECK(k != nullptr);
  return Pkey(k);
}

// The JWK (public) of `k` with `kid`, as JSON text.
std::string jwk_json(EVP_PKEY* k, const std::string& kid) {
  json j = {{"kid", kid}, {"use", "sig"}};
  switch (EVP_PKEY_get_base_id(k)) {
    case EVP_PKEY_RSA:
      j.update({{"kty", "RSA"}, {"alg", "RS256"}, {"n", bn_b64u(k, OSSL_PKEY_PARAM_RSA_N)},
                {"e", bn_b64u(k, OSSL_PKEY_PARAM_RSA_E)}});
      break;
    case EVP_PKEY_EC:
      j.update({{"kty", "EC"}, {"alg", "ES256"}, {"crv", "P-256"}, {"x", bn_b64u(k, OSSL_PKEY_PARAM_EC_PUB_X, 32)},
                {"y", bn_b64u(k, OSSL_PKEY_PARAM_EC_PUB_Y, 32)}});
      break;
    default: {
      unsigned char raw[32];
      size_t n = sizeof raw;
      ZTSLM_CHECK(EVP_PKEY_get_raw_public_key(k, raw, &n) == 1);
      j.update({{"kty", "OKP"}, {"alg", "EdDSA"}, {"crv", "Ed25519"},
                {"x", base64url_encode(std::string(reinterpret_cast<char*>(raw), n))}});
    }
  }
  return j.dump();
}

JwtSettings attack_settings() {
  JwtSettings s;
  s.issuers = {"https://issuer.example"};
  s.audiences = {"model-server"};
  s.leeway_s = 60;
  s.default_tenant = "default";
  s.default_roles = {"user"};
  return s;
}

// A gateway whose only credential is a JWT verified against `jwks` (a JWKS document).
struct JwtGateway {
  std::string dir;
  StubBackend backend;
  SimpleAuditSink audit{"", 4096};
  std::unique_ptr<IdentityAuthStage> auth;
  std::unique_ptr<Server> server;

  Status start(const std::string& jwks, JwtSettings s) {
    dir = make_temp_dir();
    if (!jwks.empty()) {
      s.jwks_file = dir + "/jwks.json";
      std::ofstream(s.jwks_file) << jwks;
    }
    auto jwt = make_jwt_verifier(s, identity::system_unix_now);
    if (!jwt.has_value()) return jwt.error();
    auth = std::make_unique<IdentityAuthStage>(std::make_shared<const identity::Authenticator>(nullptr, *jwt, nullptr));
    ServerConfig cfg = test_server_config(dir);
    cfg.io_threads = 1;
    ServerParts parts;
    parts.backend = &backend;
    parts.auth = auth.get();
    parts.audit = &audit;
    ZTSLM_ASSIGN_OR_RETURN(server, Server::start(cfg, parts));
    return Status();
  }
  ~JwtGateway() {
    server.reset();
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }
  HttpResp models(const std::string& token) const {
    return curl_request(server->port(), server->ca_file(), "GET", "/v1/models", "", {"Authorization: Bearer " + token});
  }
};

// Signs a JWT with `k` (Ed25519) over the given claims.
std::string ed_token(EVP_PKEY* k, const json& claims) {
  return identity::testing::sign_eddsa(k, R"({"alg":"EdDSA","typ":"JWT","kid":"ed-1"})", claims.dump());
}

json good_claims() {
  const int64_t now = std::time(nullptr);
  return {{"iss", "https://issuer.example"}, {"aud", "model-server"}, {"sub", "erin"},
          {"iat", now - 10},                 {"exp", now + 600},       {"tenant", "t9"}};
}

class JwtE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    ZTSLM_REQUIRE_SHARED();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    ed_ = identity::testing::generate_key("ED25519");
    auto rs = load_public_pem(read_file(jose_path("attack-keys/rs256-pub.pem")));
    auto ec = load_public_pem(read_file(jose_path("attack-keys/es256-pub.pem")));
    // One gateway per trusted key, as attacks.json's verify_key assumes; the EC one also
    // trusts an Ed25519 key of this test.
    ASSERT_TRUE(rs_.start("{\"keys\":[" + jwk_json(rs.get(), "rs-1") + "]}", attack_settings()).ok());
    ASSERT_TRUE(
        ec_.start("{\"keys\":[" + jwk_json(ec.get(), "ec-1") + "," + jwk_json(ed_.get(), "ed-1") + "]}", attack_settings())
            .ok());
  }

  Pkey ed_;
  JwtGateway rs_, ec_;
};

TEST_F(JwtE2ETest, ValidRs256Es256AndEdDsaTokensAreAccepted) {
  const json doc = json::parse(read_file(jose_path("attacks.json")));
  int n = 0;
  for (const auto& c : doc["cases"]) {
    if (c["expect"] != "accept") continue;
    const JwtGateway& g = c["verify_key"].get<std::string>().find("rs256") != std::string::npos ? rs_ : ec_;
    const HttpResp r = g.models(c["token"].get<std::string>());
    EXPECT_EQ(r.status, 200) << c["id"] << " " << r.body;
    EXPECT_EQ(g.audit.records().back().principal, "jwt:alice");
    EXPECT_EQ(g.audit.records().back().auth_method, "jwt");
    ++n;
  }
  EXPECT_EQ(n, 2);
  const HttpResp r = ec_.models(ed_token(ed_.get(), good_claims()));
  EXPECT_EQ(r.status, 200) << r.body;
  const AuditRecord rec = ec_.audit.records().back();
  EXPECT_EQ(rec.principal, "jwt:erin");
  EXPECT_EQ(rec.tenant, "t9");
}

TEST_F(JwtE2ETest, EveryAttackTokenIs401WithOneBodyAndTheReasonOnlyInTheAudit) {
  const json doc = json::parse(read_file(jose_path("attacks.json")));
  const HttpResp none = curl_request(ec_.server->port(), ec_.server->ca_file(), "GET", "/v1/models");
  ASSERT_EQ(none.status, 401);
  int n = 0;
  for (const auto& c : doc["cases"]) {
    if (c["expect"] != "reject") continue;
    const JwtGateway& g = c["verify_key"].get<std::string>().find("rs256") != std::string::npos ? rs_ : ec_;
    const size_t before = g.audit.records().size();
    const HttpResp r = g.models(c["token"].get<std::string>());
    if (c["id"] == "oversized-64k") {
      // Past limits.max_header_bytes: refused by the HTTP layer before any decoding.
      EXPECT_EQ(r.status, 431);
      ++n;
      continue;
    }
    EXPECT_EQ(r.status, 401) << c["id"];
    EXPECT_EQ(r.body, none.body) << c["id"];  // identical: nothing says which check failed
    const auto recs = g.audit.records();
    ASSERT_EQ(recs.size(), before + 1) << c["id"];
    const AuditRecord& rec = recs.back();
    EXPECT_EQ(rec.http_status, 401);
    EXPECT_TRUE(rec.principal.empty());
    EXPECT_FALSE(rec.auth_failure.empty()) << c["id"];
    ASSERT_FALSE(rec.reasons.empty());
    EXPECT_TRUE(rec.reasons.front().starts_with("authentication failed: ")) << c["id"] << ": " << rec.reasons.front();
    ++n;
  }
  EXPECT_EQ(n, 43);
}

TEST_F(JwtE2ETest, ExpiredWrongAudienceAndWrongIssuerAre401) {
  const HttpResp none = curl_request(ec_.server->port(), ec_.server->ca_file(), "GET", "/v1/models");
  json expired = good_claims();
  expired["exp"] = std::time(nullptr) - 3600;
  json wrong_aud = good_claims();
  wrong_aud["aud"] = "another-server";
  json wrong_iss = good_claims();
  wrong_iss["iss"] = "https://evil.example";
  const struct {
    json claims;
    const char* detail;
  } kCases[] = {{expired, "jwt expired"}, {wrong_aud, "jwt audience mismatch"}, {wrong_iss, "jwt issuer mismatch"}};
  for (const auto& c : kCases) {
    const HttpResp r = ec_.models(ed_token(ed_.get(), c.claims));
    EXPECT_EQ(r.status, 401) << c.detail;
    EXPECT_EQ(r.body, none.body);
    EXPECT_EQ(r.body.find("jwt"), std::string::npos);
    const AuditRecord rec = ec_.audit.records().back();
    EXPECT_EQ(rec.auth_failure, "jwt_rejected");
    EXPECT_NE(rec.reasons.front().find(c.detail), std::string::npos) << rec.reasons.front();
  }
}

TEST(JwtSettingsTest, AlgorithmAllowListAndClaimMapping) {
  ZTSLM_REQUIRE_SHARED();
  curl_global_init(CURL_GLOBAL_DEFAULT);
  Pkey ed = identity::testing::generate_key("ED25519");
  auto ec = load_public_pem(read_file(jose_path("attack-keys/es256-pub.pem")));
  JwtSettings s = attack_settings();
  s.algorithms = {"EdDSA"};
  s.principal_claim = "email";
  s.roles_claim = "groups";
  JwtGateway g;
  ASSERT_TRUE(g.start("{\"keys\":[" + jwk_json(ec.get(), "ec-1") + "," + jwk_json(ed.get(), "ed-1") + "]}", s).ok());
  // A valid ES256 token is refused: ES256 is not on the allow-list.
  const json doc = json::parse(read_file(jose_path("attacks.json")));
  for (const auto& c : doc["cases"]) {
    if (c["id"] == "baseline-es256") {
      EXPECT_EQ(g.models(c["token"].get<std::string>()).status, 401);
    }
  }
  EXPECT_NE(g.audit.records().back().reasons.front().find("allow-list"), std::string::npos);
  json claims = good_claims();
  claims["email"] = "erin@example.org";
  claims["groups"] = {"reader"};
  // Mapped: principal from "email", roles from "groups" (reader may not list models: 403).
  EXPECT_EQ(g.models(ed_token(ed.get(), claims)).status, 403);
  EXPECT_EQ(g.audit.records().back().principal, "jwt:erin@example.org");
  claims["groups"] = {"user"};
  EXPECT_EQ(g.models(ed_token(ed.get(), claims)).status, 200);
}

// Serves `body` once per connection over plain HTTP on loopback (a JWKS endpoint for tests).
class OneFileHttpServer {
 public:
  explicit OneFileHttpServer(std::string body) : body_(std::move(body)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ZTSLM_CHECK(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    ZTSLM_CHECK(::listen(fd_, 4) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0 || stop_.load()) {
          if (c >= 0) ::close(c);
          return;
        }
        char buf[4096];
        (void)::recv(c, buf, sizeof buf, 0);
        ++hits_;
        const std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                                 std::to_string(body_.size()) + "\r\nConnection: close\r\n\r\n" + body_;
        (void)::send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
        ::close(c);
      }
    });
  }
  ~OneFileHttpServer() {
    stop_.store(true);
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/jwks.json"; }
  int hits() const { return hits_.load(); }

 private:
  std::string body_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> hits_{0};
  std::thread thread_;
};

TEST(JwtSettingsTest, JwksUrlIsFetchedAndPlainHttpNeedsTheTestFlag) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  Pkey ed = identity::testing::generate_key("ED25519");
  OneFileHttpServer jwks("{\"keys\":[" + jwk_json(ed.get(), "ed-1") + "]}");
  JwtSettings s = attack_settings();
  s.jwks_url = jwks.url();
  // https only by default: nothing is fetched.
  EXPECT_FALSE(make_jwt_verifier(s, identity::system_unix_now).has_value());
  EXPECT_EQ(jwks.hits(), 0);
  s.jwks_allow_http = true;
  s.jwks_max_bytes = 16;  // smaller than the document: refused
  EXPECT_FALSE(make_jwt_verifier(s, identity::system_unix_now).has_value());
  s.jwks_max_bytes = 64 * 1024;
  JwtGateway g;
  ASSERT_TRUE(g.start("", s).ok());
  EXPECT_EQ(g.models(ed_token(ed.get(), good_claims())).status, 200);
  EXPECT_EQ(jwks.hits(), 2);
}

TEST(JwtSettingsTest, BadJwksFileIsAStartupError) {
  JwtSettings s = attack_settings();
  s.jwks_file = "/nonexistent/jwks.json";
  EXPECT_FALSE(make_jwt_verifier(s, identity::system_unix_now).has_value());
  const std::string dir = make_temp_dir();
  s.jwks_file = dir + "/jwks.json";
  std::ofstream(s.jwks_file) << "{\"keys\":[]}";
  EXPECT_FALSE(make_jwt_verifier(s, identity::system_unix_now).has_value());
  std::ofstream(s.jwks_file) << "not json";
  EXPECT_FALSE(make_jwt_verifier(s, identity::system_unix_now).has_value());
  std::filesystem::remove_all(dir);
  EXPECT_EQ(make_jwt_verifier(JwtSettings(), identity::system_unix_now).value(), nullptr);  // off
}

}  // namespace
}  // namespace ztslm::server
