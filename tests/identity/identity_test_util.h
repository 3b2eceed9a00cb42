// Helpers for the identity tests: file and hex reading, an in-test Ed25519/P-256 signer for
// JWTs, and an in-test X.509 CA for mTLS.
#pragma once

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "identity/base64url.h"

namespace ztslm::identity::testing {

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string hex_decode(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
struct X509Free {
  void operator()(X509* c) const { X509_free(c); }
};
using Cert = std::unique_ptr<X509, X509Free>;

inline Pkey generate_key(const char* type) {  // "ED25519" or "EC" (P-256)
  EVP_PKEY* k = std::string(type) == "EC" ? EVP_EC_gen("P-256") : EVP_PKEY_Q_keygen(nullptr, nullptr, type);
  if (k == nullptr) throw std::runtime_error("keygen failed");
  return Pkey(k);
}

inline std::string public_pem(EVP_PKEY* k) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, k);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

// Signs `header_json`.`payload_json` with an Ed25519 key (alg EdDSA expected in the header).
inline std::string sign_eddsa(EVP_PKEY* k, const std::string& header_json, const std::string& payload_json) {
  const std::string input = base64url_encode(header_json) + "." + base64url_encode(payload_json);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char sig[64];
  size_t n = sizeof sig;
  if (EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, k) != 1 ||
      EVP_DigestSign(ctx, sig, &n, reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    throw std::runtime_error("sign failed");
  }
  EVP_MD_CTX_free(ctx);
  return input + "." + base64url_encode(std::string(reinterpret_cast<char*>(sig), n));
}

struct CertSpec {
  std::string cn = "client";
  std::vector<std::string> sans;  // "URI:spiffe://...", "DNS:host"
  bool is_ca = false;
  long not_before_offset_s = -3600;  // relative to `now`
  long not_after_offset_s = 86400;
  std::string eku = "clientAuth";  // "" = no extendedKeyUsage
};

// A certificate for `key` signed by `issuer_key` (`issuer` null: self-signed).
inline Cert make_cert(EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key, const CertSpec& spec, time_t now) {
  X509* c = X509_new();
  X509_set_version(c, 2);
  static long serial = 1;
  ASN1_INTEGER_set(X509_get_serialNumber(c), serial++);
  X509_time_adj_ex(X509_getm_notBefore(c), 0, spec.not_before_offset_s, &now);
  X509_time_adj_ex(X509_getm_notAfter(c), 0, spec.not_after_offset_s, &now);
  X509_set_pubkey(c, key);
  X509_NAME* name = X509_get_subject_name(c);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(spec.cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer ? issuer : c, c, nullptr, nullptr, 0);
  auto add = [&](int nid, const std::string& value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (ext == nullptr) throw std::runtime_error("extension " + value);
    X509_add_ext(c, ext, -1);
    X509_EXTENSION_free(ext);
  };
  add(NID_basic_constraints, spec.is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add(NID_key_usage, spec.is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
  add(NID_subject_key_identifier, "hash");
  if (issuer != nullptr) add(NID_authority_key_identifier, "keyid:always");
  if (!spec.is_ca && !spec.eku.empty()) add(NID_ext_key_usage, spec.eku);
  if (!spec.sans.empty()) {
    std::string joined;
    for (const auto& s : spec.sans) joined += (joined.empty() ? "" : ",") + s;
    add(NID_subject_alt_name, joined);
  }
  if (X509_sign(c, issuer_key ? issuer_key : key, EVP_PKEY_get_base_id(issuer_key ? issuer_key : key) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256()) == 0) {
    throw std::runtime_error("x509 sign failed");
  }
  return Cert(c);
}

inline std::string cert_pem(X509* c) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, c);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

}  // namespace ztslm::identity::testing
