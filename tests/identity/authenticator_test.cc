#include "identity/authenticator.h"

#include <nlohmann/json.hpp>

#include <filesystem>

#include "identity_test_util.h"
#include "test_util.h"

namespace ztslm::identity {
namespace {

using nlohmann::json;
constexpr int64_t kNow = 1800000000;

AuthRequest req(std::string_view header, X509* cert = nullptr) {
  AuthRequest r;
  r.authorization = header;
  r.peer_certificate = cert;
  return r;
}

class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ztslm_auth_XXXXXX";
    dir_ = mkdtemp(tmpl);
    auto clock = [this] { return now_; };
    auto store = ApiKeyStore::open(dir_ + "/keys.db", clock);
    ASSERT_THAT(store, IsOk());
    keys_ = std::shared_ptr<ApiKeyStore>(std::move(store).value());
    auto k = keys_->create({.name = "", .tenant = "acme", .roles = {"user"}, .expires_at = 0});
    ASSERT_THAT(k, IsOk());
    api_key_ = k->token;

    jwt_key_ = testing::generate_key("ED25519");
    JwkSet set;
    ASSERT_THAT(set.add(*Jwk::from_pem("k1", testing::public_pem(jwt_key_.get()))), IsOk());
    JwtConfig jc;
    jc.issuer = "https://issuer.example";
    jc.audiences = {"ztslm"};
    jc.default_tenant = "acme";
    auto jwt = JwtVerifier::create(jc, std::make_shared<StaticKeySource>(std::move(set)), clock);
    ASSERT_THAT(jwt, IsOk());
    jwt_ = std::make_shared<const JwtVerifier>(std::move(jwt).value());
    token_ = testing::sign_eddsa(jwt_key_.get(), R"({"alg":"EdDSA","kid":"k1"})",
                                 json{{"iss", "https://issuer.example"}, {"aud", "ztslm"}, {"sub", "carol"}, {"exp", kNow + 60}}.dump());

    ca_key_ = testing::generate_key("EC");
    testing::CertSpec ca_spec;
    ca_spec.is_ca = true;
    ca_ = testing::make_cert(ca_key_.get(), nullptr, nullptr, ca_spec, kNow);
    MtlsConfig mc;
    mc.ca_pem = testing::cert_pem(ca_.get());
    mc.trust_domain = "example.org";
    auto mtls = MtlsVerifier::create(mc, clock);
    ASSERT_THAT(mtls, IsOk());
    mtls_ = *mtls;
    leaf_key_ = testing::generate_key("EC");
    testing::CertSpec spec;
    spec.sans = {"URI:spiffe://example.org/acme/svc"};
    cert_ = testing::make_cert(leaf_key_.get(), ca_.get(), ca_key_.get(), spec, kNow);
    auth_ = std::make_unique<Authenticator>(keys_, jwt_, mtls_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Expects a generic 401 and returns the internal failure.
  AuthFailure expect_rejected(const AuthRequest& req, const Authenticator& auth) {
    AuthFailure f;
    auto p = auth.authenticate(req, &f);
    EXPECT_THAT(p, StatusIs(StatusCode::kUnauthenticated));
    if (!p.has_value()) {
      EXPECT_EQ(p.error().message(), Authenticator::kPublicMessage);
    }
    EXPECT_FALSE(f.detail.empty());
    return f;
  }

  std::string dir_;
  int64_t now_ = kNow;
  std::shared_ptr<ApiKeyStore> keys_;
  std::string api_key_, token_;
  testing::Pkey jwt_key_, ca_key_, leaf_key_;
  testing::Cert ca_, cert_;
  std::shared_ptr<const JwtVerifier> jwt_;
  std::shared_ptr<const MtlsVerifier> mtls_;
  std::unique_ptr<Authenticator> auth_;
};

TEST_F(AuthenticatorTest, EachMethodYieldsAPrincipal) {
  auto a = auth_->authenticate(req("Bearer " + api_key_));
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->method, AuthMethod::kApiKey);
  auto b = auth_->authenticate(req("bearer " + token_));
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(b->method, AuthMethod::kJwt);
  EXPECT_EQ(b->id, "jwt:carol");
  auto c = auth_->authenticate(req("", cert_.get()));
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->method, AuthMethod::kMtls);
  EXPECT_EQ(c->tenant, "acme");
  auto d = auth_->authenticate(req("Bearer " + api_key_, cert_.get()));
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->method, AuthMethod::kApiKey);
  EXPECT_EQ(d->attributes.at("mtls_spiffe_id"), "spiffe://example.org/acme/svc");
}

