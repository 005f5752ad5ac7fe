// The recommended change set is printed as a fix only when the fleet re-run with it is safe
// (issue 9 §4). Scaled-down cases with hour-resolution timers, with and without an RA.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "pkisim/sim/change_set.hpp"
#include "pkisim/sim/report.hpp"
#include "sim_test_util.hpp"

using namespace pkisim;
using namespace pkisim::sim;
using pkisim::sim::testing::make_scenario;
namespace fs = std::filesystem;

namespace {

bool has(const std::vector<std::string>& v, std::string_view prefix) {
    return std::any_of(v.begin(), v.end(), [&](const auto& s) { return s.starts_with(prefix); });
}

}  // namespace

// Behind an RA whose own certificate renews like the clients' (auto-enroll 70): a 2 h overlap
// is short of 0.3 × 24 h = 7.2 h, and the RA asks the CA only at its own SHADOW point. The fix
// needs the overlap, the RA rollover and (generation 2) the RA's timer ahead of the herd.
TEST(change_set, behind_an_ra_the_change_set_is_verified_by_a_safe_rerun) {
    const auto sc = make_scenario(R"(
seed = 3
[ca]
config = "tests/data/sim/mini/ca.ios"
[ra]
config = "tests/data/sim/mini/ra.ios"
[[clients]]
config = "tests/data/sim/mini/client.ios"
pattern = "uniform"
window = "16h 48m"
count = 40
)");
    const auto before = run_simulation(sc);
    ASSERT_EQ(before.outcome, verdict::storm);
    const auto v = verify_change_set(sc, run_options{});
    ASSERT_TRUE(v.change);
    EXPECT_TRUE(has(v.change->settings, "ca.auto-rollover="));
    EXPECT_TRUE(has(v.change->settings, "ra.manual_rollover="));
    ASSERT_TRUE(v.rerun_done) << v.rerun_error;
    EXPECT_EQ(v.rerun_generations, 2u);
    ASSERT_GE(v.rerun.generations.size(), 2u);
    EXPECT_TRUE(v.rerun.generations[1].complete);
    for (const auto& g : v.rerun.generations)
        EXPECT_EQ(g.outcome, verdict::safe) << g.number;
    EXPECT_EQ(v.rerun.outcome, verdict::safe);
    EXPECT_TRUE(v.verified());
    const auto text = change_set_text(v, "mini.toml");
    EXPECT_NE(text.find("Recommended change set, verified"), std::string::npos) << text;
    EXPECT_NE(text.find("configure terminal"), std::string::npos) << text;
    EXPECT_NE(text.find(" auto-rollover "), std::string::npos) << text;
    EXPECT_NE(text.find("rollover    ! on "), std::string::npos) << text;  // the RA exec command
    EXPECT_NE(text.find("--generations 2"), std::string::npos) << text;

    // The summary carries it, and the one-line recommendation points at it.
    auto r = before;
    r.change_set = summarize(v, "mini.toml");
    const auto j = nlohmann::json::parse(summary_json(sc, r, {true, 0}));
    EXPECT_EQ(j["change_set"]["verified_safe"], true);
    EXPECT_EQ(j["change_set"]["rerun_verdict"], "safe");
    EXPECT_NE(j["recommendation"].get<std::string>().find("verified by a re-run"),
              std::string::npos);
}

// A CA without an RA whose clients renew only at expiry (auto-enroll 100): an outage. The
// change set moves the clients to 70 % and sizes the overlap for it; the re-run is safe.
TEST(change_set, an_outage_at_full_lifetime_is_fixed_on_the_clients_and_the_ca) {
    const auto dir = fs::temp_directory_path() / "pkisim-change-set-outage";
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::ofstream{dir / "ca.ios"} << "crypto pki server c\n grant auto\n lifetime ca-certificate 4"
                                     " 6\n lifetime certificate 1 12\n auto-rollover 0 1\n";
    std::ofstream{dir / "tp.ios"} << "crypto pki trustpoint P\n enrollment url http://10.0.0.9\n"
                                     " auto-enroll 100\n";
    std::ofstream{dir / "s.toml"} << "[ca]\nconfig = \"ca.ios\"\n[[clients]]\nconfig = \"tp.ios\"\n"
                                     "pattern = \"spread\"\nwindow = \"1d\"\ncount = 25\n";
    const auto sc = load_scenario((dir / "s.toml").string());
    ASSERT_TRUE(sc) << sc.error();
    ASSERT_EQ(run_simulation(*sc).outcome, verdict::outage);
    const auto v = verify_change_set(*sc, run_options{});
    ASSERT_TRUE(v.change);
    EXPECT_TRUE(has(v.change->settings, "trustpoint.P.auto-enroll=70"));
    EXPECT_TRUE(has(v.change->settings, "ca.auto-rollover="));
    ASSERT_TRUE(v.rerun_done) << v.rerun_error;
    EXPECT_EQ(v.rerun.outcome, verdict::safe);
    EXPECT_TRUE(v.verified());
    fs::remove_all(dir);
}

// A change set the re-run does not confirm is not printed as a fix: the text says so and names
// the generation that still storms and what cannot be made safe.
TEST(change_set, an_unconfirmed_change_set_is_not_printed_as_a_fix) {
    verified_change_set v;
    v.change = timers::change_set{};
    v.change->settings = {"ca.auto-rollover=20"};
    timers::device_change d;
    d.device = "CA (crypto pki server c)";
    d.config = {"crypto pki server c", " auto-rollover 20"};
    v.change->devices = {d};
    v.change->cannot_fix = {"the RA learns of the shadow too late"};
    v.rerun_done = true;
    v.rerun_generations = 3;
    v.rerun.outcome = verdict::storm;
    v.rerun.clients = 50;
    v.rerun.clients_hit_404 = 17;
    generation_stats g;
    g.number = 3;
    g.outcome = verdict::storm;
    g.clients_hit_404 = 17;
    g.ca.not_after = timers::parse_iso8601("2040-01-01T00:00:00Z").value();
    g.first_404_at = g.ca.not_after - timers::hours{30};
    v.rerun.generations = {g};
    EXPECT_FALSE(v.verified());
    const auto text = change_set_text(v, "s.toml");
    EXPECT_EQ(text.find("configure terminal"), std::string::npos) << text;
    EXPECT_NE(text.find("No change set is printed as a fix"), std::string::npos) << text;
    EXPECT_NE(text.find("over 3 CA generations is still storm: 17 of 50 clients"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("generation 3: storm, 17 clients got 404"), std::string::npos) << text;
    EXPECT_NE(text.find("(1.2 days before its CA expires)"), std::string::npos) << text;
    EXPECT_NE(text.find("the RA learns of the shadow too late"), std::string::npos) << text;
    EXPECT_FALSE(summarize(v, "s.toml").verified);
}
