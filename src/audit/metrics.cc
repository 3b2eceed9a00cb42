#include "audit/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <mutex>

#include "core/check.h"
#include "core/utf8.h"

namespace ztslm::audit {
namespace {

std::atomic<size_t> g_next_shard{0};

bool valid_name(std::string_view n, bool allow_colon) {
  if (n.empty()) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                       (allow_colon && c == ':');
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

// Label values must be UTF-8 in the exposition; replace anything else.
std::string to_utf8(std::string_view v) {
  if (is_valid_utf8(v)) return std::string(v);
  std::string out;
  for (size_t pos = 0; pos < v.size();) {
    char32_t cp = 0;
    size_t len = 1;
    if (decode_utf8(v, pos, &cp, &len)) {
      out.append(v.substr(pos, len));
    } else {
      out.append("\xEF\xBF\xBD");
    }
    pos += len;
  }
  return out;
}

std::string escape_help(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out.append("\\\\");
    else if (c == '\n') out.append("\\n");
    else out.push_back(c);
  }
  return out;
}

// {a="x",b="y"} with an optional extra label (le for buckets); "" when there are none.
std::string label_block(const std::vector<std::string>& names,
                        const std::vector<std::string>& values, std::string_view extra_name = {},
                        std::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty()) return std::string();
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.append(names[i]).append("=\"").append(escape_label_value(values[i])).push_back('"');
  }
  if (!extra_name.empty()) {
    if (!names.empty()) out.push_back(',');
    out.append(extra_name).append("=\"").append(extra_value).push_back('"');
  }
  out.push_back('}');
  return out;
}

const char* type_name(MetricType t) {
  switch (t) {
    case MetricType::kCounter: return "counter";
    case MetricType::kGauge: return "gauge";
    case MetricType::kHistogram: return "histogram";
  }
  return "untyped";
}

}  // namespace

size_t metrics_shard() {
  thread_local const size_t shard = g_next_shard.fetch_add(1, std::memory_order_relaxed) % kShards;
  return shard;
}

uint64_t Counter::value() const {
  uint64_t total = 0;
  for (const Cell& c : cells_) total += c.v.load(std::memory_order_relaxed);
  return total;
}

Histogram::Histogram(std::span<const double> bounds) : bounds_(bounds.begin(), bounds.end()) {
  ZTSLM_CHECK(std::is_sorted(bounds_.begin(), bounds_.end()) &&
              std::adjacent_find(bounds_.begin(), bounds_.end()) == bounds_.end());
  // Padded to whole cache lines so that shards never share one.
  const size_t n = (bounds_.size() + 1 + 7) / 8 * 8;
  for (Shard& s : shards_) {
    s.counts.reset(new std::atomic<uint64_t>[n]);
    for (size_t i = 0; i < n; ++i) s.counts[i].store(0, std::memory_order_relaxed);
  }
}

void Histogram::observe(double v) {
  // First bucket whose upper bound is >= v (Prometheus buckets are "le").
  const size_t b = static_cast<size_t>(
      std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  Shard& s = shards_[metrics_shard()];
  s.counts[b].fetch_add(1, std::memory_order_relaxed);
  s.sum.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot snap;
  snap.bounds = bounds_;
  snap.counts.assign(bounds_.size() + 1, 0);
  for (const Shard& s : shards_) {
    for (size_t i = 0; i < snap.counts.size(); ++i) {
      snap.counts[i] += s.counts[i].load(std::memory_order_relaxed);
    }
    snap.sum += s.sum.load(std::memory_order_relaxed);
  }
  for (uint64_t c : snap.counts) snap.count += c;
  return snap;
}

double Histogram::Snapshot::quantile(double q) const {
  if (count == 0 || bounds.empty()) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const double rank = q * static_cast<double>(count);
  uint64_t below = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const uint64_t in_bucket = counts[i];
    if (static_cast<double>(below + in_bucket) >= rank && in_bucket > 0) {
      if (i == bounds.size()) return bounds.back();
      const double lo = i == 0 ? std::min(0.0, bounds[0]) : bounds[i - 1];
      const double hi = bounds[i];
      const double frac = (rank - static_cast<double>(below)) / static_cast<double>(in_bucket);
      return lo + (hi - lo) * std::clamp(frac, 0.0, 1.0);
    }
    below += in_bucket;
  }
  return bounds.back();
}

template <typename M>
Family<M>::Family(std::string name, std::string help, std::vector<std::string> label_names,
                  std::vector<double> bounds, size_t max_series)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      bounds_(std::move(bounds)),
      max_series_(std::max<size_t>(max_series, 1)) {}

template <typename M>
std::unique_ptr<M> Family<M>::make() const {
  if constexpr (std::is_same_v<M, Histogram>) {
    return std::make_unique<Histogram>(bounds_);
  } else {
    return std::make_unique<M>();
  }
}

template <typename M>
M& Family<M>::with(std::initializer_list<std::string_view> values) {
  std::vector<std::string> key;
  key.reserve(values.size());
  for (std::string_view v : values) key.emplace_back(v);
  return find_or_add(std::move(key));
}

template <typename M>
M& Family<M>::with(std::span<const std::string> values) {
  return find_or_add(std::vector<std::string>(values.begin(), values.end()));
}

