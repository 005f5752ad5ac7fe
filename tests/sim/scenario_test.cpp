#include "pkisim/sim/scenario.hpp"

#include <gtest/gtest.h>

#include "pkisim/sim/sweep.hpp"
#include "sim_test_util.hpp"

using namespace pkisim;
using namespace pkisim::sim;
using pkisim::sim::testing::make_scenario;
using pkisim::sim::testing::source_dir;

namespace {
const char* const minimal = R"(
name = "t"
[ca]
config = "configs/seed002/ca.ios"
[[clients]]
config = "configs/seed002/client.ios"
count = 10
pattern = "spread"
window = "420d"
)";
}

TEST(scenario, reads_the_ios_files_and_defaults) {
    const auto sc = make_scenario(minimal);
    EXPECT_EQ(sc.ca.server.ca_lifetime, timers::days{1825});
    EXPECT_EQ(sc.ca.server.cert_lifetime, timers::days{600});
    ASSERT_TRUE(sc.ca.server.auto_rollover);
    EXPECT_EQ(*sc.ca.server.auto_rollover, timers::days{30});
    ASSERT_EQ(sc.groups.size(), 1u);
    EXPECT_EQ(sc.groups[0].trustpoint.auto_enroll_percent, 70);
    EXPECT_EQ(sc.clients(), 10u);
    EXPECT_EQ(sc.client.shadow_retry_interval, timers::seconds{20});
    // Two CA generations (the ones `pkisim check` judges) + 60 days.
    EXPECT_EQ(sc.effective_horizon(), timers::days{2 * 1825 + 60});
    EXPECT_FALSE(sc.groups[0].via_ra);
}

TEST(scenario, the_seed002_configs_in_the_repository_load) {
    for (const char* name :
         {"seed002", "seed002-fix", "seed002-phase-locked", "seed002-late-ra", "ios-defaults"}) {
        auto sc = load_scenario(source_dir() + "/configs/" + name + ".toml");
        EXPECT_TRUE(sc) << name << ": " << (sc ? "" : sc.error());
    }
}

TEST(scenario, bad_values_name_the_file_and_line_and_what_was_expected) {
    struct bad_case {
        std::string toml;
        std::string want;
    };
    const bad_case cases[] = {
        {std::string{minimal} + "latency = \"fast\"\n", "test.toml:10: unknown key `latency`"},
        {R"(
[ca]
config = "configs/seed002/ca.ios"
[network]
latency = "fast"
[[clients]]
config = "configs/seed002/client.ios"
count = 1
pattern = "instant"
)",
         "test.toml:5: `latency`: expected a duration"},
        {R"(
[ca]
config = "configs/seed002/ca.ios"
[[clients]]
config = "configs/seed002/client.ios"
count = 1
pattern = "sometimes"
)",
         "test.toml:7: `pattern`: expected \"instant\""},
        {R"(
[ca]
config = "configs/seed002/ca.ios"
[[clients]]
config = "configs/seed002/client.ios"
count = -3
pattern = "instant"
)",
         "test.toml:6: `count`: expected an integer"},
        {"[ca]\nconfig = \"no/such.ios\"\n", "test.toml:2: `config`: cannot read IOS file"},
        {"[ca\n", "test.toml:1:"},
    };
    for (const auto& c : cases) {
        auto sc = parse_scenario(c.toml, "test.toml", source_dir());
        ASSERT_FALSE(sc) << c.want;
        EXPECT_NE(sc.error().find(c.want), std::string::npos) << sc.error();
    }
}

TEST(scenario, durations_accept_units_and_combinations) {
    EXPECT_EQ(parse_duration_text("20s"), timers::duration{20000});
    EXPECT_EQ(parse_duration_text("36ms"), timers::duration{36});
    EXPECT_EQ(parse_duration_text("1d 12h"), timers::duration{36 * 3600 * 1000});
    EXPECT_EQ(parse_duration_text("1.5d"), timers::duration{36 * 3600 * 1000});
    EXPECT_EQ(parse_duration_text("10"), timers::duration{10000});
    EXPECT_FALSE(parse_duration_text("soon"));
    EXPECT_FALSE(parse_duration_text("5 parsecs"));
    EXPECT_EQ(format_duration(timers::duration{36 * 3600 * 1000 + 5}), "1d 12h 5ms");
}

