// The cohort engine against the exact one on a 10,000-client fleet.
// - On a 1 ms grid (the simulator's clock resolution) the cohort engine must equal the exact
//   engine counter for counter: merging clients in the same state at the same millisecond is
//   lossless (a merged cohort is decided by the same limiter calls in the same order). Only
//   max_404_window_days may differ: a cohort remembers the earliest first-404 of its members,
//   so after a split it can overstate the longest window by the spread of the merged members'
//   first 404s; on this fleet that stays under 2 hours.
// - The exact engine keeps every client's exact time whatever the grid (issue 10 §3). On the
//   default 1 s grid the cohort engine merges clients that act within the same second and
//   spreads them evenly over it, an approximation; its fleet totals stay within the model's own
//   sensitivity: moving the latency by 1 ms moves the exact engine's totals by as much
//   (bench/README.md "Time-step convergence"). Max-connections drops are not compared: with a
//   36 ms service time they depend on sub-millisecond arrival order.
#include <cmath>
#include <string>

#include <gtest/gtest.h>

#include "pkisim/sim/simulation.hpp"
#include "sim_test_util.hpp"

using namespace pkisim;
using namespace pkisim::sim;
using pkisim::sim::testing::engine_opt;
using pkisim::sim::testing::make_scenario;

namespace {

scenario mini(bool with_ra, std::uint64_t clients) {
    std::string toml = R"(
horizon = "4d"
seed = 11
[ca]
config = "tests/data/sim/mini/ca.ios"
[[clients]]
config = "tests/data/sim/mini/client.ios"
pattern = "uniform"
window = "16h 48m"
count = )" + std::to_string(clients) +
                       "\n";
    if (with_ra)
        toml += "[ra]\nconfig = \"tests/data/sim/mini/ra.ios\"\n";
    return make_scenario(toml);
}

void expect_same(const sim_result& a, const sim_result& b) {
    ASSERT_EQ(a.daily.size(), b.daily.size());
    for (std::size_t d = 0; d < a.daily.size(); ++d)
        EXPECT_EQ(a.daily[d], b.daily[d]) << "day " << d;
    EXPECT_EQ(a.clients_hit_404, b.clients_hit_404);
    EXPECT_EQ(a.clients_outage, b.clients_outage);
    EXPECT_EQ(a.first_404_at, b.first_404_at);
    EXPECT_EQ(a.last_404_at, b.last_404_at);
    EXPECT_EQ(a.ra_shadow_at, b.ra_shadow_at);
    EXPECT_EQ(a.peak_attempts_per_minute, b.peak_attempts_per_minute);
    EXPECT_EQ(a.worst_day_attempts_per_minute, b.worst_day_attempts_per_minute);
    EXPECT_EQ(a.worst_day_accepted_per_minute, b.worst_day_accepted_per_minute);
    EXPECT_DOUBLE_EQ(a.mean_404_window_days, b.mean_404_window_days);
    EXPECT_NEAR(a.max_404_window_days, b.max_404_window_days, 2.0 / 24);
}

scenario on_1ms_grid(scenario sc) {
    EXPECT_TRUE(apply_setting(sc, "time_step", "1ms"));
    return sc;
}

bool within(double a, double b, double tolerance) {
    return std::abs(a - b) <= tolerance * std::max(std::abs(a), std::abs(b));
}

}  // namespace

