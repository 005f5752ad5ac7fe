// Seed 002 (seeds-digest §002.3) reproduced from the rules. The fleet: first enrollments spread
// evenly over the first renewal period (0.7 × 600 = 420 days), then renewals by the rules, so the
// last pre-rollover certificates have lengths spread over (180, 600] days. The limiter is off
// and the time step is 20 s (one shadow retry) so that the months-long loops cost little; the
// limiter has its own test below.
#include <cmath>

#include <gtest/gtest.h>

#include "pkisim/sim/simulation.hpp"
#include "pkisim/timers/storm.hpp"
#include "sim_test_util.hpp"

using namespace pkisim;
using namespace pkisim::sim;
using pkisim::sim::testing::engine_opt;
using pkisim::sim::testing::make_scenario;

namespace {

scenario seed002_uniform(bool with_ra, int clients = 300) {
    // The seed's first rollover (a steady-state fleet, seeds-digest 002.3); the phase-locked
    // generation 2 that the default horizon adds is generations_test's subject.
    std::string toml = R"(
time_step = "20s"
generations = 1
[ca]
config = "configs/seed002/ca.ios"
[limiter]
enabled = false
[[clients]]
config = "configs/seed002/client.ios"
pattern = "spread"
window = "420d"
count = )" + std::to_string(clients) +
                       "\n";
    if (with_ra)
        toml += "[ra]\nconfig = \"configs/scenarios/seed002-ra.ios\"\n";
    return make_scenario(toml);
}

double days_before_expiry(const sim_result& r, timers::time_point t) {
    return timers::to_days(r.ca.not_after - t);
}

}  // namespace

TEST(fidelity, seed002_first_get_next_ca_cert_is_180_days_before_ca_expiry) {
    const auto r = run_simulation(seed002_uniform(false), engine_opt(engine_kind::cohort));
    ASSERT_TRUE(r.first_get_next_ca_cert_at);
    ASSERT_TRUE(r.first_404_at);
    EXPECT_NEAR(days_before_expiry(r, *r.first_get_next_ca_cert_at), 180.0, 1.0);
    EXPECT_NEAR(days_before_expiry(r, *r.first_404_at), 180.0, 1.0);
    // 404s until the shadow appears 30 days before expiry, none after.
    ASSERT_TRUE(r.shadow_generated_at);
    EXPECT_DOUBLE_EQ(days_before_expiry(r, *r.shadow_generated_at), 30.0);
    ASSERT_TRUE(r.last_404_at);
    EXPECT_LT(*r.last_404_at, *r.shadow_generated_at);
    EXPECT_GT(*r.last_404_at, *r.shadow_generated_at - timers::minutes{1});
    EXPECT_EQ(r.clients_hit_404, r.clients);
    EXPECT_NEAR(r.mean_404_window_days, 87.0, 1.0);
    EXPECT_EQ(r.clients_outage, 0u);
    EXPECT_EQ(r.outcome, verdict::storm);
}

TEST(fidelity, seed002_earliest_clients_window_equals_the_closed_form) {
    // The earliest client in steady state: enrolled on day 385, renewed on days 805 and 1225,
    // so its last certificate runs exactly 600 days to the CA's end (C - 600).
    const auto sc = make_scenario(R"(
time_step = "20s"
[ca]
config = "configs/seed002/ca.ios"
[limiter]
enabled = false
[[clients]]
config = "configs/seed002/client.ios"
pattern = "instant"
at = "385d"
count = 1
)");
    const auto r = run_simulation(sc, engine_opt(engine_kind::exact));
    ASSERT_EQ(r.closed_form.trustpoints.size(), 1u);
    const auto& cf = r.closed_form.trustpoints[0];
    EXPECT_DOUBLE_EQ(cf.max_404_window_days, 150.0);
    // Window = first 404 -> the 200 on the first retry after the shadow exists (< 20 s later).
    EXPECT_NEAR(r.max_404_window_days, cf.max_404_window_days, 20.0 / 86400);
    ASSERT_TRUE(r.first_get_next_ca_cert_at);
    ASSERT_TRUE(cf.first_get_next_ca_cert);
    // The exact engine keeps milliseconds: the certificate is issued one network latency (2 ms)
    // after the enrollment starts, and SHADOW is at 70 % of it.
    EXPECT_LE(std::chrono::abs(*r.first_get_next_ca_cert_at - *cf.first_get_next_ca_cert),
              timers::duration{2});
}

