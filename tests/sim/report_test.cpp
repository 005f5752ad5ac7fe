#include "pkisim/sim/report.hpp"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
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

TEST(report, sweep_names_the_safe_direction_and_recommended_overlap_and_adds_a_plot) {
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
    // "0 8" is not a number: no direction, the first safe value in the order given.
    EXPECT_EQ(sw->analysis.direction, safe_direction::unordered);
    ASSERT_TRUE(sw->analysis.recommended);
    EXPECT_EQ(*sw->analysis.recommended, 2u);
    const auto table = sweep_table(*sw);
    EXPECT_NE(table.find("The first safe one in the order given: 0 8."), std::string::npos)
        << table;
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
        "/configs/seed002-fix.toml --clients 200 --set ra.auto-enroll=69 --quiet --deterministic "
        "--out " + dir.string() +
        " > " + dir.string() + ".txt 2>&1";
    const int rc = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(rc));
    // seed002-fix storms in generation 2 (its manual RA rollover happens once); with the
    // change set it prints (the RA's auto-enroll 69) both default generations are safe.
    EXPECT_EQ(WEXITSTATUS(rc), 0);
    const auto out = read(dir.string() + ".txt");
    EXPECT_NE(out.find("Verdict: SAFE"), std::string::npos) << out;
    EXPECT_NE(out.find((dir / "report.html").string()), std::string::npos) << out;
    EXPECT_TRUE(fs::exists(dir / "summary.json"));
    fs::remove_all(dir);
    fs::remove(dir.string() + ".txt");
}
#endif

namespace {

scenario mini_safe() {
    // The CA makes its shadow 8 h before expiry and the RA is rolled over by hand at that
    // moment; the clients ask at most 7.2 h before expiry (0.3 × 24 h): safe.
    auto sc = mini_ra();
    EXPECT_TRUE(apply_setting(sc, "clients", "40"));
    EXPECT_TRUE(apply_setting(sc, "ca.auto-rollover", "0 8"));
    sc.ra->manual_rollover = pkisim::timers::hours{3 * 24 - 8};
    return sc;
}

scenario mini_outage() {
    // auto-enroll 100: the last certificate asks for the next CA only at the CA's notAfter.
    auto sc = mini_ra();
    EXPECT_TRUE(apply_setting(sc, "clients", "40"));
    EXPECT_TRUE(apply_setting(sc, "auto-enroll", "100"));
    return sc;
}

std::size_t count(const std::string& hay, const std::string& needle) {
    std::size_t n = 0;
    for (std::size_t at = 0; (at = hay.find(needle, at)) != std::string::npos; at += needle.size())
        ++n;
    return n;
}

}  // namespace

TEST(report, the_busiest_day_is_the_day_of_the_peak_minute) {
    for (const auto& sc : {mini_ra(), mini_safe(), mini_outage()}) {
        const auto r = run_simulation(sc);
        ASSERT_TRUE(r.peak_minute_at);
        const auto day = static_cast<int>(pkisim::timers::to_days(*r.peak_minute_at - r.start));
        EXPECT_EQ(r.worst_day, day) << sc.name;
        // The plotted minute of the peak holds the reported peak.
        const auto minute = static_cast<std::size_t>(
            (*r.peak_minute_at - (r.start + pkisim::timers::days{day})).count() / 60000);
        ASSERT_LT(minute, r.worst_day_attempts_per_minute.size());
        EXPECT_EQ(r.worst_day_attempts_per_minute[minute], r.peak_attempts_per_minute);
    }
}