TEST_F(AuthenticatorTest, FailuresAreGenericWithAnInternalReason) {
  const std::string bad_key = api_key_.substr(0, api_key_.size() - 1) + (api_key_.back() == 'A' ? "B" : "A");
  std::string tampered = token_;  // one signature character changed (never the same character)
  tampered[tampered.size() - 10] = tampered[tampered.size() - 10] == 'A' ? 'B' : 'A';
  struct Case {
    const char* name;
    std::string header;
    AuthFailureReason reason;
  } const cases[] = {
      {"nothing", "", AuthFailureReason::kNoCredential},
      {"basic", "Basic dXNlcjpwYXNz", AuthFailureReason::kBadScheme},
      {"bearer without token", "Bearer ", AuthFailureReason::kBadScheme},
      {"two spaces", "Bearer  " + api_key_, AuthFailureReason::kBadScheme},
      {"trailing space", "Bearer " + api_key_ + " ", AuthFailureReason::kBadScheme},
      {"wrong secret", "Bearer " + bad_key, AuthFailureReason::kApiKeyRejected},
      {"malformed key", "Bearer zt_short", AuthFailureReason::kApiKeyRejected},
      {"garbage jwt", "Bearer a.b.c", AuthFailureReason::kJwtRejected},
      {"tampered jwt", "Bearer " + tampered, AuthFailureReason::kJwtRejected},
  };
  for (const auto& c : cases) {
    AuthFailure f = expect_rejected(req(c.header), *auth_);
    EXPECT_EQ(f.reason, c.reason) << c.name << ": " << f.detail;
    // SECURITY: the detail never repeats the secret.
    EXPECT_EQ(f.detail.find(api_key_.substr(12)), std::string::npos) << c.name;
  }
  ASSERT_THAT(keys_->revoke(api_key_.substr(3, 8)), IsOk());
  AuthFailure f = expect_rejected(req("Bearer " + api_key_), *auth_);
  EXPECT_EQ(f.reason, AuthFailureReason::kApiKeyRejected);
  EXPECT_NE(f.detail.find("revoked"), std::string::npos);
  EXPECT_EQ(auth_failure_reason_name(f.reason), "api_key_rejected");
}

TEST_F(AuthenticatorTest, PresentedCertificateMustVerifyEvenWithAValidHeader) {
  auto other_key = testing::generate_key("EC");
  testing::CertSpec spec;
  spec.sans = {"URI:spiffe://example.org/acme/svc"};
  auto self_signed = testing::make_cert(other_key.get(), nullptr, nullptr, spec, kNow);
  AuthFailure f = expect_rejected(req("Bearer " + token_, self_signed.get()), *auth_);
  EXPECT_EQ(f.reason, AuthFailureReason::kCertificateRejected);
}

TEST_F(AuthenticatorTest, DisabledMethodsAreRejected) {
  Authenticator keys_only(keys_, nullptr, nullptr);
  EXPECT_EQ(expect_rejected(req("Bearer " + token_), keys_only).reason, AuthFailureReason::kMethodDisabled);
  EXPECT_EQ(expect_rejected(req("", cert_.get()), keys_only).reason,
            AuthFailureReason::kMethodDisabled);
  Authenticator jwt_only(nullptr, jwt_, nullptr);
  EXPECT_EQ(expect_rejected(req("Bearer " + api_key_), jwt_only).reason, AuthFailureReason::kMethodDisabled);
  EXPECT_THAT(jwt_only.authenticate(req("Bearer " + token_)), IsOk());
}

TEST(ParseBearerTest, Grammar) {
  EXPECT_EQ(*parse_bearer("Bearer abc"), "abc");
  EXPECT_EQ(*parse_bearer("BEARER abc"), "abc");
  for (const char* bad : {"", "Bearer", "Bearer ", "Bearerabc", "Token abc", "Bearer a b", "Bearer a\tb", "Bearer\tabc"}) {
    EXPECT_THAT(parse_bearer(bad), StatusIs(StatusCode::kMalformed)) << bad;
  }
  EXPECT_THAT(parse_bearer("Bearer " + std::string(20000, 'a')), StatusIs(StatusCode::kMalformed));
}

}  // namespace
}  // namespace ztslm::identity
