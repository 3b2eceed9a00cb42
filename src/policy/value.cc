#include "policy/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace ztslm::policy {
namespace {

const std::string& empty_string() {
  static const std::string* s = new std::string();
  return *s;
}
const Array& empty_items() {
  static const Array* a = new Array();
  return *a;
}
const Entries& empty_entries() {
  static const Entries* e = new Entries();
  return *e;
}

int kind_rank(Kind k) {
  switch (k) {
    case Kind::kUndefined: return -1;
    case Kind::kNull: return 0;
    case Kind::kBool: return 1;
    case Kind::kNumber: return 2;
    case Kind::kString: return 3;
    case Kind::kArray: return 4;
    case Kind::kObject: return 5;
    case Kind::kSet: return 6;
  }
  return 7;
}

int compare_numbers(const Value& a, const Value& b) {
  if (a.is_int() && b.is_int()) {
    return a.as_int() < b.as_int() ? -1 : (a.as_int() > b.as_int() ? 1 : 0);
  }
  if (a.is_int() || b.is_int()) {
    // Mixed: compare an exact integer with a double without losing precision.
    const bool a_int = a.is_int();
    const int64_t i = a_int ? a.as_int() : b.as_int();
    const double d = a_int ? b.as_double() : a.as_double();
    int r;
    if (std::isnan(d)) {
      r = -1;
    } else if (d >= 9.3e18) {
      r = -1;
    } else if (d <= -9.3e18) {
      r = 1;
    } else {
      const double fl = std::floor(d);
      const auto di = static_cast<int64_t>(fl);
      if (i < di) {
        r = -1;
      } else if (i > di) {
        r = 1;
      } else {
        r = fl == d ? 0 : -1;
      }
    }
    return a_int ? r : -r;
  }
  const double x = a.as_double(), y = b.as_double();
  return x < y ? -1 : (x > y ? 1 : 0);
}

}  // namespace

