// The --set registry (settings.hpp): one meaning per key, values and ranges once, errors that
// quote what the user typed.
#include "pkisim/timers/settings.hpp"

#include <gtest/gtest.h>

namespace {

using namespace pkisim::timers;

TEST(settings, aliases_resolve_to_one_key_and_errors_quote_what_was_typed) {
    const auto a = parse_setting("overlap=365", "--set overlap=365");
    const auto b = parse_setting("ca.auto-rollover=365", "--set ca.auto-rollover=365");
    const auto c = parse_setting("server.auto_rollover=365", "x");
    ASSERT_TRUE(a && b && c);
    EXPECT_EQ(a->key, b->key);
    EXPECT_EQ(b->key, c->key);
    EXPECT_EQ(a->command, "auto-rollover 365");
    const auto bad = parse_setting("overlap", "abc", "--sweep overlap=abc");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().rfind("--sweep overlap=abc: ", 0), 0u) << bad.error();
    EXPECT_EQ(bad.error().find("ca.auto-rollover"), std::string::npos);
    const auto neg = parse_setting("clients", "-5", "--clients -5");
    ASSERT_FALSE(neg);
    EXPECT_EQ(neg.error().rfind("--clients -5: ", 0), 0u) << neg.error();
    EXPECT_FALSE(parse_setting("clients", "0", "--clients 0"));
    const auto unknown = parse_setting("overlp=3", "--set overlp=3");
    ASSERT_FALSE(unknown);
    EXPECT_NE(unknown.error().find("did you mean `overlap`"), std::string::npos);
}

TEST(settings, ra_keys_mean_the_same_in_every_command) {
    // ra.X is the RA's own trustpoint; ra.server.X its server section; one value per key.
    server_config ca;
    server_config ra;
    trustpoint_config ra_tp;
    settings_target t;
    t.ca = &ca;
    t.ra = &ra;
    t.ra_trustpoint = &ra_tp;
    auto s = parse_setting("ra.auto-enroll=95 regenerate", "--set ra.auto-enroll=95 regenerate");
    ASSERT_TRUE(s) << s.error();
    ASSERT_TRUE(apply_setting(*s, t));
    EXPECT_TRUE(ra_tp.auto_enroll);
    EXPECT_EQ(ra_tp.auto_enroll_percent, 95);
    EXPECT_TRUE(ra_tp.regenerate);
    auto g = parse_setting("ra.server.grant=none", "--set ra.server.grant=none");
    ASSERT_TRUE(g);
    ASSERT_TRUE(apply_setting(*g, t));
    EXPECT_EQ(ra.grant, grant_mode::none);
    EXPECT_EQ(ca.grant, grant_mode::manual);
    // An RA key without an RA is an error naming it, never silently ignored.
    settings_target no_ra;
    no_ra.ca = &ca;
    const auto r = apply_setting(*s, no_ra);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find("no RA"), std::string::npos);
}

TEST(settings, manual_rollover_is_an_offset_or_a_date_from_the_cas_creation) {
    std::optional<duration> manual;
    server_config ra;
    trustpoint_config ra_tp;
    settings_target t;
    t.ra = &ra;
    t.ra_trustpoint = &ra_tp;
    t.ra_manual_rollover = &manual;
    t.ca_created_at = default_ca_start();
    for (auto [text, want] :
         {std::pair{"1460d", duration{days{1460}}},
          std::pair{"1459d 12h", duration{days{1459} + hours{12}}},
          std::pair{"2025-01-11", duration{days{10}}},
          std::pair{"2025-01-01T06:30:00Z", duration{hours{6} + minutes{30}}}}) {
        auto s = parse_setting("ra.manual_rollover", text, std::string{"--ra-rollover "} + text);
        ASSERT_TRUE(s) << text;
        ASSERT_TRUE(apply_setting(*s, t)) << text;
        EXPECT_EQ(manual, want) << text;
    }
    auto before = parse_setting("ra.manual_rollover", "2024-12-31", "--ra-rollover 2024-12-31");
    ASSERT_TRUE(before);
    EXPECT_FALSE(apply_setting(*before, t));
    EXPECT_FALSE(parse_setting("ra.manual_rollover", "soon", "--ra-rollover soon"));
}

TEST(settings, value_ranges_live_here_once) {
    for (int n : {1, 5, 16}) {
        EXPECT_EQ(parse_max_connections(std::to_string(n)), n);
    }
    for (auto bad : {"0", "17", "-1", "abc", "", "5x"}) {
        EXPECT_FALSE(parse_max_connections(bad)) << bad;
    }
    EXPECT_EQ(parse_throttle_window("fixed_minute"), throttle_window::fixed_minute);
    EXPECT_EQ(parse_throttle_window("fixed-minute"), throttle_window::fixed_minute);
    EXPECT_EQ(parse_throttle_window("reset_after_deaf"), throttle_window::reset_after_deaf);
    EXPECT_EQ(parse_throttle_window("Sliding"), throttle_window::sliding);
    EXPECT_FALSE(parse_throttle_window("minute"));
    EXPECT_EQ(parse_duration_text("1d 12h"), duration{hours{36}});
    EXPECT_EQ(parse_duration_text("36ms"), duration{36});
    EXPECT_FALSE(parse_duration_text("12 parsecs"));
    EXPECT_EQ(format_duration(hours{36}), "1d 12h");
    // IOS command values are checked by the parser's own ranges at parse time.
    EXPECT_FALSE(parse_setting("overlap=9000", "x"));
    EXPECT_FALSE(parse_setting("auto-enroll=101", "x"));
    EXPECT_TRUE(parse_setting("overlap=30 12 30", "x"));
    EXPECT_FALSE(parse_setting("max-connections=17", "x"));
    EXPECT_FALSE(parse_setting("limiter=maybe", "x"));
}

TEST(settings, help_lists_the_keys_of_each_command) {
    const std::string check = settings_help(setting_command::check);
    const std::string sim = settings_help(setting_command::simulate);
    for (auto k : {"ca.auto-rollover", "ra.manual_rollover", "max-connections", "ra.COMMAND",
                   "ra.server.COMMAND"}) {
        EXPECT_NE(check.find(k), std::string::npos) << k;
        EXPECT_NE(sim.find(k), std::string::npos) << k;
    }
    EXPECT_EQ(check.find("latency"), std::string::npos);
    EXPECT_NE(sim.find("latency"), std::string::npos);
}

TEST(settings, nearest_word_suggests_typos_only) {
    const std::vector<std::string_view> words{"server", "trustpoint", "trustpool"};
    EXPECT_EQ(nearest_word("trustpiont", words), "trustpoint");
    EXPECT_EQ(nearest_word("sever", words), "server");
    EXPECT_EQ(nearest_word("certificate", words), "");
}

}  // namespace
