// The built-in functions. Each checks its operand types (eval_type_error) and values
// (eval_builtin_error); sizes derived from operands are checked against the evaluation's
// memory budget before anything is allocated.
//
// SECURITY: nothing here opens files or sockets; time.now_ns reads the injected clock.
#include "policy/internal/builtins.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>

#include "core/utf8.h"
#include "policy/internal/builtins_util.h"
#include "policy/json.h"
#include "policy/policy.h"
#include "policy/regex.h"

namespace ztslm::policy {

Status type_error(std::string_view fn, std::string_view what) {
  return Status::invalid_argument("eval_type_error: {}: {}", fn, what);
}
Status builtin_error(std::string_view fn, std::string_view what) {
  return Status::invalid_argument("eval_builtin_error: {}: {}", fn, what);
}

namespace {

using A = const Value*;

std::string ordinal_type_msg(size_t i, std::string_view want, const Value& got) {
  return "operand " + std::to_string(i + 1) + " must be " + std::string(want) + " but got " +
         std::string(got.type_name());
}

#define WANT(i, pred, tname)                                                \
  do {                                                                      \
    if (!(args[i].pred())) return type_error(kFn, ordinal_type_msg(i, tname, args[i])); \
  } while (0)

Status need_bytes(BuiltinCtx& ctx, std::string_view fn, size_t bytes) {
  if (ctx.bytes_used == nullptr) return Status();
  if (bytes > ctx.max_bytes || *ctx.bytes_used + bytes > ctx.max_bytes) {
    return Status::resource_exhausted("{}: result of {} bytes exceeds the evaluation memory budget",
                                      fn, bytes);
  }
  return Status();
}

// ---- numbers ----

Value num_add(const Value& a, const Value& b) {
  int64_t r = 0;
  if (a.is_int() && b.is_int() && !__builtin_add_overflow(a.as_int(), b.as_int(), &r)) {
    return Value::integer(r);
  }
  return Value::number(a.as_double() + b.as_double());
}
Value num_sub(const Value& a, const Value& b) {
  int64_t r = 0;
  if (a.is_int() && b.is_int() && !__builtin_sub_overflow(a.as_int(), b.as_int(), &r)) {
    return Value::integer(r);
  }
  return Value::number(a.as_double() - b.as_double());
}
Value num_mul(const Value& a, const Value& b) {
  int64_t r = 0;
  if (a.is_int() && b.is_int() && !__builtin_mul_overflow(a.as_int(), b.as_int(), &r)) {
    return Value::integer(r);
  }
  return Value::number(a.as_double() * b.as_double());
}

bool as_int_exact(const Value& v, int64_t* out) {
  if (!v.is_number()) return false;
  if (v.is_int()) {
    *out = v.as_int();
    return true;
  }
  return false;
}

// ---- strings ----

std::vector<char32_t> runes(std::string_view s) {
  std::vector<char32_t> out;
  size_t i = 0;
  while (i < s.size()) {
    char32_t cp = 0;
    size_t len = 1;
    if (!decode_utf8(s, i, &cp, &len)) cp = 0xFFFD;
    out.push_back(cp);
    i += len;
  }
  return out;
}
std::string from_runes(const std::vector<char32_t>& r, size_t from, size_t to) {
  std::string out;
  for (size_t i = from; i < to && i < r.size(); ++i) append_utf8(out, r[i]);
  return out;
}
size_t rune_count(std::string_view s) {
  size_t n = 0;
  size_t i = 0;
  while (i < s.size()) {
    char32_t cp = 0;
    size_t len = 1;
    decode_utf8(s, i, &cp, &len);
    i += len;
    ++n;
  }
  return n;
}

std::string ascii_lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return s;
}
std::string ascii_upper(std::string s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
  }
  return s;
}

bool in_cutset(char32_t c, const std::vector<char32_t>& cut) {
  return std::find(cut.begin(), cut.end(), c) != cut.end();
}

// Collects strings from an array or set operand.
bool string_items(const Value& v, std::vector<std::string>* out) {
  if (!v.is_array() && !v.is_set()) return false;
  for (const Value& x : v.as_array()) {
    if (!x.is_string()) return false;
    out->push_back(x.as_string());
  }
  return true;
}

}  // namespace

// ---- sprintf (Go fmt subset) ----
namespace {

void pad(std::string& out, const std::string& s, int width, bool left, char fill) {
  const int n = static_cast<int>(rune_count(s));
  if (width > n && !left) out.append(static_cast<size_t>(width - n), fill);
  out += s;
  if (width > n && left) out.append(static_cast<size_t>(width - n), ' ');
}

std::string format_v(const Value& v) {
  if (v.is_string()) return v.as_string();
  return to_rego(v);
}

Status do_sprintf(std::string_view fmt, const Array& args, std::string* out) {
  size_t ai = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    const char c = fmt[i];
    if (c != '%') {
      out->push_back(c);
      continue;
    }
    ++i;
    if (i >= fmt.size()) {
      out->append("%!(NOVERB)");
      break;
    }
    bool left = false, plus = false, zero = false, space = false, sharp = false;
    for (; i < fmt.size(); ++i) {
      const char f = fmt[i];
      if (f == '-') left = true;
      else if (f == '+') plus = true;
      else if (f == '0') zero = true;
      else if (f == ' ') space = true;
      else if (f == '#') sharp = true;
      else break;
    }
    int width = -1, prec = -1;
    while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9') {
      width = (width < 0 ? 0 : width) * 10 + (fmt[i] - '0');
      if (width > 4096) return builtin_error("sprintf", "width exceeds 4096");
      ++i;
    }
    if (i < fmt.size() && fmt[i] == '.') {
      ++i;
      prec = 0;
      while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9') {
        prec = prec * 10 + (fmt[i] - '0');
        if (prec > 1000) return builtin_error("sprintf", "precision exceeds 1000");
        ++i;
      }
    }
    if (i >= fmt.size()) {
      out->append("%!(NOVERB)");
      break;
    }
    const char verb = fmt[i];
    if (verb == '%') {
      out->push_back('%');
      continue;
    }
    if (ai >= args.size()) {
      out->append("%!");
      out->push_back(verb);
      out->append("(MISSING)");
      continue;
    }
    const Value& a = args[ai++];
    std::string s;
    const char fill = zero && !left ? '0' : ' ';
    switch (verb) {
      case 'v':
        s = format_v(a);
        break;
      case 's':
        s = format_v(a);
        if (prec >= 0) {
          auto r = runes(s);
          if (static_cast<size_t>(prec) < r.size()) s = from_runes(r, 0, static_cast<size_t>(prec));
        }
        break;
      case 'q':
        if (a.is_string()) {
          append_json_string(s, a.as_string());
        } else {
          s = "%!q(" + format_v(a) + ")";
        }
        break;
      case 't':
        if (a.is_bool()) s = a.as_bool() ? "true" : "false";
        else s = "%!t(" + format_v(a) + ")";
        break;
      case 'd':
      case 'x':
      case 'X':
      case 'o':
      case 'b': {
        if (verb == 'x' || verb == 'X') {
          if (a.is_string()) {
            static constexpr char kHex[] = "0123456789abcdef";
            static constexpr char kHexU[] = "0123456789ABCDEF";
            for (unsigned char ch : a.as_string()) {
              s.push_back((verb == 'x' ? kHex : kHexU)[ch >> 4]);
              s.push_back((verb == 'x' ? kHex : kHexU)[ch & 15]);
            }
            break;
          }
        }
        if (!a.is_number()) {
          s = std::string("%!") + verb + "(" + format_v(a) + ")";
          break;
        }
        if (!a.is_int()) {
          if (verb == 'd') {
            // Go prints big.Float values with %d as their integer text when integral.
            s = "%!d(float64=";
            append_number(s, a);
            s += ")";
            break;
          }
          s = std::string("%!") + verb + "(" + format_v(a) + ")";
          break;
        }
        const int64_t x = a.as_int();
        const int base = verb == 'd' ? 10 : (verb == 'o' ? 8 : (verb == 'b' ? 2 : 16));
        char buf[80];
        const uint64_t mag = x < 0 ? 0 - static_cast<uint64_t>(x) : static_cast<uint64_t>(x);
        auto r = std::to_chars(buf, buf + sizeof buf, mag, base);
        std::string digits(buf, r.ptr);
        if (verb == 'X') digits = ascii_upper(digits);
        if (sharp && base == 16) digits = (verb == 'X' ? "0X" : "0x") + digits;
        std::string sign = x < 0 ? "-" : (plus ? "+" : (space ? " " : ""));
        if (fill == '0' && width > 0) {
          const int n = static_cast<int>(sign.size() + digits.size());
          if (width > n) digits.insert(0, static_cast<size_t>(width - n), '0');
        }
        s = sign + digits;
        break;
      }
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G': {
        if (!a.is_number()) {
          s = std::string("%!") + verb + "(" + format_v(a) + ")";
          break;
        }
        const double d = a.as_double();
        char buf[512];
        std::to_chars_result r;
        if (verb == 'f' || verb == 'F') {
          r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed, prec < 0 ? 6 : prec);
        } else if (verb == 'e' || verb == 'E') {
          r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific,
                            prec < 0 ? 6 : prec);
        } else if (prec < 0) {
          r = std::to_chars(buf, buf + sizeof buf, d);
        } else {
          r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::general, prec);
        }
        if (r.ec != std::errc()) return builtin_error("sprintf", "number too large to format");
        s.assign(buf, r.ptr);
        if ((verb == 'e' || verb == 'E' || verb == 'g' || verb == 'G')) {
          // Go writes at least two exponent digits.
          const size_t epos = s.find('e');
          if (epos != std::string::npos && epos + 2 < s.size() + 1) {
            size_t dpos = epos + 1;
            if (dpos < s.size() && (s[dpos] == '+' || s[dpos] == '-')) ++dpos;
            if (s.size() - dpos == 1) s.insert(dpos, "0");
          }
          if (verb == 'E' || verb == 'G') s = ascii_upper(s);
        }
        if (plus && d >= 0) s = "+" + s;
        if (fill == '0' && width > 0) {
          const bool neg = !s.empty() && (s[0] == '-' || s[0] == '+');
          const int n = static_cast<int>(s.size());
          if (width > n) s.insert(neg ? 1 : 0, static_cast<size_t>(width - n), '0');
        }
        break;
      }
      default:
        s = std::string("%!") + verb + "(" + format_v(a) + ")";
        break;
    }
    pad(*out, s, width, left, ' ');
  }
  if (ai < args.size()) {
    out->append("%!(EXTRA ");
    for (size_t k = ai; k < args.size(); ++k) {
      if (k > ai) out->append(", ");
      out->append(std::string(args[k].type_name()) + "=" + format_v(args[k]));
    }
    out->append(")");
  }
  return Status();
}

}  // namespace

