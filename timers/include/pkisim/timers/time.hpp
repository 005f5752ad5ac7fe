// Time types shared by every module: UTC instants with millisecond resolution.
//
//   using namespace pkisim::timers;
//   time_point t = parse_iso8601("2030-01-01T00:00:00Z").value();
//   std::string s = to_iso8601(t + days{30});   // "2030-01-31T00:00:00Z"
//
// Milliseconds (not seconds) because the simulator models 36 ms service times and the 20.003 s
// shadow retry of seed 002; IOS configuration is whole minutes, so nothing is lost either way.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include <date/date.h>

namespace pkisim::timers {

using duration = std::chrono::milliseconds;
using time_point = date::sys_time<duration>;
using days = date::days;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

// Decimal days, for reports ("150.0 days").
double to_days(duration d);
duration from_days(double d);

// "2030-01-01T00:00:00Z" (milliseconds only when non-zero: "...00.250Z").
std::string to_iso8601(time_point t);
// Accepts "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS[.fff]]Z" (the trailing Z is optional).
std::optional<time_point> parse_iso8601(std::string_view text);
// IOS style as printed by `show crypto pki server`: "12:58:34 UTC Jan 4 2025".
std::string to_ios_time(time_point t);

}  // namespace pkisim::timers