Value Value::null() {
  Value v;
  v.kind_ = Kind::kNull;
  return v;
}
Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.b_ = b;
  return v;
}
Value Value::integer(int64_t i) {
  Value v;
  v.kind_ = Kind::kNumber;
  v.i_ = i;
  return v;
}
Value Value::number(double d) {
  if (std::isfinite(d) && d == std::floor(d) && d >= -9.2e18 && d <= 9.2e18) {
    return integer(static_cast<int64_t>(d));
  }
  Value v;
  v.kind_ = Kind::kNumber;
  v.is_int_ = false;
  v.d_ = d;
  return v;
}
Value Value::string(std::string s) {
  Value v;
  v.kind_ = Kind::kString;
  v.p_ = std::make_shared<const std::string>(std::move(s));
  return v;
}
Value Value::array(Array items) {
  Value v;
  v.kind_ = Kind::kArray;
  if (!items.empty()) v.p_ = std::make_shared<const Array>(std::move(items));
  return v;
}
void sort_unique(SetItems& items) {
  std::sort(items.begin(), items.end(), [](const Value& a, const Value& b) { return a < b; });
  items.erase(std::unique(items.begin(), items.end()), items.end());
}
Value Value::set(SetItems items) {
  sort_unique(items);
  return set_sorted(std::move(items));
}
Value Value::set_sorted(SetItems items) {
  Value v;
  v.kind_ = Kind::kSet;
  if (!items.empty()) v.p_ = std::make_shared<const SetItems>(std::move(items));
  return v;
}
Value Value::object(Entries entries) {
  std::stable_sort(entries.begin(), entries.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  // Keep the last of equal keys.
  Entries out;
  out.reserve(entries.size());
  for (auto& e : entries) {
    if (!out.empty() && out.back().first == e.first) {
      out.back().second = std::move(e.second);
    } else {
      out.push_back(std::move(e));
    }
  }
  return object_sorted(std::move(out));
}
Value Value::object_sorted(Entries entries) {
  Value v;
  v.kind_ = Kind::kObject;
  if (!entries.empty()) v.p_ = std::make_shared<const Entries>(std::move(entries));
  return v;
}
Value Value::empty_object() { return object_sorted({}); }
Value Value::empty_set() { return set_sorted({}); }
Value Value::empty_array() { return array({}); }

const std::string& Value::as_string() const {
  if (kind_ != Kind::kString || !p_) return empty_string();
  return *static_cast<const std::string*>(p_.get());
}
const Array& Value::as_array() const {
  if ((kind_ != Kind::kArray && kind_ != Kind::kSet) || !p_) return empty_items();
  return *static_cast<const Array*>(p_.get());
}
const SetItems& Value::items() const { return as_array(); }
const Entries& Value::entries() const {
  if (kind_ != Kind::kObject || !p_) return empty_entries();
  return *static_cast<const Entries*>(p_.get());
}
size_t Value::size() const {
  switch (kind_) {
    case Kind::kString: return as_string().size();
    case Kind::kArray:
    case Kind::kSet: return as_array().size();
    case Kind::kObject: return entries().size();
    default: return 0;
  }
}

Value Value::get(const Value& key) const {
  if (key.kind_ == Kind::kString) return get(std::string_view(key.as_string()));
  const Entries& e = entries();
  auto it = std::lower_bound(e.begin(), e.end(), key,
                             [](const auto& a, const Value& k) { return compare(a.first, k) < 0; });
  if (it != e.end() && it->first == key) return it->second;
  return Value();
}
Value Value::get(std::string_view key) const {
  const Entries& e = entries();
  // Strings sort after null/bool/number and before collections; compare within strings only.
  size_t lo = 0, hi = e.size();
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    const Value& k = e[mid].first;
    bool less;
    if (k.kind_ != Kind::kString) {
      less = kind_rank(k.kind_) < kind_rank(Kind::kString);
    } else {
      const std::string& ks = *static_cast<const std::string*>(k.p_.get());
      less = std::string_view(ks) < key;
    }
    if (less) lo = mid + 1;
    else hi = mid;
  }
  if (lo < e.size() && e[lo].first.kind_ == Kind::kString &&
      *static_cast<const std::string*>(e[lo].first.p_.get()) == key) {
    return e[lo].second;
  }
  return Value();
}
bool Value::contains(const Value& v) const {
  const SetItems& s = items();
  return std::binary_search(s.begin(), s.end(), v,
                            [](const Value& a, const Value& b) { return compare(a, b) < 0; });
}
Value Value::index(const Value& key) const {
  switch (kind_) {
    case Kind::kArray: {
      if (!key.is_int()) return Value();
      const Array& a = as_array();
      if (key.as_int() < 0 || static_cast<uint64_t>(key.as_int()) >= a.size()) return Value();
      return a[static_cast<size_t>(key.as_int())];
    }
    case Kind::kObject: return key.is_string() ? get(std::string_view(key.as_string())) : get(key);
    case Kind::kSet: return contains(key) ? key : Value();
    default: return Value();
  }
}

std::string_view Value::type_name() const {
  switch (kind_) {
    case Kind::kNull: return "null";
    case Kind::kBool: return "boolean";
    case Kind::kNumber: return "number";
    case Kind::kString: return "string";
    case Kind::kArray: return "array";
    case Kind::kSet: return "set";
    case Kind::kObject: return "object";
    case Kind::kUndefined: break;
  }
  return "undefined";
}

