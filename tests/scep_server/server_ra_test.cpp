// RA mode (issue 4 §2; ios-pki-model.md §1 rule 8): this project's CA and an RA in front of it,
// both in process on 127.0.0.1:0 with ONE manual clock; clients are the library's scep_client.
#include <chrono>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "pkisim/scep/client.hpp"
#include "pkisim/scep/ra_engine.hpp"
#include "pkisim/scep/server.hpp"
#include "server_support.hpp"

namespace pkisim::scep {
namespace {

using namespace testing;
using timers::grant_mode;

bool contains(const std::string& text, std::string_view what) {
    return text.find(what) != std::string::npos;
}

struct ra_lab {
    temp_dir dir;
    timers::manual_clock clock{test_epoch()};
    std::unique_ptr<server> ca;
    std::unique_ptr<server> ra;

    ~ra_lab() {
        if (ra)
            ra->stop();
        if (ca)
            ca->stop();
    }

    static http_options quiet_http() {
        http_options h;
        h.listen_address = "127.0.0.1";
        h.port = 0;
        h.quiet = true;
        h.limiter.enabled = false;
        return h;
    }

    void start_ca(grant_mode g) {
        load_providers(false);
        auto e = lab_engine_options(dir.path, g);
        e.data_dir = dir.path / "ca";
        ca = std::make_unique<server>(std::move(e), quiet_http(), clock);
        ca->start();
    }

    engine_options ra_options(grant_mode g, std::string url = {}) const {
        engine_options o;
        o.server.name = "labra";
        o.server.mode_ra = true;
        o.server.grant = g;
        o.data_dir = dir.path / "ra";
        o.passphrase = "ra-passphrase";
        o.challenge = "client-secret";
        o.existing_key_pem = private_key_to_pem(fixture_key("ra"));
        timers::trustpoint_config tp;
        tp.name = "labra";
        tp.enrollment_url =
            url.empty() ? fmt::format("http://127.0.0.1:{}", ca->local_port()) : std::move(url);
        o.ra_trustpoint = tp;
        o.upstream_challenge = "secret";  // the CA's static challenge (lab_engine_options)
        o.upstream_timeout = std::chrono::milliseconds{2000};
        return o;
    }

    void start_ra(grant_mode g, std::string url = {}) {
        ra = std::make_unique<server>(ra_options(g, std::move(url)), quiet_http(), clock);
        ra->start();
    }
    void stop_ra() {
        ra->stop();
        ra.reset();
    }

    std::filesystem::path ca_dir() const { return dir.path / "ca"; }
    std::filesystem::path ra_dir() const { return dir.path / "ra"; }
    std::string ra_url() const {
        return fmt::format("http://127.0.0.1:{}/cgi-bin/pkiclient.exe", ra->local_port());
    }

    scep_client client() const {
        client_options o;
        o.url = ra_url();
        o.connect_timeout = std::chrono::milliseconds{3000};
        o.read_timeout = std::chrono::milliseconds{10000};
        const auto* c = &clock;
        o.now = [c] { return c->now(); };
        return scep_client{std::move(o)};
    }

