#include "pkisim/timers/config.hpp"

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace {

using namespace pkisim::timers;

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream buf;
    buf << in.rdbuf();  // not istreambuf_iterator: g++ 12 -O3 warns -Wnull-dereference on it
    return buf.str();
}

server_config parse_server(const std::string& body) {
    auto cfg = parse_ios_config("crypto pki server CA\n" + body, "t.ios");
    EXPECT_TRUE(cfg.has_value()) << (cfg ? "" : cfg.error().to_string());
    if (!cfg || cfg->servers.empty()) {
        return {};
    }
    return cfg->servers.front();
}

trustpoint_config parse_trustpoint(const std::string& body) {
    auto cfg = parse_ios_config("crypto pki trustpoint TP\n" + body, "t.ios");
    EXPECT_TRUE(cfg.has_value()) << (cfg ? "" : cfg.error().to_string());
    if (!cfg || cfg->trustpoints.empty()) {
        return {};
    }
    return cfg->trustpoints.front();
}

TEST(ios_config, defaults_are_the_ios_defaults) {
    const auto s = parse_server("");
    EXPECT_EQ(s.ca_lifetime, days{1095});
    EXPECT_EQ(s.cert_lifetime, days{365});
    EXPECT_EQ(s.crl_lifetime, hours{168});
    EXPECT_EQ(s.enrollment_request_lifetime, hours{168});
    EXPECT_FALSE(s.auto_rollover.has_value());
    EXPECT_EQ(s.grant, grant_mode::manual);
    EXPECT_FALSE(s.mode_ra);
    EXPECT_EQ(s.issuer_name, "CN=CA");
    EXPECT_EQ(s.hash, hash_algorithm::sha256);
    EXPECT_EQ(s.db_level, database_level::minimum);
    EXPECT_EQ(s.http_max_connections, 5);
    const auto t = parse_trustpoint("");
    EXPECT_FALSE(t.auto_enroll);
    EXPECT_EQ(t.retry_period, minutes{1});
    EXPECT_EQ(t.retry_count, 0);
}

TEST(ios_config, bare_auto_rollover_means_30_days) {
    EXPECT_EQ(parse_server(" auto-rollover\n").auto_rollover, days{30});
}

TEST(ios_config, days_hours_minutes_forms_add_up) {
    const auto s = parse_server(
        " lifetime certificate 600 12 30\n lifetime ca-certificate 1825 1\n"
        " lifetime crl 24 30\n lifetime enrollment-request 1000\n auto-rollover 365 0 5\n");
    EXPECT_EQ(s.cert_lifetime, days{600} + hours{12} + minutes{30});
    EXPECT_EQ(s.ca_lifetime, days{1825} + hours{1});
    EXPECT_EQ(s.crl_lifetime, hours{24} + minutes{30});
    EXPECT_EQ(s.enrollment_request_lifetime, hours{1000});
    EXPECT_EQ(s.auto_rollover, days{365} + minutes{5});
}

TEST(ios_config, range_limits_are_accepted) {
    const auto s = parse_server(
        " lifetime certificate 7305 23 59\n lifetime crl 336 59\n auto-rollover 0\n"
        " lifetime ca-certificate 0 0 1\n");
    EXPECT_EQ(s.cert_lifetime, days{7305} + hours{23} + minutes{59});
    EXPECT_EQ(s.crl_lifetime, hours{336} + minutes{59});
    EXPECT_EQ(s.auto_rollover, days{0});
    EXPECT_EQ(s.ca_lifetime, minutes{1});
}

TEST(ios_config, every_server_command_is_applied) {
    const auto s = parse_server(
        " grant ra-auto\n mode ra\n issuer-name CN=ca.example.net, O=Example\n hash sha512\n"
        " database level complete\n database url nvram:\n cdp-url http://10.0.0.1/ca.crl\n"
        " shutdown\n serial-number 0x10\n");
    EXPECT_EQ(s.grant, grant_mode::ra_auto);
    EXPECT_TRUE(s.mode_ra);
    EXPECT_EQ(s.issuer_name, "CN=ca.example.net, O=Example");
    EXPECT_EQ(s.hash, hash_algorithm::sha512);
    EXPECT_EQ(s.db_level, database_level::complete);
    EXPECT_EQ(s.cdp_url, "http://10.0.0.1/ca.crl");
    EXPECT_TRUE(s.shutdown);
    EXPECT_EQ(parse_server(" grant auto\n").grant, grant_mode::auto_grant);
    EXPECT_EQ(parse_server(" grant none\n").grant, grant_mode::none);
    EXPECT_FALSE(parse_server(" mode sub-cs\n").mode_ra);
}

