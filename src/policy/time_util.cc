#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "policy/internal/builtins_util.h"

namespace ztslm::policy {
namespace {

constexpr int64_t kNsPerSec = 1'000'000'000;

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

const char* const kMonths[] = {"January", "February", "March",     "April",   "May",      "June",
                               "July",    "August",   "September", "October", "November", "December"};
const char* const kDays[] = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};

bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
int64_t days_in_month(int64_t y, int64_t m) {
  static const int kD[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kD[m - 1];
}

}  // namespace

int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  // Normalise the month first (Go's Date does the same), then days may overflow freely.
  int64_t mm = m - 1;
  y += floor_div(mm, 12);
  mm -= floor_div(mm, 12) * 12;
  m = mm + 1;
  y -= m <= 2 ? 1 : 0;
  const int64_t era = floor_div(y, 400);
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468 + (d - 1);
}

CivilTime to_civil(int64_t ns, int64_t offset_s) {
  CivilTime c;
  const int64_t secs = floor_div(ns, kNsPerSec) + offset_s;
  c.nanos = ns - floor_div(ns, kNsPerSec) * kNsPerSec;
  const int64_t days = floor_div(secs, 86400);
  int64_t rem = secs - days * 86400;
  c.hour = rem / 3600;
  rem %= 3600;
  c.minute = rem / 60;
  c.second = rem % 60;
  const int64_t z = days + 719468;
  const int64_t era = floor_div(z, 146097);
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  c.day = doy - (153 * mp + 2) / 5 + 1;
  c.month = mp < 10 ? mp + 3 : mp - 9;
  c.year = yoe + era * 400 + (c.month <= 2 ? 1 : 0);
  c.weekday = static_cast<int>(floor_div(days + 4, 7) * -7 + days + 4);
  c.yday = days - days_from_civil(c.year, 1, 1) + 1;
  return c;
}

bool fixed_zone_offset(std::string_view tz, int64_t* offset_s) {
  if (tz == "UTC" || tz == "Z" || tz == "GMT") {
    *offset_s = 0;
    return true;
  }
  if (tz.size() < 3 || (tz[0] != '+' && tz[0] != '-')) return false;
  std::string digits;
  for (size_t i = 1; i < tz.size(); ++i) {
    if (tz[i] == ':') continue;
    if (tz[i] < '0' || tz[i] > '9') return false;
    digits.push_back(tz[i]);
  }
  if (digits.size() != 2 && digits.size() != 4) return false;
  const int64_t h = std::atoi(digits.substr(0, 2).c_str());
  const int64_t m = digits.size() == 4 ? std::atoi(digits.substr(2, 2).c_str()) : 0;
  *offset_s = (tz[0] == '-' ? -1 : 1) * (h * 3600 + m * 60);
  return true;
}

bool add_date(int64_t ns, int64_t years, int64_t months, int64_t days, int64_t* out) {
  if (years > 100000 || years < -100000 || months > 1200000 || months < -1200000 ||
      days > 36500000 || days < -36500000) {
    return false;
  }
  const CivilTime c = to_civil(ns, 0);
  const int64_t d = days_from_civil(c.year + years, c.month + months, c.day + days);
  const __int128 total = static_cast<__int128>(d) * 86400 * kNsPerSec +
                         static_cast<__int128>(c.hour * 3600 + c.minute * 60 + c.second) * kNsPerSec +
                         c.nanos;
  if (total > INT64_MAX || total < INT64_MIN) return false;
  *out = static_cast<int64_t>(total);
  return true;
}

void time_diff(int64_t a, int64_t b, int64_t out[6]) {
  if (a > b) std::swap(a, b);
  const CivilTime x = to_civil(a, 0);
  const CivilTime y = to_civil(b, 0);
  int64_t year = y.year - x.year, month = y.month - x.month, day = y.day - x.day;
  int64_t hour = y.hour - x.hour, min = y.minute - x.minute, sec = y.second - x.second;
  if (y.nanos < x.nanos) --sec;
  if (sec < 0) {
    sec += 60;
    --min;
  }
  if (min < 0) {
    min += 60;
    --hour;
  }
  if (hour < 0) {
    hour += 24;
    --day;
  }
  if (day < 0) {
    // Days in the month before y's month.
    int64_t pm = y.month - 1, py = y.year;
    if (pm == 0) {
      pm = 12;
      --py;
    }
    day += days_in_month(py, pm);
    --month;
  }
  if (month < 0) {
    month += 12;
    --year;
  }
  out[0] = year;
  out[1] = month;
  out[2] = day;
  out[3] = hour;
  out[4] = min;
  out[5] = sec;
}

