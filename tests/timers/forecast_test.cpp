// forecast_client(): the per-router chain of renewals to the first GetNextCACert.
#include "pkisim/timers/forecast.hpp"

#include <random>

#include <gtest/gtest.h>

namespace pkisim::timers {
namespace {

time_point at(const char* iso) {
    return parse_iso8601(iso).value();
}

trustpoint_config tp(int pct) {
    trustpoint_config t;
    t.name = "TP";
    t.auto_enroll = true;
    t.auto_enroll_percent = pct;
    return t;
}

const validity ca{at("2025-01-10T09:00:00Z"), at("2030-01-09T09:00:00Z")};

TEST(forecast_client, truncated_certificate_asks_at_its_shadow_point) {
    const validity id{ca.not_after - days{600}, ca.not_after};
    const auto f =
        forecast_client(tp(70), router_phase::current, id, {}, at("2029-03-02T00:00:00Z"), ca,
                        days{600}, ca.not_after - days{30});
    ASSERT_TRUE(f.first_get_next_ca_cert);
    EXPECT_EQ(*f.first_get_next_ca_cert, ca.not_after - days{180});  // seed 002
    EXPECT_DOUBLE_EQ(f.window_days, 150.0);
    EXPECT_FALSE(f.outage);
}

TEST(forecast_client, renews_first_when_its_certificate_ends_before_the_ca) {
    const validity id{at("2028-04-01T10:00:00Z"), at("2029-11-22T10:00:00Z")};
    const auto f =
        forecast_client(tp(70), router_phase::current, id, {}, at("2029-03-02T00:00:00Z"), ca,
                        days{600}, ca.not_after - days{30});
    // RENEW at 70 % of 600 days, the new certificate is truncated to the CA: SHADOW at 70 % of
    // what is left.
    const time_point renew = id.not_before + days{420};
    const auto second = issued_validity(days{600}, renew, ca.not_after);
    EXPECT_EQ(*f.first_get_next_ca_cert, client_renewal(tp(70), second, ca.not_after).at);
}

TEST(forecast_client, outages_and_clients_that_never_ask) {
    const time_point now = at("2029-03-02T00:00:00Z");
    const validity id{ca.not_after - days{300}, ca.not_after};
    trustpoint_config none = tp(70);
    none.auto_enroll = false;
    EXPECT_TRUE(
        forecast_client(none, router_phase::current, id, {}, now, ca, days{600}, {}).outage);
    // A server that never has the next CA.
    auto f =
        forecast_client(tp(70), router_phase::current, id, {}, now, ca, days{600}, std::nullopt);
    EXPECT_TRUE(f.outage);
    EXPECT_EQ(f.window_end, ca.not_after);
    // Bare auto-enroll (100 %): asks when the CA expires.
    EXPECT_TRUE(forecast_client(tp(100), router_phase::current, id, {}, now, ca, days{600},
                                ca.not_after - days{30})
                    .outage);
    // Rollover already installed: nothing to ask.
    f = forecast_client(tp(70), router_phase::rollover, id, {}, now, ca, days{600}, {});
    EXPECT_FALSE(f.first_get_next_ca_cert);
    EXPECT_FALSE(f.outage);
}

TEST(forecast_client, a_pending_or_new_client_enrolls_when_it_next_acts) {
    const time_point now = at("2029-03-02T00:00:00Z");
    const time_point poll = now + minutes{10};
    const auto f = forecast_client(tp(80), router_phase::pending, std::nullopt, poll, now, ca,
                                   days{600}, ca.not_after - days{30});
    const auto issued = issued_validity(days{600}, poll, ca.not_after);
    EXPECT_EQ(*f.first_get_next_ca_cert, client_renewal(tp(80), issued, ca.not_after).at);
}

// Property: the first request is never before `from`, never after the CA ends unless outage,
// and with the shadow at or before it the window is empty.
TEST(forecast_client, window_rules_hold_for_random_certificates) {
    std::mt19937_64 rng{7};
    for (int k = 0; k < 500; ++k) {
        const int pct = 1 + static_cast<int>(rng() % 99);
        const time_point from = ca.not_before + hours{static_cast<int>(rng() % (1800 * 24))};
        const time_point nb = from - hours{static_cast<int>(rng() % (500 * 24))};
        const validity id{nb, std::min(nb + days{1 + static_cast<int>(rng() % 700)}, ca.not_after)};
        const time_point shadow = ca.not_after - days{static_cast<int>(rng() % 400)};
        const auto f =
            forecast_client(tp(pct), router_phase::current, id, from, from, ca, days{600}, shadow);
        if (!f.first_get_next_ca_cert)
            continue;
        EXPECT_GE(*f.first_get_next_ca_cert, from);
        if (!f.outage) {
            EXPECT_LT(*f.first_get_next_ca_cert, ca.not_after);
            EXPECT_EQ(*f.window_end, std::max(*f.first_get_next_ca_cert, shadow));
            EXPECT_GE(f.window_days, 0.0);
        }
    }
}

}  // namespace
}  // namespace pkisim::timers