TEST(ios_config, no_forms_restore_the_defaults) {
    const auto s = parse_server(
        " lifetime certificate 600\n lifetime ca-certificate 1825\n lifetime crl 24\n"
        " lifetime enrollment-request 10\n auto-rollover 365\n grant auto\n mode ra\n"
        " issuer-name CN=x\n hash sha1\n database level names\n cdp-url http://x\n shutdown\n"
        " no lifetime certificate\n no lifetime ca-certificate\n no lifetime crl\n"
        " no lifetime enrollment-request\n no auto-rollover\n no grant\n no mode ra\n"
        " no issuer-name\n no hash\n no database level\n no cdp-url\n no shutdown\n");
    const server_config def;
    EXPECT_EQ(s.cert_lifetime, def.cert_lifetime);
    EXPECT_EQ(s.ca_lifetime, def.ca_lifetime);
    EXPECT_EQ(s.crl_lifetime, def.crl_lifetime);
    EXPECT_EQ(s.enrollment_request_lifetime, def.enrollment_request_lifetime);
    EXPECT_FALSE(s.auto_rollover.has_value());
    EXPECT_EQ(s.grant, grant_mode::manual);
    EXPECT_FALSE(s.mode_ra);
    EXPECT_EQ(s.issuer_name, "CN=CA");
    EXPECT_EQ(s.hash, hash_algorithm::sha256);
    EXPECT_EQ(s.db_level, database_level::minimum);
    EXPECT_TRUE(s.cdp_url.empty());
    EXPECT_FALSE(s.shutdown);

    const auto t = parse_trustpoint(
        " auto-enroll 70 regenerate\n enrollment url http://x\n enrollment mode ra\n"
        " enrollment retry period 5\n enrollment retry count 3\n subject-name CN=r1\n"
        " rsakeypair K\n no auto-enroll\n no enrollment url\n no enrollment mode ra\n"
        " no enrollment retry period\n no enrollment retry count\n no subject-name\n"
        " no rsakeypair\n");
    EXPECT_FALSE(t.auto_enroll);
    EXPECT_EQ(t.auto_enroll_percent, 100);
    EXPECT_FALSE(t.regenerate);
    EXPECT_TRUE(t.enrollment_url.empty());
    EXPECT_FALSE(t.enrollment_mode_ra);
    EXPECT_EQ(t.retry_period, minutes{1});
    EXPECT_EQ(t.retry_count, 0);
    EXPECT_TRUE(t.subject_name.empty());
    EXPECT_TRUE(t.rsakeypair.empty());
}

TEST(ios_config, every_trustpoint_command_is_applied) {
    const auto t = parse_trustpoint(
        " enrollment mode ra\n enrollment url http://192.168.105.3:80\n"
        " subject-name OU = TEST OU, OU = cisco\n auto-enroll 70 regenerate\n"
        " enrollment retry period 5\n enrollment retry count 10\n rsakeypair GETVPN 2048\n");
    EXPECT_TRUE(t.enrollment_mode_ra);
    EXPECT_EQ(t.enrollment_url, "http://192.168.105.3:80");
    EXPECT_EQ(t.subject_name, "OU = TEST OU, OU = cisco");
    EXPECT_TRUE(t.auto_enroll);
    EXPECT_EQ(t.auto_enroll_percent, 70);
    EXPECT_TRUE(t.regenerate);
    EXPECT_EQ(t.retry_period, minutes{5});
    EXPECT_EQ(t.retry_count, 10);
    EXPECT_EQ(t.rsakeypair, "GETVPN");
}

TEST(ios_config, bare_auto_enroll_renews_at_100_percent) {
    const auto t = parse_trustpoint(" auto-enroll\n");
    EXPECT_TRUE(t.auto_enroll);
    EXPECT_EQ(t.auto_enroll_percent, 100);
    const auto r = parse_trustpoint(" auto-enroll regenerate\n");
    EXPECT_EQ(r.auto_enroll_percent, 100);
    EXPECT_TRUE(r.regenerate);
}

