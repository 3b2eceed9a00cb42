#include "policy/quota.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <utility>
#include <vector>

namespace ztslm::policy {
namespace {

constexpr int64_t kMinute = 60;
constexpr int64_t kDay = 86400;
constexpr int64_t kSchemaVersion = 1;
constexpr size_t kMaxNameBytes = 1024;  // principal ids and tenants are far shorter

constexpr const char* kSchemaV1 =
    "CREATE TABLE quota_counters ("
    "  scope INTEGER NOT NULL,"
    "  tenant TEXT NOT NULL,"
    "  principal TEXT NOT NULL,"
    "  minute_start INTEGER NOT NULL,"
    "  requests_minute INTEGER NOT NULL,"
    "  tokens_minute INTEGER NOT NULL,"
    "  day_start INTEGER NOT NULL,"
    "  tokens_day INTEGER NOT NULL,"
    "  PRIMARY KEY (scope, tenant, principal)) WITHOUT ROWID;"
    "PRAGMA user_version = 1;";

int64_t floor_to(int64_t t, int64_t period) {
  const int64_t q = t / period;
  return (t % period < 0 ? q - 1 : q) * period;
}

uint64_t sat_add(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b ? std::numeric_limits<uint64_t>::max() : a + b;
}
uint64_t sat_sub(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

int64_t to_i64(uint64_t v) {
  return v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? std::numeric_limits<int64_t>::max()
                                                                       : static_cast<int64_t>(v);
}

Status db_error(sqlite3* db, int rc, std::string_view path, std::string_view what) {
  if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
    return Status::unavailable("quota store {}: locked by another process (one gateway per state directory)", path);
  }
  if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT) {
    return Status::unavailable("quota store {}: not a valid quota database (corrupt?)", path);
  }
  return Status::unavailable("quota store {}: {}: {}", path, what, db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

struct StmtReset {
  sqlite3_stmt* st;
  ~StmtReset() {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
  }
};

std::string column_text(sqlite3_stmt* st, int col) {
  const unsigned char* p = sqlite3_column_text(st, col);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(st, col)))
           : std::string();
}

}  // namespace

// ---- QuotaLease ----

QuotaLease& QuotaLease::operator=(QuotaLease&& o) noexcept {
  if (this != &o) {
    if (store_ != nullptr) settle(reserved_);
    store_ = std::exchange(o.store_, nullptr);
    principal_key_ = std::move(o.principal_key_);
    tenant_key_ = std::move(o.tenant_key_);
    minute_start_ = o.minute_start_;
    day_start_ = o.day_start_;
    reserved_ = o.reserved_;
  }
  return *this;
}

QuotaLease::~QuotaLease() {
  if (store_ != nullptr) settle(reserved_);
}

void QuotaLease::settle(uint64_t used_tokens) {
  if (store_ == nullptr) return;
  store_->release(*this, used_tokens, false);
  store_ = nullptr;
}

void QuotaLease::refund() {
  if (store_ == nullptr) return;
  store_->release(*this, 0, true);
  store_ = nullptr;
}

// ---- QuotaStore ----

void QuotaStore::Counters::roll(int64_t now_unix) {
  const int64_t m = floor_to(now_unix, kMinute);
  if (m != minute_start) {
    minute_start = m;
    requests_minute = 0;
    tokens_minute = 0;
  }
  const int64_t d = floor_to(now_unix, kDay);
  if (d != day_start) {
    day_start = d;
    tokens_day = 0;
  }
}

std::string QuotaStore::key(QuotaScope scope, std::string_view tenant, std::string_view principal) {
  std::string k;
  k.reserve(2 + tenant.size() + principal.size());
  k.push_back(scope == QuotaScope::kTenant ? 't' : 'p');
  k.append(tenant);
  k.push_back('\0');  // neither part can contain NUL in the database's keys either
  if (scope == QuotaScope::kPrincipal) k.append(principal);
  return k;
}