bool parse_duration(std::string_view s, int64_t* ns, std::string* why) {
  const std::string quoted = "\"" + std::string(s) + "\"";
  *why = "invalid duration " + quoted;
  if (s.empty()) return false;
  bool neg = false;
  if (s[0] == '-' || s[0] == '+') {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") {
    *ns = 0;
    return true;
  }
  if (s.empty()) return false;
  long double total = 0;
  while (!s.empty()) {
    size_t i = 0;
    while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
    if (i == 0) return false;
    const std::string num(s.substr(0, i));
    if (num == ".") return false;
    s.remove_prefix(i);
    size_t j = 0;
    while (j < s.size() && !((s[j] >= '0' && s[j] <= '9') || s[j] == '.')) ++j;
    const std::string_view unit = s.substr(0, j);
    s.remove_prefix(j);
    if (unit.empty()) {
      *why = "missing unit in duration " + quoted;
      return false;
    }
    long double mult = 0;
    if (unit == "ns") mult = 1;
    else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") mult = 1e3L;
    else if (unit == "ms") mult = 1e6L;
    else if (unit == "s") mult = 1e9L;
    else if (unit == "m") mult = 60e9L;
    else if (unit == "h") mult = 3600e9L;
    else {
      *why = "unknown unit \"" + std::string(unit) + "\" in duration " + quoted;
      return false;
    }
    total += std::strtold(num.c_str(), nullptr) * mult;
    if (total > 9.223372036854775807e18L) return false;
  }
  *ns = static_cast<int64_t>(neg ? -total : total);
  return true;
}

namespace {

std::string_view named_layout(std::string_view l) {
  if (l == "ANSIC") return "Mon Jan _2 15:04:05 2006";
  if (l == "UnixDate") return "Mon Jan _2 15:04:05 MST 2006";
  if (l == "RubyDate") return "Mon Jan 02 15:04:05 -0700 2006";
  if (l == "RFC822") return "02 Jan 06 15:04 MST";
  if (l == "RFC822Z") return "02 Jan 06 15:04 -0700";
  if (l == "RFC850") return "Monday, 02-Jan-06 15:04:05 MST";
  if (l == "RFC1123") return "Mon, 02 Jan 2006 15:04:05 MST";
  if (l == "RFC1123Z") return "Mon, 02 Jan 2006 15:04:05 -0700";
  if (l == "RFC3339") return "2006-01-02T15:04:05Z07:00";
  if (l == "RFC3339Nano") return "2006-01-02T15:04:05.999999999Z07:00";
  if (l == "Kitchen") return "3:04PM";
  if (l == "Stamp") return "Jan _2 15:04:05";
  if (l == "DateTime") return "2006-01-02 15:04:05";
  if (l == "DateOnly") return "2006-01-02";
  if (l == "TimeOnly") return "15:04:05";
  return l;
}

// Layout tokens, longest first.
const char* const kTokens[] = {"January", "Monday", "Z07:00:00", "-07:00:00", "Z07:00", "-07:00",
                               "Z0700",   "-0700",  "2006",      "Jan",       "Mon",    "MST",
                               "Z07",     "-07",    "01",        "02",        "_2",     "15",
                               "03",      "04",     "05",        "06",        "PM",     "pm",
                               "1",       "2",      "3",         "4",         "5"};

// Finds the next token at position i of layout; returns its length (0: literal char).
size_t token_at(std::string_view l, size_t i, std::string_view* tok) {
  // Fractional seconds: .000 / .999 / ,000
  if ((l[i] == '.' || l[i] == ',') && i + 1 < l.size() && (l[i + 1] == '0' || l[i + 1] == '9')) {
    size_t j = i + 1;
    while (j < l.size() && l[j] == l[i + 1]) ++j;
    if (j == l.size() || !(l[j] >= '0' && l[j] <= '9')) {
      *tok = l.substr(i, j - i);
      return j - i;
    }
  }
  for (const char* t : kTokens) {
    const size_t n = std::strlen(t);
    if (l.substr(i, n) == t) {
      // "Jan" must not be followed by a lowercase letter, like Go ("January" handled first).
      *tok = l.substr(i, n);
      return n;
    }
  }
  return 0;
}

bool read_digits(std::string_view v, size_t* p, size_t min_n, size_t max_n, int64_t* out) {
  size_t n = 0;
  int64_t x = 0;
  while (*p + n < v.size() && n < max_n && v[*p + n] >= '0' && v[*p + n] <= '9') {
    x = x * 10 + (v[*p + n] - '0');
    ++n;
  }
  if (n < min_n) return false;
  *p += n;
  *out = x;
  return true;
}

}  // namespace

