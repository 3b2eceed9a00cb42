// StopMatcher: finds stop strings in streamed text. Fed the detokenised text chunk by chunk, it
// returns what is safe to emit now. Text that could still become the start of a stop string is
// held back until the next chunk decides it, as is an incomplete UTF-8 sequence at the end, so
// every emitted piece is whole characters and a stop string split across chunks is caught.
// Once a stop string is seen, the text before it is emitted and nothing after it ever is.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ztslm::engine {

class StopMatcher final {
 public:
  // `stops` are the request's stop strings (validated by validate_sampler_params: non-empty,
  // bounded, UTF-8); an empty list never stops. kInvalidArgument for an empty stop string.
  static Result<StopMatcher> create(std::span<const std::string> stops);

  struct Output {
    std::string text;      // safe to emit now (may be empty)
    bool stopped = false;  // a stop string was hit: end the generation, emit `text` last
  };

  // Appends `chunk` to the held text and returns what can be emitted. After a stop every call
  // returns {"", true}.
  Output feed(std::string_view chunk);

  // End of generation without a stop (EOG, max_tokens): returns the held-back text.
  std::string finish();

  bool stopped() const { return stopped_; }
  // Bytes held back at the moment (bounded by the longest stop string + 3).
  size_t held_bytes() const { return held_.size(); }

 private:
  explicit StopMatcher(std::vector<std::string> stops);

  std::vector<std::string> stops_;
  size_t max_stop_bytes_ = 0;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace ztslm::engine