TEST(ios_config, unique_prefixes_are_accepted_as_ios_does) {
    const auto s = parse_server(
        " auto-roll 365\n lifetime cert 600\n lifetime ca 1825\n"
        " LIFETIME CRL 6\n gr ra\n mo ra\n has sha384\n da lev comp\n");
    EXPECT_EQ(s.auto_rollover, days{365});
    EXPECT_EQ(s.cert_lifetime, days{600});
    EXPECT_EQ(s.ca_lifetime, days{1825});
    EXPECT_EQ(s.crl_lifetime, hours{6});
    EXPECT_EQ(s.grant, grant_mode::ra_auto);
    EXPECT_TRUE(s.mode_ra);
    EXPECT_EQ(s.hash, hash_algorithm::sha384);
    EXPECT_EQ(s.db_level, database_level::complete);
    const auto t = parse_trustpoint(
        " auto-e 70 regen\n enroll url http://x\n enr m ra\n"
        " enr ret per 3\n");
    EXPECT_EQ(t.auto_enroll_percent, 70);
    EXPECT_TRUE(t.regenerate);
    EXPECT_EQ(t.enrollment_url, "http://x");
    EXPECT_TRUE(t.enrollment_mode_ra);
    EXPECT_EQ(t.retry_period, minutes{3});
    auto cfg = parse_ios_config(
        "cry pki ser CA\n auto-rollover 10\ncry pki trustpoi TP\n"
        " auto-enroll 50\nip ht max 16\n",
        "t.ios");
    ASSERT_TRUE(cfg) << cfg.error().to_string();
    ASSERT_EQ(cfg->servers.size(), 1U);
    EXPECT_EQ(cfg->servers[0].auto_rollover, days{10});
    ASSERT_EQ(cfg->trustpoints.size(), 1U);
    EXPECT_EQ(cfg->trustpoints[0].auto_enroll_percent, 50);
    EXPECT_EQ(cfg->http.max_connections, 16);
    EXPECT_EQ(cfg->servers[0].http_max_connections, 16);
}

struct bad_line {
    const char* section;  // "server", "trustpoint" or "top"
    const char* line;
    const char* message;  // exact `file:line:column: message`
};

