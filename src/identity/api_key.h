// API keys: generation, parsing, and a SQLite store that keeps only salted SHA-256 hashes.
//
// Format (secret scanners match it; see README.md for the regex):
//   zt_<key id>_<secret>    key id: 8 chars [a-z0-9]   secret: 32..64 chars [A-Za-z0-9]
// Generated secrets are 43 base62 characters (256 bits of entropy from RAND_bytes).
//
// At rest: key_id, salt (16 random bytes), SHA-256(salt || secret), principal, tenant, roles,
// created/expires/revoked times. The secret itself is never stored, logged or re-displayable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "identity/principal.h"

struct sqlite3;
struct sqlite3_stmt;

namespace ztslm::identity {

inline constexpr std::string_view kApiKeyPrefix = "zt_";
inline constexpr size_t kApiKeyIdChars = 8;
inline constexpr size_t kApiKeyMinSecretChars = 32;
inline constexpr size_t kApiKeyMaxSecretChars = 64;
inline constexpr size_t kApiKeyGeneratedSecretChars = 43;  // ceil(256 / log2(62))

// The two parts of a presented key; views into the text passed to parse_api_key.
struct ParsedApiKey {
  std::string_view key_id;
  std::string_view secret;
};

// Splits `text` into key id and secret. kMalformed when it does not match the format exactly.
Result<ParsedApiKey> parse_api_key(std::string_view text);

// True when `text` starts with the API key prefix (dispatch only; parse_api_key validates).
inline bool has_api_key_prefix(std::string_view text) { return text.substr(0, kApiKeyPrefix.size()) == kApiKeyPrefix; }

// Metadata of a stored key (never the secret or its hash).
struct ApiKeyRecord {
  std::string key_id;
  std::string principal_id;  // Principal::id for this key
  std::string tenant;
  std::vector<std::string> roles;  // sorted, unique
  int64_t created_at = 0;
  int64_t expires_at = 0;  // 0 = never
  int64_t revoked_at = 0;  // 0 = not revoked
};

// What create() returns. `token` is the full key, shown once: the destructor wipes it.
struct CreatedApiKey {
  ApiKeyRecord record;
  std::string token;

  CreatedApiKey() = default;
  CreatedApiKey(CreatedApiKey&&) noexcept;
  CreatedApiKey& operator=(CreatedApiKey&&) noexcept;
  CreatedApiKey(const CreatedApiKey&) = delete;
  CreatedApiKey& operator=(const CreatedApiKey&) = delete;
  ~CreatedApiKey();
};

struct NewApiKey {
  std::string name;    // principal id; "" = "apikey:<key id>"
  std::string tenant;  // required: [A-Za-z0-9_.:-], 1..64 bytes
  std::vector<std::string> roles;
  int64_t expires_at = 0;  // unix seconds; 0 = never
};

struct ApiKeyStoreOptions {
  size_t max_cached_keys = 10000;  // verified-key cache; cleared when full
};

// The key store. One SQLite connection (WAL mode, prepared statements) behind a mutex;
// thread-safe. A small cache of key records makes a warm check a hash and a map lookup.
// SECURITY: the cache is dropped whenever the database changes, including from another process
// (`ztslm keys revoke` against a running server): PRAGMA data_version is checked on every
// authentication, so a revocation takes effect on the next request.
class ApiKeyStore final {
 public:
  // Opens or creates the database at `path` (mode 0600 when created) and migrates the schema.
  // kFailedPrecondition for a database written by a newer schema version.
  static Result<std::unique_ptr<ApiKeyStore>> open(const std::string& path, UnixClock clock,
                                                   ApiKeyStoreOptions options = {});
  ~ApiKeyStore();
  ApiKeyStore(const ApiKeyStore&) = delete;
  ApiKeyStore& operator=(const ApiKeyStore&) = delete;

  // Creates a key. kInvalidArgument for a bad tenant, role or name, or an expiry in the past.
  Result<CreatedApiKey> create(const NewApiKey& request);
  // Every key, oldest first.
  Result<std::vector<ApiKeyRecord>> list();
  // Revokes `key_id` now. kNotFound when there is no such key; revoking twice is ok.
  Status revoke(std::string_view key_id);
  // Checks a presented key (the full "zt_..." text). kUnauthenticated (message for the audit
  // log: unknown, revoked, expired, wrong secret) or kMalformed for a bad format.
  Result<Principal> authenticate(std::string_view token);

  static constexpr int kSchemaVersion = 1;

 private:
  struct Cached {
    ApiKeyRecord record;
    unsigned char salt[16];
    unsigned char hash[32];
  };
  ApiKeyStore(sqlite3* db, UnixClock clock, ApiKeyStoreOptions options);
  Status prepare();
  Result<int64_t> data_version();
  // Loads `key_id` from the database into the cache; nullptr when absent.
  Result<const Cached*> load(std::string_view key_id);

  sqlite3* db_;
  const UnixClock clock_;
  const ApiKeyStoreOptions options_;
  std::mutex mu_;
  sqlite3_stmt* st_insert_ = nullptr;
  sqlite3_stmt* st_select_ = nullptr;
  sqlite3_stmt* st_list_ = nullptr;
  sqlite3_stmt* st_revoke_ = nullptr;
  sqlite3_stmt* st_data_version_ = nullptr;
  int64_t cached_version_ = -1;
  std::unordered_map<std::string, Cached> cache_;
};

}  // namespace ztslm::identity
