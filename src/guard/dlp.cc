#include "guard/dlp.h"

#include <hs/hs.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>

#include "core/check.h"

namespace ztslm::guard {
namespace {

// How a Hyperscan match becomes a finding.
enum class Extract : uint8_t {
  kWhole,        // the match itself (longest valid end per start)
  kLastValue,    // the value after the last ':'/'=' (keyword patterns)
  kUrlPassword,  // the password between "user:" and '@'
  kTokenRun,     // a trigger: extend over the type's alphabet in C++
  kPem,          // a PEM header: extend to the END line
  kEmailAt,      // "x@y" around an '@': extend left over the local part, right over the domain
};

struct PatternDef {
  const char* regex;
  unsigned flags;
  DlpType type;
  Extract extract;
};

// SECURITY: every pattern has a bounded width (checked at compile time), so the streaming
// redactor's hold-back is bounded; unbounded tokens are kTokenRun/kPem triggers.
constexpr PatternDef kPatterns[] = {
    {R"([A-Za-z0-9_%+\-]@[A-Za-z0-9])", 0, DlpType::kEmail, Extract::kEmailAt},
    {R"((?:\+[0-9]{1,3}[ .\-]?)?(?:\([0-9]{1,4}\)[ .\-]?)?[0-9]{1,12}(?:[ .\-][0-9]{1,12}){0,6}(?:x[0-9]{1,5})?)",
     0, DlpType::kPhone, Extract::kWhole},
    {R"([0-9](?:[ \-]?[0-9]){11,18})", 0, DlpType::kCreditCard, Extract::kWhole},
    {R"([A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30})", 0, DlpType::kIban, Extract::kWhole},
    {R"([0-9]{3}[\- ][0-9]{2}[\- ][0-9]{4})", 0, DlpType::kUsSsn, Extract::kWhole},
    {R"([0-9]{1,3}(?:\.[0-9]{1,3}){3})", 0, DlpType::kIpv4, Extract::kWhole},
    {R"([0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})", 0, DlpType::kIpv6, Extract::kWhole},
    {R"((?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16})", 0,
     DlpType::kAwsAccessKeyId, Extract::kWhole},
    {R"([Aa][Ww][Ss][A-Za-z0-9_ .\-]{0,24}[Ss][Ee][Cc][Rr][Ee][Tt][A-Za-z0-9_ .\-]{0,24}["']?[ \t]{0,4}[:=][ \t]{0,4}["']?[A-Za-z0-9/+]{8})",
     0, DlpType::kAwsSecretAccessKey, Extract::kLastValue},
    {R"([Ss][Ee][Cc][Rr][Ee][Tt][ \t]{1,4}[A-Za-z0-9/+]{8})", 0, DlpType::kAwsSecretAccessKey,
     Extract::kLastValue},
    {R"(gh[pousr]_[A-Za-z0-9]{36})", 0, DlpType::kGithubToken, Extract::kWhole},
    {R"(github_pat_[A-Za-z0-9_]{82})", 0, DlpType::kGithubToken, Extract::kWhole},
    {R"(xox[abposr]-[0-9A-Za-z\-]{10,80})", 0, DlpType::kSlackToken, Extract::kWhole},
    {R"(https://hooks\.slack\.com/services/T[A-Z0-9]{6,12}/B[A-Z0-9]{6,12}/[A-Za-z0-9]{20,32})", 0,
     DlpType::kSlackWebhook, Extract::kWhole},
    {R"(sk-[A-Za-z0-9_\-]{16})", 0, DlpType::kOpenaiApiKey, Extract::kTokenRun},
    {R"(sk-ant-[a-z]{3,6}[0-9]{2}-)", 0, DlpType::kAnthropicApiKey, Extract::kTokenRun},
    {R"(AIza[0-9A-Za-z_\-]{35})", 0, DlpType::kGoogleApiKey, Extract::kWhole},
    {R"(eyJ[A-Za-z0-9_\-]{10})", 0, DlpType::kJwt, Extract::kTokenRun},
    {R"(-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY-----)", 0, DlpType::kPrivateKey, Extract::kPem},
    {R"([A-Za-z0-9]://[^\s:/@])", 0, DlpType::kUrlPassword, Extract::kUrlPassword},
    // identity/README.md: zt_ + 8-char key id + _ + 32..64 base62 secret.
    {R"(zt_[a-z0-9]{8}_[A-Za-z0-9]{32,64})", 0, DlpType::kZtslmApiKey, Extract::kWhole},
    {R"((?:password|passwd|pwd|secret|token|api[_\-]?key|access[_\-]?key|credential)[A-Za-z0-9_\-]{0,20}["']?[ \t]{0,3}[:=][ \t]{0,3}["']?[^\s"'`,;]{8})",
     HS_FLAG_CASELESS, DlpType::kGenericSecret, Extract::kLastValue},
};
constexpr size_t kNumPatterns = std::size(kPatterns);

