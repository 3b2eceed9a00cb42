#include "server/session/session_store.h"

#include "core/secure.h"
#include "server/random.h"

namespace ztslm::server {

struct SessionLease::Entry {
  std::string id;
  SessionOwner owner;
  int64_t created_ms = 0;
  int64_t last_used_ms = 0;
  int64_t created_unix = 0;
  bool busy = false;
  uint64_t bytes = 0;  // the backend state's memory, counted in SessionStore::bytes_
  std::list<std::string>::iterator lru_pos;
  std::unique_ptr<BackendSession> backend;
};

SessionLease& SessionLease::operator=(SessionLease&& o) noexcept {
  if (this != &o) {
    release();
    store_ = o.store_;
    entry_ = std::move(o.entry_);
    o.store_ = nullptr;
  }
  return *this;
}

SessionLease::~SessionLease() { release(); }

BackendSession* SessionLease::backend() const { return entry_ ? entry_->backend.get() : nullptr; }

const std::string& SessionLease::id() const {
  static const std::string kEmpty;
  return entry_ ? entry_->id : kEmpty;
}

void SessionLease::release() {
  if (!entry_) return;
  {
    std::lock_guard<std::mutex> lock(store_->mu_);
    entry_->busy = false;
    entry_->last_used_ms = store_->clock_->now_ms();
  }
  entry_.reset();  // the last reference (a removed session) destroys and wipes the state
  store_ = nullptr;
}

SessionStore::SessionStore(const SessionConfig& cfg, const Clock& clock, Factory factory)
    : cfg_(cfg), clock_(&clock), factory_(std::move(factory)) {}

SessionStore::~SessionStore() = default;

bool SessionStore::expired(const Entry& e, int64_t now) const {
  return now - e.last_used_ms >= int64_t{cfg_.idle_ttl_s} * 1000 ||
         now - e.created_ms >= int64_t{cfg_.max_age_s} * 1000;
}

void SessionStore::erase_locked(const std::string& id) {
  auto it = map_.find(id);
  if (it == map_.end()) return;
  lru_.erase(it->second->lru_pos);
  bytes_ -= it->second->bytes;
  map_.erase(it);  // destroys the BackendSession unless a lease still holds the entry
}

uint32_t SessionStore::owned_locked(const SessionOwner& owner, int64_t now) const {
  uint32_t owned = 0;
  for (const auto& [id, e] : map_) {
    if (e->owner.principal == owner.principal && e->owner.tenant == owner.tenant && !expired(*e, now)) ++owned;
  }
  return owned;
}

Result<SessionInfo> SessionStore::create(const SessionOwner& owner) {
  if (cfg_.max_sessions == 0) return Status::failed_precondition("sessions are disabled");
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (owned_locked(owner, clock_->now_ms()) >= cfg_.max_per_principal) {
      return Status::resource_exhausted("session limit of {} per principal reached", cfg_.max_per_principal);
    }
  }
  // The state is built first: its size decides how much has to be evicted for it.
  std::unique_ptr<BackendSession> backend;
  ZTSLM_ASSIGN_OR_RETURN(backend, factory_());
  const uint64_t need = backend->memory_bytes();
  if (need > cfg_.max_bytes) {
    return Status::resource_exhausted("a session needs {} bytes, more than sessions.max_bytes {}", need,
                                      cfg_.max_bytes);
  }
  auto e = std::make_shared<Entry>();
  e->id = "sess_" + random_hex(16);
  e->owner = owner;
  e->created_ms = e->last_used_ms = clock_->now_ms();
  e->created_unix = clock_->unix_seconds();
  e->bytes = need;
  e->backend = std::move(backend);
  SessionInfo info{e->id, e->created_unix, e->created_unix + std::min<int64_t>(cfg_.idle_ttl_s, cfg_.max_age_s)};
  std::vector<std::shared_ptr<Entry>> victims;  // destroyed (wiped) after the lock is released
  std::lock_guard<std::mutex> lock(mu_);
  if (owned_locked(owner, e->created_ms) >= cfg_.max_per_principal) {
    return Status::resource_exhausted("session limit of {} per principal reached", cfg_.max_per_principal);
  }
  // Evict from the LRU end (expired ones are there by nature of LRU order), never a busy one.
  // The victims are chosen first, so a create that cannot fit evicts nothing.
  std::vector<std::string> chosen;
  size_t n_left = map_.size();
  uint64_t bytes_left = bytes_;
  for (auto r = lru_.rbegin(); r != lru_.rend(); ++r) {
    if (n_left < cfg_.max_sessions && bytes_left + need <= cfg_.max_bytes) break;
    const Entry& v = *map_.at(*r);
    if (v.busy) continue;
    chosen.push_back(*r);
    --n_left;
    bytes_left -= v.bytes;
  }
  if (n_left >= cfg_.max_sessions || bytes_left + need > cfg_.max_bytes) {
    return Status::resource_exhausted("all {} sessions are in use", map_.size());
  }
  for (const std::string& id : chosen) {
    victims.push_back(map_.at(id));
    erase_locked(id);
    ++evictions_;
  }
  bytes_ += need;
  lru_.push_front(e->id);
  e->lru_pos = lru_.begin();
  map_.emplace(e->id, std::move(e));
  return info;
}

Result<SessionLease> SessionStore::acquire(const std::string& id, const SessionOwner& owner) {
  std::shared_ptr<Entry> dead;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find(id);
  // SECURITY: another principal's session is indistinguishable from a missing one; the owner
  // strings are not secret, so an ordinary comparison is fine.
  if (it == map_.end() || it->second->owner.principal != owner.principal ||
      it->second->owner.tenant != owner.tenant) {
    return Status::not_found("session not found");
  }
  const std::shared_ptr<Entry>& e = it->second;
  const int64_t now = clock_->now_ms();
  if (!e->busy && expired(*e, now)) {
    dead = e;
    erase_locked(id);
    return Status::not_found("session not found");
  }
  if (e->busy) return Status::failed_precondition("session is in use by another request");
  e->busy = true;
  e->last_used_ms = now;
  lru_.splice(lru_.begin(), lru_, e->lru_pos);
  return SessionLease(this, e);
}

Status SessionStore::remove(const std::string& id, const SessionOwner& owner) {
  std::shared_ptr<Entry> dead;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find(id);
  if (it == map_.end() || it->second->owner.principal != owner.principal ||
      it->second->owner.tenant != owner.tenant) {
    return Status::not_found("session not found");
  }
  dead = it->second;
  erase_locked(id);
  return Status();
}

size_t SessionStore::sweep() {
  std::vector<std::shared_ptr<Entry>> dead;
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = clock_->now_ms();
  for (auto it = map_.begin(); it != map_.end();) {
    if (!it->second->busy && expired(*it->second, now)) {
      dead.push_back(it->second);
      lru_.erase(it->second->lru_pos);
      bytes_ -= it->second->bytes;
      it = map_.erase(it);
    } else {
      ++it;
    }
  }
  return dead.size();
}

size_t SessionStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return map_.size();
}

uint64_t SessionStore::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

uint64_t SessionStore::evictions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return evictions_;
}

}  // namespace ztslm::server
