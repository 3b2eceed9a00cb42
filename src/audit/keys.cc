#include "audit/keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <utility>

#include "audit/canonical.h"
#include "core/secure.h"
#include "core/utf8.h"

namespace ztslm::audit {
namespace {

std::string dir_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status check_private_dir(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return Status::not_found("key directory {} does not exist", dir);
  if (!S_ISDIR(st.st_mode)) return Status::invalid_argument("{} is not a directory", dir);
  // SECURITY: another user who can write the directory could swap the key file under us.
  if (st.st_uid != ::geteuid() || (st.st_mode & 022) != 0) {
    return Status::permission_denied("key directory {} must be owned by this user and not "
                                     "writable by group or others", dir);
  }
  return Status();
}

void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
}

Status write_all(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::unavailable("write failed: {}", std::strerror(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status();
}

}  // namespace

SecretKey::SecretKey(std::span<const uint8_t, kKeyBytes> bytes) {
  std::memcpy(bytes_.data(), bytes.data(), kKeyBytes);
}
SecretKey::~SecretKey() { secure_zero(bytes_.data(), bytes_.size()); }
SecretKey::SecretKey(SecretKey&& other) noexcept : bytes_(other.bytes_) {
  secure_zero(other.bytes_.data(), other.bytes_.size());
}
SecretKey& SecretKey::operator=(SecretKey&& other) noexcept {
  if (this != &other) {
    bytes_ = other.bytes_;
    secure_zero(other.bytes_.data(), other.bytes_.size());
  }
  return *this;
}

Result<SecretKey> SecretKey::generate() {
  std::array<uint8_t, kKeyBytes> raw{};
  if (RAND_priv_bytes(raw.data(), static_cast<int>(raw.size())) != 1) {
    return Status::internal("random key generation failed");
  }
  SecretKey key(raw);
  secure_zero(raw.data(), raw.size());
  return key;
}

Result<SecretKey> load_key_file(const std::string& path) {
  // SECURITY: O_NOFOLLOW, so a planted symlink cannot point us at another file.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::not_found("key file {} does not exist", path);
    if (errno == ELOOP) return Status::permission_denied("key file {} is a symlink", path);
    return Status::unavailable("cannot open key file {}: {}", path, std::strerror(errno));
  }
  struct stat st {};
  Status status;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    status = Status::permission_denied("key file {} is not a regular file", path);
  } else if (st.st_uid != ::geteuid()) {
    status = Status::permission_denied("key file {} is not owned by this user", path);
  } else if ((st.st_mode & 077) != 0) {
    status = Status::permission_denied("key file {} has mode {}; it must not be accessible by "
                                       "group or others (chmod 600)", path,
                                       str_format("0{}{}{}", (st.st_mode >> 6) & 7,
                                                  (st.st_mode >> 3) & 7, st.st_mode & 7));
  } else if (st.st_size != static_cast<off_t>(kKeyBytes)) {
    status = Status::malformed("key file {} holds {} bytes, expected {}", path,
                               static_cast<int64_t>(st.st_size), kKeyBytes);
  }
  if (!status.ok()) {
    ::close(fd);
    return status;
  }
  std::array<uint8_t, kKeyBytes> raw{};
  size_t got = 0;
  while (got < raw.size()) {
    const ssize_t r = ::read(fd, raw.data() + got, raw.size() - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  ::close(fd);
  if (got != raw.size()) {
    secure_zero(raw.data(), raw.size());
    return Status::malformed("key file {} is shorter than {} bytes", path, kKeyBytes);
  }
  SecretKey key(raw);
  secure_zero(raw.data(), raw.size());
  return key;
}

Result<SecretKey> load_or_create_key_file(const std::string& path) {
  Result<SecretKey> existing = load_key_file(path);
  if (existing.has_value() || existing.error().code() != StatusCode::kNotFound) return existing;
  const std::string dir = dir_of(path);
  ZTSLM_TRY(check_private_dir(dir));
  ZTSLM_ASSIGN_OR_RETURN(SecretKey key, SecretKey::generate());
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return load_key_file(path);  // another process created it first
    return Status::unavailable("cannot create key file {}: {}", path, std::strerror(errno));
  }
  Status st = write_all(fd, key.bytes().data(), kKeyBytes);
  if (st.ok() && ::fsync(fd) != 0) st = Status::unavailable("fsync of key file {} failed", path);
  ::close(fd);
  if (!st.ok()) {
    ::unlink(path.c_str());
    return st;
  }
  fsync_dir(dir);
  return key;
}

std::string BodyMac::hex(std::string_view data) const {
  uint8_t mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), key_.bytes().data(), static_cast<int>(kKeyBytes),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &mac_len);
  return to_hex(std::span<const uint8_t>(mac, mac_len));
}

