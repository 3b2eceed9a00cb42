// The gateway with identity's real Authenticator: API keys from the SQLite store (revocation at
// once) and mTLS client certificates mapped to SPIFFE principals.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/inprocess_backend.h"
#include "identity/api_key.h"
#include "identity/authenticator.h"
#include "identity/mtls.h"
#include "server/e2e_util.h"
#include "server/http/tls.h"
#include "server/identity_auth.h"
#include "server/server.h"
#include "test_util.h"

namespace ztslm::server {
namespace {

using ::ztslm::testing::testdata_path;

std::string read_file(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(IdentityE2ETest, ApiKeysAndClientCertificates) {
  ZTSLM_REQUIRE_SHARED();
  auto backend = tiny_in_process_backend(64);
  ASSERT_TRUE(backend.has_value());
  const std::string dir = make_temp_dir();
  // The CA exists before the server starts so that it can also be the client CA.
  auto tls = http::ensure_local_ca(dir + "/tls");
  ASSERT_TRUE(tls.has_value()) << tls.error().to_string();
  ASSERT_TRUE(http::issue_client_certificate(tls->ca_cert_file, dir + "/tls/ca-key.pem",
                                             "spiffe://ztslm.local/svc/reporter", dir + "/client.pem",
                                             dir + "/client-key.pem").ok());
  auto store = identity::ApiKeyStore::open(dir + "/keys.db", identity::system_unix_now);
  ASSERT_TRUE(store.has_value()) << store.error().to_string();
  std::shared_ptr<identity::ApiKeyStore> keys(std::move(store).value());
  identity::MtlsConfig mc;
  mc.ca_pem = read_file(tls->ca_cert_file);
  mc.trust_domain = "ztslm.local";
  auto mtls = identity::MtlsVerifier::create(mc, identity::system_unix_now);
  ASSERT_TRUE(mtls.has_value()) << mtls.error().to_string();
  IdentityAuthStage auth(std::make_shared<const identity::Authenticator>(keys, nullptr, *mtls));

  identity::NewApiKey nk;
  nk.name = "alice";
  nk.tenant = "t1";
  nk.roles = {"user"};
  auto key = keys->create(nk);
  ASSERT_TRUE(key.has_value());

  ServerConfig cfg = test_server_config(dir);
  cfg.tls.client_ca_file = tls->ca_cert_file;
  SimpleAuditSink audit("", 64);
  ServerParts parts;
  parts.backend = backend->get();
  parts.auth = &auth;
  parts.audit = &audit;
  auto s = Server::start(cfg, parts);
  ASSERT_TRUE(s.has_value()) << s.error().to_string();
  const uint16_t port = (*s)->port();
  const std::string ca = (*s)->ca_file();

  EXPECT_EQ(curl_request(port, ca, "GET", "/v1/models", "", {"Authorization: Bearer " + key->token}).status, 200);
  EXPECT_EQ(audit.records().back().auth_method, "api_key");
  const HttpResp none = curl_request(port, ca, "GET", "/v1/models");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.j()["error"]["message"], "invalid or missing credentials");
  EXPECT_EQ(audit.records().back().auth_failure, "no_credential");
  std::string wrong = key->token;
  wrong.back() = wrong.back() == 'a' ? 'b' : 'a';
  const HttpResp bad = curl_request(port, ca, "GET", "/v1/models", "", {"Authorization: Bearer " + wrong});
  EXPECT_EQ(bad.status, 401);
  EXPECT_EQ(bad.body, none.body);  // the client cannot tell the failures apart
  EXPECT_EQ(audit.records().back().auth_failure, "api_key_rejected");
  ASSERT_TRUE(keys->revoke(key->record.key_id).ok());
  EXPECT_EQ(curl_request(port, ca, "GET", "/v1/models", "", {"Authorization: Bearer " + key->token}).status, 401);

  // A client certificate alone authenticates as its SPIFFE ID (default role user).
  const HttpResp m = curl_request(port, ca, "GET", "/v1/models", "", {}, dir + "/client.pem", dir + "/client-key.pem");
  EXPECT_EQ(m.status, 200) << m.body;
  EXPECT_EQ(audit.records().back().auth_method, "mtls");
  EXPECT_EQ(audit.records().back().principal, "spiffe://ztslm.local/svc/reporter");
  (*s)->stop();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ztslm::server
