// JSON Web Keys (RFC 7517) for JWS signature verification, restricted to the three algorithms
// this server accepts: RS256 (RSASSA-PKCS1-v1_5 + SHA-256, RFC 7518 3.3), ES256 (ECDSA P-256 +
// SHA-256, R||S signatures, RFC 7518 3.4) and EdDSA with Ed25519 (RFC 8037). Verification is
// OpenSSL 3 EVP.
//
// Accepted JWK members: kty, kid, alg, use, key_ops and the public parameters (n, e / crv, x, y
// / crv, x). Private members (d, p, q, dp, dq, qi, k) are ignored and never read. A key's
// algorithm is fixed when it is loaded, from its type: the token header can never choose it.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

typedef struct evp_pkey_st EVP_PKEY;  // NOLINT: OpenSSL's own spelling

namespace ztslm::identity {

enum class JwsAlg { kRS256, kES256, kEdDSA };

// "RS256", "ES256", "EdDSA".
std::string_view jws_alg_name(JwsAlg alg);
// The algorithm named exactly (case-sensitive) by `name`; nullopt for anything else, including
// "none", "HS256", "PS256" and case variants.
std::optional<JwsAlg> parse_jws_alg(std::string_view name);

struct JwkLimits {
  size_t min_rsa_bits = 2048;   // RFC 7518 3.3 requires >= 2048
  size_t max_rsa_bits = 8192;   // verification cost grows with the modulus; bound it
};

// One public verification key. Immutable and cheap to copy (the OpenSSL key is shared).
class Jwk final {
 public:
  const std::string& kid() const { return kid_; }
  JwsAlg alg() const { return alg_; }

  // Verifies `signature` (JWS form: PKCS#1 v1.5 block for RS256, 64-byte R||S for ES256, 64
  // bytes for EdDSA) over `message` with this key's algorithm. Returns kUnauthenticated when
  // the signature does not verify or has the wrong length for the key.
  Status verify(std::string_view message, std::span<const std::byte> signature) const;

  // ES256 keys only: verifies an ASN.1 DER ECDSA signature. Non-canonical DER (BER lengths,
  // extra zeros, trailing bytes) is rejected: the DER must re-encode to exactly its input.
  Status verify_ecdsa_der(std::string_view message, std::span<const std::byte> der) const;

  // Builds a key from a JWK object given as JSON text. kMalformed for a JWK that is not a usable
  // public signing key for RS256/ES256/EdDSA (wrong kty/crv/alg combination, point not on the
  // curve, RSA modulus outside the limits, e < 3 or even, "use" other than "sig", "key_ops"
  // without "verify").
  static Result<Jwk> from_json(std::string_view json, const JwkLimits& limits = {});
  // Builds a key from a PEM SubjectPublicKeyInfo ("-----BEGIN PUBLIC KEY-----"); `kid` is the
  // identifier tokens must name. The algorithm follows the key type (RSA, P-256, Ed25519).
  static Result<Jwk> from_pem(std::string_view kid, std::string_view pem, const JwkLimits& limits = {});
  // Ed25519 key from its 32 raw bytes.
  static Result<Jwk> from_ed25519_raw(std::string_view kid, std::span<const std::byte> raw);

  // Internal: used by the JWK/JWKS parser.
  Jwk(std::string kid, JwsAlg alg, std::shared_ptr<EVP_PKEY> key)
      : kid_(std::move(kid)), alg_(alg), key_(std::move(key)) {}

 private:
  std::string kid_;
  JwsAlg alg_ = JwsAlg::kRS256;
  std::shared_ptr<EVP_PKEY> key_;
};

struct JwksLimits {
  size_t max_bytes = 256 * 1024;  // a JWKS document; real ones are a few KiB
  size_t max_keys = 32;
  size_t max_kid_bytes = 256;
  JwkLimits key;
};

// A set of trusted keys, immutable after construction. Keys are found by exact `kid`.
class JwkSet final {
 public:
  JwkSet() = default;

  // Parses a JWKS document ({"keys": [...]}). Keys this server cannot use for verification
  // (symmetric "oct" keys, encryption keys, other algorithms or curves, weak RSA) are skipped
  // and listed in `skipped()`; a key of a supported type that is malformed is skipped the same
  // way. Returns kMalformed for invalid JSON or a duplicate kid (ambiguous), and
  // kResourceExhausted past `limits`.
  static Result<JwkSet> parse(std::string_view json, const JwksLimits& limits = {});

  // Adds `key`. kInvalidArgument if its kid is already present.
  Status add(Jwk key);

  // The key with exactly this `kid`, or nullptr.
  const Jwk* find(std::string_view kid) const;
  // The only key whose algorithm is `alg`, or nullptr when there are none or several.
  const Jwk* find_unique_for_alg(JwsAlg alg) const;

  size_t size() const { return keys_.size(); }
  // One line per key that parse() skipped, with the reason (for logs; no key material).
  const std::vector<std::string>& skipped() const { return skipped_; }

 private:
  std::vector<Jwk> keys_;
  std::vector<std::string> skipped_;
};

}  // namespace ztslm::identity
