#include "identity/api_key.h"

#include <openssl/rand.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "core/byte_reader.h"
#include "core/secure.h"
#include "core/utf8.h"
#include "identity/internal/openssl_util.h"
#include "identity/jwt.h"

namespace ztslm::identity {
namespace {

constexpr char kBase62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr char kIdChars[] = "0123456789abcdefghijklmnopqrstuvwxyz";

bool is_id_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_base62(char c) { return is_id_char(c) || (c >= 'A' && c <= 'Z'); }

// `n` characters drawn uniformly from `alphabet` (rejection sampling: no modulo bias).
std::string random_chars(std::string_view alphabet, size_t n) {
  std::string out;
  out.reserve(n);
  const unsigned limit = 256u - 256u % static_cast<unsigned>(alphabet.size());
  unsigned char buf[64];
  while (out.size() < n) {
    ZTSLM_CHECK(RAND_bytes(buf, sizeof buf) == 1);
    for (unsigned char b : buf) {
      if (b >= limit || out.size() == n) continue;
      out.push_back(alphabet[b % alphabet.size()]);
    }
  }
  secure_zero(buf, sizeof buf);
  return out;
}

void hash_secret(const unsigned char salt[16], std::string_view secret, unsigned char out[32]) {
  internal::sha256({as_bytes(salt, 16), as_bytes(secret)}, out);
}

bool is_valid_principal_name(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return is_base62(c) || c == '_' || c == '.' || c == ':' || c == '-' || c == '@' || c == '/';
  });
}

std::string join_roles(const std::vector<std::string>& roles) {
  std::string out;
  for (const auto& r : roles) {
    if (!out.empty()) out.push_back(',');
    out += r;
  }
  return out;
}

std::vector<std::string> split_roles(std::string_view s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t end = std::min(s.find(',', pos), s.size());
    if (end > pos) out.emplace_back(s.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

std::string column_text(sqlite3_stmt* st, int col) {
  const unsigned char* p = sqlite3_column_text(st, col);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(st, col)))
           : std::string();
}

// Reads the record columns 0..6 of a row: key_id, principal, tenant, roles, created, expires,
// revoked.
ApiKeyRecord read_record(sqlite3_stmt* st) {
  ApiKeyRecord r;
  r.key_id = column_text(st, 0);
  r.principal_id = column_text(st, 1);
  r.tenant = column_text(st, 2);
  r.roles = split_roles(column_text(st, 3));
  r.created_at = sqlite3_column_int64(st, 4);
  r.expires_at = sqlite3_column_int64(st, 5);
  r.revoked_at = sqlite3_column_int64(st, 6);
  return r;
}

Status sql_error(sqlite3* db, std::string_view what) {
  return Status::internal("key store: {}: {}", what, sqlite3_errmsg(db));
}

// Resets a statement on scope exit so it never holds a read transaction open.
struct StmtReset {
  sqlite3_stmt* st;
  ~StmtReset() {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
  }
};

constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE api_keys (
  key_id      TEXT PRIMARY KEY NOT NULL,
  principal   TEXT NOT NULL,
  tenant      TEXT NOT NULL,
  roles       TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL DEFAULT 0,
  revoked_at  INTEGER NOT NULL DEFAULT 0,
  salt        BLOB NOT NULL,
  hash        BLOB NOT NULL
) STRICT;
PRAGMA user_version = 1;
)sql";

}  // namespace

Result<ParsedApiKey> parse_api_key(std::string_view text) {
  const size_t min_len = kApiKeyPrefix.size() + kApiKeyIdChars + 1 + kApiKeyMinSecretChars;
  const size_t max_len = kApiKeyPrefix.size() + kApiKeyIdChars + 1 + kApiKeyMaxSecretChars;
  if (text.size() < min_len || text.size() > max_len) return Status::malformed("api key length {} invalid", text.size());
  if (!has_api_key_prefix(text)) return Status::malformed("api key lacks the zt_ prefix");
  const std::string_view id = text.substr(kApiKeyPrefix.size(), kApiKeyIdChars);
  if (!std::all_of(id.begin(), id.end(), is_id_char)) return Status::malformed("api key id has invalid characters");
  if (text[kApiKeyPrefix.size() + kApiKeyIdChars] != '_') return Status::malformed("api key id is not 8 characters");
  const std::string_view secret = text.substr(kApiKeyPrefix.size() + kApiKeyIdChars + 1);
  if (!std::all_of(secret.begin(), secret.end(), is_base62)) {
    return Status::malformed("api key secret has invalid characters");
  }
  return ParsedApiKey{id, secret};
}

