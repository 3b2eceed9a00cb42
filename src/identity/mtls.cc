#include "identity/mtls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>

#include "core/utf8.h"
#include "identity/internal/openssl_util.h"
#include "identity/jwt.h"

namespace ztslm::identity {
namespace {

constexpr size_t kMaxSpiffeIdBytes = 2048;

bool is_td_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}
bool is_path_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
         c == '_';
}

std::string hex(const unsigned char* p, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kHex[p[i] >> 4]);
    out.push_back(kHex[p[i] & 15]);
  }
  return out;
}

struct GeneralNamesDeleter {
  void operator()(GENERAL_NAMES* g) const { GENERAL_NAMES_free(g); }
};

// The single URI SAN of `cert`. SECURITY: an SVID has exactly one; a certificate with several
// identities would let the mapping pick one arbitrarily.
Result<std::string> single_uri_san(X509* cert) {
  int crit = 0;
  std::unique_ptr<GENERAL_NAMES, GeneralNamesDeleter> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, nullptr)));
  if (!names) return Status::unauthenticated("client certificate has no subjectAltName");
  std::string uri;
  int n_uri = 0;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type != GEN_URI) continue;
    ++n_uri;
    const ASN1_IA5STRING* s = gn->d.uniformResourceIdentifier;
    uri.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<size_t>(ASN1_STRING_length(s)));
  }
  if (n_uri != 1) return Status::unauthenticated("client certificate has {} uri sans, expected 1", n_uri);
  return uri;
}

}  // namespace

std::string SpiffeId::to_string() const {
  std::string out = "spiffe://" + trust_domain;
  for (const auto& s : segments) out += "/" + s;
  return out;
}

Result<SpiffeId> parse_spiffe_id(std::string_view uri) {
  constexpr std::string_view kScheme = "spiffe://";
  if (uri.size() > kMaxSpiffeIdBytes) return Status::malformed("spiffe id longer than {} bytes", kMaxSpiffeIdBytes);
  if (uri.substr(0, kScheme.size()) != kScheme) return Status::malformed("spiffe id lacks the spiffe:// scheme");
  std::string_view rest = uri.substr(kScheme.size());
  const size_t slash = rest.find('/');
  const std::string_view td = rest.substr(0, slash);
  if (td.empty() || td.size() > 255 || !std::all_of(td.begin(), td.end(), is_td_char)) {
    return Status::malformed("spiffe trust domain is empty or has invalid characters");
  }
  SpiffeId id;
  id.trust_domain = std::string(td);
  if (slash == std::string_view::npos) return id;
  std::string_view path = rest.substr(slash + 1);
  while (true) {
    const size_t end = std::min(path.find('/'), path.size());
    const std::string_view seg = path.substr(0, end);
    if (seg.empty() || seg == "." || seg == ".." || !std::all_of(seg.begin(), seg.end(), is_path_char)) {
      return Status::malformed("spiffe path segment is empty, a dot segment or has invalid characters");
    }
    id.segments.emplace_back(seg);
    if (end == path.size()) break;
    path = path.substr(end + 1);
  }
  return id;
}

MtlsVerifier::~MtlsVerifier() { X509_STORE_free(store_); }

