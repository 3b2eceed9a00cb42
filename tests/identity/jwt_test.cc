#include "identity/jwt.h"

#include <nlohmann/json.hpp>

#include <set>

#include "identity/base64url.h"
#include "identity_test_util.h"
#include "test_util.h"

namespace ztslm::identity {
namespace {

using nlohmann::json;
using testing::read_file;

constexpr int64_t kNow = 1800000000;  // 2027-01-15: inside every attack token's validity window

std::string jose_path(const std::string& rel) { return ::ztslm::testing::testdata_path("jose/" + rel); }

JwtConfig attack_config() {
  JwtConfig c;
  c.issuer = "https://issuer.example";
  c.audiences = {"model-server"};
  c.leeway_s = 60;
  c.default_tenant = "default";
  c.default_roles = {"user"};
  return c;
}

std::shared_ptr<KeySource> source_of(std::vector<Jwk> keys) {
  JwkSet set;
  for (auto& k : keys) EXPECT_THAT(set.add(std::move(k)), IsOk());
  return std::make_shared<StaticKeySource>(std::move(set));
}

TEST(JwtAttackTest, EveryCaseOfAttacksJson) {
  ZTSLM_REQUIRE_SHARED();
  const json doc = json::parse(read_file(jose_path("attacks.json")));
  int n_accept = 0, n_reject = 0;
  for (const auto& c : doc["cases"]) {
    const std::string key_file = c["verify_key"];
    // The configured key's kid is what the matching baseline token names.
    const std::string kid = key_file.find("rs256") != std::string::npos ? "rs-1" : "ec-1";
    auto key = Jwk::from_pem(kid, read_file(jose_path(key_file)));
    ASSERT_THAT(key, IsOk()) << key_file;
    auto verifier = JwtVerifier::create(attack_config(), source_of({*key}), [] { return kNow; });
    ASSERT_THAT(verifier, IsOk());
    auto p = verifier->verify(c["token"].get<std::string>());
    if (c["expect"] == "accept") {
      ++n_accept;
      ASSERT_THAT(p, IsOk()) << c["id"];
      EXPECT_EQ(p->id, "jwt:alice");
      EXPECT_EQ(p->tenant, "default");
      EXPECT_EQ(p->method, AuthMethod::kJwt);
      EXPECT_EQ(p->attributes.at("kid"), kid);
    } else {
      ++n_reject;
      EXPECT_FALSE(p.has_value()) << c["id"] << " was accepted";
    }
  }
  EXPECT_EQ(n_accept, 2);
  EXPECT_EQ(n_reject, 43);
}

TEST(JwtAttackTest, OversizedTokenRejectedByLengthBeforeDecoding) {
  ZTSLM_REQUIRE_SHARED();
  const json doc = json::parse(read_file(jose_path("attacks.json")));
  for (const auto& c : doc["cases"]) {
    if (c["id"] != "oversized-64k") continue;
    auto key = Jwk::from_pem("ec-1", read_file(jose_path("attack-keys/es256-pub.pem")));
    auto src = source_of({*key});
    EXPECT_THAT(verify_jws(c["token"].get<std::string>(), *src), StatusIs(StatusCode::kResourceExhausted));
    JwsLimits big;
    big.max_token_bytes = 1 << 20;
    big.max_payload_bytes = 1 << 20;
    EXPECT_THAT(verify_jws(c["token"].get<std::string>(), *src, big), IsOk()) << "the signature itself is valid";
    return;
  }
  FAIL() << "oversized-64k case not found";
}

TEST(JwtRfcTest, RfcKnownAnswers) {
  ZTSLM_REQUIRE_SHARED();
  const json doc = json::parse(read_file(jose_path("rfc_vectors.json")));
  int n_checked = 0;
  for (const auto& v : doc["vectors"]) {
    if (v["token"].is_null()) continue;  // thumbprint-only vectors
    const std::string alg = v["alg"].is_null() ? "" : v["alg"].get<std::string>();
    const bool supported = parse_jws_alg(alg).has_value();
    std::vector<Jwk> keys;
    if (!v["jwk"].is_null()) {
      auto k = Jwk::from_json(v["jwk"].dump());
      EXPECT_EQ(k.has_value(), supported) << v["id"];
      if (k.has_value()) keys.push_back(*k);
    }
    auto src = source_of(keys);
    auto r = verify_jws(v["token"].get<std::string>(), *src);
    if (v["expect"] == "valid-signature" && supported) {
      ASSERT_THAT(r, IsOk()) << v["id"];
      if (v.contains("payload_json") && v["payload_json"].is_string()) {
        EXPECT_EQ(r->payload, v["payload_json"]);
      }
      if (v.contains("payload_text") && v["payload_text"].is_string()) {
        EXPECT_EQ(r->payload, v["payload_text"]);
      }
    } else {
      EXPECT_FALSE(r.has_value()) << v["id"];  // none, HS256, ES512: not on the allow-list
    }
    ++n_checked;
  }
  EXPECT_EQ(n_checked, 6);
}

TEST(JwtRfcTest, RfcTokensFailClaimChecksWithARealClock) {
  ZTSLM_REQUIRE_SHARED();
  // RFC 7515 A.3: valid ES256 signature, but exp is in 2011 and there is no aud.
  const json doc = json::parse(read_file(jose_path("rfc_vectors.json")));
  for (const auto& v : doc["vectors"]) {
    if (v["id"] != "rfc7515-A.3") continue;
    auto k = Jwk::from_json(v["jwk"].dump());
    JwtConfig c = attack_config();
    c.issuer = "joe";
    auto verifier = JwtVerifier::create(c, source_of({*k}), [] { return system_unix_now(); });
    EXPECT_THAT(verifier->verify(v["token"].get<std::string>()), StatusIs(StatusCode::kUnauthenticated));
  }
}

TEST(JwtRfcTest, Rfc7520Cookbook) {
  ZTSLM_REQUIRE_SHARED();
  struct Case {
    const char* file;
    bool accept;
  } const cases[] = {
      {"jws/4_1.rsa_v15_signature.json", true},          // RS256
      {"jws/4_2.rsa-pss_signature.json", false},         // PS384: not allowed
      {"jws/4_3.ecdsa_signature.json", false},           // ES512: not allowed
      {"jws/4_4.hmac-sha2_integrity_protection.json", false},  // HS256: never
      {"curve25519/jws.json", true},                     // EdDSA
  };
  for (const auto& c : cases) {
    const json doc = json::parse(read_file(jose_path(std::string("jose-cookbook/") + c.file)));
    std::vector<Jwk> keys;
    auto k = Jwk::from_json(doc["input"]["key"].dump());
    if (k.has_value()) keys.push_back(*k);
    auto src = source_of(keys);
    auto r = verify_jws(doc["output"]["compact"].get<std::string>(), *src);
    EXPECT_EQ(r.has_value(), c.accept) << c.file << ": " << r.error().to_string();
    if (c.accept && r.has_value()) {
      EXPECT_EQ(r->payload, doc["input"]["payload"].get<std::string>());
    }
  }
}

// Wycheproof JSON web files: a token verifies only if the vector is valid; a valid vector with an
// allowed algorithm and a usable key must verify. Unsupported algorithms (HS*, PS*, RS384/512,
// ES512) are rejected by design.
void run_jose_file(const std::string& name, const std::set<std::string>& only_groups, int* n_run) {
  const json doc = json::parse(read_file(jose_path("wycheproof/testvectors_v1/" + name)));
  const std::set<int> kDivergent = {372, 373};  // README "Known quirk": strict verifiers reject
  for (const auto& g : doc["testGroups"]) {
    const std::string comment = g["comment"];
    if (!only_groups.empty() && !only_groups.count(comment)) continue;
    const json& key_json = g.contains("public") ? g["public"] : g["private"];
    std::shared_ptr<KeySource> src;
    bool key_ok = true;
    if (key_json.contains("keys")) {
      auto set = JwkSet::parse(key_json.dump());
      key_ok = set.has_value();
      src = std::make_shared<StaticKeySource>(set.has_value() ? std::move(set).value() : JwkSet());
    } else {
      auto k = Jwk::from_json(key_json.dump());
      key_ok = k.has_value();
      src = source_of(k.has_value() ? std::vector<Jwk>{*k} : std::vector<Jwk>{});
    }
    for (const auto& t : g["tests"]) {
      const int id = t["tcId"];
      const std::string token = t["jws"].is_string() ? t["jws"].get<std::string>() : t["jws"].dump();
      auto r = verify_jws(token, *src);
      std::string alg;
      if (const size_t dot = token.find('.'); dot != std::string::npos) {
        auto hdr = base64url_decode(token.substr(0, dot), 4096);
        if (hdr.has_value()) {
          auto h = json::parse(*hdr, nullptr, false);
          if (h.is_object() && h.contains("alg") && h["alg"].is_string()) alg = h["alg"];
        }
      }
      const bool valid = t["result"] == "valid";
      if (!valid || kDivergent.count(id)) {
        if (t["result"] != "acceptable") {
          EXPECT_FALSE(r.has_value() && !valid) << name << " tcId " << id << " accepted";
        }
      } else if (parse_jws_alg(alg).has_value() && key_ok && !kDivergent.count(id)) {
        EXPECT_THAT(r, IsOk()) << name << " tcId " << id << " " << t["comment"];
      } else {
        EXPECT_FALSE(r.has_value()) << name << " tcId " << id << " (unsupported alg " << alg << ") accepted";
      }
      if (kDivergent.count(id)) {
        EXPECT_FALSE(r.has_value()) << "tcId " << id;
      }
      ++*n_run;
    }
  }
}

TEST(JwtWycheproofTest, JsonWebSignature) {
  ZTSLM_REQUIRE_SHARED();
  int n = 0;
  run_jose_file("json_web_signature_test.json", {}, &n);
  EXPECT_EQ(n, 401);
}

TEST(JwtWycheproofTest, JsonWebKey) {
  ZTSLM_REQUIRE_SHARED();
  int n = 0;
  run_jose_file("json_web_key_test.json", {}, &n);
  EXPECT_EQ(n, 26);
}

TEST(JwtWycheproofTest, JsonWebCryptoJwsGroups) {
  ZTSLM_REQUIRE_SHARED();
  int n = 0;
  run_jose_file("json_web_crypto_test.json", {"jws_ec", "jws_rsa", "jws_keyset", "jws_mixedSymmetryKeyset", "jws_rsa_roca_key"}, &n);
  EXPECT_GT(n, 25);
}

// Claims, built with an in-test Ed25519 key.
class JwtClaimsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = testing::generate_key("ED25519");
    auto jwk = Jwk::from_pem("k1", testing::public_pem(key_.get()));
    ASSERT_THAT(jwk, IsOk());
    JwtConfig c = attack_config();
    c.default_tenant = "";
    auto v = JwtVerifier::create(c, source_of({*jwk}), [this] { return now_; });
    ASSERT_THAT(v, IsOk());
    verifier_ = std::make_unique<JwtVerifier>(std::move(v).value());
  }
  json claims() const {
    return {{"iss", "https://issuer.example"}, {"aud", "model-server"}, {"sub", "bob"}, {"tenant", "acme"},
            {"iat", kNow - 10}, {"exp", kNow + 600}};
  }
  Result<Principal> verify(const json& payload, json header = {{"alg", "EdDSA"}, {"kid", "k1"}}) {
    return verifier_->verify(testing::sign_eddsa(key_.get(), header.dump(), payload.dump()));
  }
  testing::Pkey key_;
  int64_t now_ = kNow;
  std::unique_ptr<JwtVerifier> verifier_;
};

