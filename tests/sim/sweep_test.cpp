// Sweeps (issue 9 §7): ranges with both ends and a printed default step, the safe direction and
// range derived from the results (not assumed per parameter), the recommended value whose run
// the verdict shows, --jobs, and the split form (--emit-jobs + sweep-merge) giving the same
// table, plot and recommendation as an in-process sweep.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "pkisim/sim/report.hpp"
#include "pkisim/sim/sweep.hpp"
#include "sim_test_util.hpp"

using namespace pkisim;
using namespace pkisim::sim;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    auto dir = fs::temp_directory_path() /
               (std::string{"pkisim-sweep-"} + info->test_suite_name() + "-" + info->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

void write(const fs::path& p, const std::string& text) {
    std::ofstream out{p};
    out << text;
}

std::string read(const fs::path& p) {
    std::ifstream in{p, std::ios::binary};
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<std::string> values(std::string_view text) {
    auto s = parse_sweep(text);
    EXPECT_TRUE(s) << (s ? "" : s.error());
    return s ? s->values : std::vector<std::string>{};
}

// Points with only a verdict: for the analysis.
std::vector<sweep_point> points(const std::vector<std::pair<std::string, verdict>>& v) {
    std::vector<sweep_point> out;
    for (const auto& [value, outcome] : v) {
        sweep_point p;
        p.value = value;
        p.result.outcome = outcome;
        out.push_back(p);
    }
    return out;
}

// A 60 h CA whose 72 h certificates all end with it (so a client enrolled at t asks for the
// next CA (1 - P) x (60 h - t) before it), a 6 h overlap, 10 clients first enrolled in the first
// 15 h. Storm while (1 - P) x 60 h > 6 h (P < 90), safe above, outage at 100 (a certificate that
// ends with the CA asks for the next one only when the CA has expired).
void write_hours_case(const fs::path& dir) {
    write(dir / "ca.ios",
          "crypto pki server h\n grant auto\n lifetime ca-certificate 2 12\n lifetime certificate "
          "3\n auto-rollover 0 6\n!\nip http max-connections 16\n");
    write(dir / "tp.ios",
          "crypto pki trustpoint T\n enrollment url http://10.0.0.1:80\n"
          " auto-enroll 80\n");
    write(dir / "s.toml",
          "name = \"hours\"\nstart = \"2032-05-01T00:00:00Z\"\n[ca]\nconfig = \"ca.ios\"\n"
          "[[clients]]\nconfig = \"tp.ios\"\npattern = \"spread\"\nwindow = \"15h\"\ncount = 10\n");
}

}  // namespace

TEST(sweep_parse, ranges_run_both_ends_with_a_printed_default_step) {
    // A width up to 20: step 1 (the 178..182 ran only 178 with a hidden step of 30).
    EXPECT_EQ(values("overlap=178..182"),
              (std::vector<std::string>{"178", "179", "180", "181", "182"}));
    // Wider: a round step giving at most 12 intervals, and the upper end even off the grid.
    const auto wide = values("overlap=30..365");
    ASSERT_EQ(wide.size(), 13u);
    EXPECT_EQ(wide.front(), "30");
    EXPECT_EQ(wide[1], "60");
    EXPECT_EQ(wide[11], "360");
    EXPECT_EQ(wide.back(), "365");
    EXPECT_EQ(values("auto-enroll=60..90"),
              (std::vector<std::string>{"60", "65", "70", "75", "80", "85", "90"}));
    EXPECT_EQ(values("auto-enroll=1..10:4"), (std::vector<std::string>{"1", "5", "9", "10"}));
    EXPECT_EQ(values("k=0.5..2:0.5"), (std::vector<std::string>{"0.5", "1", "1.5", "2"}));
    EXPECT_EQ(values("k=7..7"), (std::vector<std::string>{"7"}));
    EXPECT_EQ(values("clients=100..1000:300"),
              (std::vector<std::string>{"100", "400", "700", "1000"}));

    const auto spec = parse_sweep("overlap=30..365").value();
    ASSERT_TRUE(spec.step);
    EXPECT_EQ(*spec.step, 30.0);
    EXPECT_TRUE(spec.default_step);
    const auto text = describe(spec);
    EXPECT_NE(text.find("step 30 (the default"), std::string::npos) << text;
    EXPECT_NE(text.find("13 values"), std::string::npos) << text;
    EXPECT_EQ(describe(parse_sweep("overlap=30..90:20").value()).find("default"),
              std::string::npos);

    for (const char* bad : {"overlap=abc..5", "overlap=5..1", "overlap=1..2:0", "overlap=1..2:x",
                            "overlap=1..100000:1", "overlap=", "=5", "overlap=1,,2"}) {
        const auto e = parse_sweep(bad);
        ASSERT_FALSE(e) << bad;
        EXPECT_NE(e.error().find(std::string{"--sweep "} + bad), std::string::npos) << e.error();
    }
}

TEST(sweep_analysis, the_safe_direction_comes_from_the_results) {
    using v = verdict;
    // Run order is not numeric order.
    auto a = analyze_sweep(points(
        {{"90", v::safe}, {"30", v::storm}, {"60", v::storm}, {"120", v::safe}, {"150", v::safe}}));
    EXPECT_EQ(a.direction, safe_direction::higher);
    EXPECT_EQ(*a.boundary, 0u);     // 90: the least change that is safe
    EXPECT_EQ(*a.recommended, 4u);  // 150: farthest from 60
    EXPECT_EQ(*a.safe_from, 0u);
    EXPECT_EQ(*a.safe_to, 4u);

    a = analyze_sweep(points({{"2", v::safe}, {"4", v::safe}, {"6", v::safe}, {"8", v::storm}}));
    EXPECT_EQ(a.direction, safe_direction::lower);
    EXPECT_EQ(*a.boundary, 2u);
    EXPECT_EQ(*a.recommended, 0u);

    // Bounded on both sides (auto-enroll: storm below, outage at 100): the middle.
    a = analyze_sweep(points(
        {{"80", v::storm}, {"85", v::safe}, {"90", v::safe}, {"95", v::safe}, {"100", v::outage}}));
    EXPECT_EQ(a.direction, safe_direction::between);
    EXPECT_FALSE(a.boundary);
    EXPECT_EQ(*a.recommended, 2u);

    a = analyze_sweep(points({{"1", v::safe},
                              {"2", v::storm},
                              {"3", v::safe},
                              {"4", v::safe},
                              {"5", v::safe},
                              {"6", v::storm},
                              {"7", v::safe}}));
    EXPECT_EQ(a.direction, safe_direction::mixed);
    EXPECT_EQ(*a.safe_from, 2u);  // the widest run, 3..5
    EXPECT_EQ(*a.safe_to, 4u);
    EXPECT_EQ(*a.recommended, 3u);

    a = analyze_sweep(points({{"10", v::safe}, {"20", v::safe}, {"40", v::safe}}));
    EXPECT_EQ(a.direction, safe_direction::all);
    EXPECT_EQ(*a.recommended, 1u);  // nearest the middle of 10..40

    a = analyze_sweep(points({{"10", v::storm}, {"20", v::outage}}));
    EXPECT_EQ(a.direction, safe_direction::none);
    EXPECT_FALSE(a.recommended);

    a = analyze_sweep(points({{"sliding", v::storm}, {"fixed_minute", v::safe}}));
    EXPECT_EQ(a.direction, safe_direction::unordered);
    EXPECT_EQ(*a.recommended, 1u);

    sweep_result s;
    s.key = "auto-enroll";
    s.points = points({{"80", v::storm}, {"85", v::safe}, {"90", v::safe}, {"100", v::outage}});
    s.analysis = analyze_sweep(s.points);
    const auto text = describe(s.analysis, s);
    EXPECT_NE(text.find("auto-enroll is safe only between 85 and 90"), std::string::npos) << text;
    s.points = points({{"100", v::safe}, {"50", v::storm}, {"75", v::safe}});
    s.analysis = analyze_sweep(s.points);
    const auto t2 = describe(s.analysis, s);
    EXPECT_NE(t2.find("Higher auto-enroll is safer: safe from 75 up"), std::string::npos) << t2;
    EXPECT_NE(t2.find("Recommended auto-enroll: 100"), std::string::npos) << t2;
    EXPECT_NE(t2.find("the least change that is safe: 75"), std::string::npos) << t2;
}

// The simulator decides the direction: for auto-enroll on this fleet it is neither "lower" nor
// "higher" but a band (storm below 90, outage at 100), for the overlap "higher".
TEST(sweep_run, auto_enroll_is_safe_in_a_band_and_the_overlap_higher) {
    const auto dir = temp_dir();
    write_hours_case(dir);
    const auto sc = load_scenario((dir / "s.toml").string());
    ASSERT_TRUE(sc) << sc.error();
    const auto spec = parse_sweep("auto-enroll=80..100:2").value();
    const auto sw = run_sweep(*sc, spec, run_options{}, 3);
    ASSERT_TRUE(sw) << sw.error();
    ASSERT_EQ(sw->points.size(), 11u);
    for (const auto& p : sw->points) {
        const int pct = std::stoi(p.value);
        const verdict want = pct == 100 ? verdict::outage
                             : pct < 90 ? verdict::storm
                                        : verdict::safe;
        EXPECT_EQ(p.result.outcome, want) << p.value;
    }
    EXPECT_EQ(sw->analysis.direction, safe_direction::between);
    ASSERT_TRUE(sw->analysis.recommended);
    EXPECT_EQ(sw->points[*sw->analysis.recommended].value, "94");
    // The same points on one thread: the same results.
    const auto one = run_sweep(*sc, spec, run_options{}, 1);
    ASSERT_TRUE(one);
    EXPECT_EQ(sweep_csv(*one), sweep_csv(*sw));

    // Days: a 60-day CA with 90-day certificates at auto-enroll 75, first enrollments in the
    // first 15 days: the earliest request 0.25 x (60 d - t) is just under 15 days.
    write(dir / "ca.ios",
          "crypto pki server h\n grant auto\n lifetime ca-certificate 60\n lifetime certificate "
          "90\n auto-rollover 10\n!\nip http max-connections 16\n");
    write(dir / "tp.ios",
          "crypto pki trustpoint T\n enrollment url http://10.0.0.1:80\n"
          " auto-enroll 75\n");
    write(dir / "d.toml",
          "time_step = \"20s\"\n[ca]\nconfig = \"ca.ios\"\n[[clients]]\nconfig = \"tp.ios\"\n"
          "pattern = \"spread\"\nwindow = \"15d\"\ncount = 6\n");
    const auto days = load_scenario((dir / "d.toml").string());
    ASSERT_TRUE(days) << days.error();
    const auto ov = run_sweep(*days, parse_sweep("overlap=12..17").value(), run_options{}, 3);
    ASSERT_TRUE(ov) << ov.error();
    EXPECT_EQ(ov->analysis.direction, safe_direction::higher);
    ASSERT_TRUE(ov->analysis.boundary);
    EXPECT_EQ(ov->points[*ov->analysis.boundary].value, "15");
    EXPECT_EQ(ov->points[*ov->analysis.recommended].value, "17");
    fs::remove_all(dir);
}

#ifdef PKISIM_BINARY
namespace {
int sh(const std::string& cmd) {
    const int rc = std::system(cmd.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}
}  // namespace

// The printed verdict after a sweep is the recommended value's run, labelled; --emit-jobs split
// over two "machines" and merged gives the same table, CSV and plot.
TEST(sweep_cli, verdict_is_the_recommended_run_and_a_split_sweep_merges_to_the_same_result) {
    const auto dir = temp_dir();
    write_hours_case(dir);
    const std::string bin = PKISIM_BINARY;
    const std::string scen = (dir / "s.toml").string();
    const std::string sweep = " --sweep auto-enroll=84..100:4 --set max-connections=12";
    ASSERT_EQ(sh(bin + " simulate " + scen + sweep + " --jobs 2 -q --deterministic --out " +
                 (dir / "whole").string() + " > " + (dir / "whole.txt").string()),
              0);
    const auto whole = read(dir / "whole.txt");
    EXPECT_NE(whole.find("Sweep auto-enroll=84..100:4: step 4, 5 values: 84, 88, 92, 96, 100"),
              std::string::npos)
        << whole;
    EXPECT_NE(whole.find("auto-enroll is safe only between 92 and 96: 88 and below fail"),
              std::string::npos)
        << whole;
    EXPECT_NE(whole.find("Verdict of the run with auto-enroll=92, the value the sweep recommends:\n"
                         "Verdict: SAFE"),
              std::string::npos)
        << whole;
    const auto summary = nlohmann::json::parse(read(dir / "whole" / "summary.json"));
    EXPECT_EQ(summary["run"], "auto-enroll=92, the value the sweep recommends");
    EXPECT_EQ(summary["verdict"], "safe");
    EXPECT_NE(read(dir / "whole" / "report.html").find("Plots (auto-enroll=92, the value"),
              std::string::npos);

    // Split: emit, run the first two lines here and the rest "elsewhere".
    const auto jobs = dir / "jobs";
    ASSERT_EQ(sh(bin + " simulate " + scen + sweep + " --emit-jobs " + jobs.string() + " > " +
                 (dir / "emit.txt").string()),
              0);
    const auto lines = read(jobs / "jobs.txt");
    EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), 5);
    EXPECT_NE(lines.find("--sweep-point auto-enroll=84 "), std::string::npos) << lines;
    EXPECT_NE(lines.find("--set max-connections=12"), std::string::npos) << lines;
    ASSERT_EQ(sh("sed -n 1,2p " + jobs.string() + "/jobs.txt | sh > /dev/null"), 0);
    // Incomplete: the missing points are named, exit 2.
    ASSERT_EQ(
        sh(bin + " sweep-merge " + jobs.string() + " > " + (dir / "m0.txt").string() + " 2>&1"), 2);
    EXPECT_NE(read(dir / "m0.txt").find("3 point(s) have no summary.json"), std::string::npos)
        << read(dir / "m0.txt");
    EXPECT_NE(read(dir / "m0.txt").find("auto-enroll=92"), std::string::npos);
    ASSERT_EQ(sh("sed -n 3,5p " + jobs.string() + "/jobs.txt | sh > /dev/null"), 0);
    const auto other = dir / "other";
    fs::create_directories(other / "points");
    for (const char* p : {"02", "03", "04"})
        fs::rename(jobs / "points" / p, other / "points" / p);
    const auto merged = dir / "merged";
    ASSERT_EQ(sh(bin + " sweep-merge " + jobs.string() + " " + other.string() + " --out " +
                 merged.string() + " > " + (dir / "m.txt").string()),
              0);
    EXPECT_EQ(read(merged / "sweep.csv"), read(dir / "whole" / "sweep.csv"));
    EXPECT_EQ(read(merged / "sweep.svg"), read(dir / "whole" / "sweep.svg"));
    const auto m = read(dir / "m.txt");
    const auto table = [](const std::string& s) {
        const auto a = s.find("   auto-enroll  verdict");
        const auto b = s.find("\n\n", a);
        return a == std::string::npos ? std::string{} : s.substr(a, b - a);
    };
    EXPECT_FALSE(table(whole).empty());
    EXPECT_EQ(table(m), table(whole));
    EXPECT_NE(m.find("Verdict of the run with auto-enroll=92, the value the sweep recommends"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("Verdict: SAFE"), std::string::npos) << m;

    // A bad value is refused before anything runs, quoting what was typed.
    ASSERT_EQ(sh(bin + " simulate " + scen + " --sweep auto-enroll=80,abc -q --out " +
                 (dir / "bad").string() + " > " + (dir / "bad.txt").string() + " 2>&1"),
              2);
    EXPECT_NE(read(dir / "bad.txt").find("--sweep auto-enroll=abc"), std::string::npos)
        << read(dir / "bad.txt");
    EXPECT_FALSE(fs::exists(dir / "bad" / "summary.json"));

    // A point of another sweep in the folders: refused.
    fs::create_directories(other / "stray");
    ASSERT_EQ(sh(bin + " simulate " + scen + " --sweep-point max-connections=3 -q --out " +
                 (other / "stray").string() + " > /dev/null"),
              0);
    ASSERT_EQ(sh(bin + " sweep-merge " + jobs.string() + " " + other.string() + " > " +
                 (dir / "m2.txt").string() + " 2>&1"),
              2);
    EXPECT_NE(read(dir / "m2.txt").find("sweep of max-connections"), std::string::npos)
        << read(dir / "m2.txt");
    fs::remove_all(dir);
}
#endif