TEST(report, change_set_names_the_ios_lines_per_device_from_the_closed_form) {
    // Storm behind an RA whose own SHADOW point comes after the clients': a longer overlap on
    // the CA and a manual RA rollover.
    const auto sc = mini_ra();
    const auto r = run_simulation(sc);
    ASSERT_EQ(r.outcome, verdict::storm);
    const auto cs = change_set(sc, r);
    ASSERT_FALSE(cs.empty());
    double rec = 0;
    for (const auto& t : r.closed_form.trustpoints)
        rec = std::max(rec, t.recommended_overlap_days);
    const auto block = change_block(cs);
    EXPECT_NE(block.find("crypto pki server mini\n auto-rollover "), std::string::npos) << block;
    EXPECT_NE(block.find(fmt::format(" auto-rollover {}\n", static_cast<int>(std::ceil(rec)))),
              std::string::npos)
        << block;
    if (r.ra_first_get_next_ca_cert_at && r.first_get_next_ca_cert_at &&
        *r.ra_first_get_next_ca_cert_at > *r.first_get_next_ca_cert_at) {
        EXPECT_NE(block.find("crypto pki server mini-ra rollover"), std::string::npos) << block;
    }
    EXPECT_EQ(block.find("auto-enroll 70"), std::string::npos) << block;  // no outage

    const auto safe = mini_safe();
    const auto rs = run_simulation(safe);
    ASSERT_EQ(rs.outcome, verdict::safe);
    // Safe: nothing about the rollover; at most more connections where enrollments failed.
    const auto safe_block = change_block(change_set(safe, rs));
    EXPECT_EQ(safe_block.find("rollover"), std::string::npos) << safe_block;
    if (rs.totals.enrollments_failed == 0) {
        EXPECT_TRUE(change_set(safe, rs).empty()) << safe_block;
    } else {
        EXPECT_NE(safe_block.find("ip http max-connections 16"), std::string::npos);
    }
    EXPECT_EQ(change_block({}), "! no change needed\n");

    const auto out = mini_outage();
    const auto ro = run_simulation(out);
    ASSERT_EQ(ro.outcome, verdict::outage);
    EXPECT_NE(change_block(change_set(out, ro)).find("crypto pki trustpoint MINI\n auto-enroll 70"),
              std::string::npos);
}

TEST(report, terminal_and_page_say_the_same_in_labelled_sections) {
    for (const auto& sc : {mini_ra(), mini_safe(), mini_outage()}) {
        const auto r = run_simulation(sc);
        const auto text = verdict_text(sc, r, "out");
        const auto html = report_html(sc, r, std::nullopt, {true, 0});
        for (const char* section : {"What happens", "When", "How bad", "Why (the arithmetic",
                                    "What to change"}) {
            EXPECT_NE(text.find(std::string{"\n"} + section), std::string::npos) << section;
            EXPECT_NE(html.find(std::string{"<h3>"} + section), std::string::npos) << section;
        }
        // Every IOS line to change is in both, word for word.
        for (const auto& c : change_set(sc, r)) {
            for (const auto& l : c.lines) {
                EXPECT_NE(text.find("    " + l + "\n"), std::string::npos) << l;
                EXPECT_NE(html.find(l.starts_with("!") ? l.substr(0, 20) : l), std::string::npos)
                    << l;
            }
        }
        // The first line is the verdict in words.
        const std::string word = r.outcome == verdict::safe    ? "SAFE"
                                 : r.outcome == verdict::storm ? "STORM"
                                                               : "OUTAGE";
        EXPECT_EQ(text.rfind("Verdict: " + word + ".", 0), 0u) << text;
        EXPECT_NE(html.find("class=\"verdict " + std::string{to_string(r.outcome)}),
                  std::string::npos);
    }
}

