// Minimal "{}"-placeholder formatting for messages (libstdc++ 12 has no <format>).
// Each "{}" is replaced by the next argument; surplus placeholders print as "{}".
// Integers, floating point, bool, C strings, std::string and std::string_view are supported.
#pragma once

#include <charconv>
#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace ztslm {
namespace format_internal {

inline void append_arg(std::string& out, std::string_view v) { out.append(v); }
inline void append_arg(std::string& out, const char* v) { out.append(v ? v : "(null)"); }
inline void append_arg(std::string& out, const std::string& v) { out.append(v); }
inline void append_arg(std::string& out, bool v) { out.append(v ? "true" : "false"); }
inline void append_arg(std::string& out, char v) { out.push_back(v); }
template <typename T>
  requires(std::is_integral_v<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, char>)
void append_arg(std::string& out, T v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}
template <typename T>
  requires std::is_floating_point_v<T>
void append_arg(std::string& out, T v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 9);
  out.append(buf, r.ptr);
}
template <typename T>
  requires std::is_enum_v<T>
void append_arg(std::string& out, T v) {
  append_arg(out, static_cast<std::underlying_type_t<T>>(v));
}

inline void format_rest(std::string& out, std::string_view fmt) { out.append(fmt); }

template <typename First, typename... Rest>
void format_rest(std::string& out, std::string_view fmt, const First& first, const Rest&... rest) {
  const size_t pos = fmt.find("{}");
  if (pos == std::string_view::npos) {
    out.append(fmt);
    return;
  }
  out.append(fmt.substr(0, pos));
  append_arg(out, first);
  format_rest(out, fmt.substr(pos + 2), rest...);
}

}  // namespace format_internal

// Returns `fmt` with each "{}" replaced by the next of `args`.
template <typename... Args>
std::string str_format(std::string_view fmt, const Args&... args) {
  std::string out;
  out.reserve(fmt.size() + 16 * sizeof...(args));
  format_internal::format_rest(out, fmt, args...);
  return out;
}

}  // namespace ztslm