    // Waits (real time, bounded) until the RA's `show server` or `show pkisim` contains `what`.
    bool wait_ra_shows(std::string_view what) {
        for (int i = 0; i < 100; ++i) {
            if (contains(admin_call(ra_dir(), "show server").text +
                             admin_call(ra_dir(), "show pkisim").text,
                         what))
                return true;
            std::this_thread::sleep_for(std::chrono::milliseconds{100});
        }
        return false;
    }
};

poll_options no_polls() {
    poll_options p;
    p.max_polls = 0;
    p.sleep = [](std::chrono::milliseconds) {};
    return p;
}
poll_options one_poll() {
    poll_options p = no_polls();
    p.max_polls = 1;
    return p;
}

enroll_request router(std::string_view key, std::string_view cn,
                      std::optional<std::string> challenge = "client-secret") {
    enroll_request r;
    r.key = fixture_key(key);
    r.subject = fmt::format("CN={},O=lab", cn);
    r.challenge = std::move(challenge);
    return r;
}

// The CA certificate that issued `cert` (signature check with the CA key).
bool issued_by(X509* cert, X509* ca) {
    return X509_verify(cert, X509_get0_pubkey(ca)) == 1 &&
           X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(ca)) == 0;
}

TEST(ra_subject, adds_ioscs_ra_when_missing_and_keeps_it_when_present) {
    bool added = true;
    EXPECT_EQ(ra_request_subject("ra1", "", &added), "CN=ra1,OU=ioscs RA");
    EXPECT_FALSE(added);
    EXPECT_EQ(ra_request_subject("ra1", "CN=ra,O=lab", &added), "CN=ra,O=lab,OU=ioscs RA");
    EXPECT_TRUE(added);
    EXPECT_EQ(ra_request_subject("ra1", "cn=ra, ou=ioscs RA, o=cisco C=pki", &added),
              "cn=ra, ou=ioscs RA, o=cisco C=pki");
    EXPECT_FALSE(added);
}

TEST(ra_mode, enrolls_its_ra_certificate_at_first_start_and_serves_ca_plus_ra) {
    ra_lab lab;
    lab.start_ca(grant_mode::auto_grant);
    lab.start_ra(grant_mode::auto_grant);

    auto show = admin_call(lab.ra_dir(), "show server");
    ASSERT_TRUE(show.ok);
    EXPECT_TRUE(contains(show.text, "Certificate Server labra:")) << show.text;
    EXPECT_TRUE(contains(show.text, "    State: enabled\n")) << show.text;
    EXPECT_TRUE(contains(show.text, "    Server configured in RA mode\n")) << show.text;
    EXPECT_TRUE(contains(show.text, "    RA cert fingerprint: ")) << show.text;
    EXPECT_TRUE(contains(show.text, "    Issuer name: CN=labra,OU=ioscs RA\n")) << show.text;
    EXPECT_TRUE(
        contains(show.text, fmt::format("    CA cert fingerprint: {}\n",
                                        md5_fingerprint(lab.ca->engine().ca_certificate()))))
        << show.text;
    // The CA issued it (its certificate list has the RA subject).
    EXPECT_TRUE(
        contains(admin_call(lab.ca_dir(), "show certificates").text, "cn=labra ou=ioscs RA"));

    auto c = lab.client();
    auto certs = c.get_ca_cert();
    ASSERT_TRUE(certs) << certs.error().message();
    EXPECT_EQ(certs->content_type, "application/x-x509-ca-ra-cert");
    ASSERT_EQ(certs->certs.size(), 2u);
    EXPECT_TRUE(certs->ra_mode());
    EXPECT_EQ(subject_string(certs->ca.get()), "CN=labca,O=lab");
    EXPECT_EQ(subject_string(certs->encryption.get()), "CN=labra,OU=ioscs RA");
    EXPECT_TRUE(issued_by(certs->encryption.get(), certs->ca.get()));
    EXPECT_TRUE(same_public_key(X509_get0_pubkey(certs->encryption.get()), fixture_key("ra")));

    auto caps = c.get_ca_caps();
    ASSERT_TRUE(caps);
    EXPECT_TRUE(caps->has("POSTPKIOperation"));
    EXPECT_TRUE(caps->has("AES"));
    EXPECT_FALSE(caps->has("GetNextCACert"));  // no shadow known to the RA

    // Model rule 8: GetNextCACert is the IOS 404 while the RA has no rollover certificate.
    auto next = http_get(lab.ra->local_port(),
                         "/cgi-bin/pkiclient.exe?operation=GetNextCACert&message=labra");
    EXPECT_EQ(next.status, 404u);
    EXPECT_EQ(next.header("Server"), "cisco-IOS");
}

TEST(ra_mode, client_enrolls_through_the_ra_and_gets_a_ca_issued_certificate) {
    ra_lab lab;
    lab.start_ca(grant_mode::auto_grant);
    lab.start_ra(grant_mode::auto_grant);
    auto c = lab.client();
    auto caps = c.get_ca_caps().value();
    auto ca = c.get_ca_cert().value();
    auto r = c.enroll(router("client1", "router1"), caps, ca, no_polls());
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->status, pki_status::success);
    EXPECT_EQ(subject_string(r->cert.get()), "CN=router1,O=lab");
    EXPECT_TRUE(issued_by(r->cert.get(), lab.ca->engine().ca_certificate()));
    EXPECT_TRUE(same_public_key(X509_get0_pubkey(r->cert.get()), fixture_key("client1")));
    // The CA saw the request (signed by the RA) and the RA lists it as issued.
    EXPECT_TRUE(contains(admin_call(lab.ca_dir(), "show certificates").text, "cn=router1 o=lab"));
    auto rq = admin_call(lab.ra_dir(), "show requests").text;
    EXPECT_TRUE(contains(rq, "1      granted    ")) << rq;  // IOS: granted, not issued
    EXPECT_TRUE(contains(rq, "cn=router1,o=lab")) << rq;

