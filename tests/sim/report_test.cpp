#include "pkisim/sim/report.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "pkisim/sim/simulation.hpp"
#include "sim_test_util.hpp"

using namespace pkisim::sim;
using pkisim::sim::testing::make_scenario;
namespace fs = std::filesystem;

namespace {

scenario mini_ra() {
    return make_scenario(R"(
name = "mini RA"
horizon = "4d"
seed = 5
[ca]
config = "tests/data/sim/mini/ca.ios"
[ra]
config = "tests/data/sim/mini/ra.ios"
[[clients]]
config = "tests/data/sim/mini/client.ios"
pattern = "uniform"
window = "16h 48m"
count = 200
)");
}

std::string read(const fs::path& p) {
    std::ifstream in{p, std::ios::binary};
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

fs::path temp_dir(const std::string& name) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    auto dir = fs::temp_directory_path() / (std::string{"pkisim-sim-"} + info->test_suite_name() +
                                            "-" + info->name() + "-" + name);
    fs::remove_all(dir);
    return dir;
}

}  // namespace

TEST(report, writes_every_file_with_the_summary_keys_of_the_issue) {
    const auto sc = mini_ra();
    const auto r = run_simulation(sc);
    const auto dir = temp_dir("a");
    ASSERT_TRUE(write_report(dir.string(), sc, r, std::nullopt, report_options{false, 1.5}));
    for (const char* f :
         {"summary.json", "daily.csv", "daily.svg", "loop.svg", "worst-day.svg", "report.html"})
        EXPECT_TRUE(fs::exists(dir / f)) << f;
    const auto j = nlohmann::json::parse(read(dir / "summary.json"));
    for (const char* key : {"verdict",
                            "ca_not_after",
                            "shadow_generated_at",
                            "first_404_at",
                            "first_404_days_before_ca_expiry",
                            "last_404_at",
                            "clients",
                            "clients_hit_404",
                            "max_404_window_days",
                            "mean_404_window_days",
                            "get_next_ca_cert_requests",
                            "connections_accepted",
                            "connections_dropped_max_connections",
                            "connections_ignored_deaf",
                            "deaf_seconds",
                            "enrollments_ok",
                            "enrollments_failed",
                            "clients_outage",
                            "events",
                            "wall_seconds",
                            "engine"})
        EXPECT_TRUE(j.contains(key)) << key;
    EXPECT_EQ(j["verdict"], "storm");
    EXPECT_EQ(j["clients"], 200);
    EXPECT_EQ(j["wall_seconds"], 1.5);
    const auto csv = read(dir / "daily.csv");
    EXPECT_EQ(csv.rfind("day,date,get_next_ca_cert_requests,", 0), 0u);
    EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + 5);  // header + days 0..4
    const auto html = read(dir / "report.html");
    EXPECT_NE(html.find("id=\"plot-daily\""), std::string::npos);
    EXPECT_NE(html.find("crypto pki server mini"), std::string::npos);  // the IOS text
    const auto text = verdict_text(sc, r, dir.string());
    EXPECT_NE(text.find("Verdict: STORM"), std::string::npos);
    EXPECT_NE(text.find((dir / "report.html").string()), std::string::npos);
    fs::remove_all(dir);
}

TEST(report, two_runs_write_byte_identical_files_in_deterministic_mode) {
    const auto sc = mini_ra();
    const auto a = temp_dir("a");
    const auto b = temp_dir("b");
    ASSERT_TRUE(write_report(a.string(), sc, run_simulation(sc), std::nullopt, {true, 3.0}));
    ASSERT_TRUE(write_report(b.string(), sc, run_simulation(sc), std::nullopt, {true, 7.0}));
    for (const auto& e : fs::directory_iterator{a})
        EXPECT_EQ(read(e.path()), read(b / e.path().filename())) << e.path().filename();
    fs::remove_all(a);
    fs::remove_all(b);
}

TEST(report, sweep_names_the_smallest_safe_overlap_and_adds_a_plot) {
    auto sc = mini_ra();
    ASSERT_TRUE(apply_setting(sc, "clients", "40"));
    // Up to 0.3 × 24 h = 7.2 h before expiry; the RA gets the shadow at its own SHADOW point, so
    // roll it over by hand when the CA makes the shadow.
    auto spec = parse_sweep("ca.auto-rollover=0 2,0 6,0 8,1");
    ASSERT_TRUE(spec);
    sc.ra->manual_rollover = pkisim::timers::hours{3 * 24 - 8};
    auto sw = run_sweep(sc, *spec, run_options{}, 2);
    ASSERT_TRUE(sw) << sw.error();
    ASSERT_EQ(sw->points.size(), 4u);
    EXPECT_EQ(sw->points[0].result.outcome, verdict::storm);
    EXPECT_EQ(sw->points[1].result.outcome, verdict::storm);
    EXPECT_EQ(sw->points[2].result.outcome, verdict::safe);
    ASSERT_TRUE(sw->smallest_safe);
    EXPECT_EQ(*sw->smallest_safe, 2u);  // "0 8" parses as 0: first safe in order
    const auto table = sweep_table(*sw);
    EXPECT_NE(table.find("Smallest safe ca.auto-rollover: 0 8"), std::string::npos) << table;
    const auto dir = temp_dir("s");
    ASSERT_TRUE(write_report(dir.string(), sc, sw->points[0].result, *sw, {true, 0}));
    EXPECT_TRUE(fs::exists(dir / "sweep.svg"));
    EXPECT_NE(read(dir / "report.html").find("id=\"plot-sweep\""), std::string::npos);
    fs::remove_all(dir);
}

