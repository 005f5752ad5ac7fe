// The RA through a full CA rollover (issue 4 §2; ios-pki-model.md §1 rules 3–8): this
// project's CA (`grant ra-auto`, auto-rollover 30 days) and an RA in front of it, both servers
// in process on 127.0.0.1:0 with ONE manual clock that the test moves across five years.
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
using timers::days;
using timers::grant_mode;

bool contains(const std::string& text, std::string_view what) {
    return text.find(what) != std::string::npos;
}

http_options quiet_http() {
    http_options h;
    h.listen_address = "127.0.0.1";
    h.port = 0;
    h.quiet = true;
    h.limiter.enabled = false;
    return h;
}

poll_options no_polls() {
    poll_options p;
    p.max_polls = 0;
    p.sleep = [](std::chrono::milliseconds) {};
    return p;
}

// CA: 1095-day CA, 1825-day certificates (so the RA certificate ends with the CA and the RA
// has a SHADOW timer, model §2 timer 2), auto-rollover 30 days, `grant ra-auto`.
// RA: trustpoint auto-enroll P (or none), `grant auto`.
struct rollover_lab {
    temp_dir dir;
    timers::manual_clock clock{test_epoch()};
    std::unique_ptr<server> ca;
    std::unique_ptr<server> ra;

    explicit rollover_lab(std::optional<int> ra_auto_enroll) {
        load_providers(false);
        auto e = lab_engine_options(dir.path, grant_mode::ra_auto);
        e.data_dir = dir.path / "ca";
        e.server.cert_lifetime = days{1825};
        e.server.auto_rollover = days{30};
        e.shadow_key_pems = {private_key_to_pem(fixture_key("rollover1")),
                             private_key_to_pem(fixture_key("rollover2"))};
        ca = std::make_unique<server>(std::move(e), quiet_http(), clock);
        ca->start();
        // `grant ra-auto` holds the RA's first (self-signed) request like any other; a one-time
        // password from the CA grants it at once (IOS: `crypto pki server CA password generate`).
        const auto pw = admin_call(ca_dir(), "password generate 60").text;
        const auto open = pw.find('(');
        otp = pw.substr(open + 1, pw.find(')') - open - 1);
        ra_auto_enroll_ = ra_auto_enroll;
        start_ra();
    }
    ~rollover_lab() {
        if (ra)
            ra->stop();
        ca->stop();
    }
    void start_ra() {
        engine_options o;
        o.server.name = "labra";
        o.server.mode_ra = true;
        o.server.grant = grant_mode::auto_grant;
        o.data_dir = dir.path / "ra";
        o.passphrase = "ra-passphrase";
        o.challenge = "client-secret";
        o.existing_key_pem = private_key_to_pem(fixture_key("ra"));
        o.rollover_key_pem = private_key_to_pem(fixture_key("ca"));
        timers::trustpoint_config tp;
        tp.name = "labra";
        tp.enrollment_url = fmt::format("http://127.0.0.1:{}", ca->local_port());
        if (ra_auto_enroll_) {
            tp.auto_enroll = true;
            tp.auto_enroll_percent = *ra_auto_enroll_;
        }
        o.ra_trustpoint = tp;
        o.upstream_challenge = otp;
        o.upstream_timeout = std::chrono::milliseconds{2000};
        ra = std::make_unique<server>(std::move(o), quiet_http(), clock);
        ra->start();
    }
    std::filesystem::path ca_dir() const { return dir.path / "ca"; }
    std::filesystem::path ra_dir() const { return dir.path / "ra"; }

    scep_client client(bool to_ca = false) const {
        client_options o;
        o.url = fmt::format("http://127.0.0.1:{}/cgi-bin/pkiclient.exe",
                            to_ca ? ca->local_port() : ra->local_port());
        o.connect_timeout = std::chrono::milliseconds{3000};
        o.read_timeout = std::chrono::milliseconds{10000};
        const auto* c = &clock;
        o.now = [c] { return c->now(); };
        return scep_client{std::move(o)};
    }
    std::string ra_show() { return admin_call(ra_dir(), "show server").text; }
    // The engines tick at least once a real second; wait (bounded) for `what`.
    bool wait_ra_shows(std::string_view what) {
        for (int i = 0; i < 100; ++i) {
            if (contains(ra_show(), what))
                return true;
            std::this_thread::sleep_for(std::chrono::milliseconds{100});
        }
        return false;
    }
    unsigned ra_next_ca_status() {
        return http_get(ra->local_port(),
                        "/cgi-bin/pkiclient.exe?operation=GetNextCACert&message=labra")
            .status;
    }
    time_point ca_end() { return not_after(ca->engine().ca_certificate()); }