namespace {

// ---- object helpers ----

Value obj_union(const Value& a, const Value& b) {
  if (!a.is_object() || !b.is_object()) return b;
  Entries e = a.entries();
  for (const auto& [k, v] : b.entries()) {
    bool found = false;
    for (auto& [ek, ev] : e) {
      if (ek == k) {
        ev = obj_union(ev, v);
        found = true;
        break;
      }
    }
    if (!found) e.emplace_back(k, v);
  }
  return Value::object(std::move(e));
}

bool subset_of(const Value& super, const Value& sub) {
  if (super.is_object() && sub.is_object()) {
    for (const auto& [k, v] : sub.entries()) {
      const Value sv = super.get(k);
      if (!sv.is_defined() || !subset_of(sv, v)) return false;
    }
    return true;
  }
  if (super.is_set() && sub.is_set()) {
    for (const Value& x : sub.items()) {
      if (!super.contains(x)) return false;
    }
    return true;
  }
  if (super.is_array() && sub.is_array()) {
    // sub must appear as a contiguous run in super.
    const Array& a = super.as_array();
    const Array& b = sub.as_array();
    if (b.empty()) return true;
    if (b.size() > a.size()) return false;
    for (size_t i = 0; i + b.size() <= a.size(); ++i) {
      bool ok = true;
      for (size_t j = 0; j < b.size() && ok; ++j) ok = a[i + j] == b[j];
      if (ok) return true;
    }
    return false;
  }
  if (super.is_array() && sub.is_set()) {
    for (const Value& x : sub.items()) {
      if (std::find(super.as_array().begin(), super.as_array().end(), x) == super.as_array().end()) {
        return false;
      }
    }
    return true;
  }
  return super == sub;
}

// Splits a json.filter/json.remove path ("a/b/0" or ["a", "b", 0]) into keys.
bool path_keys(const Value& p, std::vector<Value>* out) {
  if (p.is_string()) {
    std::string s = p.as_string();
    if (!s.empty() && s[0] == '/') s.erase(0, 1);
    size_t start = 0;
    if (s.empty()) return true;
    for (size_t i = 0; i <= s.size(); ++i) {
      if (i == s.size() || s[i] == '/') {
        std::string part = s.substr(start, i - start);
        // JSON pointer escapes.
        std::string unesc;
        for (size_t j = 0; j < part.size(); ++j) {
          if (part[j] == '~' && j + 1 < part.size() && part[j + 1] == '1') {
            unesc.push_back('/');
            ++j;
          } else if (part[j] == '~' && j + 1 < part.size() && part[j + 1] == '0') {
            unesc.push_back('~');
            ++j;
          } else {
            unesc.push_back(part[j]);
          }
        }
        out->push_back(Value::string(unesc));
        start = i + 1;
      }
    }
    return true;
  }
  if (p.is_array()) {
    for (const Value& x : p.as_array()) out->push_back(x);
    return true;
  }
  return false;
}

// A trie of paths for json.filter / json.remove.
struct PathTrie {
  bool end = false;
  std::vector<Value> keys;
  std::vector<PathTrie> kids;  // kids[i] belongs to keys[i]
  PathTrie* child(const Value& k) {
    for (size_t i = 0; i < keys.size(); ++i) {
      if (keys[i] == k) return &kids[i];
    }
    keys.push_back(k);
    kids.emplace_back();
    return &kids.back();
  }
  const PathTrie* find(const Value& k) const {
    for (size_t i = 0; i < keys.size(); ++i) {
      const Value& key = keys[i];
      if (key == k) return &kids[i];
      // Array indices given as strings ("0") match integer positions.
      if (key.is_string() && k.is_int() && key.as_string() == std::to_string(k.as_int())) {
        return &kids[i];
      }
    }
    return nullptr;
  }
};

Value json_filter(const Value& v, const PathTrie& t) {
  if (t.end) return v;
  switch (v.kind()) {
    case Kind::kObject: {
      Entries e;
      for (const auto& [k, x] : v.entries()) {
        if (const PathTrie* c = t.find(k)) {
          Value f = json_filter(x, *c);
          if (f.is_defined()) e.emplace_back(k, f);
        }
      }
      return Value::object(std::move(e));
    }
    case Kind::kArray: {
      Array a;
      for (size_t i = 0; i < v.as_array().size(); ++i) {
        if (const PathTrie* c = t.find(Value::integer(static_cast<int64_t>(i)))) {
          Value f = json_filter(v.as_array()[i], *c);
          if (f.is_defined()) a.push_back(f);
        }
      }
      return Value::array(std::move(a));
    }
    case Kind::kSet: {
      SetItems s;
      for (const Value& x : v.items()) {
        if (const PathTrie* c = t.find(x)) {
          Value f = json_filter(x, *c);
          if (f.is_defined()) s.push_back(f);
        }
      }
      return Value::set(std::move(s));
    }
    default: return Value();
  }
}

Value json_remove(const Value& v, const PathTrie& t) {
  switch (v.kind()) {
    case Kind::kObject: {
      Entries e;
      for (const auto& [k, x] : v.entries()) {
        const PathTrie* c = t.find(k);
        if (c == nullptr) {
          e.emplace_back(k, x);
        } else if (!c->end) {
          e.emplace_back(k, json_remove(x, *c));
        }
      }
      return Value::object(std::move(e));
    }
    case Kind::kArray: {
      Array a;
      for (size_t i = 0; i < v.as_array().size(); ++i) {
        const PathTrie* c = t.find(Value::integer(static_cast<int64_t>(i)));
        if (c == nullptr) a.push_back(v.as_array()[i]);
        else if (!c->end) a.push_back(json_remove(v.as_array()[i], *c));
      }
      return Value::array(std::move(a));
    }
    case Kind::kSet: {
      SetItems s;
      for (const Value& x : v.items()) {
        const PathTrie* c = t.find(x);
        if (c == nullptr) s.push_back(x);
        else if (!c->end) s.push_back(json_remove(x, *c));
      }
      return Value::set(std::move(s));
    }
    default: return v;
  }
}

Status build_trie(std::string_view fn, const Value& paths, PathTrie* root) {
  if (!paths.is_array() && !paths.is_set()) {
    return type_error(fn, "operand 2 must be one of {set, array} but got " +
                              std::string(paths.type_name()));
  }
  for (const Value& p : paths.as_array()) {
    std::vector<Value> keys;
    if (!path_keys(p, &keys)) {
      return type_error(fn, "operand 2 must be one of {set, array} containing string paths or array of path segments but got " +
                                std::string(p.type_name()));
    }
    PathTrie* t = root;
    for (const Value& k : keys) t = t->child(k);
    t->end = true;
  }
  return Status();
}

// ---- base64 / hex / url ----

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kB64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string b64_encode(std::string_view in, const char* table, bool pad_out) {
  std::string out;
  size_t i = 0;
  while (i + 2 < in.size()) {
    const uint32_t v = (static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16) |
                       (static_cast<uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out.push_back(table[(v >> 18) & 63]);
    out.push_back(table[(v >> 12) & 63]);
    out.push_back(table[(v >> 6) & 63]);
    out.push_back(table[v & 63]);
    i += 3;
  }
  const size_t rest = in.size() - i;
  if (rest == 1) {
    const uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16;
    out.push_back(table[(v >> 18) & 63]);
    out.push_back(table[(v >> 12) & 63]);
    if (pad_out) out.append("==");
  } else if (rest == 2) {
    const uint32_t v = (static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16) |
                       (static_cast<uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8);
    out.push_back(table[(v >> 18) & 63]);
    out.push_back(table[(v >> 12) & 63]);
    out.push_back(table[(v >> 6) & 63]);
    if (pad_out) out.push_back('=');
  }
  return out;
}

bool b64_decode(std::string_view in, bool url, bool require_pad, std::string* out) {
  int vals[256];
  for (int& v : vals) v = -1;
  const char* table = url ? kB64Url : kB64;
  for (int i = 0; i < 64; ++i) vals[static_cast<unsigned char>(table[i])] = i;
  size_t n = in.size();
  size_t n_pad = 0;
  while (n > 0 && in[n - 1] == '=') {
    --n;
    ++n_pad;
  }
  if (n_pad > 2) return false;
  if (require_pad && (n + n_pad) % 4 != 0) return false;
  if (n_pad > 0 && (n + n_pad) % 4 != 0) return false;
  if (n % 4 == 1) return false;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; ++i) {
    const int v = vals[static_cast<unsigned char>(in[i])];
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return true;
}

std::string url_escape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else if (c == ' ') {
      out.push_back('+');
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

bool url_unescape(std::string_view s, std::string* out) {
  auto hex = [](char h) {
    if (h >= '0' && h <= '9') return h - '0';
    if (h >= 'a' && h <= 'f') return h - 'a' + 10;
    if (h >= 'A' && h <= 'F') return h - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out->push_back(' ');
    } else if (s[i] == '%') {
      if (i + 2 >= s.size() + 0 && i + 2 > s.size() - 1 + 1) return false;
      if (i + 2 >= s.size()) return false;
      const int a = hex(s[i + 1]), b = hex(s[i + 2]);
      if (a < 0 || b < 0) return false;
      out->push_back(static_cast<char>(a * 16 + b));
      i += 2;
    } else {
      out->push_back(s[i]);
    }
  }
  return true;
}

// ---- glob ----

// Expands {a,b} alternatives (bounded); returns false when there are too many.
bool glob_expand(const std::string& p, std::vector<std::string>* out, int depth = 0) {
  if (depth > 8 || out->size() > 256) return false;
  int level = 0;
  size_t open = std::string::npos;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '\\') {
      ++i;
      continue;
    }
    if (p[i] == '[') {
      while (i < p.size() && p[i] != ']') ++i;
      continue;
    }
    if (p[i] == '{') {
      if (level++ == 0) open = i;
    } else if (p[i] == '}' && level > 0) {
      if (--level == 0) {
        // Split the alternatives at top-level commas.
        std::vector<std::string> alts;
        int l2 = 0;
        size_t start = open + 1;
        for (size_t j = open + 1; j < i; ++j) {
          if (p[j] == '\\') {
            ++j;
            continue;
          }
          if (p[j] == '{') ++l2;
          else if (p[j] == '}') --l2;
          else if (p[j] == ',' && l2 == 0) {
            alts.push_back(p.substr(start, j - start));
            start = j + 1;
          }
        }
        alts.push_back(p.substr(start, i - start));
        for (const std::string& a : alts) {
          if (!glob_expand(p.substr(0, open) + a + p.substr(i + 1), out, depth + 1)) return false;
        }
        return true;
      }
    }
  }
  out->push_back(p);
  return true;
}

struct GlobMatcher {
  std::vector<char32_t> pat, text;
  std::vector<char32_t> delims;
  std::vector<int8_t> memo;  // -1 unknown
  size_t steps = 0;

  bool is_delim(char32_t c) const {
    return std::find(delims.begin(), delims.end(), c) != delims.end();
  }
  // Returns the index after a class starting at `pi` ('['), or 0 when malformed.
  bool class_match(size_t pi, char32_t c, size_t* end) const {
    size_t i = pi + 1;
    bool neg = false;
    if (i < pat.size() && (pat[i] == '!' || pat[i] == '^')) {
      neg = true;
      ++i;
    }
    bool hit = false;
    bool first = true;
    while (i < pat.size() && (pat[i] != ']' || first)) {
      first = false;
      char32_t lo = pat[i];
      if (lo == '\\' && i + 1 < pat.size()) lo = pat[++i];
      char32_t hi = lo;
      if (i + 2 < pat.size() && pat[i + 1] == '-' && pat[i + 2] != ']') {
        hi = pat[i + 2];
        if (hi == '\\' && i + 3 < pat.size()) {
          hi = pat[i + 3];
          ++i;
        }
        i += 2;
      }
      if (c >= lo && c <= hi) hit = true;
      ++i;
    }
    if (i >= pat.size()) return false;
    *end = i + 1;
    return hit != neg;
  }
  bool match(size_t pi, size_t ti) {
    if (++steps > 1000000) return false;
    const size_t key = pi * (text.size() + 1) + ti;
    if (memo[key] >= 0) return memo[key] != 0;
    bool r = false;
    if (pi == pat.size()) {
      r = ti == text.size();
    } else {
      const char32_t c = pat[pi];
      if (c == '*') {
        const bool super = pi + 1 < pat.size() && pat[pi + 1] == '*';
        const size_t next = super ? pi + 2 : pi + 1;
        // Zero or more characters (no delimiters unless "**").
        size_t t = ti;
        for (;;) {
          if (match(next, t)) {
            r = true;
            break;
          }
          if (t >= text.size()) break;
          if (!super && is_delim(text[t])) break;
          ++t;
        }
      } else if (c == '?') {
        r = ti < text.size() && !is_delim(text[ti]) && match(pi + 1, ti + 1);
      } else if (c == '[') {
        size_t end = 0;
        r = ti < text.size() && class_match(pi, text[ti], &end) && match(end, ti + 1);
      } else if (c == '\\' && pi + 1 < pat.size()) {
        r = ti < text.size() && text[ti] == pat[pi + 1] && match(pi + 2, ti + 1);
      } else {
        r = ti < text.size() && text[ti] == c && match(pi + 1, ti + 1);
      }
    }
    memo[key] = r ? 1 : 0;
    return r;
  }
};

// ---- net ----

bool parse_ipv4(std::string_view s, uint8_t out[4]) {
  int part = 0;
  size_t i = 0;
  while (part < 4) {
    if (i >= s.size() || !(s[i] >= '0' && s[i] <= '9')) return false;
    int v = 0;
    size_t digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      v = v * 10 + (s[i] - '0');
      if (v > 255 || ++digits > 3) return false;
      ++i;
    }
    out[part++] = static_cast<uint8_t>(v);
    if (part < 4) {
      if (i >= s.size() || s[i] != '.') return false;
      ++i;
    }
  }
  return i == s.size();
}

