// Parsers of what IOS prints (timers/ios_show.hpp), on the composed captures of
// tests/data/inventory/ and on layouts taken from public captures (tests/data/inventory/README.md).
#include "pkisim/timers/ios_show.hpp"

#include <fstream>
#include <random>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace pkisim::timers {
namespace {

const std::string data_dir = std::string{PKISIM_TIMERS_TEST_DATA} + "/../inventory";

std::string slurp(const std::string& path) {
    std::ifstream in{path, std::ios::binary};
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

time_point at(const char* iso) {
    return parse_iso8601(iso).value();
}

const router_capture& find(const std::vector<router_capture>& rs, std::string_view host) {
    for (const auto& r : rs)
        if (r.hostname == host)
            return r;
    ADD_FAILURE() << "no router " << host;
    return rs.front();
}

TEST(ios_datetime, reads_the_layouts_ios_prints) {
    const zone_offsets none;
    EXPECT_EQ(parse_ios_datetime("02:19:00 UTC Jul 4 2029", none).value(),
              at("2029-07-04T02:19:00Z"));
    // show clock: not authoritative '*', weekday, milliseconds.
    EXPECT_EQ(parse_ios_datetime("*10:15:30.118 UTC Fri Mar 2 2029", none).value(),
              at("2029-03-02T10:15:30.118Z"));
    EXPECT_EQ(parse_ios_datetime(".10:15:30.5 UTC Fri Mar 2 2029", none).value(),
              at("2029-03-02T10:15:30.500Z"));
    // Built-in unambiguous zones: local - offset.
    EXPECT_EQ(parse_ios_datetime("00:49:29 PDT Jun 20 2011", none).value(),
              at("2011-06-20T07:49:29Z"));
    EXPECT_EQ(parse_ios_datetime("23:54:00 CEST Aug 13 2029", none).value(),
              at("2029-08-13T21:54:00Z"));
}

TEST(ios_datetime, an_ambiguous_zone_needs_the_routers_clock_timezone) {
    auto bad = parse_ios_datetime("21:58:50 IST Nov 10 2021", {});
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().find("clock timezone"), std::string::npos) << bad.error();
    const auto india = zone_offsets_from_config("hostname r\nclock timezone IST 5 30\n");
    EXPECT_EQ(parse_ios_datetime("21:58:50 IST Nov 10 2021", india).value(),
              at("2021-11-10T16:28:50Z"));
    // The router's own line wins over the built-in table.
    const auto odd = zone_offsets_from_config("clock timezone EST 10 0\n");
    EXPECT_EQ(parse_ios_datetime("10:00:00 EST Jan 1 2030", odd).value(),
              at("2030-01-01T00:00:00Z"));
}

TEST(ios_datetime, rejects_what_is_not_a_time) {
    for (const char* s :
         {"", "09:00:00 UTC", "25:00:00 UTC Jan 1 2030", "09:00 UTC Jan 1 2030",
          "09:00:00 UTC Foo 1 2030", "09:00:00 UTC Feb 30 2030", "09:00:00 UTC Jan 1 2030 extra"})
        EXPECT_FALSE(parse_ios_datetime(s, {})) << s;
}

TEST(zone_offsets, clock_timezone_and_summer_time_as_ios_defines_them) {
    const auto z = zone_offsets_from_config(
        "clock timezone NST -3 30\nclock summer-time NDT recurring 2 Sun Mar 2:00 1 Sun Nov "
        "2:00\n");
    EXPECT_EQ(z.at("NST"), -(3 * 60 + 30));
    EXPECT_EQ(z.at("NDT"), -(3 * 60 + 30) + 60);  // summer offset default 60 minutes
    const auto z2 = zone_offsets_from_config(
        "clock timezone LHST 10 30\nclock summer-time LHDT recurring 1 Sun Oct 2:00 1 Sun Apr 2:00 "
        "30\n");
    EXPECT_EQ(z2.at("LHDT"), 10 * 60 + 30 + 30);
}

TEST(ios_countdown, leading_fields_dropped_and_padded_hours) {
    EXPECT_EQ(parse_ios_countdown("48.241"), duration{48'241});
    EXPECT_EQ(parse_ios_countdown("4:33.164"), duration{4 * 60'000 + 33'164});
    EXPECT_EQ(parse_ios_countdown("5:54:30.889"), duration{(5 * 3600 + 54 * 60 + 30) * 1000 + 889});
    EXPECT_EQ(parse_ios_countdown("291d23:54:53.214"),
              days{291} + hours{23} + minutes{54} + seconds{53} + duration{214});
    EXPECT_EQ(parse_ios_countdown("1094d 5:21:45.573"),
              days{1094} + hours{5} + minutes{21} + seconds{45} + duration{573});
    EXPECT_FALSE(parse_ios_countdown("abc"));
}

TEST(parse_captures, many_routers_in_one_file_split_by_prompts) {
    const std::string path = data_dir + "/fleet/spokes.txt";
    const auto rs = parse_captures(slurp(path), path);
    ASSERT_EQ(rs.size(), 6u);
    for (const auto& r : rs) {
        EXPECT_TRUE(r.has_running_config) << r.hostname;
        EXPECT_TRUE(r.has_certificates) << r.hostname;
        EXPECT_TRUE(r.has_timers) << r.hostname;
        EXPECT_TRUE(r.problems.empty()) << r.hostname << ": " << r.problems.front().to_string();
        ASSERT_TRUE(r.clock) << r.hostname;
    }
    const auto& s114 = find(rs, "spoke-114");
    EXPECT_EQ(*s114.clock, at("2029-03-02T10:15:30.118Z"));
    ASSERT_EQ(s114.certificates.size(), 2u);
    EXPECT_EQ(s114.certificates[0].kind, shown_cert_kind::id);
    EXPECT_EQ(s114.certificates[0].serial, "2A");
    EXPECT_EQ(s114.certificates[0].subject, "spoke-114");
    EXPECT_EQ(*s114.certificates[0].start, at("2028-05-19T09:00:00Z"));
    EXPECT_EQ(*s114.certificates[0].end, at("2030-01-09T09:00:00Z"));
    EXPECT_EQ(s114.certificates[1].kind, shown_cert_kind::ca);
    EXPECT_EQ(s114.certificates[1].trustpoints, std::vector<std::string>{"GETVPN"});
    ASSERT_FALSE(s114.timers.empty());
    EXPECT_EQ(s114.timers[0].name, "SHADOW GETVPN");
    EXPECT_EQ(s114.timers[0].section, "PKI Timers");
    EXPECT_EQ(s114.timers[0].at, at("2029-07-13T09:00:00Z"));

    // CET with summer time, and a --More-- prompt in the middle of the block.
    const auto& s115 = find(rs, "spoke-115");
    EXPECT_EQ(*s115.clock, at("2029-03-02T10:18:30.118Z"));
    EXPECT_EQ(*s115.certificates[0].start, at("2028-09-01T12:00:00Z"));  // 14:00 CEST
    EXPECT_EQ(*s115.certificates[0].end, at("2030-01-09T09:00:00Z"));    // 10:00 CET
    // A date wrapped by the terminal.
    const auto& s116 = find(rs, "spoke-116");
    EXPECT_EQ(*s116.certificates[0].end, at("2029-11-22T10:00:00Z"));
    EXPECT_EQ(*s116.certificates[0].renew, at("2029-05-26T10:00:00Z"));
    // IST resolved by the router's own `clock timezone IST 5 30`.
    const auto& s119 = find(rs, "spoke-119");
    EXPECT_EQ(*s119.certificates[0].start, at("2028-11-05T06:30:00Z"));
    // A pending request is a certificate block of its own.
    const auto& s118 = find(rs, "spoke-118");
    ASSERT_EQ(s118.certificates.size(), 3u);
    EXPECT_EQ(s118.certificates[0].status, "Pending");
    EXPECT_EQ(s118.certificates[0].trustpoints, std::vector<std::string>{"GETVPN"});
}

TEST(parse_captures, one_router_without_prompts_recognised_by_content) {
    const std::string path = data_dir + "/fleet/dmvpn-7.log";
    const auto rs = parse_captures(slurp(path), path);
    ASSERT_EQ(rs.size(), 1u);
    const auto& r = rs[0];
    EXPECT_EQ(r.hostname, "dmvpn-7");  // from `hostname` in its config
    ASSERT_TRUE(r.clock);
    EXPECT_EQ(*r.clock, at("2029-03-02T10:35:30.118Z"));  // 05:35:30 EST
    EXPECT_TRUE(r.has_running_config);
    ASSERT_EQ(r.certificates.size(), 2u);
    EXPECT_EQ(*r.certificates[0].start, at("2028-10-15T08:30:00Z"));
    ASSERT_FALSE(r.timers.empty());
    const auto st = derive_router_state(r, "");
    EXPECT_EQ(st.phase, router_phase::current);
    EXPECT_EQ(st.trustpoint.name, "DMVPN");
    EXPECT_EQ(st.trustpoint.auto_enroll_percent, 80);
    EXPECT_TRUE(st.trustpoint.regenerate);
    EXPECT_EQ(st.trustpoint.retry_period, minutes{5});
}

TEST(parse_captures, the_ca_server_and_its_timers) {
    const std::string path = data_dir + "/ca/hub-ca.txt";
    const auto rs = parse_captures(slurp(path), path);
    ASSERT_EQ(rs.size(), 1u);
    const auto& r = rs[0];
    ASSERT_EQ(r.servers.size(), 1u);
    const auto& s = r.servers[0];
    EXPECT_EQ(s.name, "HUB-CA");
    EXPECT_EQ(s.granting, "manual");
    EXPECT_FALSE(s.ra_mode);
    EXPECT_EQ(*s.ca_expiration, at("2030-01-09T09:00:00Z"));
    EXPECT_EQ(*s.overlap, days{30});
    EXPECT_EQ(*s.autorollover_timer, at("2029-12-10T09:00:00Z"));
    EXPECT_TRUE(s.rollover_status.empty());
    ASSERT_EQ(r.timers.size(), 3u);
    EXPECT_EQ(r.timers[1].name, "CS SHADOW CERT GENERATION");
    auto cfg = capture_config(r);
    ASSERT_TRUE(cfg) << cfg.error().to_string();
    ASSERT_EQ(cfg->servers.size(), 1u);
    EXPECT_EQ(cfg->servers[0].auto_rollover, days{30});
    EXPECT_EQ(cfg->servers[0].cert_lifetime, days{600});
    // Line numbers are the file's, not the block's.
    EXPECT_EQ(cfg->servers[0].where.line, 6);
}

TEST(derive_router_state, each_phase_from_its_captures) {
    const std::string path = data_dir + "/fleet/spokes.txt";
    const auto rs = parse_captures(slurp(path), path);
    const auto s114 = derive_router_state(find(rs, "spoke-114"), "");
    EXPECT_EQ(s114.phase, router_phase::current);
    EXPECT_EQ(s114.trustpoint.name, "GETVPN");
    EXPECT_EQ(s114.trustpoint.auto_enroll_percent, 70);
    EXPECT_EQ(s114.ca->not_after, at("2030-01-09T09:00:00Z"));
    EXPECT_EQ(*s114.printed_shadow_timer, at("2029-07-13T09:00:00Z"));
    const auto s118 = derive_router_state(find(rs, "spoke-118"), "");
    EXPECT_EQ(s118.phase, router_phase::pending);
    ASSERT_TRUE(s118.id);  // the certificate it is renewing
    ASSERT_TRUE(s118.next_poll);
    EXPECT_EQ(*s118.next_poll, at("2029-03-02T10:25:12Z"));

    const std::string rpath = data_dir + "/rollover/spoke-301.txt";
    const auto rr = parse_captures(slurp(rpath), rpath);
    ASSERT_EQ(rr.size(), 1u);
    const auto s301 = derive_router_state(rr[0], "");
    EXPECT_EQ(s301.phase, router_phase::rollover);
    EXPECT_EQ(s301.rollover_ca->not_before, at("2030-01-09T09:00:00Z"));
    EXPECT_EQ(s301.rollover_id->not_after, at("2031-09-01T09:00:00Z"));
    const std::string cpath = data_dir + "/rollover/hub-ca.txt";
    const auto cr = parse_captures(slurp(cpath), cpath);
    EXPECT_EQ(cr[0].servers[0].rollover_status, "available for rollover");
    EXPECT_EQ(*cr[0].servers[0].rollover_ca_expiration, at("2035-01-08T09:00:00Z"));
}

TEST(derive_router_state, a_router_without_running_config_is_listed_not_guessed) {
    const std::string path = data_dir + "/fleet/spoke-120.txt";
    const auto rs = parse_captures(slurp(path), path);
    ASSERT_EQ(rs.size(), 1u);
    const auto st = derive_router_state(rs[0], "");
    EXPECT_EQ(st.hostname, "spoke-120");
    EXPECT_EQ(st.phase, router_phase::unknown);
    ASSERT_FALSE(st.problems.empty());
    bool says_config = false;
    for (const auto& p : st.problems)
        says_config |= p.find("show running-config") != std::string::npos;
    EXPECT_TRUE(says_config);
}

TEST(parse_captures, what_cannot_be_read_is_reported_with_file_and_line) {
    const std::string text =
        "r1#show clock\n"
        "10:00:00.000 UTC Mon Jan 7 2030\n"
        "r1#show crypto pki certificates\n"
        "Certificate\n"
        "  Status: Available\n"
        "  Validity Date:\n"
        "    start date: 10:00:00 XYZ Jan 7 2029\n"
        "    end   date: 10:00:00 UTC Jan 7 2031\n"
        "  Associated Trustpoints: TP\n"
        "r1#show crypto pki timers\n"
        "PKI Timers\n"
        "  | 1d 0:00:00.000  (2030-13-07T10:00:00Z) RENEW TP\n";
    const auto rs = parse_captures(text, "caps.txt");
    ASSERT_EQ(rs.size(), 1u);
    ASSERT_EQ(rs[0].problems.size(), 3u);
    EXPECT_EQ(rs[0].problems[0].where.to_string(), "caps.txt:7:1");
    EXPECT_NE(rs[0].problems[0].message.find("XYZ"), std::string::npos);
    EXPECT_EQ(rs[0].problems[1].where.line, 4);  // the certificate has no start date
    EXPECT_EQ(rs[0].problems[2].where.line, 12);
}

TEST(parse_captures, public_capture_layouts) {
    // Layout of networktocode/ntc-templates cisco_ios_show_crypto_pki_certificates_1.raw (a
    // renew date, two CA certificates, Storage lines); dates as there, names ours.
    const std::string ntc =
        "Certificate\n"
        "  Status: Available\n"
        "  Certificate Serial Number (hex): 6A0000000B\n"
        "  Certificate Usage: General Purpose\n"
        "  Issuer: \n"
        "    cn=Issuing CA\n"
        "  Subject:\n"
        "    Name: R1.example.net\n"
        "    hostname=R1.example.net\n"
        "  CRL Distribution Points: \n"
        "    http://cdp.example.net/crl/issuing-ca.crl\n"
        "  Validity Date: \n"
        "    start date: 09:17:52 UTC Jun 22 2022\n"
        "    end   date: 09:17:52 UTC Jun 22 2023\n"
        "    renew date: 09:19:52 UTC Apr 10 2023\n"
        "  Associated Trustpoints: issuing-ca \n"
        "  Storage: nvram:IssuingCA#B.cer\n"
        "\n"
        "CA Certificate\n"
        "  Status: Available\n"
        "  Certificate Serial Number (hex): 1F\n"
        "  Validity Date: \n"
        "    start date: 00:00:00 UTC Nov 9 2018\n"
        "    end   date: 00:00:00 UTC Nov 9 2028\n"
        "  Associated Trustpoints: issuing-ca\n";
    auto rs = parse_captures(ntc, "ntc.raw");
    ASSERT_EQ(rs.size(), 1u);
    ASSERT_EQ(rs[0].certificates.size(), 2u);
    EXPECT_EQ(*rs[0].certificates[0].renew, at("2023-04-10T09:19:52Z"));
    EXPECT_EQ(rs[0].certificates[0].subject, "R1.example.net");
    EXPECT_TRUE(rs[0].problems.empty());

    // Layout of genieparser's ShowCryptoPkiCertificateVerbose golden_output_csr (verbose: key
    // info, fingerprints, extensions, install time), with its IST zone: unreadable without the
    // router's `clock timezone` line, and said so.
    const std::string genie =
        "Certificate\n"
        "  Status: Available\n"
        "  Version: 3\n"
        "  Certificate Serial Number (hex): 02\n"
        "  Certificate Usage: General Purpose\n"
        "  Issuer: \n"
        "    cn=ROOT\n"
        "  Subject:\n"
        "    Name: pki-reg7\n"
        "    Serial Number: 9HI3W7WA3K8\n"
        "  Validity Date: \n"
        "    start date: 21:58:50 IST Nov 10 2021\n"
        "    end   date: 21:58:50 IST Nov 10 2022\n"
        "  Subject Key Info:\n"
        "    Public Key Algorithm: rsaEncryption\n"
        "    RSA Public Key: (2048 bit)\n"
        "  Signature Algorithm: SHA1 with RSA Encryption\n"
        "  Fingerprint MD5: D9E4599D C573463B 07F2FBD6 620DB523 \n"
        "  X509v3 extensions:\n"
        "    X509v3 Key Usage: A0000000\n"
        "      Digital Signature\n"
        "      Key Encipherment\n"
        "  Cert install time: 21:58:51 IST Nov 10 2021 \n"
        "  Associated Trustpoints: client \n"
        "  Key Label: client\n";
    rs = parse_captures(genie, "genie.txt");
    ASSERT_EQ(rs.size(), 1u);
    EXPECT_EQ(rs[0].certificates.size(), 1u);
    EXPECT_EQ(rs[0].problems.size(), 3u);  // start, end, and "no readable validity"
    rs = parse_captures(
        "R#show running-config\nclock timezone IST 5 30\nend\nR#show crypto pki "
        "certificates verbose\n" +
            genie,
        "genie.txt");
    ASSERT_EQ(rs.size(), 1u);
    EXPECT_TRUE(rs[0].problems.empty());
    EXPECT_EQ(*rs[0].certificates[0].start, at("2021-11-10T16:28:50Z"));

    // Older images print timers without the ISO time: capture time + countdown.
    rs = parse_captures(
        "R#sh clock\n*09:00:00.000 UTC Tue Jan 1 2030\nR#sh cry pki tim\nPKI Timers\n"
        "|    7:03:31.995\n  |    7:03:31.995  RENEW GETVPN\n",
        "old.txt");
    ASSERT_EQ(rs[0].timers.size(), 1u);
    EXPECT_EQ(rs[0].timers[0].name, "RENEW GETVPN");
    EXPECT_EQ(rs[0].timers[0].at, at("2030-01-01T16:03:31.995Z"));
    EXPECT_FALSE(rs[0].clock_authoritative);
}

TEST(merge_same_router, one_router_across_files_is_one_router) {
    auto a = parse_captures(
        "r1#show clock\n10:00:00.000 UTC Mon Jan 7 2030\nr2#show clock\n10:01:00.000 UTC Mon Jan 7 "
        "2030\nr1#show crypto pki certificates\nCA Certificate\n  Status: Available\n  Validity "
        "Date:\n    start date: 00:00:00 UTC Jan 1 2029\n    end   date: 00:00:00 UTC Jan 1 "
        "2032\n  Associated Trustpoints: TP\n",
        "a.txt");
    auto b = parse_captures(
        "r1#show running-config\ncrypto pki trustpoint TP\n enrollment url http://ca:80\n "
        "auto-enroll 60\nend\n",
        "b.txt");
    ASSERT_EQ(a.size(), 3u);  // r1, r2, r1 again
    for (auto& r : b)
        a.push_back(std::move(r));
    const auto m = merge_same_router(std::move(a));
    ASSERT_EQ(m.size(), 2u);
    EXPECT_EQ(m[0].hostname, "r1");
    EXPECT_TRUE(m[0].clock);
    EXPECT_TRUE(m[0].has_running_config);
    EXPECT_EQ(m[0].certificates.size(), 1u);
    const auto st = derive_router_state(m[0], "");
    EXPECT_EQ(st.trustpoint.auto_enroll_percent, 60);
    EXPECT_EQ(st.phase, router_phase::no_certificate);  // a CA certificate, no ID certificate yet
    auto cfg = capture_config(m[0]);
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->trustpoints[0].where.file, "b.txt");
}

TEST(printed_timer_disagreements, the_observed_ninety_percent_shadow_is_reported) {
    const std::string path = data_dir + "/fleet/spokes.txt";
    const auto rs = parse_captures(slurp(path), path);
    for (const auto& r : rs) {
        const auto st = derive_router_state(r, "");
        const auto d = printed_timer_disagreements(st, minutes{10});
        if (r.hostname == "spoke-117") {
            ASSERT_EQ(d.size(), 1u);
            EXPECT_NE(d[0].find("SHADOW timer 2029-07-10T21:00:00Z"), std::string::npos) << d[0];
            EXPECT_NE(d[0].find(path + ":"), std::string::npos) << d[0];
        } else {
            EXPECT_TRUE(d.empty()) << r.hostname << ": " << d.front();
        }
    }
}

// Property: for random certificates, auto-enroll and zones, the capture IOS would print (its
// timers from client_renewal) reads back to the same state with no disagreement, and moving
// the printed timer by more than the tolerance gives exactly one.
TEST(printed_timer_disagreements, agree_with_client_renewal_and_catch_any_shift) {
    std::mt19937_64 rng{14};
    const time_point ca_nb = at("2026-02-03T04:05:06Z");
    const time_point ca_na = ca_nb + days{1825};
    const struct {
        const char* name;
        int offset;
        const char* line;
    } zones[] = {{"UTC", 0, ""},
                 {"IST", 330, "clock timezone IST 5 30\n"},
                 {"NZST", 720, ""},
                 {"PST", -480, "clock timezone PST -8\n"}};
    for (int k = 0; k < 200; ++k) {
        const int pct = 1 + static_cast<int>(rng() % 100);
        const auto z = zones[rng() % 4];
        const time_point nb = ca_nb + seconds{static_cast<long long>(rng() % (1700LL * 86400))};
        const time_point na = std::min(nb + days{200 + static_cast<int>(rng() % 700)}, ca_na);
        const time_point now = nb + seconds{60};
        const auto rp = client_renewal(pct, true, {nb, na}, ca_na);
        auto local = [&](time_point t) {
            // IOS prints whole seconds.
            const auto lt = date::floor<seconds>(t) + minutes{z.offset};
            const auto d = date::floor<days>(lt);
            const date::year_month_day ymd{d};
            const date::hh_mm_ss<seconds> hms{lt - d};
            static const char* mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
            return fmt::format("{:02}:{:02}:{:02} {} {} {} {}", hms.hours().count(),
                               hms.minutes().count(), hms.seconds().count(), z.name,
                               mon[unsigned{ymd.month()} - 1], unsigned{ymd.day()},
                               int{ymd.year()});
        };
        const bool shift = k % 2 == 1;
        const time_point printed = date::floor<seconds>(rp.at) + (shift ? minutes{11} : minutes{0});
        const std::string text = fmt::format(
            "r{0}#show clock\n{1}\nr{0}#show running-config\n{2}crypto pki trustpoint TP\n"
            " enrollment url http://ca:80\n auto-enroll {3}\nend\nr{0}#show crypto pki "
            "certificates\nCertificate\n  Status: Available\n  Validity Date:\n    start date: "
            "{4}\n    end   date: {5}\n  Associated Trustpoints: TP\nCA Certificate\n  Status: "
            "Available\n  Validity Date:\n    start date: {6}\n    end   date: {7}\n  Associated "
            "Trustpoints: TP\nr{0}#show crypto pki timers\nPKI Timers\n  | 1d 0:00:00.000  ({8}) "
            "{9} TP\n",
            k, local(now), z.line, pct, local(nb), local(na), local(ca_nb), local(ca_na),
            to_iso8601(printed), rp.kind == renewal_kind::shadow ? "SHADOW" : "RENEW");
        const auto rs = parse_captures(text, "prop.txt");
        ASSERT_EQ(rs.size(), 1u);
        ASSERT_TRUE(rs[0].problems.empty()) << rs[0].problems.front().to_string() << "\n" << text;
        const auto st = derive_router_state(rs[0], "");
        ASSERT_EQ(st.phase, router_phase::current) << text;
        EXPECT_EQ(st.id->not_before, date::floor<seconds>(nb));
        EXPECT_EQ(st.ca->not_after, date::floor<seconds>(ca_na));
        const auto d = printed_timer_disagreements(st, minutes{10});
        EXPECT_EQ(d.size(), shift ? 1u : 0u) << text << (d.empty() ? "" : d.front());
    }
}

}  // namespace
}  // namespace pkisim::timers