// Overlap resolution: the higher rank wins, then the longer span.
int type_rank(DlpType t) {
  switch (t) {
    case DlpType::kPrivateKey: return 100;
    case DlpType::kJwt: return 95;
    case DlpType::kAnthropicApiKey: return 92;
    case DlpType::kOpenaiApiKey: return 90;
    case DlpType::kGithubToken: return 88;
    case DlpType::kSlackWebhook: return 87;
    case DlpType::kSlackToken: return 86;
    case DlpType::kAwsSecretAccessKey: return 85;
    case DlpType::kAwsAccessKeyId: return 84;
    case DlpType::kGoogleApiKey: return 83;
    case DlpType::kZtslmApiKey: return 82;
    case DlpType::kUrlPassword: return 80;
    case DlpType::kGenericSecret: return 70;
    case DlpType::kIban: return 60;
    case DlpType::kCreditCard: return 58;
    case DlpType::kUsSsn: return 56;
    case DlpType::kEmail: return 54;
    case DlpType::kIpv6: return 52;
    case DlpType::kIpv4: return 50;
    case DlpType::kPhone: return 40;
  }
  return 0;
}

bool is_alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }
bool is_b64url(char c) { return is_alnum(c) || c == '-' || c == '_'; }

char at(std::string_view t, size_t i) { return i < t.size() ? t[i] : '\0'; }
char before(std::string_view t, size_t i) { return i > 0 && i <= t.size() ? t[i - 1] : '\0'; }

// A number-like span is part of a longer number when a digit group continues it through a
// '-' or '.' ("385-7457427-6340980", "1.2.3.4.5").
// A number-like span is part of a longer token when it continues through '-' or '.' into a
// letter or digit ("385-7457427-6340980", "1.2.3.4.5", UUID groups) or through a space into a
// digit ("2354 7936 1958 5904" is not a 12-digit number).
bool number_continues(std::string_view t, size_t start, size_t end) {
  auto hex_run_left = [&](size_t pos) {  // hex characters ending at t[pos - 1]
    size_t n = 0;
    while (pos > n && n < 4 && is_hex(t[pos - 1 - n])) ++n;
    return n;
  };
  auto hex_run_right = [&](size_t pos) {
    size_t n = 0;
    while (pos + n < t.size() && n < 4 && is_hex(t[pos + n])) ++n;
    return n;
  };
  const char b = before(t, start);
  if (is_alnum(b)) return true;
  if ((b == '-' || b == '.') && start >= 2 &&
      (is_digit(t[start - 2]) || hex_run_left(start - 1) == 4)) {
    return true;
  }
  if (b == ' ' && start >= 2 && is_digit(t[start - 2])) return true;
  const char a = at(t, end);
  if (is_alnum(a)) return true;
  if ((a == '-' || a == '.') && (is_digit(at(t, end + 1)) || hex_run_right(end + 1) == 4)) {
    return true;
  }
  if (a == ' ' && is_digit(at(t, end + 1))) return true;
  return false;
}

struct Groups {
  std::array<size_t, 12> len{};
  size_t n = 0;
  size_t digits = 0;
  bool dot = false, dash = false, space = false, paren = false;
  bool overflow = false;
};