// Parses an IPv4 or IPv6 address into 16 bytes (IPv4 as ::ffff:a.b.c.d); sets *v4.
bool parse_ip(std::string_view s, uint8_t out[16], bool* v4) {
  std::memset(out, 0, 16);
  uint8_t b4[4];
  if (parse_ipv4(s, b4)) {
    out[10] = out[11] = 0xFF;
    std::memcpy(out + 12, b4, 4);
    *v4 = true;
    return true;
  }
  *v4 = false;
  // IPv6.
  std::vector<uint16_t> head, tail;
  bool dbl = false;
  size_t i = 0;
  if (s.substr(0, 2) == "::") {
    dbl = true;
    i = 2;
  }
  while (i < s.size()) {
    // A trailing IPv4 part.
    const size_t next_colon = s.find(':', i);
    const std::string_view part = s.substr(i, next_colon == std::string_view::npos ? std::string_view::npos : next_colon - i);
    if (part.find('.') != std::string_view::npos) {
      if (!parse_ipv4(part, b4)) return false;
      auto& dst = dbl ? tail : head;
      dst.push_back(static_cast<uint16_t>((b4[0] << 8) | b4[1]));
      dst.push_back(static_cast<uint16_t>((b4[2] << 8) | b4[3]));
      i = s.size();
      break;
    }
    if (part.empty() || part.size() > 4) return false;
    uint16_t v = 0;
    for (char c : part) {
      int d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else return false;
      v = static_cast<uint16_t>(v * 16 + d);
    }
    (dbl ? tail : head).push_back(v);
    i += part.size();
    if (i < s.size()) {
      if (s.substr(i, 2) == "::") {
        if (dbl) return false;
        dbl = true;
        i += 2;
      } else {
        ++i;  // ':'
        if (i >= s.size()) return false;
      }
    }
  }
  const size_t total = head.size() + tail.size();
  if (total > 8 || (!dbl && total != 8) || (dbl && total == 8)) return false;
  for (size_t k = 0; k < head.size(); ++k) {
    out[2 * k] = static_cast<uint8_t>(head[k] >> 8);
    out[2 * k + 1] = static_cast<uint8_t>(head[k] & 0xFF);
  }
  for (size_t k = 0; k < tail.size(); ++k) {
    const size_t pos = 8 - tail.size() + k;
    out[2 * pos] = static_cast<uint8_t>(tail[k] >> 8);
    out[2 * pos + 1] = static_cast<uint8_t>(tail[k] & 0xFF);
  }
  return true;
}

struct Cidr {
  uint8_t addr[16];
  int bits;  // prefix length in the 128-bit space
  bool v4;
};

bool parse_cidr(std::string_view s, Cidr* c, bool allow_plain_ip) {
  const size_t slash = s.find('/');
  std::string_view ip = s.substr(0, slash);
  if (!parse_ip(ip, c->addr, &c->v4)) return false;
  if (slash == std::string_view::npos) {
    if (!allow_plain_ip) return false;
    c->bits = 128;
    return true;
  }
  std::string_view p = s.substr(slash + 1);
  int bits = 0;
  auto r = std::from_chars(p.data(), p.data() + p.size(), bits);
  if (r.ec != std::errc() || r.ptr != p.data() + p.size() || p.empty()) return false;
  if (bits < 0 || bits > (c->v4 ? 32 : 128)) return false;
  c->bits = c->v4 ? bits + 96 : bits;
  return true;
}

bool prefix_eq(const uint8_t* a, const uint8_t* b, int bits) {
  for (int i = 0; i < bits; ++i) {
    const int byte = i / 8, bit = 7 - i % 8;
    if (((a[byte] >> bit) & 1) != ((b[byte] >> bit) & 1)) return false;
  }
  return true;
}

// ---- semver ----

struct SemVer {
  int64_t major = 0, minor = 0, patch = 0;
  std::vector<std::string> pre;
};

bool parse_num(std::string_view s, int64_t* out) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool parse_semver(std::string_view s, SemVer* v) {
  const size_t plus = s.find('+');
  if (plus != std::string_view::npos) {
    std::string_view build = s.substr(plus + 1);
    if (build.empty()) return false;
    for (char c : build) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.')) return false;
    }
    s = s.substr(0, plus);
  }
  const size_t dash = s.find('-');
  std::string_view core = s.substr(0, dash);
  if (dash != std::string_view::npos) {
    std::string_view pre = s.substr(dash + 1);
    if (pre.empty()) return false;
    size_t start = 0;
    for (size_t i = 0; i <= pre.size(); ++i) {
      if (i == pre.size() || pre[i] == '.') {
        std::string_view id = pre.substr(start, i - start);
        if (id.empty()) return false;
        bool numeric = true;
        for (char c : id) {
          if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-')) return false;
          if (!(c >= '0' && c <= '9')) numeric = false;
        }
        if (numeric && id.size() > 1 && id[0] == '0') return false;
        v->pre.emplace_back(id);
        start = i + 1;
      }
    }
  }
  const size_t d1 = core.find('.');
  if (d1 == std::string_view::npos) return false;
  const size_t d2 = core.find('.', d1 + 1);
  if (d2 == std::string_view::npos) return false;
  return parse_num(core.substr(0, d1), &v->major) &&
         parse_num(core.substr(d1 + 1, d2 - d1 - 1), &v->minor) &&
         parse_num(core.substr(d2 + 1), &v->patch);
}

int semver_cmp(const SemVer& a, const SemVer& b) {
  if (a.major != b.major) return a.major < b.major ? -1 : 1;
  if (a.minor != b.minor) return a.minor < b.minor ? -1 : 1;
  if (a.patch != b.patch) return a.patch < b.patch ? -1 : 1;
  if (a.pre.empty() != b.pre.empty()) return a.pre.empty() ? 1 : -1;
  for (size_t i = 0; i < std::min(a.pre.size(), b.pre.size()); ++i) {
    const std::string& x = a.pre[i];
    const std::string& y = b.pre[i];
    const bool xn = std::all_of(x.begin(), x.end(), [](char c) { return c >= '0' && c <= '9'; });
    const bool yn = std::all_of(y.begin(), y.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (xn && yn) {
      if (x.size() != y.size()) return x.size() < y.size() ? -1 : 1;
      if (x != y) return x < y ? -1 : 1;
    } else if (xn != yn) {
      return xn ? -1 : 1;
    } else if (x != y) {
      return x < y ? -1 : 1;
    }
  }
  if (a.pre.size() != b.pre.size()) return a.pre.size() < b.pre.size() ? -1 : 1;
  return 0;
}

// ---- units ----

bool parse_units(std::string_view fn, std::string s, bool bytes, Value* out, Status* err) {
  s.erase(std::remove(s.begin(), s.end(), '"'), s.end());
  std::string t;
  for (char c : s) {
    if (c != ' ') t.push_back(c);
  }
  if (s != t && s.find(' ') != std::string::npos) {
    *err = builtin_error(fn, "spaces not allowed in resource strings");
    return false;
  }
  size_t i = 0;
  while (i < t.size() && ((t[i] >= '0' && t[i] <= '9') || t[i] == '.' || t[i] == '-' || t[i] == '+' ||
                          ((t[i] == 'e' || t[i] == 'E') && i + 1 < t.size() &&
                           ((t[i + 1] >= '0' && t[i + 1] <= '9') || t[i + 1] == '-' || t[i + 1] == '+') &&
                           !bytes))) {
    ++i;
  }
  const std::string num = t.substr(0, i);
  std::string suffix = t.substr(i);
  if (num.empty()) {
    *err = builtin_error(fn, "no amount provided");
    return false;
  }
  char* end = nullptr;
  const double x = std::strtod(num.c_str(), &end);
  if (end == nullptr || *end != '\0') {
    *err = builtin_error(fn, "could not parse amount to a number");
    return false;
  }
  double mult = 1;
  std::string low = ascii_lower(suffix);
  if (bytes) {
    if (!low.empty() && low.back() == 'b') low.pop_back();
    static const std::pair<const char*, double> kUnits[] = {
        {"", 1},          {"k", 1e3},         {"m", 1e6},         {"g", 1e9},
        {"t", 1e12},      {"p", 1e15},        {"e", 1e18},        {"ki", 1024.0},
        {"mi", 1048576.0}, {"gi", 1073741824.0}, {"ti", 1099511627776.0},
        {"pi", 1125899906842624.0}, {"ei", 1152921504606846976.0}};
    bool found = false;
    for (const auto& [name, m] : kUnits) {
      if (low == name) {
        mult = m;
        found = true;
      }
    }
    if (!found) {
      *err = builtin_error(fn, "byte unit " + suffix + " not recognized");
      return false;
    }
    const double r = x * mult;
    *out = Value::number(std::trunc(r));
    return true;
  }
  static const std::pair<const char*, double> kUnits[] = {
      {"", 1},      {"m", 1e-3},  {"k", 1e3},   {"K", 1e3},   {"M", 1e6},  {"G", 1e9},
      {"T", 1e12},  {"P", 1e15},  {"E", 1e18},  {"Ki", 1024.0}, {"Mi", 1048576.0},
      {"Gi", 1073741824.0}, {"Ti", 1099511627776.0}, {"Pi", 1125899906842624.0},
      {"Ei", 1152921504606846976.0}, {"ki", 1024.0}, {"mi", 1048576.0}, {"gi", 1073741824.0},
      {"ti", 1099511627776.0}, {"pi", 1125899906842624.0}, {"ei", 1152921504606846976.0}};
  bool found = false;
  for (const auto& [name, m] : kUnits) {
    if (suffix == name) {
      mult = m;
      found = true;
      break;
    }
  }
  if (!found) {
    // Case-insensitive fallback for decimal units ("kb" is not valid here).
    *err = builtin_error(fn, "unit " + suffix + " not recognized");
    return false;
  }
  *out = Value::number(x * mult);
  return true;
}

}  // namespace

// The table.
namespace {

#define BUILTIN(name) Status name(BuiltinCtx& ctx, A args, size_t n_args, Value* out)
#define UNUSED_CTX (void)ctx; (void)n_args

// Comparison and arithmetic.
BUILTIN(b_equal) { UNUSED_CTX; *out = Value::boolean(args[0] == args[1]); return Status(); }
BUILTIN(b_neq) { UNUSED_CTX; *out = Value::boolean(!(args[0] == args[1])); return Status(); }
BUILTIN(b_lt) { UNUSED_CTX; *out = Value::boolean(compare(args[0], args[1]) < 0); return Status(); }
BUILTIN(b_lte) { UNUSED_CTX; *out = Value::boolean(compare(args[0], args[1]) <= 0); return Status(); }
BUILTIN(b_gt) { UNUSED_CTX; *out = Value::boolean(compare(args[0], args[1]) > 0); return Status(); }
BUILTIN(b_gte) { UNUSED_CTX; *out = Value::boolean(compare(args[0], args[1]) >= 0); return Status(); }

BUILTIN(b_plus) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "plus";
  WANT(0, is_number, "number");
  WANT(1, is_number, "number");
  *out = num_add(args[0], args[1]);
  return Status();
}
BUILTIN(b_minus) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "minus";
  if (args[0].is_set() && args[1].is_set()) {
    SetItems r;
    for (const Value& x : args[0].items()) {
      if (!args[1].contains(x)) r.push_back(x);
    }
    *out = Value::set_sorted(std::move(r));
    return Status();
  }
  if (args[0].is_set() || args[1].is_set()) {
    return type_error(kFn, ordinal_type_msg(args[0].is_set() ? 1 : 0, "set",
                                            args[0].is_set() ? args[1] : args[0]));
  }
  WANT(0, is_number, "number");
  WANT(1, is_number, "number");
  *out = num_sub(args[0], args[1]);
  return Status();
}
BUILTIN(b_mul) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "mul";
  WANT(0, is_number, "number");
  WANT(1, is_number, "number");
  *out = num_mul(args[0], args[1]);
  return Status();
}
BUILTIN(b_div) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "div";
  WANT(0, is_number, "number");
  WANT(1, is_number, "number");
  if (args[1].as_double() == 0) return builtin_error(kFn, "divide by zero");
  if (args[0].is_int() && args[1].is_int() && args[1].as_int() != -1 &&
      args[0].as_int() % args[1].as_int() == 0) {
    *out = Value::integer(args[0].as_int() / args[1].as_int());
  } else {
    *out = Value::number(args[0].as_double() / args[1].as_double());
  }
  return Status();
}
BUILTIN(b_rem) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "rem";
  WANT(0, is_number, "number");
  WANT(1, is_number, "number");
  if (!args[0].is_int() || !args[1].is_int()) {
    return builtin_error(kFn, "modulo on floating-point number");
  }
  if (args[1].as_int() == 0) return builtin_error(kFn, "modulo by zero");
  if (args[1].as_int() == -1) {
    *out = Value::integer(0);
    return Status();
  }
  *out = Value::integer(args[0].as_int() % args[1].as_int());
  return Status();
}
BUILTIN(b_and) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "and";
  WANT(0, is_set, "set");
  WANT(1, is_set, "set");
  SetItems r;
  for (const Value& x : args[0].items()) {
    if (args[1].contains(x)) r.push_back(x);
  }
  *out = Value::set_sorted(std::move(r));
  return Status();
}
BUILTIN(b_or) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "or";
  WANT(0, is_set, "set");
  WANT(1, is_set, "set");
  SetItems r = args[0].items();
  r.insert(r.end(), args[1].items().begin(), args[1].items().end());
  *out = Value::set(std::move(r));
  return Status();
}
BUILTIN(b_member2) {
  UNUSED_CTX;
  const Value& c = args[1];
  bool found = false;
  if (c.is_set()) {
    found = c.contains(args[0]);
  } else if (c.is_array()) {
    for (const Value& x : c.as_array()) found = found || x == args[0];
  } else if (c.is_object()) {
    for (const auto& [k, v] : c.entries()) found = found || v == args[0];
  }
  *out = Value::boolean(found);
  return Status();
}
BUILTIN(b_member3) {
  UNUSED_CTX;
  const Value& c = args[2];
  bool found = false;
  if (c.is_array()) {
    const Value x = c.index(args[0]);
    found = x.is_defined() && x == args[1];
  } else if (c.is_object()) {
    const Value x = c.get(args[0]);
    found = x.is_defined() && x == args[1];
  } else if (c.is_set()) {
    found = args[0] == args[1] && c.contains(args[0]);
  }
  *out = Value::boolean(found);
  return Status();
}

