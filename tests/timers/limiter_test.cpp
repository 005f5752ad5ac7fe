#include "pkisim/timers/limiter.hpp"

#include <gtest/gtest.h>

namespace {

using namespace pkisim::timers;

const time_point t0 = *parse_iso8601("2030-01-01T00:00:00Z");

// Accepted connections that close at once, so only the throttle can refuse them.
int accept_n(connection_limiter& lim, time_point start, int n, duration gap) {
    int accepted = 0;
    for (int i = 0; i < n; ++i) {
        const auto t = start + gap * i;
        if (lim.on_attempt(t) == admission::accepted) {
            ++accepted;
            lim.on_close(t);
        }
    }
    return accepted;
}

TEST(connection_limiter, defaults_are_the_seed_limits) {
    const limiter_config c;
    EXPECT_EQ(c.max_connections, 5);
    EXPECT_EQ(c.throttle_limit, 80);
    EXPECT_EQ(c.throttle_window_length, seconds{60});
    EXPECT_EQ(c.deaf_period, seconds{15});
    EXPECT_EQ(c.window, throttle_window::sliding);
}

TEST(connection_limiter, exactly_80_are_accepted_in_a_window_and_the_81st_starts_15_s_deaf) {
    connection_limiter lim;
    EXPECT_EQ(accept_n(lim, t0, 80, duration{100}), 80);
    const auto t81 = t0 + seconds{10};
    EXPECT_EQ(lim.on_attempt(t81), admission::ignored_deaf);
    EXPECT_EQ(lim.counters().deaf_periods, 1U);
    EXPECT_EQ(lim.deaf_until(), t81 + seconds{15});
    EXPECT_TRUE(lim.is_deaf(t81 + seconds{14}));
    EXPECT_FALSE(lim.is_deaf(t81 + seconds{15}));
    EXPECT_EQ(lim.counters().accepted, 80U);
    EXPECT_EQ(lim.counters().deaf_time, seconds{15});
}

TEST(connection_limiter, attempts_while_deaf_are_ignored_and_counted) {
    connection_limiter lim;
    accept_n(lim, t0, 80, duration{100});
    lim.on_attempt(t0 + seconds{10});
    for (int i = 1; i <= 5; ++i) {
        EXPECT_EQ(lim.on_attempt(t0 + seconds{10 + i}), admission::ignored_deaf);
    }
    EXPECT_EQ(lim.counters().ignored_deaf, 6U);
    EXPECT_EQ(lim.counters().deaf_periods, 1U);  // ignoring does not extend the pause
}

TEST(connection_limiter, sliding_window_stays_full_until_accepts_age_out) {
    connection_limiter lim;
    accept_n(lim, t0, 80, duration{100});                                  // t0 .. t0+7.9 s
    lim.on_attempt(t0 + seconds{10});                                      // deaf until 25 s
    EXPECT_EQ(lim.on_attempt(t0 + seconds{25}), admission::ignored_deaf);  // 80 still in window
    EXPECT_EQ(lim.counters().deaf_periods, 2U);
    // At t0 + 60 s the first accept (t0) has left the window: room for one.
    EXPECT_EQ(lim.on_attempt(t0 + seconds{60}), admission::accepted);
}

TEST(connection_limiter, fixed_minute_buckets_reset_on_the_minute) {
    connection_limiter lim{limiter_config{.window = throttle_window::fixed_minute}};
    EXPECT_EQ(accept_n(lim, t0 + seconds{50}, 80, duration{100}), 80);     // 50 s .. 57.9 s
    EXPECT_EQ(lim.on_attempt(t0 + seconds{59}), admission::ignored_deaf);  // deaf until 74 s
    EXPECT_EQ(lim.on_attempt(t0 + seconds{74}), admission::accepted);      // new minute bucket
    connection_limiter sliding;
    accept_n(sliding, t0 + seconds{50}, 80, duration{100});
    sliding.on_attempt(t0 + seconds{59});
    EXPECT_EQ(sliding.on_attempt(t0 + seconds{74}), admission::ignored_deaf);
}

TEST(connection_limiter, reset_after_deaf_restarts_the_count_when_the_pause_ends) {
    connection_limiter lim{limiter_config{.window = throttle_window::reset_after_deaf}};
    EXPECT_EQ(accept_n(lim, t0, 80, duration{100}), 80);
    EXPECT_EQ(lim.on_attempt(t0 + seconds{10}), admission::ignored_deaf);
    EXPECT_EQ(accept_n(lim, t0 + seconds{25}, 80, duration{10}), 80);  // fresh count after 15 s
    EXPECT_EQ(lim.on_attempt(t0 + seconds{26}), admission::ignored_deaf);
    EXPECT_EQ(lim.counters().deaf_periods, 2U);
}

TEST(connection_limiter, max_connections_drops_while_that_many_are_open) {
    connection_limiter lim;
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(lim.on_attempt(t0), admission::accepted);
    }
    EXPECT_EQ(lim.on_attempt(t0), admission::dropped_max_connections);
    EXPECT_EQ(lim.counters().open, 5);
    EXPECT_EQ(lim.counters().peak_open, 5);
    lim.on_close(t0 + seconds{1});
    EXPECT_EQ(lim.on_attempt(t0 + seconds{1}), admission::accepted);
    EXPECT_EQ(lim.counters().dropped_max_connections, 1U);
    connection_limiter sixteen{limiter_config{.max_connections = 16}};
    int accepted = 0;
    for (int i = 0; i < 20; ++i) {
        accepted += sixteen.on_attempt(t0) == admission::accepted ? 1 : 0;
    }
    EXPECT_EQ(accepted, 16);
}

