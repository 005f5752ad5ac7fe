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

TEST(cli_check, seed002_is_a_storm_and_exits_1) {
    const auto r = run("check" + config_set("seed002"));
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.out.find("first GetNextCACert 180 days before CA expiry"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("up to 150 days of 404"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("27 such clients"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("`auto-rollover 360`"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("crypto pki server ra-server rollover"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Verdict: storm"), std::string::npos) << r.out;
}

TEST(cli_check, seed002_fix_is_safe_and_exits_0) {
    const auto r = run("check" + config_set("seed002-fix"));
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("Verdict: safe"), std::string::npos) << r.out;
}

TEST(cli_check, shipped_configs_give_their_documented_verdicts) {
    EXPECT_EQ(run("check" + config_set("ios-defaults")).exit_code, 1);  // outage at 100 %
    EXPECT_EQ(run("check" + config_set("dmvpn-10y-ca")).exit_code, 0);
    EXPECT_EQ(run("check" + config_set("flexvpn-3y")).exit_code, 1);
}

TEST(cli_check, set_applies_the_seed_fix_to_the_seed_config) {
    const auto r = run("check" + config_set("seed002") + " --set server.auto-rollover=365");
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
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
    const auto r = run("check --json" + config_set("seed002"));
    ASSERT_EQ(r.exit_code, 1) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j.at("verdict"), "storm");
    EXPECT_EQ(j.at("ca_not_before"), "2030-01-01T00:00:00Z");
    EXPECT_EQ(j.at("ca_not_after"), "2034-12-31T00:00:00Z");
    EXPECT_EQ(j.at("shadow_generated_at"), "2034-12-01T00:00:00Z");
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
