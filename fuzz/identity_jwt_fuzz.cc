// Fuzz target for the JWT verification entry (verify_jws + JwtVerifier::verify).
// Property: a token is accepted only if its signature verifies under the configured key: every
// accepted input is re-checked with OpenSSL directly over the received signing input, and its
// payload must be the base64url decoding of the second segment. No crash, no leak.
#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/check.h"
#include "identity/base64url.h"
#include "identity/jwt.h"

namespace {

using namespace ztslm::identity;  // NOLINT

// A fixed Ed25519 key (RFC 8037 A.2 public key): valid signatures are out of the fuzzer's reach,
// so any acceptance of a mutated input is a finding; the seeds carry the RFC 8037 token.
struct Fixture {
  std::shared_ptr<KeySource> keys;
  std::unique_ptr<JwtVerifier> verifier;
  EVP_PKEY* raw_key = nullptr;
};

const Fixture& fixture() {
  static const Fixture* f = [] {
    auto* fx = new Fixture;
    auto jwk = Jwk::from_json(R"({"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})");
    ZTSLM_CHECK(jwk.has_value());
    JwkSet set;
    ZTSLM_CHECK(set.add(*jwk).ok());
    fx->keys = std::make_shared<StaticKeySource>(std::move(set));
    JwtConfig cfg;
    cfg.issuer = "https://issuer.example";
    cfg.audiences = {"model-server"};
    cfg.default_tenant = "t";
    auto v = JwtVerifier::create(cfg, fx->keys, [] { return int64_t{1800000000}; });
    ZTSLM_CHECK(v.has_value());
    fx->verifier = std::make_unique<JwtVerifier>(std::move(v).value());
    auto x = base64url_decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", 32);
    fx->raw_key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                              reinterpret_cast<const unsigned char*>(x->data()), 32);
    ZTSLM_CHECK(fx->raw_key != nullptr);
    return fx;
  }();
  return *f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Fixture& fx = fixture();
  const std::string_view token(reinterpret_cast<const char*>(data), size);
  auto jws = verify_jws(token, *fx.keys);
  if (jws.has_value()) {
    const size_t d1 = token.find('.');
    const size_t d2 = token.find('.', d1 + 1);
    ZTSLM_CHECK(d1 != std::string_view::npos && d2 != std::string_view::npos);
    ZTSLM_CHECK(token.find('.', d2 + 1) == std::string_view::npos);
    auto sig = base64url_decode(token.substr(d2 + 1), 64);
    ZTSLM_CHECK(sig.has_value() && sig->size() == 64);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ZTSLM_CHECK(EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, fx.raw_key) == 1);
    const int ok = EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig->data()), sig->size(),
                                    reinterpret_cast<const unsigned char*>(token.data()), d2);
    EVP_MD_CTX_free(ctx);
    ZTSLM_CHECK(ok == 1);  // never accepted without a valid signature from the configured key
    auto payload = base64url_decode(token.substr(d1 + 1, d2 - d1 - 1), 1 << 20);
    ZTSLM_CHECK(payload.has_value() && *payload == jws->payload);
  }
  auto principal = fx.verifier->verify(token);
  // The claims layer never accepts what the signature layer rejected.
  ZTSLM_CHECK(!principal.has_value() || jws.has_value());
  if (principal.has_value()) ZTSLM_CHECK(principal->method == AuthMethod::kJwt && !principal->tenant.empty());
  return 0;
}