Groups digit_groups(std::string_view s) {
  Groups g;
  bool in = false;
  for (const char c : s) {
    if (is_digit(c)) {
      if (!in) {
        if (g.n == g.len.size()) {
          g.overflow = true;
          return g;
        }
        ++g.n;
        in = true;
      }
      ++g.len[g.n - 1];
      ++g.digits;
    } else {
      in = false;
      g.dot |= c == '.';
      g.dash |= c == '-';
      g.space |= c == ' ';
      g.paren |= c == '(' || c == ')';
    }
  }
  return g;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

bool phone_valid(std::string_view text, size_t start, size_t end) {
  std::string_view c = text.substr(start, end - start);
  if (number_continues(text, start, end)) return false;
  if (before(text, start) == '+' || before(text, start) == '(') return false;
  const size_t x = c.find('x');
  if (x != std::string_view::npos) c = c.substr(0, x);
  const Groups g = digit_groups(c);
  if (g.overflow || g.n == 0) return false;
  if (c.back() < '0' || c.back() > '9') return false;
  if (c[0] == '+' || (starts_with(c, "00") && c.size() > 2 && c[2] >= '1' && c[2] <= '9')) return g.digits >= 8 && g.digits <= 15;
  if (g.digits < 7 || g.digits > 12) return false;
  // A space-separated run after an upper-case/digit token is a grouped code (IBAN, serial).
  if (start >= 2 && text[start - 1] == ' ' && c[0] != '(') {
    const char b2 = text[start - 2];
    if (is_digit(b2) || (b2 >= 'A' && b2 <= 'Z')) return false;
  }
  if (g.n == 1) return (g.digits == 10) || (g.digits == 11 && (c[0] == '0' || c[0] == '1'));
  if (g.dot) {
    if (g.dash || g.space) return false;
    if (g.n == 3 && g.len[0] == 3 && g.len[1] == 3 && g.len[2] == 4) return true;  // NANP
    if (g.n == 5 && c[0] == '0') {  // French 0X.XX.XX.XX.XX
      for (size_t i = 0; i < 5; ++i) {
        if (g.len[i] != 2) return false;
      }
      return true;
    }
    return false;
  }
  if (g.dash && g.n == 3 && g.len[0] == 3 && g.len[1] == 2 && g.len[2] == 4) return false;  // SSN
  // Dates: 2025-03-27, 27-03-2025.
  auto is_year = [&](size_t gi, size_t off) {
    return g.len[gi] == 4 && (starts_with(c.substr(off), "19") || starts_with(c.substr(off), "20"));
  };
  if (g.dash && is_year(0, c[0] == '(' ? 1 : 0)) return false;
  if (g.dash && g.n == 3 && g.len[2] == 4 && g.len[0] <= 2 && g.len[1] <= 2) {
    const std::string_view last = c.substr(c.size() - 4);
    if (starts_with(last, "19") || starts_with(last, "20")) return false;
  }
  if (g.digits == 13 && (starts_with(c, "978") || starts_with(c, "979"))) return false;  // ISBN
  if (g.digits == 10 && g.n == 4 && g.len[0] == 1 && g.dash) return false;  // ISBN-10
  for (size_t i = 0; i < g.n; ++i) {
    if (g.len[i] > 8) return false;
    if (g.len[i] < 2 && !(i == 0 && g.paren)) return false;
  }
  return true;
}

bool card_shape_valid(std::string_view text, size_t start, size_t end) {
  const std::string_view c = text.substr(start, end - start);
  if (number_continues(text, start, end) || before(text, start) == '+') return false;
  const Groups g = digit_groups(c);
  if (g.overflow || g.digits < 12 || g.digits > 19) return false;
  if (g.dash && g.space) return false;
  if (g.n > 1) {
    const bool amex = g.n == 3 && g.len[0] == 4 && g.len[1] == 6 && (g.len[2] == 4 || g.len[2] == 5);
    bool fours = true;
    for (size_t i = 0; i + 1 < g.n; ++i) fours &= g.len[i] == 4;
    fours &= g.len[g.n - 1] >= 1 && g.len[g.n - 1] <= 4;
    if (!amex && !fours) return false;
  }
  if (g.digits == 13 && (starts_with(c, "978") || starts_with(c, "979"))) return false;
  return luhn_valid(c);
}

bool email_valid(std::string_view text, size_t start, size_t end) {
  const std::string_view c = text.substr(start, end - start);
  const char b = before(text, start);
  if (is_alnum(b) || b == '.' || b == '_' || b == '%' || b == '+' || b == '-') return false;
  const char a = at(text, end);
  if (is_alnum(a) || a == '-' || (a == '.' && is_alnum(at(text, end + 1)))) return false;
  const size_t atpos = c.find('@');
  if (atpos == std::string_view::npos || atpos == 0) return false;
  const std::string_view local = c.substr(0, atpos), domain = c.substr(atpos + 1);
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos)
    return false;
  size_t n_labels = 0, label_start = 0;
  for (size_t i = 0; i <= domain.size(); ++i) {
    if (i == domain.size() || domain[i] == '.') {
      const std::string_view label = domain.substr(label_start, i - label_start);
      if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
        return false;
      ++n_labels;
      if (i == domain.size()) {
        if (label.size() < 2 || label.size() > 24) return false;
        for (const char ch : label) {
          if (!((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z')) return false;
        }
      }
      label_start = i + 1;
    }
  }
  return n_labels >= 2;
}

// IBAN: the longest valid prefix of the candidate whose compact length matches the country.
size_t iban_end(std::string_view text, size_t start, size_t end);

struct Candidate {
  DlpType type;
  size_t start, end;
};

void add_whole(std::string_view text, DlpType type, size_t start, size_t end,
               std::vector<Candidate>& out) {
  auto right_ok = [&](size_t e) { return !is_alnum(at(text, e)); };
  auto left_ok = [&](size_t s) { return !is_alnum(before(text, s)); };
  const std::string_view c = text.substr(start, end - start);
  bool ok = false;
  switch (type) {
    case DlpType::kEmail: ok = email_valid(text, start, end); break;
    case DlpType::kPhone: ok = phone_valid(text, start, end); break;
    case DlpType::kCreditCard: ok = card_shape_valid(text, start, end); break;
    case DlpType::kUsSsn:
      ok = !number_continues(text, start, end) && us_ssn_valid(c) &&
           (c[3] == c[6]);  // one separator kind
      break;
    case DlpType::kIpv4: ok = !number_continues(text, start, end) && ipv4_valid(c); break;
    case DlpType::kIpv6: {
      const char b = before(text, start), a = at(text, end);
      ok = !is_hex(b) && b != ':' && !is_hex(a) && a != ':' && !is_alnum(a) && ipv6_valid(c);
      break;
    }
    case DlpType::kIban: {
      if (!left_ok(start)) break;
      const size_t e = iban_end(text, start, end);
      if (e != 0 && right_ok(e)) {
        out.push_back({type, start, e});
      }
      return;
    }
    case DlpType::kGithubToken:
      ok = left_ok(start) && right_ok(end) && at(text, end) != '_' &&
           (starts_with(c, "github_pat_") || github_token_checksum_valid(c));
      break;
    case DlpType::kSlackToken:
      ok = left_ok(start) && !is_alnum(at(text, end)) && at(text, end) != '-' &&
           std::count(c.begin(), c.end(), '-') >= 3 && c.back() != '-';
      break;
    case DlpType::kZtslmApiKey:
      ok = left_ok(start) && right_ok(end) && at(text, end) != '_' &&
           shannon_entropy(c.substr(12)) >= 3.5;  // the secret after "zt_<id>_"
      break;
    default:
      ok = left_ok(start) && right_ok(end) && at(text, end) != '_' && at(text, end) != '-';
      break;
  }
  if (ok) out.push_back({type, start, end});
}

}  // namespace

// ---- validators ----

bool luhn_valid(std::string_view s) {
  int sum = 0, n = 0;
  for (size_t i = s.size(); i-- > 0;) {
    const char c = s[i];
    if (c == ' ' || c == '-') continue;
    if (!is_digit(c)) return false;
    int d = c - '0';
    if (n % 2 == 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    ++n;
  }
  return n >= 12 && sum % 10 == 0;
}

namespace {
struct IbanCountry {
  char cc[3];
  uint8_t length;
};
constexpr IbanCountry kIbanCountries[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16},
    {"BG", 22}, {"BH", 22}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22}, {"CY", 28},
    {"CZ", 24}, {"DE", 22}, {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24},
    {"FI", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18},
    {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22}, {"IL", 23}, {"IQ", 23},
    {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LC", 32},
    {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21}, {"MC", 27}, {"MD", 24}, {"ME", 22},
    {"MK", 19}, {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NL", 18}, {"NO", 15}, {"PK", 24},
    {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"SA", 24},
    {"SC", 31}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"ST", 25}, {"SV", 28},
    {"TL", 23}, {"TN", 24}, {"TR", 26}, {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20},
};

size_t iban_length(std::string_view cc) {
  for (const IbanCountry& c : kIbanCountries) {
    if (cc == std::string_view(c.cc, 2)) return c.length;
  }
  return 0;
}

bool iban_compact_valid(std::string_view compact) {
  if (compact.size() < 15 || compact.size() > 34) return false;
  if (iban_length(compact.substr(0, 2)) != compact.size()) return false;
  // mod 97 over the rearranged string, letters as 10..35.
  uint32_t rem = 0;
  for (size_t k = 0; k < compact.size(); ++k) {
    const char c = compact[(k + 4) % compact.size()];
    if (is_digit(c)) {
      rem = (rem * 10 + static_cast<uint32_t>(c - '0')) % 97;
    } else if (c >= 'A' && c <= 'Z') {
      rem = (rem * 100 + static_cast<uint32_t>(c - 'A' + 10)) % 97;
    } else {
      return false;
    }
  }
  return rem == 1;
}

size_t iban_end(std::string_view text, size_t start, size_t end) {
  const size_t want = iban_length(text.substr(start, 2));
  if (want == 0) return 0;
  std::array<char, 34> compact{};  // the longest IBAN has 34 characters
  size_t n = 0, pos = start;
  while (pos < end && n < want && n < compact.size()) {
    if (text[pos] != ' ') compact[n++] = text[pos];
    ++pos;
  }
  if (n != want || !iban_compact_valid(std::string_view(compact.data(), n))) return 0;
  return pos;
}
}  // namespace

bool iban_valid(std::string_view s) {
  std::array<char, 34> compact{};
  size_t n = 0;
  for (const char c : s) {
    if (c == ' ') continue;
    if (n == compact.size()) return false;  // longer than any IBAN
    compact[n++] = c;
  }
  return iban_compact_valid(std::string_view(compact.data(), n));
}

bool us_ssn_valid(std::string_view s) {
  std::array<int, 9> d{};
  size_t n = 0;
  for (const char c : s) {
    if (is_digit(c)) {
      if (n == d.size()) return false;
      d[n++] = c - '0';
    } else if (c != '-' && c != ' ') {
      return false;
    }
  }
  if (n != 9) return false;
  const int area = d[0] * 100 + d[1] * 10 + d[2], group = d[3] * 10 + d[4],
            serial = d[5] * 1000 + d[6] * 100 + d[7] * 10 + d[8];
  return area != 0 && area != 666 && area < 900 && group != 0 && serial != 0;
}

bool ipv4_valid(std::string_view s) {
  int parts = 0;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = i;
    int v = 0;
    while (j < s.size() && is_digit(s[j]) && j - i < 4) v = v * 10 + (s[j++] - '0');
    const size_t len = j - i;
    if (len == 0 || len > 3 || v > 255 || (len > 1 && s[i] == '0')) return false;
    ++parts;
    if (j == s.size()) break;
    if (s[j] != '.') return false;
    i = j + 1;
  }
  return parts == 4;
}

bool ipv6_valid(std::string_view s) {
  if (s.size() < 2 || s.size() > 39) return false;
  const size_t dc = s.find("::");
  if (dc != std::string_view::npos && s.find("::", dc + 1) != std::string_view::npos) return false;
  size_t groups = 0, i = 0;
  bool has_letter_or_long = false;
  while (i < s.size()) {
    if (s[i] == ':') {
      if (i + 1 < s.size() && s[i + 1] == ':') {
        i += 2;
        continue;
      }
      if (i == 0 || i + 1 == s.size()) return false;  // single leading/trailing colon
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && is_hex(s[j])) {
      if (!is_digit(s[j])) has_letter_or_long = true;
      ++j;
    }
    if (j == i || j - i > 4) return false;
    if (j - i >= 3) has_letter_or_long = true;
    ++groups;
    i = j;
  }
  if (dc == std::string_view::npos) return groups == 8;
  return groups <= 7 && (groups >= 2 || s == "::1") && (has_letter_or_long || s == "::1");
}

bool jwt_valid(std::string_view s) {
  const size_t d1 = s.find('.');
  if (d1 == std::string_view::npos) return false;
  const size_t d2 = s.find('.', d1 + 1);
  if (d2 == std::string_view::npos || s.find('.', d2 + 1) != std::string_view::npos) return false;
  if (d1 < 10 || d2 - d1 < 5) return false;
  // The header is base64url JSON: "eyJ" decodes to '{"'. Decode it and look for "alg".
  std::string header;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < d1 && i < 512; ++i) {
    const char c = s[i];
    int v = -1;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (is_digit(c)) v = c - '0' + 52;
    else if (c == '-') v = 62;
    else if (c == '_') v = 63;
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      header.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return header.find("\"alg\"") != std::string::npos || header.find("\"typ\"") != std::string::npos;
}

bool github_token_checksum_valid(std::string_view t) {
  if (t.size() != 40 || t[3] != '_') return false;
  const std::string_view body = t.substr(4, 30), check = t.substr(34, 6);
  uint32_t crc = 0xFFFFFFFFu;
  for (const char c : body) {
    crc ^= static_cast<unsigned char>(c);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  crc ^= 0xFFFFFFFFu;
  static constexpr char kB62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  char enc[6];
  for (int i = 5; i >= 0; --i) {
    enc[i] = kB62[crc % 62];
    crc /= 62;
  }
  return std::string_view(enc, 6) == check;
}

double shannon_entropy(std::string_view s) {
  if (s.empty()) return 0.0;
  std::array<uint32_t, 256> counts{};
  for (const char c : s) ++counts[static_cast<unsigned char>(c)];
  double h = 0.0;
  const double n = static_cast<double>(s.size());
  for (const uint32_t k : counts) {
    if (k == 0) continue;
    const double p = static_cast<double>(k) / n;
    h -= p * std::log2(p);
  }
  return h;
}

bool is_placeholder(std::string_view v) {
  if (v.empty()) return true;
  if (v[0] == '$' || v[0] == '<' || v[0] == '{' || v[0] == '%' || v[0] == '[') return true;
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
  // Case-insensitive substring test (the words are lower case); no allocation.
  auto contains = [&](std::string_view word) {
    if (word.size() > v.size()) return false;
    for (size_t i = 0; i + word.size() <= v.size(); ++i) {
      size_t k = 0;
      while (k < word.size() && lower(v[i + k]) == word[k]) ++k;
      if (k == word.size()) return true;
    }
    return false;
  };
  for (const std::string_view word :
       {"your_", "your-", "changeme", "example", "placeholder", "redacted", "xxxx", "****", "....",
        "dummy", "secret_here", "<", "os.environ", "getenv", "process.env", "("}) {
    if (contains(word)) return true;
  }
  return false;
}

// ---- scanner ----

struct DlpScanner::Db {
  hs_database_t* db = nullptr;
  uint64_t generation = 0;  // unique per database ever compiled in this process
  ~Db() { hs_free_database(db); }
};

namespace {

std::atomic<uint64_t> g_db_generation{0};

struct RawMatch {
  uint32_t id;
  size_t from, to;
};

// Per-thread state reused by every scan, so that a scan of clean text allocates nothing: one
// Hyperscan scratch grown to fit every database this thread has scanned with, and the match and
// candidate buffers (cleared, capacity kept; shrunk after an unusually large scan).
struct ThreadScratch {
  hs_scratch_t* scratch = nullptr;
  uint64_t ready_for = 0;  // generation of the database the scratch was last checked against
  std::vector<RawMatch> raw;
  std::vector<Candidate> cands;
  ~ThreadScratch() { hs_free_scratch(scratch); }
};
thread_local ThreadScratch t_scratch;

constexpr size_t kKeepBufferEntries = 4096;

int on_match(unsigned int id, unsigned long long from, unsigned long long to, unsigned int,
             void* ctx) {
  auto* out = static_cast<std::vector<RawMatch>*>(ctx);
  // SECURITY: pathological input (megabytes of digits) could report a match per byte per
  // pattern; cap the candidates so a scan stays linear in memory.
  if (out->size() >= (1u << 20)) return 1;  // stop scanning
  out->push_back(RawMatch{id, static_cast<size_t>(from), static_cast<size_t>(to)});
  return 0;
}

}  // namespace

DlpScanner::~DlpScanner() = default;

Result<std::unique_ptr<DlpScanner>> DlpScanner::create(const DlpLimits& limits) {
  std::vector<const char*> exprs;
  std::vector<unsigned> flags, ids;
  for (size_t i = 0; i < kNumPatterns; ++i) {
    exprs.push_back(kPatterns[i].regex);
    flags.push_back(kPatterns[i].flags | HS_FLAG_SOM_LEFTMOST);
    ids.push_back(static_cast<unsigned>(i));
  }
  std::unique_ptr<DlpScanner> s(new DlpScanner());
  s->limits_ = limits;
  s->db_ = std::make_unique<Db>();
  s->db_->generation = g_db_generation.fetch_add(1, std::memory_order_relaxed) + 1;
  hs_compile_error_t* err = nullptr;
  if (hs_compile_multi(exprs.data(), flags.data(), ids.data(), static_cast<unsigned>(exprs.size()),
                       HS_MODE_BLOCK, nullptr, &s->db_->db, &err) != HS_SUCCESS) {
    Status st = Status::internal("dlp pattern {} does not compile: {}", err ? err->expression : -1,
                                 err ? err->message : "unknown");
    hs_free_compile_error(err);
    return st;
  }
  size_t max_width = 0;
  for (size_t i = 0; i < kNumPatterns; ++i) {
    hs_expr_info_t* info = nullptr;
    if (hs_expression_info(kPatterns[i].regex, kPatterns[i].flags, &info, &err) != HS_SUCCESS) {
      hs_free_compile_error(err);
      return Status::internal("dlp pattern {} has no expression info", i);
    }
    const unsigned w = info->max_width;
    std::free(info);
    if (w == UINT_MAX) return Status::internal("dlp pattern {} is unbounded", i);
    max_width = std::max<size_t>(max_width, w);
  }
  // Up to two bytes of context on each side; the e-mail local part (64) is read leftwards.
  s->max_window_ = std::max<size_t>(max_width, 66) + 3;
  return s;
}

const DlpScanner& DlpScanner::shared() {
  static const DlpScanner* scanner = [] {
    auto r = DlpScanner::create();
    ZTSLM_CHECK(r.has_value());
    return std::move(r).value().release();
  }();
  return *scanner;
}

Result<DlpScan> DlpScanner::scan(std::string_view text, bool is_final) const {
  ThreadScratch& ts = t_scratch;
  // hs_alloc_scratch validates the database and compares sizes on every call; call it only when
  // this thread scans with another database than last time (it grows the scratch if needed).
  if (ts.ready_for != db_->generation) {
    if (hs_alloc_scratch(db_->db, &ts.scratch) != HS_SUCCESS) {
      return Status::internal("hyperscan scratch allocation failed");
    }
    ts.ready_for = db_->generation;
  }
  std::vector<RawMatch>& raw = ts.raw;
  raw.clear();
  if (raw.capacity() > kKeepBufferEntries) raw.shrink_to_fit();
  if (!text.empty()) {
    const hs_error_t rc =
        hs_scan(db_->db, text.data(), static_cast<unsigned>(std::min<size_t>(text.size(), UINT_MAX)),
                0, ts.scratch, &on_match, &raw);
    if (rc != HS_SUCCESS && rc != HS_SCAN_TERMINATED) {
      return Status::internal("hyperscan scan failed with code {}", static_cast<int>(rc));
    }
  }
  // Longest end first within each (pattern, start).
  std::sort(raw.begin(), raw.end(), [](const RawMatch& a, const RawMatch& b) {
    if (a.id != b.id) return a.id < b.id;
    if (a.from != b.from) return a.from < b.from;
    return a.to > b.to;
  });
  DlpScan result;
  std::vector<Candidate>& cands = ts.cands;
  cands.clear();
  if (cands.capacity() > kKeepBufferEntries) cands.shrink_to_fit();
  for (size_t i = 0; i < raw.size();) {
    size_t j = i;
    while (j < raw.size() && raw[j].id == raw[i].id && raw[j].from == raw[i].from) ++j;
    const PatternDef& p = kPatterns[raw[i].id];
    const size_t start = raw[i].from;
    switch (p.extract) {
      case Extract::kWhole: {
        for (size_t k = i; k < j; ++k) {
          const size_t before_n = cands.size();
          add_whole(text, p.type, start, raw[k].to, cands);
          if (cands.size() != before_n) break;
        }
        break;
      }
      case Extract::kLastValue: {
        const RawMatch& m = raw[i];
        const std::string_view c = text.substr(m.from, m.to - m.from);
        size_t sep = c.find_first_of(":=");
        if (sep == std::string_view::npos) sep = c.find_first_of(" \t");
        if (sep == std::string_view::npos) break;
        size_t vs = sep + 1;
        while (vs < c.size() && (c[vs] == ' ' || c[vs] == '\t' || c[vs] == '"' || c[vs] == '\''))
          ++vs;
        const size_t vstart = m.from + vs;
        // The value runs to the first delimiter (the pattern stops at 100 bytes).
        size_t vend = vstart;
        const bool aws = p.type == DlpType::kAwsSecretAccessKey;
        while (vend < text.size() && vend - vstart < 100) {
          const char ch = text[vend];
          if (aws ? !(is_alnum(ch) || ch == '/' || ch == '+')
                  : (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '"' ||
                     ch == '\'' || ch == '`' || ch == ',' || ch == ';')) {
            break;
          }
          ++vend;
        }
        if (!is_final && vend == text.size()) {
          result.open_from = std::min(result.open_from, vstart);
          break;
        }
        const std::string_view value = text.substr(vstart, vend - vstart);
        if (aws) {
          if (value.size() == 40 && at(text, vend) != '=' && shannon_entropy(value) >= 4.0) {
            cands.push_back({p.type, vstart, vend});
          }
        } else if (value.size() >= 8 && value.size() < 100 && !is_placeholder(value) &&
                   shannon_entropy(value) >= 3.0) {
          bool has_digit = false, has_alpha = false;
          for (const char ch : value) {
            has_digit |= is_digit(ch);
            has_alpha |= ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z');
          }
          if (has_digit && has_alpha) cands.push_back({p.type, vstart, vend});
        }
        break;
      }
      case Extract::kUrlPassword: {
        // scheme://user:password@host: the user runs to ':', the password to '@'.
        const size_t user_start = start + 4;
        auto is_space = [](char ch) {
          return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
        };
        size_t k = user_start;
        while (k < text.size() && k - user_start < 64 && !is_space(text[k]) && text[k] != ':' &&
               text[k] != '/' && text[k] != '@') {
          ++k;
        }
        if (!is_final && k == text.size()) {
          result.open_from = std::min(result.open_from, start);
          break;
        }
        if (k >= text.size() || text[k] != ':' || k == user_start) break;
        const size_t ps = k + 1;
        size_t pe = ps;
        while (pe < text.size() && pe - ps < 128 && !is_space(text[pe]) && text[pe] != '/' &&
               text[pe] != '@') {
          ++pe;
        }
        if (!is_final && pe == text.size()) {
          result.open_from = std::min(result.open_from, start);
          break;
        }
        if (pe >= text.size() || text[pe] != '@' || pe == ps) break;
        const std::string_view pw = text.substr(ps, pe - ps);
        if (is_placeholder(pw) || pw == "password" || pw == "pass") break;
        cands.push_back({p.type, ps, pe});
        break;
      }
      case Extract::kTokenRun: {
        if (before(text, start) != '\0' &&
            (is_b64url(before(text, start)) || before(text, start) == '.')) {
          break;
        }
        const bool jwt = p.type == DlpType::kJwt;
        size_t e = start;
        while (e < text.size() && e - start < limits_.max_token_bytes &&
               (is_b64url(text[e]) || (jwt && text[e] == '.'))) {
          ++e;
        }
        if (!is_final && e == text.size() && e - start < limits_.max_token_bytes) {
          result.open_from = std::min(result.open_from, start);
          break;
        }
        // A trailing '.' ends a sentence, not a JWT.
        while (jwt && e > start && text[e - 1] == '.') --e;
        const std::string_view tok = text.substr(start, e - start);
        bool ok = false;
        if (p.type == DlpType::kJwt) {
          ok = jwt_valid(tok);
        } else if (p.type == DlpType::kAnthropicApiKey) {
          ok = tok.size() >= 90;
        } else {  // OpenAI style
          ok = !starts_with(tok, "sk-ant-") &&
               (tok.find("T3BlbkFJ") != std::string_view::npos ||
                (tok.size() == 51 &&
                 std::all_of(tok.begin() + 3, tok.end(), [](char ch) { return is_alnum(ch); })));
        }
        if (ok) cands.push_back({p.type, start, e});
        break;
      }
      case Extract::kEmailAt: {
        const size_t atpos = start + 1;
        size_t s0 = atpos;
        auto local_char = [](char ch) {
          return is_alnum(ch) || ch == '.' || ch == '_' || ch == '%' || ch == '+' || ch == '-';
        };
        while (s0 > 0 && atpos - s0 < 64 && local_char(text[s0 - 1])) --s0;
        size_t e = atpos + 1;
        while (e < text.size() && e - atpos <= 255 &&
               (is_alnum(text[e]) || text[e] == '.' || text[e] == '-')) {
          ++e;
        }
        if (!is_final && e == text.size()) {
          result.open_from = std::min(result.open_from, s0);
          break;
        }
        while (e > atpos + 1 && (text[e - 1] == '.' || text[e - 1] == '-')) --e;
        while (s0 < atpos && text[s0] == '.') ++s0;
        if (email_valid(text, s0, e)) cands.push_back({p.type, s0, e});
        break;
      }
      case Extract::kPem: {
        if (is_alnum(before(text, start))) break;
        const size_t header_end = raw[i].to;
        const size_t limit = std::min(text.size(), start + limits_.max_pem_bytes);
        const std::string_view window = text.substr(header_end, limit - header_end);
        const size_t end_marker = window.find("-----END");
        size_t e = 0;
        if (end_marker != std::string_view::npos) {
          const size_t close = window.find("-----", end_marker + 8);
          if (close != std::string_view::npos) e = header_end + close + 5;
        }
        if (e == 0) {
          if (!is_final && limit == text.size() && text.size() - start < limits_.max_pem_bytes) {
            result.open_from = std::min(result.open_from, start);
            break;
          }
          // No END line: the block runs over base64 body lines.
          e = header_end;
          while (e < limit) {
            const char ch = text[e];
            if (!(is_alnum(ch) || ch == '+' || ch == '/' || ch == '=' || ch == '\n' ||
                  ch == '\r')) {
              break;
            }
            ++e;
          }
          if (!is_final && e == text.size()) {
            result.open_from = std::min(result.open_from, start);
            break;
          }
          while (e > header_end && (text[e - 1] == '\n' || text[e - 1] == '\r')) --e;
        }
        cands.push_back({p.type, start, e});
        break;
      }
    }
    i = j;
  }
  // Deduplicate identical spans of the same type (two GitHub patterns, etc.).
  std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
    if (a.start != b.start) return a.start < b.start;
    if (a.end != b.end) return a.end > b.end;
    return type_rank(a.type) > type_rank(b.type);
  });
  cands.erase(std::unique(cands.begin(), cands.end(),
                          [](const Candidate& a, const Candidate& b) {
                            return a.start == b.start && a.end == b.end && a.type == b.type;
                          }),
              cands.end());
  for (const Candidate& c : cands) result.candidates.push_back({c.type, c.start, c.end});
  // Overlap resolution per connected group of overlapping candidates: rank, then length.
  for (size_t i = 0; i < cands.size();) {
    size_t j = i + 1, group_end = cands[i].end;
    while (j < cands.size() && cands[j].start < group_end) {
      group_end = std::max(group_end, cands[j].end);
      ++j;
    }
    if (j == i + 1) {  // the common case: a candidate that overlaps nothing
      result.findings.push_back({cands[i].type, cands[i].start, cands[i].end});
      i = j;
      continue;
    }
    std::vector<Candidate> group(cands.begin() + static_cast<std::ptrdiff_t>(i),
                                 cands.begin() + static_cast<std::ptrdiff_t>(j));
    std::sort(group.begin(), group.end(), [](const Candidate& a, const Candidate& b) {
      if (type_rank(a.type) != type_rank(b.type)) return type_rank(a.type) > type_rank(b.type);
      if (a.end - a.start != b.end - b.start) return a.end - a.start > b.end - b.start;
      return a.start < b.start;
    });
    const size_t first_new = result.findings.size();
    for (const Candidate& c : group) {
      bool overlaps = false;
      for (size_t k = first_new; k < result.findings.size(); ++k) {
        const DlpFinding& f = result.findings[k];
        if (c.start < f.end && f.start < c.end) overlaps = true;
      }
      if (!overlaps) result.findings.push_back({c.type, c.start, c.end});
    }
    std::sort(result.findings.begin() + static_cast<std::ptrdiff_t>(first_new),
              result.findings.end(),
              [](const DlpFinding& a, const DlpFinding& b) { return a.start < b.start; });
    i = j;
  }
  return result;
}

