// JWT bearer tokens (RFC 7519) in JWS compact serialization (RFC 7515 section 7.1), signed with
// RS256, ES256 or EdDSA (Ed25519) by a key from a configured KeySource.
//
// Accepted grammar (anything else is rejected):
//   token   = segment "." segment "." segment        ; exactly 3, total <= max_token_bytes
//   segment = 1*base64url-char                       ; strict, see base64url.h
//   header  = JSON object, no duplicate names: "alg" (exactly "RS256" | "ES256" | "EdDSA"),
//             optional "kid" (string), optional "typ" ("JWT" or "at+jwt", case-insensitive);
//             "crit", "jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256", "cty", "b64", "enc", "zip"
//             are rejected; other members are ignored
//   payload = JSON object, no duplicate names, NumericDate claims are JSON numbers
// The signing input is the received ASCII of the first two segments; nothing is re-encoded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "identity/jwk.h"
#include "identity/jwks_cache.h"
#include "identity/principal.h"

namespace ztslm::identity {

struct JwsLimits {
  size_t max_token_bytes = 8192;     // checked before any decoding (attacks.md)
  size_t max_header_bytes = 1024;    // decoded header JSON
  size_t max_payload_bytes = 6144;   // decoded claims JSON
  size_t max_json_depth = 6;         // claims may nest a little (e.g. "roles" arrays)
};

// The result of a JWS verification: the header facts and the verified payload bytes.
struct VerifiedJws {
  JwsAlg alg = JwsAlg::kRS256;
  std::string kid;
  std::string payload;
};

// Verifies the compact JWS `token` against `source` (signature level: no claim checks). The key
// is chosen by exact kid, or, when the header has no kid, the only key of the header's alg;
// the key's own algorithm must equal the header's. kMalformed for a token that does not parse,
// kUnauthenticated for a key or signature failure, kResourceExhausted past `limits`.
Result<VerifiedJws> verify_jws(std::string_view token, KeySource& source, const JwsLimits& limits = {});

struct JwtConfig {
  std::string issuer;                  // "iss" must equal this or one of `issuers` (one required)
  std::vector<std::string> issuers;    // further accepted issuers
  std::vector<std::string> audiences;  // "aud" must contain one of these (required, non-empty)
  int64_t leeway_s = 30;               // clock skew allowed on exp/nbf/iat; at most 300
  int64_t max_lifetime_s = 0;          // if > 0: exp - (iat or now) must not exceed it
  std::vector<JwsAlg> algorithms;      // allow-list; empty = RS256, ES256 and EdDSA
  std::string subject_claim = "sub";   // string claim naming the principal (id "jwt:" + value)
  std::string tenant_claim = "tenant"; // string claim naming the tenant
  std::string roles_claim = "roles";   // array of strings, or one space-separated string
  std::string default_tenant;          // used when the tenant claim is absent ("" = reject)
  std::vector<std::string> default_roles;  // used when the roles claim is absent
  JwsLimits limits;
};

// Verifies JWT bearer tokens and maps them to a Principal:
//   id = "jwt:" + subject claim ("sub" by default), tenant = tenant claim (or default_tenant), roles = roles claim (or
//   default_roles), attributes: iss, sub, kid, alg and jti when present.
// Thread-safe; the KeySource is shared.
class JwtVerifier final {
 public:
  // kInvalidArgument for an unusable config (no issuer, no audience, leeway outside [0, 300]).
  static Result<JwtVerifier> create(JwtConfig config, std::shared_ptr<KeySource> keys, UnixClock clock);

  // Verifies `token` (the part after "Bearer "). Every failure is kUnauthenticated or
  // kMalformed/kResourceExhausted with a message naming the failed check: for the audit log
  // only, never for the client.
  Result<Principal> verify(std::string_view token) const;

 private:
  JwtVerifier(JwtConfig config, std::shared_ptr<KeySource> keys, UnixClock clock)
      : config_(std::move(config)), keys_(std::move(keys)), clock_(std::move(clock)) {}
  JwtConfig config_;
  std::shared_ptr<KeySource> keys_;
  UnixClock clock_;
};

// True when `role` is a well-formed role name: 1..64 bytes of [A-Za-z0-9_.:-].
bool is_valid_role_name(std::string_view role);

}  // namespace ztslm::identity
