// Sources of trusted JWT verification keys: a fixed set (JWKS or PEM files loaded at start) or
// a JWKS URL fetched through an injectable fetcher, cached, refreshed on a schedule and, for an
// unknown kid (key rotation), at most once per `min_refresh_interval_s`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "core/result.h"
#include "identity/jwk.h"
#include "identity/principal.h"

namespace ztslm::identity {

// Where a JwtVerifier gets its keys. Implementations are thread-safe.
class KeySource {
 public:
  virtual ~KeySource() = default;
  // The current key set (never null; may be empty).
  virtual std::shared_ptr<const JwkSet> keys() = 0;
  // Called when a token names a kid that `keys()` lacks; may refresh (bounded) and returns the
  // set to retry with.
  virtual std::shared_ptr<const JwkSet> keys_after_miss() { return keys(); }
};

// A key set fixed at construction.
class StaticKeySource final : public KeySource {
 public:
  explicit StaticKeySource(JwkSet set) : set_(std::make_shared<const JwkSet>(std::move(set))) {}
  std::shared_ptr<const JwkSet> keys() override { return set_; }

 private:
  std::shared_ptr<const JwkSet> set_;
};

// Fetches a JWKS document. Tests use a fake; production uses make_curl_jwks_fetcher().
class JwksFetcher {
 public:
  virtual ~JwksFetcher() = default;
  // The body at `url`, at most `max_bytes` long (kResourceExhausted beyond), or kUnavailable.
  virtual Result<std::string> fetch(const std::string& url, size_t max_bytes) = 0;
};

// libcurl fetcher: https:// only (file:// is allowed for local files), redirects off, TLS peer
// and host verification on, `timeout_ms` for the whole transfer.
std::unique_ptr<JwksFetcher> make_curl_jwks_fetcher(long timeout_ms = 5000);

struct CurlFetcherOptions {
  long timeout_ms = 5000;   // whole transfer, connection included
  std::string ca_file;      // "" = the system trust store
  bool allow_http = false;  // SECURITY: plain http:// lets a network attacker pick the keys; tests only
};
// As above with a CA bundle and, for tests, plain http:// (also bounded by `max_bytes`).
std::unique_ptr<JwksFetcher> make_curl_jwks_fetcher(const CurlFetcherOptions& options);

struct JwksCacheConfig {
  std::string url;
  int64_t refresh_interval_s = 300;     // scheduled refresh of a good set
  int64_t min_refresh_interval_s = 30;  // bound on fetches (unknown kid, failures): DoS guard
  int64_t max_stale_s = 24 * 3600;      // serve the last good set this long if fetches fail
  JwksLimits limits;
};

// A cached remote JWKS. Fetches happen on the calling thread, one at a time; other threads keep
// using the current set meanwhile.
class JwksCache final : public KeySource {
 public:
  // Fetches once. Returns the fetch or parse error when that first fetch fails.
  static Result<std::shared_ptr<JwksCache>> create(JwksCacheConfig config, std::unique_ptr<JwksFetcher> fetcher,
                                                   UnixClock clock);

  std::shared_ptr<const JwkSet> keys() override;
  std::shared_ptr<const JwkSet> keys_after_miss() override;

  // Number of fetch attempts so far (tests).
  size_t n_fetches_for_test() const;

 private:
  JwksCache(JwksCacheConfig config, std::unique_ptr<JwksFetcher> fetcher, UnixClock clock);
  // Fetches when `force` or the set is due, unless an attempt happened within
  // min_refresh_interval_s or another thread is fetching.
  std::shared_ptr<const JwkSet> maybe_refresh(bool force);

  const JwksCacheConfig config_;
  const std::unique_ptr<JwksFetcher> fetcher_;
  const UnixClock clock_;
  mutable std::mutex mu_;
  std::shared_ptr<const JwkSet> set_;
  int64_t fetched_at_ = 0;       // last successful fetch
  int64_t last_attempt_at_ = 0;  // last attempt, successful or not
  bool fetching_ = false;
  size_t n_fetches_ = 0;
};

}  // namespace ztslm::identity
