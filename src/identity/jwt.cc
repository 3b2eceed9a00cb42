#include "identity/jwt.h"

#include <algorithm>
#include <cmath>

#include "core/byte_reader.h"
#include "core/utf8.h"
#include "identity/base64url.h"
#include "identity/internal/json.h"

namespace ztslm::identity {
namespace {

constexpr size_t kMaxSignatureBytes = 1024;  // RSA-8192
constexpr size_t kMaxRoles = 32;
constexpr size_t kMaxClaimStringBytes = 512;

// Header members that would let the token choose or carry key material, or change how the
// payload is processed. SECURITY: keys come only from configuration.
constexpr std::string_view kForbiddenHeaderMembers[] = {"crit", "jku", "jwk", "x5u", "x5c", "x5t",
                                                        "x5t#S256", "cty", "b64", "enc", "zip"};

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);
         });
}

// Splits `token` into exactly three non-empty-header segments.
Status split_compact(std::string_view token, std::string_view out[3]) {
  const size_t d1 = token.find('.');
  if (d1 == std::string_view::npos) return Status::malformed("jws: not three segments");
  const size_t d2 = token.find('.', d1 + 1);
  if (d2 == std::string_view::npos) return Status::malformed("jws: not three segments");
  if (token.find('.', d2 + 1) != std::string_view::npos) return Status::malformed("jws: more than three segments");
  out[0] = token.substr(0, d1);
  out[1] = token.substr(d1 + 1, d2 - d1 - 1);
  out[2] = token.substr(d2 + 1);
  if (out[0].empty()) return Status::malformed("jws: empty header");
  if (out[2].empty()) return Status::unauthenticated("jws: empty signature");
  return Status();
}

struct Header {
  JwsAlg alg;
  std::string kid;
  bool has_kid = false;
};

Result<Header> parse_header(std::string_view b64, const JwsLimits& limits) {
  ZTSLM_ASSIGN_OR_RETURN(std::string json, base64url_decode(b64, limits.max_header_bytes));
  internal::JsonDoc doc;
  ZTSLM_TRY(doc.parse(json, {.max_bytes = limits.max_header_bytes, .max_depth = limits.max_json_depth}));
  simdjson::dom::object obj;
  if (doc.root().get_object().get(obj) != simdjson::SUCCESS) return Status::malformed("jws header is not an object");
  for (std::string_view name : kForbiddenHeaderMembers) {
    simdjson::dom::element unused;
    if (obj.at_key(name).get(unused) == simdjson::SUCCESS) {
      return Status::unauthenticated("jws header carries forbidden member \"{}\"", name);
    }
  }
  ZTSLM_ASSIGN_OR_RETURN(auto alg_name, internal::get_string(obj, "alg"));
  if (!alg_name) return Status::malformed("jws header lacks alg");
  const auto alg = parse_jws_alg(*alg_name);
  // SECURITY: exact, case-sensitive allow-list: "none", HS*, PS* and case variants never pass.
  if (!alg) return Status::unauthenticated("jws alg {} not allowed", printable(*alg_name, 16));
  ZTSLM_ASSIGN_OR_RETURN(auto typ, internal::get_string(obj, "typ"));
  if (typ && !iequals(*typ, "JWT") && !iequals(*typ, "at+jwt") && !iequals(*typ, "application/at+jwt")) {
    return Status::unauthenticated("jws typ {} is not a jwt", printable(*typ, 32));
  }
  ZTSLM_ASSIGN_OR_RETURN(auto kid, internal::get_string(obj, "kid"));
  Header h{*alg, std::string(kid.value_or("")), kid.has_value()};
  return h;
}

// A NumericDate (RFC 7519 2): a JSON number of seconds; fractions are truncated.
Result<std::optional<int64_t>> get_numeric_date(simdjson::dom::object obj, std::string_view name) {
  simdjson::dom::element el;
  if (obj.at_key(name).get(el) != simdjson::SUCCESS) return std::optional<int64_t>();
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;
  constexpr int64_t kMax = int64_t{1} << 40;  // year ~36800: far past any real date
  if (el.get_int64().get(i) == simdjson::SUCCESS) {
    // fall through to the range check
  } else if (el.get_uint64().get(u) == simdjson::SUCCESS) {
    i = kMax + 1;
  } else if (el.get_double().get(d) == simdjson::SUCCESS && std::isfinite(d) && d > -1e15 && d < 1e15) {
    i = static_cast<int64_t>(std::floor(d));
  } else {
    return Status::unauthenticated("claim {} is not a numeric date", name);
  }
  if (i < 0 || i > kMax) return Status::unauthenticated("claim {} out of range", name);
  return std::optional<int64_t>(i);
}

