#include "identity/internal/openssl_util.h"

#include <openssl/ecdsa.h>
#include <openssl/err.h>

#include <cstring>

#include "core/check.h"

namespace ztslm::identity::internal {

void clear_openssl_errors() { ERR_clear_error(); }

Status digest_verify(EVP_PKEY* key, const EVP_MD* md, std::string_view msg, std::span<const std::byte> sig) {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return Status::internal("evp context allocation failed");
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key) != 1) {
    clear_openssl_errors();
    return Status::internal("evp verify init failed");
  }
  const int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                                  reinterpret_cast<const unsigned char*>(msg.data()), msg.size());
  if (rc != 1) {
    clear_openssl_errors();
    return Status::unauthenticated("signature does not verify");
  }
  return Status();
}

Result<std::string> p1363_to_der(std::span<const std::byte> sig, size_t n_field_bytes) {
  if (sig.size() != 2 * n_field_bytes) return Status::unauthenticated("ecdsa signature has the wrong length");
  BnPtr r(BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()), static_cast<int>(n_field_bytes), nullptr));
  BnPtr s(BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data() + n_field_bytes),
                    static_cast<int>(n_field_bytes), nullptr));
  if (!r || !s) return Status::internal("bignum allocation failed");
  if (BN_is_zero(r.get()) || BN_is_zero(s.get())) return Status::unauthenticated("ecdsa r or s is zero");
  ECDSA_SIG* es = ECDSA_SIG_new();
  if (es == nullptr) return Status::internal("ecdsa_sig allocation failed");
  ECDSA_SIG_set0(es, r.release(), s.release());  // takes ownership
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(es, &der);
  ECDSA_SIG_free(es);
  if (len <= 0) {
    clear_openssl_errors();
    return Status::internal("ecdsa der encoding failed");
  }
  std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

Status check_canonical_ecdsa_der(std::span<const std::byte> der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  if (es == nullptr) {
    clear_openssl_errors();
    return Status::unauthenticated("ecdsa signature is not der");
  }
  unsigned char* again = nullptr;
  const int len = i2d_ECDSA_SIG(es, &again);
  ECDSA_SIG_free(es);
  const bool same = len > 0 && static_cast<size_t>(len) == der.size() &&
                    std::memcmp(again, der.data(), der.size()) == 0;
  OPENSSL_free(again);
  if (!same) return Status::unauthenticated("ecdsa signature is not canonical der");
  return Status();
}

void sha256(std::initializer_list<std::span<const std::byte>> parts, unsigned char out[32]) {
  // One fetch per process: implicit fetching on every call costs more than the hash itself.
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  ZTSLM_CHECK(md != nullptr);
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  ZTSLM_CHECK(ctx != nullptr);
  ZTSLM_CHECK(EVP_DigestInit_ex(ctx.get(), md, nullptr) == 1);
  for (auto part : parts) ZTSLM_CHECK(EVP_DigestUpdate(ctx.get(), part.data(), part.size()) == 1);
  unsigned int n = 0;
  ZTSLM_CHECK(EVP_DigestFinal_ex(ctx.get(), out, &n) == 1 && n == 32);
}

}  // namespace ztslm::identity::internal
