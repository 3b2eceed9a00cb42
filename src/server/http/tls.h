// TLS material: the local CA and server certificate generated on first run, and the OpenSSL
// server context (TLS 1.3 by default, optional verified client certificates).
#pragma once

#include <string>

#include "core/result.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace ztslm::server::http {

struct GeneratedTls {
  std::string ca_cert_file;      // state_dir/tls/ca.pem (clients trust this)
  std::string server_cert_file;  // state_dir/tls/server.pem (leaf + CA)
  std::string server_key_file;   // state_dir/tls/server-key.pem
  bool created = false;          // false: the files existed already
};

// Ensures `dir` holds a CA (ECDSA P-256, 10 years) and a server certificate signed by it
// (P-256, 1 year, SAN localhost/127.0.0.1/::1, serverAuth). Creates `dir` with mode 0700 and
// each file with 0600. Existing files are reused. kUnavailable when a file cannot be written.
Result<GeneratedTls> ensure_local_ca(const std::string& dir);

// Configures `ctx` for a server: certificate chain and key, minimum version ("1.3"/"1.2"),
// AEAD-only TLS 1.2 ciphers, no compression/renegotiation/tickets-less resumption, and, when
// `client_ca_file` is set, requests a client certificate and verifies it against that CA
// (a client without one is still admitted; a wrong one fails the handshake).
Status configure_server_context(SSL_CTX* ctx, const std::string& cert_file, const std::string& key_file,
                                const std::string& client_ca_file, const std::string& min_version);

// Issues a client certificate signed by the CA in `ca_cert_file`/`ca_key_file` with the URI SAN
// `spiffe_id` (tests and `ztslm` tooling), writing PEM cert and key to the given paths (0600).
Status issue_client_certificate(const std::string& ca_cert_file, const std::string& ca_key_file,
                                const std::string& spiffe_id, const std::string& out_cert,
                                const std::string& out_key);

}  // namespace ztslm::server::http