Result<std::unique_ptr<QuotaStore>> QuotaStore::open(const std::string& path, Options options) {
  struct stat before {};
  const bool existed = ::stat(path.c_str(), &before) == 0;
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  std::unique_ptr<QuotaStore> store(new QuotaStore(db, options));
  if (rc != SQLITE_OK) return Status::unavailable("quota store {}: cannot open: {}", path, sqlite3_errstr(rc));
  if (!existed) ::chmod(path.c_str(), 0600);  // tenants and principal ids
  // SECURITY: a second gateway on the same file would double-grant every quota; the exclusive
  // lock (held from the first transaction until close) makes it fail at start instead.
  sqlite3_busy_timeout(db, 0);
  int e = sqlite3_exec(db, "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
                       nullptr, nullptr, nullptr);
  if (e != SQLITE_OK) return db_error(db, sqlite3_extended_errcode(db) & 0xff, path, "configure");
  e = sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
  if (e != SQLITE_OK) return db_error(db, e & 0xff, path, "begin");
  int64_t version = -1;
  sqlite3_stmt* v = nullptr;
  e = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &v, nullptr);
  if (e == SQLITE_OK && sqlite3_step(v) == SQLITE_ROW) version = sqlite3_column_int64(v, 0);
  sqlite3_finalize(v);
  Status migrated;
  if (version == 0) {
    if (sqlite3_exec(db, kSchemaV1, nullptr, nullptr, nullptr) != SQLITE_OK) {
      migrated = db_error(db, sqlite3_errcode(db), path, "create schema");
    }
  } else if (version != kSchemaVersion) {
    migrated = version < 0 ? db_error(db, sqlite3_errcode(db), path, "read schema version")
                           : Status::unavailable("quota store {}: schema version {} is not supported (expected {})",
                                                 path, version, kSchemaVersion);
  }
  sqlite3_exec(db, migrated.ok() ? "COMMIT" : "ROLLBACK", nullptr, nullptr, nullptr);
  ZTSLM_TRY(migrated);
  if (Status s = store->prepare_and_load(); !s.ok()) return s.with_context("quota store " + path);
  if (store->options_.flush_interval_ms > 0) store->flusher_ = std::thread([s = store.get()] { s->flusher(); });
  return store;
}

Status QuotaStore::prepare_and_load() {
  const char* upsert =
      "INSERT INTO quota_counters (scope, tenant, principal, minute_start, requests_minute, tokens_minute, "
      "day_start, tokens_day) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
      "ON CONFLICT (scope, tenant, principal) DO UPDATE SET minute_start = ?4, requests_minute = ?5, "
      "tokens_minute = ?6, day_start = ?7, tokens_day = ?8";
  if (sqlite3_prepare_v3(db_, upsert, -1, SQLITE_PREPARE_PERSISTENT, &st_upsert_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v3(db_, "DELETE FROM quota_counters WHERE day_start < ?1", -1, SQLITE_PREPARE_PERSISTENT,
                         &st_prune_, nullptr) != SQLITE_OK) {
    return Status::unavailable("prepare: {}", sqlite3_errmsg(db_));
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_,
                         "SELECT scope, tenant, principal, minute_start, requests_minute, tokens_minute, day_start, "
                         "tokens_day FROM quota_counters",
                         -1, &st, nullptr) != SQLITE_OK) {
    return Status::unavailable("load: {}", sqlite3_errmsg(db_));
  }
  int rc = SQLITE_OK;
  Status bad;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const int64_t scope = sqlite3_column_int64(st, 0);
    Counters c;
    c.tenant = column_text(st, 1);
    c.principal = column_text(st, 2);
    c.minute_start = sqlite3_column_int64(st, 3);
    const int64_t rm = sqlite3_column_int64(st, 4), tm = sqlite3_column_int64(st, 5);
    c.day_start = sqlite3_column_int64(st, 6);
    const int64_t td = sqlite3_column_int64(st, 7);
    // A row the store never writes means the file was edited or damaged: refuse to start
    // rather than guess at counters.
    if ((scope != 0 && scope != 1) || c.tenant.size() > kMaxNameBytes || c.principal.size() > kMaxNameBytes ||
        c.tenant.find('\0') != std::string::npos || c.principal.find('\0') != std::string::npos || rm < 0 ||
        tm < 0 || td < 0 || c.minute_start % kMinute != 0 || c.day_start % kDay != 0) {
      bad = Status::unavailable("invalid counter row (corrupt?)");
      break;
    }
    c.scope = scope == 1 ? QuotaScope::kTenant : QuotaScope::kPrincipal;
    c.requests_minute = static_cast<uint64_t>(rm);
    c.tokens_minute = static_cast<uint64_t>(tm);
    c.tokens_day = static_cast<uint64_t>(td);
    counters_[key(c.scope, c.tenant, c.principal)] = std::move(c);
  }
  if (bad.ok() && rc != SQLITE_DONE) bad = Status::unavailable("load: {}", sqlite3_errmsg(db_));
  sqlite3_finalize(st);
  return bad;
}