TEST_F(JwtClaimsTest, MapsClaimsToPrincipal) {
  json c = claims();
  c["roles"] = {"user", "admin", "user"};
  c["jti"] = "id-1";
  auto p = verify(c);
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->id, "jwt:bob");
  EXPECT_EQ(p->tenant, "acme");
  EXPECT_EQ(p->roles, (std::vector<std::string>{"admin", "user"}));
  EXPECT_EQ(p->attributes.at("jti"), "id-1");
  EXPECT_EQ(p->attributes.at("alg"), "EdDSA");
  c["roles"] = "a b  c";
  EXPECT_EQ(verify(c)->roles, (std::vector<std::string>{"a", "b", "c"}));
  c["aud"] = {"x", "model-server"};
  EXPECT_THAT(verify(c), IsOk());
  c["exp"] = static_cast<double>(kNow) + 0.5;  // fractional NumericDate
  EXPECT_THAT(verify(c), IsOk());
}

TEST_F(JwtClaimsTest, TimeChecksHonourLeeway) {
  json c = claims();
  c["exp"] = kNow - 59;
  EXPECT_THAT(verify(c), IsOk()) << "expired 59 s ago, leeway 60";
  c["exp"] = kNow - 60;
  EXPECT_THAT(verify(c), StatusIs(StatusCode::kUnauthenticated));
  c = claims();
  c["nbf"] = kNow + 60;
  EXPECT_THAT(verify(c), IsOk());
  c["nbf"] = kNow + 61;
  EXPECT_THAT(verify(c), StatusIs(StatusCode::kUnauthenticated));
  c = claims();
  c["iat"] = kNow + 61;
  EXPECT_THAT(verify(c), StatusIs(StatusCode::kUnauthenticated));
  now_ = kNow + 10000;  // the clock is injected: the same token expires
  EXPECT_THAT(verify(claims()), StatusIs(StatusCode::kUnauthenticated));
}