// Aggregates.
BUILTIN(b_count) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "count";
  const Value& a = args[0];
  if (a.is_string()) {
    *out = Value::integer(static_cast<int64_t>(rune_count(a.as_string())));
  } else if (a.is_collection()) {
    *out = Value::integer(static_cast<int64_t>(a.size()));
  } else {
    return type_error(kFn, ordinal_type_msg(0, "one of {array, object, set, string}", a));
  }
  return Status();
}
Status sum_product(std::string_view kFn, A args, bool product, Value* out) {
  const Value& a = args[0];
  if (!a.is_array() && !a.is_set()) {
    return type_error(kFn, ordinal_type_msg(0, "one of {array, set}", a));
  }
  Value acc = Value::integer(product ? 1 : 0);
  for (const Value& x : a.as_array()) {
    if (!x.is_number()) return type_error(kFn, "operand 1 must be array or set of numbers");
    acc = product ? num_mul(acc, x) : num_add(acc, x);
  }
  *out = acc;
  return Status();
}
BUILTIN(b_sum) { UNUSED_CTX; return sum_product("sum", args, false, out); }
BUILTIN(b_product) { UNUSED_CTX; return sum_product("product", args, true, out); }
Status max_min(std::string_view kFn, A args, bool want_max, Value* out) {
  const Value& a = args[0];
  if (!a.is_array() && !a.is_set()) {
    return type_error(kFn, ordinal_type_msg(0, "one of {array, set}", a));
  }
  const Array& items = a.as_array();
  if (items.empty()) return Status();
  Value best = items[0];
  for (const Value& x : items) {
    if (want_max ? compare(x, best) > 0 : compare(x, best) < 0) best = x;
  }
  *out = best;
  return Status();
}
BUILTIN(b_max) { UNUSED_CTX; return max_min("max", args, true, out); }
BUILTIN(b_min) { UNUSED_CTX; return max_min("min", args, false, out); }
BUILTIN(b_sort) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "sort";
  const Value& a = args[0];
  if (!a.is_array() && !a.is_set()) {
    return type_error(kFn, ordinal_type_msg(0, "one of {array, set}", a));
  }
  Array items = a.as_array();
  std::stable_sort(items.begin(), items.end(), [](const Value& x, const Value& y) { return x < y; });
  *out = Value::array(std::move(items));
  return Status();
}
BUILTIN(b_all) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "all";
  if (!args[0].is_array() && !args[0].is_set()) {
    return type_error(kFn, ordinal_type_msg(0, "one of {array, set}", args[0]));
  }
  bool r = true;
  for (const Value& x : args[0].as_array()) r = r && x == Value::boolean(true);
  *out = Value::boolean(r);
  return Status();
}
BUILTIN(b_any) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "any";
  if (!args[0].is_array() && !args[0].is_set()) {
    return type_error(kFn, ordinal_type_msg(0, "one of {array, set}", args[0]));
  }
  bool r = false;
  for (const Value& x : args[0].as_array()) r = r || x == Value::boolean(true);
  *out = Value::boolean(r);
  return Status();
}

// Numbers.
BUILTIN(b_abs) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "abs";
  WANT(0, is_number, "number");
  if (args[0].is_int() && args[0].as_int() != INT64_MIN) {
    *out = Value::integer(args[0].as_int() < 0 ? -args[0].as_int() : args[0].as_int());
  } else {
    *out = Value::number(std::fabs(args[0].as_double()));
  }
  return Status();
}
BUILTIN(b_round) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "round";
  WANT(0, is_number, "number");
  *out = args[0].is_int() ? args[0] : Value::number(std::round(args[0].as_double()));
  return Status();
}
BUILTIN(b_ceil) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "ceil";
  WANT(0, is_number, "number");
  *out = args[0].is_int() ? args[0] : Value::number(std::ceil(args[0].as_double()));
  return Status();
}
BUILTIN(b_floor) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "floor";
  WANT(0, is_number, "number");
  *out = args[0].is_int() ? args[0] : Value::number(std::floor(args[0].as_double()));
  return Status();
}
Status range_impl(BuiltinCtx& ctx, std::string_view kFn, const Value& a, const Value& b,
                  int64_t step, Value* out) {
  int64_t x = 0, y = 0;
  if (!as_int_exact(a, &x)) return builtin_error(kFn, "operand 1 must be integer but got floating-point number");
  if (!as_int_exact(b, &y)) return builtin_error(kFn, "operand 2 must be integer but got floating-point number");
  const uint64_t span = x <= y ? static_cast<uint64_t>(y) - static_cast<uint64_t>(x)
                               : static_cast<uint64_t>(x) - static_cast<uint64_t>(y);
  const uint64_t n = span / static_cast<uint64_t>(step) + 1;
  if (n > (1u << 26)) {
    return Status::resource_exhausted("{}: range of {} elements exceeds the evaluation memory budget", kFn, n);
  }
  ZTSLM_TRY(need_bytes(ctx, kFn, static_cast<size_t>(n) * sizeof(Value)));
  Array r;
  r.reserve(static_cast<size_t>(n));
  for (uint64_t i = 0; i < n; ++i) {
    const int64_t off = static_cast<int64_t>(i) * step;
    r.push_back(Value::integer(x <= y ? x + off : x - off));
  }
  *out = Value::array(std::move(r));
  return Status();
}
BUILTIN(b_numbers_range) {
  (void)n_args;
  static constexpr std::string_view kFn = "numbers.range";
  WANT(0, is_number, "number");
  WANT(1, is_number, "number");
  return range_impl(ctx, kFn, args[0], args[1], 1, out);
}
BUILTIN(b_numbers_range_step) {
  (void)n_args;
  static constexpr std::string_view kFn = "numbers.range_step";
  WANT(0, is_number, "number");
  WANT(1, is_number, "number");
  WANT(2, is_number, "number");
  int64_t step = 0;
  if (!as_int_exact(args[2], &step)) return builtin_error(kFn, "operand 3 must be integer but got floating-point number");
  if (step <= 0) return builtin_error(kFn, "step must be a positive number above zero");
  return range_impl(ctx, kFn, args[0], args[1], step, out);
}
BUILTIN(b_to_number) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "to_number";
  const Value& a = args[0];
  switch (a.kind()) {
    case Kind::kNull: *out = Value::integer(0); return Status();
    case Kind::kBool: *out = Value::integer(a.as_bool() ? 1 : 0); return Status();
    case Kind::kNumber: *out = a; return Status();
    case Kind::kString: {
      const std::string& s = a.as_string();
      auto r = parse_json(s);
      if (!r.has_value() || !r->is_number()) {
        // Go's ParseFloat also accepts a leading '+', ".5" and "5.".
        char* end = nullptr;
        const double d = s.empty() ? 0 : std::strtod(s.c_str(), &end);
        if (s.empty() || end == nullptr || *end != '\0' || std::isinf(d) || std::isnan(d) ||
            s.find_first_of("xXpP") != std::string::npos || s.find("inf") != std::string::npos ||
            s.find("nan") != std::string::npos || s.find("Inf") != std::string::npos ||
            s.find("NaN") != std::string::npos) {
          return builtin_error(kFn, "invalid syntax");
        }
        *out = Value::number(d);
        return Status();
      }
      *out = *r;
      return Status();
    }
    default: return type_error(kFn, ordinal_type_msg(0, "one of {null, boolean, number, string}", a));
  }
}
BUILTIN(b_format_int) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "format_int";
  WANT(0, is_number, "number");
  WANT(1, is_number, "number");
  if (!args[1].is_int()) return builtin_error(kFn, "operand 2 must be one of {2, 8, 10, 16}");
  const int64_t base = args[1].as_int();
  if (base != 2 && base != 8 && base != 10 && base != 16) {
    return builtin_error(kFn, "operand 2 must be one of {2, 8, 10, 16}");
  }
  const double d = args[0].as_double();
  const int64_t x = args[0].is_int() ? args[0].as_int() : static_cast<int64_t>(std::floor(d));
  char buf[80];
  auto r = std::to_chars(buf, buf + sizeof buf, x, static_cast<int>(base));
  *out = Value::string(std::string(buf, r.ptr));
  return Status();
}

// Bits.
Status bits2(std::string_view kFn, A args, int op, Value* out) {
  WANT(0, is_number, "number");
  WANT(1, is_number, "number");
  if (!args[0].is_int()) return builtin_error(kFn, "operand 1 must be integer but got floating-point number");
  if (!args[1].is_int()) return builtin_error(kFn, "operand 2 must be integer but got floating-point number");
  const int64_t a = args[0].as_int(), b = args[1].as_int();
  switch (op) {
    case 0: *out = Value::integer(a & b); break;
    case 1: *out = Value::integer(a | b); break;
    case 2: *out = Value::integer(a ^ b); break;
    case 3:
      if (b < 0) return builtin_error(kFn, "must be an unsigned integer number but got a negative integer");
      if (b >= 63 || (a != 0 && (a > (INT64_MAX >> b) || a < (INT64_MIN >> b)))) {
        *out = Value::number(static_cast<double>(a) * std::ldexp(1.0, static_cast<int>(std::min<int64_t>(b, 1100))));
      } else {
        *out = Value::integer(a * (int64_t{1} << b));
      }
      break;
    default:
      if (b < 0) return builtin_error(kFn, "must be an unsigned integer number but got a negative integer");
      *out = Value::integer(b >= 63 ? (a < 0 ? -1 : 0) : (a >> b));
      break;
  }
  return Status();
}
BUILTIN(b_bits_and) { UNUSED_CTX; return bits2("bits.and", args, 0, out); }
BUILTIN(b_bits_or) { UNUSED_CTX; return bits2("bits.or", args, 1, out); }
BUILTIN(b_bits_xor) { UNUSED_CTX; return bits2("bits.xor", args, 2, out); }
BUILTIN(b_bits_lsh) { UNUSED_CTX; return bits2("bits.lsh", args, 3, out); }
BUILTIN(b_bits_rsh) { UNUSED_CTX; return bits2("bits.rsh", args, 4, out); }
BUILTIN(b_bits_negate) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "bits.negate";
  WANT(0, is_number, "number");
  if (!args[0].is_int()) return builtin_error(kFn, "operand 1 must be integer but got floating-point number");
  *out = Value::integer(~args[0].as_int());
  return Status();
}

// Sets.
BUILTIN(b_intersection) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "intersection";
  WANT(0, is_set, "set");
  const SetItems& sets = args[0].items();
  if (sets.empty()) {
    *out = Value::empty_set();
    return Status();
  }
  for (const Value& s : sets) {
    if (!s.is_set()) return type_error(kFn, "operand 1 must be set of sets");
  }
  SetItems r = sets[0].items();
  for (size_t i = 1; i < sets.size(); ++i) {
    SetItems next;
    for (const Value& x : r) {
      if (sets[i].contains(x)) next.push_back(x);
    }
    r.swap(next);
  }
  *out = Value::set_sorted(std::move(r));
  return Status();
}
BUILTIN(b_union) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "union";
  WANT(0, is_set, "set");
  SetItems r;
  for (const Value& s : args[0].items()) {
    if (!s.is_set()) return type_error(kFn, "operand 1 must be set of sets");
    r.insert(r.end(), s.items().begin(), s.items().end());
  }
  *out = Value::set(std::move(r));
  return Status();
}