std::string BodyMac::key_id() const {
  std::string input = "ztslm-audit-hmac-id";
  input.append(reinterpret_cast<const char*>(key_.bytes().data()), kKeyBytes);
  std::string id = sha256_hex(input).substr(0, 16);
  secure_zero(input.data(), input.size());
  return id;
}

Signer::~Signer() { EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_)); }
Signer::Signer(Signer&& other) noexcept
    : pkey_(std::exchange(other.pkey_, nullptr)), public_hex_(std::move(other.public_hex_)) {}
Signer& Signer::operator=(Signer&& other) noexcept {
  if (this != &other) {
    EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_));
    pkey_ = std::exchange(other.pkey_, nullptr);
    public_hex_ = std::move(other.public_hex_);
  }
  return *this;
}

Result<Signer> Signer::from_seed(const SecretKey& seed) {
  EVP_PKEY* pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.bytes().data(),
                                                kKeyBytes);
  if (pkey == nullptr) return Status::internal("ed25519 key construction failed");
  uint8_t pub[kKeyBytes];
  size_t pub_len = sizeof pub;
  if (EVP_PKEY_get_raw_public_key(pkey, pub, &pub_len) != 1 || pub_len != kKeyBytes) {
    EVP_PKEY_free(pkey);
    return Status::internal("ed25519 public key extraction failed");
  }
  Signer s;
  s.pkey_ = pkey;
  s.public_hex_ = to_hex(pub);
  return s;
}

Result<std::string> Signer::sign_hex(std::string_view message) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) return Status::internal("signing context allocation failed");
  uint8_t sig[kSignatureBytes];
  size_t sig_len = sizeof sig;
  const bool ok =
      EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, static_cast<EVP_PKEY*>(pkey_)) == 1 &&
      EVP_DigestSign(ctx, sig, &sig_len, reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) == 1 &&
      sig_len == kSignatureBytes;
  EVP_MD_CTX_free(ctx);
  if (!ok) return Status::internal("ed25519 signing failed");
  return to_hex(sig);
}

bool ed25519_verify(std::string_view public_key_hex, std::string_view message,
                    std::string_view signature_hex) {
  uint8_t pub[kKeyBytes];
  uint8_t sig[kSignatureBytes];
  if (!from_hex(public_key_hex, pub) || !from_hex(signature_hex, sig)) return false;
  EVP_PKEY* pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, pub, kKeyBytes);
  if (pkey == nullptr) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok =
      ctx != nullptr &&
      EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, pkey) == 1 &&
      EVP_DigestVerify(ctx, sig, kSignatureBytes,
                       reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pkey);
  return ok;
}

Result<std::string> read_public_key(const std::string& hex_or_path) {
  uint8_t pub[kKeyBytes];
  if (from_hex(hex_or_path, pub)) return hex_or_path;
  std::ifstream in(hex_or_path, std::ios::binary);
  if (!in) return Status::not_found("public key file {} not found", printable(hex_or_path, 200));
  char buf[130] = {};
  in.read(buf, sizeof buf);
  std::string_view text(buf, static_cast<size_t>(in.gcount()));
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (!from_hex(text, pub)) {
    return Status::malformed("public key file {} does not hold 64 lowercase hex characters",
                             printable(hex_or_path, 200));
  }
  return std::string(text);
}

}  // namespace ztslm::audit