std::string_view dlp_type_name(DlpType type) {
  switch (type) {
    case DlpType::kEmail: return "email";
    case DlpType::kPhone: return "phone";
    case DlpType::kCreditCard: return "credit_card";
    case DlpType::kIban: return "iban";
    case DlpType::kUsSsn: return "us_ssn";
    case DlpType::kIpv4: return "ipv4";
    case DlpType::kIpv6: return "ipv6";
    case DlpType::kAwsAccessKeyId: return "aws_access_key_id";
    case DlpType::kAwsSecretAccessKey: return "aws_secret_access_key";
    case DlpType::kGithubToken: return "github_token";
    case DlpType::kSlackToken: return "slack_token";
    case DlpType::kSlackWebhook: return "slack_webhook";
    case DlpType::kOpenaiApiKey: return "openai_api_key";
    case DlpType::kAnthropicApiKey: return "anthropic_api_key";
    case DlpType::kGoogleApiKey: return "google_api_key";
    case DlpType::kJwt: return "jwt";
    case DlpType::kPrivateKey: return "private_key";
    case DlpType::kUrlPassword: return "url_password";
    case DlpType::kZtslmApiKey: return "ztslm_api_key";
    case DlpType::kGenericSecret: return "password";
  }
  return "unknown";
}

std::optional<DlpType> dlp_type_from_name(std::string_view name) {
  for (size_t i = 0; i < kNumDlpTypes; ++i) {
    const auto t = static_cast<DlpType>(i);
    if (dlp_type_name(t) == name) return t;
  }
  return std::nullopt;
}

bool dlp_type_is_secret(DlpType type) {
  switch (type) {
    case DlpType::kEmail:
    case DlpType::kPhone:
    case DlpType::kCreditCard:
    case DlpType::kIban:
    case DlpType::kUsSsn:
    case DlpType::kIpv4:
    case DlpType::kIpv6: return false;
    default: return true;
  }
}

}  // namespace ztslm::guard
