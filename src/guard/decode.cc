#include "guard/decode.h"

#include <array>

#include "core/utf8.h"
#include "guard/unicode.h"

namespace ztslm::guard {
namespace {

constexpr std::array<int8_t, 256> make_b64_table() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 26; ++i) {
    t[static_cast<size_t>('A' + i)] = static_cast<int8_t>(i);
    t[static_cast<size_t>('a' + i)] = static_cast<int8_t>(26 + i);
  }
  for (int i = 0; i < 10; ++i) t[static_cast<size_t>('0' + i)] = static_cast<int8_t>(52 + i);
  t['+'] = 62;
  t['-'] = 62;
  t['/'] = 63;
  t['_'] = 63;
  return t;
}
constexpr std::array<int8_t, 256> kB64 = make_b64_table();

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_b64_char(char c) { return kB64[static_cast<unsigned char>(c)] >= 0; }

struct Budget {
  const DecodeLimits& limits;
  size_t used = 0;
  std::vector<DecodedView>& out;
  bool full() const { return out.size() >= limits.max_views || used >= limits.max_total_bytes; }
  bool take(Encoding e, size_t start, size_t end, int depth, std::string text) {
    if (full() || text.size() > limits.max_total_bytes - used) return false;
    used += text.size();
    out.push_back(DecodedView{e, start, end, depth, std::move(text)});
    return true;
  }
};

void scan_level(std::string_view text, int depth, Budget& budget);

// Runs of base64 / hex characters long enough to be payloads.
void scan_runs(std::string_view text, int depth, Budget& budget) {
  size_t i = 0;
  const size_t n = text.size();
  while (i < n && !budget.full()) {
    if (!is_b64_char(text[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    bool all_hex = true;
    size_t n_letters = 0, n_digits = 0;
    while (j < n && is_b64_char(text[j])) {
      const char c = text[j];
      if (hex_value(c) < 0) all_hex = false;
      if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) ++n_letters;
      if (c >= '0' && c <= '9') ++n_digits;
      ++j;
    }
    size_t k = j;
    while (k < n && k - j < 2 && text[k] == '=') ++k;  // padding
    const size_t run = j - i;
    if (run >= budget.limits.min_run) {
      std::string decoded;
      bool ok = false;
      Encoding enc = Encoding::kBase64;
      if (all_hex && run % 2 == 0 && n_digits > 0) {
        ok = hex_decode(text.substr(i, run), &decoded);
        enc = Encoding::kHex;
      } else if (n_letters > 0) {
        ok = base64_decode(text.substr(i, k - i), &decoded);
      }
      if (ok && decoded.size() >= 4 && is_mostly_printable(decoded)) {
        const size_t view_index = budget.out.size();
        if (budget.take(enc, i, k, depth, std::move(decoded)) && depth < budget.limits.max_depth) {
          const std::string inner = budget.out[view_index].text;  // copy: out may grow
          scan_level(inner, depth + 1, budget);
        }
      }
    }
    i = k > i ? k : i + 1;
  }
}

void scan_level(std::string_view text, int depth, Budget& budget) {
  scan_runs(text, depth, budget);
  // URL encoding: decode the whole text when it carries at least two escapes.
  size_t n_escapes = 0;
  for (size_t i = 0; i + 2 < text.size() && n_escapes < 2; ++i) {
    if (text[i] == '%' && hex_value(text[i + 1]) >= 0 && hex_value(text[i + 2]) >= 0) ++n_escapes;
  }
  if (n_escapes >= 2 && !budget.full()) {
    std::string decoded;
    url_decode(text, &decoded);
    if (is_valid_utf8(decoded)) {
      const size_t view_index = budget.out.size();
      if (budget.take(Encoding::kUrl, 0, text.size(), depth, std::move(decoded)) &&
          depth < budget.limits.max_depth) {
        const std::string inner = budget.out[view_index].text;
        scan_runs(inner, depth + 1, budget);
      }
    }
  }
}

}  // namespace

std::string_view encoding_name(Encoding e) {
  switch (e) {
    case Encoding::kBase64: return "base64";
    case Encoding::kHex: return "hex";
    case Encoding::kUrl: return "url";
    case Encoding::kRot13: return "rot13";
    case Encoding::kTag: return "tag_characters";
    case Encoding::kVariationSelector: return "variation_selectors";
  }
  return "unknown";
}

bool base64_decode(std::string_view in, std::string* out) {
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return false;
  uint32_t acc = 0;
  int bits = 0;
  for (const char c : in) {
    const int8_t v = kB64[static_cast<unsigned char>(c)];
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

bool hex_decode(std::string_view in, std::string* out) {
  if (in.size() % 2 != 0) return false;
  for (size_t i = 0; i < in.size(); i += 2) {
    const int hi = hex_value(in[i]), lo = hex_value(in[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

size_t url_decode(std::string_view in, std::string* out) {
  size_t n = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size()) {
      const int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out->push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        ++n;
        continue;
      }
    }
    out->push_back(in[i]);
  }
  return n;
}

std::string rot13(std::string_view in) {
  std::string out(in);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') {
      c = static_cast<char>('a' + (c - 'a' + 13) % 26);
    } else if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>('A' + (c - 'A' + 13) % 26);
    }
  }
  return out;
}

bool is_mostly_printable(std::string_view s, double min_ratio) {
  if (!is_valid_utf8(s) || s.empty()) return false;
  size_t n = 0, good = 0, pos = 0;
  while (pos < s.size()) {
    char32_t cp = 0;
    size_t len = 1;
    if (!decode_utf8(s, pos, &cp, &len)) return false;
    pos += len;
    ++n;
    if ((cp >= 0x20 && cp < 0x7F) || cp == '\n' || cp == '\t' || cp == '\r' ||
        (cp >= 0xA0 && !is_invisible(cp))) {
      ++good;
    }
  }
  return static_cast<double>(good) >= min_ratio * static_cast<double>(n);
}

std::vector<DecodedView> decode_payloads(std::string_view text, const DecodeLimits& limits) {
  std::vector<DecodedView> out;
  Budget budget{limits, 0, out};
  if (is_valid_utf8(text)) {
    std::string tags = tag_payload(text);
    if (tags.size() >= 4) budget.take(Encoding::kTag, 0, text.size(), 1, std::move(tags));
    std::string vs = variation_selector_payload(text);
    if (!vs.empty() && is_mostly_printable(vs)) {
      budget.take(Encoding::kVariationSelector, 0, text.size(), 1, std::move(vs));
    }
  }
  scan_level(text, 1, budget);
  if (limits.include_rot13) {
    size_t n_letters = 0;
    for (const char c : text) n_letters += ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ? 1 : 0;
    if (n_letters >= 8) budget.take(Encoding::kRot13, 0, text.size(), 1, rot13(text));
  }
  return out;
}

}  // namespace ztslm::guard