QuotaStore::~QuotaStore() {
  {
    std::lock_guard<std::mutex> lock(flush_mu_);
    stopping_ = true;
  }
  flush_cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  if (st_upsert_ != nullptr) (void)write_dirty();
  sqlite3_finalize(st_upsert_);
  sqlite3_finalize(st_prune_);
  sqlite3_close_v2(db_);
}

void QuotaStore::flusher() {
  std::unique_lock<std::mutex> lock(flush_mu_);
  while (!stopping_) {
    flush_cv_.wait_for(lock, std::chrono::milliseconds(options_.flush_interval_ms), [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    (void)write_dirty();  // a failed write keeps the subjects dirty for the next round
    lock.lock();
  }
}

QuotaStore::Counters& QuotaStore::subject(QuotaScope scope, std::string_view tenant, std::string_view principal) {
  auto [it, inserted] = counters_.try_emplace(key(scope, tenant, principal));
  if (inserted) {
    it->second.scope = scope;
    it->second.tenant = std::string(tenant);
    if (scope == QuotaScope::kPrincipal) it->second.principal = std::string(principal);
  }
  return it->second;
}

Result<QuotaLease> QuotaStore::admit(const QuotaRequest& r, QuotaDenial& denial) {
  if (r.tenant.size() > kMaxNameBytes || r.principal.size() > kMaxNameBytes ||
      r.tenant.find('\0') != std::string_view::npos || r.principal.find('\0') != std::string_view::npos) {
    return Status::invalid_argument("quota subject names must be at most {} bytes without NUL", kMaxNameBytes);
  }
  QuotaLease lease;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Counters& p = subject(QuotaScope::kPrincipal, r.tenant, r.principal);
    Counters& t = subject(QuotaScope::kTenant, r.tenant, "");
    p.roll(r.now_unix);
    t.roll(r.now_unix);
    const int64_t minute_left = std::max<int64_t>(1, p.minute_start + kMinute - r.now_unix);
    const int64_t day_left = std::max<int64_t>(1, p.day_start + kDay - r.now_unix);
    struct Scoped {
      const Counters* c;
      const QuotaLimits* l;
      const char* name;
    };
    const Scoped order[] = {{&p, &r.principal_limits, "principal"}, {&t, &r.tenant_limits, "tenant"}};
    auto deny = [&](const char* limit, const char* scope, int64_t after) {
      denial.limit = limit;
      denial.scope = scope;
      denial.retry_after_s = after;
      return Status::resource_exhausted("quota {} of the {} exhausted", limit, scope);
    };
    for (const Scoped& s : order) {
      const QuotaLimits& l = *s.l;
      if (l.concurrent != 0 && s.c->concurrent >= l.concurrent) return deny("concurrent", s.name, 1);
      if (l.requests_per_minute != 0 && s.c->requests_minute >= l.requests_per_minute) {
        return deny("requests_per_minute", s.name, minute_left);
      }
      if (l.tokens_per_minute != 0 && sat_add(s.c->tokens_minute, r.reserve_tokens) > l.tokens_per_minute) {
        return deny("tokens_per_minute", s.name, minute_left);
      }
      if (l.tokens_per_day != 0 && sat_add(s.c->tokens_day, r.reserve_tokens) > l.tokens_per_day) {
        return deny("tokens_per_day", s.name, day_left);
      }
    }
    for (Counters* c : {&p, &t}) {
      c->requests_minute = sat_add(c->requests_minute, 1);
      c->tokens_minute = sat_add(c->tokens_minute, r.reserve_tokens);
      c->tokens_day = sat_add(c->tokens_day, r.reserve_tokens);
      c->concurrent += 1;
      c->dirty = true;
    }
    lease.store_ = this;
    lease.principal_key_ = key(QuotaScope::kPrincipal, r.tenant, r.principal);
    lease.tenant_key_ = key(QuotaScope::kTenant, r.tenant, "");
    lease.minute_start_ = p.minute_start;
    lease.day_start_ = p.day_start;
    lease.reserved_ = r.reserve_tokens;
  }
  if (options_.flush_interval_ms == 0) {
    if (Status s = write_dirty(); !s.ok()) {
      lease.refund();
      return s;
    }
  }
  return lease;
}

void QuotaStore::release(QuotaLease& lease, uint64_t charge_tokens, bool uncount_request) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string* k : {&lease.principal_key_, &lease.tenant_key_}) {
    auto it = counters_.find(*k);
    if (it == counters_.end()) continue;
    Counters& c = it->second;
    if (c.concurrent > 0) c.concurrent -= 1;
    // Only the windows the reservation went into are corrected; a window that has since
    // closed no longer limits anything.
    if (c.minute_start == lease.minute_start_) {
      c.tokens_minute = sat_add(sat_sub(c.tokens_minute, lease.reserved_), charge_tokens);
      if (uncount_request) c.requests_minute = sat_sub(c.requests_minute, 1);
    }
    if (c.day_start == lease.day_start_) c.tokens_day = sat_add(sat_sub(c.tokens_day, lease.reserved_), charge_tokens);
    c.dirty = true;
  }
}