    std::string otp;
    std::optional<int> ra_auto_enroll_;
};

bool issued_by(X509* cert, X509* ca) {
    return X509_verify(cert, X509_get0_pubkey(ca)) == 1;
}

TEST(ra_rollover, ra_answers_404_while_the_ca_has_a_shadow_until_its_own_shadow_timer) {
    // auto-enroll 99: the RA's SHADOW point is 99 % of its certificate (= the CA's life),
    // 1084.05 days, later than the CA's shadow at 1065 days: the seed's late-RA situation.
    rollover_lab lab{99};
    ASSERT_TRUE(contains(lab.ra_show(), "RA cert fingerprint")) << lab.ra_show();
    const auto ca_end = lab.ca_end();
    EXPECT_EQ(ca_end, test_epoch() + days{1095});
    const auto timers_text = admin_call(lab.ra_dir(), "show timers").text;
    EXPECT_TRUE(contains(timers_text, "SHADOW labra")) << timers_text;
    // The RA certificate was issued with the RA profile and ends with the CA (rule 2).
    auto ra_certs = lab.client().get_ca_cert();
    ASSERT_TRUE(ra_certs);
    EXPECT_EQ(not_after(ra_certs->encryption.get()), ca_end);

    // Day 1066: the CA has its shadow (a client asking the CA gets it) but the RA does not.
    lab.clock.set(test_epoch() + days{1066});
    auto at_ca = lab.client(true).get_next_ca_cert(lab.client(true).get_ca_cert().value());
    ASSERT_TRUE(at_ca) << at_ca.error().message();
    EXPECT_TRUE(at_ca->available);
    std::this_thread::sleep_for(std::chrono::milliseconds{1200});  // ticks run
    EXPECT_EQ(lab.ra_next_ca_status(), 404u);
    EXPECT_FALSE(lab.client().get_ca_caps().value().has("GetNextCACert"));

    // The RA's SHADOW point (99 % of 1095 days) passes: it asks the CA, gets the shadow CA,
    // enrolls its rollover RA certificate, and from then on answers 200.
    const auto shadow_at =
        test_epoch() + std::chrono::duration_cast<timers::duration>(days{1095}) * 99 / 100;
    lab.clock.set(shadow_at - timers::minutes{1});
    std::this_thread::sleep_for(std::chrono::milliseconds{1200});
    EXPECT_EQ(lab.ra_next_ca_status(), 404u);
    lab.clock.set(shadow_at + timers::seconds{1});
    ASSERT_TRUE(lab.wait_ra_shows("Rollover status: available for rollover")) << lab.ra_show();
    EXPECT_EQ(lab.ra_next_ca_status(), 200u);
    auto caps = lab.client().get_ca_caps().value();
    EXPECT_TRUE(caps.has("GetNextCACert"));
}

