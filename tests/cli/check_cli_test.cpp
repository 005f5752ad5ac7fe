// `pkisim check` end to end: runs the real binary on the shipped configs.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {

struct run_result {
    int exit_code = -1;
    std::string out;  // stdout and stderr, in that order (stderr through a temp file)
    std::string err;
};

std::filesystem::path temp_dir() {
    auto d = std::filesystem::temp_directory_path() /
             fmt::format("pkisim-cli-test-{}", static_cast<long>(::getpid()));
    std::filesystem::create_directories(d);
    return d;
}

run_result run(const std::string& args) {
    const auto err_file = temp_dir() / "stderr.txt";
    const std::string cmd = fmt::format("'{}' {} 2>'{}'", PKISIM_BINARY, args, err_file.string());
    run_result r;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) {
        return r;
    }
    std::array<char, 4096> buf{};
    std::size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) {
        r.out.append(buf.data(), n);
    }
    const int status = ::pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream in(err_file);
    std::ostringstream err;
    err << in.rdbuf();
    r.err = err.str();
    return r;
}

std::string config_set(const std::string& dir) {
    const std::string base = std::string{PKISIM_CONFIGS_DIR} + "/" + dir + "/";
    std::string files;
    for (const auto& e : std::filesystem::directory_iterator(base)) {
        if (e.path().extension() == ".ios") {
            files += " '" + e.path().string() + "'";
        }
    }
    return files;
}

std::string files(std::initializer_list<const char*> rel) {
    std::string out;
    for (const char* r : rel) {
        out += fmt::format(" '{}/{}'", PKISIM_CONFIGS_DIR, r);
    }
    return out;
}

const std::string seed002_files =
    files({"seed002/ca.ios", "scenarios/seed002-ra.ios", "seed002/client.ios"});
const std::string seed002_fix_files =
    files({"seed002-fix/ca.ios", "scenarios/seed002-fix-ra.ios", "seed002-fix/client.ios"});

