// Quotas (DESIGN.md pipeline step 5): per principal and per tenant, requests per minute, tokens
// per minute, tokens per day and concurrent generations, with counters kept in a SQLite file so
// that a restart does not reset them.
//
// Windows are fixed and aligned to the UTC minute and the UTC day: the count of a window is
// exact, its state is three integers per subject (cheap to persist), and the time until it
// frees (Retry-After) is exact. The price is the usual fixed-window burst: a subject may use a
// full window just before a boundary and another just after it, so any 60 s span sees at most
// twice the per-minute limit (the per-day limit bounds the sum).
//
// Tokens are reserved at admission (`reserve_tokens`: the generation cap after the policy's
// obligation plus an estimate of the prompt) and settled with the real count at the end, so
// requests running at the same time cannot overshoot a token limit together: only a prompt
// estimate below the real prompt size can, by that difference.
//
// Persistence is write-behind: admissions change counters in memory and a background thread
// writes the changed subjects every `flush_interval_ms` in one transaction (WAL,
// synchronous=FULL); closing the store writes the rest. Bound after a crash: what was admitted
// during the last `flush_interval_ms` (plus the duration of one write) is forgotten, so a
// subject can exceed a limit by at most its admissions in that span; `flush_interval_ms` 0
// writes before every admission is acknowledged (no loss, one transaction per request).
// Concurrent generations are not persisted: none survive a restart.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "core/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace ztslm::policy {

// Limits of one subject (a principal or a tenant); 0 = unlimited.
struct QuotaLimits {
  uint64_t requests_per_minute = 0;
  uint64_t tokens_per_minute = 0;
  uint64_t tokens_per_day = 0;
  uint32_t concurrent = 0;  // generations running at once
};

enum class QuotaScope : uint8_t { kPrincipal = 0, kTenant = 1 };

// Which limit refused a request and when it frees.
struct QuotaDenial {
  std::string limit;  // "requests_per_minute", "tokens_per_minute", "tokens_per_day", "concurrent"
  std::string scope;  // "principal" or "tenant"
  int64_t retry_after_s = 1;  // seconds until the window frees (1 for "concurrent")
  // "quota:tokens_per_minute:tenant" (the audit reason).
  std::string reason() const { return "quota:" + limit + ":" + scope; }
};

// One admission request.
struct QuotaRequest {
  std::string_view tenant;
  std::string_view principal;
  QuotaLimits principal_limits;
  QuotaLimits tenant_limits;
  uint64_t reserve_tokens = 0;  // tokens held until settle()
  int64_t now_unix = 0;         // wall-clock seconds (windows are aligned to the UTC minute/day)
};

// Usage of one subject in the windows current at `now_unix` (tests, metrics).
struct QuotaUsage {
  uint64_t requests_minute = 0;
  uint64_t tokens_minute = 0;
  uint64_t tokens_day = 0;
  uint32_t concurrent = 0;
};

class QuotaStore;

// An admitted request's hold on its quotas: one request counted, `reserved_tokens` held and one
// concurrent generation taken, for the principal and its tenant. Move-only. Destroying an
// unsettled lease settles it with the whole reservation (an interrupted generation is charged
// what it was allowed to use). The store must outlive its leases.
class QuotaLease {
 public:
  QuotaLease() = default;
  QuotaLease(QuotaLease&& o) noexcept { *this = std::move(o); }
  QuotaLease& operator=(QuotaLease&& o) noexcept;
  QuotaLease(const QuotaLease&) = delete;
  QuotaLease& operator=(const QuotaLease&) = delete;
  ~QuotaLease();

  // Charges `used_tokens` instead of the reservation and frees the concurrent slot.
  void settle(uint64_t used_tokens);
  // Undoes the admission entirely (request count, tokens, slot): for a request the server
  // itself then refused.
  void refund();
  bool active() const { return store_ != nullptr; }
  uint64_t reserved_tokens() const { return reserved_; }

 private:
  friend class QuotaStore;
  QuotaStore* store_ = nullptr;
  std::string principal_key_, tenant_key_;
  int64_t minute_start_ = 0, day_start_ = 0;
  uint64_t reserved_ = 0;
};

class QuotaStore final {
 public:
  struct Options {
    uint32_t flush_interval_ms = 1000;  // write-behind period; 0 = write before acknowledging
  };

  // Opens (creating) the counter file at `path`. The file is held with an exclusive lock for
  // the store's life: one gateway per state directory. kUnavailable names the file and the
  // cause (cannot open, locked by another process, not a database, unsupported schema).
  static Result<std::unique_ptr<QuotaStore>> open(const std::string& path, Options options);
  static Result<std::unique_ptr<QuotaStore>> open(const std::string& path) { return open(path, Options{}); }
  ~QuotaStore();  // writes what is pending, then closes

  // Admits the request when no limit of the principal or of its tenant would be exceeded, and
  // counts it; otherwise changes nothing, fills `denial` and returns kResourceExhausted.
  // kUnavailable when a write-through (flush_interval_ms 0) fails; nothing is counted then.
  // A reservation larger than a token limit by itself is always refused. Thread-safe.
  Result<QuotaLease> admit(const QuotaRequest& r, QuotaDenial& denial);

  // Writes every changed counter now (one transaction).
  Status flush();

  QuotaUsage usage(QuotaScope scope, std::string_view tenant, std::string_view principal, int64_t now_unix) const;

 private:
  friend class QuotaLease;
  struct Counters {
    QuotaScope scope = QuotaScope::kPrincipal;
    std::string tenant, principal;
    int64_t minute_start = 0;
    uint64_t requests_minute = 0;
    uint64_t tokens_minute = 0;
    int64_t day_start = 0;
    uint64_t tokens_day = 0;
    uint32_t concurrent = 0;
    bool dirty = false;
    void roll(int64_t now_unix);
  };

  QuotaStore(sqlite3* db, Options options) : db_(db), options_(options) {}
  Status prepare_and_load();
  Counters& subject(QuotaScope scope, std::string_view tenant, std::string_view principal);
  void release(QuotaLease& lease, uint64_t charge_tokens, bool uncount_request);
  Status write_dirty();
  void flusher();

  static std::string key(QuotaScope scope, std::string_view tenant, std::string_view principal);

  sqlite3* db_ = nullptr;
  sqlite3_stmt* st_upsert_ = nullptr;
  sqlite3_stmt* st_prune_ = nullptr;
  Options options_;

  mutable std::mutex mu_;  // counters_
  std::unordered_map<std::string, Counters> counters_;

  std::mutex db_mu_;  // db_ and its statements
  std::mutex flush_mu_;
  std::condition_variable flush_cv_;
  bool stopping_ = false;
  std::thread flusher_;
};

}  // namespace ztslm::policy
