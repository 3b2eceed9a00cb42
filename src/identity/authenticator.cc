#include "identity/authenticator.h"

#include <algorithm>

namespace ztslm::identity {
namespace {

constexpr size_t kMaxAuthorizationBytes = 16 * 1024;

bool is_backend_error(const Status& s) {
  return s.code() == StatusCode::kInternal || s.code() == StatusCode::kUnavailable;
}

Status public_failure(const AuthFailure& f) {
  if (f.reason == AuthFailureReason::kBackendError) return Status::unavailable("authentication unavailable");
  return Status(StatusCode::kUnauthenticated, std::string(Authenticator::kPublicMessage));
}

}  // namespace

std::string_view auth_failure_reason_name(AuthFailureReason reason) {
  switch (reason) {
    case AuthFailureReason::kNoCredential: return "no_credential";
    case AuthFailureReason::kBadScheme: return "bad_scheme";
    case AuthFailureReason::kMethodDisabled: return "method_disabled";
    case AuthFailureReason::kApiKeyRejected: return "api_key_rejected";
    case AuthFailureReason::kJwtRejected: return "jwt_rejected";
    case AuthFailureReason::kCertificateRejected: return "certificate_rejected";
    case AuthFailureReason::kBackendError: return "backend_error";
  }
  return "unknown";
}

Result<std::string_view> parse_bearer(std::string_view header) {
  constexpr std::string_view kScheme = "bearer ";
  if (header.size() > kMaxAuthorizationBytes) return Status::malformed("authorization header too long");
  if (header.size() <= kScheme.size()) return Status::malformed("authorization is not a bearer token");
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if ((header[i] | 0x20) != kScheme[i]) return Status::malformed("authorization is not a bearer token");
  }
  const std::string_view token = header.substr(kScheme.size());
  if (!std::all_of(token.begin(), token.end(), [](char c) { return c > 0x20 && c < 0x7f; })) {
    return Status::malformed("bearer token has spaces or non-visible characters");
  }
  return token;
}

Result<Principal> Authenticator::authenticate_header(std::string_view header, AuthFailure& failure) const {
  auto token = parse_bearer(header);
  if (!token.has_value()) {
    failure = {AuthFailureReason::kBadScheme, std::nullopt, token.error().message()};
    return token.error();
  }
  if (has_api_key_prefix(*token)) {
    failure.method = AuthMethod::kApiKey;
    if (!api_keys_) {
      failure.reason = AuthFailureReason::kMethodDisabled;
      failure.detail = "api keys are not enabled";
      return Status::unauthenticated("disabled");
    }
    auto p = api_keys_->authenticate(*token);
    if (!p.has_value()) {
      failure.reason = is_backend_error(p.error()) ? AuthFailureReason::kBackendError : AuthFailureReason::kApiKeyRejected;
      failure.detail = p.error().message();
    }
    return p;
  }
  failure.method = AuthMethod::kJwt;
  if (!jwt_) {
    failure.reason = AuthFailureReason::kMethodDisabled;
    failure.detail = "jwt bearer tokens are not enabled";
    return Status::unauthenticated("disabled");
  }
  auto p = jwt_->verify(*token);
  if (!p.has_value()) {
    failure.reason = p.error().code() == StatusCode::kInternal ? AuthFailureReason::kBackendError
                                                               : AuthFailureReason::kJwtRejected;
    failure.detail = p.error().message();
  }
  return p;
}

Result<Principal> Authenticator::authenticate_certificate(const AuthRequest& request, AuthFailure& failure) const {
  failure.method = AuthMethod::kMtls;
  if (!mtls_) {
    failure.reason = AuthFailureReason::kMethodDisabled;
    failure.detail = "mtls is not enabled";
    return Status::unauthenticated("disabled");
  }
  auto p = request.peer_certificate != nullptr ? mtls_->verify(request.peer_certificate, request.peer_chain)
                                               : mtls_->verify_der(request.peer_certificate_der);
  if (!p.has_value()) {
    failure.reason = p.error().code() == StatusCode::kInternal ? AuthFailureReason::kBackendError
                                                               : AuthFailureReason::kCertificateRejected;
    failure.detail = p.error().message();
  }
  return p;
}

Result<Principal> Authenticator::authenticate(const AuthRequest& request, AuthFailure* out_failure) const {
  AuthFailure failure;
  const bool has_cert = request.peer_certificate != nullptr || !request.peer_certificate_der.empty();
  Result<Principal> result = Status::unauthenticated("no credential");
  if (!request.authorization.empty()) {
    result = authenticate_header(request.authorization, failure);
    // SECURITY: a presented client certificate is never ignored: if mTLS is on it must verify.
    if (result.has_value() && has_cert && mtls_) {
      AuthFailure cert_failure;
      auto cert = authenticate_certificate(request, cert_failure);
      if (!cert.has_value()) {
        failure = std::move(cert_failure);
        result = cert.error();
      } else {
        result->attributes["mtls_spiffe_id"] = cert->id;
      }
    }
  } else if (has_cert) {
    result = authenticate_certificate(request, failure);
  } else {
    failure = {AuthFailureReason::kNoCredential, std::nullopt, "no authorization header and no client certificate"};
  }
  if (result.has_value()) return result;
  const Status public_status = public_failure(failure);
  if (out_failure != nullptr) *out_failure = std::move(failure);
  return public_status;
}

}  // namespace ztslm::identity