Status QuotaStore::flush() { return write_dirty(); }

Status QuotaStore::write_dirty() {
  // db_mu_ first: two writers must not reorder snapshots (an older one written last).
  std::lock_guard<std::mutex> db_lock(db_mu_);
  std::vector<Counters> snapshot;
  int64_t newest_day = std::numeric_limits<int64_t>::min();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [k, c] : counters_) {
      newest_day = std::max(newest_day, c.day_start);
      if (!c.dirty) continue;
      snapshot.push_back(c);
      c.dirty = false;
    }
  }
  if (snapshot.empty()) return Status();
  Status s;
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
    s = Status::unavailable("quota store: begin: {}", sqlite3_errmsg(db_));
  }
  for (size_t i = 0; s.ok() && i < snapshot.size(); ++i) {
    const Counters& c = snapshot[i];
    StmtReset reset{st_upsert_};
    sqlite3_bind_int64(st_upsert_, 1, c.scope == QuotaScope::kTenant ? 1 : 0);
    sqlite3_bind_text(st_upsert_, 2, c.tenant.data(), static_cast<int>(c.tenant.size()), SQLITE_STATIC);
    sqlite3_bind_text(st_upsert_, 3, c.principal.data(), static_cast<int>(c.principal.size()), SQLITE_STATIC);
    sqlite3_bind_int64(st_upsert_, 4, c.minute_start);
    sqlite3_bind_int64(st_upsert_, 5, to_i64(c.requests_minute));
    sqlite3_bind_int64(st_upsert_, 6, to_i64(c.tokens_minute));
    sqlite3_bind_int64(st_upsert_, 7, c.day_start);
    sqlite3_bind_int64(st_upsert_, 8, to_i64(c.tokens_day));
    if (sqlite3_step(st_upsert_) != SQLITE_DONE) s = Status::unavailable("quota store: write: {}", sqlite3_errmsg(db_));
  }
  if (s.ok()) {
    // Rows of days before the newest one seen hold nothing that still limits.
    StmtReset reset{st_prune_};
    sqlite3_bind_int64(st_prune_, 1, newest_day);
    if (sqlite3_step(st_prune_) != SQLITE_DONE) s = Status::unavailable("quota store: prune: {}", sqlite3_errmsg(db_));
  }
  if (s.ok() && sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    s = Status::unavailable("quota store: commit: {}", sqlite3_errmsg(db_));
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!s.ok()) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    for (const Counters& c : snapshot) {
      auto it = counters_.find(key(c.scope, c.tenant, c.principal));
      if (it != counters_.end()) it->second.dirty = true;
    }
    return s;
  }
  // Forget idle subjects of past days (their rows were just pruned too).
  for (auto it = counters_.begin(); it != counters_.end();) {
    const Counters& c = it->second;
    if (!c.dirty && c.concurrent == 0 && c.day_start < newest_day) it = counters_.erase(it);
    else ++it;
  }
  return Status();
}

QuotaUsage QuotaStore::usage(QuotaScope scope, std::string_view tenant, std::string_view principal,
                             int64_t now_unix) const {
  std::lock_guard<std::mutex> lock(mu_);
  QuotaUsage u;
  auto it = counters_.find(key(scope, tenant, principal));
  if (it == counters_.end()) return u;
  const Counters& c = it->second;
  if (c.minute_start == floor_to(now_unix, kMinute)) {
    u.requests_minute = c.requests_minute;
    u.tokens_minute = c.tokens_minute;
  }
  if (c.day_start == floor_to(now_unix, kDay)) u.tokens_day = c.tokens_day;
  u.concurrent = c.concurrent;
  return u;
}

}  // namespace ztslm::policy