// Strings.
BUILTIN(b_concat) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "concat";
  WANT(0, is_string, "string");
  std::vector<std::string> parts;
  if (!string_items(args[1], &parts)) {
    return type_error(kFn, ordinal_type_msg(1, "one of {array, set} of strings", args[1]));
  }
  std::string r;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) r += args[0].as_string();
    r += parts[i];
  }
  *out = Value::string(std::move(r));
  return Status();
}
BUILTIN(b_contains) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "contains";
  WANT(0, is_string, "string");
  WANT(1, is_string, "string");
  *out = Value::boolean(args[0].as_string().find(args[1].as_string()) != std::string::npos);
  return Status();
}
BUILTIN(b_startswith) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "startswith";
  WANT(0, is_string, "string");
  WANT(1, is_string, "string");
  *out = Value::boolean(args[0].as_string().rfind(args[1].as_string(), 0) == 0);
  return Status();
}
BUILTIN(b_endswith) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "endswith";
  WANT(0, is_string, "string");
  WANT(1, is_string, "string");
  const std::string& s = args[0].as_string();
  const std::string& x = args[1].as_string();
  *out = Value::boolean(s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0);
  return Status();
}
BUILTIN(b_lower) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "lower";
  WANT(0, is_string, "string");
  *out = Value::string(ascii_lower(args[0].as_string()));
  return Status();
}
BUILTIN(b_upper) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "upper";
  WANT(0, is_string, "string");
  *out = Value::string(ascii_upper(args[0].as_string()));
  return Status();
}
BUILTIN(b_split) {
  (void)n_args;
  static constexpr std::string_view kFn = "split";
  WANT(0, is_string, "string");
  WANT(1, is_string, "string");
  const std::string& s = args[0].as_string();
  const std::string& d = args[1].as_string();
  Array parts;
  if (d.empty()) {
    ZTSLM_TRY(need_bytes(ctx, kFn, s.size() * (sizeof(Value) + 8)));
    for (char32_t c : runes(s)) {
      std::string x;
      append_utf8(x, c);
      parts.push_back(Value::string(std::move(x)));
    }
  } else {
    size_t start = 0;
    for (;;) {
      const size_t p = s.find(d, start);
      if (p == std::string::npos) break;
      parts.push_back(Value::string(s.substr(start, p - start)));
      start = p + d.size();
    }
    parts.push_back(Value::string(s.substr(start)));
  }
  *out = Value::array(std::move(parts));
  return Status();
}
Status replace_impl(BuiltinCtx& ctx, std::string_view kFn, const std::string& s,
                    const std::string& from, const std::string& to, int64_t limit, std::string* r) {
  size_t n_matches = from.empty() ? rune_count(s) + 1 : 0;
  if (!from.empty()) {
    for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + from.size())) ++n_matches;
  }
  if (limit >= 0 && static_cast<size_t>(limit) < n_matches) n_matches = static_cast<size_t>(limit);
  ZTSLM_TRY(need_bytes(ctx, kFn, s.size() + n_matches * to.size()));
  if (from.empty()) {
    size_t done = 0;
    const auto rs = runes(s);
    for (size_t i = 0; i <= rs.size(); ++i) {
      if (done < n_matches) {
        *r += to;
        ++done;
      }
      if (i < rs.size()) append_utf8(*r, rs[i]);
    }
    return Status();
  }
  size_t start = 0, done = 0;
  for (;;) {
    const size_t p = done < n_matches ? s.find(from, start) : std::string::npos;
    if (p == std::string::npos) break;
    r->append(s, start, p - start);
    *r += to;
    start = p + from.size();
    ++done;
  }
  r->append(s, start, std::string::npos);
  return Status();
}
BUILTIN(b_replace) {
  (void)n_args;
  static constexpr std::string_view kFn = "replace";
  WANT(0, is_string, "string");
  WANT(1, is_string, "string");
  WANT(2, is_string, "string");
  std::string r;
  ZTSLM_TRY(replace_impl(ctx, kFn, args[0].as_string(), args[1].as_string(), args[2].as_string(), -1, &r));
  *out = Value::string(std::move(r));
  return Status();
}
BUILTIN(b_strings_replace_n) {
  (void)n_args;
  static constexpr std::string_view kFn = "strings.replace_n";
  WANT(0, is_object, "object");
  WANT(1, is_string, "string");
  std::string s = args[1].as_string();
  // Replacements apply left to right, earlier patterns first at each position (Go Replacer).
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const auto& [k, v] : args[0].entries()) {
    if (!k.is_string()) return type_error(kFn, "operand 1 keys must be strings");
    if (!v.is_string()) return type_error(kFn, "operand 1 values must be strings");
    pairs.emplace_back(k.as_string(), v.as_string());
  }
  std::string r;
  size_t i = 0;
  while (i <= s.size()) {
    bool hit = false;
    for (const auto& [from, to] : pairs) {
      if (!from.empty() && s.compare(i, from.size(), from) == 0) {
        r += to;
        i += from.size();
        hit = true;
        break;
      }
    }
    if (!hit) {
      if (i < s.size()) r.push_back(s[i]);
      ++i;
    }
    ZTSLM_TRY(need_bytes(ctx, kFn, r.size()));
  }
  *out = Value::string(std::move(r));
  return Status();
}
Status trim_impl(std::string_view kFn, A args, bool left, bool right, Value* out) {
  WANT(0, is_string, "string");
  WANT(1, is_string, "string");
  const auto s = runes(args[0].as_string());
  const auto cut = runes(args[1].as_string());
  size_t b = 0, e = s.size();
  if (left) {
    while (b < e && in_cutset(s[b], cut)) ++b;
  }
  if (right) {
    while (e > b && in_cutset(s[e - 1], cut)) --e;
  }
  *out = Value::string(from_runes(s, b, e));
  return Status();
}
BUILTIN(b_trim) { UNUSED_CTX; return trim_impl("trim", args, true, true, out); }
BUILTIN(b_trim_left) { UNUSED_CTX; return trim_impl("trim_left", args, true, false, out); }
BUILTIN(b_trim_right) { UNUSED_CTX; return trim_impl("trim_right", args, false, true, out); }
BUILTIN(b_trim_prefix) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "trim_prefix";
  WANT(0, is_string, "string");
  WANT(1, is_string, "string");
  const std::string& s = args[0].as_string();
  const std::string& p = args[1].as_string();
  *out = s.rfind(p, 0) == 0 ? Value::string(s.substr(p.size())) : args[0];
  return Status();
}
BUILTIN(b_trim_suffix) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "trim_suffix";
  WANT(0, is_string, "string");
  WANT(1, is_string, "string");
  const std::string& s = args[0].as_string();
  const std::string& p = args[1].as_string();
  const bool ends = s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
  *out = ends ? Value::string(s.substr(0, s.size() - p.size())) : args[0];
  return Status();
}
BUILTIN(b_trim_space) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "trim_space";
  WANT(0, is_string, "string");
  const auto s = runes(args[0].as_string());
  auto ws = [](char32_t c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' ||
           c == 0x85 || c == 0xA0 || c == 0x2000 || c == 0x3000 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x1680 || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F;
  };
  size_t b = 0, e = s.size();
  while (b < e && ws(s[b])) ++b;
  while (e > b && ws(s[e - 1])) --e;
  *out = Value::string(from_runes(s, b, e));
  return Status();
}
BUILTIN(b_sprintf) {
  (void)n_args;
  static constexpr std::string_view kFn = "sprintf";
  WANT(0, is_string, "string");
  WANT(1, is_array, "array");
  std::string r;
  ZTSLM_TRY(do_sprintf(args[0].as_string(), args[1].as_array(), &r));
  ZTSLM_TRY(need_bytes(ctx, kFn, r.size()));
  *out = Value::string(std::move(r));
  return Status();
}
BUILTIN(b_indexof) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "indexof";
  WANT(0, is_string, "string");
  WANT(1, is_string, "string");
  const std::string& s = args[0].as_string();
  const size_t p = args[1].as_string().empty() ? std::string::npos : s.find(args[1].as_string());
  if (p == std::string::npos) {
    *out = Value::integer(-1);
  } else {
    *out = Value::integer(static_cast<int64_t>(rune_count(std::string_view(s).substr(0, p))));
  }
  return Status();
}
BUILTIN(b_indexof_n) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "indexof_n";
  WANT(0, is_string, "string");
  WANT(1, is_string, "string");
  const std::string& s = args[0].as_string();
  const std::string& x = args[1].as_string();
  Array r;
  if (!x.empty()) {
    for (size_t p = s.find(x); p != std::string::npos; p = s.find(x, p + 1)) {
      r.push_back(Value::integer(static_cast<int64_t>(rune_count(std::string_view(s).substr(0, p)))));
    }
  }
  *out = Value::array(std::move(r));
  return Status();
}
BUILTIN(b_substring) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "substring";
  WANT(0, is_string, "string");
  WANT(1, is_number, "number");
  WANT(2, is_number, "number");
  if (!args[1].is_int()) return builtin_error(kFn, "operand 2 must be integer but got floating-point number");
  if (!args[2].is_int()) return builtin_error(kFn, "operand 3 must be integer but got floating-point number");
  const int64_t start = args[1].as_int();
  const int64_t len = args[2].as_int();
  if (start < 0) return builtin_error(kFn, "negative offset");
  const auto rs = runes(args[0].as_string());
  if (static_cast<uint64_t>(start) >= rs.size()) {
    *out = Value::string("");
    return Status();
  }
  size_t end = rs.size();
  if (len >= 0 && static_cast<uint64_t>(start) + static_cast<uint64_t>(len) < rs.size()) {
    end = static_cast<size_t>(start + len);
  }
  *out = Value::string(from_runes(rs, static_cast<size_t>(start), end));
  return Status();
}
BUILTIN(b_strings_reverse) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "strings.reverse";
  WANT(0, is_string, "string");
  auto rs = runes(args[0].as_string());
  std::reverse(rs.begin(), rs.end());
  *out = Value::string(from_runes(rs, 0, rs.size()));
  return Status();
}
BUILTIN(b_strings_count) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "strings.count";
  WANT(0, is_string, "string");
  WANT(1, is_string, "string");
  const std::string& s = args[0].as_string();
  const std::string& x = args[1].as_string();
  int64_t n = 0;
  if (x.empty()) {
    n = static_cast<int64_t>(rune_count(s)) + 1;
  } else {
    for (size_t p = s.find(x); p != std::string::npos; p = s.find(x, p + x.size())) ++n;
  }
  *out = Value::integer(n);
  return Status();
}
Status any_match(std::string_view kFn, A args, bool prefix, Value* out) {
  std::vector<std::string> a, b;
  if (args[0].is_string()) a.push_back(args[0].as_string());
  else if (!string_items(args[0], &a)) return type_error(kFn, ordinal_type_msg(0, "one of {string, set, array}", args[0]));
  if (args[1].is_string()) b.push_back(args[1].as_string());
  else if (!string_items(args[1], &b)) return type_error(kFn, ordinal_type_msg(1, "one of {string, set, array}", args[1]));
  bool r = false;
  for (const auto& s : a) {
    for (const auto& p : b) {
      if (prefix ? s.rfind(p, 0) == 0
                 : (s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0)) {
        r = true;
      }
    }
  }
  *out = Value::boolean(r);
  return Status();
}
BUILTIN(b_any_prefix) { UNUSED_CTX; return any_match("strings.any_prefix_match", args, true, out); }
BUILTIN(b_any_suffix) { UNUSED_CTX; return any_match("strings.any_suffix_match", args, false, out); }

