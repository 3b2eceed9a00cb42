// ECDSA keys, digests and DSSE signing for model signatures (OpenSSL 3 behind a small API).
// Key method of the OpenSSF model-signing format (../shared/testdata/model-signing/SPEC.md §2-3):
// ECDSA on P-256 / P-384 / P-521, the hash bound to the curve (SHA-256 / SHA-384 / SHA-512),
// ASN.1 DER signatures over the DSSE v1 pre-authentication encoding (PAE).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

struct evp_pkey_st;
struct evp_md_ctx_st;

namespace ztslm::provenance {

enum class Curve { kP256, kP384, kP521 };
std::string_view curve_name(Curve c);  // "P-256"

// SHA-256 digest bytes.
using Sha256Digest = std::array<std::byte, 32>;

// Streaming SHA-256 / SHA-384 / SHA-512 / BLAKE2b-512 (the hashes model-signing uses).
enum class HashType { kSha256, kBlake2b };
class Hasher final {
 public:
  explicit Hasher(HashType type);
  ~Hasher();
  Hasher(Hasher&& other) noexcept;
  Hasher& operator=(Hasher&&) = delete;
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  void update(std::span<const std::byte> bytes);
  // The digest (32 bytes for SHA-256, 64 for BLAKE2b); the hasher must not be used afterwards.
  std::vector<std::byte> finish();
  static size_t digest_bytes(HashType type) { return type == HashType::kSha256 ? 32 : 64; }

 private:
  evp_md_ctx_st* ctx_ = nullptr;
};

Sha256Digest sha256(std::span<const std::byte> bytes);

// A trusted ECDSA public key. Immutable; cheap to copy (shared OpenSSL handle).
class PublicKey final {
 public:
  // Parses the first PEM "PUBLIC KEY" (SubjectPublicKeyInfo) block in `pem`; text before it is
  // skipped. kInvalidArgument when there is none, or it is not an EC key on a supported curve.
  static Result<PublicKey> from_pem(std::string_view pem);
  Curve curve() const { return curve_; }
  // The key's canonical PEM text (64-column base64, trailing newline), as model_signing hashes it.
  const std::string& pem() const { return pem_; }
  // Lowercase hex SHA-256 of pem(): the bundle's `publicKey.hint`.
  const std::string& hint() const { return hint_; }
  // True when `der_sig` is a valid ASN.1 DER ECDSA signature by this key over `message`
  // (hashed with the curve's hash). Non-DER encodings (raw r||s) are rejected.
  bool verify(std::span<const std::byte> message, std::span<const std::byte> der_sig) const;

 private:
  std::shared_ptr<evp_pkey_st> key_;
  Curve curve_ = Curve::kP256;
  std::string pem_;
  std::string hint_;
};

// An ECDSA private key for `ztslm model sign`. The PEM text is wiped after parsing.
class PrivateKey final {
 public:
  // Parses a PEM private key (PKCS#8 or SEC1 "EC PRIVATE KEY"); unencrypted only.
  static Result<PrivateKey> from_pem(std::string_view pem);
  // Generates a fresh key (tests).
  static Result<PrivateKey> generate(Curve curve);
  const PublicKey& public_key() const { return public_; }
  // DER ECDSA signature over `message` with the curve's hash.
  Result<std::vector<std::byte>> sign(std::span<const std::byte> message) const;
  // PKCS#8 PEM of the private key (tests, key generation).
  Result<std::string> to_pem() const;

 private:
  std::shared_ptr<evp_pkey_st> key_;
  PublicKey public_;
};

// DSSE v1 PAE: "DSSEv1" SP len(type) SP type SP len(payload) SP payload (decimal lengths).
std::vector<std::byte> dsse_pae(std::string_view payload_type, std::span<const std::byte> payload);

}  // namespace ztslm::provenance
