#include "server/http/tls.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace ztslm::server::http {
namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;

std::string ssl_error() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown tls error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

bool file_exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

PkeyPtr new_p256_key() { return PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")); }

bool add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) return false;
  const bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// A certificate for `key` named `cn`, signed by `issuer_key` (self-signed when issuer is null).
X509Ptr make_cert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, long days,
                  bool is_ca, const char* san, const char* eku) {
  X509Ptr cert(X509_new());
  if (!cert) return nullptr;
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return nullptr;
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  ASN1_INTEGER* sn = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  if (sn == nullptr) return nullptr;
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), days * 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("ztslm"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509* iss = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(iss));
  bool ok = true;
  if (is_ca) {
    ok = ok && add_ext(cert.get(), iss, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
    ok = ok && add_ext(cert.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    ok = ok && add_ext(cert.get(), iss, NID_basic_constraints, "critical,CA:FALSE");
    ok = ok && add_ext(cert.get(), iss, NID_key_usage, "critical,digitalSignature");
    ok = ok && add_ext(cert.get(), iss, NID_ext_key_usage, eku);
    ok = ok && add_ext(cert.get(), iss, NID_subject_alt_name, san);
  }
  ok = ok && add_ext(cert.get(), iss, NID_subject_key_identifier, "hash");
  if (issuer != nullptr) ok = ok && add_ext(cert.get(), iss, NID_authority_key_identifier, "keyid:always");
  if (!ok) return nullptr;
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) return nullptr;
  return cert;
}

// Opens `path` for writing with mode 0600 (created, or truncated) and wraps it in a BIO.
Status write_pem(const std::string& path, X509* cert, X509* chain, EVP_PKEY* key) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::unavailable("cannot write {}: {}", path, std::strerror(errno));
  ::fchmod(fd, 0600);
  FILE* f = ::fdopen(fd, "w");
  if (f == nullptr) {
    ::close(fd);
    return Status::unavailable("cannot write {}", path);
  }
  bool ok = true;
  if (cert != nullptr) ok = ok && PEM_write_X509(f, cert) == 1;
  if (chain != nullptr) ok = ok && PEM_write_X509(f, chain) == 1;
  if (key != nullptr) ok = ok && PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  ok = (std::fflush(f) == 0) && ok && ::fsync(fd) == 0;
  std::fclose(f);
  if (!ok) return Status::unavailable("cannot write {}", path);
  return Status();
}

Result<X509Ptr> read_cert(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return Status::not_found("cannot open {}", path);
  X509Ptr c(PEM_read_X509(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  if (!c) return Status::invalid_argument("{}: not a PEM certificate", path);
  return c;
}

Result<PkeyPtr> read_key(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return Status::not_found("cannot open {}", path);
  PkeyPtr k(PEM_read_PrivateKey(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  if (!k) return Status::invalid_argument("{}: not a PEM private key", path);
  return k;
}

}  // namespace

Result<GeneratedTls> ensure_local_ca(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::unavailable("cannot create {}: {}", dir, std::strerror(errno));
  }
  GeneratedTls out;
  out.ca_cert_file = dir + "/ca.pem";
  out.server_cert_file = dir + "/server.pem";
  out.server_key_file = dir + "/server-key.pem";
  const std::string ca_key_file = dir + "/ca-key.pem";
  if (file_exists(out.ca_cert_file) && file_exists(ca_key_file) && file_exists(out.server_cert_file) &&
      file_exists(out.server_key_file)) {
    return out;
  }
  PkeyPtr ca_key = new_p256_key();
  PkeyPtr srv_key = new_p256_key();
  if (!ca_key || !srv_key) return Status::internal("key generation failed: {}", ssl_error());
  X509Ptr ca = make_cert(ca_key.get(), "ztslm local CA", nullptr, ca_key.get(), 3650, true, nullptr, nullptr);
  if (!ca) return Status::internal("CA certificate failed: {}", ssl_error());
  X509Ptr srv = make_cert(srv_key.get(), "localhost", ca.get(), ca_key.get(), 365, false,
                          "DNS:localhost,IP:127.0.0.1,IP:::1", "serverAuth");
  if (!srv) return Status::internal("server certificate failed: {}", ssl_error());
  ZTSLM_TRY(write_pem(ca_key_file, nullptr, nullptr, ca_key.get()));
  ZTSLM_TRY(write_pem(out.ca_cert_file, ca.get(), nullptr, nullptr));
  ZTSLM_TRY(write_pem(out.server_key_file, nullptr, nullptr, srv_key.get()));
  ZTSLM_TRY(write_pem(out.server_cert_file, srv.get(), ca.get(), nullptr));
  out.created = true;
  return out;
}

Status issue_client_certificate(const std::string& ca_cert_file, const std::string& ca_key_file,
                                const std::string& spiffe_id, const std::string& out_cert,
                                const std::string& out_key) {
  ZTSLM_ASSIGN_OR_RETURN(X509Ptr ca, read_cert(ca_cert_file));
  ZTSLM_ASSIGN_OR_RETURN(PkeyPtr ca_key, read_key(ca_key_file));
  PkeyPtr key = new_p256_key();
  if (!key) return Status::internal("key generation failed");
  const std::string san = "URI:" + spiffe_id;
  X509Ptr c = make_cert(key.get(), "client", ca.get(), ca_key.get(), 30, false, san.c_str(), "clientAuth");
  if (!c) return Status::internal("client certificate failed: {}", ssl_error());
  ZTSLM_TRY(write_pem(out_key, nullptr, nullptr, key.get()));
  return write_pem(out_cert, c.get(), nullptr, nullptr);
}

Status configure_server_context(SSL_CTX* ctx, const std::string& cert_file, const std::string& key_file,
                                const std::string& client_ca_file, const std::string& min_version) {
  ERR_clear_error();
  SSL_CTX_set_min_proto_version(ctx, min_version == "1.2" ? TLS1_2_VERSION : TLS1_3_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1) {
    return Status::internal("cipher list: {}", ssl_error());
  }
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    return Status::invalid_argument("tls certificate {}: {}", cert_file, ssl_error());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return Status::invalid_argument("tls key {}: {}", key_file, ssl_error());
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return Status::invalid_argument("tls key {} does not match the certificate", key_file);
  }
  if (!client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, client_ca_file.c_str(), nullptr) != 1) {
      return Status::invalid_argument("tls client CA {}: {}", client_ca_file, ssl_error());
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(client_ca_file.c_str());
    if (names != nullptr) SSL_CTX_set_client_CA_list(ctx, names);
    // SECURITY: a presented certificate must chain to the configured CA, or the handshake
    // fails; a client without one may still authenticate with a key or token.
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_verify_depth(ctx, 4);
  }
  static const unsigned char kSid[] = "ztslm";
  SSL_CTX_set_session_id_context(ctx, kSid, sizeof kSid - 1);
  return Status();
}

}  // namespace ztslm::server::http
