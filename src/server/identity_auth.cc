#include "server/identity_auth.h"

namespace ztslm::server {

Principal from_identity(const identity::Principal& p) {
  Principal out;
  out.id = p.id;
  out.tenant = p.tenant;
  out.roles = p.roles;
  out.attributes = p.attributes;
  out.method = std::string(identity::auth_method_name(p.method));
  return out;
}

Result<Principal> IdentityAuthStage::authenticate(const AuthInput& in, AuthFailure& failure) {
  identity::AuthRequest req;
  req.authorization = in.authorization;
  req.peer_certificate_der = std::span<const std::byte>(
      reinterpret_cast<const std::byte*>(in.peer_cert_der.data()), in.peer_cert_der.size());
  identity::AuthFailure f;
  auto p = auth_->authenticate(req, &f);
  if (!p.has_value()) {
    failure.reason = std::string(identity::auth_failure_reason_name(f.reason));
    return p.error();
  }
  return from_identity(*p);
}

}  // namespace ztslm::server