template <typename M>
M& Family<M>::find_or_add(std::vector<std::string> key) {
  ZTSLM_CHECK(key.size() == label_names_.size());
  {
    std::shared_lock lk(mu_);
    auto it = series_.find(key);
    if (it != series_.end()) return *it->second;
  }
  for (std::string& v : key) v = to_utf8(v);
  std::unique_lock lk(mu_);
  auto it = series_.find(key);
  if (it != series_.end()) return *it->second;
  // SECURITY: label values can come from requests; a cap keeps memory and scrape size bounded.
  if (series_.size() >= max_series_) {
    key.assign(label_names_.size(), "__overflow__");
    it = series_.find(key);
    if (it != series_.end()) return *it->second;
  }
  auto [pos, inserted] = series_.emplace(std::move(key), make());
  (void)inserted;
  return *pos->second;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

void Registry::check_new_name(const std::string& name, const std::vector<std::string>& labels,
                              bool histogram) const {
  ZTSLM_CHECK(valid_name(name, true));
  for (const std::string& l : labels) {
    ZTSLM_CHECK(valid_name(l, false) && l.rfind("__", 0) != 0);
    ZTSLM_CHECK(!(histogram && l == "le"));
  }
  for (const auto& f : counters_) ZTSLM_CHECK(f->name() != name);
  for (const auto& f : gauges_) ZTSLM_CHECK(f->name() != name);
  for (const auto& f : histograms_) ZTSLM_CHECK(f->name() != name);
}

CounterFamily& Registry::counter(std::string name, std::string help,
                                 std::vector<std::string> label_names, size_t max_series) {
  std::unique_lock lk(mu_);
  check_new_name(name, label_names, false);
  const bool unlabelled = label_names.empty();
  counters_.emplace_back(new CounterFamily(std::move(name), std::move(help),
                                           std::move(label_names), {}, max_series));
  entries_.push_back({MetricType::kCounter, counters_.back().get()});
  if (unlabelled) counters_.back()->get();  // an unlabelled metric is exposed from the start
  return *counters_.back();
}

GaugeFamily& Registry::gauge(std::string name, std::string help,
                             std::vector<std::string> label_names, size_t max_series) {
  std::unique_lock lk(mu_);
  check_new_name(name, label_names, false);
  const bool unlabelled = label_names.empty();
  gauges_.emplace_back(new GaugeFamily(std::move(name), std::move(help), std::move(label_names),
                                       {}, max_series));
  entries_.push_back({MetricType::kGauge, gauges_.back().get()});
  if (unlabelled) gauges_.back()->get();
  return *gauges_.back();
}

HistogramFamily& Registry::histogram(std::string name, std::string help,
                                     std::vector<double> bounds,
                                     std::vector<std::string> label_names, size_t max_series) {
  std::unique_lock lk(mu_);
  check_new_name(name, label_names, true);
  ZTSLM_CHECK(!bounds.empty() && std::is_sorted(bounds.begin(), bounds.end()));
  const bool unlabelled = label_names.empty();
  histograms_.emplace_back(new HistogramFamily(std::move(name), std::move(help),
                                               std::move(label_names), std::move(bounds),
                                               max_series));
  entries_.push_back({MetricType::kHistogram, histograms_.back().get()});
  if (unlabelled) histograms_.back()->get();
  return *histograms_.back();
}

std::string Registry::render() const {
  std::shared_lock lk(mu_);
  std::string out;
  out.reserve(4096);
  auto header = [&](const std::string& name, const std::string& help, MetricType t) {
    out.append("# HELP ").append(name).push_back(' ');
    out.append(escape_help(help)).push_back('\n');
    out.append("# TYPE ").append(name).push_back(' ');
    out.append(type_name(t)).push_back('\n');
  };
  for (const Entry& e : entries_) {
    switch (e.type) {
      case MetricType::kCounter: {
        const auto& f = *static_cast<const CounterFamily*>(e.family);
        header(f.name_, f.help_, e.type);
        std::shared_lock fl(f.mu_);
        for (const auto& [values, c] : f.series_) {
          out.append(f.name_).append(label_block(f.label_names_, values)).push_back(' ');
          out.append(std::to_string(c->value())).push_back('\n');
        }
        break;
      }
      case MetricType::kGauge: {
        const auto& f = *static_cast<const GaugeFamily*>(e.family);
        header(f.name_, f.help_, e.type);
        std::shared_lock fl(f.mu_);
        for (const auto& [values, g] : f.series_) {
          out.append(f.name_).append(label_block(f.label_names_, values)).push_back(' ');
          out.append(std::to_string(g->value())).push_back('\n');
        }
        break;
      }
      case MetricType::kHistogram: {
        const auto& f = *static_cast<const HistogramFamily*>(e.family);
        header(f.name_, f.help_, e.type);
        std::shared_lock fl(f.mu_);
        for (const auto& [values, h] : f.series_) {
          const Histogram::Snapshot s = h->snapshot();
          uint64_t cumulative = 0;
          for (size_t i = 0; i <= s.bounds.size(); ++i) {
            cumulative += s.counts[i];
            const std::string le =
                i < s.bounds.size() ? format_metric_value(s.bounds[i]) : std::string("+Inf");
            out.append(f.name_).append("_bucket");
            out.append(label_block(f.label_names_, values, "le", le)).push_back(' ');
            out.append(std::to_string(cumulative)).push_back('\n');
          }
          out.append(f.name_).append("_sum").append(label_block(f.label_names_, values));
          out.append(" ").append(format_metric_value(s.sum)).push_back('\n');
          out.append(f.name_).append("_count").append(label_block(f.label_names_, values));
          out.append(" ").append(std::to_string(cumulative)).push_back('\n');
        }
        break;
      }
    }
  }
  return out;
}

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    switch (c) {
      case '\\': out.append("\\\\"); break;
      case '"': out.append("\\\""); break;
      case '\n': out.append("\\n"); break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string format_metric_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip form
  return std::string(buf, r.ptr);
}

}  // namespace ztslm::audit
