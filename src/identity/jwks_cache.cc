#include "identity/jwks_cache.h"

#include <curl/curl.h>

namespace ztslm::identity {
namespace {

class CurlFetcher final : public JwksFetcher {
 public:
  explicit CurlFetcher(CurlFetcherOptions options) : options_(std::move(options)) {}

  Result<std::string> fetch(const std::string& url, size_t max_bytes) override {
    const bool is_https = url.rfind("https://", 0) == 0;
    const bool is_http = url.rfind("http://", 0) == 0;
    if (!is_https && url.rfind("file://", 0) != 0 && !(is_http && options_.allow_http)) {
      return Status::invalid_argument("jwks url must be https:// or file://");
    }
    CURL* curl = curl_easy_init();
    if (curl == nullptr) return Status::internal("curl_easy_init failed");
    Sink sink{std::string(), max_bytes, false};
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, options_.allow_http ? "https,http,file" : "https,file");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!options_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options_.ca_file.c_str());
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(max_bytes));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, options_.timeout_ms);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &CurlFetcher::write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
    const CURLcode rc = curl_easy_perform(curl);
    long http_code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http_code);
    curl_easy_cleanup(curl);
    if (sink.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
      return Status::resource_exhausted("jwks body exceeds limit {}", max_bytes);
    }
    if (rc != CURLE_OK) return Status::unavailable("jwks fetch failed: {}", curl_easy_strerror(rc));
    if ((is_https || is_http) && http_code != 200) {
      return Status::unavailable("jwks fetch returned http {}", http_code);
    }
    return std::move(sink.body);
  }

 private:
  struct Sink {
    std::string body;
    size_t max_bytes;
    bool too_big;
  };
  static size_t write(char* data, size_t size, size_t n, void* user) {
    auto* sink = static_cast<Sink*>(user);
    const size_t len = size * n;
    if (sink->body.size() + len > sink->max_bytes) {
      sink->too_big = true;
      return 0;  // aborts the transfer
    }
    sink->body.append(data, len);
    return len;
  }
  CurlFetcherOptions options_;
};

}  // namespace

std::unique_ptr<JwksFetcher> make_curl_jwks_fetcher(long timeout_ms) {
  CurlFetcherOptions o;
  o.timeout_ms = timeout_ms;
  return std::make_unique<CurlFetcher>(std::move(o));
}

std::unique_ptr<JwksFetcher> make_curl_jwks_fetcher(const CurlFetcherOptions& options) {
  return std::make_unique<CurlFetcher>(options);
}

JwksCache::JwksCache(JwksCacheConfig config, std::unique_ptr<JwksFetcher> fetcher, UnixClock clock)
    : config_(std::move(config)), fetcher_(std::move(fetcher)), clock_(std::move(clock)),
      set_(std::make_shared<const JwkSet>()) {}

Result<std::shared_ptr<JwksCache>> JwksCache::create(JwksCacheConfig config, std::unique_ptr<JwksFetcher> fetcher,
                                                     UnixClock clock) {
  if (!fetcher || !clock) return Status::invalid_argument("jwks cache needs a fetcher and a clock");
  if (config.min_refresh_interval_s < 1 || config.refresh_interval_s < config.min_refresh_interval_s) {
    return Status::invalid_argument("jwks refresh intervals must satisfy 1 <= min <= refresh");
  }
  std::shared_ptr<JwksCache> cache(new JwksCache(std::move(config), std::move(fetcher), std::move(clock)));
  const int64_t now = cache->clock_();
  cache->n_fetches_ = 1;
  cache->last_attempt_at_ = now;
  ZTSLM_ASSIGN_OR_RETURN(std::string body, cache->fetcher_->fetch(cache->config_.url, cache->config_.limits.max_bytes));
  ZTSLM_ASSIGN_OR_RETURN(JwkSet set, JwkSet::parse(body, cache->config_.limits));
  cache->set_ = std::make_shared<const JwkSet>(std::move(set));
  cache->fetched_at_ = now;
  return cache;
}

std::shared_ptr<const JwkSet> JwksCache::keys() { return maybe_refresh(/*force=*/false); }
std::shared_ptr<const JwkSet> JwksCache::keys_after_miss() { return maybe_refresh(/*force=*/true); }

size_t JwksCache::n_fetches_for_test() const {
  std::lock_guard<std::mutex> lock(mu_);
  return n_fetches_;
}

std::shared_ptr<const JwkSet> JwksCache::maybe_refresh(bool force) {
  const int64_t now = clock_();
  {
    std::lock_guard<std::mutex> lock(mu_);
    const bool due = force || now - fetched_at_ >= config_.refresh_interval_s;
    // SECURITY: tokens with random kids must not turn into a fetch per request.
    const bool allowed = now - last_attempt_at_ >= config_.min_refresh_interval_s;
    if (!due || !allowed || fetching_) {
      if (now - fetched_at_ > config_.max_stale_s) return std::make_shared<const JwkSet>();
      return set_;
    }
    fetching_ = true;
    last_attempt_at_ = now;
    ++n_fetches_;
  }
  auto body = fetcher_->fetch(config_.url, config_.limits.max_bytes);
  Result<JwkSet> parsed = body.has_value() ? JwkSet::parse(*body, config_.limits) : Result<JwkSet>(body.error());
  std::lock_guard<std::mutex> lock(mu_);
  fetching_ = false;
  if (parsed.has_value()) {
    set_ = std::make_shared<const JwkSet>(std::move(parsed).value());
    fetched_at_ = now;
  }
  // A failed refresh keeps the last good set until it is max_stale_s old.
  if (now - fetched_at_ > config_.max_stale_s) return std::make_shared<const JwkSet>();
  return set_;
}

}  // namespace ztslm::identity
