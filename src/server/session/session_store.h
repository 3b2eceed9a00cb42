// Sessions (DESIGN.md "context isolation"): a conversation state bound to the principal that
// created it. Lookups by anyone else, and of expired ids, are "not found" (never "forbidden":
// the id's existence is not revealed). Bounded by count and by the total memory of the backend
// states (BackendSession::memory_bytes against `max_bytes`; LRU eviction of idle sessions),
// idle TTL and maximum age; a dropped session's BackendSession is destroyed, which wipes its
// memory. The new state is built before older ones are evicted for it, so memory may exceed
// the bound by one session's bytes for that moment.
// Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "server/backend.h"
#include "server/clock.h"
#include "server/config/config.h"

namespace ztslm::server {

struct SessionOwner {
  std::string principal;
  std::string tenant;
};

class SessionStore;

// Exclusive use of one session during a request. While a lease is held the session is not
// evicted or expired; a deleted session's state is destroyed when its lease ends.
class SessionLease {
 public:
  SessionLease() = default;
  SessionLease(SessionLease&&) noexcept = default;
  SessionLease& operator=(SessionLease&&) noexcept;
  ~SessionLease();
  BackendSession* backend() const;
  const std::string& id() const;
  explicit operator bool() const { return entry_ != nullptr; }

 private:
  friend class SessionStore;
  struct Entry;
  SessionLease(SessionStore* store, std::shared_ptr<Entry> e) : store_(store), entry_(std::move(e)) {}
  void release();
  SessionStore* store_ = nullptr;
  std::shared_ptr<Entry> entry_;
};

struct SessionInfo {
  std::string id;
  int64_t created_unix = 0;
  int64_t expires_unix = 0;  // the earlier of idle expiry and max age, as of now
};

class SessionStore final {
 public:
  using Factory = std::function<Result<std::unique_ptr<BackendSession>>()>;
  SessionStore(const SessionConfig& cfg, const Clock& clock, Factory factory);
  ~SessionStore();

  // Creates a session for `owner`. kResourceExhausted when the owner has max_per_principal
  // sessions, when one state alone exceeds max_bytes, or when the sessions that would have to go
  // are busy; evicts least recently used idle sessions until count and bytes fit.
  Result<SessionInfo> create(const SessionOwner& owner);
  // Leases `id` for `owner`: kNotFound when unknown, expired or owned by someone else;
  // kFailedPrecondition when another request holds it.
  Result<SessionLease> acquire(const std::string& id, const SessionOwner& owner);
  // Deletes `id` (kNotFound as acquire). Its state is wiped now, or when its lease ends.
  Status remove(const std::string& id, const SessionOwner& owner);
  // Drops expired idle sessions; returns how many.
  size_t sweep();
  size_t size() const;
  uint64_t evictions() const;
  // Sum of memory_bytes() over the sessions held.
  uint64_t bytes() const;

 private:
  friend class SessionLease;
  using Entry = SessionLease::Entry;
  bool expired(const Entry& e, int64_t now) const;
  void erase_locked(const std::string& id);
  uint32_t owned_locked(const SessionOwner& owner, int64_t now) const;

  SessionConfig cfg_;
  const Clock* clock_;
  Factory factory_;
  mutable std::mutex mu_;
  std::list<std::string> lru_;  // front = most recently used
  std::unordered_map<std::string, std::shared_ptr<Entry>> map_;
  uint64_t evictions_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace ztslm::server