    // The same PKCSReq again (micromdm re-sends it) gets the same certificate, no new issue.
    auto again = c.enroll(router("client1", "router1"), caps, ca, no_polls());
    ASSERT_TRUE(again) << again.error().message();
    ASSERT_EQ(again->status, pki_status::success);
    EXPECT_EQ(to_der(again->cert.get()), to_der(r->cert.get()));
}

TEST(ra_mode, wrong_challenge_and_grant_none_are_failures_from_the_ra) {
    ra_lab lab;
    lab.start_ca(grant_mode::auto_grant);
    lab.start_ra(grant_mode::auto_grant);
    auto c = lab.client();
    auto caps = c.get_ca_caps().value();
    auto ca = c.get_ca_cert().value();
    auto bad = c.enroll(router("client1", "router1", "wrong"), caps, ca, no_polls());
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, client_error::scep_failure);
    EXPECT_EQ(bad.error().failure, fail_info::bad_request);
    EXPECT_TRUE(contains(bad.error().text, "challenge")) << bad.error().text;
    // Nothing reached the CA.
    EXPECT_FALSE(contains(admin_call(lab.ca_dir(), "show certificates").text, "cn=router1"));

    lab.stop_ra();
    lab.ra = std::make_unique<server>(
        [&] {
            auto o = lab.ra_options(grant_mode::none);
            return o;
        }(),
        ra_lab::quiet_http(), lab.clock);
    lab.ra->start();
    auto c2 = lab.client();
    auto none = c2.enroll(router("client2", "router2"), caps, c2.get_ca_cert().value(), no_polls());
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().code, client_error::scep_failure);
    EXPECT_TRUE(contains(none.error().text, "grant none")) << none.error().text;
}

TEST(ra_mode, ra_certificate_pending_at_a_manual_ca_until_the_ca_grants_it) {
    ra_lab lab;
    lab.start_ca(grant_mode::manual);
    lab.start_ra(grant_mode::auto_grant);
    // Not enrolled yet: clients get 503 saying why, show server says it.
    auto get =
        http_get(lab.ra->local_port(), "/cgi-bin/pkiclient.exe?operation=GetCACert&message=labra");
    EXPECT_EQ(get.status, 503u);
    EXPECT_TRUE(contains(get.body, "RA certificate pending at the CA")) << get.body;
    auto show = admin_call(lab.ra_dir(), "show server").text;
    EXPECT_TRUE(contains(show, "    State: enrolling\n")) << show;
    EXPECT_TRUE(contains(admin_call(lab.ra_dir(), "show pkisim").text,
                         "RA status: RA certificate pending at the CA"));
    EXPECT_FALSE(contains(show, "RA cert fingerprint"));
    auto timers_text = admin_call(lab.ra_dir(), "show timers").text;
    EXPECT_TRUE(contains(timers_text, "POLL labra")) << timers_text;

    auto ca_requests = admin_call(lab.ca_dir(), "show requests").text;
    EXPECT_TRUE(contains(ca_requests, "cn=labra,ou=ioscs RA")) << ca_requests;
    EXPECT_TRUE(admin_call(lab.ca_dir(), "grant all").ok);
    // Nothing happens before the retry period (1 minute) passes on the lab clock...
    std::this_thread::sleep_for(std::chrono::milliseconds{1500});
    EXPECT_FALSE(contains(admin_call(lab.ra_dir(), "show server").text, "RA cert fingerprint"));
    // ...then the RA's tick polls the CA and gets its certificate.
    lab.clock.advance(timers::seconds{61});
    ASSERT_TRUE(lab.wait_ra_shows("RA cert fingerprint"))
        << admin_call(lab.ra_dir(), "show server").text;
    auto c = lab.client();
    auto certs = c.get_ca_cert();
    ASSERT_TRUE(certs) << certs.error().message();
    EXPECT_TRUE(certs->ra_mode());

    // A client request forwarded to the manual CA: PENDING relayed; the client's poll makes the
    // RA poll the CA.
    auto caps = c.get_ca_caps().value();
    auto r = c.enroll(router("client1", "router3"), caps, *certs, no_polls());
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->status, pki_status::pending);
    EXPECT_TRUE(contains(admin_call(lab.ra_dir(), "show requests").text, "granted"));
    auto p = c.poll(r->pending, caps, *certs, one_poll());
    ASSERT_TRUE(p) << p.error().message();
    EXPECT_EQ(p->status, pki_status::pending);
    EXPECT_TRUE(admin_call(lab.ca_dir(), "grant all").ok);
    p = c.poll(r->pending, caps, *certs, one_poll());
    ASSERT_TRUE(p) << p.error().message();
    ASSERT_EQ(p->status, pki_status::success);
    EXPECT_EQ(subject_string(p->cert.get()), "CN=router3,O=lab");
    EXPECT_TRUE(issued_by(p->cert.get(), lab.ca->engine().ca_certificate()));
}

