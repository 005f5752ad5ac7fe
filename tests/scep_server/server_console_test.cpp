// Issue 11 §2.11: the operator console in the IOS layouts of ios-pki-research.md §1.3, §1.4 and
// §3.2. The rules are checked on several cases each (not one example), and the `show` texts are
// read back with timers::parse_captures, the parser written from real IOS captures (genieparser
// fixtures, lab write-ups), so a layout that drifts from IOS fails here.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <sstream>

#include "pkisim/scep/ca_engine.hpp"
#include "pkisim/scep/crypto.hpp"
#include "pkisim/timers/ios_show.hpp"
#include "pkisim/timers/timeline.hpp"
#include "server_support.hpp"

namespace pkisim::scep {
namespace {

using namespace testing;
using timers::days;
using timers::grant_mode;

struct console_fixture {
    explicit console_fixture(grant_mode grant = grant_mode::manual,
                             std::optional<timers::duration> auto_rollover = std::nullopt) {
        load_providers(false);
        auto o = lab_engine_options(dir.path, grant);
        o.server.auto_rollover = auto_rollover;
        engine = std::make_unique<ca_engine>(o, clock);
    }
    X509* ca() { return engine->ca_certificate(); }
    std::string show(std::string_view what) {
        auto r = engine->admin(fmt::format("show {}", what));
        EXPECT_TRUE(r.ok) << r.text;
        return r.text;
    }
    // Sends a PKCSReq and returns its CertRep status.
    pki_status enroll(const client& c) {
        auto a = engine->pki_operation(c.pkcs_req({ca()}));
        EXPECT_EQ(a.status, 200u) << a.detail;
        std::array<X509*, 1> trusted{ca()};
        auto rep = decode_cert_rep(bytes(a.body.begin(), a.body.end()), c.self_signed.get(), c.key,
                                   trusted);
        EXPECT_TRUE(rep) << a.detail;
        return rep ? rep->status : pki_status::failure;
    }

    temp_dir dir;
    timers::manual_clock clock{test_epoch()};
    std::unique_ptr<ca_engine> engine;
};

// A client for `dn`: the fixture key client1 with a transactionID of its own, so that many
// requests are distinct without generating keys.
client client_for(std::string_view dn, int n) {
    auto c = make_client("client1", dn, "secret");
    c.transaction_id = fmt::format("console-test-{}", n);
    return c;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in{text};
    for (std::string l; std::getline(in, l);)
        out.push_back(l);
    return out;
}

// The rows under "Router certificates requests:" (after the dashed rule).
std::vector<std::string> router_rows(const std::string& show) {
    auto all = lines_of(show);
    std::vector<std::string> rows;
    bool in = false;
    for (std::size_t i = 0; i < all.size(); ++i) {
        if (all[i] == "Router certificates requests:") {
            in = true;
            i += 2;  // header + rule
            continue;
        }
        if (in && !all[i].empty())
            rows.push_back(all[i]);
    }
    return rows;
}

std::string md5_of(const bytes& der) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned n = 0;
    EVP_Digest(der.data(), der.size(), md.data(), &n, EVP_md5(), nullptr);
    std::string out;
    for (unsigned i = 0; i < n; ++i)
        out += fmt::format("{:02X}", md[i]);
    return out;
}

TEST(console, request_rows_are_pending_then_granted_newest_first_in_ios_columns) {
    console_fixture f;
    std::vector<client> clients;
    for (int i = 0; i < 4; ++i) {
        clients.push_back(client_for(fmt::format("CN=router{},O=lab", i + 1), i));
        EXPECT_EQ(f.enroll(clients.back()), pki_status::pending);
    }
    EXPECT_TRUE(f.engine->admin("grant 2").ok);
    EXPECT_TRUE(f.engine->admin("grant 4").ok);
    const auto show = f.show("requests");
    const auto rows = router_rows(show);
    ASSERT_EQ(rows.size(), 4u) << show;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const int id = 4 - static_cast<int>(i);  // newest first (IOS captures list 4, 3, 2, 1)
        const auto& row = rows[i];
        // ReqID in 7 columns, State in 11, Fingerprint in 33, then the subject.
        ASSERT_GE(row.size(), 51u) << row;
        EXPECT_EQ(row.substr(0, 7), fmt::format("{:<7}", id)) << row;
        const std::string state = id % 2 == 0 ? "granted" : "pending";  // issued -> granted
        EXPECT_EQ(row.substr(7, 11), fmt::format("{:<11}", state)) << row;
        // 32 upper-case hex digits, then one blank.
        EXPECT_EQ(row.substr(18, 33), fmt::format("{:<33}", row.substr(18, 32))) << row;
        EXPECT_EQ(row.substr(18, 32).find_first_not_of("0123456789ABCDEF"), std::string::npos);
        EXPECT_EQ(row.substr(51), fmt::format("cn=router{},o=lab", id)) << row;
    }
    EXPECT_EQ(show.find("issued"), std::string::npos) << show;
}