// Regex.
Result<Regex> compile_re(std::string_view kFn, const std::string& p) {
  auto r = Regex::compile(p);
  if (!r.has_value()) return builtin_error(kFn, r.error().message());
  return r;
}
// SECURITY: matching costs text length x program size; refuse work beyond ~50 ms.
Status check_regex_work(std::string_view kFn, const Regex& re, const std::string& text) {
  if (text.size() * re.program_size() > 20'000'000) {
    return builtin_error(kFn, "text too long for this pattern");
  }
  return Status();
}
BUILTIN(b_regex_match) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "regex.match";
  WANT(0, is_string, "string");
  WANT(1, is_string, "string");
  ZTSLM_ASSIGN_OR_RETURN(Regex re, compile_re(kFn, args[0].as_string()));
  ZTSLM_TRY(check_regex_work(kFn, re, args[1].as_string()));
  *out = Value::boolean(re.search(args[1].as_string()));
  return Status();
}
BUILTIN(b_regex_is_valid) {
  UNUSED_CTX;
  *out = Value::boolean(args[0].is_string() && Regex::compile(args[0].as_string()).has_value());
  return Status();
}
// Enumerates non-overlapping matches (at most `n`, -1 for all).
template <typename F>
void each_match(const Regex& re, const std::string& s, int64_t n, F&& f) {
  size_t from = 0;
  int64_t count = 0;
  std::vector<long> g;
  long prev_end = -1;
  while (from <= s.size() && (n < 0 || count < n)) {
    if (!re.find(s, from, &g)) break;
    const auto b = static_cast<size_t>(g[0]);
    const auto e = static_cast<size_t>(g[1]);
    if (e == b && static_cast<long>(b) == prev_end) {
      // An empty match right after the previous match is skipped (Go semantics).
      from = b + 1;
      continue;
    }
    f(g);
    ++count;
    prev_end = static_cast<long>(e);
    from = e > b ? e : e + 1;
  }
}
BUILTIN(b_regex_find_n) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "regex.find_n";
  WANT(0, is_string, "string");
  WANT(1, is_string, "string");
  WANT(2, is_number, "number");
  ZTSLM_ASSIGN_OR_RETURN(Regex re, compile_re(kFn, args[0].as_string()));
  const std::string& s = args[1].as_string();
  ZTSLM_TRY(check_regex_work(kFn, re, s));
  Array r;
  each_match(re, s, args[2].is_int() ? args[2].as_int() : -1, [&](const std::vector<long>& g) {
    r.push_back(Value::string(s.substr(static_cast<size_t>(g[0]), static_cast<size_t>(g[1] - g[0]))));
  });
  *out = Value::array(std::move(r));
  return Status();
}
BUILTIN(b_regex_submatch) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "regex.find_all_string_submatch_n";
  WANT(0, is_string, "string");
  WANT(1, is_string, "string");
  WANT(2, is_number, "number");
  ZTSLM_ASSIGN_OR_RETURN(Regex re, compile_re(kFn, args[0].as_string()));
  const std::string& s = args[1].as_string();
  ZTSLM_TRY(check_regex_work(kFn, re, s));
  Array r;
  each_match(re, s, args[2].is_int() ? args[2].as_int() : -1, [&](const std::vector<long>& g) {
    Array m;
    for (size_t i = 0; i + 1 < g.size(); i += 2) {
      if (g[i] < 0 || g[i + 1] < 0) m.push_back(Value::string(""));
      else m.push_back(Value::string(s.substr(static_cast<size_t>(g[i]), static_cast<size_t>(g[i + 1] - g[i]))));
    }
    r.push_back(Value::array(std::move(m)));
  });
  *out = Value::array(std::move(r));
  return Status();
}
BUILTIN(b_regex_split) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "regex.split";
  WANT(0, is_string, "string");
  WANT(1, is_string, "string");
  ZTSLM_ASSIGN_OR_RETURN(Regex re, compile_re(kFn, args[0].as_string()));
  const std::string& s = args[1].as_string();
  ZTSLM_TRY(check_regex_work(kFn, re, s));
  Array r;
  size_t last = 0;
  each_match(re, s, -1, [&](const std::vector<long>& g) {
    const auto b = static_cast<size_t>(g[0]);
    const auto e = static_cast<size_t>(g[1]);
    if (e == 0 && b == 0) return;
    r.push_back(Value::string(s.substr(last, b - last)));
    last = e;
  });
  r.push_back(Value::string(s.substr(std::min(last, s.size()))));
  *out = Value::array(std::move(r));
  return Status();
}
BUILTIN(b_regex_replace) {
  (void)n_args;
  static constexpr std::string_view kFn = "regex.replace";
  WANT(0, is_string, "string");
  WANT(1, is_string, "string");
  WANT(2, is_string, "string");
  ZTSLM_ASSIGN_OR_RETURN(Regex re, compile_re(kFn, args[1].as_string()));
  const std::string& s = args[0].as_string();
  ZTSLM_TRY(check_regex_work(kFn, re, s));
  const std::string& repl = args[2].as_string();
  std::string r;
  size_t last = 0;
  Status st;
  each_match(re, s, -1, [&](const std::vector<long>& g) {
    const auto b = static_cast<size_t>(g[0]);
    r.append(s, last, b - last);
    // $1 / ${1} expansion.
    for (size_t i = 0; i < repl.size(); ++i) {
      if (repl[i] == '$' && i + 1 < repl.size()) {
        size_t j = i + 1;
        bool brace = repl[j] == '{';
        if (brace) ++j;
        size_t num = 0, k = j;
        while (k < repl.size() && repl[k] >= '0' && repl[k] <= '9') num = num * 10 + static_cast<size_t>(repl[k++] - '0');
        if (k > j && (!brace || (k < repl.size() && repl[k] == '}'))) {
          if (2 * num + 1 < g.size() && g[2 * num] >= 0) {
            r.append(s, static_cast<size_t>(g[2 * num]), static_cast<size_t>(g[2 * num + 1] - g[2 * num]));
          }
          i = brace ? k : k - 1;
          continue;
        }
        if (repl[j] == '$') {
          r.push_back('$');
          i = j;
          continue;
        }
      }
      r.push_back(repl[i]);
    }
    last = static_cast<size_t>(g[1]);
    if (st.ok()) st = need_bytes(ctx, kFn, r.size());
  });
  ZTSLM_TRY(st);
  r.append(s, std::min(last, s.size()), std::string::npos);
  *out = Value::string(std::move(r));
  return Status();
}
BUILTIN(b_regex_template_match) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "regex.template_match";
  for (size_t i = 0; i < 4; ++i) WANT(i, is_string, "string");
  const std::string& tpl = args[0].as_string();
  const std::string& d1 = args[2].as_string();
  const std::string& d2 = args[3].as_string();
  // Literal parts are escaped; delimited parts are regexes.
  std::string pat = "^";
  size_t i = 0;
  while (i < tpl.size()) {
    const size_t b = d1.empty() ? std::string::npos : tpl.find(d1, i);
    const std::string lit = tpl.substr(i, b == std::string::npos ? std::string::npos : b - i);
    for (char c : lit) {
      if (std::strchr("\\.+*?()|[]{}^$", c) != nullptr) pat.push_back('\\');
      pat.push_back(c);
    }
    if (b == std::string::npos) break;
    const size_t e = tpl.find(d2, b + d1.size());
    if (e == std::string::npos) return builtin_error(kFn, "unbalanced delimiters");
    pat += "(?:" + tpl.substr(b + d1.size(), e - b - d1.size()) + ")";
    i = e + d2.size();
  }
  pat += "$";
  ZTSLM_ASSIGN_OR_RETURN(Regex re, compile_re(kFn, pat));
  ZTSLM_TRY(check_regex_work(kFn, re, args[1].as_string()));
  *out = Value::boolean(re.search(args[1].as_string()));
  return Status();
}

// Glob.
BUILTIN(b_glob_match) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "glob.match";
  WANT(0, is_string, "string");
  WANT(2, is_string, "string");
  std::vector<char32_t> delims;
  if (args[1].is_null()) {
    delims.push_back('.');
  } else if (args[1].is_array()) {
    for (const Value& d : args[1].as_array()) {
      if (!d.is_string()) return type_error(kFn, "operand 2 must be array of strings");
      for (char32_t c : runes(d.as_string())) delims.push_back(c);
    }
    if (args[1].as_array().empty()) delims.push_back('.');
  } else {
    return type_error(kFn, ordinal_type_msg(1, "one of {array, null}", args[1]));
  }
  {
    // Reject malformed patterns: a trailing escape, an unclosed class, a reversed range.
    const auto p = runes(args[0].as_string());
    for (size_t i = 0; i < p.size(); ++i) {
      if (p[i] == '\\') {
        if (i + 1 >= p.size()) return builtin_error(kFn, "syntax error in pattern: unexpected end of input after escape");
        ++i;
      } else if (p[i] == '[') {
        size_t j = i + 1;
        if (j < p.size() && (p[j] == '!' || p[j] == '^')) ++j;
        bool closed = false;
        for (; j < p.size(); ++j) {
          if (p[j] == '\\') {
            ++j;
            continue;
          }
          if (p[j] == ']') {
            closed = true;
            break;
          }
          if (p[j] == '-' && j + 1 < p.size() && p[j + 1] != ']' && j > i + 1 && p[j + 1] < p[j - 1]) {
            return builtin_error(kFn, "syntax error in pattern: invalid range in character class");
          }
        }
        if (!closed) return builtin_error(kFn, "syntax error in pattern: unclosed character class");
        i = j;
      }
    }
  }
  std::vector<std::string> pats;
  if (!glob_expand(args[0].as_string(), &pats)) return builtin_error(kFn, "too many alternatives");
  const auto text = runes(args[2].as_string());
  if (text.size() > 65536) return builtin_error(kFn, "text too long");
  bool r = false;
  for (const std::string& p : pats) {
    GlobMatcher m;
    m.pat = runes(p);
    // SECURITY: the memo table is pattern x text; bound it before allocating.
    if ((m.pat.size() + 1) * (text.size() + 1) > (size_t{1} << 22)) {
      return builtin_error(kFn, "pattern and text too long to match");
    }
    m.text = text;
    m.delims = delims;
    m.memo.assign((m.pat.size() + 1) * (m.text.size() + 1), -1);
    if (m.match(0, 0)) {
      r = true;
      break;
    }
  }
  *out = Value::boolean(r);
  return Status();
}
BUILTIN(b_glob_quote_meta) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "glob.quote_meta";
  WANT(0, is_string, "string");
  std::string r;
  for (char c : args[0].as_string()) {
    if (std::strchr("*?\\[]{}", c) != nullptr) r.push_back('\\');
    r.push_back(c);
  }
  *out = Value::string(std::move(r));
  return Status();
}

// Arrays.
BUILTIN(b_array_concat) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "array.concat";
  WANT(0, is_array, "array");
  WANT(1, is_array, "array");
  Array r = args[0].as_array();
  r.insert(r.end(), args[1].as_array().begin(), args[1].as_array().end());
  *out = Value::array(std::move(r));
  return Status();
}
BUILTIN(b_array_slice) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "array.slice";
  WANT(0, is_array, "array");
  WANT(1, is_number, "number");
  WANT(2, is_number, "number");
  const Array& a = args[0].as_array();
  const auto n = static_cast<int64_t>(a.size());
  int64_t b = static_cast<int64_t>(std::floor(args[1].as_double()));
  int64_t e = static_cast<int64_t>(std::floor(args[2].as_double()));
  b = std::clamp<int64_t>(b, 0, n);
  e = std::clamp<int64_t>(e, 0, n);
  if (b > e) b = e;
  *out = Value::array(Array(a.begin() + b, a.begin() + e));
  return Status();
}
BUILTIN(b_array_reverse) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "array.reverse";
  WANT(0, is_array, "array");
  Array r = args[0].as_array();
  std::reverse(r.begin(), r.end());
  *out = Value::array(std::move(r));
  return Status();
}

// Objects.
BUILTIN(b_object_get) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "object.get";
  WANT(0, is_object, "object");
  if (args[1].is_array()) {
    Value cur = args[0];
    for (const Value& k : args[1].as_array()) {
      cur = cur.is_collection() ? cur.index(k) : Value();
      if (!cur.is_defined()) break;
    }
    *out = cur.is_defined() ? cur : args[2];
    return Status();
  }
  const Value v = args[0].get(args[1]);
  *out = v.is_defined() ? v : args[2];
  return Status();
}
BUILTIN(b_object_keys) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "object.keys";
  WANT(0, is_object, "object");
  SetItems r;
  for (const auto& [k, v] : args[0].entries()) r.push_back(k);
  *out = Value::set_sorted(std::move(r));
  return Status();
}
BUILTIN(b_object_union) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "object.union";
  WANT(0, is_object, "object");
  WANT(1, is_object, "object");
  *out = obj_union(args[0], args[1]);
  return Status();
}
BUILTIN(b_object_union_n) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "object.union_n";
  WANT(0, is_array, "array");
  Value r = Value::empty_object();
  for (const Value& o : args[0].as_array()) {
    if (!o.is_object()) return type_error(kFn, "operand 1 must be array of objects");
    r = obj_union(r, o);
  }
  *out = r;
  return Status();
}
bool key_set(const Value& keys, std::vector<Value>* out) {
  if (keys.is_array() || keys.is_set()) {
    for (const Value& k : keys.as_array()) out->push_back(k);
    return true;
  }
  if (keys.is_object()) {
    for (const auto& [k, v] : keys.entries()) out->push_back(k);
    return true;
  }
  return false;
}
BUILTIN(b_object_remove) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "object.remove";
  WANT(0, is_object, "object");
  std::vector<Value> keys;
  if (!key_set(args[1], &keys)) {
    return type_error(kFn, ordinal_type_msg(1, "one of {object, array, set}", args[1]));
  }
  Entries r;
  for (const auto& [k, v] : args[0].entries()) {
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) r.emplace_back(k, v);
  }
  *out = Value::object_sorted(std::move(r));
  return Status();
}
BUILTIN(b_object_filter) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "object.filter";
  WANT(0, is_object, "object");
  std::vector<Value> keys;
  if (!key_set(args[1], &keys)) {
    return type_error(kFn, ordinal_type_msg(1, "one of {object, array, set}", args[1]));
  }
  Entries r;
  for (const auto& [k, v] : args[0].entries()) {
    if (std::find(keys.begin(), keys.end(), k) != keys.end()) r.emplace_back(k, v);
  }
  *out = Value::object_sorted(std::move(r));
  return Status();
}
BUILTIN(b_object_subset) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "object.subset";
  const bool ok0 = args[0].is_object() || args[0].is_array() || args[0].is_set();
  const bool ok1 = args[1].is_object() || args[1].is_array() || args[1].is_set();
  if (!ok0) return type_error(kFn, ordinal_type_msg(0, "one of {object, array, set}", args[0]));
  if (!ok1) return type_error(kFn, ordinal_type_msg(1, "one of {object, array, set}", args[1]));
  if (args[0].is_object() != args[1].is_object()) {
    return type_error(kFn, "both arguments must be objects");
  }
  *out = Value::boolean(subset_of(args[0], args[1]));
  return Status();
}
BUILTIN(b_json_filter) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "json.filter";
  WANT(0, is_object, "object");
  PathTrie t;
  ZTSLM_TRY(build_trie(kFn, args[1], &t));
  *out = json_filter(args[0], t);
  return Status();
}
BUILTIN(b_json_remove) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "json.remove";
  WANT(0, is_object, "object");
  PathTrie t;
  ZTSLM_TRY(build_trie(kFn, args[1], &t));
  *out = json_remove(args[0], t);
  return Status();
}

