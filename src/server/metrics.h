// Gateway metrics in Prometheus text exposition (version 0.0.4). Counters keyed by a label set,
// histograms with fixed log-spaced buckets (lock-free observe). Stands in for audit/'s registry
// until it exists; the names below are the gateway's contract either way.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace ztslm::server {

// A histogram of durations in microseconds with buckets growing by 2^(1/4) from 1 µs to ~100 s.
class LatencyHistogram final {
 public:
  static constexpr size_t kBuckets = 108;
  LatencyHistogram();
  void observe_us(double us);
  // The `q` quantile (0..1) in microseconds, interpolated inside its bucket; 0 when empty.
  double quantile_us(double q) const;
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum_us() const;
  void reset();
  // Appends the Prometheus lines of this histogram (in seconds) as `name{labels}`.
  void expose(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::array<double, kBuckets> upper_us_{};  // bucket i holds values <= upper_us_[i]
  std::array<std::atomic<uint64_t>, kBuckets + 1> counts_{};  // + overflow
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_ns_{0};
};

class Metrics final {
 public:
  // Adds `v` to counter `name` with the label set `labels` ("route=\"/v1/models\",code=\"200\"").
  void add(const std::string& name, const std::string& labels, uint64_t v = 1);
  void set_gauge(const std::string& name, int64_t v);

  LatencyHistogram& gateway_overhead() { return overhead_; }
  LatencyHistogram& time_to_first_token() { return ttft_; }
  LatencyHistogram& inter_token() { return itl_; }
  LatencyHistogram& request_duration() { return duration_; }

  // The whole exposition text.
  std::string render() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, uint64_t>> counters_;
  std::map<std::string, int64_t> gauges_;
  LatencyHistogram overhead_, ttft_, itl_, duration_;
};

}  // namespace ztslm::server
