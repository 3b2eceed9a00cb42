// Audit keys: the HMAC-SHA256 key for request/response bodies and the Ed25519 key that signs
// checkpoints. Each is 32 secret bytes in its own file (raw bytes, mode 0600, owned by the
// effective user, not a symlink), generated on first use into the state directory, and wiped
// from memory when released.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ztslm::audit {

inline constexpr size_t kKeyBytes = 32;
inline constexpr size_t kSignatureBytes = 64;

// 32 secret bytes, zeroised on destruction and on move-from. Never printed.
class SecretKey final {
 public:
  SecretKey() = default;
  explicit SecretKey(std::span<const uint8_t, kKeyBytes> bytes);
  ~SecretKey();
  SecretKey(SecretKey&& other) noexcept;
  SecretKey& operator=(SecretKey&& other) noexcept;
  SecretKey(const SecretKey&) = delete;
  SecretKey& operator=(const SecretKey&) = delete;

  std::span<const uint8_t, kKeyBytes> bytes() const { return bytes_; }

  // 32 bytes from the OS CSPRNG (OpenSSL RAND_priv_bytes). kInternal when it fails.
  static Result<SecretKey> generate();

 private:
  std::array<uint8_t, kKeyBytes> bytes_{};
};

// Reads a key file. kNotFound when absent; kPermissionDenied when it is a symlink, not owned by
// the effective user, or readable/writable by group or others; kMalformed when it is not exactly
// 32 bytes.
Result<SecretKey> load_key_file(const std::string& path);

// Loads `path`, or when it does not exist creates it (O_EXCL, mode 0600, fsync'ed) with fresh
// random bytes. The parent directory must exist, be owned by the effective user and not be
// writable by group or others (kPermissionDenied otherwise).
Result<SecretKey> load_or_create_key_file(const std::string& path);

// HMAC-SHA256 with a secret key (bodies are stored as these MACs, never as text).
class BodyMac final {
 public:
  explicit BodyMac(SecretKey key) : key_(std::move(key)) {}
  // 64 lowercase hex characters.
  std::string hex(std::string_view data) const;
  // Identifies the key without revealing it: first 16 hex of SHA-256("ztslm-audit-hmac-id" || key).
  std::string key_id() const;

 private:
  SecretKey key_;
};

// Ed25519 signing key (OpenSSL; the EVP_PKEY clears its copy when freed).
class Signer final {
 public:
  ~Signer();
  Signer(Signer&&) noexcept;
  Signer& operator=(Signer&&) noexcept;
  Signer(const Signer&) = delete;
  Signer& operator=(const Signer&) = delete;

  // From a 32-byte seed. kInternal when OpenSSL refuses it.
  static Result<Signer> from_seed(const SecretKey& seed);

  // The public key, 64 lowercase hex characters.
  const std::string& public_key_hex() const { return public_hex_; }
  // A 64-byte Ed25519 signature of `message`, as 128 hex characters.
  Result<std::string> sign_hex(std::string_view message) const;

 private:
  Signer() = default;
  void* pkey_ = nullptr;  // EVP_PKEY*
  std::string public_hex_;
};

// True when `signature_hex` (128 hex) is a valid Ed25519 signature of `message` under
// `public_key_hex` (64 hex). False for any malformed input.
bool ed25519_verify(std::string_view public_key_hex, std::string_view message,
                    std::string_view signature_hex);

// Reads an Ed25519 public key given as 64 hex characters, or as a file holding them (an
// optional trailing newline is allowed). kMalformed / kNotFound.
Result<std::string> read_public_key(const std::string& hex_or_path);

}  // namespace ztslm::audit
