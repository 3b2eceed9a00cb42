// RAII owners and small helpers over OpenSSL 3 for identity/ (private to this component).
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ztslm::identity::internal {

template <auto Fn>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    if (p != nullptr) Fn(p);
  }
};
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free>>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX_free>>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, Deleter<OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, Deleter<OSSL_PARAM_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX_free>>;

// Drops the thread's OpenSSL error queue (a failed verification leaves entries behind that
// would otherwise be reported by an unrelated later call).
void clear_openssl_errors();

// EVP_DigestVerify of `sig` over `msg` with `key` and digest `md` (nullptr for Ed25519).
// kUnauthenticated when the signature does not verify.
Status digest_verify(EVP_PKEY* key, const EVP_MD* md, std::string_view msg, std::span<const std::byte> sig);

// Converts a JWS ECDSA signature (R||S, each `n_field_bytes` big-endian) to ASN.1 DER. Rejects
// r = 0 or s = 0 with kUnauthenticated (the curve order check happens in OpenSSL).
Result<std::string> p1363_to_der(std::span<const std::byte> sig, size_t n_field_bytes);

// kUnauthenticated unless `der` is an ECDSA-Sig-Value in canonical DER (parses and re-encodes to
// exactly the same bytes).
Status check_canonical_ecdsa_der(std::span<const std::byte> der);

// SHA-256 of the concatenation of `parts`.
void sha256(std::initializer_list<std::span<const std::byte>> parts, unsigned char out[32]);

}  // namespace ztslm::identity::internal
