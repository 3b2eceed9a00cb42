// Status: a closed error code plus a short lowercase message (STYLE.md §4).
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "core/format.h"

namespace ztslm {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument,     // caller bug
  kMalformed,           // untrusted bytes do not parse
  kOutOfRange,
  kResourceExhausted,   // a limit or quota
  kUnauthenticated,
  kPermissionDenied,
  kNotFound,
  kFailedPrecondition,
  kDeadlineExceeded,
  kCancelled,
  kUnavailable,
  kInternal,
};

// Returns the enumerator name without the leading "k" ("Malformed").
std::string_view status_code_name(StatusCode code);

class [[nodiscard]] Status final {
 public:
  Status() = default;  // ok
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok_status() { return Status(); }
#define ZTSLM_STATUS_CTOR(fn, code_name)                                    \
  template <typename... Args>                                               \
  static Status fn(std::string_view fmt, const Args&... args) {             \
    return Status(StatusCode::code_name, str_format(fmt, args...));         \
  }
  ZTSLM_STATUS_CTOR(invalid_argument, kInvalidArgument)
  ZTSLM_STATUS_CTOR(malformed, kMalformed)
  ZTSLM_STATUS_CTOR(out_of_range, kOutOfRange)
  ZTSLM_STATUS_CTOR(resource_exhausted, kResourceExhausted)
  ZTSLM_STATUS_CTOR(unauthenticated, kUnauthenticated)
  ZTSLM_STATUS_CTOR(permission_denied, kPermissionDenied)
  ZTSLM_STATUS_CTOR(not_found, kNotFound)
  ZTSLM_STATUS_CTOR(failed_precondition, kFailedPrecondition)
  ZTSLM_STATUS_CTOR(deadline_exceeded, kDeadlineExceeded)
  ZTSLM_STATUS_CTOR(cancelled, kCancelled)
  ZTSLM_STATUS_CTOR(unavailable, kUnavailable)
  ZTSLM_STATUS_CTOR(internal, kInternal)
#undef ZTSLM_STATUS_CTOR

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "Malformed: tensor count 70000 exceeds limit 65536".
  std::string to_string() const;

  // Returns a copy whose message is "`prefix`: message" (adds context while propagating).
  Status with_context(std::string_view prefix) const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

}  // namespace ztslm