TEST(engine_agreement, cohort_equals_exact_on_10000_clients_behind_an_ra) {
    const auto sc = on_1ms_grid(mini(true, 10'000));
    const auto exact = run_simulation(sc, engine_opt(engine_kind::exact));
    const auto cohort = run_simulation(sc, engine_opt(engine_kind::cohort));
    EXPECT_EQ(exact.engine, engine_kind::exact);
    EXPECT_EQ(cohort.engine, engine_kind::cohort);
    // The fleet does storm and the throttle does bite, or the comparison would prove little.
    EXPECT_GT(exact.clients_hit_404, 5'000u);
    EXPECT_GT(exact.totals.connections_ignored_deaf, 100'000u);
    EXPECT_GT(exact.totals.enrollments_failed, 0u);
    EXPECT_LT(cohort.events, exact.events);
    expect_same(exact, cohort);
}

TEST(engine_agreement, cohort_equals_exact_on_10000_clients_direct_to_the_ca) {
    const auto sc = on_1ms_grid(mini(false, 10'000));
    expect_same(run_simulation(sc, engine_opt(engine_kind::exact)),
                run_simulation(sc, engine_opt(engine_kind::cohort)));
}

TEST(engine_agreement, the_exact_engine_does_not_depend_on_the_grid_for_phase_locked_loopers) {
    // 100 clients that ask at the same instant: the exact engine gives the same day at 1 s and
    // 1 ms (every client keeps its exact time, retries armed when the attempt completed).
    auto sc = mini(false, 100);
    sc.groups[0].pattern = enrollment_pattern::instant;
    const auto coarse = run_simulation(sc, engine_opt(engine_kind::exact));
    const auto fine = run_simulation(on_1ms_grid(sc), engine_opt(engine_kind::exact));
    ASSERT_EQ(coarse.daily.size(), fine.daily.size());
    for (std::size_t d = 0; d < fine.daily.size(); ++d)
        EXPECT_EQ(coarse.daily[d], fine.daily[d]) << "day " << d;
    EXPECT_GT(fine.totals.deaf_ms, 0);
}

TEST(engine_agreement, the_cohort_engine_converges_to_the_exact_one_for_phase_locked_loopers) {
    // Issue 10 §3: 100 clients that ask at the same instant (max-connections 5, throttle).
    // The herd splits by outcome into groups a few milliseconds apart; merged into one record
    // spread over the step they would meet max-connections differently (bench/README.md).
    // Below 1 s a step with few records is decided record by record, so at 100 ms and 10 ms
    // the cohort engine stays within 2 % of the exact engine on what the server sees, drops
    // at max-connections included; at the default 1 s step (lossy merging) within 3 % on
    // deaf time and accepted connections.
    auto sc = mini(false, 100);
    sc.groups[0].pattern = enrollment_pattern::instant;
    const auto exact = run_simulation(sc, engine_opt(engine_kind::exact));
    ASSERT_GT(exact.totals.deaf_ms, 0);
    ASSERT_GT(exact.totals.connections_dropped_max_connections, 0u);
    const auto d = [](auto v) { return static_cast<double>(v); };
    for (const char* step : {"1s", "100ms", "10ms"}) {
        auto s = sc;
        ASSERT_TRUE(apply_setting(s, "time_step", step));
        const auto cohort = run_simulation(s, engine_opt(engine_kind::cohort));
        const bool fine = std::string{step} != "1s";
        const double tol = fine ? 0.02 : 0.03;
        EXPECT_TRUE(within(d(exact.totals.deaf_ms), d(cohort.totals.deaf_ms), tol)) << step;
        EXPECT_TRUE(within(d(exact.totals.connections_accepted),
                           d(cohort.totals.connections_accepted), tol))
            << step;
        if (fine) {
            EXPECT_TRUE(within(d(exact.totals.connections_dropped_max_connections),
                               d(cohort.totals.connections_dropped_max_connections), 0.02))
                << step;
        }
    }
}

TEST(engine_agreement, cohort_on_the_1s_grid_stays_near_the_exact_engine) {
    const auto sc = mini(false, 10'000);
    const auto exact = run_simulation(sc, engine_opt(engine_kind::exact));
    const auto cohort = run_simulation(sc, engine_opt(engine_kind::cohort));
    const auto& e = exact.totals;
    const auto& c = cohort.totals;
    const auto d = [](auto v) { return static_cast<double>(v); };
    // What the server sees (accepted connections, deaf time) stays close; per-client fates
    // (who got through, who ended in an outage) are decided by sub-second arrival order in
    // this max-connections-5 storm and move by up to a third (README "Engines").
    EXPECT_TRUE(within(d(e.connections_accepted), d(c.connections_accepted), 0.03));
    EXPECT_TRUE(within(d(e.deaf_ms), d(c.deaf_ms), 0.05));
    EXPECT_TRUE(within(d(e.enrollments_ok), d(c.enrollments_ok), 0.06));
    EXPECT_TRUE(within(d(e.get_next_ca_cert_requests), d(c.get_next_ca_cert_requests), 0.10));
    EXPECT_TRUE(within(d(e.connections_ignored_deaf), d(c.connections_ignored_deaf), 0.15));
    EXPECT_TRUE(within(d(exact.clients_hit_404), d(cohort.clients_hit_404), 0.25));
    EXPECT_TRUE(within(d(exact.clients_outage), d(cohort.clients_outage), 0.35));
    EXPECT_EQ(exact.first_404_at.has_value(), cohort.first_404_at.has_value());
}

TEST(engine_agreement, auto_picks_exact_for_small_fleets_and_cohort_for_large_ones) {
    EXPECT_EQ(run_simulation(mini(false, 50)).engine, engine_kind::exact);
    EXPECT_EQ(run_simulation(mini(false, 600)).engine, engine_kind::cohort);
}

TEST(simulation, same_scenario_and_seed_give_identical_results_and_seeds_matter) {
    const auto a = run_simulation(mini(true, 300));
    const auto b = run_simulation(mini(true, 300));
    for (std::size_t d = 0; d < a.daily.size(); ++d)
        EXPECT_EQ(a.daily[d], b.daily[d]);
    auto other = mini(true, 300);
    other.seed = 12;
    const auto c = run_simulation(other);
    bool differs = false;
    for (std::size_t d = 0; d < a.daily.size(); ++d)
        differs = differs || !(a.daily[d] == c.daily[d]);
    EXPECT_TRUE(differs);
}

TEST(engine_agreement, with_retry_jitter_the_engines_agree_in_distribution) {
    // Jitter is drawn per client in both engines, but not draw for draw, so the tolerance is
    // statistical: fleet totals within 5 %. On the 1 ms grid, so that what is compared is the
    // jitter, not the grid (the 1 s grid's own error is the test above).
    auto sc = on_1ms_grid(mini(false, 3'000));
    ASSERT_TRUE(apply_setting(sc, "retry_jitter", "3s"));
    const auto exact = run_simulation(sc, engine_opt(engine_kind::exact));
    const auto cohort = run_simulation(sc, engine_opt(engine_kind::cohort));
    const auto near = [](std::uint64_t a, std::uint64_t b) {
        const double x = static_cast<double>(a);
        const double y = static_cast<double>(b);
        return std::abs(x - y) <= 0.05 * std::max(x, y);
    };
    EXPECT_TRUE(near(exact.clients_hit_404, cohort.clients_hit_404));
    EXPECT_TRUE(
        near(exact.totals.get_next_ca_cert_requests, cohort.totals.get_next_ca_cert_requests));
    EXPECT_TRUE(near(exact.totals.responses_404, cohort.totals.responses_404));
    EXPECT_TRUE(
        near(exact.totals.connections_ignored_deaf, cohort.totals.connections_ignored_deaf));
    EXPECT_TRUE(near(exact.totals.connections_dropped_max_connections,
                     cohort.totals.connections_dropped_max_connections));
    EXPECT_TRUE(near(exact.totals.enrollments_failed, cohort.totals.enrollments_failed));
    // And jitter does change the run (it is not silently ignored).
    EXPECT_NE(exact.totals.get_next_ca_cert_requests,
              run_simulation(mini(false, 3'000), engine_opt(engine_kind::exact))
                  .totals.get_next_ca_cert_requests);
}

TEST(engine_agreement, with_retry_jitter_large_cohorts_split_like_the_exact_engine) {
    // 400 clients that enroll at one instant loop in one herd: the cohort engine splits it by
    // the tick each member's jitter lands on (sim/jitter.hpp, the multinomial for a cohort of
    // more than 4 members per tick of the window), the exact engine draws 400 jitters. On the
    // 100 ms and the default 1 s grids, with 1 s of jitter, what the server sees stays within
    // 3 % of the exact engine (measured: 0.2-2.2 %; the exact engine's own seed-to-seed spread
    // is below 0.1 % on these totals, so the gap is the cohort approximation, not noise).
    // Control: 4 s of jitter instead of 1 s moves the exact engine's totals by 4-6 %, so the
    // bound does tell jitter laws apart; and before the split members were spread over their
    // tick's milliseconds, the 1 s grid gave +12 % GetNextCACert and -21 % deaf time.
    // Max-connections drops (sub-millisecond order) are held to 25 % at 100 ms only (measured
    // +2 %), as in the tests above.
    auto base = mini(false, 400);
    base.groups[0].pattern = enrollment_pattern::instant;
    ASSERT_TRUE(apply_setting(base, "retry_jitter", "1s"));
    const auto totals_near = [](const day_counters& a, const day_counters& b, double tol) {
        const auto d = [](auto v) { return static_cast<double>(v); };
        EXPECT_TRUE(within(d(a.get_next_ca_cert_requests), d(b.get_next_ca_cert_requests), tol))
            << a.get_next_ca_cert_requests << " vs " << b.get_next_ca_cert_requests;
        EXPECT_TRUE(within(d(a.responses_404), d(b.responses_404), tol))
            << a.responses_404 << " vs " << b.responses_404;
        EXPECT_TRUE(within(d(a.connections_accepted), d(b.connections_accepted), tol))
            << a.connections_accepted << " vs " << b.connections_accepted;
        EXPECT_TRUE(within(d(a.connections_ignored_deaf), d(b.connections_ignored_deaf), tol))
            << a.connections_ignored_deaf << " vs " << b.connections_ignored_deaf;
        EXPECT_TRUE(within(d(a.deaf_ms), d(b.deaf_ms), tol)) << a.deaf_ms << " vs " << b.deaf_ms;
    };
    for (const char* step : {"100ms", "1s"}) {
        auto sc = base;
        ASSERT_TRUE(apply_setting(sc, "time_step", step));
        const auto exact = run_simulation(sc, engine_opt(engine_kind::exact));
        const auto cohort = run_simulation(sc, engine_opt(engine_kind::cohort));
        ASSERT_GT(exact.totals.deaf_ms, 0);
        // The herd stays in cohorts (10x fewer events than clients' events at 1 s).
        if (std::string{step} == "1s") {
            EXPECT_LT(cohort.events * 5, exact.events);
        }
        SCOPED_TRACE(step);
        totals_near(exact.totals, cohort.totals, 0.03);
        EXPECT_EQ(exact.clients_hit_404, cohort.clients_hit_404);
        if (std::string{step} == "100ms") {
            EXPECT_TRUE(within(
                static_cast<double>(exact.totals.connections_dropped_max_connections),
                static_cast<double>(cohort.totals.connections_dropped_max_connections), 0.25));
        }
    }
    // The control: the same comparison between 1 s and 4 s of jitter (exact engine) fails.
    auto other = base;
    ASSERT_TRUE(apply_setting(other, "retry_jitter", "4s"));
    const auto a = run_simulation(base, engine_opt(engine_kind::exact)).totals;
    const auto b = run_simulation(other, engine_opt(engine_kind::exact)).totals;
    EXPECT_FALSE(within(static_cast<double>(a.get_next_ca_cert_requests),
                        static_cast<double>(b.get_next_ca_cert_requests), 0.03));
    EXPECT_FALSE(
        within(static_cast<double>(a.responses_404), static_cast<double>(b.responses_404), 0.03));
    EXPECT_FALSE(within(static_cast<double>(a.deaf_ms), static_cast<double>(b.deaf_ms), 0.03));
}