// Every malformed or out-of-range line gives exactly this message (issue 2 §3.1).
const bad_line bad_lines[] = {
    {"server", " lifetime certificate 9000",
     "t.ios:2:23: lifetime certificate 9000: days must be 0..7305"},
    {"server", " lifetime cert 9000",
     "t.ios:2:16: lifetime certificate 9000: days must be 0..7305"},
    {"server", " lifetime ca-certificate 7306",
     "t.ios:2:26: lifetime ca-certificate 7306: days must be 0..7305"},
    {"server", " lifetime certificate 600 24",
     "t.ios:2:27: lifetime certificate 600 24: hours must be 0..23"},
    {"server", " lifetime certificate 600 12 60",
     "t.ios:2:30: lifetime certificate 600 12 60: minutes must be 0..59"},
    {"server", " lifetime certificate 600 12 30 5",
     "t.ios:2:33: lifetime certificate 600 12 30 5: unexpected extra word at the end of the "
     "command"},
    {"server", " lifetime certificate", "t.ios:2:23: lifetime certificate: expected days 0..7305"},
    {"server", " lifetime certificate abc",
     "t.ios:2:23: lifetime certificate abc: expected days 0..7305"},
    {"server", " lifetime certificate -5",
     "t.ios:2:23: lifetime certificate -5: expected days 0..7305"},
    {"server", " lifetime certificate 0",
     "t.ios:2:25: lifetime certificate 0: a lifetime of 0 is not usable; expected at least 1 "
     "minute"},
    {"server", " lifetime crl 337", "t.ios:2:15: lifetime crl 337: hours must be 0..336"},
    {"server", " lifetime crl 24 60", "t.ios:2:18: lifetime crl 24 60: minutes must be 0..59"},
    {"server", " lifetime enrollment-request 1001",
     "t.ios:2:30: lifetime enrollment-request 1001: hours must be 0..1000"},
    {"server", " lifetime",
     "t.ios:2:11: lifetime: expected ca-certificate, certificate, crl or enrollment-request"},
    {"server", " lifetime c 600",
     "t.ios:2:11: lifetime c: ambiguous keyword, could be ca-certificate, certificate or crl"},
    {"server", " lifetime foo 600",
     "t.ios:2:11: lifetime foo: expected ca-certificate, certificate, crl or enrollment-request"},
    {"server", " auto-rollover 7306", "t.ios:2:16: auto-rollover 7306: days must be 0..7305"},
    {"server", " auto-rollover 30 25", "t.ios:2:19: auto-rollover 30 25: hours must be 0..23"},
    {"server", " auto-rollover thirty", "t.ios:2:16: auto-rollover thirty: expected days 0..7305"},
    {"server", " auto-rollover 99999999999999999999",
     "t.ios:2:16: auto-rollover 99999999999999999999: days must be 0..7305"},
    {"server", " grant", "t.ios:2:8: grant: expected auto, none or ra-auto"},
    {"server", " grant always", "t.ios:2:8: grant always: expected auto, none or ra-auto"},
    {"server", " mode rx", "t.ios:2:7: mode rx: expected ra or sub-cs"},
    {"server", " mode ra extra",
     "t.ios:2:10: mode ra extra: unexpected extra word at the end of the command"},
    {"server", " hash md4", "t.ios:2:7: hash md4: expected md5, sha1, sha256, sha384 or sha512"},
    {"server", " hash sha",
     "t.ios:2:7: hash sha: ambiguous keyword, could be sha1, sha256, sha384 or sha512"},
    {"server", " database level full",
     "t.ios:2:17: database level full: expected minimum, names or complete"},
    {"server", " database", "t.ios:2:11: database: expected level, url, archive or username"},
    {"server", " issuer-name",
     "t.ios:2:14: issuer-name: expected a distinguished name, e.g. CN=ca.example.com"},
    {"server", " cdp-url", "t.ios:2:10: cdp-url: expected a URL, e.g. http://10.0.0.1/ca.crl"},
    {"server", " shutdown now",
     "t.ios:2:11: shutdown now: unexpected extra word at the end of the command"},
    {"server", " no", "t.ios:2:5: no: expected a command to negate"},
    {"server", " s", "t.ios:2:2: s: ambiguous keyword, could be serial-number or shutdown"},
    {"server", " d", "t.ios:2:2: d: ambiguous keyword, could be database or default"},
    {"trustpoint", " auto-enroll 0", "t.ios:2:14: auto-enroll 0: percent must be 1..100"},
    {"trustpoint", " auto-enroll 101", "t.ios:2:14: auto-enroll 101: percent must be 1..100"},
    {"trustpoint", " auto-enroll 70 now", "t.ios:2:17: auto-enroll 70 now: expected regenerate"},
    {"trustpoint", " auto-enroll 70 regenerate extra",
     "t.ios:2:28: auto-enroll 70 regenerate extra: unexpected extra word at the end of the "
     "command"},
    {"trustpoint", " auto 70",
     "t.ios:2:2: auto: ambiguous keyword, could be auto-enroll or auto-trigger"},
    {"trustpoint", " enrollment retry period 0",
     "t.ios:2:26: enrollment retry period 0: minutes must be 1..60"},
    {"trustpoint", " enrollment retry period 61",
     "t.ios:2:26: enrollment retry period 61: minutes must be 1..60"},
    {"trustpoint", " enrollment retry count 101",
     "t.ios:2:25: enrollment retry count 101: count must be 0..100"},
    {"trustpoint", " enrollment retry", "t.ios:2:19: enrollment retry: expected period or count"},
    {"trustpoint", " enrollment url",
     "t.ios:2:17: enrollment url: expected a URL, e.g. http://10.0.0.1:80"},
    {"trustpoint", " enrollment mode ca", "t.ios:2:18: enrollment mode ca: expected ra"},
    {"trustpoint", " enrollment p",
     "t.ios:2:13: enrollment p: ambiguous keyword, could be profile or pkcs12"},
    {"trustpoint", " rsakeypair", "t.ios:2:13: rsakeypair: expected a key pair label"},
    {"top", "ip http max-connections 17",
     "t.ios:1:25: ip http max-connections 17: connections must be 1..16"},
    {"top", "ip http max-connections 0",
     "t.ios:1:25: ip http max-connections 0: connections must be 1..16"},
    {"top", "ip http max-connections",
     "t.ios:1:25: ip http max-connections: expected connections 1..16"},
    {"top", "crypto pki server", "t.ios:1:19: crypto pki server: expected a server name"},
    {"top", "crypto pki trustpoint",
     "t.ios:1:23: crypto pki trustpoint: expected a trustpoint name"},
    {"top", "crypto pki tru X",
     "t.ios:1:12: crypto pki tru: ambiguous keyword, could be trustpoint or trustpool"},
};

