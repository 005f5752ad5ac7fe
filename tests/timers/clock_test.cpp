#include "pkisim/timers/clock.hpp"

#include <chrono>

#include <gtest/gtest.h>

namespace {

using namespace pkisim::timers;

TEST(manual_clock, moves_only_when_told) {
    const auto start = *parse_iso8601("2030-01-01");
    manual_clock m{start};
    EXPECT_EQ(m.now(), start);
    m.advance(seconds{20});
    EXPECT_EQ(m.now(), start + seconds{20});
    m.set(start + days{1});
    EXPECT_EQ(m.now(), start + days{1});
    EXPECT_EQ(m.to_real(seconds{5}), seconds{5});
}

TEST(warped_clock, runs_rate_times_faster_than_its_base) {
    manual_clock base{*parse_iso8601("2026-11-23T12:00:00Z")};
    const auto start = *parse_iso8601("2030-01-01");
    warped_clock w{base, start, 86400.0};  // one day per second
    EXPECT_EQ(w.now(), start);
    base.advance(seconds{1});
    EXPECT_EQ(w.now(), start + days{1});
    base.advance(duration{500});
    EXPECT_EQ(w.now(), start + days{1} + hours{12});
    EXPECT_EQ(w.to_real(days{1}), seconds{1});
    EXPECT_DOUBLE_EQ(w.rate(), 86400.0);
    EXPECT_EQ(w.start(), start);
}

TEST(warped_clock, lives_through_a_five_year_ca_in_minutes) {
    manual_clock base{};
    warped_clock w{base, *parse_iso8601("2030-01-01"), 1825.0 * 86400.0 / 300.0};
    base.advance(minutes{5});
    EXPECT_EQ(to_iso8601(w.now()), "2034-12-31T00:00:00Z");
}

TEST(system_clock, reads_the_host_utc_clock) {
    const system_clock c;
    const auto host = std::chrono::system_clock::now();
    const auto ours = c.now();
    EXPECT_LT(std::chrono::abs(ours - std::chrono::time_point_cast<duration>(host)), seconds{60});
}

}  // namespace