TEST_F(JwtClaimsTest, RejectsEachClaimDefect) {
  struct Case {
    const char* name;
    std::function<void(json&)> edit;
  } const cases[] = {
      {"no exp", [](json& c) { c.erase("exp"); }},
      {"exp null", [](json& c) { c["exp"] = nullptr; }},
      {"exp negative", [](json& c) { c["exp"] = -1; }},
      {"exp huge", [](json& c) { c["exp"] = 1e300; }},
      {"no iss", [](json& c) { c.erase("iss"); }},
      {"iss prefix", [](json& c) { c["iss"] = "https://issuer.example.evil"; }},
      {"no aud", [](json& c) { c.erase("aud"); }},
      {"aud empty array", [](json& c) { c["aud"] = json::array(); }},
      {"aud number", [](json& c) { c["aud"] = 1; }},
      {"aud array with number", [](json& c) { c["aud"] = {"model-server", 1}; }},
      {"no sub", [](json& c) { c.erase("sub"); }},
      {"empty sub", [](json& c) { c["sub"] = ""; }},
      {"no tenant and no default", [](json& c) { c.erase("tenant"); }},
      {"tenant with space", [](json& c) { c["tenant"] = "a b"; }},
      {"roles object", [](json& c) { c["roles"] = json::object(); }},
      {"role with comma", [](json& c) { c["roles"] = {"a,b"}; }},
      {"too many roles", [](json& c) { c["roles"] = std::vector<std::string>(40, "r"); }},
  };
  for (const auto& c : cases) {
    json payload = claims();
    c.edit(payload);
    EXPECT_FALSE(verify(payload).has_value()) << c.name;
  }
}

