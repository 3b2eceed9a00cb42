#include "server/identity_auth.h"

#include <fstream>
#include <sstream>

#include "identity/jwks_cache.h"

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
    failure.detail = f.detail;
    return p.error();
  }
  return from_identity(*p);
}

Result<std::shared_ptr<const identity::JwtVerifier>> make_jwt_verifier(const JwtSettings& jwt,
                                                                       identity::UnixClock clock) {
  if (!jwt.enabled()) return std::shared_ptr<const identity::JwtVerifier>();
  identity::JwksLimits limits;
  limits.max_bytes = jwt.jwks_max_bytes;
  std::shared_ptr<identity::KeySource> keys;
  if (!jwt.jwks_file.empty()) {
    std::ifstream in(jwt.jwks_file, std::ios::binary);
    if (!in) return Status::not_found("cannot open jwt.jwks_file {}", jwt.jwks_file);
    std::string body(jwt.jwks_max_bytes + 1, '\0');
    in.read(body.data(), static_cast<std::streamsize>(body.size()));
    body.resize(static_cast<size_t>(in.gcount()));
    if (body.size() > jwt.jwks_max_bytes) {
      return Status::resource_exhausted("jwt.jwks_file is larger than jwt.jwks_max_bytes {}", jwt.jwks_max_bytes);
    }
    auto set = identity::JwkSet::parse(body, limits);
    if (!set.has_value()) return Status::invalid_argument("jwt.jwks_file: {}", set.error().message());
    if (set->size() == 0) return Status::invalid_argument("jwt.jwks_file holds no usable key");
    keys = std::make_shared<identity::StaticKeySource>(std::move(set).value());
  } else {
    identity::JwksCacheConfig cc;
    cc.url = jwt.jwks_url;
    cc.refresh_interval_s = jwt.jwks_cache_ttl_s;
    cc.min_refresh_interval_s = std::min(jwt.jwks_min_refresh_s, jwt.jwks_cache_ttl_s);
    cc.max_stale_s = jwt.jwks_max_stale_s;
    cc.limits = limits;
    identity::CurlFetcherOptions fo;
    fo.timeout_ms = jwt.jwks_timeout_ms;
    fo.ca_file = jwt.jwks_ca_file;
    fo.allow_http = jwt.jwks_allow_http;
    auto cache = identity::JwksCache::create(std::move(cc), identity::make_curl_jwks_fetcher(fo), clock);
    if (!cache.has_value()) return Status::unavailable("jwt.jwks_url: {}", cache.error().message());
    keys = std::move(cache).value();
  }
  identity::JwtConfig c;
  c.issuers = jwt.issuers;
  c.audiences = jwt.audiences;
  c.leeway_s = jwt.leeway_s;
  c.max_lifetime_s = jwt.max_lifetime_s;
  for (const auto& name : jwt.algorithms) {
    auto alg = identity::parse_jws_alg(name);
    if (!alg) return Status::invalid_argument("jwt.algorithms: unknown algorithm");
    c.algorithms.push_back(*alg);
  }
  c.subject_claim = jwt.principal_claim;
  c.tenant_claim = jwt.tenant_claim;
  c.roles_claim = jwt.roles_claim;
  c.default_tenant = jwt.default_tenant;
  c.default_roles = jwt.default_roles;
  for (const auto& r : c.default_roles) {
    if (!identity::is_valid_role_name(r)) return Status::invalid_argument("jwt.default_roles holds an invalid name");
  }
  auto v = identity::JwtVerifier::create(std::move(c), std::move(keys), std::move(clock));
  if (!v.has_value()) return v.error();
  return std::make_shared<const identity::JwtVerifier>(std::move(v).value());
}

}  // namespace ztslm::server
