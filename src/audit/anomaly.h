// Per-principal behaviour baselines and anomaly events.
//
// Time is cut into windows of `window_us`. For each principal the detector keeps, per window,
// the number of requests, tokens, denials and guard hits, and an exponentially weighted moving
// average (EWMA) of each over closed windows: request rate, tokens, deny rate and guard-hit rate
// (the two rates are fractions of the window's requests). Once a principal has `warmup_windows`
// closed windows, a window whose value exceeds factor * max(baseline, floor) raises one
// AnomalyEvent per signal per window, as soon as it happens (counts only grow within a window).
// The caller audits the events; the detector counts them in ztslm_anomalies_total{signal}.
// Memory is bounded: at most `max_principals` are tracked, the least recently seen is dropped.
// Time comes from the caller (injected clock); the detector never reads a clock itself.
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "audit/metrics.h"
#include "audit/record.h"

namespace ztslm::audit {

struct AnomalyOptions {
  int64_t window_us = 60'000'000;
  double alpha = 0.3;               // weight of the newest window in the EWMA
  uint32_t warmup_windows = 5;      // closed windows before a principal can raise events
  double factor = 4.0;              // how far above the baseline counts as anomalous
  double min_requests = 10;         // floors, so that a quiet baseline does not make every
  double min_tokens = 2000;         //   small burst an anomaly (per window)
  double min_ratio = 0.05;          // floor of the deny and guard-hit rate baselines
  uint32_t min_requests_for_ratio = 10;  // a window's rates count from this many requests on
  size_t max_principals = 10'000;
};

// One request's outcome, as seen by the detector.
struct Observation {
  std::string_view principal;
  std::string_view tenant;
  int64_t now_us = 0;
  uint64_t tokens = 0;  // in + out
  bool denied = false;
  bool guard_hit = false;
};

// A principal's baselines (for tests and diagnostics).
struct Baseline {
  uint32_t windows = 0;  // closed windows seen
  double request_rate = 0;
  double tokens = 0;
  double deny_rate = 0;
  double guard_hit_rate = 0;
};

class AnomalyDetector final {
 public:
  // `counter` (may be null) is incremented once per event with label signal=<name>.
  explicit AnomalyDetector(AnomalyOptions options = AnomalyOptions(),
                           CounterFamily* counter = nullptr);

  // Records `obs` and returns the anomaly events it raises (usually none). Thread-safe.
  std::vector<AnomalyEvent> observe(const Observation& obs);

  size_t tracked() const;
  // The principal's baselines, or windows == 0 when it is not tracked.
  Baseline baseline(std::string_view principal) const;

 private:
  struct State {
    std::string principal;
    int64_t window_start_us = 0;
    uint64_t requests = 0, tokens = 0, denies = 0, guard_hits = 0;  // current window
    uint32_t fired = 0;  // signals raised in the current window (bit per signal)
    Baseline base;
  };
  void roll(State& s, int64_t now_us) const;

  AnomalyOptions options_;
  CounterFamily* counter_;
  mutable std::mutex mu_;
  std::list<State> lru_;  // most recent first
  std::unordered_map<std::string, std::list<State>::iterator> index_;
};

}  // namespace ztslm::audit
