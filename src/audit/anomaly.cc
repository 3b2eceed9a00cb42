#include "audit/anomaly.h"

#include <algorithm>
#include <cmath>

namespace ztslm::audit {
namespace {

enum Signal : uint32_t { kRate = 1, kTokens = 2, kDeny = 4, kGuard = 8 };

double ewma(double old, double value, double alpha, uint32_t windows) {
  return windows == 0 ? value : alpha * value + (1.0 - alpha) * old;
}

}  // namespace

AnomalyDetector::AnomalyDetector(AnomalyOptions options, CounterFamily* counter)
    : options_(options), counter_(counter) {
  options_.window_us = std::max<int64_t>(options_.window_us, 1);
  options_.alpha = std::clamp(options_.alpha, 1e-6, 1.0);
  options_.max_principals = std::max<size_t>(options_.max_principals, 1);
}

void AnomalyDetector::roll(State& s, int64_t now_us) const {
  if (now_us < s.window_start_us + options_.window_us) return;  // also a clock going backwards
  const int64_t elapsed = (now_us - s.window_start_us) / options_.window_us;  // >= 1
  Baseline& b = s.base;
  const double a = options_.alpha;
  b.request_rate = ewma(b.request_rate, static_cast<double>(s.requests), a, b.windows);
  b.tokens = ewma(b.tokens, static_cast<double>(s.tokens), a, b.windows);
  if (s.requests > 0) {
    const double n = static_cast<double>(s.requests);
    b.deny_rate = ewma(b.deny_rate, static_cast<double>(s.denies) / n, a, b.windows);
    b.guard_hit_rate = ewma(b.guard_hit_rate, static_cast<double>(s.guard_hits) / n, a, b.windows);
  }
  ++b.windows;
  // Idle windows pull the volume baselines towards zero (rates carry no information then).
  const int64_t idle = std::min<int64_t>(elapsed - 1, 1000);
  if (idle > 0) {
    const double decay = std::pow(1.0 - a, static_cast<double>(idle));
    b.request_rate *= decay;
    b.tokens *= decay;
    b.windows += static_cast<uint32_t>(idle);
  }
  s.window_start_us += elapsed * options_.window_us;
  s.requests = s.tokens = s.denies = s.guard_hits = 0;
  s.fired = 0;
}

std::vector<AnomalyEvent> AnomalyDetector::observe(const Observation& obs) {
  std::vector<AnomalyEvent> events;
  std::unique_lock lk(mu_);
  const std::string key(obs.principal);
  auto it = index_.find(key);
  if (it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
  } else {
    if (lru_.size() >= options_.max_principals) {
      index_.erase(lru_.back().principal);
      lru_.pop_back();
    }
    State fresh;
    fresh.principal = key;
    fresh.window_start_us = obs.now_us;
    lru_.push_front(std::move(fresh));
    index_.emplace(key, lru_.begin());
  }
  State& s = lru_.front();
  roll(s, obs.now_us);
  ++s.requests;
  s.tokens += obs.tokens;
  s.denies += obs.denied ? 1 : 0;
  s.guard_hits += obs.guard_hit ? 1 : 0;
  if (s.base.windows < options_.warmup_windows) return events;

  auto check = [&](uint32_t bit, const char* signal, double observed, double baseline,
                   double floor) {
    if ((s.fired & bit) != 0) return;
    const double threshold = options_.factor * std::max(baseline, floor);
    if (observed <= threshold) return;
    s.fired |= bit;
    AnomalyEvent e;
    e.time_us = obs.now_us;
    e.principal = s.principal;
    e.tenant = std::string(obs.tenant);
    e.signal = signal;
    e.observed = observed;
    e.baseline = baseline;
    e.threshold = threshold;
    events.push_back(std::move(e));
  };
  const Baseline& b = s.base;
  check(kRate, "request_rate", static_cast<double>(s.requests), b.request_rate,
        options_.min_requests);
  check(kTokens, "tokens", static_cast<double>(s.tokens), b.tokens, options_.min_tokens);
  if (s.requests >= options_.min_requests_for_ratio) {
    const double n = static_cast<double>(s.requests);
    check(kDeny, "deny_rate", static_cast<double>(s.denies) / n, b.deny_rate, options_.min_ratio);
    check(kGuard, "guard_hit_rate", static_cast<double>(s.guard_hits) / n, b.guard_hit_rate,
          options_.min_ratio);
  }
  lk.unlock();
  if (counter_ != nullptr) {
    for (const AnomalyEvent& e : events) counter_->with({e.signal}).inc();
  }
  return events;
}

size_t AnomalyDetector::tracked() const {
  std::unique_lock lk(mu_);
  return lru_.size();
}

Baseline AnomalyDetector::baseline(std::string_view principal) const {
  std::unique_lock lk(mu_);
  auto it = index_.find(std::string(principal));
  return it == index_.end() ? Baseline() : it->second->base;
}

}  // namespace ztslm::audit