TEST(ra_mode, ra_manual_grant_holds_until_the_ra_operator_grants_then_forwards) {
    ra_lab lab;
    lab.start_ca(grant_mode::auto_grant);
    lab.start_ra(grant_mode::manual);
    auto c = lab.client();
    auto caps = c.get_ca_caps().value();
    auto ca = c.get_ca_cert().value();
    auto r = c.enroll(router("client1", "router4"), caps, ca, no_polls());
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->status, pki_status::pending);
    EXPECT_TRUE(contains(admin_call(lab.ra_dir(), "show requests").text, "1      pending    "));
    EXPECT_FALSE(contains(admin_call(lab.ca_dir(), "show certificates").text, "router4"));

    auto g = admin_call(lab.ra_dir(), "grant 1");
    EXPECT_TRUE(g.ok);
    EXPECT_TRUE(contains(g.text, "% Granted request 1: forwarded, the CA issued serial")) << g.text;
    auto p = c.poll(r->pending, caps, ca, one_poll());
    ASSERT_TRUE(p) << p.error().message();
    ASSERT_EQ(p->status, pki_status::success);
    EXPECT_EQ(subject_string(p->cert.get()), "CN=router4,O=lab");

    // reject: the client's poll gets FAILURE.
    auto r2 = c.enroll(router("client2", "router5"), caps, ca, no_polls());
    ASSERT_TRUE(r2);
    ASSERT_EQ(r2->status, pki_status::pending);
    EXPECT_TRUE(contains(admin_call(lab.ra_dir(), "reject all").text, "% Rejected request 2"));
    auto p2 = c.poll(r2->pending, caps, ca, one_poll());
    ASSERT_FALSE(p2);
    EXPECT_EQ(p2.error().code, client_error::scep_failure);

    // A one-time password from the RA grants at once whatever the grant mode.
    auto pw = admin_call(lab.ra_dir(), "password generate 5").text;
    const auto open = pw.find('(');
    const auto close = pw.find(')');
    ASSERT_NE(open, std::string::npos) << pw;
    auto otp = c.enroll(router("client2", "router6", pw.substr(open + 1, close - open - 1)), caps,
                        ca, no_polls());
    ASSERT_TRUE(otp) << otp.error().message();
    EXPECT_EQ(otp->status, pki_status::success);
}