TEST(report, axes_use_si_numbers_and_dates_at_any_fleet_size) {
    // A synthetic million-client result: no axis label may be a raw 7-digit number.
    sim_result r;
    r.start = pkisim::timers::parse_iso8601("2025-01-01").value();
    r.ca = {r.start, r.start + pkisim::timers::days{20}};
    r.end = r.start + pkisim::timers::days{30};
    r.daily.resize(30);
    for (std::size_t d = 0; d < 30; ++d) {
        r.daily[d].get_next_ca_cert_requests = 9'000'000 + d;
        r.daily[d].responses_404 = 8'000'000;
        r.daily[d].peak_clients_in_shadow_loop = 1'000'000;
        r.daily[d].deaf_ms = 20 * 3'600'000;
    }
    r.daily[19].responses_200 = 1'000'000;  // one day of 200s must still be drawn
    r.first_404_at = r.start + pkisim::timers::days{2};
    r.last_404_at = r.start + pkisim::timers::days{19};
    for (const auto& svg : {plot_daily_svg(r), plot_loop_svg(r), plot_deaf_svg(r)}) {
        EXPECT_EQ(svg.find("0000<"), std::string::npos) << svg.substr(0, 3000);
        EXPECT_NE(svg.find("2025-01-"), std::string::npos);        // calendar dates
        EXPECT_NE(svg.find("days before CA expiry"), std::string::npos);  // second scale
        EXPECT_NE(svg.find("ev-first-404"), std::string::npos);   // event marked
        EXPECT_NE(svg.find("class=\"span window-404\""), std::string::npos);  // window shaded
        EXPECT_NE(svg.find("class=\"span deaf\""), std::string::npos);        // deaf shaded
    }
    const auto daily = plot_daily_svg(r);
    EXPECT_NE(daily.find(" M<"), std::string::npos);
    // The single day of 200s gets a marker in the 200 series' colour.
    EXPECT_NE(daily.find("fill=\"#2ca02c\"/>"), std::string::npos);
}

#ifdef PKISIM_BINARY
TEST(cli, simulate_progress_line_on_a_tty_and_silence_otherwise) {
    const auto dir = temp_dir("tty");
    fs::create_directories(dir);
    const std::string sim = std::string{PKISIM_BINARY} + " simulate " + PKISIM_SOURCE_DIR +
                            "/configs/seed002.toml --clients 2000 --no-change-set --out " + dir.string() +
                            " --generations 1";  // the progress line, not the horizon: one
                                                 // generation keeps it within ASan's timeout
    // util-linux `script` gives the command a real pseudo-terminal.
    const std::string on_tty = "script -qec '" + sim + "' /dev/null > " + (dir / "tty.txt").string();
    const int rc = std::system(on_tty.c_str());
    ASSERT_TRUE(WIFEXITED(rc));
    EXPECT_EQ(WEXITSTATUS(rc), 1);  // storm
    const auto tty = read(dir / "tty.txt");
    for (const char* label : {"simulated 20", "% done", "events", "ETA ", "404s so far",
                              "deaf so far", "\r"})
        EXPECT_NE(tty.find(label), std::string::npos) << label;
    const std::string piped = sim + " > " + (dir / "out.txt").string() + " 2> " +
                              (dir / "err.txt").string();
    ASSERT_TRUE(WIFEXITED(std::system(piped.c_str())));
    EXPECT_EQ(read(dir / "err.txt"), "");
    EXPECT_EQ(read(dir / "out.txt").find("ETA"), std::string::npos);
    // The footer says how the page was made.
    const auto html = read(dir / "report.html");
    EXPECT_NE(html.find("configs/seed002.toml --clients 2000 --no-change-set --out"),
              std::string::npos);
    EXPECT_NE(html.find("scenario SHA-256"), std::string::npos);
    EXPECT_NE(html.find(">took<"), std::string::npos);
    fs::remove_all(dir);
}
#endif

// ---- report.html in a real browser (issue 15 §3) ---------------------------------------------

