#include "pkisim/sim/server_model.hpp"

#include <random>

#include <gtest/gtest.h>

using namespace pkisim;
using sim::admission_counts;
using sim::arrivals;
using sim::server_model;

namespace {

// The reference: every attempt decided by its own limiter call, closes released first.
admission_counts one_by_one(timers::connection_limiter& lim, std::vector<sim::ms_t>& open,
                            timers::time_point origin, const arrivals& a, sim::ms_t service) {
    admission_counts out;
    for (std::uint64_t j = a.first; j < a.first + a.count; ++j) {
        const auto t = a.time_of(j);
        std::sort(open.begin(), open.end());
        while (!open.empty() && open.front() <= t) {
            lim.on_close(origin + timers::duration{open.front()});
            open.erase(open.begin());
        }
        switch (lim.on_attempt(origin + timers::duration{t})) {
            case timers::admission::accepted:
                ++out.accepted;
                open.push_back(t + service);
                break;
            case timers::admission::dropped_max_connections:
                ++out.dropped;
                break;
            case timers::admission::ignored_deaf:
                ++out.ignored;
                break;
        }
    }
    return out;
}

}  // namespace

TEST(server_model, batched_admission_equals_one_call_per_attempt) {
    for (auto window : {timers::throttle_window::sliding, timers::throttle_window::fixed_minute,
                        timers::throttle_window::reset_after_deaf}) {
        for (int max_conn : {1, 5, 16}) {
            timers::limiter_config cfg;
            cfg.max_connections = max_conn;
            cfg.window = window;
            server_model batched{cfg};
            timers::connection_limiter reference{cfg};
            std::vector<sim::ms_t> open;
            const auto origin = timers::time_point{} + timers::days{20000};
            std::mt19937_64 rng{static_cast<std::uint64_t>(max_conn) * 7 +
                                static_cast<std::uint64_t>(window)};
            sim::ms_t base = 0;
            for (int instant = 0; instant < 400; ++instant) {
                base += 1000 + static_cast<sim::ms_t>(rng() % 3000);  // instants are a step apart
                const std::uint64_t total = 1 + rng() % 400;
                std::uint64_t first = 0;
                while (first < total) {
                    const std::uint64_t count =
                        std::min<std::uint64_t>(total - first, 1 + rng() % 150);
                    arrivals a{base, 1000, total, first, count};
                    const sim::ms_t service = 36 + static_cast<sim::ms_t>(rng() % 300);
                    const auto got = batched.admit(origin, a, service);
                    const auto want = one_by_one(reference, open, origin, a, service);
                    ASSERT_EQ(got.accepted, want.accepted) << "instant " << instant;
                    ASSERT_EQ(got.dropped, want.dropped) << "instant " << instant;
                    ASSERT_EQ(got.ignored, want.ignored) << "instant " << instant;
                    first += count;
                }
            }
            EXPECT_GT(reference.counters().ignored_deaf, 0u);
        }
    }
}

TEST(server_model, spreads_one_instants_connections_over_the_time_step) {
    arrivals a{1000, 1000, 4, 0, 4};
    EXPECT_EQ(a.time_of(0), 1000);
    EXPECT_EQ(a.time_of(1), 1250);
    EXPECT_EQ(a.time_of(3), 1750);
    EXPECT_EQ(a.first_at_or_after(1250, 0), 1u);
    EXPECT_EQ(a.first_at_or_after(1251, 0), 2u);
    EXPECT_EQ(a.first_at_or_after(5000, 0), 4u);
}

// The cursor that admit() walks members with gives time_of() exactly, by steps and by jumps,
// whether the spread is shorter or longer than the member count (carry of the remainder).
TEST(server_model, arrival_cursor_equals_time_of_by_steps_and_jumps) {
    std::mt19937_64 rng{12};
    for (int round = 0; round < 300; ++round) {
        arrivals a;
        a.base = static_cast<sim::ms_t>(rng() % 100000);
        a.spread = round % 10 == 0 ? 0 : static_cast<sim::ms_t>(rng() % 60001);
        a.total = 1 + rng() % (round % 2 == 0 ? 50 : 5000000);
        a.first = rng() % a.total;
        a.count = a.total - a.first;
        std::uint64_t j = a.first;
        arrivals::cursor c{a, j};
        while (j < a.first + a.count) {
            ASSERT_EQ(c.time(), a.time_of(j))
                << "spread " << a.spread << " total " << a.total << " j " << j;
            if (rng() % 8 == 0) {
                j += 1 + rng() % 1000;
                c.seek(j);
            } else {
                ++j;
                c.step();
            }
        }
    }
}
