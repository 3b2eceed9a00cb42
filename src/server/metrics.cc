#include "server/metrics.h"

#include <cmath>
#include <cstdio>

namespace ztslm::server {

LatencyHistogram::LatencyHistogram() {
  for (size_t i = 0; i < kBuckets; ++i) upper_us_[i] = std::pow(2.0, static_cast<double>(i) / 4.0);
}

void LatencyHistogram::observe_us(double us) {
  if (!(us >= 0)) us = 0;
  // log2(us) * 4 rounded up is the bucket index: O(1), no search.
  size_t i = 0;
  if (us > 1.0) {
    const double idx = std::ceil(std::log2(us) * 4.0 - 1e-9);
    i = idx >= static_cast<double>(kBuckets) ? kBuckets : static_cast<size_t>(idx);
  }
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(us * 1000.0), std::memory_order_relaxed);
}

double LatencyHistogram::sum_us() const {
  return static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1000.0;
}

void LatencyHistogram::reset() {
  for (auto& c : counts_) c.store(0, std::memory_order_relaxed);
  count_.store(0);
  sum_ns_.store(0);
}

double LatencyHistogram::quantile_us(double q) const {
  uint64_t total = 0;
  std::array<uint64_t, kBuckets + 1> snap{};
  for (size_t i = 0; i <= kBuckets; ++i) total += snap[i] = counts_[i].load(std::memory_order_relaxed);
  if (total == 0) return 0;
  const double rank = q * static_cast<double>(total);
  double seen = 0;
  for (size_t i = 0; i <= kBuckets; ++i) {
    if (snap[i] == 0) continue;
    if (seen + static_cast<double>(snap[i]) >= rank) {
      if (i == kBuckets) return upper_us_[kBuckets - 1];
      const double lo = i == 0 ? 0.0 : upper_us_[i - 1];
      const double frac = (rank - seen) / static_cast<double>(snap[i]);
      return lo + (upper_us_[i] - lo) * frac;
    }
    seen += static_cast<double>(snap[i]);
  }
  return upper_us_[kBuckets - 1];
}

void LatencyHistogram::expose(std::string& out, const std::string& name, const std::string& labels) const {
  char buf[128];
  uint64_t cum = 0;
  const std::string sep = labels.empty() ? "" : ",";
  // Every fourth bucket (powers of two) keeps the exposition short; quantile_us uses all.
  for (size_t i = 0; i < kBuckets; ++i) {
    cum += counts_[i].load(std::memory_order_relaxed);
    if (i % 4 != 0) continue;
    std::snprintf(buf, sizeof buf, "%.9g", upper_us_[i] / 1e6);
    out += name + "_bucket{" + labels + sep + "le=\"" + buf + "\"} " + std::to_string(cum) + "\n";
  }
  cum += counts_[kBuckets].load(std::memory_order_relaxed);
  out += name + "_bucket{" + labels + sep + "le=\"+Inf\"} " + std::to_string(cum) + "\n";
  std::snprintf(buf, sizeof buf, "%.9g", sum_us() / 1e6);
  out += name + "_sum" + (labels.empty() ? "" : "{" + labels + "}") + " " + buf + "\n";
  out += name + "_count" + (labels.empty() ? "" : "{" + labels + "}") + " " + std::to_string(cum) + "\n";
}

void Metrics::add(const std::string& name, const std::string& labels, uint64_t v) {
  std::lock_guard<std::mutex> lock(mu_);
  counters_[name][labels] += v;
}

void Metrics::set_gauge(const std::string& name, int64_t v) {
  std::lock_guard<std::mutex> lock(mu_);
  gauges_[name] = v;
}

std::string Metrics::render() const {
  std::string out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, series] : counters_) {
      out += "# TYPE " + name + " counter\n";
      for (const auto& [labels, v] : series) {
        out += name + (labels.empty() ? "" : "{" + labels + "}") + " " + std::to_string(v) + "\n";
      }
    }
    for (const auto& [name, v] : gauges_) {
      out += "# TYPE " + name + " gauge\n" + name + " " + std::to_string(v) + "\n";
    }
  }
  const std::pair<const LatencyHistogram*, const char*> hs[] = {
      {&overhead_, "ztslm_gateway_overhead_seconds"},
      {&ttft_, "ztslm_time_to_first_token_seconds"},
      {&itl_, "ztslm_inter_token_latency_seconds"},
      {&duration_, "ztslm_request_duration_seconds"},
  };
  for (const auto& [h, name] : hs) {
    out += std::string("# TYPE ") + name + " histogram\n";
    h->expose(out, name, "");
  }
  return out;
}

}  // namespace ztslm::server
