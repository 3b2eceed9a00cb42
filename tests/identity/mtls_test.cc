#include "identity/mtls.h"

#include "core/byte_reader.h"
#include "identity_test_util.h"
#include "test_util.h"

namespace ztslm::identity {
namespace {

using testing::CertSpec;
using testing::make_cert;

constexpr time_t kNow = 1800000000;

class MtlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_key_ = testing::generate_key("EC");
    CertSpec ca_spec;
    ca_spec.cn = "test ca";
    ca_spec.is_ca = true;
    ca_spec.not_after_offset_s = 10 * 86400;
    ca_ = make_cert(ca_key_.get(), nullptr, nullptr, ca_spec, kNow);
    MtlsConfig cfg;
    cfg.ca_pem = testing::cert_pem(ca_.get());
    cfg.trust_domain = "example.org";
    cfg.role_rules = {{"/acme/admin", {"admin", "user"}}};
    auto v = MtlsVerifier::create(cfg, [this] { return now_; });
    ASSERT_THAT(v, IsOk());
    verifier_ = *v;
    leaf_key_ = testing::generate_key("EC");
  }
  testing::Cert leaf(CertSpec spec) { return make_cert(leaf_key_.get(), ca_.get(), ca_key_.get(), spec, kNow); }
  CertSpec spiffe(const std::string& id) {
    CertSpec s;
    s.sans = {"URI:" + id};
    return s;
  }

  testing::Pkey ca_key_, leaf_key_;
  testing::Cert ca_;
  int64_t now_ = kNow;
  std::shared_ptr<const MtlsVerifier> verifier_;
};

TEST_F(MtlsTest, MapsSpiffeIdToPrincipal) {
  auto cert = leaf(spiffe("spiffe://example.org/acme/svc/billing"));
  auto p = verifier_->verify(cert.get(), nullptr);
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->id, "spiffe://example.org/acme/svc/billing");
  EXPECT_EQ(p->tenant, "acme");
  EXPECT_EQ(p->roles, std::vector<std::string>{"user"});
  EXPECT_EQ(p->method, AuthMethod::kMtls);
  EXPECT_EQ(p->attributes.at("trust_domain"), "example.org");
  EXPECT_EQ(p->attributes.at("cert_sha256").size(), 64u);
  auto admin = leaf(spiffe("spiffe://example.org/acme/admin/ops"));
  EXPECT_EQ(verifier_->verify(admin.get(), nullptr)->roles, (std::vector<std::string>{"admin", "user"}));
  auto not_admin = leaf(spiffe("spiffe://example.org/acme/administrator"));
  EXPECT_EQ(verifier_->verify(not_admin.get(), nullptr)->roles, std::vector<std::string>{"user"});
}

