// Result<T>: a value or a non-ok Status. Mirrors std::expected (has_value, value, error,
// operator*, operator->) so it can become an alias under C++23. Functions without a value
// return Status.
#pragma once

#include <type_traits>
#include <utility>
#include <variant>

#include "core/check.h"
#include "core/status.h"

namespace ztslm {

template <typename T>
class [[nodiscard]] Result final {
  static_assert(!std::is_same_v<std::remove_cv_t<T>, Status>, "use Status");
  static_assert(!std::is_reference_v<T>, "Result of a reference");

 public:
  // Implicit from a value, and from a non-ok Status (an ok Status here is a bug).
  Result(const T& value) : v_(value) {}                     // NOLINT(google-explicit-constructor)
  Result(T&& value) : v_(std::move(value)) {}               // NOLINT(google-explicit-constructor)
  template <typename U>
    requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::decay_t<U>, Status> &&
             !std::is_same_v<std::decay_t<U>, Result> && !std::is_same_v<std::decay_t<U>, T>)
  Result(U&& value) : v_(std::in_place_index<0>, std::forward<U>(value)) {}  // NOLINT
  Result(Status status) : v_(std::move(status)) {           // NOLINT(google-explicit-constructor)
    ZTSLM_CHECK(!std::get<1>(v_).ok());
  }

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & {
    ZTSLM_CHECK(has_value());
    return std::get<0>(v_);
  }
  const T& value() const& {
    ZTSLM_CHECK(has_value());
    return std::get<0>(v_);
  }
  T&& value() && {
    ZTSLM_CHECK(has_value());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // The error; Status() (ok) when there is a value.
  Status error() const { return has_value() ? Status() : std::get<1>(v_); }
  Status status() const { return error(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace ztslm

#define ZTSLM_CONCAT_INNER(a, b) a##b
#define ZTSLM_CONCAT(a, b) ZTSLM_CONCAT_INNER(a, b)

// Evaluates `expr` (a Status or Result); returns its error from the enclosing function.
#define ZTSLM_TRY(expr)                                              \
  do {                                                               \
    auto&& ztslm_try_value_ = (expr);                                \
    if (!::ztslm::internal_ok(ztslm_try_value_)) [[unlikely]]        \
      return ::ztslm::internal_error(ztslm_try_value_);              \
  } while (0)

// `lhs` = value of the Result `rexpr`, or return its error. `lhs` may declare a variable.
#define ZTSLM_ASSIGN_OR_RETURN(lhs, rexpr) \
  ZTSLM_ASSIGN_OR_RETURN_IMPL(ZTSLM_CONCAT(ztslm_result_, __LINE__), lhs, rexpr)
#define ZTSLM_ASSIGN_OR_RETURN_IMPL(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                \
  if (!tmp.has_value()) [[unlikely]]                 \
    return tmp.error();                              \
  lhs = std::move(tmp).value()

namespace ztslm {
inline bool internal_ok(const Status& s) { return s.ok(); }
template <typename T>
bool internal_ok(const Result<T>& r) {
  return r.has_value();
}
inline Status internal_error(const Status& s) { return s; }
template <typename T>
Status internal_error(const Result<T>& r) {
  return r.error();
}
}  // namespace ztslm