TEST(ios_config, malformed_lines_give_the_exact_message) {
    for (const auto& b : bad_lines) {
        const std::string section = b.section;
        std::string text;
        if (section == "server") {
            text = std::string{"crypto pki server CA\n"} + b.line + "\n";
        } else if (section == "trustpoint") {
            text = std::string{"crypto pki trustpoint TP\n"} + b.line + "\n";
        } else {
            text = std::string{b.line} + "\n";
        }
        const auto cfg = parse_ios_config(text, "t.ios");
        ASSERT_FALSE(cfg.has_value()) << b.line;
        EXPECT_EQ(cfg.error().to_string(), b.message) << b.line;
    }
}

TEST(ios_config, malformed_line_table_has_at_least_30_rows) {
    EXPECT_GE(std::size(bad_lines), 30U);
}

TEST(ios_config, unknown_section_commands_warn_with_file_and_line) {
    auto cfg =
        parse_ios_config("crypto pki server CA\n frobnicate 3\n auto-rollover 40\n", "ca.ios");
    ASSERT_TRUE(cfg);
    ASSERT_EQ(cfg->warnings.size(), 1U);
    EXPECT_EQ(cfg->warnings[0].to_string(),
              "ca.ios:2:2: warning: frobnicate: unknown command in crypto pki server CA; ignored");
    EXPECT_EQ(cfg->servers[0].auto_rollover, days{40});  // parsing goes on
    auto neg = parse_ios_config("crypto pki trustpoint TP\n no frobnicate\n", "c.ios");
    ASSERT_TRUE(neg);
    ASSERT_EQ(neg->warnings.size(), 1U);
    EXPECT_EQ(neg->warnings[0].to_string(),
              "c.ios:2:2: warning: no frobnicate: unknown command in crypto pki trustpoint TP; "
              "ignored");
}

TEST(ios_config, other_sections_bang_lines_and_unknown_top_level_are_skipped) {
    auto cfg = parse_ios_config(
        "Building configuration...\n!\nhostname R1\ninterface Gi0/0\n lifetime certificate 9000\n"
        " shutdown\n!\ncrypto isakmp policy 10\n hash sha256\ncrypto pki certificate chain CA\n"
        " certificate ca 01\n  3082 0201\n  quit\nend\n",
        "r.ios");
    ASSERT_TRUE(cfg) << cfg.error().to_string();
    EXPECT_TRUE(cfg->servers.empty());
    EXPECT_TRUE(cfg->trustpoints.empty());
    EXPECT_TRUE(cfg->warnings.empty());
}

TEST(ios_config, a_section_ends_at_the_next_unindented_line) {
    auto cfg = parse_ios_config(
        "crypto pki server CA\n auto-rollover 60\n!\n lifetime certificate 9000\n"
        "crypto pki trustpoint TP\n auto-enroll 80\nexit\n",
        "t.ios");
    ASSERT_TRUE(cfg) << cfg.error().to_string();
    EXPECT_EQ(cfg->servers[0].auto_rollover, days{60});
    EXPECT_EQ(cfg->servers[0].cert_lifetime, days{365});  // the 9000 line was outside
    EXPECT_EQ(cfg->trustpoints[0].auto_enroll_percent, 80);
}

TEST(ios_config, exit_ends_a_section_typed_in_configuration_mode) {
    auto cfg = parse_ios_config("crypto pki server CA\n grant auto\n exit\n hash md5\n", "t.ios");
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->servers[0].hash, hash_algorithm::sha256);
}

TEST(ios_config, crlf_tabs_empty_and_non_ascii_input_are_handled) {
    auto crlf = parse_ios_config(
        "crypto pki server CA\r\n\tauto-rollover 365\r\n lifetime cert 600\r\n", "t.ios");
    ASSERT_TRUE(crlf) << crlf.error().to_string();
    EXPECT_EQ(crlf->servers[0].auto_rollover, days{365});
    EXPECT_EQ(crlf->servers[0].cert_lifetime, days{600});
    auto cr = parse_ios_config("crypto pki server CA\r auto-rollover 5\r", "t.ios");
    ASSERT_TRUE(cr);
    EXPECT_EQ(cr->servers[0].auto_rollover, days{5});
    EXPECT_TRUE(parse_ios_config("", "t.ios").has_value());
    auto utf = parse_ios_config(
        "crypto pki server CA\n issuer-name CN=Zürich CA\n"
        " lifetime certificate \xc3\xa9\n",
        "t.ios");
    ASSERT_FALSE(utf);
    EXPECT_EQ(utf.error().message, "lifetime certificate \\xc3\\xa9: expected days 0..7305");
}