TEST_F(JwtClaimsTest, RejectsEachHeaderDefect) {
  struct Case {
    const char* name;
    json header;
  } const cases[] = {
      {"typ other", {{"alg", "EdDSA"}, {"kid", "k1"}, {"typ", "dpop+jwt"}}},
      {"unknown kid", {{"alg", "EdDSA"}, {"kid", "k2"}}},
      {"kid number", {{"alg", "EdDSA"}, {"kid", 1}}},
      {"alg missing", {{"kid", "k1"}}},
      {"alg eddsa lowercase", {{"alg", "eddsa"}, {"kid", "k1"}}},
      {"alg ES256 on ed25519 key", {{"alg", "ES256"}, {"kid", "k1"}}},
      {"cty JWT (nested)", {{"alg", "EdDSA"}, {"kid", "k1"}, {"cty", "JWT"}}},
      {"b64 false", {{"alg", "EdDSA"}, {"kid", "k1"}, {"b64", false}}},
      {"header array", json::array({"alg"})},
  };
  for (const auto& c : cases) EXPECT_FALSE(verify(claims(), c.header).has_value()) << c.name;
  EXPECT_THAT(verify(claims(), {{"alg", "EdDSA"}, {"kid", "k1"}, {"typ", "jwt"}}), IsOk());
  EXPECT_THAT(verify(claims(), {{"alg", "EdDSA"}}), IsOk()) << "no kid: the only EdDSA key";
}