TEST(ra_mode, restart_keeps_the_ra_certificate_and_pending_requests) {
    ra_lab lab;
    lab.start_ca(grant_mode::auto_grant);
    lab.start_ra(grant_mode::manual);
    const auto fp_line = [&] {
        auto t = admin_call(lab.ra_dir(), "show server").text;
        auto at = t.find("RA cert fingerprint: ");
        return at == std::string::npos ? std::string{} : t.substr(at, t.find('\n', at) - at);
    };
    const auto before = fp_line();
    ASSERT_FALSE(before.empty());
    auto c = lab.client();
    auto caps = c.get_ca_caps().value();
    auto ca = c.get_ca_cert().value();
    auto r = c.enroll(router("client1", "router7"), caps, ca, no_polls());
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, pki_status::pending);

    lab.stop_ra();
    lab.start_ra(grant_mode::manual);
    EXPECT_EQ(fp_line(), before);
    // One RA certificate at the CA: the restart did not enroll again.
    const auto certs = admin_call(lab.ca_dir(), "show certificates").text;
    EXPECT_EQ(certs.find("ou=ioscs RA"), certs.rfind("ou=ioscs RA")) << certs;
    EXPECT_TRUE(contains(admin_call(lab.ra_dir(), "show requests").text, "cn=router7,o=lab"));
    EXPECT_TRUE(contains(admin_call(lab.ra_dir(), "grant all").text, "the CA issued serial"));
    auto c2 = lab.client();
    auto p = c2.poll(r->pending, caps, c2.get_ca_cert().value(), one_poll());
    ASSERT_TRUE(p) << p.error().message();
    ASSERT_EQ(p->status, pki_status::success);

    // The wrong passphrase is refused at start.
    lab.stop_ra();
    auto o = lab.ra_options(grant_mode::manual);
    o.passphrase = "other";
    try {
        server s{std::move(o), ra_lab::quiet_http(), lab.clock};
        ADD_FAILURE() << "started with a wrong passphrase";
    } catch (const startup_error& e) {
        EXPECT_EQ(e.status(), exit_status::wrong_passphrase);
    }
}

TEST(ra_mode, bad_input_keeps_the_ra_serving) {
    ra_lab lab;
    lab.start_ca(grant_mode::auto_grant);
    lab.start_ra(grant_mode::auto_grant);
    const auto port = lab.ra->local_port();
    EXPECT_EQ(pki_post(port, bytes{0x30, 0x03, 0x02, 0x01, 0x01}).status, 400u);
    EXPECT_EQ(pki_post(port, bytes(2000, 0xff)).status, 400u);
    EXPECT_EQ(http_get(port, "/cgi-bin/pkiclient.exe?operation=PKIOperation&message=%%%").status,
              400u);
    // A request encrypted to the CA instead of the RA: FAILURE (not for us), signed by the RA.
    auto c = make_client("client1", "CN=router8,O=lab", "client-secret");
    auto wrong_recipient = pki_post(port, c.pkcs_req({lab.ca->engine().ca_certificate()}));
    EXPECT_EQ(wrong_recipient.status, 200u);
    // GetCRL through the RA: FAILURE with a reason.
    auto scep = lab.client();
    auto caps = scep.get_ca_caps().value();
    auto ca = scep.get_ca_cert().value();
    auto good = scep.enroll(router("client2", "router9"), caps, ca, no_polls());
    ASSERT_TRUE(good) << good.error().message();
    ASSERT_EQ(good->status, pki_status::success);
    auto crl = scep.get_crl({good->cert.get(), fixture_key("client2")}, good->cert.get(), caps, ca);
    ASSERT_FALSE(crl);
    EXPECT_EQ(crl.error().code, client_error::scep_failure);
    EXPECT_FALSE(admin_call(lab.ra_dir(), "frobnicate").ok);
    // `rollover` with no shadow at the CA: the RA asked, got the 404, and keeps serving.
    auto roll = admin_call(lab.ra_dir(), "rollover");
    EXPECT_TRUE(contains(roll.text, "GetNextCACert at the CA: HTTP 404")) << roll.text;
    EXPECT_TRUE(scep.get_ca_cert());
}

