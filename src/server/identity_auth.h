// Adapter: identity::Authenticator (API keys in SQLite, JWT/JWKS, mTLS/SPIFFE) as the
// pipeline's AuthStage.
#pragma once

#include <memory>

#include "identity/authenticator.h"
#include "identity/jwt.h"
#include "server/config/config.h"
#include "server/stages.h"

namespace ztslm::server {

class IdentityAuthStage final : public AuthStage {
 public:
  explicit IdentityAuthStage(std::shared_ptr<const identity::Authenticator> auth) : auth_(std::move(auth)) {}
  // kUnauthenticated (401) or kUnavailable (503: the key store or crypto failed); the reason
  // name ("api_key_rejected", ...) goes to `failure`.
  Result<Principal> authenticate(const AuthInput& in, AuthFailure& failure) override;

 private:
  std::shared_ptr<const identity::Authenticator> auth_;
};

// The JWT verifier `jwt` describes (config `jwt:`), or null when JWT is off. Keys come from
// `jwks_file` (read now) or `jwks_url` (fetched now with libcurl, https only unless
// `jwks_allow_http`, bounded by jwks_max_bytes and jwks_timeout_ms, then cached and refreshed
// as configured). Errors name the setting or the file; they are start-up errors.
Result<std::shared_ptr<const identity::JwtVerifier>> make_jwt_verifier(const JwtSettings& jwt,
                                                                       identity::UnixClock clock);

// identity::Principal → the pipeline's Principal.
Principal from_identity(const identity::Principal& p);

}  // namespace ztslm::server
