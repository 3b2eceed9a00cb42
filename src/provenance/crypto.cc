#include "provenance/crypto.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstring>

#include "core/byte_reader.h"
#include "core/secure.h"
#include "core/utf8.h"
#include "provenance/encoding.h"

namespace ztslm::provenance {
namespace {

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

std::shared_ptr<EVP_PKEY> wrap(EVP_PKEY* k) { return std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free); }

Result<Curve> curve_of(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) {
    return Status::invalid_argument("only elliptic curve (ECDSA) keys are supported");
  }
  char group[64] = {0};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) != 1) {
    return Status::invalid_argument("ec key without a named curve");
  }
  const std::string_view g(group, len);
  if (g == "prime256v1" || g == "P-256") return Curve::kP256;
  if (g == "secp384r1" || g == "P-384") return Curve::kP384;
  if (g == "secp521r1" || g == "P-521") return Curve::kP521;
  return Status::invalid_argument("unsupported ec curve {}", printable(g, 32));
}

const EVP_MD* md_for(Curve c) {
  switch (c) {
    case Curve::kP256: return EVP_sha256();
    case Curve::kP384: return EVP_sha384();
    case Curve::kP521: return EVP_sha512();
  }
  return EVP_sha256();
}

Result<std::string> public_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) return Status::internal("cannot encode public key");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  if (n <= 0) return Status::internal("cannot encode public key");
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace

std::string_view curve_name(Curve c) {
  switch (c) {
    case Curve::kP256: return "P-256";
    case Curve::kP384: return "P-384";
    case Curve::kP521: return "P-521";
  }
  return "?";
}

Hasher::Hasher(HashType type) : ctx_(EVP_MD_CTX_new()) {
  ZTSLM_CHECK(ctx_ != nullptr);
  const EVP_MD* md = type == HashType::kSha256 ? EVP_sha256() : EVP_blake2b512();
  ZTSLM_CHECK(EVP_DigestInit_ex(ctx_, md, nullptr) == 1);
}
Hasher::~Hasher() { EVP_MD_CTX_free(ctx_); }
Hasher::Hasher(Hasher&& other) noexcept : ctx_(other.ctx_) { other.ctx_ = nullptr; }
void Hasher::update(std::span<const std::byte> bytes) {
  ZTSLM_CHECK(EVP_DigestUpdate(ctx_, bytes.data(), bytes.size()) == 1);
}
std::vector<std::byte> Hasher::finish() {
  std::vector<std::byte> out(EVP_MAX_MD_SIZE);
  unsigned int n = 0;
  ZTSLM_CHECK(EVP_DigestFinal_ex(ctx_, reinterpret_cast<unsigned char*>(out.data()), &n) == 1);
  out.resize(n);
  return out;
}

Sha256Digest sha256(std::span<const std::byte> bytes) {
  Sha256Digest d{};
  unsigned int n = 0;
  ZTSLM_CHECK(EVP_Digest(bytes.data(), bytes.size(), reinterpret_cast<unsigned char*>(d.data()), &n,
                         EVP_sha256(), nullptr) == 1);
  return d;
}

Result<PublicKey> PublicKey::from_pem(std::string_view pem) {
  if (pem.size() > (1u << 20)) return Status::invalid_argument("public key file exceeds 1 MiB");
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return Status::internal("out of memory");
  EVP_PKEY* raw = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  if (raw == nullptr) return Status::invalid_argument("no PEM public key found");
  PublicKey k;
  k.key_ = wrap(raw);
  ZTSLM_ASSIGN_OR_RETURN(k.curve_, curve_of(raw));
  ZTSLM_ASSIGN_OR_RETURN(k.pem_, public_pem(raw));
  const Sha256Digest d = sha256(as_bytes(k.pem_));
  k.hint_ = hex_encode(d);
  return k;
}

bool PublicKey::verify(std::span<const std::byte> message, std::span<const std::byte> der_sig) const {
  if (!key_) return false;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, md_for(curve_), nullptr, key_.get()) != 1) {
    return false;
  }
  // OpenSSL's ECDSA verify decodes the DER and requires its re-encoding to equal the input, so
  // only the canonical DER form of (r, s) is accepted.
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(der_sig.data()),
                          der_sig.size(), reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
}

Result<PrivateKey> PrivateKey::from_pem(std::string_view pem) {
  if (pem.size() > (1u << 20)) return Status::invalid_argument("private key file exceeds 1 MiB");
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return Status::internal("out of memory");
  // An empty passphrase callback result makes an encrypted key fail instead of prompting.
  EVP_PKEY* raw = PEM_read_bio_PrivateKey(
      bio.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr);
  if (raw == nullptr) return Status::invalid_argument("no unencrypted PEM private key found");
  PrivateKey k;
  k.key_ = wrap(raw);
  ZTSLM_TRY(curve_of(raw));
  ZTSLM_ASSIGN_OR_RETURN(std::string pub_pem, public_pem(raw));
  ZTSLM_ASSIGN_OR_RETURN(k.public_, PublicKey::from_pem(pub_pem));
  return k;
}

Result<PrivateKey> PrivateKey::generate(Curve curve) {
  const char* group = curve == Curve::kP256 ? "P-256" : curve == Curve::kP384 ? "P-384" : "P-521";
  EVP_PKEY* raw = EVP_EC_gen(group);
  if (raw == nullptr) return Status::internal("ec key generation failed");
  PrivateKey k;
  k.key_ = wrap(raw);
  ZTSLM_ASSIGN_OR_RETURN(std::string pub_pem, public_pem(raw));
  ZTSLM_ASSIGN_OR_RETURN(k.public_, PublicKey::from_pem(pub_pem));
  return k;
}

Result<std::vector<std::byte>> PrivateKey::sign(std::span<const std::byte> message) const {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, md_for(public_.curve()), nullptr, key_.get()) != 1) {
    return Status::internal("cannot initialise signing");
  }
  const auto* msg = reinterpret_cast<const unsigned char*>(message.data());
  size_t n = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &n, msg, message.size()) != 1) return Status::internal("signing failed");
  std::vector<std::byte> sig(n);
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &n, msg, message.size()) != 1) {
    return Status::internal("signing failed");
  }
  sig.resize(n);
  return sig;
}

Result<std::string> PrivateKey::to_pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return Status::internal("cannot encode private key");
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  std::string out(data, static_cast<size_t>(n));
  secure_zero(data, static_cast<size_t>(n));
  return out;
}

std::vector<std::byte> dsse_pae(std::string_view payload_type, std::span<const std::byte> payload) {
  std::string head = "DSSEv1 " + std::to_string(payload_type.size()) + " ";
  head.append(payload_type);
  head += " " + std::to_string(payload.size()) + " ";
  std::vector<std::byte> out(head.size() + payload.size());
  std::memcpy(out.data(), head.data(), head.size());
  if (!payload.empty()) std::memcpy(out.data() + head.size(), payload.data(), payload.size());
  return out;
}

}  // namespace ztslm::provenance