CreatedApiKey::CreatedApiKey(CreatedApiKey&& o) noexcept : record(std::move(o.record)), token(std::move(o.token)) {
  secure_zero(o.token.data(), o.token.size());
  o.token.clear();
}
CreatedApiKey& CreatedApiKey::operator=(CreatedApiKey&& o) noexcept {
  if (this != &o) {
    secure_zero(token.data(), token.size());
    record = std::move(o.record);
    token = std::move(o.token);
    secure_zero(o.token.data(), o.token.size());
    o.token.clear();
  }
  return *this;
}
CreatedApiKey::~CreatedApiKey() { secure_zero(token.data(), token.size()); }

ApiKeyStore::ApiKeyStore(sqlite3* db, UnixClock clock, ApiKeyStoreOptions options)
    : db_(db), clock_(std::move(clock)), options_(options) {}

ApiKeyStore::~ApiKeyStore() {
  for (sqlite3_stmt* st : {st_insert_, st_select_, st_list_, st_revoke_, st_data_version_}) sqlite3_finalize(st);
  sqlite3_close_v2(db_);
  for (auto& [id, c] : cache_) {
    secure_zero(c.salt, sizeof c.salt);
    secure_zero(c.hash, sizeof c.hash);
  }
}

Result<std::unique_ptr<ApiKeyStore>> ApiKeyStore::open(const std::string& path, UnixClock clock,
                                                       ApiKeyStoreOptions options) {
  if (!clock) return Status::invalid_argument("key store needs a clock");
  struct stat st_before {};
  const bool existed = ::stat(path.c_str(), &st_before) == 0;
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  std::unique_ptr<ApiKeyStore> store(new ApiKeyStore(db, std::move(clock), options));
  if (rc != SQLITE_OK) return Status::unavailable("key store: cannot open {}: {}", path, sqlite3_errstr(rc));
  // SECURITY: the file lists tenants and roles; only the owner reads it (WAL/SHM files inherit
  // the database file's mode).
  if (!existed) ::chmod(path.c_str(), 0600);
  sqlite3_busy_timeout(db, 5000);
  if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return sql_error(db, "enable wal");
  }
  // Migrate under an exclusive transaction so two processes opening a new file do not race.
  if (sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) return sql_error(db, "begin");
  sqlite3_stmt* v = nullptr;
  int64_t version = -1;
  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &v, nullptr) == SQLITE_OK && sqlite3_step(v) == SQLITE_ROW) {
    version = sqlite3_column_int64(v, 0);
  }
  sqlite3_finalize(v);
  Status migrated;
  if (version == 0) {
    if (sqlite3_exec(db, kSchemaV1, nullptr, nullptr, nullptr) != SQLITE_OK) migrated = sql_error(db, "create schema");
  } else if (version != kSchemaVersion) {
    migrated = Status::failed_precondition("key store schema version {} is not supported (expected {})", version,
                                           kSchemaVersion);
  }
  sqlite3_exec(db, migrated.ok() ? "COMMIT" : "ROLLBACK", nullptr, nullptr, nullptr);
  ZTSLM_TRY(migrated);
  ZTSLM_TRY(store->prepare());
  return store;
}

Status ApiKeyStore::prepare() {
  struct {
    sqlite3_stmt** st;
    const char* sql;
  } const stmts[] = {
      {&st_insert_,
       "INSERT INTO api_keys (key_id, principal, tenant, roles, created_at, expires_at, revoked_at, salt, hash) "
       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8)"},
      {&st_select_,
       "SELECT key_id, principal, tenant, roles, created_at, expires_at, revoked_at, salt, hash "
       "FROM api_keys WHERE key_id = ?1"},
      {&st_list_,
       "SELECT key_id, principal, tenant, roles, created_at, expires_at, revoked_at FROM api_keys "
       "ORDER BY created_at, key_id"},
      {&st_revoke_, "UPDATE api_keys SET revoked_at = ?2 WHERE key_id = ?1 AND revoked_at = 0"},
      {&st_data_version_, "PRAGMA data_version"},
  };
  for (const auto& s : stmts) {
    if (sqlite3_prepare_v3(db_, s.sql, -1, SQLITE_PREPARE_PERSISTENT, s.st, nullptr) != SQLITE_OK) {
      return sql_error(db_, "prepare");
    }
  }
  return Status();
}

