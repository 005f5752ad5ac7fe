#include "pkisim/timers/time.hpp"

#include <gtest/gtest.h>

namespace {

using namespace pkisim::timers;

TEST(time, iso8601_round_trips) {
    const auto t = parse_iso8601("2030-01-01T00:00:00Z");
    ASSERT_TRUE(t);
    EXPECT_EQ(to_iso8601(*t), "2030-01-01T00:00:00Z");
    EXPECT_EQ(to_iso8601(*t + days{30}), "2030-01-31T00:00:00Z");
    EXPECT_EQ(to_iso8601(*t + duration{250}), "2030-01-01T00:00:00.250Z");
    EXPECT_EQ(parse_iso8601("2013-10-24T19:33:35.5Z"), parse_iso8601("2013-10-24T19:33:35.500"));
}

TEST(time, iso8601_accepts_the_documented_forms) {
    EXPECT_EQ(parse_iso8601("2030-01-01"), parse_iso8601("2030-01-01T00:00:00Z"));
    EXPECT_EQ(parse_iso8601("2030-01-01T10:20Z"), parse_iso8601("2030-01-01T10:20:00Z"));
    EXPECT_EQ(
        *parse_iso8601("2014-12-31T03:14:39.187Z") - *parse_iso8601("2014-12-31T03:14:19.184Z"),
        duration{20003});
}

TEST(time, iso8601_rejects_malformed_text) {
    for (const char* bad :
         {"", "2030", "2030-02-30", "2030-13-01", "2030-01-01T24:00Z", "2030-01-01T10:60Z",
          "2030-01-01T10:00:00ZZ", "yesterday", "2030-01-01T10:00:00.Z", "2030-1-01"}) {
        EXPECT_FALSE(parse_iso8601(bad).has_value()) << bad;
    }
}

TEST(time, ios_time_matches_show_crypto_pki_server) {
    // ios-pki-research.md §1.4: "CA certificate expiration timer: 12:58:34 UTC Jan 4 2025".
    EXPECT_EQ(to_ios_time(*parse_iso8601("2025-01-04T12:58:34Z")), "12:58:34 UTC Jan 4 2025");
}

TEST(time, decimal_days_convert_both_ways) {
    EXPECT_DOUBLE_EQ(to_days(days{150}), 150.0);
    EXPECT_DOUBLE_EQ(to_days(hours{12}), 0.5);
    EXPECT_EQ(from_days(1.5), hours{36});
    EXPECT_EQ(from_days(-1.0), -days{1});
}

}  // namespace