// JSON and encodings.
BUILTIN(b_json_marshal) {
  (void)n_args;
  static constexpr std::string_view kFn = "json.marshal";
  std::string s = to_json(args[0]);
  ZTSLM_TRY(need_bytes(ctx, kFn, s.size()));
  *out = Value::string(std::move(s));
  return Status();
}
BUILTIN(b_json_unmarshal) {
  (void)n_args;
  static constexpr std::string_view kFn = "json.unmarshal";
  WANT(0, is_string, "string");
  JsonLimits lim;
  lim.max_bytes = ctx.max_bytes > 0 ? ctx.max_bytes : lim.max_bytes;
  auto r = parse_json(args[0].as_string(), lim);
  if (!r.has_value()) return builtin_error(kFn, r.error().message());
  *out = *r;
  return Status();
}
BUILTIN(b_json_is_valid) {
  UNUSED_CTX;
  *out = Value::boolean(args[0].is_string() && parse_json(args[0].as_string()).has_value());
  return Status();
}
BUILTIN(b_base64_encode) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "base64.encode";
  WANT(0, is_string, "string");
  *out = Value::string(b64_encode(args[0].as_string(), kB64, true));
  return Status();
}
BUILTIN(b_base64_decode) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "base64.decode";
  WANT(0, is_string, "string");
  std::string r;
  if (!b64_decode(args[0].as_string(), false, true, &r)) return builtin_error(kFn, "illegal base64 data");
  *out = Value::string(std::move(r));
  return Status();
}
BUILTIN(b_base64_is_valid) {
  UNUSED_CTX;
  std::string r;
  *out = Value::boolean(args[0].is_string() && b64_decode(args[0].as_string(), false, true, &r));
  return Status();
}
BUILTIN(b_base64url_encode) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "base64url.encode";
  WANT(0, is_string, "string");
  *out = Value::string(b64_encode(args[0].as_string(), kB64Url, true));
  return Status();
}
BUILTIN(b_base64url_encode_no_pad) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "base64url.encode_no_pad";
  WANT(0, is_string, "string");
  *out = Value::string(b64_encode(args[0].as_string(), kB64Url, false));
  return Status();
}
BUILTIN(b_base64url_decode) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "base64url.decode";
  WANT(0, is_string, "string");
  std::string r;
  if (!b64_decode(args[0].as_string(), true, false, &r)) return builtin_error(kFn, "illegal base64 data");
  *out = Value::string(std::move(r));
  return Status();
}
BUILTIN(b_hex_encode) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "hex.encode";
  WANT(0, is_string, "string");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string r;
  for (unsigned char c : args[0].as_string()) {
    r.push_back(kHex[c >> 4]);
    r.push_back(kHex[c & 15]);
  }
  *out = Value::string(std::move(r));
  return Status();
}
BUILTIN(b_hex_decode) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "hex.decode";
  WANT(0, is_string, "string");
  const std::string& s = args[0].as_string();
  if (s.size() % 2 != 0) return builtin_error(kFn, "odd length hex string");
  std::string r;
  for (size_t i = 0; i < s.size(); i += 2) {
    int v = 0;
    for (size_t j = 0; j < 2; ++j) {
      const char c = s[i + j];
      int d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else return builtin_error(kFn, "invalid byte in hex string");
      v = v * 16 + d;
    }
    r.push_back(static_cast<char>(v));
  }
  *out = Value::string(std::move(r));
  return Status();
}
BUILTIN(b_urlquery_encode) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "urlquery.encode";
  WANT(0, is_string, "string");
  *out = Value::string(url_escape(args[0].as_string()));
  return Status();
}
BUILTIN(b_urlquery_decode) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "urlquery.decode";
  WANT(0, is_string, "string");
  std::string r;
  if (!url_unescape(args[0].as_string(), &r)) return builtin_error(kFn, "invalid URL escape");
  *out = Value::string(std::move(r));
  return Status();
}
BUILTIN(b_urlquery_encode_object) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "urlquery.encode_object";
  WANT(0, is_object, "object");
  std::string r;
  for (const auto& [k, v] : args[0].entries()) {
    if (!k.is_string()) return type_error(kFn, "object keys must be strings");
    std::vector<std::string> vals;
    if (v.is_string()) vals.push_back(v.as_string());
    else if (!string_items(v, &vals)) return type_error(kFn, "object values must be strings or arrays/sets of strings");
    for (const std::string& x : vals) {
      if (!r.empty()) r.push_back('&');
      r += url_escape(k.as_string()) + "=" + url_escape(x);
    }
  }
  *out = Value::string(std::move(r));
  return Status();
}

// Types.
BUILTIN(b_type_name) { UNUSED_CTX; *out = Value::string(std::string(args[0].type_name())); return Status(); }
BUILTIN(b_is_string) { UNUSED_CTX; *out = Value::boolean(args[0].is_string()); return Status(); }
BUILTIN(b_is_number) { UNUSED_CTX; *out = Value::boolean(args[0].is_number()); return Status(); }
BUILTIN(b_is_boolean) { UNUSED_CTX; *out = Value::boolean(args[0].is_bool()); return Status(); }
BUILTIN(b_is_array) { UNUSED_CTX; *out = Value::boolean(args[0].is_array()); return Status(); }
BUILTIN(b_is_set) { UNUSED_CTX; *out = Value::boolean(args[0].is_set()); return Status(); }
BUILTIN(b_is_object) { UNUSED_CTX; *out = Value::boolean(args[0].is_object()); return Status(); }
BUILTIN(b_is_null) { UNUSED_CTX; *out = Value::boolean(args[0].is_null()); return Status(); }

// Network.
Status cidr_or_ip_list(std::string_view kFn, const Value& v, size_t idx, bool allow_ip,
                       std::vector<std::pair<Value, Cidr>>* out) {
  auto add = [&](const Value& key, const Value& s) -> Status {
    if (!s.is_string()) return type_error(kFn, ordinal_type_msg(idx, "string", s));
    Cidr c{};
    if (!parse_cidr(s.as_string(), &c, allow_ip)) {
      return builtin_error(kFn, "invalid CIDR address: " + printable(s.as_string(), 64));
    }
    out->emplace_back(key, c);
    return Status();
  };
  if (v.is_string()) return add(v, v);
  if (v.is_array()) {
    for (size_t i = 0; i < v.as_array().size(); ++i) {
      const Value& x = v.as_array()[i];
      ZTSLM_TRY(add(Value::integer(static_cast<int64_t>(i)), x.is_array() && !x.as_array().empty() ? x.as_array()[0] : x));
    }
    return Status();
  }
  if (v.is_set()) {
    for (const Value& x : v.items()) ZTSLM_TRY(add(x, x));
    return Status();
  }
  if (v.is_object()) {
    for (const auto& [k, x] : v.entries()) ZTSLM_TRY(add(k, x));
    return Status();
  }
  return type_error(kFn, ordinal_type_msg(idx, "one of {string, array, set, object}", v));
}
BUILTIN(b_net_cidr_contains) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "net.cidr_contains";
  WANT(0, is_string, "string");
  WANT(1, is_string, "string");
  Cidr a{}, b{};
  if (!parse_cidr(args[0].as_string(), &a, false)) return builtin_error(kFn, "invalid CIDR address: " + printable(args[0].as_string(), 64));
  if (!parse_cidr(args[1].as_string(), &b, true)) return builtin_error(kFn, "invalid CIDR or IP address: " + printable(args[1].as_string(), 64));
  *out = Value::boolean(a.v4 == b.v4 && b.bits >= a.bits && prefix_eq(a.addr, b.addr, a.bits));
  return Status();
}
BUILTIN(b_net_cidr_intersects) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "net.cidr_intersects";
  WANT(0, is_string, "string");
  WANT(1, is_string, "string");
  Cidr a{}, b{};
  if (!parse_cidr(args[0].as_string(), &a, false) || !parse_cidr(args[1].as_string(), &b, false)) {
    return builtin_error(kFn, "invalid CIDR address");
  }
  *out = Value::boolean(a.v4 == b.v4 && prefix_eq(a.addr, b.addr, std::min(a.bits, b.bits)));
  return Status();
}
BUILTIN(b_net_cidr_is_valid) {
  UNUSED_CTX;
  Cidr c{};
  *out = Value::boolean(args[0].is_string() && parse_cidr(args[0].as_string(), &c, false));
  return Status();
}
BUILTIN(b_net_cidr_contains_matches) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "net.cidr_contains_matches";
  std::vector<std::pair<Value, Cidr>> a, b;
  ZTSLM_TRY(cidr_or_ip_list(kFn, args[0], 0, false, &a));
  ZTSLM_TRY(cidr_or_ip_list(kFn, args[1], 1, true, &b));
  SetItems r;
  for (const auto& [ka, ca] : a) {
    for (const auto& [kb, cb] : b) {
      if (ca.v4 == cb.v4 && cb.bits >= ca.bits && prefix_eq(ca.addr, cb.addr, ca.bits)) {
        r.push_back(Value::array({ka, kb}));
      }
    }
  }
  *out = Value::set(std::move(r));
  return Status();
}

// Semver.
BUILTIN(b_semver_is_valid) {
  UNUSED_CTX;
  SemVer v;
  *out = Value::boolean(args[0].is_string() && parse_semver(args[0].as_string(), &v));
  return Status();
}
BUILTIN(b_semver_compare) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "semver.compare";
  WANT(0, is_string, "string");
  WANT(1, is_string, "string");
  SemVer a, b;
  if (!parse_semver(args[0].as_string(), &a)) return builtin_error(kFn, "operand 1: string " + printable(args[0].as_string(), 64) + " is not a valid SemVer");
  if (!parse_semver(args[1].as_string(), &b)) return builtin_error(kFn, "operand 2: string " + printable(args[1].as_string(), 64) + " is not a valid SemVer");
  *out = Value::integer(semver_cmp(a, b));
  return Status();
}

// Units.
BUILTIN(b_units_parse) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "units.parse";
  WANT(0, is_string, "string");
  Status err;
  if (!parse_units(kFn, args[0].as_string(), false, out, &err)) return err;
  return Status();
}
BUILTIN(b_units_parse_bytes) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "units.parse_bytes";
  WANT(0, is_string, "string");
  Status err;
  if (!parse_units(kFn, args[0].as_string(), true, out, &err)) return err;
  return Status();
}

// JWT.
BUILTIN(b_io_jwt_decode) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "io.jwt.decode";
  WANT(0, is_string, "string");
  const std::string& t = args[0].as_string();
  const size_t d1 = t.find('.');
  const size_t d2 = d1 == std::string::npos ? std::string::npos : t.find('.', d1 + 1);
  if (d2 == std::string::npos || t.find('.', d2 + 1) != std::string::npos) {
    return builtin_error(kFn, "encoded JWT had no period separators");
  }
  std::string h, p, sig;
  if (!b64_decode(std::string_view(t).substr(0, d1), true, false, &h) ||
      !b64_decode(std::string_view(t).substr(d1 + 1, d2 - d1 - 1), true, false, &p) ||
      !b64_decode(std::string_view(t).substr(d2 + 1), true, false, &sig)) {
    return builtin_error(kFn, "JWT segment is not valid base64url");
  }
  auto hv = parse_json(h);
  auto pv = parse_json(p);
  if (!hv.has_value() || !hv->is_object()) return builtin_error(kFn, "JWT header is not a JSON object");
  if (!pv.has_value() || !pv->is_object()) return builtin_error(kFn, "JWT payload is not a JSON object");
  if (hv->get("cty").is_string() && hv->get("cty").as_string() == "JWT") {
    return builtin_error(kFn, "nested JWTs are not supported");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string sh;
  for (unsigned char c : sig) {
    sh.push_back(kHex[c >> 4]);
    sh.push_back(kHex[c & 15]);
  }
  *out = Value::array({*hv, *pv, Value::string(std::move(sh))});
  return Status();
}