TEST(cli_check, seed002_is_a_storm_and_exits_1) {
    const auto r = run("check" + seed002_files);
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.out.find("first GetNextCACert 180 days before CA expiry"), std::string::npos)
        << r.out;
    // The RA polls the CA from its own SHADOW point and learns at the shadow; the earliest
    // client's retry at that instant still gets a 404: 150 days and one 20 s retry.
    EXPECT_NE(r.out.find("up to 150d 20s of 404"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("27 such clients"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(" auto-rollover 360"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("crypto pki server ra-server rollover"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("(1 − 0.70) × min(600, 1825) = 180 days > overlap 30"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("Verdict: storm"), std::string::npos) << r.out;
}

TEST(cli_check, the_ras_own_timer_is_part_of_the_verdict) {
    // Issue 9: CA fixed (auto-rollover 365) but the RA asks at its own SHADOW point.
    const auto r = run("check" + seed002_fix_files);
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.out.find("RA SHADOW timer      2029-07-14T12:00:00Z  (169.50 days"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("max 404 window     10d 12h 20s"), std::string::npos) << r.out;
    // The planned manual RA rollover, with the scenario's meaning: generation 1 safe.
    const auto m = run("check --json --ra-rollover 1460d" + seed002_fix_files);
    const auto j = nlohmann::json::parse(m.out);
    EXPECT_EQ(j.at("generations").at(0).at("verdict"), "safe") << m.out;
    EXPECT_EQ(j.at("generations").at(0).at("ra").at("knows_shadow_at"), "2028-12-31T00:00:00Z");
    // Generation 2 is a herd at the RA's own timer: the change set raises the RA's renewal.
    EXPECT_EQ(j.at("generations").at(1).at("verdict"), "storm");
    const auto& c = j.at("change_set");
    EXPECT_TRUE(c.at("verified_safe").get<bool>());
    std::string sets;
    for (const auto& s : c.at("settings")) {
        sets += " --set '" + s.get<std::string>() + "'";
    }
    const auto again = run("check --ra-rollover 1460d" + seed002_fix_files + sets);
    EXPECT_EQ(again.exit_code, 0) << sets << again.out << again.err;
}

TEST(cli_check, the_printed_change_set_is_safe_when_applied) {
    for (const auto& f : {seed002_files, files({"ios-defaults/ca.ios", "ios-defaults/client.ios"}),
                          files({"flexvpn-3y/ca.ios", "flexvpn-3y/client.ios"})}) {
        const auto r = run("check --json" + f);
        ASSERT_EQ(r.exit_code, 1) << r.out << r.err;
        const auto j = nlohmann::json::parse(r.out);
        std::string sets;
        for (const auto& s : j.at("change_set").at("settings")) {
            sets += " --set '" + s.get<std::string>() + "'";
        }
        const auto again = run("check" + f + sets);
        EXPECT_EQ(again.exit_code, 0) << f << sets << again.out;
    }
}

TEST(cli_check, shipped_configs_give_their_documented_verdicts) {
    EXPECT_EQ(run("check" + config_set("ios-defaults")).exit_code, 1);  // outage at 100 %
    EXPECT_EQ(run("check" + config_set("dmvpn-10y-ca")).exit_code, 0);
    EXPECT_EQ(run("check" + config_set("flexvpn-3y")).exit_code, 1);
    // The seed's RA trustpoint has no auto-enroll: the RA certificate ends 600 days after the
    // CA's creation (the simulator's rule too): an outage, whatever the CA's overlap.
    const auto r = run("check" + config_set("seed002-fix"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("RA certificate ends  2026-08-24"), std::string::npos) << r.out;
}

TEST(cli_check, set_takes_one_value_and_never_swallows_the_files) {
    // The README's own command: --set before the files.
    const auto r =
        run("check --set server.auto-rollover=365 --ra-rollover 1460d --set "
            "ra.auto-enroll=69" +
            seed002_files);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    const auto bad = run("check --set overlap=abc" + seed002_files);
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find("--set overlap=abc: auto-rollover abc"), std::string::npos) << bad.err;
    const auto sim_only = run("check --set latency=5ms" + seed002_files);
    EXPECT_EQ(sim_only.exit_code, 2);
    EXPECT_NE(sim_only.err.find("pkisim simulate"), std::string::npos) << sim_only.err;
    EXPECT_EQ(run("check --clients -5" + seed002_files).exit_code, 2);
    EXPECT_NE(run("check --help").out.find("ra.manual_rollover"), std::string::npos);
}

TEST(cli_check, overlap_of_the_ca_lifetime_or_more_is_safe_in_check_as_in_simulate) {
    for (const char* o : {"1825", "1900", "1825 12"}) {
        const auto r = run(fmt::format("check --json --set 'overlap={}'", o) +
                           files({"seed002/ca.ios", "seed002/client.ios"}));
        const auto j = nlohmann::json::parse(r.out);
        EXPECT_EQ(r.exit_code, 0) << o << r.out;
        EXPECT_EQ(j.at("shadow_generated_at"), j.at("ca_not_before")) << o;
        EXPECT_DOUBLE_EQ(j.at("trustpoints").at(0).at("max_404_window_days").get<double>(), 0.0);
    }
}

TEST(cli_check, limiter_off_is_not_described_as_a_throttle) {
    const auto r = run("check --set limiter=off" + files({"seed002/ca.ios", "seed002/client.ios"}));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out.find("80 connections"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("max-connections 5"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("no limits modelled"), std::string::npos) << r.out;
}

TEST(cli_check, safe_only_when_something_was_analysed) {
    const auto typo = temp_dir() / "typo.ios";
    std::ofstream(typo) << "crypto pki server CA\n auto-rollover 365\n lifetime certificate 600\n"
                           "crypto pki trustpiont GETVPN\n enrollment url http://ca\n"
                           " auto-enroll 70\n";
    const auto r = run("check '" + typo.string() + "'");
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_NE(r.err.find(typo.string() + ":4:12: warning: crypto pki trustpiont"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("did you mean `crypto pki trustpoint`"), std::string::npos);
    EXPECT_NE(r.err.find("no client trustpoint"), std::string::npos) << r.err;
    const auto sever = temp_dir() / "sever.ios";
    std::ofstream(sever) << "crypto pki sever CA\n auto-rollover 365\n";
    const auto s = run("check '" + sever.string() + "'" + files({"seed002/client.ios"}));
    EXPECT_EQ(s.exit_code, 2);
    EXPECT_NE(s.err.find(sever.string() + ":1:12: warning"), std::string::npos) << s.err;
    EXPECT_NE(s.err.find("no issuing CA"), std::string::npos) << s.err;
}

TEST(cli_check, dash_reads_standard_input_and_unknown_commands_suggest) {
    const auto r = run("check -" + files({"seed002/client.ios"}) + " < '" +
                       std::string{PKISIM_CONFIGS_DIR} + "/seed002/ca.ios'");
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.out.find("crypto pki server ca-server"), std::string::npos);
    const auto u = run("simulat");
    EXPECT_EQ(u.exit_code, 2);
    EXPECT_NE(u.err.find("did you mean `pkisim simulate`"), std::string::npos) << u.err;
}

TEST(cli_check, bad_file_exits_2_with_file_line_column) {
    const auto f = temp_dir() / "bad.ios";
    std::ofstream(f) << "crypto pki server CA\n lifetime certificate 9000\n";
    const auto r = run("check '" + f.string() + "'");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find(f.string() + ":2:23: lifetime certificate 9000: days must be 0..7305"),
              std::string::npos)
        << r.err;
}

TEST(cli_check, missing_file_and_bad_options_exit_2) {
    EXPECT_EQ(run("check /nonexistent/file.ios").exit_code, 2);
    EXPECT_EQ(run("check" + config_set("seed002") + " --ca-start yesterday").exit_code, 2);
    EXPECT_EQ(run("check" + config_set("seed002") + " --set server.auto-rollover=99999").exit_code,
              2);
    EXPECT_EQ(run("check").exit_code, 2);
    EXPECT_EQ(run("frobnicate").exit_code, 2);
}

TEST(cli_check, no_issuing_ca_exits_2) {
    const auto r = run("check '" + std::string{PKISIM_CONFIGS_DIR} + "/seed002/client.ios'");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("no issuing CA"), std::string::npos) << r.err;
}

TEST(cli_check, json_has_the_documented_keys_and_seed_numbers) {
    const auto r = run("check --json" + files({"seed002/ca.ios", "seed002/client.ios"}));
    ASSERT_EQ(r.exit_code, 1) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j.at("verdict"), "storm");
    // The scenarios' default start (one default for check and simulate).
    EXPECT_EQ(j.at("ca_not_before"), "2025-01-01T00:00:00Z");
    EXPECT_EQ(j.at("ca_not_after"), "2029-12-31T00:00:00Z");
    EXPECT_EQ(j.at("shadow_generated_at"), "2029-12-01T00:00:00Z");
    EXPECT_DOUBLE_EQ(j.at("overlap_days").get<double>(), 30.0);
    ASSERT_EQ(j.at("trustpoints").size(), 1U);
    const auto& t = j.at("trustpoints").at(0);
    EXPECT_EQ(t.at("name"), "GETVPN");
    EXPECT_DOUBLE_EQ(t.at("first_get_next_ca_cert_days_before_ca_expiry").get<double>(), 180.0);
    EXPECT_DOUBLE_EQ(t.at("max_404_window_days").get<double>(), 150.0);
    EXPECT_DOUBLE_EQ(t.at("min_safe_overlap_days").get<double>(), 180.0);
    EXPECT_DOUBLE_EQ(t.at("recommended_overlap_days").get<double>(), 360.0);
    EXPECT_EQ(t.at("clients_to_reach_throttle").get<int>(), 27);
}

TEST(cli_check, json_shadow_is_null_without_auto_rollover) {
    const auto f = temp_dir() / "noroll.ios";
    std::ofstream(f)
        << "crypto pki server CA\n lifetime certificate 600\n!\n"
           "crypto pki trustpoint TP\n enrollment url http://10.0.0.1\n auto-enroll 70\n";
    const auto r = run("check --json --ca-start 2025-03-24T05:52:21Z '" + f.string() + "'");
    ASSERT_EQ(r.exit_code, 1) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j.at("verdict"), "outage");
    EXPECT_TRUE(j.at("shadow_generated_at").is_null());
    EXPECT_TRUE(j.at("overlap_days").is_null());
    EXPECT_EQ(j.at("ca_not_before"), "2025-03-24T05:52:21Z");
}

}  // namespace