Result<std::vector<std::string>> parse_roles(simdjson::dom::element el) {
  std::vector<std::string> roles;
  std::string_view s;
  simdjson::dom::array arr;
  if (el.get_string().get(s) == simdjson::SUCCESS) {
    size_t pos = 0;
    while (pos < s.size()) {
      const size_t end = std::min(s.find(' ', pos), s.size());
      if (end > pos) roles.emplace_back(s.substr(pos, end - pos));
      pos = end + 1;
      if (roles.size() > kMaxRoles) return Status::resource_exhausted("more than {} roles", kMaxRoles);
    }
  } else if (el.get_array().get(arr) == simdjson::SUCCESS) {
    if (arr.size() > kMaxRoles) return Status::resource_exhausted("more than {} roles", kMaxRoles);
    for (auto r : arr) {
      if (r.get_string().get(s) != simdjson::SUCCESS) return Status::unauthenticated("roles entry is not a string");
      roles.emplace_back(s);
    }
  } else {
    return Status::unauthenticated("roles claim is neither a string nor an array");
  }
  for (const auto& r : roles) {
    if (!is_valid_role_name(r)) return Status::unauthenticated("invalid role name {}", printable(r, 64));
  }
  std::sort(roles.begin(), roles.end());
  roles.erase(std::unique(roles.begin(), roles.end()), roles.end());
  return roles;
}

}  // namespace

bool is_valid_role_name(std::string_view role) {
  if (role.empty() || role.size() > 64) return false;
  return std::all_of(role.begin(), role.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == ':' || c == '-';
  });
}

Result<VerifiedJws> verify_jws(std::string_view token, KeySource& source, const JwsLimits& limits) {
  if (token.size() > limits.max_token_bytes) {
    return Status::resource_exhausted("jws of {} bytes exceeds limit {}", token.size(), limits.max_token_bytes);
  }
  std::string_view seg[3];
  ZTSLM_TRY(split_compact(token, seg));
  ZTSLM_ASSIGN_OR_RETURN(Header header, parse_header(seg[0], limits));

  std::shared_ptr<const JwkSet> keys = source.keys();
  auto lookup = [&](const JwkSet& set) -> const Jwk* {
    return header.has_kid ? set.find(header.kid) : set.find_unique_for_alg(header.alg);
  };
  const Jwk* key = lookup(*keys);
  if (key == nullptr) {
    keys = source.keys_after_miss();  // key rotation: the issuer may have published a new kid
    key = lookup(*keys);
  }
  if (key == nullptr) {
    return Status::unauthenticated("no trusted key for kid {}", header.has_kid ? printable(header.kid, 64) : "(none)");
  }
  // SECURITY: the key decides the algorithm; a header naming another one (ES256 token against an
  // RSA key, HS256 against any public key) is rejected before any cryptography.
  if (key->alg() != header.alg) {
    return Status::unauthenticated("jws alg {} does not match key alg {}", jws_alg_name(header.alg),
                                   jws_alg_name(key->alg()));
  }
  ZTSLM_ASSIGN_OR_RETURN(std::string sig, base64url_decode(seg[2], kMaxSignatureBytes));
  const std::string_view signing_input = token.substr(0, seg[0].size() + 1 + seg[1].size());
  ZTSLM_TRY(key->verify(signing_input, as_bytes(sig)));
  ZTSLM_ASSIGN_OR_RETURN(std::string payload, base64url_decode(seg[1], limits.max_payload_bytes));
  return VerifiedJws{header.alg, header.kid, std::move(payload)};
}

Result<JwtVerifier> JwtVerifier::create(JwtConfig config, std::shared_ptr<KeySource> keys, UnixClock clock) {
  if (config.issuer.empty() && config.issuers.empty()) return Status::invalid_argument("jwt config needs an issuer");
  for (const auto& i : config.issuers) {
    if (i.empty()) return Status::invalid_argument("jwt config has an empty issuer");
  }
  if (config.subject_claim.empty()) return Status::invalid_argument("jwt config needs a subject claim");
  if (config.audiences.empty()) return Status::invalid_argument("jwt config needs at least one audience");
  if (config.leeway_s < 0 || config.leeway_s > 300) {
    return Status::invalid_argument("jwt leeway {} outside [0, 300]", config.leeway_s);
  }
  if (!keys || !clock) return Status::invalid_argument("jwt verifier needs keys and a clock");
  if (!config.default_tenant.empty() && !is_valid_role_name(config.default_tenant)) {
    return Status::invalid_argument("default tenant is not a valid name");
  }
  return JwtVerifier(std::move(config), std::move(keys), std::move(clock));
}

