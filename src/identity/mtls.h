// mTLS client certificates: chain verification against configured CA certificates (OpenSSL
// X509_STORE, purpose sslclient, time from the injected clock) and the principal taken from the
// certificate's SPIFFE ID (X.509-SVID: exactly one URI SAN, spiffe://trust-domain/path).
//
// Mapping (documented in README.md):
//   spiffe://<trust-domain>/<tenant>/<rest...>  ->  id = the whole SPIFFE ID,
//                                                   tenant = first path segment,
//                                                   roles = roles of the longest matching
//                                                   `role_rules` path prefix, else default_roles
//   attributes: spiffe_id, trust_domain, cert_sha256 (hex fingerprint of the leaf DER).
#pragma once

#include <openssl/x509.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "identity/principal.h"

namespace ztslm::identity {

// A parsed SPIFFE ID (SPIFFE standard, "SPIFFE-ID.md" section 2).
struct SpiffeId {
  std::string trust_domain;           // lowercase [a-z0-9.-_]
  std::vector<std::string> segments;  // path segments, each [A-Za-z0-9.-_], not "." or ".."
  std::string to_string() const;
};

// Parses `uri` strictly: scheme "spiffe" (lowercase), no userinfo, port, query or fragment, no
// empty or dot segments, no percent-encoding, at most 2048 bytes. kMalformed otherwise.
Result<SpiffeId> parse_spiffe_id(std::string_view uri);

struct MtlsRoleRule {
  std::string path_prefix;  // e.g. "/acme/admin" matches /acme/admin and /acme/admin/...
  std::vector<std::string> roles;
};

struct MtlsConfig {
  std::string ca_pem;          // one or more PEM CA certificates (trust anchors)
  std::string trust_domain;    // only SPIFFE IDs in this trust domain are accepted
  std::vector<std::string> default_roles = {"user"};
  std::vector<MtlsRoleRule> role_rules;
  int max_chain_depth = 4;
};

class MtlsVerifier final {
 public:
  // kInvalidArgument when the CA PEM holds no certificate or the trust domain is invalid.
  static Result<std::shared_ptr<const MtlsVerifier>> create(MtlsConfig config, UnixClock clock);
  ~MtlsVerifier();

  // Verifies `leaf` (with optional untrusted `intermediates`, may be null) and maps it to a
  // Principal. The certificate must chain to a configured CA, be valid now, allow client
  // authentication, not be a CA, and carry exactly one URI SAN that is a valid SPIFFE ID in the
  // configured trust domain with at least one path segment. kUnauthenticated otherwise (the
  // message names the failed check: audit log only).
  Result<Principal> verify(X509* leaf, STACK_OF(X509)* intermediates) const;
  // The same for a DER-encoded leaf certificate.
  Result<Principal> verify_der(std::span<const std::byte> leaf_der) const;

 private:
  MtlsVerifier(MtlsConfig config, UnixClock clock, X509_STORE* store)
      : config_(std::move(config)), clock_(std::move(clock)), store_(store) {}
  MtlsConfig config_;
  UnixClock clock_;
  X509_STORE* store_;
};

}  // namespace ztslm::identity
