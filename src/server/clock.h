// Time source of the gateway, injected so that tests control expiry without sleeping.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace ztslm::server {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic milliseconds (expiry, timeouts).
  virtual int64_t now_ms() const = 0;
  // Wall-clock seconds since the Unix epoch (OpenAI "created", key expiry, audit time).
  virtual int64_t unix_seconds() const = 0;
};

// The real clocks (std::chrono::steady_clock and system_clock).
class SystemClock final : public Clock {
 public:
  int64_t now_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch()).count();
  }
  int64_t unix_seconds() const override {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch()).count();
  }
};

// A clock the test moves by hand.
class ManualClock final : public Clock {
 public:
  int64_t now_ms() const override { return ms_.load(); }
  int64_t unix_seconds() const override { return 1700000000 + ms_.load() / 1000; }
  void advance_ms(int64_t d) { ms_.fetch_add(d); }

 private:
  std::atomic<int64_t> ms_{1000};
};

}  // namespace ztslm::server