TEST(ra_rollover, operator_rollover_then_client_rollover_enrollment_then_switchover) {
    rollover_lab lab{std::nullopt};  // no auto-enroll on the RA: only `rollover` helps
    ASSERT_TRUE(contains(lab.ra_show(), "RA cert fingerprint")) << lab.ra_show();
    auto c = lab.client();
    auto caps = c.get_ca_caps().value();
    auto current = c.get_ca_cert().value();
    ASSERT_TRUE(current.ra_mode());
    X509* old_ca = current.ca.get();

    // A router enrolls through the RA (forwarded, granted by the CA's `grant ra-auto`).
    enroll_request first;
    first.key = fixture_key("client1");
    first.subject = "CN=router1,O=lab";
    first.challenge = "client-secret";
    auto id = c.enroll(first, caps, current, no_polls());
    ASSERT_TRUE(id) << id.error().message();
    ASSERT_EQ(id->status, pki_status::success);
    EXPECT_TRUE(issued_by(id->cert.get(), old_ca));
    EXPECT_EQ(not_after(id->cert.get()), lab.ca_end());  // truncated: this router needs SHADOW

    // The CA makes its shadow at notAfter - 30 days; without a SHADOW timer the RA never asks.
    lab.clock.set(lab.ca_end() - days{29});
    std::this_thread::sleep_for(std::chrono::milliseconds{1200});
    EXPECT_EQ(lab.ra_next_ca_status(), 404u);
    auto next_404 = c.get_next_ca_cert(current);
    ASSERT_TRUE(next_404);
    EXPECT_FALSE(next_404->available);

    // `pkisim ca --data RA_DIR rollover`: the RA fetches the shadow CA and its rollover RA cert.
    auto roll = admin_call(lab.ra_dir(), "rollover");
    EXPECT_TRUE(roll.ok) << roll.text;
    EXPECT_TRUE(contains(roll.text, "rollover RA certificate")) << roll.text;
    const auto show = lab.ra_show();
    EXPECT_TRUE(contains(show, "Rollover status: available for rollover")) << show;
    EXPECT_TRUE(contains(show, "Rollover RA cert fingerprint: ")) << show;

    auto next = c.get_next_ca_cert(current);
    ASSERT_TRUE(next) << next.error().message();
    ASSERT_TRUE(next->available);
    ASSERT_EQ(next->certs.size(), 2u);
    auto shadow = classify_ca_certs(std::move(next->certs), "application/x-x509-ca-ra-cert");
    ASSERT_TRUE(shadow);
    ASSERT_TRUE(shadow->ra_mode());
    EXPECT_EQ(subject_string(shadow->ca.get()), subject_string(old_ca));
    EXPECT_FALSE(same_public_key(X509_get0_pubkey(shadow->ca.get()), X509_get0_pubkey(old_ca)));
    EXPECT_EQ(not_before(shadow->ca.get()), lab.ca_end());  // rule 3
    // The shadow RA: new key, issued by the shadow CA, OU=ioscs RA.
    EXPECT_TRUE(issued_by(shadow->encryption.get(), shadow->ca.get()));
    EXPECT_TRUE(same_public_key(X509_get0_pubkey(shadow->encryption.get()), fixture_key("ca")));
    EXPECT_TRUE(contains(subject_string(shadow->encryption.get()), "OU=ioscs RA"));
    // The CA granted the RA's rollover request under `grant ra-auto`.
    EXPECT_TRUE(contains(admin_call(lab.ca_dir(), "show certificates").text, "ou=ioscs RA"));

    // The router's rollover enrollment through the RA: encrypted to the shadow RA, signed with
    // its current certificate, forwarded to the shadow CA (rule 6).
    enroll_request rollover;
    rollover.key = fixture_key("client2");
    rollover.subject = "CN=router1,O=lab";
    rollover.renew_cert = id->cert.get();
    rollover.renew_key = fixture_key("client1");
    rollover.renewal_as_pkcs_req = true;
    auto rid = c.enroll(rollover, caps, *shadow, no_polls());
    ASSERT_TRUE(rid) << rid.error().message();
    ASSERT_EQ(rid->status, pki_status::success);
    EXPECT_TRUE(issued_by(rid->cert.get(), shadow->ca.get()));
    EXPECT_EQ(not_before(rid->cert.get()), lab.ca_end());  // rollover ID: from the shadow's start

    // Restart of the RA during the overlap keeps the shadow state.
    lab.ra->stop();
    lab.ra.reset();
    lab.start_ra();
    EXPECT_TRUE(contains(lab.ra_show(), "Rollover status: available for rollover"));
    EXPECT_EQ(lab.ra_next_ca_status(), 200u);

    // Switchover at the CA's notAfter: GetCACert through the RA now answers the new CA + RA.
    const auto old_end = lab.ca_end();
    lab.clock.set(old_end + timers::seconds{1});
    ASSERT_TRUE(lab.wait_ra_shows(
        fmt::format("\n    CA cert fingerprint: {}", md5_fingerprint(shadow->ca.get()))))
        << lab.ra_show();
    auto after = lab.client().get_ca_cert();
    ASSERT_TRUE(after) << after.error().message();
    EXPECT_EQ(to_der(after->ca.get()), to_der(shadow->ca.get()));
    EXPECT_EQ(to_der(after->encryption.get()), to_der(shadow->encryption.get()));
    EXPECT_EQ(lab.ra_next_ca_status(), 404u);  // no next CA yet after the switchover
    // A new router enrolls through the RA with the new CA.
    enroll_request late;
    late.key = fixture_key("client1");
    late.subject = "CN=router2,O=lab";
    late.challenge = "client-secret";
    auto lid = lab.client().enroll(late, caps, *after, no_polls());
    ASSERT_TRUE(lid) << lid.error().message();
    ASSERT_EQ(lid->status, pki_status::success);
    EXPECT_TRUE(issued_by(lid->cert.get(), shadow->ca.get()));
}

}  // namespace
}  // namespace pkisim::scep
