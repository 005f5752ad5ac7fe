// The fleet verdict (verdict.hpp): the RA's own timer, generation 2 and the change set, checked
// against an independent walk of certificates on cases beyond seed 002 (hours, percentages, RA
// placements, several generations).
#include "pkisim/timers/verdict.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "pkisim/timers/settings.hpp"

namespace {

using namespace pkisim::timers;

const time_point t0 = default_ca_start();

server_config ca_server(duration ca, duration cert, std::optional<duration> overlap) {
    server_config s;
    s.name = "root";
    s.ca_lifetime = ca;
    s.cert_lifetime = cert;
    s.auto_rollover = overlap;
    return s;
}

trustpoint_config tp(const std::string& name, int percent, bool auto_enroll = true) {
    trustpoint_config t;
    t.name = name;
    t.auto_enroll = auto_enroll;
    t.auto_enroll_percent = percent;
    t.enrollment_url = "http://ca";
    return t;
}

// Independent walk: issue, renew at P % while untruncated, return the SHADOW instant of the
// certificate that ends with the CA (model §2 timers 1-2), stepping one renewal at a time.
time_point walk_shadow(time_point issued, duration life, int p, time_point ca_end) {
    time_point nb = issued;
    for (int guard = 0; guard < 100000; ++guard) {
        const time_point na = std::min(nb + life, ca_end);
        const auto len = (na - nb).count();
        const time_point at = nb + duration{len / 100 * p + len % 100 * p / 100};
        if (na >= ca_end) {
            return at;
        }
        nb = at;
    }
    return time_point::max();
}

TEST(ra_shadow_timer, follows_a_walk_of_the_ra_certificates_for_many_cases) {
    const client_model m;
    struct c {
        duration ca, cert;
        int p;
        duration enrolled;
    };
    const std::vector<c> cases = {
        {days{1825}, days{600}, 70, days{0}},  // seed 002: C - 169.5 d
        {days{1095}, days{365}, 80, days{0}},  // IOS defaults
        {days{1095} + hours{7}, days{200} + hours{13}, 63, days{17} + hours{5}},
        {days{3650}, days{1095}, 95, days{400}},
        {days{730}, days{1000}, 50, days{0}},  // certificate longer than CA
        {days{730}, days{1000}, 50, days{300}},
        {days{400} + hours{12} + minutes{30}, days{90} + hours{1}, 33, hours{36}},
    };
    for (const auto& k : cases) {
        const validity ca{t0, t0 + k.ca};
        const auto r = ra_shadow_timer(ca, k.cert, tp("ra", k.p), t0 + k.enrolled, std::nullopt,
                                       std::nullopt, m);
        ASSERT_EQ(r.own.kind, renewal_kind::shadow);
        EXPECT_EQ(r.own.at, walk_shadow(t0 + k.enrolled, k.cert, k.p, ca.not_after))
            << k.p << " " << k.cert.count();
        EXPECT_EQ(r.asks_ca_at, r.own.at);
        EXPECT_FALSE(r.knows_shadow_at.has_value());  // no shadow given
    }
}

TEST(ra_shadow_timer, learns_on_its_first_poll_at_or_after_the_shadow_and_after_a_manual_rollover) {
    const client_model m;  // 20 s
    const validity ca{t0, t0 + days{1825}};
    const auto ra = tp("ra", 70);
    // Own SHADOW at C - 169.5 d; the CA's shadow 7 s + 3 polls later -> knows at ask + 60 s.
    const auto own = ra_shadow_timer(ca, days{600}, ra, t0, std::nullopt, std::nullopt, m).own.at;
    const auto r = ra_shadow_timer(ca, days{600}, ra, t0, std::nullopt, own + seconds{47}, m);
    EXPECT_EQ(r.knows_shadow_at, own + seconds{60});
    // A manual rollover before its own timer: asks then, knows at the shadow (already there).
    const time_point manual = t0 + days{1460};
    const auto r2 = ra_shadow_timer(ca, days{600}, ra, t0, manual, t0 + days{1460}, m);
    EXPECT_EQ(r2.asks_ca_at, manual);
    EXPECT_EQ(r2.knows_shadow_at, manual);
    // A manual rollover before the CA's shadow: the RA polls until it exists.
    const auto r3 =
        ra_shadow_timer(ca, days{600}, ra, t0, manual, manual + minutes{10} + seconds{1}, m);
    EXPECT_EQ(r3.knows_shadow_at, manual + minutes{10} + seconds{20});
    // No auto-enroll: the RA certificate lapses 600 days after enrollment, before the CA.
    const auto r4 =
        ra_shadow_timer(ca, days{600}, tp("ra", 70, false), t0, std::nullopt, t0 + days{1460}, m);
    EXPECT_EQ(r4.lapses_at, t0 + days{600});
    EXPECT_FALSE(r4.knows_shadow_at.has_value());
}

fleet_input seed_like(int ra_percent, std::optional<duration> manual, duration overlap) {
    fleet_input in;
    in.ca = ca_server(days{1825}, days{600}, overlap);
    in.ca_created_at = t0;
    ra_input ra;
    ra.server.name = "ra-server";
    ra.server.mode_ra = true;
    ra.trustpoint = tp("ra-server", ra_percent);
    ra.manual_rollover = manual;
    in.ra = ra;
    in.clients = {tp("GETVPN", 70)};
    in.limiter.max_connections = 16;
    return in;
}

TEST(analyze_fleet, the_ras_own_timer_decides_the_verdict_and_the_404_window) {
    // Seed 002 fixed on the CA only: the RA asks at C - 169.5 d, clients from C - 180 d.
    const auto v = analyze_fleet(seed_like(70, std::nullopt, days{365}));
    EXPECT_EQ(v.verdict, storm_verdict::storm);
    ASSERT_EQ(v.first.trustpoints.size(), 1u);
    // Until the first 20 s retry after the RA learns (a client asking at the instant the RA
    // asks still gets a 404: the RA's own exchange takes a round trip).
    EXPECT_DOUBLE_EQ(v.first.trustpoints[0].max_404_window_days,
                     to_days(days{10} + hours{12} + seconds{20}));
    EXPECT_NEAR(v.first.trustpoints[0].share_hit, 10.5 / 126.0, 1e-9);
    // The manual RA rollover on the day of the CA's shadow fixes generation 1.
    const auto fixed = analyze_fleet(seed_like(70, days{1460}, days{365}));
    EXPECT_EQ(fixed.generations[0].verdict, storm_verdict::safe);
    // Other placements: RA renews at 95 % (570, 1140, 1710 d) -> asks C - 5.75 d.
    const auto late = analyze_fleet(seed_like(95, std::nullopt, days{365}));
    EXPECT_EQ(late.generations[0].verdict, storm_verdict::storm);
    const auto ra95 = late.generations[0].ra->own.at;
    EXPECT_EQ(ra95, walk_shadow(t0, days{600}, 95, t0 + days{1825}));
    EXPECT_EQ(ra95, t0 + days{1825} - days{5} - hours{18});
    EXPECT_DOUBLE_EQ(late.first.trustpoints[0].max_404_window_days,
                     to_days(ra95 + seconds{20} - (t0 + days{1825} - days{180})));
    // An RA at 30 % asks at C - 395.5 d, before the shadow: it polls and learns at the shadow
    // (C - 365 d, a whole number of 20 s polls later); safe in generation 1.
    const auto early = analyze_fleet(seed_like(30, std::nullopt, days{365}));
    EXPECT_EQ(early.generations[0].ra->asks_ca_at, t0 + days{1825} - days{395} - hours{12});
    EXPECT_EQ(early.generations[0].front_shadow_at, t0 + days{1460});
    EXPECT_EQ(early.generations[0].verdict, storm_verdict::safe);
}

TEST(analyze_fleet, generation_two_is_a_phase_locked_herd_at_the_chain_from_the_old_ca_end) {
    // Clients and RA at 70 %: in generation 2 both ask at C2 - 169.5 d, the same instant: the
    // RA learns a round trip later, so the herd gets one 404 retry (20 s).
    auto in = seed_like(70, days{1460}, days{365});
    in.fleet_size = 3000;
    const auto v = analyze_fleet(in);
    ASSERT_EQ(v.generations.size(), 2u);
    const auto& g2 = v.generations[1];
    EXPECT_EQ(g2.ca.not_before, t0 + days{1825});
    ASSERT_EQ(g2.trustpoints.size(), 1u);
    EXPECT_TRUE(g2.trustpoints[0].phase_locked);
    EXPECT_EQ(g2.trustpoints[0].earliest_request,
              walk_shadow(g2.ca.not_before, days{600}, 70, g2.ca.not_after));
    EXPECT_EQ(g2.trustpoints[0].verdict, storm_verdict::storm);
    EXPECT_DOUBLE_EQ(g2.trustpoints[0].max_404_days, to_days(seconds{20}));
    EXPECT_DOUBLE_EQ(g2.trustpoints[0].share_hit, 1.0);
    // 6000 connections through 80 per 60 s: 75 minutes.
    EXPECT_DOUBLE_EQ(*g2.trustpoints[0].herd_minutes, 75.0);
    // Without an RA the CA's shadow covers the herd (C2 - 365 d < C2 - 169.5 d): safe.
    auto no_ra = in;
    no_ra.ra.reset();
    EXPECT_EQ(analyze_fleet(no_ra).generations[1].verdict, storm_verdict::safe);
    // With hours and a different percent: herd exactly at the walk's instant; overlap 40 d
    // 6 h below (1 - 0.85) x 300 d = 45 d -> storm in both generations.
    fleet_input h;
    h.ca = ca_server(days{1000} + hours{6}, days{300}, days{40} + hours{6});
    h.ca_created_at = t0;
    h.clients = {tp("DMVPN", 85)};
    const auto vh = analyze_fleet(h);
    ASSERT_EQ(vh.generations.size(), 2u);
    EXPECT_EQ(vh.generations[0].verdict, storm_verdict::storm);
    const auto& th = vh.generations[1].trustpoints[0];
    EXPECT_EQ(th.earliest_request, walk_shadow(vh.generations[1].ca.not_before, days{300}, 85,
                                               vh.generations[1].ca.not_after));
    EXPECT_EQ(th.verdict, to_days(vh.generations[1].ca.not_after - *th.earliest_request) > 40.25
                              ? storm_verdict::storm
                              : storm_verdict::safe);
}

TEST(analyze_fleet, change_set_is_verified_and_fixes_every_generation) {
    struct c {
        fleet_input in;
    };
    std::vector<fleet_input> cases;
    cases.push_back(seed_like(70, std::nullopt, days{30}));   // seed 002
    cases.push_back(seed_like(95, std::nullopt, days{365}));  // late RA
    {
        fleet_input d;  // IOS defaults, no auto-rollover, bare auto-enroll
        d.ca = ca_server(days{1095}, days{365}, std::nullopt);
        d.ca_created_at = t0;
        d.clients = {tp("TP", 100)};
        cases.push_back(d);
    }
    {
        fleet_input d;  // hours everywhere, client certificates longer than the CA
        d.ca = ca_server(days{500} + hours{12}, days{800}, days{10} + hours{3});
        d.ca_created_at = t0;
        d.clients = {tp("A", 60), tp("B", 90)};
        cases.push_back(d);
    }
    for (auto& in : cases) {
        const auto v = analyze_fleet(in);
        ASSERT_NE(v.verdict, storm_verdict::safe);
        ASSERT_TRUE(v.change.has_value());
        EXPECT_TRUE(v.change->verified_safe) << v.change->settings.size();
        // The settings go through the registry and give a safe verdict again, independently.
        auto applied = apply_change_set(in, *v.change);
        ASSERT_TRUE(applied.has_value()) << applied.error();
        const auto after = analyze_fleet(*applied);
        EXPECT_EQ(after.verdict, storm_verdict::safe);
        for (const auto& g : after.generations) {
            EXPECT_EQ(g.verdict, storm_verdict::safe) << g.number;
        }
        EXPECT_FALSE(v.change->devices.empty());
    }
    // The arithmetic with the user's numbers.
    const auto v = analyze_fleet(cases[0]);
    bool found = false;
    for (const auto& d : v.change->devices) {
        for (const auto& w : d.why) {
            found = found || w.find("(1 − 0.70) × min(600, 1825) = 180 days > overlap 30") !=
                                 std::string::npos;
        }
    }
    EXPECT_TRUE(found);
}

TEST(analyze_fleet, auto_enroll_change_comes_with_the_overlap_it_needs) {
    // ios-defaults: recommending only auto-enroll 70 would turn the outage into a storm.
    fleet_input d;
    d.ca = ca_server(days{1095}, days{365}, days{30});
    d.ca_created_at = t0;
    d.clients = {tp("TP", 100)};
    const auto v = analyze_fleet(d);
    ASSERT_TRUE(v.change.has_value());
    bool enroll = false;
    bool overlap = false;
    for (const auto& s : v.change->settings) {
        enroll = enroll || s.find("auto-enroll=70") != std::string::npos;
        overlap = overlap || s.starts_with("ca.auto-rollover=");
    }
    EXPECT_TRUE(enroll);
    EXPECT_TRUE(overlap);
    EXPECT_TRUE(v.change->verified_safe);
}

}  // namespace
