// A small metrics registry (counters, gauges, fixed-bucket histograms) rendered in the
// Prometheus text exposition format 0.0.4.
//
// Hot path: Counter::inc and Histogram::observe are lock-free: each thread adds to one of
// kShards cache-line-sized cells (chosen once per thread) and render() sums the cells. Looking
// up a labelled series (Family::with) takes a shared lock; callers on hot paths keep the
// returned reference, which stays valid for the registry's lifetime.
//
// Metric and label names are compile-time constants of the caller (a bad one is a bug and
// CHECK-fails); label values may come from requests: they are escaped, invalid UTF-8 becomes
// U+FFFD, and each family holds at most `max_series` label sets (later ones are counted in a
// single series whose labels all read "__overflow__").
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ztslm::audit {

inline constexpr size_t kShards = 16;

// The calling thread's shard (assigned round-robin on first use).
size_t metrics_shard();

class Counter final {
 public:
  void inc(uint64_t n = 1) { cells_[metrics_shard()].v.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const;

 private:
  struct alignas(64) Cell {
    std::atomic<uint64_t> v{0};
  };
  Cell cells_[kShards];
};

// A value that goes up and down (set() makes sharding pointless; one atomic).
class Gauge final {
 public:
  void set(int64_t v) { v_.store(v, std::memory_order_relaxed); }
  void add(int64_t d) { v_.fetch_add(d, std::memory_order_relaxed); }
  int64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

// Counts of observations per bucket (upper bounds, ascending; +Inf is implicit) and their sum.
class Histogram final {
 public:
  explicit Histogram(std::span<const double> bounds);
  void observe(double v);

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> counts;  // per bucket, not cumulative; bounds.size() + 1 entries
    uint64_t count = 0;
    double sum = 0;
    // Estimate of quantile `q` in [0, 1] by linear interpolation inside the bucket holding it
    // (as Prometheus' histogram_quantile does); the last finite bound when it falls in +Inf;
    // 0 with no observations.
    double quantile(double q) const;
  };
  Snapshot snapshot() const;

 private:
  struct alignas(64) Shard {
    std::unique_ptr<std::atomic<uint64_t>[]> counts;
    std::atomic<double> sum{0};
  };
  std::vector<double> bounds_;
  Shard shards_[kShards];
};

enum class MetricType { kCounter, kGauge, kHistogram };

// All series of one metric name, one per label-value tuple.
template <typename M>
class Family final {
 public:
  // The series for `values` (one per label name, in order), created on first use.
  M& with(std::initializer_list<std::string_view> values);
  M& with(std::span<const std::string> values);
  // The series of an unlabelled family.
  M& get() { return with(std::span<const std::string>()); }

  const std::string& name() const { return name_; }

 private:
  friend class Registry;
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> bounds, size_t max_series);
  M& find_or_add(std::vector<std::string> key);
  std::unique_ptr<M> make() const;

  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;  // histograms only
  size_t max_series_;
  mutable std::shared_mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<M>> series_;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

class Registry final {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Registers a family; names must be valid Prometheus names and unique (CHECK). The reference
  // lives as long as the registry.
  CounterFamily& counter(std::string name, std::string help,
                         std::vector<std::string> label_names = {}, size_t max_series = 1000);
  GaugeFamily& gauge(std::string name, std::string help,
                     std::vector<std::string> label_names = {}, size_t max_series = 1000);
  HistogramFamily& histogram(std::string name, std::string help, std::vector<double> bounds,
                             std::vector<std::string> label_names = {},
                             size_t max_series = 1000);

  // The text exposition (format 0.0.4): families in registration order, series sorted by
  // label values. Content-Type: text/plain; version=0.0.4; charset=utf-8
  std::string render() const;

 private:
  struct Entry {
    MetricType type;
    void* family;
  };
  void check_new_name(const std::string& name, const std::vector<std::string>& labels,
                      bool histogram) const;

  mutable std::shared_mutex mu_;
  std::vector<Entry> entries_;
  std::vector<std::unique_ptr<CounterFamily>> counters_;
  std::vector<std::unique_ptr<GaugeFamily>> gauges_;
  std::vector<std::unique_ptr<HistogramFamily>> histograms_;
};

// Escapes a label value for the text format: backslash, double quote and newline.
std::string escape_label_value(std::string_view v);
// Formats a sample value: integers without a fraction, +Inf / -Inf / NaN, else shortest repr.
std::string format_metric_value(double v);

inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

}  // namespace ztslm::audit
