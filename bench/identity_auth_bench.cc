// Authentication cost per request: an API key against a warm key-store cache, and JWT bearer
// tokens (EdDSA, ES256, RS256) through the Authenticator. Each benchmark validates first.
#include <benchmark/benchmark.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "identity/authenticator.h"
#include "identity/base64url.h"

namespace {

using namespace ztslm::identity;  // NOLINT

constexpr int64_t kNow = 1800000000;

std::string public_pem(EVP_PKEY* k) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, k);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

// Signs a JWT; ES256 DER signatures are converted to R||S.
std::string sign(EVP_PKEY* k, const char* alg, const char* kid) {
  const std::string header = std::string(R"({"alg":")") + alg + R"(","kid":")" + kid + R"("})";
  const std::string claims = R"({"iss":"https://issuer.example","aud":"ztslm","sub":"bench","tenant":"acme","exp":1900000000})";
  const std::string input = base64url_encode(header) + "." + base64url_encode(claims);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ed = EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519;
  EVP_DigestSignInit(ctx, nullptr, ed ? nullptr : EVP_sha256(), nullptr, k);
  size_t n = 0;
  EVP_DigestSign(ctx, nullptr, &n, reinterpret_cast<const unsigned char*>(input.data()), input.size());
  std::string sig(n, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &n, reinterpret_cast<const unsigned char*>(input.data()),
                 input.size());
  sig.resize(n);
  EVP_MD_CTX_free(ctx);
  if (std::string(alg) == "ES256") {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    unsigned char rs[64];
    BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + 32, 32);
    ECDSA_SIG_free(es);
    sig.assign(reinterpret_cast<char*>(rs), 64);
  }
  return input + "." + base64url_encode(sig);
}

struct Env {
  std::string dir;
  std::shared_ptr<ApiKeyStore> store;
  std::unique_ptr<Authenticator> auth;
  std::string api_key_header;
  std::string jwt_header[3];  // EdDSA, ES256, RS256

  Env() {
    char tmpl[] = "/tmp/ztslm_bench_XXXXXX";
    dir = mkdtemp(tmpl);
    auto clock = [] { return kNow; };
    store = std::shared_ptr<ApiKeyStore>(ApiKeyStore::open(dir + "/keys.db", clock).value().release());
    auto key = store->create({.name = "", .tenant = "acme", .roles = {"user"}, .expires_at = 0});
    api_key_header = "Bearer " + key->token;
    EVP_PKEY* keys[3] = {EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), EVP_EC_gen("P-256"),
                         EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048})};
    const char* algs[3] = {"EdDSA", "ES256", "RS256"};
    const char* kids[3] = {"ed", "ec", "rsa"};
    JwkSet set;
    for (int i = 0; i < 3; ++i) {
      (void)set.add(Jwk::from_pem(kids[i], public_pem(keys[i])).value());
      jwt_header[i] = "Bearer " + sign(keys[i], algs[i], kids[i]);
      EVP_PKEY_free(keys[i]);
    }
    JwtConfig cfg;
    cfg.issuer = "https://issuer.example";
    cfg.audiences = {"ztslm"};
    auto jwt = std::make_shared<const JwtVerifier>(
        JwtVerifier::create(cfg, std::make_shared<StaticKeySource>(std::move(set)), clock).value());
    auth = std::make_unique<Authenticator>(store, jwt, nullptr);
  }
  ~Env() {
    auth.reset();
    store.reset();
    std::filesystem::remove_all(dir);
  }
};

Env& env() {
  static Env e;
  return e;
}

void run(benchmark::State& state, const std::string& header, AuthMethod expected) {
  AuthRequest req;
  req.authorization = header;
  auto first = env().auth->authenticate(req);
  if (!first.has_value() || first->method != expected) {
    state.SkipWithError("authentication failed before timing");
    return;
  }
  for (auto _ : state) {
    auto p = env().auth->authenticate(req);
    benchmark::DoNotOptimize(p);
  }
}

void BM_ApiKeyWarm(benchmark::State& state) { run(state, env().api_key_header, AuthMethod::kApiKey); }
void BM_JwtEdDSA(benchmark::State& state) { run(state, env().jwt_header[0], AuthMethod::kJwt); }
void BM_JwtES256(benchmark::State& state) { run(state, env().jwt_header[1], AuthMethod::kJwt); }
void BM_JwtRS256(benchmark::State& state) { run(state, env().jwt_header[2], AuthMethod::kJwt); }

BENCHMARK(BM_ApiKeyWarm);
BENCHMARK(BM_JwtEdDSA);
BENCHMARK(BM_JwtES256);
BENCHMARK(BM_JwtRS256);

}  // namespace

BENCHMARK_MAIN();