TEST(ra_mode, renews_its_ra_certificate_at_its_renew_timer_with_the_same_key) {
    // 100-day certificates under a 1095-day CA: the RA certificate ends before the CA, so the
    // RA trustpoint's auto-enroll 50 is a RENEW timer at day 50 (model §2 timer 1).
    ra_lab lab;
    {
        load_providers(false);
        auto e = lab_engine_options(lab.dir.path, grant_mode::auto_grant);
        e.data_dir = lab.dir.path / "ca";
        e.server.cert_lifetime = timers::days{100};
        lab.ca = std::make_unique<server>(std::move(e), ra_lab::quiet_http(), lab.clock);
        lab.ca->start();
    }
    auto o = lab.ra_options(grant_mode::auto_grant);
    o.ra_trustpoint->auto_enroll = true;
    o.ra_trustpoint->auto_enroll_percent = 50;
    lab.ra = std::make_unique<server>(std::move(o), ra_lab::quiet_http(), lab.clock);
    lab.ra->start();
    auto first = lab.client().get_ca_cert().value();
    const auto first_serial = serial_hex(first.encryption.get());
    EXPECT_EQ(not_after(first.encryption.get()), test_epoch() + timers::days{100});
    EXPECT_TRUE(contains(admin_call(lab.ra_dir(), "show timers").text, "RENEW labra"));

    lab.clock.set(test_epoch() + timers::days{49});
    std::this_thread::sleep_for(std::chrono::milliseconds{1200});
    EXPECT_EQ(serial_hex(lab.client().get_ca_cert().value().encryption.get()), first_serial);
    lab.clock.set(test_epoch() + timers::days{50} + timers::seconds{1});
    ASSERT_TRUE(lab.wait_ra_shows("RA renewal: RA certificate renewed"))
        << admin_call(lab.ra_dir(), "show server").text;
    auto renewed = lab.client().get_ca_cert().value();
    EXPECT_NE(serial_hex(renewed.encryption.get()), first_serial);
    EXPECT_TRUE(same_public_key(X509_get0_pubkey(renewed.encryption.get()), fixture_key("ra")));
    EXPECT_EQ(not_after(renewed.encryption.get()),
              test_epoch() + timers::days{150} + timers::seconds{1});
    // Clients keep enrolling through the renewed RA.
    auto c = lab.client();
    auto r = c.enroll(router("client1", "router10"), c.get_ca_caps().value(), renewed, no_polls());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, pki_status::success);
}

TEST(ra_mode, ca_ra_auto_grants_what_the_ra_forwarded_and_holds_direct_requests) {
    ra_lab lab;
    lab.start_ca(grant_mode::ra_auto);
    // `grant ra-auto` holds the RA's own first (self-signed) request like any other: a one-time
    // password from the CA lets it through at once.
    const auto pw = admin_call(lab.ca_dir(), "password generate 60").text;
    const auto open = pw.find('(');
    ASSERT_NE(open, std::string::npos) << pw;
    auto o = lab.ra_options(grant_mode::manual);
    o.upstream_challenge = pw.substr(open + 1, pw.find(')') - open - 1);
    lab.ra = std::make_unique<server>(std::move(o), ra_lab::quiet_http(), lab.clock);
    lab.ra->start();
    ASSERT_TRUE(contains(admin_call(lab.ra_dir(), "show server").text, "RA cert fingerprint"));

    auto c = lab.client();
    auto caps = c.get_ca_caps().value();
    auto ca = c.get_ca_cert().value();
    auto r = c.enroll(router("client1", "router11"), caps, ca, no_polls());
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->status, pki_status::pending);  // the RA's operator decides first
    auto g = admin_call(lab.ra_dir(), "grant all").text;
    EXPECT_TRUE(contains(g, "forwarded, the CA issued serial")) << g;  // ra-auto: at once
    auto p = c.poll(r->pending, caps, ca, one_poll());
    ASSERT_TRUE(p) << p.error().message();
    ASSERT_EQ(p->status, pki_status::success);
    EXPECT_TRUE(issued_by(p->cert.get(), lab.ca->engine().ca_certificate()));

    // A router that asks the CA directly (not through the RA) is held for the CA's operator.
    client_options direct;
    direct.url = fmt::format("http://127.0.0.1:{}/cgi-bin/pkiclient.exe", lab.ca->local_port());
    const auto* clk = &lab.clock;
    direct.now = [clk] { return clk->now(); };
    scep_client d{std::move(direct)};
    auto dr = d.enroll(router("client2", "router12", "secret"), d.get_ca_caps().value(),
                       d.get_ca_cert().value(), no_polls());
    ASSERT_TRUE(dr) << dr.error().message();
    EXPECT_EQ(dr->status, pki_status::pending);
}

