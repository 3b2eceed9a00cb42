// Signature-level tests: every Wycheproof vector for ES256 (P1363 and DER), Ed25519 and RS256.
#include "identity/jwk.h"

#include <nlohmann/json.hpp>

#include "core/byte_reader.h"
#include "identity/base64url.h"
#include "identity_test_util.h"
#include "test_util.h"

namespace ztslm::identity {
namespace {

using nlohmann::json;
using testing::hex_decode;
using testing::read_file;

json load_wycheproof(const std::string& name) {
  return json::parse(read_file(::ztslm::testing::testdata_path("jose/wycheproof/testvectors_v1/" + name)));
}

struct Tally {
  int n_valid = 0, n_invalid = 0, n_acceptable = 0;
};

// Runs every test of every group of `doc`: `key_for` builds the key, `verify` checks one test.
template <typename KeyFn, typename VerifyFn>
Tally run_signature_file(const json& doc, KeyFn key_for, VerifyFn verify) {
  Tally t;
  for (const auto& group : doc["testGroups"]) {
    Result<Jwk> key = key_for(group);
    for (const auto& test : group["tests"]) {
      const std::string result = test["result"];
      const std::string msg = hex_decode(test["msg"]);
      const std::string sig = hex_decode(test["sig"]);
      const bool ok = key.has_value() && verify(*key, msg, sig).ok();
      const std::string where = "tcId " + std::to_string(test["tcId"].get<int>()) + " " + test["comment"].get<std::string>();
      if (result == "valid") {
        ++t.n_valid;
        EXPECT_TRUE(ok) << where << (key.has_value() ? "" : " key: " + key.error().to_string());
      } else if (result == "invalid") {
        ++t.n_invalid;
        EXPECT_FALSE(ok) << where;
      } else {
        ++t.n_acceptable;  // either outcome is allowed
      }
    }
  }
  return t;
}

std::string b64u_field(std::string hex, size_t n) {
  std::string bytes = hex_decode(hex);
  while (bytes.size() > n && bytes[0] == '\0') bytes.erase(0, 1);
  while (bytes.size() < n) bytes.insert(bytes.begin(), '\0');
  return base64url_encode(bytes);
}

Result<Jwk> ec_jwk_from_coordinates(const json& g) {
  json jwk = {{"kty", "EC"},
              {"crv", "P-256"},
              {"x", b64u_field(g["publicKey"]["wx"], 32)},
              {"y", b64u_field(g["publicKey"]["wy"], 32)}};
  return Jwk::from_json(jwk.dump());
}

TEST(JwkWycheproofTest, Es256P1363) {
  ZTSLM_REQUIRE_SHARED();
  const json doc = load_wycheproof("ecdsa_secp256r1_sha256_p1363_test.json");
  Tally t = run_signature_file(
      doc,
      [](const json& g) {
        // A few groups (edge-case points) carry no JWK: build it from the coordinates.
        if (g.contains("publicKeyJwk")) return Jwk::from_json(g["publicKeyJwk"].dump());
        return ec_jwk_from_coordinates(g);
      },
      [](const Jwk& k, const std::string& msg, const std::string& sig) { return k.verify(msg, as_bytes(sig)); });
  EXPECT_GT(t.n_valid, 0);
  EXPECT_GT(t.n_invalid, 50);
  EXPECT_EQ(t.n_valid + t.n_invalid + t.n_acceptable, doc["numberOfTests"].get<int>());
}

TEST(JwkWycheproofTest, Es256Der) {
  ZTSLM_REQUIRE_SHARED();
  const json doc = load_wycheproof("ecdsa_secp256r1_sha256_test.json");
  Tally t = run_signature_file(
      doc,
      [](const json& g) { return ec_jwk_from_coordinates(g); },
      [](const Jwk& k, const std::string& msg, const std::string& sig) { return k.verify_ecdsa_der(msg, as_bytes(sig)); });
  EXPECT_GT(t.n_valid, 0);
  EXPECT_GT(t.n_invalid, 100);
  EXPECT_EQ(t.n_valid + t.n_invalid + t.n_acceptable, doc["numberOfTests"].get<int>());
}

TEST(JwkWycheproofTest, Ed25519) {
  ZTSLM_REQUIRE_SHARED();
  const json doc = load_wycheproof("ed25519_test.json");
  Tally t = run_signature_file(
      doc,
      [](const json& g) {
        // Both spellings of the key must agree: raw bytes and the JWK.
        auto from_jwk = Jwk::from_json(g["publicKeyJwk"].dump());
        EXPECT_THAT(from_jwk, IsOk());
        const std::string raw = hex_decode(g["publicKey"]["pk"]);
        return Jwk::from_ed25519_raw("", as_bytes(raw));
      },
      [](const Jwk& k, const std::string& msg, const std::string& sig) { return k.verify(msg, as_bytes(sig)); });
  EXPECT_GT(t.n_valid, 0);
  EXPECT_GT(t.n_invalid, 50);
  EXPECT_EQ(t.n_valid + t.n_invalid + t.n_acceptable, doc["numberOfTests"].get<int>());
}

TEST(JwkWycheproofTest, Rs256Pkcs1) {
  ZTSLM_REQUIRE_SHARED();
  const json doc = load_wycheproof("rsa_signature_2048_sha256_test.json");
  Tally t = run_signature_file(
      doc, [](const json& g) { return Jwk::from_json(g["keyJwk"].dump()); },
      [](const Jwk& k, const std::string& msg, const std::string& sig) { return k.verify(msg, as_bytes(sig)); });
  EXPECT_GT(t.n_valid, 0);
  EXPECT_GT(t.n_invalid, 50);
  EXPECT_EQ(t.n_valid + t.n_invalid + t.n_acceptable, doc["numberOfTests"].get<int>());
}

TEST(JwkTest, RejectsUnusableKeys) {
  const std::string x = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
  const std::string y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
  struct Case {
    const char* name;
    json jwk;
  } const cases[] = {
      {"oct key", {{"kty", "oct"}, {"k", "AAAA"}}},
      {"alg none", {{"kty", "EC"}, {"crv", "P-256"}, {"x", x}, {"y", y}, {"alg", "none"}}},
      {"alg HS256 on ec", {{"kty", "EC"}, {"crv", "P-256"}, {"x", x}, {"y", y}, {"alg", "HS256"}}},
      {"use enc", {{"kty", "EC"}, {"crv", "P-256"}, {"x", x}, {"y", y}, {"use", "enc"}}},
      {"key_ops encrypt", {{"kty", "EC"}, {"crv", "P-256"}, {"x", x}, {"y", y}, {"key_ops", {"encrypt"}}}},
      {"P-384 curve", {{"kty", "EC"}, {"crv", "P-384"}, {"x", x}, {"y", y}}},
      {"off-curve point", {{"kty", "EC"}, {"crv", "P-256"}, {"x", x}, {"y", "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a1"}}},
      {"short x", {{"kty", "EC"}, {"crv", "P-256"}, {"x", "AAAA"}, {"y", y}}},
      {"X25519", {{"kty", "OKP"}, {"crv", "X25519"}, {"x", "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}},
      {"rsa 512", {{"kty", "RSA"}, {"n", std::string(86, 'w')}, {"e", "AQAB"}}},
      {"no kty", {{"x", x}}},
  };
  for (const auto& c : cases) EXPECT_THAT(Jwk::from_json(c.jwk.dump()), StatusIs(StatusCode::kMalformed)) << c.name;
  EXPECT_THAT(Jwk::from_json(json{{"kty", "EC"}, {"crv", "P-256"}, {"x", x}, {"y", y}, {"alg", "ES256"}}.dump()), IsOk());
}

TEST(JwkSetTest, DuplicateKidRejectsTheSetAndUnusableKeysAreSkipped) {
  const json ec = {{"kty", "EC"}, {"crv", "P-256"}, {"kid", "a"}, {"x", "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"},
                   {"y", "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}};
  json oct = {{"kty", "oct"}, {"kid", "a"}, {"k", "AAAA"}};
  EXPECT_THAT(JwkSet::parse(json{{"keys", {ec, oct}}}.dump()), StatusIs(StatusCode::kMalformed));
  oct["kid"] = "b";
  auto set = JwkSet::parse(json{{"keys", {ec, oct}}}.dump());
  ASSERT_THAT(set, IsOk());
  EXPECT_EQ(set->size(), 1u);
  EXPECT_EQ(set->skipped().size(), 1u);
  EXPECT_NE(set->find("a"), nullptr);
  EXPECT_EQ(set->find("b"), nullptr);
  EXPECT_EQ(set->find(""), nullptr);
  EXPECT_THAT(JwkSet::parse(R"({"keys":[],"keys":[]})"), StatusIs(StatusCode::kMalformed));
  json many = {{"keys", json::array()}};
  for (int i = 0; i < 40; ++i) many["keys"].push_back(oct);
  EXPECT_THAT(JwkSet::parse(many.dump()), StatusIs(StatusCode::kResourceExhausted));
}

TEST(JwkTest, RejectsRocaVulnerableModulus) {
  ZTSLM_REQUIRE_SHARED();
  const json doc = load_wycheproof("json_web_key_test.json");
  int n_roca = 0;
  for (const auto& g : doc["testGroups"]) {
    if (g["comment"] != "jws_rsa_roca_key") continue;
    auto k = Jwk::from_json(g["public"]["keys"][0].dump());
    ASSERT_THAT(k, StatusIs(StatusCode::kMalformed));
    EXPECT_NE(k.error().message().find("roca"), std::string::npos) << k.error().message();
    ++n_roca;
  }
  EXPECT_EQ(n_roca, 1);
}

}  // namespace
}  // namespace ztslm::identity
