// UTC instants: ISO-8601 and IOS-style formatting (ios-pki-model.md: "Time is UTC").
#include "pkisim/timers/time.hpp"

#include <cctype>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace pkisim::timers {

namespace {

constexpr double ms_per_day = 86'400'000.0;

// Reads exactly `width` digits at `pos`; false if any is missing.
bool read_fixed(std::string_view s, std::size_t& pos, int width, int& out) {
    if (pos + static_cast<std::size_t>(width) > s.size()) {
        return false;
    }
    int v = 0;
    for (int i = 0; i < width; ++i) {
        const char c = s[pos + static_cast<std::size_t>(i)];
        if (c < '0' || c > '9') {
            return false;
        }
        v = v * 10 + (c - '0');
    }
    pos += static_cast<std::size_t>(width);
    out = v;
    return true;
}

bool expect(std::string_view s, std::size_t& pos, char c) {
    if (pos < s.size() && s[pos] == c) {
        ++pos;
        return true;
    }
    return false;
}

}  // namespace

double to_days(duration d) {
    return static_cast<double>(d.count()) / ms_per_day;
}

duration from_days(double d) {
    const double ms = std::round(d * ms_per_day);
    // Clamp instead of overflowing: a report never needs more than ±10^11 days.
    constexpr double lim = 8.64e18;
    if (!(ms < lim)) {
        return duration{static_cast<duration::rep>(lim)};
    }
    if (!(ms > -lim)) {
        return duration{static_cast<duration::rep>(-lim)};
    }
    return duration{static_cast<duration::rep>(ms)};
}

std::string to_iso8601(time_point t) {
    const auto day = date::floor<date::days>(t);
    const date::year_month_day ymd{day};
    const date::hh_mm_ss<duration> hms{t - day};
    std::string out = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", int{ymd.year()},
                                  unsigned{ymd.month()}, unsigned{ymd.day()}, hms.hours().count(),
                                  hms.minutes().count(), hms.seconds().count());
    if (hms.subseconds().count() != 0) {
        out += fmt::format(".{:03}", hms.subseconds().count());
    }
    out += 'Z';
    return out;
}

std::optional<time_point> parse_iso8601(std::string_view s) {
    std::size_t pos = 0;
    int y = 0, mo = 0, d = 0;
    if (!read_fixed(s, pos, 4, y) || !expect(s, pos, '-') || !read_fixed(s, pos, 2, mo) ||
        !expect(s, pos, '-') || !read_fixed(s, pos, 2, d)) {
        return std::nullopt;
    }
    const date::year_month_day ymd{date::year{y}, date::month{static_cast<unsigned>(mo)},
                                   date::day{static_cast<unsigned>(d)}};
    if (!ymd.ok()) {
        return std::nullopt;
    }
    time_point t{date::sys_days{ymd}};
    if (pos == s.size()) {
        return t;
    }
    if (!expect(s, pos, 'T') && !expect(s, pos, ' ')) {
        return std::nullopt;
    }
    int h = 0, mi = 0, sec = 0, ms = 0;
    if (!read_fixed(s, pos, 2, h) || !expect(s, pos, ':') || !read_fixed(s, pos, 2, mi)) {
        return std::nullopt;
    }
    if (expect(s, pos, ':')) {
        if (!read_fixed(s, pos, 2, sec)) {
            return std::nullopt;
        }
        if (expect(s, pos, '.')) {
            // Up to three fractional digits are kept; more are allowed and truncated.
            int digits = 0;
            while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos])) != 0) {
                if (digits < 3) {
                    ms = ms * 10 + (s[pos] - '0');
                }
                ++digits;
                ++pos;
            }
            if (digits == 0) {
                return std::nullopt;
            }
            for (int i = digits; i < 3; ++i) {
                ms *= 10;
            }
        }
    }
    if (h > 23 || mi > 59 || sec > 59) {
        return std::nullopt;
    }
    expect(s, pos, 'Z');
    if (pos != s.size()) {
        return std::nullopt;
    }
    return t + hours{h} + minutes{mi} + seconds{sec} + duration{ms};
}

std::string to_ios_time(time_point t) {
    static constexpr const char* month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const auto day = date::floor<date::days>(t);
    const date::year_month_day ymd{day};
    const date::hh_mm_ss<duration> hms{t - day};
    const unsigned m = unsigned{ymd.month()};
    return fmt::format("{:02}:{:02}:{:02} UTC {} {} {}", hms.hours().count(), hms.minutes().count(),
                       hms.seconds().count(), month_names[(m >= 1 && m <= 12) ? m - 1 : 0],
                       unsigned{ymd.day()}, int{ymd.year()});
}

}  // namespace pkisim::timers
