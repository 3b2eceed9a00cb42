#include "policy/json.h"

#include <charconv>
#include <cstdlib>
#include <string>

#include "core/utf8.h"

namespace ztslm::policy {
namespace {

class JsonParser {
 public:
  JsonParser(std::string_view text, const JsonLimits& limits) : s_(text), limits_(limits) {}

  Result<Value> parse() {
    skip_ws();
    Value v;
    if (!parse_value(0, &v)) return status_;
    skip_ws();
    if (pos_ != s_.size()) {
      fail("trailing characters");
      return status_;
    }
    return v;
  }

 private:
  bool fail(std::string_view what) {
    if (status_.ok()) status_ = Status::malformed("json: {} at offset {}", what, pos_);
    return false;
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' ||
                                s_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  bool parse_value(size_t depth, Value* out) {
    if (depth > limits_.max_depth) {
      status_ = Status::resource_exhausted("json: nesting depth exceeds limit {}", limits_.max_depth);
      return false;
    }
    const char c = peek();
    if (c == '{') return parse_object(depth, out);
    if (c == '[') return parse_array(depth, out);
    if (c == '"') {
      std::string str;
      if (!parse_string(&str)) return false;
      *out = Value::string(std::move(str));
      return true;
    }
    if (c == 't' && literal("true")) return (*out = Value::boolean(true), true);
    if (c == 'f' && literal("false")) return (*out = Value::boolean(false), true);
    if (c == 'n' && literal("null")) return (*out = Value::null(), true);
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(out);
    return fail("unexpected character");
  }

  bool parse_number(Value* out) {
    const size_t start = pos_;
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
    } else if (peek() >= '1' && peek() <= '9') {
      while (peek() >= '0' && peek() <= '9') ++pos_;
    } else {
      return fail("bad number");
    }
    bool is_int = true;
    if (peek() == '.') {
      is_int = false;
      ++pos_;
      if (!(peek() >= '0' && peek() <= '9')) return fail("bad number");
      while (peek() >= '0' && peek() <= '9') ++pos_;
    }
    if (peek() == 'e' || peek() == 'E') {
      is_int = false;
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!(peek() >= '0' && peek() <= '9')) return fail("bad number");
      while (peek() >= '0' && peek() <= '9') ++pos_;
    }
    const std::string_view text = s_.substr(start, pos_ - start);
    if (is_int) {
      int64_t i = 0;
      auto r = std::from_chars(text.data(), text.data() + text.size(), i);
      if (r.ec == std::errc() && r.ptr == text.data() + text.size()) {
        *out = Value::integer(i);
        return true;
      }
    }
    const std::string copy(text);
    *out = Value::number(std::strtod(copy.c_str(), nullptr));
    return true;
  }

  bool hex4(uint32_t* cp) {
    if (pos_ + 4 > s_.size()) return false;
    uint32_t v = 0;
    for (size_t i = 0; i < 4; ++i) {
      const char h = s_[pos_ + i];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= static_cast<uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f') v |= static_cast<uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') v |= static_cast<uint32_t>(h - 'A' + 10);
      else return false;
    }
    pos_ += 4;
    *cp = v;
    return true;
  }

  bool parse_string(std::string* out) {
    ++pos_;  // opening quote
    const size_t start = pos_;
    for (;;) {
      if (pos_ >= s_.size()) return fail("unterminated string");
      const char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        break;
      }
      if (static_cast<unsigned char>(c) < 0x20) return fail("control character in string");
      if (c != '\\') {
        out->push_back(c);
        ++pos_;
        continue;
      }
      ++pos_;
      const char e = peek();
      ++pos_;
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t cp = 0;
          if (!hex4(&cp)) return fail("bad \\u escape");
          if (cp >= 0xD800 && cp < 0xDC00) {
            uint32_t lo = 0;
            if (s_.substr(pos_, 2) == "\\u") {
              pos_ += 2;
              if (!hex4(&lo)) return fail("bad \\u escape");
            }
            cp = (lo >= 0xDC00 && lo < 0xE000) ? 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                                               : 0xFFFD;
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            cp = 0xFFFD;
          }
          append_utf8(*out, static_cast<char32_t>(cp));
          break;
        }
        default: return fail("bad escape");
      }
    }
    (void)start;
    if (!is_valid_utf8(*out)) return fail("invalid utf-8 in string");
    return true;
  }

  bool parse_array(size_t depth, Value* out) {
    ++pos_;
    Array items;
    skip_ws();
    if (peek() == ']') {
      ++pos_;
      *out = Value::array(std::move(items));
      return true;
    }
    for (;;) {
      skip_ws();
      Value v;
      if (!parse_value(depth + 1, &v)) return false;
      items.push_back(std::move(v));
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ']') {
        ++pos_;
        break;
      }
      return fail("expected , or ]");
    }
    *out = Value::array(std::move(items));
    return true;
  }

  bool parse_object(size_t depth, Value* out) {
    ++pos_;
    Entries entries;
    skip_ws();
    if (peek() == '}') {
      ++pos_;
      *out = Value::empty_object();
      return true;
    }
    for (;;) {
      skip_ws();
      if (peek() != '"') return fail("expected object key");
      std::string key;
      if (!parse_string(&key)) return false;
      skip_ws();
      if (peek() != ':') return fail("expected :");
      ++pos_;
      skip_ws();
      Value v;
      if (!parse_value(depth + 1, &v)) return false;
      entries.emplace_back(Value::string(std::move(key)), std::move(v));
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') {
        ++pos_;
        break;
      }
      return fail("expected , or }");
    }
    *out = Value::object(std::move(entries));
    return true;
  }

  std::string_view s_;
  JsonLimits limits_;
  size_t pos_ = 0;
  Status status_;
};

}  // namespace

Result<Value> parse_json(std::string_view text, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return Status::resource_exhausted("json: document of {} bytes exceeds limit {}", text.size(),
                                      limits.max_bytes);
  }
  return JsonParser(text, limits).parse();
}

}  // namespace ztslm::policy
