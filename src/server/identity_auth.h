// Adapter: identity::Authenticator (API keys in SQLite, JWT/JWKS, mTLS/SPIFFE) as the
// pipeline's AuthStage.
#pragma once

#include <memory>

#include "identity/authenticator.h"
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

// identity::Principal → the pipeline's Principal.
Principal from_identity(const identity::Principal& p);

}  // namespace ztslm::server