namespace {

struct browser_page {
    std::string dom;
    std::string log;
    std::uintmax_t png_bytes = 0;
};

// Loads `html` in headless Chromium with every host name unresolvable (so nothing can come from
// the network), lets its scripts run, and returns the DOM after them, the console log and the
// size of a full-page screenshot.
browser_page load_in_chromium(const fs::path& dir, const fs::path& html) {
    const char* chromium = "/usr/bin/chromium";
    browser_page p;
    EXPECT_TRUE(fs::exists(chromium))
        << chromium << " not found: install the Debian package chromium (scripts/install-deps.sh)";
    const std::string flags =
        " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
        "--disable-background-networking --disable-component-update --disable-sync "
        "--host-resolver-rules='MAP * ~NOTFOUND' --virtual-time-budget=10000 "
        "--enable-logging=stderr --v=0 --user-data-dir=" +
        (dir / "profile").string();
    const std::string url = "file://" + fs::absolute(html).string();
    const std::string cmd = std::string{chromium} + flags + " --dump-dom " + url + " > " +
                            (dir / "dom.html").string() + " 2> " + (dir / "log.txt").string();
    const int rc = std::system(cmd.c_str());
    EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << read(dir / "log.txt");
    p.dom = read(dir / "dom.html");
    p.log = read(dir / "log.txt");
    const std::string shot = std::string{chromium} + flags +
                             " --hide-scrollbars --window-size=1100,3000 --screenshot=" +
                             (dir / "page.png").string() + " " + url + " > /dev/null 2>&1";
    EXPECT_EQ(std::system(shot.c_str()), 0);
    if (fs::exists(dir / "page.png"))
        p.png_bytes = fs::file_size(dir / "page.png");
    return p;
}

// What every kind of report must show in the browser.
void expect_rendered(const browser_page& p, std::size_t charts,
                     std::initializer_list<const char*> events) {
    EXPECT_EQ(p.log.find("Uncaught"), std::string::npos) << p.log;
    EXPECT_EQ(p.log.find(":CONSOLE("), std::string::npos) << p.log;  // any console message
    // dygraphs came from the inline copy and drew every chart.
    EXPECT_NE(p.dom.find("<script id=\"dygraphs-inline\">"), std::string::npos);
    EXPECT_EQ(p.dom.find("<script src"), std::string::npos);
    EXPECT_EQ(p.dom.find("<link"), std::string::npos);
    EXPECT_NE(p.dom.find(fmt::format("data-charts-drawn=\"{}\"", charts)), std::string::npos)
        << p.dom.substr(0, 400);
    EXPECT_GE(count(p.dom, "<canvas"), charts);
    EXPECT_GE(count(p.dom, "class=\"dygraph-legend"), 0u);
    // The annotations (dygraphs DOM annotations and the event list) and the change block.
    EXPECT_GT(count(p.dom, "dygraph-annotation"), 0u);
    for (const char* e : events) {
        EXPECT_NE(p.dom.find(std::string{"id=\"ev-"} + e + "\""), std::string::npos) << e;
        // dygraphs' annotation divs carry the event's class (merged when events share a day).
        const auto div = p.dom.find("dygraph-default-annotation ");
        ASSERT_NE(div, std::string::npos);
        EXPECT_NE(p.dom.find(std::string{"ev-"} + e, div), std::string::npos) << e;
    }
    EXPECT_NE(p.dom.find("<pre id=\"change-block\">"), std::string::npos);
    EXPECT_NE(p.dom.find("id=\"provenance\""), std::string::npos);
    // A blank 1100x3000 page compresses to a few kB; drawn plots and text do not.
    EXPECT_GT(p.png_bytes, 60'000u);
}

}  // namespace

TEST(report_html, storm_loads_in_headless_chromium_with_plots_annotations_and_changes) {
    const auto sc = mini_ra();
    const auto dir = temp_dir("storm");
    ASSERT_TRUE(write_report(dir.string(), sc, run_simulation(sc), std::nullopt, {true, 0}));
    const auto p = load_in_chromium(dir, dir / "report.html");
    expect_rendered(p, 5, {"first-404", "shadow-generated", "ca-expiry"});
    EXPECT_NE(p.dom.find("Verdict: STORM"), std::string::npos);
    EXPECT_NE(p.dom.find(" auto-rollover "), std::string::npos);
    fs::remove_all(dir);
}

TEST(report_html, safe_run_shows_its_shadow_and_no_change) {
    const auto sc = mini_safe();
    const auto r = run_simulation(sc);
    ASSERT_EQ(r.outcome, verdict::safe);
    const auto dir = temp_dir("safe");
    ASSERT_TRUE(write_report(dir.string(), sc, r, std::nullopt, {true, 0}));
    const auto p = load_in_chromium(dir, dir / "report.html");
    expect_rendered(p, 5, {"shadow-generated", "first-shadow-point", "ca-expiry"});
    EXPECT_NE(p.dom.find("Verdict: SAFE"), std::string::npos);
    const auto block = p.dom.substr(p.dom.find("<pre id=\"change-block\">"), 400);
    EXPECT_EQ(block.find("rollover"), std::string::npos) << block;
    // The daily plot's range includes the shadow (the static SVG draws only what is in range).
    EXPECT_NE(read(dir / "daily.svg").find("ev-shadow-generated"), std::string::npos);
    fs::remove_all(dir);
}

TEST(report_html, outage_names_the_trustpoint_to_fix) {
    const auto sc = mini_outage();
    const auto r = run_simulation(sc);
    ASSERT_EQ(r.outcome, verdict::outage);
    const auto dir = temp_dir("outage");
    ASSERT_TRUE(write_report(dir.string(), sc, r, std::nullopt, {true, 0}));
    const auto p = load_in_chromium(dir, dir / "report.html");
    expect_rendered(p, 5, {"ca-expiry"});
    EXPECT_NE(p.dom.find("Verdict: OUTAGE"), std::string::npos);
    EXPECT_NE(p.dom.find("crypto pki trustpoint MINI\n auto-enroll 70"), std::string::npos);
    fs::remove_all(dir);
}

TEST(report_html, sweep_marks_every_point_and_shades_the_safe_region) {
    auto sc = mini_ra();
    ASSERT_TRUE(apply_setting(sc, "clients", "40"));
    sc.ra->manual_rollover = pkisim::timers::hours{3 * 24 - 8};
    auto spec = parse_sweep("ca.auto-rollover=0 2,0 6,0 8,1");
    ASSERT_TRUE(spec);
    auto sw = run_sweep(sc, *spec, run_options{}, 2);
    ASSERT_TRUE(sw) << sw.error();
    const auto dir = temp_dir("sweep");
    ASSERT_TRUE(write_report(dir.string(), sc, sw->points[0].result, *sw, {true, 0}));
    const auto p = load_in_chromium(dir, dir / "report.html");
    expect_rendered(p, 6, {"first-404"});
    EXPECT_NE(p.dom.find("<table id=\"sweep-table\">"), std::string::npos);
    EXPECT_EQ(count(p.dom, "<tr class=\"safe\">") + count(p.dom, "<tr class=\"storm\">") +
                  count(p.dom, "<tr class=\"outage\">"),
              sw->points.size());
    EXPECT_NE(p.dom.find("(recommended)"), std::string::npos);
    const auto svg = read(dir / "sweep.svg");
    EXPECT_NE(svg.find("ca.auto-rollover (days)"), std::string::npos);  // parameter and unit
    EXPECT_EQ(count(svg, "<circle"), 2 * sw->points.size());            // every point, 2 series
    EXPECT_NE(svg.find("class=\"span safe\""), std::string::npos);
    fs::remove_all(dir);
}

#if defined(PKISIM_BINARY) && !defined(PKISIM_SANITIZED)
// A million clients through the real binary (release builds only: under ASan the simulation
// alone takes minutes). Label "chromium".
TEST(report_html, million_clients_report_renders_with_si_axes) {
    const auto dir = temp_dir("million");
    const std::string cmd = std::string{PKISIM_BINARY} + " simulate " + PKISIM_SOURCE_DIR +
                            "/configs/seed002.toml --clients 1000000 --quiet --out " +
                            dir.string() + " > /dev/null 2>&1";
    const int rc = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(rc));
    ASSERT_EQ(WEXITSTATUS(rc), 1);
    const auto p = load_in_chromium(dir, dir / "report.html");
    expect_rendered(p, 5, {"first-404", "shadow-generated", "ra-learns", "ca-expiry"});
    EXPECT_NE(p.dom.find("1,000,000"), std::string::npos);
    for (const char* svg : {"daily.svg", "loop.svg", "timeline.svg"})
        EXPECT_EQ(read(dir / svg).find("0000<"), std::string::npos) << svg;
    fs::remove_all(dir);
}
#endif