TEST(console, the_request_fingerprint_is_the_md5_of_the_csr) {
    console_fixture f;
    auto c = make_client("client1", "CN=router1,O=lab", "secret");
    EXPECT_EQ(f.enroll(c), pki_status::pending);
    const auto rows = router_rows(f.show("requests"));
    ASSERT_EQ(rows.size(), 1u);
    const auto stored = f.engine->database().requests();
    ASSERT_EQ(stored.size(), 1u);
    EXPECT_EQ(rows[0].substr(18, 32), md5_of(stored[0].csr_der));
}

TEST(console, multi_valued_rdns_are_joined_with_plus_in_both_tables) {
    console_fixture f{grant_mode::auto_grant};
    // What IOS routers request (research §1.3 and the S13 captures): serialNumber and
    // hostname (unstructuredName) in one RDN, sometimes with ipaddress as a third value.
    struct subject_case {
        std::string dn, request_text, certificate_text;
    };
    const std::vector<subject_case> cases = {
        {"serialNumber=67109104+hostname=R15.otus.ru", "serialNumber=67109104+hostname=R15.otus.ru",
         "serialNumber=67109104+hostname=R15.otus.ru"},
        {"serialNumber=67109104+hostname=R15,CN=R15,O=laba,O=ru",
         "serialNumber=67109104+hostname=R15,cn=R15,o=laba,o=ru",
         "serialNumber=67109104+hostname=R15 cn=R15 o=laba o=ru"},
        {"serialNumber=67109152+ipaddress=172.16.5.2+hostname=R18.otus.ru,OU=VPN,C=RU",
         "serialNumber=67109152+ipaddress=172.16.5.2+hostname=R18.otus.ru,ou=VPN,c=RU",
         "serialNumber=67109152+ipaddress=172.16.5.2+hostname=R18.otus.ru ou=VPN c=RU"},
        // A '+' not followed by an attribute keyword is part of the value.
        {"CN=a+b,O=lab", "cn=a+b,o=lab", "cn=a+b o=lab"},
    };
    int n = 0;
    for (const auto& sc : cases) {
        auto c = client_for(sc.dn, ++n);
        EXPECT_EQ(f.enroll(c), pki_status::success) << sc.dn;
    }
    const auto requests = f.show("requests");
    const auto certificates = f.show("certificates");
    for (const auto& sc : cases) {
        EXPECT_NE(requests.find(" " + sc.request_text + "\n"), std::string::npos) << sc.dn << "\n"
                                                                                  << requests;
        EXPECT_NE(certificates.find("  " + sc.certificate_text + "\n"), std::string::npos)
            << sc.dn << "\n"
            << certificates;
    }
    // The issued certificate really has one multi-valued RDN (not a '+' in a value).
    const auto certs = f.engine->database().certificates();
    ASSERT_EQ(certs.size(), cases.size() + 1);
    auto issued = x509_from_der(certs[1].der);
    ASSERT_TRUE(issued);
    const X509_NAME* name = X509_get_subject_name(issued->get());
    ASSERT_EQ(X509_NAME_entry_count(name), 2);
    EXPECT_EQ(X509_NAME_ENTRY_set(X509_NAME_get_entry(name, 0)),
              X509_NAME_ENTRY_set(X509_NAME_get_entry(name, 1)));
}