Result<int64_t> ApiKeyStore::data_version() {
  StmtReset reset{st_data_version_};
  if (sqlite3_step(st_data_version_) != SQLITE_ROW) return sql_error(db_, "data_version");
  return static_cast<int64_t>(sqlite3_column_int64(st_data_version_, 0));
}

Result<CreatedApiKey> ApiKeyStore::create(const NewApiKey& request) {
  if (!is_valid_role_name(request.tenant)) return Status::invalid_argument("tenant must be 1..64 of [A-Za-z0-9_.:-]");
  for (const auto& r : request.roles) {
    if (!is_valid_role_name(r)) return Status::invalid_argument("role {} must be 1..64 of [A-Za-z0-9_.:-]", printable(r, 64));
  }
  if (!request.name.empty() && !is_valid_principal_name(request.name)) {
    return Status::invalid_argument("name must be 1..128 of [A-Za-z0-9_.:@/-]");
  }
  const int64_t now = clock_();
  if (request.expires_at != 0 && request.expires_at <= now) return Status::invalid_argument("expiry is in the past");

  CreatedApiKey out;
  out.record.tenant = request.tenant;
  out.record.roles = request.roles;
  std::sort(out.record.roles.begin(), out.record.roles.end());
  out.record.roles.erase(std::unique(out.record.roles.begin(), out.record.roles.end()), out.record.roles.end());
  out.record.created_at = now;
  out.record.expires_at = request.expires_at;
  const std::string roles = join_roles(out.record.roles);

  std::lock_guard<std::mutex> lock(mu_);
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::string key_id = random_chars(kIdChars, kApiKeyIdChars);
    std::string secret = random_chars(kBase62, kApiKeyGeneratedSecretChars);
    unsigned char salt[16];
    unsigned char hash[32];
    ZTSLM_CHECK(RAND_bytes(salt, sizeof salt) == 1);
    hash_secret(salt, secret, hash);
    const std::string principal = request.name.empty() ? "apikey:" + key_id : request.name;
    int rc;
    {
      StmtReset reset{st_insert_};
      sqlite3_bind_text(st_insert_, 1, key_id.data(), static_cast<int>(key_id.size()), SQLITE_STATIC);
      sqlite3_bind_text(st_insert_, 2, principal.data(), static_cast<int>(principal.size()), SQLITE_STATIC);
      sqlite3_bind_text(st_insert_, 3, request.tenant.data(), static_cast<int>(request.tenant.size()), SQLITE_STATIC);
      sqlite3_bind_text(st_insert_, 4, roles.data(), static_cast<int>(roles.size()), SQLITE_STATIC);
      sqlite3_bind_int64(st_insert_, 5, now);
      sqlite3_bind_int64(st_insert_, 6, request.expires_at);
      sqlite3_bind_blob(st_insert_, 7, salt, sizeof salt, SQLITE_STATIC);
      sqlite3_bind_blob(st_insert_, 8, hash, sizeof hash, SQLITE_STATIC);
      rc = sqlite3_step(st_insert_);
    }
    secure_zero(hash, sizeof hash);
    if (rc == SQLITE_CONSTRAINT) {  // key id collision (1 in 36^8 per key): draw again
      secure_zero(secret.data(), secret.size());
      continue;
    }
    if (rc != SQLITE_DONE) {
      secure_zero(secret.data(), secret.size());
      return sql_error(db_, "insert");
    }
    out.record.key_id = key_id;
    out.record.principal_id = principal;
    out.token.reserve(kApiKeyPrefix.size() + key_id.size() + 1 + secret.size());
    out.token.append(kApiKeyPrefix).append(key_id).append("_").append(secret);
    secure_zero(secret.data(), secret.size());
    return out;
  }
  return Status::internal("key store: could not allocate a unique key id");
}

Result<std::vector<ApiKeyRecord>> ApiKeyStore::list() {
  std::lock_guard<std::mutex> lock(mu_);
  StmtReset reset{st_list_};
  std::vector<ApiKeyRecord> out;
  int rc;
  while ((rc = sqlite3_step(st_list_)) == SQLITE_ROW) out.push_back(read_record(st_list_));
  if (rc != SQLITE_DONE) return sql_error(db_, "list");
  return out;
}