Result<Principal> JwtVerifier::verify(std::string_view token) const {
  ZTSLM_ASSIGN_OR_RETURN(VerifiedJws jws, verify_jws(token, *keys_, config_.limits));
  if (!config_.algorithms.empty() &&
      std::find(config_.algorithms.begin(), config_.algorithms.end(), jws.alg) == config_.algorithms.end()) {
    return Status::unauthenticated("jwt alg {} not in the allow-list", jws_alg_name(jws.alg));
  }
  internal::JsonDoc doc;
  ZTSLM_TRY(doc.parse(jws.payload, {.max_bytes = config_.limits.max_payload_bytes,
                                    .max_depth = config_.limits.max_json_depth}));
  simdjson::dom::object claims;
  if (doc.root().get_object().get(claims) != simdjson::SUCCESS) return Status::malformed("jwt claims are not an object");

  ZTSLM_ASSIGN_OR_RETURN(auto iss, internal::get_string(claims, "iss"));
  if (!iss || iss->empty() ||
      (*iss != config_.issuer &&
       std::find(config_.issuers.begin(), config_.issuers.end(), *iss) == config_.issuers.end())) {
    return Status::unauthenticated("jwt issuer mismatch");
  }

  simdjson::dom::element aud_el;
  if (claims.at_key("aud").get(aud_el) != simdjson::SUCCESS) return Status::unauthenticated("jwt lacks aud");
  auto aud_ok = [&](std::string_view a) {
    return std::find(config_.audiences.begin(), config_.audiences.end(), a) != config_.audiences.end();
  };
  bool audience_matched = false;
  std::string_view s;
  simdjson::dom::array aud_arr;
  if (aud_el.get_string().get(s) == simdjson::SUCCESS) {
    audience_matched = aud_ok(s);
  } else if (aud_el.get_array().get(aud_arr) == simdjson::SUCCESS) {
    for (auto a : aud_arr) {
      if (a.get_string().get(s) != simdjson::SUCCESS) return Status::unauthenticated("jwt aud entry is not a string");
      audience_matched = audience_matched || aud_ok(s);
    }
  } else {
    return Status::unauthenticated("jwt aud is neither a string nor an array");
  }
  if (!audience_matched) return Status::unauthenticated("jwt audience mismatch");

  const int64_t now = clock_();
  const int64_t leeway = config_.leeway_s;
  ZTSLM_ASSIGN_OR_RETURN(auto exp, get_numeric_date(claims, "exp"));
  ZTSLM_ASSIGN_OR_RETURN(auto nbf, get_numeric_date(claims, "nbf"));
  ZTSLM_ASSIGN_OR_RETURN(auto iat, get_numeric_date(claims, "iat"));
  if (!exp) return Status::unauthenticated("jwt lacks exp");
  if (now >= *exp + leeway) return Status::unauthenticated("jwt expired");
  if (nbf && *nbf > now + leeway) return Status::unauthenticated("jwt not yet valid (nbf)");
  if (iat && *iat > now + leeway) return Status::unauthenticated("jwt issued in the future (iat)");
  if (config_.max_lifetime_s > 0 && *exp - (iat ? *iat : now) > config_.max_lifetime_s) {
    return Status::unauthenticated("jwt lifetime exceeds {} s", config_.max_lifetime_s);
  }

  ZTSLM_ASSIGN_OR_RETURN(auto sub, internal::get_string(claims, config_.subject_claim));
  if (!sub || sub->empty() || sub->size() > kMaxClaimStringBytes) {
    return Status::unauthenticated("jwt subject claim missing or too long");
  }
  Principal p;
  p.method = AuthMethod::kJwt;
  p.id = "jwt:" + std::string(*sub);
  ZTSLM_ASSIGN_OR_RETURN(auto tenant, internal::get_string(claims, config_.tenant_claim));
  if (tenant) {
    if (!is_valid_role_name(*tenant)) return Status::unauthenticated("jwt tenant is not a valid name");
    p.tenant = std::string(*tenant);
  } else if (!config_.default_tenant.empty()) {
    p.tenant = config_.default_tenant;
  } else {
    return Status::unauthenticated("jwt names no tenant");
  }
  simdjson::dom::element roles_el;
  if (claims.at_key(config_.roles_claim).get(roles_el) == simdjson::SUCCESS) {
    ZTSLM_ASSIGN_OR_RETURN(p.roles, parse_roles(roles_el));
  } else {
    p.roles = config_.default_roles;
  }
  p.attributes["iss"] = std::string(*iss);
  p.attributes["sub"] = std::string(*sub);
  p.attributes["alg"] = std::string(jws_alg_name(jws.alg));
  if (!jws.kid.empty()) p.attributes["kid"] = jws.kid;
  ZTSLM_ASSIGN_OR_RETURN(auto jti, internal::get_string(claims, "jti"));
  if (jti && jti->size() <= kMaxClaimStringBytes) p.attributes["jti"] = std::string(*jti);
  p.attributes["exp"] = std::to_string(*exp);
  return p;
}

}  // namespace ztslm::identity