TEST(console, certificate_date_columns_keep_their_width_with_one_digit_days) {
    console_fixture f{grant_mode::auto_grant};
    // Issue on days with one and two digits, expiring on days with one and two digits (the
    // lifetime is 365 days; the CA ends Dec 31 2032).
    const std::vector<timers::duration> offsets = {days{0}, days{23}, days{35}, days{300},
                                                   days{1090}};
    int n = 0;
    for (auto off : offsets) {
        f.clock.set(test_epoch() + off + timers::hours{n});
        ++n;
        auto c = client_for(fmt::format("CN=r{}", n), n);
        EXPECT_EQ(f.enroll(c), pki_status::success);
    }
    const auto text = f.show("certificates");
    const auto lines = lines_of(text);
    ASSERT_EQ(lines.size(), offsets.size() + 2) << text;  // header, CA, the certificates
    EXPECT_EQ(lines[0], "Serial Issued date              Expire date               Subject Name");
    const auto certs = f.engine->database().certificates();
    bool saw_one_digit = false;
    bool saw_two_digits = false;
    for (std::size_t i = 1; i < lines.size(); ++i) {
        const auto& c = certs[i - 1];
        const auto& l = lines[i];
        const auto issued = timers::to_ios_time(c.not_before);
        const auto expires = timers::to_ios_time(c.not_after);
        (issued.size() == 23 ? saw_one_digit : saw_two_digits) = true;
        // Serial in 8 columns, Issued date in 25, Expire date in 26: the subject always starts
        // at column 59, as in the IOS captures ("...Apr 2 2026  16:57:14 UTC Apr 1 2029   cn=").
        ASSERT_GE(l.size(), 59u) << l;
        EXPECT_EQ(l.substr(0, 8), fmt::format("{:<8X}", c.serial)) << l;
        EXPECT_EQ(l.substr(8, 25), fmt::format("{:<25}", issued)) << l;
        EXPECT_EQ(l.substr(33, 26), fmt::format("{:<26}", expires)) << l;
        EXPECT_NE(l[59], ' ') << l;
    }
    EXPECT_TRUE(saw_one_digit && saw_two_digits) << text;
}

TEST(console, timers_have_expiry_alert_and_crl_sections_and_no_empty_header) {
    for (const auto overlap :
         {std::optional<timers::duration>{}, std::optional<timers::duration>{days{30}}}) {
        console_fixture f{grant_mode::auto_grant, overlap};
        const auto ca_end = not_after(f.ca());
        auto check_round_trip = [&](const std::string& text) {
            // Read back with the parser written from IOS captures: every line is understood.
            auto rs = timers::parse_captures(text, "show-timers");
            EXPECT_EQ(rs.size(), 1u);
            if (rs.empty())
                return std::vector<timers::shown_timer>{};
            EXPECT_TRUE(rs[0].problems.empty())
                << (rs[0].problems.empty() ? "" : rs[0].problems.front().to_string()) << "\n"
                << text;
            return rs[0].timers;
        };
        for (auto at : {test_epoch(), ca_end - days{60} + timers::hours{1}, ca_end - days{31},
                        ca_end - days{3} - timers::hours{5}}) {
            f.clock.set(at);
            f.engine->tick();
            const auto text = f.show("timers");
            SCOPED_TRACE(text);
            // grant auto, no pending request: no PKI Timers section at all.
            EXPECT_EQ(text.find("PKI Timers"), std::string::npos);
            const auto alert = text.find("Expiry Alert Timers\n");
            const auto crl = text.find("CRL Timers\n");
            const auto cs = text.find("CS Timers\n");
            ASSERT_NE(crl, std::string::npos);
            ASSERT_NE(cs, std::string::npos);
            EXPECT_TRUE((alert == std::string::npos || alert < crl) && crl < cs);  // IOS order
            const auto shown = check_round_trip(text);
            bool have_alert = false;
            for (const auto& t : shown) {
                if (t.name == "CS(labca)") {
                    have_alert = true;
                    EXPECT_EQ(t.section, "Expiry Alert Timers");
                    EXPECT_EQ(t.at, *timers::next_expiry_alert(ca_end, at));
                    EXPECT_GE(t.at, ca_end - days{60});
                    EXPECT_LT(t.at, ca_end);
                }
                if (t.name == "CRL EXPIRE cn=labca,o=lab" ||
                    t.name == "CRL UPDATE *cn=labca,o=lab") {
                    EXPECT_EQ(t.section, "CRL Timers");
                }
                EXPECT_GT(t.at, at) << t.name;
            }
            // Without a shadow, the CA's expiry alert; once the shadow exists (30 days before the
            // end) the alerts stop (research §2, S6).
            const bool shadow = overlap && at >= ca_end - *overlap;
            EXPECT_EQ(have_alert, !shadow);
            EXPECT_EQ(alert != std::string::npos, !shadow);
            // Each section's first `|` line is its soonest timer.
            const auto lines = lines_of(text);
            for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
                if (!lines[i].empty() && lines[i][0] != '|' && lines[i][0] != ' ') {
                    std::string soonest;
                    for (std::size_t j = i + 2; j < lines.size() && lines[j].rfind("  |", 0) == 0;
                         ++j) {
                        const auto open = lines[j].find('(');
                        const auto t = lines[j].substr(open, 22);
                        if (soonest.empty() || t < soonest)
                            soonest = t;
                    }
                    EXPECT_NE(lines[i + 1].find(soonest), std::string::npos) << lines[i];
                }
            }
        }
    }
}

