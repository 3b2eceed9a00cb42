#include "engine/sampler/stop_matcher.h"

#include <algorithm>

#include "core/utf8.h"

namespace ztslm::engine {

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  for (const std::string& s : stops_) max_stop_bytes_ = std::max(max_stop_bytes_, s.size());
}

Result<StopMatcher> StopMatcher::create(std::span<const std::string> stops) {
  for (size_t i = 0; i < stops.size(); ++i) {
    if (stops[i].empty()) return Status::invalid_argument("stop string {} is empty", i);
  }
  return StopMatcher(std::vector<std::string>(stops.begin(), stops.end()));
}

StopMatcher::Output StopMatcher::feed(std::string_view chunk) {
  Output out;
  if (stopped_) {
    out.stopped = true;
    return out;
  }
  held_.append(chunk);

  // Leftmost complete stop string wins: generation ends as soon as one has appeared.
  size_t stop_at = std::string::npos;
  for (const std::string& s : stops_) stop_at = std::min(stop_at, held_.find(s));
  if (stop_at != std::string::npos) {
    out.text = held_.substr(0, stop_at);
    out.stopped = true;
    stopped_ = true;
    held_.clear();
    return out;
  }

  // Hold back the longest suffix that is a proper prefix of some stop string (no stop string
  // occurs in held_, so such a suffix is shorter than the stop string).
  size_t hold = 0;
  const size_t max_len = std::min(held_.size(), max_stop_bytes_ == 0 ? 0 : max_stop_bytes_ - 1);
  for (size_t len = max_len; len > 0 && hold == 0; --len) {
    const std::string_view tail = std::string_view(held_).substr(held_.size() - len);
    for (const std::string& s : stops_) {
      if (s.size() > len && std::string_view(s).substr(0, len) == tail) {
        hold = len;
        break;
      }
    }
  }
  // Never split a UTF-8 sequence between two emitted pieces.
  const size_t emit_end = held_.size() - hold;
  const size_t partial = utf8_incomplete_suffix(std::string_view(held_).substr(0, emit_end));
  const size_t n_emit = emit_end - partial;
  out.text = held_.substr(0, n_emit);
  held_.erase(0, n_emit);
  return out;
}

std::string StopMatcher::finish() {
  std::string rest;
  rest.swap(held_);
  return rest;
}

}  // namespace ztslm::engine