TEST(ios_config, a_section_named_twice_in_one_file_is_re_entered) {
    auto cfg = parse_ios_config(
        "crypto pki server CA\n grant auto\ncrypto pki server CA\n auto-rollover\n", "t.ios");
    ASSERT_TRUE(cfg);
    ASSERT_EQ(cfg->servers.size(), 1U);
    EXPECT_EQ(cfg->servers[0].grant, grant_mode::auto_grant);
    EXPECT_EQ(cfg->servers[0].auto_rollover, days{30});
}

TEST(ios_config, exec_commands_pasted_at_top_level_are_skipped_with_a_warning) {
    auto cfg = parse_ios_config("crypto pki server ca-server rollover\n", "t.ios");
    ASSERT_TRUE(cfg);
    EXPECT_TRUE(cfg->servers.empty());
    EXPECT_EQ(cfg->warnings.size(), 1U);
}

TEST(ios_config, no_ip_http_max_connections_restores_5) {
    auto cfg =
        parse_ios_config("ip http max-connections 16\nno ip http max-connections\n", "t.ios");
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->http.max_connections, 5);
}

TEST(ios_config, apply_commands_work_like_section_lines) {
    server_config s;
    s.name = "CA";
    const source_location where{"--set", 0, 0};
    ASSERT_TRUE(apply_server_command(s, "auto-rollover 365", where));
    EXPECT_EQ(s.auto_rollover, days{365});
    auto bad = apply_server_command(s, "lifetime certificate 9000", where);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().message, "lifetime certificate 9000: days must be 0..7305");
    auto unknown = apply_server_command(s, "frobnicate", where);
    ASSERT_FALSE(unknown);
    EXPECT_NE(unknown.error().message.find("not a crypto pki server command"), std::string::npos);
    trustpoint_config t;
    ASSERT_TRUE(apply_trustpoint_command(t, "auto-enroll 60 regenerate", where));
    EXPECT_EQ(t.auto_enroll_percent, 60);
    EXPECT_TRUE(t.regenerate);
    EXPECT_FALSE(apply_trustpoint_command(t, "", where));
}

// Fixtures: real `show running-config` excerpts (tests/data/timers/README.md).
TEST(ios_config, real_running_config_excerpts_parse) {
    const std::string dir = PKISIM_TIMERS_TEST_DATA;
    {
        auto cfg = parse_ios_config(read_file(dir + "/seed002-show-running.txt"), "seed002");
        ASSERT_TRUE(cfg) << cfg.error().to_string();
        ASSERT_EQ(cfg->servers.size(), 1U);
        EXPECT_EQ(cfg->servers[0].name, "ca-server");
        EXPECT_EQ(cfg->servers[0].ca_lifetime, days{1825});
        EXPECT_EQ(cfg->servers[0].cert_lifetime, days{600});
        EXPECT_EQ(cfg->servers[0].auto_rollover, days{30});
    }
    {
        auto cfg = parse_ios_config(read_file(dir + "/lab-dmvpn-msk-ca.txt"), "msk");
        ASSERT_TRUE(cfg) << cfg.error().to_string();
        ASSERT_EQ(cfg->servers.size(), 1U);
        EXPECT_EQ(cfg->servers[0].name, "msk.ru");
        ASSERT_EQ(cfg->trustpoints.size(), 1U);
        EXPECT_EQ(cfg->trustpoints[0].enrollment_url, "http://172.18.0.66:80");
        EXPECT_EQ(cfg->trustpoints[0].subject_name, "O=MSK,C=RU");
        EXPECT_TRUE(cfg->warnings.empty());
    }
    {
        auto cfg = parse_ios_config(read_file(dir + "/iosxe17-ca-server.txt"), "xe17");
        ASSERT_TRUE(cfg) << cfg.error().to_string();
        ASSERT_EQ(cfg->servers.size(), 1U);
        EXPECT_EQ(cfg->servers[0].grant, grant_mode::auto_grant);
        EXPECT_FALSE(cfg->servers[0].shutdown);
        EXPECT_TRUE(cfg->warnings.empty());
    }
    {
        auto cfg = parse_ios_config(read_file(dir + "/lab-r15-ca-and-isakmp.txt"), "r15");
        ASSERT_TRUE(cfg) << cfg.error().to_string();
        ASSERT_EQ(cfg->servers.size(), 1U);
        EXPECT_EQ(cfg->servers[0].db_level, database_level::complete);
        EXPECT_EQ(cfg->servers[0].hash, hash_algorithm::sha256);  // isakmp's hash is not ours
        ASSERT_EQ(cfg->trustpoints.size(), 1U);
        EXPECT_EQ(cfg->trustpoints[0].rsakeypair, "CA");
    }
}