TEST(console, a_pending_request_brings_the_pki_timers_section) {
    console_fixture f;
    auto c = make_client();
    EXPECT_EQ(f.enroll(c), pki_status::pending);
    const auto text = f.show("timers");
    EXPECT_EQ(text.rfind("PKI Timers\n|", 0), 0u) << text;
    EXPECT_NE(text.find(") ER EXPIRE 1\n"), std::string::npos) << text;
    EXPECT_TRUE(f.engine->admin("grant 1").ok);
    EXPECT_EQ(f.show("timers").find("PKI Timers"), std::string::npos);
}

TEST(console, expiry_alerts_are_60_days_then_weekly_then_daily) {
    const time_point end = test_epoch() + days{1000};
    using timers::next_expiry_alert;
    EXPECT_EQ(next_expiry_alert(end, test_epoch()), end - days{60});
    EXPECT_EQ(next_expiry_alert(end, end - days{61}), end - days{60});
    // Weekly from the first alert: -60, -53, -46, ... and never later than a week before.
    EXPECT_EQ(next_expiry_alert(end, end - days{60}), end - days{53});
    EXPECT_EQ(next_expiry_alert(end, end - days{50}), end - days{46});
    EXPECT_EQ(next_expiry_alert(end, end - days{12}), end - days{11});
    EXPECT_EQ(next_expiry_alert(end, end - days{10}), end - days{7});
    // The last week: daily.
    EXPECT_EQ(next_expiry_alert(end, end - days{7}), end - days{6});
    EXPECT_EQ(next_expiry_alert(end, end - days{2} - timers::hours{3}), end - days{2});
    EXPECT_EQ(next_expiry_alert(end, end - days{1}), std::nullopt);
    EXPECT_EQ(next_expiry_alert(end, end + days{1}), std::nullopt);
    // Always strictly after now.
    for (int h = 0; h < 24 * 70; h += 7) {
        const auto now = end - days{70} + timers::hours{h};
        if (auto t = next_expiry_alert(end, now)) {
            EXPECT_GT(*t, now);
            EXPECT_LT(*t, end);
        }
    }
}

TEST(console, show_server_reads_back_as_ios_and_keeps_host_paths_out) {
    console_fixture f{grant_mode::manual, days{30}};
    const auto text = f.show("server");
    auto rs = timers::parse_captures(text, "show-server");
    ASSERT_EQ(rs.size(), 1u);
    ASSERT_EQ(rs[0].servers.size(), 1u) << text;
    const auto& s = rs[0].servers[0];
    EXPECT_EQ(s.name, "labca");
    EXPECT_EQ(s.granting, "manual");
    EXPECT_FALSE(s.ra_mode);
    EXPECT_EQ(s.ca_expiration, not_after(f.ca()));
    EXPECT_EQ(s.overlap, days{30});
    EXPECT_EQ(s.autorollover_timer, not_after(f.ca()) - days{30});
    EXPECT_EQ(s.rollover_status, "pending");
    EXPECT_NE(text.find("    Current primary storage dir: nvram:\n"), std::string::npos) << text;
    const std::string folder = (f.dir.path / "data").string();
    EXPECT_EQ(text.find(folder), std::string::npos) << text;
    // The host paths are in the pkisim-only command, under a title that says so.
    const auto extra = f.show("pkisim");
    EXPECT_EQ(extra.rfind("pkisim additions for labca (not IOS output):\n", 0), 0u) << extra;
    EXPECT_NE(extra.find("    Data folder: " + folder + "\n"), std::string::npos) << extra;
    EXPECT_NE(extra.find("    Revoked serials (hex): none\n"), std::string::npos) << extra;
}

TEST(console, revocations_are_listed_in_show_pkisim_not_in_the_ios_table) {
    console_fixture f{grant_mode::auto_grant};
    for (int i = 0; i < 3; ++i) {
        auto c = client_for(fmt::format("CN=r{}", i + 1), i);
        EXPECT_EQ(f.enroll(c), pki_status::success);
    }
    EXPECT_TRUE(f.engine->admin("revoke 2").ok);
    EXPECT_TRUE(f.engine->admin("revoke 4").ok);
    EXPECT_NE(f.show("pkisim").find("    Revoked serials (hex): 2 4\n"), std::string::npos)
        << f.show("pkisim");
    EXPECT_EQ(f.show("certificates").find("revoked"), std::string::npos);
}

}  // namespace
}  // namespace pkisim::scep