TEST(ra_mode, unreachable_ca_at_start_is_not_fatal_and_answers_503_within_bounds) {
    ra_lab lab;
    lab.start_ca(grant_mode::auto_grant);
    // A port nothing listens on (the CA's, after stopping it).
    const auto url = fmt::format("http://127.0.0.1:{}", lab.ca->local_port());
    lab.ca->stop();
    lab.ca.reset();
    const auto t0 = std::chrono::steady_clock::now();
    lab.start_ra(grant_mode::auto_grant, url);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds{10});
    auto get =
        http_get(lab.ra->local_port(), "/cgi-bin/pkiclient.exe?operation=GetCACert&message=labra");
    EXPECT_EQ(get.status, 503u);
    EXPECT_TRUE(contains(get.body, "CA unreachable")) << get.body;
}

}  // namespace
}  // namespace pkisim::scep

namespace pkisim::scep {
namespace {

using namespace testing;

// Issue 11 §2.1 in RA mode: the CA only sees the RA's signature, so the RA learns revocations
// from the CA's CRL (GetCRL on every renewal). When the CA cannot be asked, the CRL fetched last
// still counts until its nextUpdate; after that renewals are refused, never forwarded blind.
TEST(ra_mode, renewals_through_the_ra_follow_the_cas_crl_even_when_the_ca_is_gone) {
    ra_lab lab;
    lab.start_ca(grant_mode::auto_grant);
    lab.start_ra(grant_mode::auto_grant);
    auto c = lab.client();
    auto caps = c.get_ca_caps().value();
    auto ca = c.get_ca_cert().value();
    auto first = [&](std::string_view key, std::string_view cn) {
        auto r = c.enroll(router(key, cn), caps, ca, no_polls());
        EXPECT_TRUE(r && r->status == pki_status::success);
        return r ? std::move(r->cert) : nullptr;
    };
    auto renew = [&](X509* cert, std::string_view key, std::string_view cn) {
        enroll_request r = router(key, cn, std::nullopt);
        r.renew_cert = cert;
        r.renew_key = fixture_key(key);
        return c.enroll(r, caps, ca, no_polls());
    };
    auto refused = [](const client_result<enroll_result>& r) {
        return !r && r.error().code == client_error::scep_failure &&
               r.error().failure == fail_info::bad_request;
    };
    const auto a = first("client1", "router1");
    const auto b = first("client2", "router2");
    const auto d = first("rollover1", "router3");
    ASSERT_TRUE(a && b && d);

    // The CA's CRL does not list a: the renewal is forwarded and issued.
    auto a2 = renew(a.get(), "client1", "router1");
    ASSERT_TRUE(a2) << a2.error().message();
    ASSERT_EQ(a2->status, pki_status::success);
    EXPECT_TRUE(
        contains(admin_call(lab.ra_dir(), "show pkisim").text, "CA's CRL (renewal checks)"));

    // Revoked at the CA, the RA not told: refused by the RA, nothing reaches the CA.
    ASSERT_TRUE(admin_call(lab.ca_dir(), fmt::format("revoke {}", serial_hex(b.get()))).ok);
    const auto issued_before = admin_call(lab.ca_dir(), "show certificates").text;
    EXPECT_TRUE(refused(renew(b.get(), "client2", "router2")));
    EXPECT_EQ(admin_call(lab.ca_dir(), "show certificates").text, issued_before);

    // The CA goes away: the CRL fetched last still refuses b and lets d through (pending: the
    // RA cannot forward it now).
    lab.ca->stop();
    EXPECT_TRUE(refused(renew(b.get(), "client2", "router2")));
    auto d2 = renew(d.get(), "rollover1", "router3");
    ASSERT_TRUE(d2) << d2.error().message();
    EXPECT_EQ(d2->status, pki_status::pending);

    // Past that CRL's nextUpdate (`lifetime crl`) nothing proves a2 good: refused.
    lab.clock.advance(lab_server_config(grant_mode::auto_grant).crl_lifetime + timers::hours{1});
    EXPECT_TRUE(refused(renew(a2->cert.get(), "client1", "router1")));
}

}  // namespace
}  // namespace pkisim::scep