bool parse_go_layout(std::string_view layout, std::string_view v, int64_t* ns) {
  layout = named_layout(layout);
  int64_t year = 1, month = 1, day = 1, hour = 0, min = 0, sec = 0, nanos = 0, offset = 0;
  bool pm = false, have_pm = false;
  size_t p = 0;
  for (size_t i = 0; i < layout.size();) {
    std::string_view tok;
    const size_t n = token_at(layout, i, &tok);
    if (n == 0) {
      if (p >= v.size() || v[p] != layout[i]) return false;
      ++p;
      ++i;
      continue;
    }
    i += n;
    if (tok == "2006") {
      if (!read_digits(v, &p, 4, 4, &year)) return false;
    } else if (tok == "06") {
      if (!read_digits(v, &p, 2, 2, &year)) return false;
      year += year >= 69 ? 1900 : 2000;
    } else if (tok == "01" || tok == "1") {
      if (!read_digits(v, &p, tok.size(), 2, &month)) return false;
    } else if (tok == "Jan" || tok == "January") {
      bool ok = false;
      for (int m = 0; m < 12 && !ok; ++m) {
        const std::string full = kMonths[m];
        const std::string name = tok == "Jan" ? full.substr(0, 3) : full;
        if (v.substr(p, name.size()) == name) {
          month = m + 1;
          p += name.size();
          ok = true;
        }
      }
      if (!ok) return false;
    } else if (tok == "Mon" || tok == "Monday") {
      bool ok = false;
      for (int d = 0; d < 7 && !ok; ++d) {
        const std::string full = kDays[d];
        const std::string name = tok == "Mon" ? full.substr(0, 3) : full;
        if (v.substr(p, name.size()) == name) {
          p += name.size();
          ok = true;
        }
      }
      if (!ok) return false;
    } else if (tok == "02" || tok == "2" || tok == "_2") {
      if (tok == "_2" && p < v.size() && v[p] == ' ') ++p;
      if (!read_digits(v, &p, tok == "02" ? 2 : 1, 2, &day)) return false;
    } else if (tok == "15") {
      if (!read_digits(v, &p, 1, 2, &hour)) return false;
    } else if (tok == "03" || tok == "3") {
      if (!read_digits(v, &p, tok.size(), 2, &hour)) return false;
    } else if (tok == "04" || tok == "4") {
      if (!read_digits(v, &p, tok.size(), 2, &min)) return false;
    } else if (tok == "05" || tok == "5") {
      if (!read_digits(v, &p, tok.size(), 2, &sec)) return false;
      // Go accepts fractional seconds after seconds even when the layout has none.
      if (p < v.size() && v[p] == '.' && !(i < layout.size() && (layout[i] == '.' || layout[i] == ','))) {
        ++p;
        size_t start = p;
        int64_t frac = 0;
        if (!read_digits(v, &p, 1, 9, &frac)) return false;
        for (size_t k = p - start; k < 9; ++k) frac *= 10;
        nanos = frac;
      }
    } else if (tok == "PM" || tok == "pm") {
      const std::string_view x = v.substr(p, 2);
      if (x == "PM" || x == "pm") pm = true;
      else if (x != "AM" && x != "am") return false;
      have_pm = true;
      p += 2;
    } else if (tok == "MST") {
      size_t q = p;
      while (q < v.size() && v[q] >= 'A' && v[q] <= 'Z') ++q;
      if (q - p < 3) return false;
      p = q;
    } else if (tok[0] == 'Z' || tok[0] == '-') {
      if (tok[0] == 'Z' && p < v.size() && v[p] == 'Z') {
        ++p;
        continue;
      }
      if (p >= v.size() || (v[p] != '+' && v[p] != '-')) return false;
      const int64_t sign = v[p] == '-' ? -1 : 1;
      ++p;
      int64_t hh = 0, mm = 0, ss = 0;
      if (!read_digits(v, &p, 2, 2, &hh)) return false;
      if (tok.find(':') != std::string_view::npos) {
        if (p < v.size() && v[p] == ':') ++p;
        if (!read_digits(v, &p, 2, 2, &mm)) return false;
      } else if (tok.size() >= 5) {
        if (!read_digits(v, &p, 2, 2, &mm)) return false;
      }
      if (tok.size() >= 9) {
        if (p < v.size() && v[p] == ':') ++p;
        if (!read_digits(v, &p, 2, 2, &ss)) return false;
      }
      offset = sign * (hh * 3600 + mm * 60 + ss);
    } else if (tok[0] == '.' || tok[0] == ',') {
      if (p < v.size() && (v[p] == '.' || v[p] == ',')) {
        ++p;
        const size_t start = p;
        int64_t frac = 0;
        if (!read_digits(v, &p, tok[1] == '0' ? tok.size() - 1 : 1, 9, &frac)) return false;
        for (size_t k = p - start; k < 9; ++k) frac *= 10;
        nanos = frac;
      } else if (tok[1] == '0') {
        return false;
      }
    }
  }
  if (p != v.size()) return false;
  if (have_pm) {
    if (hour < 1 || hour > 12) return false;
    if (pm && hour < 12) hour += 12;
    if (!pm && hour == 12) hour = 0;
  }
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 ||
      min > 59 || sec > 59) {
    return false;
  }
  const __int128 total = (static_cast<__int128>(days_from_civil(year, month, day)) * 86400 +
                          hour * 3600 + min * 60 + sec - offset) *
                             kNsPerSec +
                         nanos;
  if (total > INT64_MAX || total < INT64_MIN) return false;
  *ns = static_cast<int64_t>(total);
  return true;
}

