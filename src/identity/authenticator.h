// Authenticator: the one entry point the server calls for every request but health checks.
// It turns the request's credentials into a Principal or a deliberately uninformative failure.
//
//   Authorization: Bearer zt_<id>_<secret>   -> API key (ApiKeyStore)
//   Authorization: Bearer <header.payload.sig> -> JWT (JwtVerifier)
//   no Authorization, TLS client certificate  -> mTLS / SPIFFE (MtlsVerifier)
//
// When both a header and a client certificate are present and mTLS is configured, both must
// verify; the header decides the principal and the certificate adds attribute "mtls_spiffe_id".
#pragma once

#include <openssl/x509.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/result.h"
#include "identity/api_key.h"
#include "identity/jwt.h"
#include "identity/mtls.h"
#include "identity/principal.h"

namespace ztslm::identity {

// The credentials of one request. Nothing is owned; everything must outlive the call.
struct AuthRequest {
  std::string_view authorization;               // Authorization header value; "" when absent
  X509* peer_certificate = nullptr;             // verified-or-not TLS peer leaf (SSL_get0_peer_certificate)
  STACK_OF(X509)* peer_chain = nullptr;         // untrusted intermediates the peer sent (may be null)
  std::span<const std::byte> peer_certificate_der;  // alternative to peer_certificate
};

// Why authentication failed: few values, usable as a metrics label.
enum class AuthFailureReason {
  kNoCredential,        // no header and no client certificate
  kBadScheme,           // header present but not "Bearer <token>"
  kMethodDisabled,      // credential of a kind this server is not configured for
  kApiKeyRejected,
  kJwtRejected,
  kCertificateRejected,
  kBackendError,        // key store or crypto library failure (the request gets 503)
};

// "no_credential", "bad_scheme", "method_disabled", "api_key_rejected", "jwt_rejected",
// "certificate_rejected", "backend_error".
std::string_view auth_failure_reason_name(AuthFailureReason reason);

// The internal account of a failure. SECURITY: for the audit log and metrics only; `detail`
// names the failed check (never a secret) and must not reach the client.
struct AuthFailure {
  AuthFailureReason reason = AuthFailureReason::kNoCredential;
  std::optional<AuthMethod> method;  // the method that was attempted, if any
  std::string detail;
};

class Authenticator final {
 public:
  // The message of every kUnauthenticated this class returns.
  static constexpr std::string_view kPublicMessage = "invalid or missing credentials";

  // Any of the three may be null (that method is then disabled). The objects are shared with
  // the caller and must be thread-safe (they are).
  Authenticator(std::shared_ptr<ApiKeyStore> api_keys, std::shared_ptr<const JwtVerifier> jwt,
                std::shared_ptr<const MtlsVerifier> mtls)
      : api_keys_(std::move(api_keys)), jwt_(std::move(jwt)), mtls_(std::move(mtls)) {}

  // Authenticates `request`. On failure returns kUnauthenticated with kPublicMessage (401), or
  // kUnavailable "authentication unavailable" when a backend failed (503), and fills
  // `out_failure` (optional) with the reason for the audit log. Thread-safe.
  Result<Principal> authenticate(const AuthRequest& request, AuthFailure* out_failure = nullptr) const;

 private:
  Result<Principal> authenticate_header(std::string_view header, AuthFailure& failure) const;
  Result<Principal> authenticate_certificate(const AuthRequest& request, AuthFailure& failure) const;

  std::shared_ptr<ApiKeyStore> api_keys_;
  std::shared_ptr<const JwtVerifier> jwt_;
  std::shared_ptr<const MtlsVerifier> mtls_;
};

// Extracts the token of a "Bearer <token>" header value (scheme case-insensitive, one space,
// token of visible ASCII without spaces, RFC 6750 2.1). kMalformed otherwise.
Result<std::string_view> parse_bearer(std::string_view header);

}  // namespace ztslm::identity