TEST(ios_config, shipped_configs_parse_without_warnings) {
    const std::string dir = PKISIM_CONFIGS_DIR;
    int files = 0;
    for (const auto& sub : std::filesystem::directory_iterator(dir)) {
        if (!sub.is_directory()) {
            continue;
        }
        for (const auto& f : std::filesystem::directory_iterator(sub.path())) {
            if (f.path().extension() != ".ios") {
                continue;
            }
            ++files;
            auto cfg = parse_ios_config(read_file(f.path().string()), f.path().string());
            ASSERT_TRUE(cfg) << cfg.error().to_string();
            EXPECT_TRUE(cfg->warnings.empty())
                << f.path() << ": " << cfg->warnings.front().to_string();
        }
    }
    EXPECT_GE(files, 11);
}

class temp_files : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               fmt::format("pkisim-config-test-{}-{}",
                           ::testing::UnitTest::GetInstance()->random_seed(),
                           reinterpret_cast<std::uintptr_t>(this));
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string write(const std::string& name, const std::string& text) {
        const auto p = dir_ / name;
        std::ofstream(p) << text;
        return p.string();
    }
    std::filesystem::path dir_;
};

TEST_F(temp_files, load_merges_files_and_takes_http_from_the_ra) {
    const auto ca =
        write("ca.ios", "crypto pki server CA\n auto-rollover\nip http max-connections 8\n");
    const auto ra = write("ra.ios", "crypto pki server RA\n mode ra\nip http max-connections 12\n");
    const auto cl = write("cl.ios", "crypto pki trustpoint TP\n auto-enroll 70\n");
    auto cfg = load_ios_config_files({cl, ca, ra});
    ASSERT_TRUE(cfg) << cfg.error().to_string();
    EXPECT_EQ(cfg->servers.size(), 2U);
    EXPECT_EQ(cfg->trustpoints.size(), 1U);
    EXPECT_EQ(cfg->http.max_connections, 12);
    EXPECT_EQ(cfg->find_server("CA")->http_max_connections, 8);
    EXPECT_EQ(cfg->find_server("RA")->http_max_connections, 12);
    EXPECT_EQ(cfg->find_trustpoint("TP")->auto_enroll_percent, 70);
    EXPECT_EQ(cfg->find_trustpoint("XX"), nullptr);
}

TEST_F(temp_files, a_section_defined_in_two_files_is_an_error) {
    const auto a = write("a.ios", "crypto pki trustpoint TP\n auto-enroll 70\n");
    const auto b = write("b.ios", "!\ncrypto pki trustpoint TP\n auto-enroll 80\n");
    auto cfg = load_ios_config_files({a, b});
    ASSERT_FALSE(cfg);
    EXPECT_EQ(cfg.error().to_string(),
              fmt::format("{}:2:1: crypto pki trustpoint TP: already defined at {}:1:1", b, a));
    const auto c = write("c.ios", "crypto pki server CA\n");
    const auto d = write("d.ios", "crypto pki server CA\n");
    EXPECT_FALSE(load_ios_config_files({c, d}));
}

TEST_F(temp_files, a_missing_file_is_an_error_naming_it) {
    auto cfg = load_ios_config_files({(dir_ / "nope.ios").string()});
    ASSERT_FALSE(cfg);
    EXPECT_NE(cfg.error().to_string().find("nope.ios"), std::string::npos);
}