// Time.
BUILTIN(b_time_now_ns) {
  (void)n_args;
  (void)args;
  if (!ctx.have_now) {
    ctx.now_ns = ctx.clock != nullptr ? ctx.clock->now_ns() : 0;
    ctx.have_now = true;
  }
  *out = Value::integer(ctx.now_ns);
  return Status();
}
BUILTIN(b_time_parse_rfc3339_ns) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "time.parse_rfc3339_ns";
  WANT(0, is_string, "string");
  int64_t ns = 0;
  if (!parse_rfc3339(args[0].as_string(), &ns)) {
    return builtin_error(kFn, "parsing time " + printable(args[0].as_string(), 64) + " as RFC3339 failed");
  }
  *out = Value::integer(ns);
  return Status();
}
Status time_arg(std::string_view kFn, const Value& a, int64_t* ns, int64_t* offset_s) {
  *offset_s = 0;
  if (a.is_number()) {
    if (!a.is_int()) return builtin_error(kFn, "timestamp must be an integer");
    *ns = a.as_int();
    return Status();
  }
  if (a.is_array() && a.size() == 2 && a.as_array()[0].is_int() && a.as_array()[1].is_string()) {
    *ns = a.as_array()[0].as_int();
    const std::string& tz = a.as_array()[1].as_string();
    if (tz.empty() || tz == "UTC" || tz == "Local") return Status();
    if (!fixed_zone_offset(tz, offset_s)) {
      return builtin_error(kFn, "unknown time zone " + printable(tz, 64));
    }
    return Status();
  }
  return type_error(kFn, ordinal_type_msg(0, "one of {number, array}", a));
}
BUILTIN(b_time_date) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "time.date";
  int64_t ns = 0, off = 0;
  ZTSLM_TRY(time_arg(kFn, args[0], &ns, &off));
  const CivilTime c = to_civil(ns, off);
  *out = Value::array({Value::integer(c.year), Value::integer(c.month), Value::integer(c.day)});
  return Status();
}
BUILTIN(b_time_clock) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "time.clock";
  int64_t ns = 0, off = 0;
  ZTSLM_TRY(time_arg(kFn, args[0], &ns, &off));
  const CivilTime c = to_civil(ns, off);
  *out = Value::array({Value::integer(c.hour), Value::integer(c.minute), Value::integer(c.second)});
  return Status();
}
BUILTIN(b_time_weekday) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "time.weekday";
  int64_t ns = 0, off = 0;
  ZTSLM_TRY(time_arg(kFn, args[0], &ns, &off));
  static const char* kDays[] = {"Sunday", "Monday", "Tuesday", "Wednesday",
                                "Thursday", "Friday", "Saturday"};
  *out = Value::string(kDays[to_civil(ns, off).weekday]);
  return Status();
}
BUILTIN(b_time_add_date) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "time.add_date";
  for (size_t i = 0; i < 4; ++i) WANT(i, is_number, "number");
  for (size_t i = 0; i < 4; ++i) {
    if (!args[i].is_int()) return builtin_error(kFn, "operands must be integers");
  }
  int64_t r = 0;
  if (!add_date(args[0].as_int(), args[1].as_int(), args[2].as_int(), args[3].as_int(), &r)) {
    return builtin_error(kFn, "time outside of valid range");
  }
  *out = Value::integer(r);
  return Status();
}
BUILTIN(b_time_diff) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "time.diff";
  int64_t a = 0, b = 0, oa = 0, ob = 0;
  ZTSLM_TRY(time_arg(kFn, args[0], &a, &oa));
  ZTSLM_TRY(time_arg(kFn, args[1], &b, &ob));
  int64_t d[6];
  time_diff(a, b, d);
  *out = Value::array({Value::integer(d[0]), Value::integer(d[1]), Value::integer(d[2]),
                       Value::integer(d[3]), Value::integer(d[4]), Value::integer(d[5])});
  return Status();
}
BUILTIN(b_time_parse_duration_ns) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "time.parse_duration_ns";
  WANT(0, is_string, "string");
  int64_t ns = 0;
  std::string why;
  if (!parse_duration(args[0].as_string(), &ns, &why)) return builtin_error(kFn, "time: " + why);
  *out = Value::integer(ns);
  return Status();
}
BUILTIN(b_time_parse_ns) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "time.parse_ns";
  WANT(0, is_string, "string");
  WANT(1, is_string, "string");
  int64_t ns = 0;
  if (!parse_go_layout(args[0].as_string(), args[1].as_string(), &ns)) {
    return builtin_error(kFn, "parsing time " + printable(args[1].as_string(), 64) + " failed");
  }
  *out = Value::integer(ns);
  return Status();
}
BUILTIN(b_time_format) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "time.format";
  int64_t ns = 0, off = 0;
  std::string layout = "2006-01-02T15:04:05.999999999Z07:00";
  std::string tz;
  const Value& a = args[0];
  if (a.is_array() && a.size() == 3) {
    if (!a.as_array()[0].is_int() || !a.as_array()[1].is_string() || !a.as_array()[2].is_string()) {
      return type_error(kFn, "operand 1 must be [ns, tz, layout]");
    }
    ns = a.as_array()[0].as_int();
    tz = a.as_array()[1].as_string();
    layout = a.as_array()[2].as_string();
    if (!(tz.empty() || tz == "UTC" || tz == "Local") && !fixed_zone_offset(tz, &off)) {
      return builtin_error(kFn, "unknown time zone " + printable(tz, 64));
    }
  } else {
    ZTSLM_TRY(time_arg(kFn, a, &ns, &off));
  }
  *out = Value::string(format_go_layout(ns, off, layout));
  return Status();
}

BUILTIN(b_print) {
  (void)n_args;
  if (ctx.print_sink != nullptr) {
    std::string line;
    for (size_t i = 0; i < n_args; ++i) {
      if (i > 0) line += " ";
      line += args[i].is_defined() ? format_v(args[i]) : "<undefined>";
    }
    ctx.print_sink->push_back(std::move(line));
  }
  *out = Value::boolean(true);
  return Status();
}
BUILTIN(b_trace) {
  UNUSED_CTX;
  (void)args;
  *out = Value::boolean(true);
  return Status();
}
BUILTIN(b_walk_placeholder) {
  UNUSED_CTX;
  (void)args;
  (void)out;
  return Status();
}
BUILTIN(b_cast_array) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "cast_array";
  if (args[0].is_array()) {
    *out = args[0];
  } else if (args[0].is_set()) {
    *out = Value::array(args[0].items());
  } else {
    return type_error(kFn, ordinal_type_msg(0, "one of {array, set}", args[0]));
  }
  return Status();
}
BUILTIN(b_cast_set) {
  UNUSED_CTX;
  static constexpr std::string_view kFn = "cast_set";
  if (args[0].is_set()) {
    *out = args[0];
  } else if (args[0].is_array()) {
    *out = Value::set(args[0].as_array());
  } else {
    return type_error(kFn, ordinal_type_msg(0, "one of {array, set}", args[0]));
  }
  return Status();
}
const std::unordered_map<std::string_view, Builtin>& table() {
  static const auto* t = [] {
    auto* m = new std::unordered_map<std::string_view, Builtin>();
    auto add = [&](std::string_view name, int arity, BuiltinFn fn) {
      (*m)[name] = Builtin{name, arity, fn, name == "walk", name == "print"};
    };
    add("equal", 2, b_equal);
    add("neq", 2, b_neq);
    add("lt", 2, b_lt);
    add("lte", 2, b_lte);
    add("gt", 2, b_gt);
    add("gte", 2, b_gte);
    add("plus", 2, b_plus);
    add("minus", 2, b_minus);
    add("mul", 2, b_mul);
    add("div", 2, b_div);
    add("rem", 2, b_rem);
    add("and", 2, b_and);
    add("or", 2, b_or);
    add("internal.member_2", 2, b_member2);
    add("internal.member_3", 3, b_member3);
    add("count", 1, b_count);
    add("sum", 1, b_sum);
    add("product", 1, b_product);
    add("max", 1, b_max);
    add("min", 1, b_min);
    add("sort", 1, b_sort);
    add("all", 1, b_all);
    add("any", 1, b_any);
    add("abs", 1, b_abs);
    add("round", 1, b_round);
    add("ceil", 1, b_ceil);
    add("floor", 1, b_floor);
    add("numbers.range", 2, b_numbers_range);
    add("numbers.range_step", 3, b_numbers_range_step);
    add("to_number", 1, b_to_number);
    add("format_int", 2, b_format_int);
    add("bits.and", 2, b_bits_and);
    add("bits.or", 2, b_bits_or);
    add("bits.xor", 2, b_bits_xor);
    add("bits.lsh", 2, b_bits_lsh);
    add("bits.rsh", 2, b_bits_rsh);
    add("bits.negate", 1, b_bits_negate);
    add("intersection", 1, b_intersection);
    add("union", 1, b_union);
    add("concat", 2, b_concat);
    add("contains", 2, b_contains);
    add("startswith", 2, b_startswith);
    add("endswith", 2, b_endswith);
    add("lower", 1, b_lower);
    add("upper", 1, b_upper);
    add("split", 2, b_split);
    add("replace", 3, b_replace);
    add("strings.replace_n", 2, b_strings_replace_n);
    add("strings.reverse", 1, b_strings_reverse);
    add("strings.count", 2, b_strings_count);
    add("strings.any_prefix_match", 2, b_any_prefix);
    add("strings.any_suffix_match", 2, b_any_suffix);
    add("trim", 2, b_trim);
    add("trim_left", 2, b_trim_left);
    add("trim_right", 2, b_trim_right);
    add("trim_prefix", 2, b_trim_prefix);
    add("trim_suffix", 2, b_trim_suffix);
    add("trim_space", 1, b_trim_space);
    add("sprintf", 2, b_sprintf);
    add("indexof", 2, b_indexof);
    add("indexof_n", 2, b_indexof_n);
    add("substring", 3, b_substring);
    add("regex.match", 2, b_regex_match);
    add("re_match", 2, b_regex_match);
    add("regex.is_valid", 1, b_regex_is_valid);
    add("regex.find_n", 3, b_regex_find_n);
    add("regex.find_all_string_submatch_n", 3, b_regex_submatch);
    add("regex.split", 2, b_regex_split);
    add("regex.replace", 3, b_regex_replace);
    add("regex.template_match", 4, b_regex_template_match);
    add("glob.match", 3, b_glob_match);
    add("glob.quote_meta", 1, b_glob_quote_meta);
    add("array.concat", 2, b_array_concat);
    add("array.slice", 3, b_array_slice);
    add("array.reverse", 1, b_array_reverse);
    add("object.get", 3, b_object_get);
    add("object.keys", 1, b_object_keys);
    add("object.union", 2, b_object_union);
    add("object.union_n", 1, b_object_union_n);
    add("object.remove", 2, b_object_remove);
    add("object.filter", 2, b_object_filter);
    add("object.subset", 2, b_object_subset);
    add("json.filter", 2, b_json_filter);
    add("json.remove", 2, b_json_remove);
    add("json.marshal", 1, b_json_marshal);
    add("json.unmarshal", 1, b_json_unmarshal);
    add("json.is_valid", 1, b_json_is_valid);
    add("base64.encode", 1, b_base64_encode);
    add("base64.decode", 1, b_base64_decode);
    add("base64.is_valid", 1, b_base64_is_valid);
    add("base64url.encode", 1, b_base64url_encode);
    add("base64url.encode_no_pad", 1, b_base64url_encode_no_pad);
    add("base64url.decode", 1, b_base64url_decode);
    add("hex.encode", 1, b_hex_encode);
    add("hex.decode", 1, b_hex_decode);
    add("urlquery.encode", 1, b_urlquery_encode);
    add("urlquery.decode", 1, b_urlquery_decode);
    add("urlquery.encode_object", 1, b_urlquery_encode_object);
    add("type_name", 1, b_type_name);
    add("is_string", 1, b_is_string);
    add("is_number", 1, b_is_number);
    add("is_boolean", 1, b_is_boolean);
    add("is_array", 1, b_is_array);
    add("is_set", 1, b_is_set);
    add("is_object", 1, b_is_object);
    add("is_null", 1, b_is_null);
    add("cast_array", 1, b_cast_array);
    add("cast_set", 1, b_cast_set);
    add("net.cidr_contains", 2, b_net_cidr_contains);
    add("net.cidr_intersects", 2, b_net_cidr_intersects);
    add("net.cidr_is_valid", 1, b_net_cidr_is_valid);
    add("net.cidr_contains_matches", 2, b_net_cidr_contains_matches);
    add("semver.is_valid", 1, b_semver_is_valid);
    add("semver.compare", 2, b_semver_compare);
    add("units.parse", 1, b_units_parse);
    add("units.parse_bytes", 1, b_units_parse_bytes);
    add("io.jwt.decode", 1, b_io_jwt_decode);
    add("time.now_ns", 0, b_time_now_ns);
    add("time.parse_rfc3339_ns", 1, b_time_parse_rfc3339_ns);
    add("time.parse_ns", 2, b_time_parse_ns);
    add("time.parse_duration_ns", 1, b_time_parse_duration_ns);
    add("time.date", 1, b_time_date);
    add("time.clock", 1, b_time_clock);
    add("time.weekday", 1, b_time_weekday);
    add("time.add_date", 4, b_time_add_date);
    add("time.diff", 2, b_time_diff);
    add("time.format", 1, b_time_format);
    add("print", -1, b_print);
    add("trace", 1, b_trace);
    add("walk", 1, b_walk_placeholder);
    return m;
  }();
  return *t;
}

}  // namespace

const Builtin* find_builtin(std::string_view name) {
  const auto& t = table();
  auto it = t.find(name);
  return it == t.end() ? nullptr : &it->second;
}

}  // namespace ztslm::policy