TEST(fidelity, seed002_behind_an_ra_gets_404_from_the_ra_until_the_ra_has_the_shadow) {
    const auto r = run_simulation(seed002_uniform(true), engine_opt(engine_kind::cohort));
    ASSERT_TRUE(r.ra_shadow_at);
    ASSERT_TRUE(r.ra_first_get_next_ca_cert_at);
    // The RA's own certificate (issued on day 0, renewed at 70 %) is truncated on day 1260: the
    // RA asks the CA from C - 169.5 days and gets the shadow as soon as it exists.
    EXPECT_NEAR(days_before_expiry(r, *r.ra_first_get_next_ca_cert_at), 169.5, 0.01);
    EXPECT_NEAR(timers::to_days(*r.ra_shadow_at - *r.shadow_generated_at), 0.0, 0.01);
    EXPECT_NEAR(days_before_expiry(r, *r.first_404_at), 180.0, 1.0);
    EXPECT_EQ(r.clients_hit_404, r.clients);
    EXPECT_NEAR(r.mean_404_window_days, 87.0, 1.0);
}

TEST(fidelity, seed002_overlap_100_hits_about_64_percent_and_181_or_365_none) {
    struct row {
        int overlap;
        double share;
        double tolerance;
    };
    for (const auto& c : {row{100, 0.637, 0.02}, row{181, 0.0, 0.0}, row{365, 0.0, 0.0}}) {
        auto sc = seed002_uniform(false);
        ASSERT_TRUE(apply_setting(sc, "overlap", std::to_string(c.overlap)));
        const auto r = run_simulation(sc, engine_opt(engine_kind::cohort));
        const double share =
            static_cast<double>(r.clients_hit_404) / static_cast<double>(r.clients);
        EXPECT_NEAR(share, c.share, c.tolerance) << "overlap " << c.overlap;
        EXPECT_EQ(r.clients_outage, 0u);
        if (c.share == 0.0) {
            EXPECT_EQ(r.outcome, verdict::safe) << "overlap " << c.overlap;
        }
    }
}

TEST(fidelity, phase_locked_fleet_asks_all_at_once_and_meets_the_throttle) {
    // Everyone enrolled on day 0: renewals on days 420, 840, 1260; the day-1260 certificate is
    // truncated to 565 days, so all ask at day 1655.5 = C - 169.5 days. Two hours of the herd
    // against the IOS limiter (80/min sliding, 15 s deaf, max-connections 5).
    const auto sc = make_scenario(R"(
horizon = "1655d 14h"
[ca]
config = "configs/seed002/ca.ios"
[[clients]]
config = "configs/seed002/client.ios"
count = 300
pattern = "instant"
)");
    const auto r = run_simulation(sc);
    ASSERT_TRUE(r.first_get_next_ca_cert_at);
    EXPECT_NEAR(timers::to_days(r.ca.not_after - *r.first_get_next_ca_cert_at), 169.5, 1e-6);
    const auto& herd_day = r.daily[1655];
    EXPECT_EQ(herd_day.clients_entered_shadow_loop, 300u);
    // 300 clients ask in the same minute (and those not answered ask again 30 s later); the
    // throttle lets at most 80 a minute through.
    EXPECT_GE(r.peak_attempts_per_minute, 300u);
    ASSERT_EQ(r.worst_day, 1655);
    std::uint32_t max_accepted = 0;
    for (auto a : r.worst_day_accepted_per_minute)
        max_accepted = std::max(max_accepted, a);
    EXPECT_LE(max_accepted, 80u);
    EXPECT_GE(max_accepted, 60u);
    // Two hours: ~120 minutes × (≤ 80 accepted); offered ~ 300 clients every 20-30 s.
    EXPECT_LE(herd_day.connections_accepted, 80u * 121);
    EXPECT_GT(herd_day.connections_ignored_deaf, herd_day.connections_accepted);
    EXPECT_GT(herd_day.deaf_ms, 0);
    EXPECT_EQ(r.clients_hit_404, 300u);
    EXPECT_NEAR(static_cast<double>(herd_day.connections_accepted) / 120.0, 80.0, 16.0);
}