// Fuzz-ish: random bytes and mutated real configs never crash (ASan/UBSan in CI).
TEST(ios_config, random_bytes_and_mutated_configs_never_crash) {
    std::mt19937_64 rng{20261123};
    const std::string seed_text =
        read_file(std::string{PKISIM_CONFIGS_DIR} + "/seed002/ca.ios") +
        read_file(std::string{PKISIM_CONFIGS_DIR} + "/seed002/client.ios");
    const std::string alphabet =
        "crypto pki server trustpoint lifetime auto-rollover 0123456789 \n\t\r!-";
    int parsed = 0;
    for (int i = 0; i < 3000; ++i) {
        std::string text;
        switch (i % 3) {
            case 0: {
                const auto n = rng() % 400;
                for (std::size_t k = 0; k < n; ++k) {
                    text += static_cast<char>(rng() % 256);
                }
                break;
            }
            case 1: {
                const auto n = rng() % 400;
                for (std::size_t k = 0; k < n; ++k) {
                    text += alphabet[rng() % alphabet.size()];
                }
                break;
            }
            default: {
                text = seed_text;
                const int edits = 1 + static_cast<int>(rng() % 8);
                for (int e = 0; e < edits && !text.empty(); ++e) {
                    const auto pos = rng() % text.size();
                    switch (rng() % 4) {
                        case 0:
                            text[pos] = static_cast<char>(rng() % 256);
                            break;
                        case 1:
                            text.erase(pos, rng() % 20);
                            break;
                        case 2:
                            text.insert(pos, std::string(rng() % 30, '9'));
                            break;
                        default:
                            text.insert(pos, "\n auto-rol");
                            break;
                    }
                }
                break;
            }
        }
        auto cfg = parse_ios_config(text, "fuzz");
        if (cfg) {
            ++parsed;
            for (const auto& w : cfg->warnings) {
                EXPECT_FALSE(w.to_string().empty());
            }
        } else {
            EXPECT_EQ(cfg.error().to_string().rfind("fuzz:", 0), 0U) << cfg.error().to_string();
        }
    }
    EXPECT_GT(parsed, 0);
}

}  // namespace

TEST(config_issue9, misspelled_crypto_pki_keyword_is_a_warning_with_a_suggestion) {
    const std::string text =
        "hostname GM\n"
        "crypto pki trustpiont GETVPN\n"
        " enrollment url http://ra\n"
        " auto-enroll 70\n"
        "crypto pki sever ca\n"
        " auto-rollover 365\n";
    auto cfg = pkisim::timers::parse_ios_config(text, "c.ios");
    ASSERT_TRUE(cfg);
    EXPECT_TRUE(cfg->trustpoints.empty());
    EXPECT_TRUE(cfg->servers.empty());
    ASSERT_EQ(cfg->warnings.size(), 2u);
    EXPECT_EQ(cfg->warnings[0].where.to_string(), "c.ios:2:12");
    EXPECT_NE(cfg->warnings[0].message.find("did you mean `crypto pki trustpoint`"),
              std::string::npos);
    EXPECT_EQ(cfg->warnings[1].where.to_string(), "c.ios:5:12");
    EXPECT_NE(cfg->warnings[1].message.find("`crypto pki server`"), std::string::npos);
}

TEST(config_issue9, two_devices_in_one_file_keep_their_own_max_connections_and_warn) {
    const std::string text =
        "hostname HUB\n"
        "crypto pki server hub\n"
        " auto-rollover 365\n"
        "ip http max-connections 10\n"
        "hostname SPOKE\n"
        "ip http max-connections 5\n";
    auto cfg = pkisim::timers::parse_ios_config(text, "two.ios");
    ASSERT_TRUE(cfg);
    ASSERT_EQ(cfg->servers.size(), 1u);
    EXPECT_EQ(cfg->servers[0].http_max_connections, 10);
    ASSERT_EQ(cfg->warnings.size(), 1u);
    EXPECT_EQ(cfg->warnings[0].where.line, 6);
    EXPECT_NE(cfg->warnings[0].message.find("two.ios:4:1"), std::string::npos)
        << cfg->warnings[0].message;
    // One device repeating the command: the later line applies, and it is said.
    auto one = pkisim::timers::parse_ios_config(
        "crypto pki server a\nip http max-connections 10\nip http max-connections 3\n", "o.ios");
    ASSERT_TRUE(one);
    EXPECT_EQ(one->servers[0].http_max_connections, 3);
    EXPECT_EQ(one->warnings.size(), 1u);
}