bool parse_rfc3339(std::string_view s, int64_t* ns) {
  // Go accepts a lowercase 't'/'z' too? No: RFC 3339 layout is strict about 'T' in Go.
  return parse_go_layout("2006-01-02T15:04:05Z07:00", s, ns);
}

std::string format_go_layout(int64_t ns, int64_t offset_s, std::string_view layout) {
  layout = named_layout(layout);
  const CivilTime c = to_civil(ns, offset_s);
  std::string out;
  auto two = [&](int64_t x) {
    if (x < 10) out.push_back('0');
    out += std::to_string(x);
  };
  for (size_t i = 0; i < layout.size();) {
    std::string_view tok;
    const size_t n = token_at(layout, i, &tok);
    if (n == 0) {
      out.push_back(layout[i]);
      ++i;
      continue;
    }
    i += n;
    if (tok == "2006") {
      std::string y = std::to_string(c.year);
      while (y.size() < 4) y.insert(0, "0");
      out += y;
    } else if (tok == "06") {
      two(c.year % 100);
    } else if (tok == "01") {
      two(c.month);
    } else if (tok == "1") {
      out += std::to_string(c.month);
    } else if (tok == "Jan") {
      out += std::string(kMonths[c.month - 1]).substr(0, 3);
    } else if (tok == "January") {
      out += kMonths[c.month - 1];
    } else if (tok == "Mon") {
      out += std::string(kDays[c.weekday]).substr(0, 3);
    } else if (tok == "Monday") {
      out += kDays[c.weekday];
    } else if (tok == "02") {
      two(c.day);
    } else if (tok == "_2") {
      if (c.day < 10) out.push_back(' ');
      out += std::to_string(c.day);
    } else if (tok == "2") {
      out += std::to_string(c.day);
    } else if (tok == "15") {
      two(c.hour);
    } else if (tok == "03" || tok == "3") {
      const int64_t h = c.hour % 12 == 0 ? 12 : c.hour % 12;
      if (tok == "03") two(h);
      else out += std::to_string(h);
    } else if (tok == "04") {
      two(c.minute);
    } else if (tok == "4") {
      out += std::to_string(c.minute);
    } else if (tok == "05") {
      two(c.second);
    } else if (tok == "5") {
      out += std::to_string(c.second);
    } else if (tok == "PM") {
      out += c.hour >= 12 ? "PM" : "AM";
    } else if (tok == "pm") {
      out += c.hour >= 12 ? "pm" : "am";
    } else if (tok == "MST") {
      if (offset_s == 0) {
        out += "UTC";
      } else {
        out += (offset_s < 0 ? "-" : "+");
        two(std::abs(offset_s) / 3600);
      }
    } else if (tok[0] == 'Z' || tok[0] == '-') {
      if (tok[0] == 'Z' && offset_s == 0) {
        out.push_back('Z');
        continue;
      }
      const int64_t a = std::abs(offset_s);
      out.push_back(offset_s < 0 ? '-' : '+');
      two(a / 3600);
      if (tok.size() > 3) {
        if (tok.find(':') != std::string_view::npos) out.push_back(':');
        two((a % 3600) / 60);
      }
    } else if (tok[0] == '.' || tok[0] == ',') {
      std::string frac = std::to_string(c.nanos);
      while (frac.size() < 9) frac.insert(0, "0");
      const size_t digits = tok.size() - 1;
      frac = frac.substr(0, digits);
      if (tok[1] == '9') {
        while (!frac.empty() && frac.back() == '0') frac.pop_back();
        if (frac.empty()) continue;
      }
      out.push_back(tok[0]);
      out += frac;
    }
  }
  return out;
}

}  // namespace ztslm::policy