#ifdef PKISIM_BINARY
TEST(report, sweep_without_a_safe_value_behind_a_late_ra_recommends_the_ra_rollover) {
    using pkisim::timers::days;
    const auto ca_shadow = pkisim::timers::parse_iso8601("2029-12-01").value();
    sweep_result s;
    s.key = "overlap";
    sweep_point p;
    p.value = "365";
    p.result.outcome = verdict::storm;
    p.result.shadow_generated_at = ca_shadow - days{335};
    p.result.ra_shadow_at = ca_shadow;  // the RA fetched it 335 days after the CA made it
    s.points.push_back(p);
    const auto table = sweep_table(s);
    EXPECT_NE(table.find("No value of overlap in this sweep is safe."), std::string::npos);
    EXPECT_NE(table.find("manual `rollover` of the RA"), std::string::npos) << table;

    s.points[0].result.ra_shadow_at = s.points[0].result.shadow_generated_at;  // RA in time
    EXPECT_EQ(sweep_table(s).find("manual `rollover` of the RA"), std::string::npos);
}

TEST(cli, simulate_exits_2_with_file_and_line_on_a_bad_scenario) {
    const auto dir = temp_dir("cli");
    fs::create_directories(dir);
    {
        std::ofstream out{dir / "bad.toml"};
        out << "[ca]\nconfig = \"" << PKISIM_SOURCE_DIR << "/configs/seed002/ca.ios\"\n"
            << "[network]\nconnect_timeout = \"later\"\n";
    }
    const std::string cmd = std::string{PKISIM_BINARY} + " simulate " +
                            (dir / "bad.toml").string() + " --quiet > " +
                            (dir / "out.txt").string() + " 2>&1";
    const int rc = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(rc));
    EXPECT_EQ(WEXITSTATUS(rc), 2);
    EXPECT_NE(read(dir / "out.txt").find("bad.toml:4: `connect_timeout`: expected a duration"),
              std::string::npos)
        << read(dir / "out.txt");
    fs::remove_all(dir);
}

TEST(cli, simulate_writes_the_report_and_says_where_it_is) {
    const auto dir = temp_dir("cli");
    const std::string cmd =
        std::string{PKISIM_BINARY} + " simulate " + PKISIM_SOURCE_DIR +
        "/configs/seed002-fix.toml --clients 200 --quiet --deterministic --out " + dir.string() +
        " > " + dir.string() + ".txt 2>&1";
    const int rc = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(rc));
    EXPECT_EQ(WEXITSTATUS(rc), 0);  // safe
    const auto out = read(dir.string() + ".txt");
    EXPECT_NE(out.find("Verdict: SAFE"), std::string::npos) << out;
    EXPECT_NE(out.find((dir / "report.html").string()), std::string::npos) << out;
    EXPECT_TRUE(fs::exists(dir / "summary.json"));
    fs::remove_all(dir);
    fs::remove(dir.string() + ".txt");
}
#endif

// Loads report.html in headless Chromium: the page must render with the three plots and no
// console errors. Skipped only when Chromium is not installed.
TEST(report_html, loads_in_headless_chromium_with_the_plots_and_no_errors) {
    const char* chromium = "/usr/bin/chromium";
    ASSERT_TRUE(fs::exists(chromium))
        << chromium << " not found: install the Debian package chromium (scripts/install-deps.sh)";
    const auto sc = mini_ra();
    const auto dir = temp_dir("html");
    ASSERT_TRUE(write_report(dir.string(), sc, run_simulation(sc), std::nullopt, {true, 0}));
    const auto profile = dir / "profile";
    const std::string flags =
        std::string{
            " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
            "--disable-background-networking --disable-component-update --disable-sync "
            "--enable-logging=stderr --v=0 --user-data-dir="} +
        profile.string();
    const std::string url = "file://" + (dir / "report.html").string();
    const std::string cmd = std::string{chromium} + flags + " --dump-dom " + url + " > " +
                            (dir / "dom.html").string() + " 2> " + (dir / "log.txt").string();
    const int rc = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(rc));
    ASSERT_EQ(WEXITSTATUS(rc), 0) << read(dir / "log.txt");
    const auto dom = read(dir / "dom.html");
    for (const char* id : {"plot-daily", "plot-loop", "plot-worst-day"})
        EXPECT_NE(dom.find(std::string{"id=\""} + id + "\""), std::string::npos) << id;
    EXPECT_NE(dom.find("<polyline"), std::string::npos);
    EXPECT_NE(dom.find("Verdict: STORM"), std::string::npos);
    const auto log = read(dir / "log.txt");
    EXPECT_EQ(log.find("Uncaught"), std::string::npos) << log;
    EXPECT_EQ(
        log.find("CONSOLE(") == std::string::npos ? std::string::npos : log.find("ERROR:CONSOLE"),
        std::string::npos)
        << log;
    const std::string shot =
        std::string{chromium} + flags +
        " --window-size=1000,2400 --screenshot=" + (dir / "page.png").string() + " " + url +
        " > /dev/null 2>&1";
    ASSERT_EQ(std::system(shot.c_str()), 0);
    EXPECT_GT(fs::file_size(dir / "page.png"), 10'000u);
    fs::remove_all(dir);
}
