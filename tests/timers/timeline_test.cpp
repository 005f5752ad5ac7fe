#include "pkisim/timers/timeline.hpp"

#include <gtest/gtest.h>

namespace {

using namespace pkisim::timers;

const time_point t0 = *parse_iso8601("2030-01-01T00:00:00Z");

server_config seed002_server() {
    server_config s;
    s.name = "ca-server";
    s.ca_lifetime = days{1825};
    s.cert_lifetime = days{600};
    s.auto_rollover = days{30};
    return s;
}

TEST(timeline, rule1_ca_lives_lifetime_ca_certificate_from_no_shutdown) {
    const auto ca = ca_validity(seed002_server(), t0);
    EXPECT_EQ(ca.not_before, t0);
    EXPECT_EQ(ca.not_after, t0 + days{1825});
    EXPECT_EQ(to_iso8601(ca.not_after), "2034-12-31T00:00:00Z");
    EXPECT_TRUE(ca.contains(t0));
    EXPECT_FALSE(ca.contains(ca.not_after));
}

TEST(timeline, rule2_issued_certificates_never_outlive_the_ca) {
    const auto c = t0 + days{1825};
    const auto early = issued_validity(days{600}, t0 + days{10}, c);
    EXPECT_EQ(early.not_before, t0 + days{10});  // no back-dating
    EXPECT_EQ(early.not_after, t0 + days{610});
    EXPECT_FALSE(is_truncated(early, c));
    const auto late = issued_validity(days{600}, c - days{100}, c);
    EXPECT_EQ(late.not_after, c);
    EXPECT_TRUE(is_truncated(late, c));
    const auto exact = issued_validity(days{600}, c - days{600}, c);
    EXPECT_EQ(exact.not_after, c);
    EXPECT_TRUE(is_truncated(exact, c));  // ends with the CA
}

TEST(timeline, rule3_shadow_is_generated_overlap_before_ca_expiry) {
    const auto c = t0 + days{1825};
    EXPECT_EQ(shadow_generation_time(c, days{30}), c - days{30});
    EXPECT_EQ(shadow_generation_time(c, days{365}), c - days{365});
    EXPECT_FALSE(shadow_generation_time(c, std::nullopt).has_value());
}

TEST(timeline, rule3_overlap_raised_on_a_live_server_generates_the_shadow_now) {
    const auto c = t0 + days{1825};
    const auto now = c - days{100};  // the seed's storm is on: 100 days left
    EXPECT_EQ(shadow_generation_due(c, days{30}, now), c - days{30});  // still ahead
    EXPECT_EQ(shadow_generation_due(c, days{365}, now), now);          // already past -> now
    EXPECT_FALSE(shadow_generation_due(c, std::nullopt, now).has_value());
    EXPECT_FALSE(shadow_generation_due(c, days{30}, c).has_value());  // CA expired
}

TEST(timeline, rule3_shadow_ca_starts_when_the_current_ca_ends) {
    const auto c = t0 + days{1825};
    const auto shadow = shadow_ca_validity(c, days{1825});
    EXPECT_EQ(shadow.not_before, c);
    EXPECT_EQ(shadow.not_after, c + days{1825});
}

TEST(timeline, rule6_rollover_id_certificate_comes_from_the_shadow_ca) {
    const auto shadow = shadow_ca_validity(t0 + days{1825}, days{1825});
    const auto id = rollover_id_validity(days{600}, shadow);
    EXPECT_EQ(id.not_before, shadow.not_before);
    EXPECT_EQ(id.not_after, shadow.not_before + days{600});
    const auto long_id = rollover_id_validity(days{3000}, shadow);
    EXPECT_EQ(long_id.not_after, shadow.not_after);  // truncated at the shadow's end
}

TEST(timeline, rule7_switchover_is_at_ca_not_after) {
    const auto c = t0 + days{1825};
    EXPECT_EQ(switchover_time(c), c);
}

TEST(timeline, timer1_renew_at_p_percent_of_the_life) {
    const auto c = t0 + days{1825};
    trustpoint_config tp;
    tp.auto_enroll = true;
    tp.auto_enroll_percent = 70;
    const auto id = issued_validity(days{600}, t0, c);
    const auto r = client_renewal(tp, id, c);
    EXPECT_EQ(r.kind, renewal_kind::renew);
    EXPECT_EQ(r.at, t0 + days{420});
}

TEST(timeline, timer2_a_certificate_ending_with_the_ca_arms_shadow) {
    // Model §4: a certificate issued at C − 600 ends exactly at C; 70 % later is C − 180.
    const auto c = t0 + days{1825};
    const auto id = issued_validity(days{600}, c - days{600}, c);
    const auto r = client_renewal(70, true, id, c);
    EXPECT_EQ(r.kind, renewal_kind::shadow);
    EXPECT_EQ(r.at, c - days{180});
}

TEST(timeline, without_auto_enroll_nothing_is_armed) {
    const auto c = t0 + days{1825};
    const auto r = client_renewal(70, false, issued_validity(days{600}, t0, c), c);
    EXPECT_EQ(r.kind, renewal_kind::none);
}

TEST(timeline, bare_auto_enroll_renews_at_expiry) {
    const auto c = t0 + days{1095};
    const auto id = issued_validity(days{365}, t0, c);
    EXPECT_EQ(client_renewal(100, true, id, c).at, id.not_after);
}

}  // namespace