TEST_F(MtlsTest, VerifiesDerToo) {
  auto cert = leaf(spiffe("spiffe://example.org/acme/x"));
  unsigned char* der = nullptr;
  const int n = i2d_X509(cert.get(), &der);
  std::string bytes(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  EXPECT_THAT(verifier_->verify_der(as_bytes(bytes.data(), bytes.size())), IsOk());
  EXPECT_THAT(verifier_->verify_der(as_bytes(bytes.data(), bytes.size() - 1)), StatusIs(StatusCode::kUnauthenticated));
  bytes.push_back('\0');
  EXPECT_THAT(verifier_->verify_der(as_bytes(bytes.data(), bytes.size())), StatusIs(StatusCode::kUnauthenticated));
}

TEST_F(MtlsTest, RejectsEachCertificateDefect) {
  struct Case {
    const char* name;
    CertSpec spec;
  };
  std::vector<Case> cases;
  cases.push_back({"no san", CertSpec{}});
  CertSpec two = spiffe("spiffe://example.org/acme/a");
  two.sans.push_back("URI:spiffe://example.org/acme/b");
  cases.push_back({"two uri sans", two});
  CertSpec dns;
  dns.sans = {"DNS:client.example.org"};
  cases.push_back({"dns san only", dns});
  cases.push_back({"https uri", spiffe("https://example.org/acme/a")});
  cases.push_back({"other trust domain", spiffe("spiffe://evil.org/acme/a")});
  cases.push_back({"no path", spiffe("spiffe://example.org")});
  cases.push_back({"dot segment", spiffe("spiffe://example.org/acme/../admin")});
  cases.push_back({"uppercase trust domain", spiffe("spiffe://Example.org/acme")});
  cases.push_back({"query", spiffe("spiffe://example.org/acme?x=1")});
  CertSpec expired = spiffe("spiffe://example.org/acme/a");
  expired.not_after_offset_s = -60;
  cases.push_back({"expired", expired});
  CertSpec future = spiffe("spiffe://example.org/acme/a");
  future.not_before_offset_s = 3600;
  cases.push_back({"not yet valid", future});
  CertSpec server_only = spiffe("spiffe://example.org/acme/a");
  server_only.eku = "serverAuth";
  cases.push_back({"server-only eku", server_only});
  for (const auto& c : cases) {
    auto cert = leaf(c.spec);
    EXPECT_THAT(verifier_->verify(cert.get(), nullptr), StatusIs(StatusCode::kUnauthenticated)) << c.name;
  }
  EXPECT_THAT(verifier_->verify(nullptr, nullptr), StatusIs(StatusCode::kUnauthenticated));
}

TEST_F(MtlsTest, RejectsUntrustedIssuerAndCaLeaf) {
  auto other_key = testing::generate_key("EC");
  CertSpec ca_spec;
  ca_spec.is_ca = true;
  ca_spec.cn = "test ca";  // same name as the trusted CA: only the key differs
  auto other_ca = make_cert(other_key.get(), nullptr, nullptr, ca_spec, kNow);
  auto forged = make_cert(leaf_key_.get(), other_ca.get(), other_key.get(), spiffe("spiffe://example.org/acme/a"), kNow);
  EXPECT_THAT(verifier_->verify(forged.get(), nullptr), StatusIs(StatusCode::kUnauthenticated));
  auto self_signed = make_cert(leaf_key_.get(), nullptr, nullptr, spiffe("spiffe://example.org/acme/a"), kNow);
  EXPECT_THAT(verifier_->verify(self_signed.get(), nullptr), StatusIs(StatusCode::kUnauthenticated));
  CertSpec ca_leaf = spiffe("spiffe://example.org/acme/a");
  ca_leaf.is_ca = true;
  auto sub_ca = make_cert(leaf_key_.get(), ca_.get(), ca_key_.get(), ca_leaf, kNow);
  EXPECT_THAT(verifier_->verify(sub_ca.get(), nullptr), StatusIs(StatusCode::kUnauthenticated));
  now_ = kNow + 20 * 86400;  // the CA itself has expired by then
  auto cert = leaf(spiffe("spiffe://example.org/acme/a"));
  EXPECT_THAT(verifier_->verify(cert.get(), nullptr), StatusIs(StatusCode::kUnauthenticated));
}

TEST_F(MtlsTest, ChainsThroughAnIntermediate) {
  auto int_key = testing::generate_key("EC");
  CertSpec int_spec;
  int_spec.is_ca = true;
  int_spec.cn = "intermediate";
  auto inter = make_cert(int_key.get(), ca_.get(), ca_key_.get(), int_spec, kNow);
  auto cert = make_cert(leaf_key_.get(), inter.get(), int_key.get(), spiffe("spiffe://example.org/acme/a"), kNow);
  EXPECT_THAT(verifier_->verify(cert.get(), nullptr), StatusIs(StatusCode::kUnauthenticated)) << "no path without it";
  STACK_OF(X509)* chain = sk_X509_new_null();
  sk_X509_push(chain, inter.get());
  EXPECT_THAT(verifier_->verify(cert.get(), chain), IsOk());
  sk_X509_free(chain);
}

TEST(SpiffeIdTest, ParsesAndRejects) {
  auto id = parse_spiffe_id("spiffe://td.example-1_x/a/B.c/d-e_f");
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->trust_domain, "td.example-1_x");
  EXPECT_EQ(id->segments, (std::vector<std::string>{"a", "B.c", "d-e_f"}));
  EXPECT_EQ(id->to_string(), "spiffe://td.example-1_x/a/B.c/d-e_f");
  const char* bad[] = {"", "spiffe:/td/a", "SPIFFE://td/a", "spiffe:///a", "spiffe://td/", "spiffe://td//a",
                       "spiffe://td/a/", "spiffe://td/./a", "spiffe://td/a/..", "spiffe://user@td/a", "spiffe://td:443/a",
                       "spiffe://td/a%20b", "spiffe://td/a#f", "spiffe://TD/a"};
  for (const char* b : bad) EXPECT_THAT(parse_spiffe_id(b), StatusIs(StatusCode::kMalformed)) << b;
  EXPECT_THAT(parse_spiffe_id("spiffe://td/" + std::string(3000, 'a')), StatusIs(StatusCode::kMalformed));
}

TEST(MtlsConfigTest, RejectsBadConfig) {
  auto clock = [] { return int64_t{kNow}; };
  auto config = [](std::string pem, std::string td) {
    MtlsConfig c;
    c.ca_pem = std::move(pem);
    c.trust_domain = std::move(td);
    return c;
  };
  EXPECT_THAT(MtlsVerifier::create(config("", "example.org"), clock), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(MtlsVerifier::create(config("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "example.org"), clock),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(MtlsVerifier::create(config("x", "Bad Domain"), clock), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace ztslm::identity