int compare(const Value& a, const Value& b) {
  if (a.kind_ != b.kind_) return kind_rank(a.kind_) < kind_rank(b.kind_) ? -1 : 1;
  switch (a.kind_) {
    case Kind::kUndefined:
    case Kind::kNull: return 0;
    case Kind::kBool: return a.b_ == b.b_ ? 0 : (a.b_ ? 1 : -1);
    case Kind::kNumber: return compare_numbers(a, b);
    case Kind::kString: {
      if (a.p_ == b.p_) return 0;
      const int r = a.as_string().compare(b.as_string());
      return r < 0 ? -1 : (r > 0 ? 1 : 0);
    }
    case Kind::kArray:
    case Kind::kSet: {
      if (a.p_ == b.p_) return 0;
      const Array& x = a.as_array();
      const Array& y = b.as_array();
      const size_t n = std::min(x.size(), y.size());
      for (size_t i = 0; i < n; ++i) {
        const int r = compare(x[i], y[i]);
        if (r != 0) return r;
      }
      return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
    }
    case Kind::kObject: {
      if (a.p_ == b.p_) return 0;
      const Entries& x = a.entries();
      const Entries& y = b.entries();
      const size_t n = std::min(x.size(), y.size());
      for (size_t i = 0; i < n; ++i) {
        int r = compare(x[i].first, y[i].first);
        if (r != 0) return r;
        r = compare(x[i].second, y[i].second);
        if (r != 0) return r;
      }
      return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
    }
  }
  return 0;
}

size_t Value::approx_bytes() const {
  size_t n = sizeof(Value);
  switch (kind_) {
    case Kind::kString: n += as_string().size(); break;
    case Kind::kArray:
    case Kind::kSet:
      for (const Value& v : as_array()) n += v.approx_bytes();
      break;
    case Kind::kObject:
      for (const auto& [k, v] : entries()) n += k.approx_bytes() + v.approx_bytes();
      break;
    default: break;
  }
  return n;
}

void append_number(std::string& out, const Value& v) {
  char buf[64];
  if (v.is_int()) {
    auto r = std::to_chars(buf, buf + sizeof buf, v.as_int());
    out.append(buf, r.ptr);
    return;
  }
  const double d = v.as_double();
  if (!std::isfinite(d)) {
    out.append(std::isnan(d) ? "NaN" : (d > 0 ? "+Inf" : "-Inf"));
    return;
  }
  // Go prints large magnitudes in exponent form ("1e+21"); shortest round-trip otherwise.
  const double mag = std::fabs(d);
  std::to_chars_result r;
  if (mag != 0 && (mag < 1e-6 || mag >= 1e21)) {
    r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  } else {
    r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed);
  }
  out.append(buf, r.ptr);
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      default:
        if (c < 0x20) {
          out.append("\\u00");
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

namespace {

void append_value(std::string& out, const Value& v, bool rego) {
  switch (v.kind()) {
    case Kind::kUndefined: break;
    case Kind::kNull: out.append("null"); break;
    case Kind::kBool: out.append(v.as_bool() ? "true" : "false"); break;
    case Kind::kNumber: append_number(out, v); break;
    case Kind::kString: append_json_string(out, v.as_string()); break;
    case Kind::kArray:
    case Kind::kSet: {
      if (rego && v.is_set() && v.size() == 0) {
        out.append("set()");
        break;
      }
      const bool braces = rego && v.is_set();
      out.push_back(braces ? '{' : '[');
      bool first = true;
      for (const Value& x : v.as_array()) {
        if (!first) out.append(rego ? ", " : ",");
        first = false;
        append_value(out, x, rego);
      }
      out.push_back(braces ? '}' : ']');
      break;
    }
    case Kind::kObject: {
      out.push_back('{');
      bool first = true;
      for (const auto& [k, x] : v.entries()) {
        if (!first) out.append(rego ? ", " : ",");
        first = false;
        if (!rego && !k.is_string()) {
          std::string key;
          append_value(key, k, false);
          append_json_string(out, key);
        } else {
          append_value(out, k, rego);
        }
        out.append(rego ? ": " : ":");
        append_value(out, x, rego);
      }
      out.push_back('}');
      break;
    }
  }
}

}  // namespace

std::string to_rego(const Value& v) {
  std::string out;
  append_value(out, v, true);
  return out;
}
std::string to_json(const Value& v) {
  std::string out;
  append_value(out, v, false);
  return out;
}

}  // namespace ztslm::policy
