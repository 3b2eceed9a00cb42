// Private: calendar and duration helpers for the time.* built-ins (proleptic Gregorian, UTC or
// fixed offsets; no time-zone database is read).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ztslm::policy {

struct CivilTime {
  int64_t year = 1970;
  int64_t month = 1;  // 1..12
  int64_t day = 1;    // 1..31
  int64_t hour = 0, minute = 0, second = 0;
  int64_t nanos = 0;
  int weekday = 4;  // 0 = Sunday
  int64_t yday = 1;
};

// `ns` since the epoch shifted by `offset_s` seconds, broken down.
CivilTime to_civil(int64_t ns, int64_t offset_s);
// Days since 1970-01-01 of a (possibly denormalised) civil date.
int64_t days_from_civil(int64_t y, int64_t m, int64_t d);
// RFC 3339 ("2006-01-02T15:04:05.999Z07:00") to ns since the epoch.
bool parse_rfc3339(std::string_view s, int64_t* ns);
// "+05:30", "-0800", "UTC", "Z": seconds east of UTC.
bool fixed_zone_offset(std::string_view tz, int64_t* offset_s);
// Go's Time.AddDate in UTC (overflowing months/days normalise).
bool add_date(int64_t ns, int64_t years, int64_t months, int64_t days, int64_t* out);
// Difference as [years, months, days, hours, minutes, seconds] (order-independent).
void time_diff(int64_t a, int64_t b, int64_t out[6]);
// Go duration strings ("1h30m", "-1.5s", "300ms").
bool parse_duration(std::string_view s, int64_t* ns, std::string* why);
// Go reference-time layouts ("2006-01-02", "RFC3339", ...).
bool parse_go_layout(std::string_view layout, std::string_view value, int64_t* ns);
std::string format_go_layout(int64_t ns, int64_t offset_s, std::string_view layout);

}  // namespace ztslm::policy
