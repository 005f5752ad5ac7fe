#include "pkisim/timers/storm.hpp"

#include <algorithm>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "pkisim/timers/timeline.hpp"

namespace {

using namespace pkisim::timers;

const time_point t0 = *parse_iso8601("2030-01-01T00:00:00Z");

server_config server(int ca_days, int cert_days, std::optional<int> overlap_days) {
    server_config s;
    s.name = "ca-server";
    s.ca_lifetime = days{ca_days};
    s.cert_lifetime = days{cert_days};
    if (overlap_days) {
        s.auto_rollover = days{*overlap_days};
    }
    return s;
}

trustpoint_config client(int percent, bool auto_enroll = true) {
    trustpoint_config t;
    t.name = "GETVPN";
    t.auto_enroll = auto_enroll;
    t.auto_enroll_percent = percent;
    return t;
}

storm_analysis analyze(const server_config& s, const trustpoint_config& t) {
    const std::vector<trustpoint_config> tps{t};
    return analyze_storm(s, t0, tps);
}

bool any_finding_contains(const storm_analysis& a, const std::string& text) {
    auto has = [&](const std::vector<std::string>& v) {
        return std::any_of(v.begin(), v.end(),
                           [&](const auto& f) { return f.find(text) != std::string::npos; });
    };
    return has(a.findings) || std::any_of(a.trustpoints.begin(), a.trustpoints.end(),
                                          [&](const auto& t) { return has(t.findings); });
}

// Model §4, every number.
TEST(storm, seed002_first_get_next_ca_cert_is_180_days_before_expiry) {
    const auto a = analyze(server(1825, 600, 30), client(70));
    ASSERT_EQ(a.trustpoints.size(), 1U);
    const auto& t = a.trustpoints[0];
    EXPECT_DOUBLE_EQ(t.first_get_next_ca_cert_days_before_ca_expiry, 180.0);
    EXPECT_EQ(t.first_get_next_ca_cert, a.ca.not_after - days{180});
}

TEST(storm, seed002_shadow_exists_30_days_before_and_the_404_window_is_150_days) {
    const auto a = analyze(server(1825, 600, 30), client(70));
    EXPECT_EQ(a.shadow_generated_at, a.ca.not_after - days{30});
    EXPECT_DOUBLE_EQ(*a.overlap_days, 30.0);
    EXPECT_DOUBLE_EQ(a.trustpoints[0].max_404_window_days, 150.0);
    EXPECT_EQ(a.verdict, storm_verdict::storm);
    EXPECT_EQ(a.trustpoints[0].verdict, storm_verdict::storm);
}

TEST(storm, seed002_fleet_first_requests_fall_between_180_and_54_days_before) {
    const auto a = analyze(server(1825, 600, 30), client(70));
    EXPECT_EQ(a.trustpoints[0].last_first_get_next_ca_cert, a.ca.not_after - days{54});
    EXPECT_TRUE(any_finding_contains(a, "all of the fleet's first requests"));
}

TEST(storm, seed002_minimum_safe_overlap_is_180_days_and_the_recommendation_360) {
    const auto a = analyze(server(1825, 600, 30), client(70));
    EXPECT_DOUBLE_EQ(a.trustpoints[0].min_safe_overlap_days, 180.0);
    EXPECT_DOUBLE_EQ(a.trustpoints[0].recommended_overlap_days, 360.0);
    EXPECT_TRUE(any_finding_contains(a, "recommended `auto-rollover 360`"));
}

TEST(storm, seed002_27_looping_clients_exceed_the_throttle) {
    const auto a = analyze(server(1825, 600, 30), client(70));
    EXPECT_DOUBLE_EQ(a.trustpoints[0].requests_per_minute_per_client, 3.0);
    EXPECT_EQ(a.trustpoints[0].clients_to_reach_throttle, 27);
    EXPECT_TRUE(
        any_finding_contains(a, "27 such clients already exceed the 80 connections/60 s throttle"));
}

TEST(storm, seed002_mean_404_window_for_a_uniform_fleet_is_about_87_days) {
    // Model §4: last pre-rollover certificates of length ℓ ∈ (180, 600], spread uniformly.
    const auto s = server(1825, 600, 30);
    const auto ca = ca_validity(s, t0);
    const auto shadow = *shadow_generation_time(ca.not_after, s.auto_rollover);
    double total = 0;
    int n = 0;
    for (int d = 0; d < 420; ++d) {  // issue times C − 600 + d, d ∈ [0, 420)
        const auto id =
            issued_validity(s.cert_lifetime, ca.not_after - days{600} + days{d}, ca.not_after);
        const auto r = client_renewal(70, true, id, ca.not_after);
        ASSERT_EQ(r.kind, renewal_kind::shadow);
        total += std::max(0.0, to_days(shadow - r.at));
        ++n;
    }
    EXPECT_NEAR(total / n, 87.0, 0.5);
}

TEST(storm, seed_fix_auto_rollover_365_is_safe) {
    const auto a = analyze(server(1825, 600, 365), client(70));
    EXPECT_EQ(a.verdict, storm_verdict::safe);
    EXPECT_DOUBLE_EQ(a.trustpoints[0].max_404_window_days, 0.0);
}

TEST(storm, overlap_equal_to_the_threshold_180_is_safe_and_179_is_a_storm) {
    EXPECT_EQ(analyze(server(1825, 600, 180), client(70)).verdict, storm_verdict::safe);
    const auto a = analyze(server(1825, 600, 179), client(70));
    EXPECT_EQ(a.verdict, storm_verdict::storm);
    EXPECT_DOUBLE_EQ(a.trustpoints[0].max_404_window_days, 1.0);
}

TEST(storm, no_auto_rollover_is_an_outage_at_ca_expiry) {
    const auto a = analyze(server(1825, 600, std::nullopt), client(70));
    EXPECT_EQ(a.verdict, storm_verdict::outage);
    EXPECT_FALSE(a.shadow_generated_at.has_value());
    EXPECT_FALSE(a.overlap_days.has_value());
    EXPECT_DOUBLE_EQ(a.trustpoints[0].max_404_window_days, 180.0);
    EXPECT_TRUE(any_finding_contains(a, "No `auto-rollover`"));
}

TEST(storm, auto_rollover_0_means_no_usable_overlap_and_is_an_outage) {
    const auto a = analyze(server(1825, 600, 0), client(70));
    EXPECT_EQ(a.verdict, storm_verdict::outage);
    // The shadow timer would be the CA's notAfter itself: no shadow is ever usable (the
    // simulator builds no next generation either).
    EXPECT_FALSE(a.shadow_generated_at.has_value());
    EXPECT_TRUE(any_finding_contains(a, "`auto-rollover 0`"));
    EXPECT_TRUE(any_finding_contains(a, "overlap of 0"));
    EXPECT_FALSE(any_finding_contains(a, "No `auto-rollover`"));
}

TEST(storm, overlap_of_a_whole_ca_life_or_more_makes_the_shadow_at_the_cas_creation) {
    // Rule 3: notAfter − overlap is already past when the CA is created -> generated at once.
    for (int overlap : {1095, 1096, 2000, 7305}) {
        const auto a = analyze(server(1095, 365, overlap), client(80));
        EXPECT_EQ(a.verdict, storm_verdict::safe) << overlap;
        EXPECT_EQ(a.shadow_generated_at, a.ca.not_before) << overlap;
        EXPECT_DOUBLE_EQ(a.trustpoints[0].max_404_window_days, 0.0) << overlap;
        EXPECT_TRUE(any_finding_contains(a, "generated at once")) << overlap;
    }
    // Hours count: a CA of 100 d 12 h with an overlap of 100 d 12 h is the same case; 100 d
    // 11 h is an ordinary overlap one hour after the creation.
    server_config s = server(100, 30, std::nullopt);
    s.ca_lifetime = days{100} + hours{12};
    s.auto_rollover = days{100} + hours{12};
    const std::vector<trustpoint_config> tps{client(50)};
    EXPECT_EQ(analyze_storm(s, t0, tps).shadow_generated_at, t0);
    s.auto_rollover = days{100} + hours{11};
    EXPECT_EQ(analyze_storm(s, t0, tps).shadow_generated_at, t0 + hours{1});
}

TEST(storm, no_auto_enroll_is_an_outage) {
    const auto a = analyze(server(1825, 600, 365), client(70, false));
    EXPECT_EQ(a.verdict, storm_verdict::outage);
    EXPECT_FALSE(a.trustpoints[0].first_get_next_ca_cert.has_value());
    EXPECT_TRUE(any_finding_contains(a, "no `auto-enroll`"));
}

TEST(storm, auto_enroll_100_asks_for_the_next_ca_when_the_ca_has_expired_an_outage) {
    // The SHADOW point of the certificate that ends with the CA is the CA's notAfter itself:
    // shadow_step (the rule the simulator follows) calls that client expired.
    const auto a = analyze(server(1095, 365, 30), client(100));
    EXPECT_EQ(a.verdict, storm_verdict::outage);
    EXPECT_DOUBLE_EQ(a.trustpoints[0].first_get_next_ca_cert_days_before_ca_expiry, 0.0);
    EXPECT_DOUBLE_EQ(a.trustpoints[0].max_404_window_days, 0.0);
    EXPECT_TRUE(any_finding_contains(a, "already invalid"));
}

TEST(storm, auto_enroll_99_is_safe_with_a_30_day_overlap) {
    const auto a = analyze(server(1095, 365, 30), client(99));
    EXPECT_EQ(a.verdict, storm_verdict::safe);
}

TEST(storm, client_lifetime_longer_than_the_ca_uses_the_ca_lifetime) {
    const auto a = analyze(server(365, 730, 30), client(80));
    EXPECT_DOUBLE_EQ(a.trustpoints[0].min_safe_overlap_days, 73.0);
    // Every certificate is cut at the CA's end: a client first enrolled at e asks at
    // e + 0.8 (C − e), so the fleet's requests run from 73 days before expiry up to it.
    EXPECT_TRUE(a.trustpoints[0].requests_follow_enrollment);
    EXPECT_EQ(a.trustpoints[0].last_first_get_next_ca_cert, a.ca.not_after);
    EXPECT_TRUE(any_finding_contains(a, "down to 0"));
    EXPECT_TRUE(any_finding_contains(a, "is longer than lifetime ca-certificate"));
}

TEST(storm, recommendation_is_rounded_to_5_days_and_stays_below_the_ca_lifetime) {
    // 0.2 × 365 = 73 -> max(146, 103) = 146 -> 150.
    EXPECT_DOUBLE_EQ(
        analyze(server(1095, 365, 30), client(80)).trustpoints[0].recommended_overlap_days, 150.0);
    // 0.99 × 100 = 99 -> max(198, 129) = 198 -> 200, capped below 120 days -> 115.
    const auto a = analyze(server(120, 100, 30), client(1));
    EXPECT_DOUBLE_EQ(a.trustpoints[0].min_safe_overlap_days, 99.0);
    EXPECT_DOUBLE_EQ(a.trustpoints[0].recommended_overlap_days, 115.0);
}

TEST(storm, throttle_figures_follow_the_limiter_and_client_parameters) {
    storm_options o;
    o.client.shadow_retry_interval = seconds{15};  // 4 per minute
    const std::vector<trustpoint_config> tps{client(70)};
    const auto a = analyze_storm(server(1825, 600, 30), t0, tps, o);
    EXPECT_DOUBLE_EQ(a.trustpoints[0].requests_per_minute_per_client, 4.0);
    EXPECT_EQ(a.trustpoints[0].clients_to_reach_throttle, 21);  // 20 × 4 = 80 is not > 80
}

// Brute force: walk clients' certificates with the timeline rules and compare with the closed
// form, over thousands of random configurations (seeded).
TEST(storm_property, closed_form_agrees_with_a_walk_of_client_certificates) {
    std::mt19937_64 rng{2002};
    for (int iteration = 0; iteration < 2000; ++iteration) {
        const int ca_days = 30 + static_cast<int>(rng() % 7276);
        const int cert_days = 30 + static_cast<int>(rng() % 7276);
        const int percent = 10 + static_cast<int>(rng() % 91);
        const int overlap = 1 + static_cast<int>(rng() % static_cast<unsigned>(ca_days - 1));
        server_config s = server(ca_days, cert_days, overlap);
        s.ca_lifetime += minutes{static_cast<int>(rng() % 1440)};
        const trustpoint_config tp = client(percent);
        const auto a = analyze(s, tp);
        const auto& t = a.trustpoints.at(0);
        const auto ca = ca_validity(s, t0);
        const time_point c = ca.not_after;
        const time_point shadow = *a.shadow_generated_at;
        ASSERT_EQ(shadow, c - days{overlap});

        // One client per start offset on a grid over one renewal interval, each renewing by the
        // rules until its SHADOW point.
        const duration l = std::min(s.cert_lifetime, s.ca_lifetime);
        const duration r =
            client_renewal(percent, true, validity{t0, t0 + l}, time_point::max()).at - t0;
        const time_point walk_from = std::max(ca.not_before, c - l - 2 * r);
        const duration step = std::max<duration>(days{1}, r / 100);
        std::optional<time_point> earliest;
        std::optional<time_point> latest_after_renewal;
        for (duration offset{0}; offset < r; offset += step) {
            validity id = issued_validity(s.cert_lifetime, walk_from + offset, c);
            bool renewed = false;
            for (int guard = 0; guard < 100; ++guard) {
                ASSERT_LE(id.not_after, c);  // rule 2, every issued certificate
                const auto point = client_renewal(tp, id, c);
                if (point.kind == renewal_kind::shadow) {
                    ASSERT_GE(point.at, *t.first_get_next_ca_cert);
                    if (!earliest || point.at < *earliest)
                        earliest = point.at;
                    if (renewed && (!latest_after_renewal || point.at > *latest_after_renewal)) {
                        latest_after_renewal = point.at;
                    }
                    break;
                }
                ASSERT_EQ(point.kind, renewal_kind::renew);
                id = issued_validity(s.cert_lifetime, point.at, c);
                renewed = true;
            }
        }
        ASSERT_TRUE(earliest);
        // The grid gets within one step of the closed-form earliest request (P·step at most).
        EXPECT_LE(*earliest - *t.first_get_next_ca_cert, step) << "iteration " << iteration;
        if (latest_after_renewal) {
            EXPECT_LE(*latest_after_renewal, *t.last_first_get_next_ca_cert + seconds{1})
                << "iteration " << iteration;
        }
        // The 404 window of the earliest client, counted day by day.
        int days_404 = 0;
        for (time_point d = *t.first_get_next_ca_cert; d < c; d += days{1}) {
            if (d < shadow)
                ++days_404;
        }
        EXPECT_NEAR(days_404, t.max_404_window_days, 1.0) << "iteration " << iteration;
        const bool walk_storm = *earliest < shadow;
        if (std::chrono::abs(*t.first_get_next_ca_cert - shadow) > step) {
            EXPECT_EQ(walk_storm, a.verdict == storm_verdict::storm) << "iteration " << iteration;
        }
        // Rule 6: the rollover ID certificate stays inside the shadow CA.
        const auto shadow_ca = shadow_ca_validity(c, s.ca_lifetime);
        EXPECT_LE(rollover_id_validity(s.cert_lifetime, shadow_ca).not_after, shadow_ca.not_after);
        EXPECT_LT(t.recommended_overlap_days, to_days(s.ca_lifetime));
        EXPECT_GE(t.recommended_overlap_days + 1e-9, t.min_safe_overlap_days);
    }
}

}  // namespace