Status ApiKeyStore::revoke(std::string_view key_id) {
  std::lock_guard<std::mutex> lock(mu_);
  cache_.erase(std::string(key_id));
  {
    StmtReset reset{st_revoke_};
    sqlite3_bind_text(st_revoke_, 1, key_id.data(), static_cast<int>(key_id.size()), SQLITE_STATIC);
    sqlite3_bind_int64(st_revoke_, 2, clock_());
    if (sqlite3_step(st_revoke_) != SQLITE_DONE) return sql_error(db_, "revoke");
  }
  if (sqlite3_changes(db_) > 0) return Status();
  // Nothing changed: either already revoked (fine) or no such key.
  StmtReset reset{st_select_};
  sqlite3_bind_text(st_select_, 1, key_id.data(), static_cast<int>(key_id.size()), SQLITE_STATIC);
  const int rc = sqlite3_step(st_select_);
  if (rc == SQLITE_ROW) return Status();
  if (rc == SQLITE_DONE) return Status::not_found("no api key with id {}", printable(key_id, 16));
  return sql_error(db_, "revoke lookup");
}

Result<const ApiKeyStore::Cached*> ApiKeyStore::load(std::string_view key_id) {
  StmtReset reset{st_select_};
  sqlite3_bind_text(st_select_, 1, key_id.data(), static_cast<int>(key_id.size()), SQLITE_STATIC);
  const int rc = sqlite3_step(st_select_);
  if (rc == SQLITE_DONE) return static_cast<const Cached*>(nullptr);
  if (rc != SQLITE_ROW) return sql_error(db_, "select");
  Cached c;
  c.record = read_record(st_select_);
  if (sqlite3_column_bytes(st_select_, 7) != sizeof c.salt || sqlite3_column_bytes(st_select_, 8) != sizeof c.hash) {
    return Status::internal("key store: corrupt salt or hash for {}", printable(key_id, 16));
  }
  std::memcpy(c.salt, sqlite3_column_blob(st_select_, 7), sizeof c.salt);
  std::memcpy(c.hash, sqlite3_column_blob(st_select_, 8), sizeof c.hash);
  if (cache_.size() >= options_.max_cached_keys) cache_.clear();
  auto [it, inserted] = cache_.insert_or_assign(c.record.key_id, std::move(c));
  (void)inserted;
  return &it->second;
}

Result<Principal> ApiKeyStore::authenticate(std::string_view token) {
  ZTSLM_ASSIGN_OR_RETURN(ParsedApiKey parsed, parse_api_key(token));
  std::lock_guard<std::mutex> lock(mu_);
  ZTSLM_ASSIGN_OR_RETURN(int64_t version, data_version());
  if (version != cached_version_) {
    cache_.clear();  // another connection committed: a key may have been revoked
    cached_version_ = version;
  }
  const Cached* c = nullptr;
  if (auto it = cache_.find(std::string(parsed.key_id)); it != cache_.end()) {
    c = &it->second;
  } else {
    ZTSLM_ASSIGN_OR_RETURN(c, load(parsed.key_id));
  }
  unsigned char presented[32];
  // Hash even for an unknown id so the work done does not depend on whether the id exists.
  static const unsigned char kZeroSalt[16] = {};
  hash_secret(c != nullptr ? c->salt : kZeroSalt, parsed.secret, presented);
  const bool match = c != nullptr && ct_equal(as_bytes(presented, sizeof presented), as_bytes(c->hash, sizeof c->hash));
  secure_zero(presented, sizeof presented);
  if (c == nullptr) return Status::unauthenticated("api key {}: unknown key id", parsed.key_id);
  if (!match) return Status::unauthenticated("api key {}: wrong secret", parsed.key_id);
  const ApiKeyRecord& r = c->record;
  if (r.revoked_at != 0) return Status::unauthenticated("api key {}: revoked", parsed.key_id);
  if (r.expires_at != 0 && clock_() >= r.expires_at) return Status::unauthenticated("api key {}: expired", parsed.key_id);
  Principal p;
  p.method = AuthMethod::kApiKey;
  p.id = r.principal_id;
  p.tenant = r.tenant;
  p.roles = r.roles;
  p.attributes["key_id"] = r.key_id;
  return p;
}

}  // namespace ztslm::identity