TEST_F(JwtClaimsTest, DepthAndSizeLimits) {
  json c = claims();
  json deep = 1;
  for (int i = 0; i < 20; ++i) deep = json::array({deep});
  c["x"] = deep;
  EXPECT_THAT(verify(c), StatusIs(StatusCode::kMalformed));
  c = claims();
  c["pad"] = std::string(7000, 'a');
  EXPECT_THAT(verify(c), StatusIs(StatusCode::kResourceExhausted));
  const std::string not_utf8 = std::string(R"({"iss":"https://issuer.example","aud":"model-server","sub":"b)") +
                               "\xff" + "\"}";
  const std::string bad = testing::sign_eddsa(key_.get(), R"({"alg":"EdDSA"})", not_utf8);
  EXPECT_THAT(verifier_->verify(bad), StatusIs(StatusCode::kMalformed));
}

TEST(JwtConfigTest, RejectsUnusableConfig) {
  auto src = source_of({});
  auto clock = [] { return kNow; };
  JwtConfig c = attack_config();
  c.issuer = "";
  EXPECT_THAT(JwtVerifier::create(c, src, clock), StatusIs(StatusCode::kInvalidArgument));
  c = attack_config();
  c.audiences.clear();
  EXPECT_THAT(JwtVerifier::create(c, src, clock), StatusIs(StatusCode::kInvalidArgument));
  c = attack_config();
  c.leeway_s = 3600;
  EXPECT_THAT(JwtVerifier::create(c, src, clock), StatusIs(StatusCode::kInvalidArgument));
}

class FakeFetcher final : public JwksFetcher {
 public:
  explicit FakeFetcher(std::shared_ptr<std::string> body) : body_(std::move(body)) {}
  Result<std::string> fetch(const std::string& url, size_t max_bytes) override {
    ++*n_calls;
    if (url != "https://issuer.example/jwks") return Status::unavailable("wrong url");
    if (body_->empty()) return Status::unavailable("down");
    if (body_->size() > max_bytes) return Status::resource_exhausted("too big");
    return *body_;
  }
  std::shared_ptr<std::string> body_;
  std::shared_ptr<int> n_calls = std::make_shared<int>(0);
};

std::string jwks_with(EVP_PKEY* k, const std::string& kid) {
  size_t n = 32;
  unsigned char raw[32];
  EVP_PKEY_get_raw_public_key(k, raw, &n);
  return json{{"keys", {{{"kty", "OKP"}, {"crv", "Ed25519"}, {"kid", kid}, {"x", base64url_encode(std::string(reinterpret_cast<char*>(raw), 32))}}}}}.dump();
}

TEST(JwksCacheTest, RefreshesOnRotationWithinBounds) {
  auto k1 = testing::generate_key("ED25519");
  auto k2 = testing::generate_key("ED25519");
  auto body = std::make_shared<std::string>(jwks_with(k1.get(), "k1"));
  auto fetcher = std::make_unique<FakeFetcher>(body);
  auto calls = fetcher->n_calls;
  int64_t now = kNow;
  JwksCacheConfig cfg;
  cfg.url = "https://issuer.example/jwks";
  cfg.refresh_interval_s = 300;
  cfg.min_refresh_interval_s = 30;
  cfg.max_stale_s = 3600;
  auto cache = JwksCache::create(cfg, std::move(fetcher), [&] { return now; });
  ASSERT_THAT(cache, IsOk());
  auto verifier = JwtVerifier::create(attack_config(), *cache, [&] { return now; });
  json claims = {{"iss", "https://issuer.example"}, {"aud", "model-server"}, {"sub", "s"}, {"exp", kNow + 100000}};
  const std::string t1 = testing::sign_eddsa(k1.get(), R"({"alg":"EdDSA","kid":"k1"})", claims.dump());
  const std::string t2 = testing::sign_eddsa(k2.get(), R"({"alg":"EdDSA","kid":"k2"})", claims.dump());
  EXPECT_THAT(verifier->verify(t1), IsOk());
  EXPECT_EQ(*calls, 1);
  // Unknown kid right after a fetch: no new fetch (bound), rejected.
  EXPECT_FALSE(verifier->verify(t2).has_value());
  EXPECT_EQ(*calls, 1);
  // The issuer rotates; after the minimum interval an unknown kid triggers one fetch.
  *body = jwks_with(k2.get(), "k2");
  now += 31;
  EXPECT_THAT(verifier->verify(t2), IsOk());
  EXPECT_EQ(*calls, 2);
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(verifier->verify(t1).has_value());  // k1 gone
  EXPECT_EQ(*calls, 2) << "unknown kids must not cause a fetch per request";
  // Fetch failures keep the last good set until max_stale_s.
  body->clear();
  now += 301;
  EXPECT_THAT(verifier->verify(t2), IsOk());
  EXPECT_EQ(*calls, 3);
  now += 3600;
  EXPECT_FALSE(verifier->verify(t2).has_value()) << "stale set past max_stale_s";
}

TEST(JwksCacheTest, FirstFetchFailureIsAnError) {
  auto body = std::make_shared<std::string>();
  JwksCacheConfig cfg;
  cfg.url = "https://issuer.example/jwks";
  EXPECT_THAT(JwksCache::create(cfg, std::make_unique<FakeFetcher>(body), [] { return kNow; }),
              StatusIs(StatusCode::kUnavailable));
  *body = "{\"keys\": 1}";
  EXPECT_THAT(JwksCache::create(cfg, std::make_unique<FakeFetcher>(body), [] { return kNow; }),
              StatusIs(StatusCode::kMalformed));
}

TEST(JwksCacheTest, CurlFetcherReadsFileUrlsAndRefusesHttp) {
  ZTSLM_REQUIRE_SHARED();
  auto f = make_curl_jwks_fetcher(2000);
  EXPECT_THAT(f->fetch("http://127.0.0.1:1/jwks", 1024), StatusIs(StatusCode::kInvalidArgument));
  auto body = f->fetch("file://" + jose_path("rfc_vectors.json"), 1 << 20);
  ASSERT_THAT(body, IsOk());
  EXPECT_NE(body->find("rfc7515-A.1"), std::string::npos);
  EXPECT_THAT(f->fetch("file://" + jose_path("rfc_vectors.json"), 100), StatusIs(StatusCode::kResourceExhausted));
}

}  // namespace
}  // namespace ztslm::identity