TEST(scenario, settings_change_ios_commands_and_fleet) {
    auto sc = make_scenario(minimal);
    ASSERT_TRUE(apply_setting(sc, "overlap", "365"));
    EXPECT_EQ(*sc.ca.server.auto_rollover, timers::days{365});
    ASSERT_TRUE(apply_setting(sc, "auto-enroll", "60"));
    EXPECT_EQ(sc.groups[0].trustpoint.auto_enroll_percent, 60);
    ASSERT_TRUE(apply_setting(sc, "clients", "1234"));
    EXPECT_EQ(sc.clients(), 1234u);
    ASSERT_TRUE(apply_setting(sc, "max-connections", "16"));
    EXPECT_EQ(sc.ca.http.max_connections, 16);
    ASSERT_TRUE(apply_setting(sc, "latency", "5ms"));
    EXPECT_EQ(sc.latency, timers::duration{5});
    EXPECT_FALSE(apply_setting(sc, "max-connections", "17"));
    EXPECT_FALSE(apply_setting(sc, "ra.auto-enroll", "95"));  // no RA here
    EXPECT_FALSE(apply_setting(sc, "warp", "9"));
}

TEST(sweep, parses_lists_and_ranges) {
    auto a = parse_sweep("overlap=30,60,181");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->key, "overlap");
    EXPECT_EQ(a->values, (std::vector<std::string>{"30", "60", "181"}));
    auto b = parse_sweep("auto-enroll=60..90");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->values, (std::vector<std::string>{"60", "65", "70", "75", "80", "85", "90"}));
    auto c = parse_sweep("overlap=30..120:45");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->values, (std::vector<std::string>{"30", "75", "120"}));
    EXPECT_FALSE(parse_sweep("overlap"));
    EXPECT_FALSE(parse_sweep("overlap=9..1"));
}

TEST(scenario_issue9, a_group_of_zero_clients_is_an_error) {
    std::string toml{minimal};
    toml.replace(toml.find("count = 10"), 10, "count = 0");
    auto sc = parse_scenario(toml, "test.toml", source_dir());
    ASSERT_FALSE(sc);
    EXPECT_NE(sc.error().find("test.toml:7: `count`: expected an integer in 1..100000000"),
              std::string::npos)
        << sc.error();
}

TEST(scenario_issue9, toml_syntax_errors_show_file_line_and_the_line) {
    const std::string toml = "name = \"t\"\n[limiter]\nenabled = tw\n";
    auto sc = parse_scenario(toml, "test.toml", source_dir());
    ASSERT_FALSE(sc);
    EXPECT_EQ(sc.error().rfind("test.toml:3:", 0), 0u) << sc.error();
    EXPECT_NE(sc.error().find("enabled = tw"), std::string::npos) << sc.error();
    EXPECT_NE(sc.error().find("^"), std::string::npos) << sc.error();
}

TEST(scenario_issue9, settings_errors_quote_what_the_user_typed_and_share_checks_registry) {
    auto sc = make_scenario(minimal);
    const auto sweep = apply_setting(sc, "overlap", "abc", "--sweep overlap=abc");
    ASSERT_FALSE(sweep);
    EXPECT_EQ(sweep.error().rfind("--sweep overlap=abc: ", 0), 0u) << sweep.error();
    const auto neg = apply_setting(sc, "clients", "-5", "--clients -5");
    ASSERT_FALSE(neg);
    EXPECT_EQ(neg.error().rfind("--clients -5: ", 0), 0u) << neg.error();
    // check's spellings work in simulate with the same meaning.
    ASSERT_TRUE(apply_setting(sc, "server.auto-rollover", "200"));
    EXPECT_EQ(*sc.ca.server.auto_rollover, timers::days{200});
    ASSERT_TRUE(apply_setting(sc, "trustpoint.GETVPN.auto-enroll", "75"));
    EXPECT_EQ(sc.groups[0].trustpoint.auto_enroll_percent, 75);
    ASSERT_TRUE(apply_setting(sc, "throttle_window", "fixed-minute"));
    EXPECT_EQ(sc.throttle_window, timers::throttle_window::fixed_minute);
    ASSERT_TRUE(apply_setting(sc, "limiter", "off"));
    EXPECT_FALSE(sc.limiter_enabled);
}