namespace {

TEST(cli_issue9, simulate_help_lists_its_exit_codes_and_the_shared_keys) {
    const auto r = run("simulate --help");
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.out.find("Exit codes: 0 safe, 1 storm or outage"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("ra.manual_rollover"), std::string::npos);
    EXPECT_NE(r.out.find("latency"), std::string::npos);
}

// A small scenario over the given IOS files, for check-vs-simulate agreement.
std::string scenario_file(const std::string& name, const std::string& ca, const std::string& ra,
                          const std::string& extra) {
    const auto f = temp_dir() / (name + ".toml");
    std::ofstream out(f);
    out << "name = \"" << name << "\"\n[ca]\nconfig = \"" << PKISIM_CONFIGS_DIR << "/" << ca
        << "\"\n";
    if (!ra.empty()) {
        out << "[ra]\nconfig = \"" << PKISIM_CONFIGS_DIR << "/" << ra << "\"\n" << extra;
    }
    out << "[[clients]]\nconfig = \"" << PKISIM_CONFIGS_DIR
        << "/seed002/client.ios\"\ncount = 60\npattern = \"spread\"\nwindow = \"420d\"\n";
    return f.string();
}

// One verdict for one configuration: `check` and `simulate` (default horizon: the two CA
// generations check judges) exit alike, and agree generation by generation.
TEST(cli_issue9, check_and_simulate_give_one_verdict_per_generation) {
    struct c {
        std::string ca;
        std::string ra;
        std::string ra_extra;  // scenario [ra] lines
        std::string check_extra;
        std::string sets;
        std::vector<std::string> want;  // per generation
    };
    const std::vector<c> cases = {
        // The CA fixed, the RA on its own timer: storm from generation 1.
        {"seed002-fix/ca.ios", "scenarios/seed002-fix-ra.ios", "", "", "", {"storm", "storm"}},
        // The seed's fix: the manual RA rollover covers generation 1 only; in generation 2 the
        // RA's own timer coincides with the phase-locked herd.
        {"seed002-fix/ca.ios", "scenarios/seed002-fix-ra.ios", "manual_rollover = \"1460d\"\n",
         " --ra-rollover 1460d", "", {"safe", "storm"}},
        // ... and with the change set both print (the RA's auto-enroll 69), safe in both.
        {"seed002-fix/ca.ios", "scenarios/seed002-fix-ra.ios", "manual_rollover = \"1460d\"\n",
         " --ra-rollover 1460d", " --set ra.auto-enroll=69", {"safe", "safe"}},
        // Overlap of the whole CA life or more: shadow at the creation: safe.
        {"seed002-fix/ca.ios", "", "", "", " --set overlap=1825", {"safe", "safe"}},
        {"seed002-fix/ca.ios", "", "", "", " --set overlap=2000", {"safe", "safe"}},
        // A short loop (180 d − 175 d) without an RA: storm in generation 1; the herd at
        // 169.5 d is covered.
        {"seed002-fix/ca.ios", "", "", "", " --set overlap=175", {"storm", "safe"}},
        // Overlap 170 days: generation 1's first requests (180 d before expiry) storm; the
        // herd asks at the SHADOW point of a chain started at the old CA's notAfter, 169.5 d
        // before: covered by 170, not by 169.
        {"seed002-fix/ca.ios", "", "", "", " --set overlap=170", {"storm", "safe"}},
        {"seed002-fix/ca.ios", "", "", "", " --set overlap=169", {"storm", "storm"}},
    };
    for (const auto& k : cases) {
        const std::string label = k.ca + " " + k.ra + k.check_extra + k.sets;
        const std::string sc = scenario_file("agree", k.ca, k.ra, k.ra_extra);
        const auto out = temp_dir() / "out";
        const auto sim = run("simulate -q --deterministic --no-change-set --out '" + out.string() +
                             "' '" + sc + "'" + k.sets);
        std::string files_arg = files({k.ca.c_str(), "seed002/client.ios"});
        if (!k.ra.empty()) {
            files_arg += files({k.ra.c_str()});
        }
        const auto chk = run("check" + files_arg + k.check_extra + k.sets);
        const int want_exit =
            std::all_of(k.want.begin(), k.want.end(), [](const auto& v) { return v == "safe"; })
                ? 0
                : 1;
        EXPECT_EQ(sim.exit_code, want_exit) << label << sim.out << sim.err;
        EXPECT_EQ(chk.exit_code, sim.exit_code) << label << chk.out << chk.err;
        const auto j = nlohmann::json::parse(run("check --json" + files_arg + k.check_extra + k.sets).out);
        std::ifstream in(out / "summary.json");
        ASSERT_TRUE(in) << label << sim.err;
        const auto summary = nlohmann::json::parse(in);
        ASSERT_EQ(j.at("generations").size(), k.want.size()) << label;
        ASSERT_EQ(summary.at("generations").size(), k.want.size()) << label;
        for (std::size_t g = 0; g < k.want.size(); ++g) {
            EXPECT_EQ(j["generations"][g].at("verdict"), k.want[g]) << label << " generation " << g + 1;
            EXPECT_EQ(summary["generations"][g].at("verdict"), k.want[g])
                << label << " generation " << g + 1;
        }
    }
}

}  // namespace