TEST(connection_limiter, dropped_attempts_do_not_count_towards_the_throttle) {
    connection_limiter lim{limiter_config{.max_connections = 1}};
    ASSERT_EQ(lim.on_attempt(t0), admission::accepted);
    for (int i = 0; i < 200; ++i) {
        EXPECT_EQ(lim.on_attempt(t0 + duration{i}), admission::dropped_max_connections);
    }
    EXPECT_EQ(lim.counters().deaf_periods, 0U);
}

TEST(connection_limiter, every_parameter_is_changeable) {
    connection_limiter lim{limiter_config{.max_connections = 16,
                                          .throttle_limit = 10,
                                          .throttle_window_length = seconds{5},
                                          .deaf_period = seconds{2}}};
    EXPECT_EQ(accept_n(lim, t0, 10, duration{10}), 10);
    EXPECT_EQ(lim.on_attempt(t0 + seconds{1}), admission::ignored_deaf);
    EXPECT_EQ(lim.deaf_until(), t0 + seconds{3});
    EXPECT_EQ(lim.on_attempt(t0 + seconds{5}), admission::accepted);  // window moved on
}

TEST(connection_limiter, throttle_off_keeps_max_connections) {
    connection_limiter lim{limiter_config{.throttle = false}};
    EXPECT_EQ(accept_n(lim, t0, 1000, duration{1}), 1000);
    EXPECT_EQ(lim.counters().deaf_periods, 0U);
    for (int i = 0; i < 5; ++i) {
        lim.on_attempt(t0 + seconds{2});
    }
    EXPECT_EQ(lim.on_attempt(t0 + seconds{2}), admission::dropped_max_connections);
    EXPECT_FALSE(lim.is_deaf(t0 + seconds{2}));
}

TEST(connection_limiter, disabled_accepts_everything_and_still_counts_open) {
    connection_limiter lim{limiter_config{.enabled = false}};
    for (int i = 0; i < 1000; ++i) {
        EXPECT_EQ(lim.on_attempt(t0), admission::accepted);
    }
    EXPECT_EQ(lim.counters().open, 1000);
    EXPECT_EQ(lim.counters().peak_open, 1000);
    lim.on_close(t0);
    EXPECT_EQ(lim.counters().open, 999);
}

TEST(connection_limiter, close_without_open_does_not_go_negative) {
    connection_limiter lim;
    lim.on_close(t0);
    EXPECT_EQ(lim.counters().open, 0);
}

TEST(connection_limiter, names_of_decisions_and_windows) {
    EXPECT_EQ(to_string(admission::accepted), "accepted");
    EXPECT_EQ(to_string(admission::dropped_max_connections), "dropped-max-connections");
    EXPECT_EQ(to_string(admission::ignored_deaf), "ignored-deaf");
    EXPECT_EQ(to_string(throttle_window::sliding), "sliding");
    EXPECT_EQ(to_string(throttle_window::fixed_minute), "fixed-minute");
    EXPECT_EQ(to_string(throttle_window::reset_after_deaf), "reset-after-deaf");
}

TEST(connection_limiter, 27_clients_every_20_s_make_the_server_deaf) {
    // Model §4: 27 looping clients × 3 per minute = 81 > 80.
    connection_limiter lim;
    for (int round = 0; round < 3; ++round) {
        for (int c = 0; c < 27; ++c) {
            const auto t = t0 + seconds{20 * round} + duration{c * 10};
            if (lim.on_attempt(t) == admission::accepted) {
                lim.on_close(t + duration{36});
            }
        }
    }
    EXPECT_EQ(lim.counters().deaf_periods, 1U);
    connection_limiter lim26;
    for (int round = 0; round < 30; ++round) {
        for (int c = 0; c < 26; ++c) {
            const auto t = t0 + seconds{20 * round} + duration{c * 10};
            if (lim26.on_attempt(t) == admission::accepted) {
                lim26.on_close(t + duration{36});
            }
        }
    }
    EXPECT_EQ(lim26.counters().deaf_periods, 0U);
}

}  // namespace