Result<std::shared_ptr<const MtlsVerifier>> MtlsVerifier::create(MtlsConfig config, UnixClock clock) {
  if (!clock) return Status::invalid_argument("mtls verifier needs a clock");
  const std::string td = config.trust_domain;
  if (td.empty() || !std::all_of(td.begin(), td.end(), is_td_char)) {
    return Status::invalid_argument("mtls trust domain {} is invalid", printable(td, 64));
  }
  for (const auto& r : config.default_roles) {
    if (!is_valid_role_name(r)) return Status::invalid_argument("invalid role {}", printable(r, 64));
  }
  X509_STORE* store = X509_STORE_new();
  if (store == nullptr) return Status::internal("x509 store allocation failed");
  std::shared_ptr<const MtlsVerifier> v(new MtlsVerifier(std::move(config), std::move(clock), store));
  internal::BioPtr bio(BIO_new_mem_buf(v->config_.ca_pem.data(), static_cast<int>(v->config_.ca_pem.size())));
  int n_certs = 0;
  while (bio) {
    X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (cert == nullptr) break;
    const int ok = X509_STORE_add_cert(store, cert);
    X509_free(cert);
    if (ok != 1) {
      internal::clear_openssl_errors();
      return Status::invalid_argument("mtls ca certificate {} rejected", n_certs);
    }
    ++n_certs;
  }
  internal::clear_openssl_errors();  // the loop ends on a "no start line" error
  if (n_certs == 0) return Status::invalid_argument("mtls ca pem holds no certificate");
  return v;
}

Result<Principal> MtlsVerifier::verify(X509* leaf, STACK_OF(X509)* intermediates) const {
  if (leaf == nullptr) return Status::unauthenticated("no client certificate");
  internal::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store_, leaf, intermediates) != 1) {
    internal::clear_openssl_errors();
    return Status::internal("x509 store context init failed");
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(clock_()));
  X509_VERIFY_PARAM_set_depth(param, config_.max_chain_depth);
  X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_CLIENT);
  X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    internal::clear_openssl_errors();
    return Status::unauthenticated("client certificate chain: {}", X509_verify_cert_error_string(err));
  }
  // SECURITY: an SVID is a leaf; a CA certificate presented as a client identity could mint others.
  if (X509_check_ca(leaf) != 0) return Status::unauthenticated("client certificate is a ca");
  ZTSLM_ASSIGN_OR_RETURN(std::string uri, single_uri_san(leaf));
  auto id = parse_spiffe_id(uri);
  if (!id.has_value()) return Status::unauthenticated("client certificate uri san: {}", id.error().message());
  if (id->trust_domain != config_.trust_domain) {
    return Status::unauthenticated("spiffe trust domain {} is not {}", printable(id->trust_domain, 64),
                                   config_.trust_domain);
  }
  if (id->segments.empty()) return Status::unauthenticated("spiffe id has no path (no tenant)");
  if (!is_valid_role_name(id->segments[0])) return Status::unauthenticated("spiffe tenant segment too long");

  Principal p;
  p.method = AuthMethod::kMtls;
  p.id = id->to_string();
  p.tenant = id->segments[0];
  std::string path;
  for (const auto& s : id->segments) path += "/" + s;
  size_t best = 0;
  p.roles = config_.default_roles;
  for (const auto& rule : config_.role_rules) {
    const std::string& pre = rule.path_prefix;
    const bool matches = path == pre || (path.size() > pre.size() && path.compare(0, pre.size(), pre) == 0 &&
                                         (pre.back() == '/' || path[pre.size()] == '/'));
    if (matches && pre.size() > best) {
      best = pre.size();
      p.roles = rule.roles;
    }
  }
  std::sort(p.roles.begin(), p.roles.end());
  p.roles.erase(std::unique(p.roles.begin(), p.roles.end()), p.roles.end());
  unsigned char md[32];
  unsigned int n = 0;
  if (X509_digest(leaf, EVP_sha256(), md, &n) == 1 && n == 32) p.attributes["cert_sha256"] = hex(md, n);
  p.attributes["spiffe_id"] = p.id;
  p.attributes["trust_domain"] = id->trust_domain;
  return p;
}

Result<Principal> MtlsVerifier::verify_der(std::span<const std::byte> leaf_der) const {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(leaf_der.data());
  internal::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(leaf_der.size())));
  if (!cert || p != reinterpret_cast<const unsigned char*>(leaf_der.data()) + leaf_der.size()) {
    internal::clear_openssl_errors();
    return Status::unauthenticated("client certificate is not der");
  }
  return verify(cert.get(), nullptr);
}

}  // namespace ztslm::identity
