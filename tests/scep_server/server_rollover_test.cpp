// CA rollover in the lab server (issue 4 §1; ios-pki-model.md §1 rules 3–7) and the CA side of
// RA mode (`grant ra-auto`, rule 8). Manual clock, fixture keys (the shadow CAs use
// rollover1.key and rollover2.key), real SQLite in a temporary folder; GetNextCACert is also
// checked with OpenSSL's PKCS7 API directly, not only with our parser.
#include <sqlite3.h>

#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "pkisim/scep/ca_engine.hpp"
#include "pkisim/scep/crypto.hpp"
#include "pkisim/scep/server.hpp"
#include "server_support.hpp"

namespace pkisim::scep {
namespace {

using namespace testing;
using timers::days;
using timers::grant_mode;
using timers::hours;

std::string slurp(const std::filesystem::path& p) {
    std::ifstream in{p, std::ios::binary};
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

bytes as_bytes(const std::string& s) {
    return {s.begin(), s.end()};
}

// A 3-year CA (the test epoch + 1095 days), auto-rollover 30 days, 1-year certificates.
engine_options rollover_options(const std::filesystem::path& dir,
                                grant_mode grant = grant_mode::auto_grant) {
    auto o = lab_engine_options(dir, grant);
    o.server.auto_rollover = days{30};
    o.shadow_key_pems = {private_key_to_pem(fixture_key("rollover1")),
                         private_key_to_pem(fixture_key("rollover2"))};
    return o;
}

struct rollover_fixture {
    explicit rollover_fixture(grant_mode grant = grant_mode::auto_grant)
        : options(rollover_options(dir.path, grant)) {
        load_providers(false);
        start();
    }
    void start() { engine = std::make_unique<ca_engine>(options, clock); }
    void restart() {
        engine.reset();
        start();
    }
    // Moves the clock and lets the engine tick (the server would within a real second).
    void at(time_point t) {
        clock.set(t);
        engine->tick();
    }
    X509* ca() { return engine->ca_certificate(); }
    X509* shadow() { return engine->shadow_certificate(); }
    time_point ca_end() { return not_after(ca()); }
    time_point due() { return ca_end() - *options.server.auto_rollover; }
    std::string admin(std::string_view line, bool expect_ok = true) {
        auto r = engine->admin(line);
        EXPECT_EQ(r.ok, expect_ok) << line << ": " << r.text;
        return r.text;
    }
    // Sends `der`; the reply must be a CertRep signed by `signer` and encrypted to `recipient`.
    cert_rep send(const bytes& der, X509* signer, X509* recipient, EVP_PKEY* key) {
        auto a = engine->pki_operation(der);
        EXPECT_EQ(a.status, 200u) << a.detail;
        std::array<X509*, 1> trusted{signer};
        auto rep = decode_cert_rep(as_bytes(a.body), recipient, key, trusted);
        EXPECT_TRUE(rep.has_value()) << a.detail << " / " << (rep ? "" : rep.error().message());
        last_detail = a.detail;
        return rep ? std::move(*rep) : cert_rep{};
    }
    cert_rep send(const client& c, const bytes& der, X509* signer) {
        return send(der, signer, c.self_signed.get(), c.key);
    }

    temp_dir dir;
    timers::manual_clock clock{test_epoch()};
    engine_options options;
    std::unique_ptr<ca_engine> engine;
    std::string last_detail;
};

bool caps_list_next_ca(ca_engine& e) {
    return e.get_ca_caps().body.find("GetNextCACert\n") != std::string::npos;
}

// ---------------------------------------------------------------------------------------------
// Rule 3 / rule 4: when the shadow appears, exactly.

TEST(ca_rollover, get_next_ca_cert_is_404_one_ms_before_the_due_instant_and_200_at_it) {
    rollover_fixture f;
    const time_point due = f.due();
    EXPECT_EQ(due, test_epoch() + days{1095 - 30});
    f.clock.set(due - timers::duration{1});
    auto before = f.engine->get_next_ca_cert();
    EXPECT_EQ(before.status, 404u);
    EXPECT_TRUE(before.ios_404);
    EXPECT_EQ(f.shadow(), nullptr);

    f.clock.set(due);
    // No tick ran: the request itself sees the due instant (lazy generation).
    auto at = f.engine->get_next_ca_cert();
    EXPECT_EQ(at.status, 200u) << at.detail;
    EXPECT_EQ(at.content_type, "application/x-x509-next-ca-cert");
    ASSERT_NE(f.shadow(), nullptr);
    // Rule 3: same subject, new key, notBefore = current notAfter, + lifetime ca-certificate.
    EXPECT_EQ(subject_string(f.shadow()), subject_string(f.ca()));
    EXPECT_TRUE(same_public_key(X509_get0_pubkey(f.shadow()), fixture_key("rollover1")));
    EXPECT_FALSE(same_public_key(X509_get0_pubkey(f.shadow()), X509_get0_pubkey(f.ca())));
    EXPECT_EQ(not_before(f.shadow()), f.ca_end());
    EXPECT_EQ(not_after(f.shadow()), f.ca_end() + days{1095});
    EXPECT_EQ(X509_verify(f.shadow(), X509_get0_pubkey(f.shadow())), 1);  // self-signed
    // Serial from the store: the CA took 1, the shadow 2, the next certificate 3.
    EXPECT_EQ(serial_u64(f.shadow()), 2u);
    EXPECT_EQ(f.engine->database().last_serial(), 2u);
}

TEST(ca_rollover, tick_generates_the_shadow_at_the_due_instant_and_returns_the_next_event) {
    rollover_fixture f;
    const time_point due = f.due();
    // Before: the CRL (7 days) comes first.
    EXPECT_EQ(f.engine->tick(), test_epoch() + hours{168});
    f.clock.set(due - hours{1});
    const time_point next = f.engine->tick();  // renews the CRL on the way
    EXPECT_EQ(next, due);
    EXPECT_EQ(f.shadow(), nullptr);
    f.clock.set(next);
    const time_point after = f.engine->tick();
    ASSERT_NE(f.shadow(), nullptr);
    // Then: the CRL renewal (due − 1 h + 168 h) before the switchover (due + 30 days).
    EXPECT_EQ(after, due - hours{1} + hours{168});
    // Nothing due: ticking again changes nothing (no CRL, no shadow, no store write).
    const auto crl_number = f.engine->database().meta("crl_number");
    EXPECT_EQ(f.engine->tick(), after);
    EXPECT_EQ(f.engine->database().meta("crl_number"), crl_number);
    // A pending request that expires first becomes the next event.
    f.options.server.grant = grant_mode::manual;
    f.options.server.enrollment_request_lifetime = hours{2};
    f.restart();
    auto c = make_client();
    f.send(c, c.pkcs_req({f.ca()}), f.ca());
    EXPECT_EQ(f.engine->tick(), f.clock.now() + hours{2});
    f.clock.set(f.ca_end() - timers::duration{1});
    EXPECT_EQ(f.engine->tick(), f.ca_end());  // the switchover
    EXPECT_EQ(f.engine->database().requests().front().state, request_state::expired);
}

TEST(ca_rollover, get_next_ca_cert_structure_checked_with_openssl) {
    rollover_fixture f;
    f.clock.set(f.due());
    auto a = f.engine->get_next_ca_cert();
    ASSERT_EQ(a.status, 200u);
    const auto* p = reinterpret_cast<const unsigned char*>(a.body.data());
    pkcs7_ptr outer{d2i_PKCS7(nullptr, &p, static_cast<long>(a.body.size()))};
    ASSERT_TRUE(outer);
    ASSERT_TRUE(PKCS7_type_is_signed(outer.get()));
    // Outer signer = the CURRENT CA (rule 4), and the signature verifies.
    STACK_OF(X509)* signers = PKCS7_get0_signers(outer.get(), nullptr, 0);
    ASSERT_NE(signers, nullptr);
    ASSERT_EQ(sk_X509_num(signers), 1);
    EXPECT_EQ(X509_cmp(sk_X509_value(signers, 0), f.ca()), 0);
    sk_X509_free(signers);
    bio_ptr content{BIO_new(BIO_s_mem())};
    ASSERT_EQ(PKCS7_verify(outer.get(), nullptr, nullptr, nullptr, content.get(), PKCS7_NOVERIFY),
              1);
    // Outer certificates contain the shadow (scep-wire §0.15: sscep, jscep read them there).
    STACK_OF(X509)* outer_certs = outer->d.sign->cert;
    bool shadow_outside = false;
    for (int i = 0; i < sk_X509_num(outer_certs); ++i)
        shadow_outside |= X509_cmp(sk_X509_value(outer_certs, i), f.shadow()) == 0;
    EXPECT_TRUE(shadow_outside);
    // Content: a degenerate SignedData (no signers) carrying the shadow (RFC 8894 §4.7.1).
    char* data = nullptr;
    const long n = BIO_get_mem_data(content.get(), &data);
    const auto* q = reinterpret_cast<const unsigned char*>(data);
    pkcs7_ptr inner{d2i_PKCS7(nullptr, &q, n)};
    ASSERT_TRUE(inner);
    ASSERT_TRUE(PKCS7_type_is_signed(inner.get()));
    EXPECT_EQ(sk_PKCS7_SIGNER_INFO_num(inner->d.sign->signer_info), 0);
    ASSERT_EQ(sk_X509_num(inner->d.sign->cert), 1);
    EXPECT_EQ(X509_cmp(sk_X509_value(inner->d.sign->cert, 0), f.shadow()), 0);
    // And our own client-side parser agrees.
    std::array<X509*, 1> trusted{f.ca()};
    auto parsed = parse_get_next_ca_cert(as_bytes(a.body), trusted);
    ASSERT_TRUE(parsed);
    ASSERT_EQ(parsed->content_certs.size(), 1u);
    EXPECT_EQ(X509_cmp(parsed->content_certs.front().get(), f.shadow()), 0);
}

TEST(ca_rollover, get_ca_caps_lists_get_next_ca_cert_only_while_the_shadow_exists) {
    rollover_fixture f;
    EXPECT_FALSE(caps_list_next_ca(*f.engine));
    f.clock.set(f.due());
    EXPECT_TRUE(caps_list_next_ca(*f.engine));
    f.admin("rollover cancel");
    EXPECT_FALSE(caps_list_next_ca(*f.engine));
    f.admin("rollover");
    EXPECT_TRUE(caps_list_next_ca(*f.engine));
    f.clock.set(f.ca_end());
    // After the switchover the next shadow is a lifetime away.
    EXPECT_FALSE(caps_list_next_ca(*f.engine));
    EXPECT_EQ(f.engine->get_next_ca_cert().status, 404u);
}

// ---------------------------------------------------------------------------------------------
// Operator commands.

TEST(ca_rollover, rollover_command_makes_the_shadow_now_and_refuses_a_second_one) {
    rollover_fixture f;
    f.options.server.auto_rollover.reset();  // manual rollover only
    f.restart();
    f.clock.advance(days{100});
    EXPECT_EQ(f.engine->get_next_ca_cert().status, 404u);
    auto text = f.admin("rollover");
    EXPECT_NE(text.find("Rollover CA certificate generated"), std::string::npos) << text;
    ASSERT_NE(f.shadow(), nullptr);
    EXPECT_EQ(not_before(f.shadow()), f.ca_end());
    EXPECT_EQ(f.engine->get_next_ca_cert().status, 200u);
    text = f.admin("rollover", false);
    EXPECT_EQ(text.rfind("% Rollover CA certificate already exists", 0), 0u) << text;
    EXPECT_EQ(f.admin("show server").find("Auto-Rollover"), std::string::npos);
    EXPECT_NE(f.admin("show server").find("Rollover status: available for rollover"),
              std::string::npos);
    f.admin("rollover cancel");
    EXPECT_EQ(f.shadow(), nullptr);
    EXPECT_EQ(f.engine->get_next_ca_cert().status, 404u);
    f.admin("rollover cancel", false);
    f.admin("rollover bogus", false);
}

TEST(ca_rollover, cancel_persists_and_stops_the_automatic_generation_until_rollover) {
    rollover_fixture f;
    f.at(f.due() + days{1});
    ASSERT_NE(f.shadow(), nullptr);
    f.admin("rollover cancel");
    EXPECT_EQ(f.shadow(), nullptr);
    f.clock.advance(days{1});
    f.engine->tick();
    EXPECT_EQ(f.engine->get_next_ca_cert().status, 404u);
    EXPECT_EQ(f.shadow(), nullptr);
    EXPECT_NE(f.admin("show server").find("Rollover status: cancelled"), std::string::npos);
    EXPECT_EQ(f.admin("show timers").find("CS SHADOW CERT GENERATION"), std::string::npos);
    // Persisted: a restart does not bring it back.
    f.restart();
    EXPECT_EQ(f.shadow(), nullptr);
    EXPECT_EQ(f.engine->get_next_ca_cert().status, 404u);
    // The operator's `rollover` makes a new one (new key, new serial; serials never reused).
    const auto last = f.engine->database().last_serial();
    f.admin("rollover");
    ASSERT_NE(f.shadow(), nullptr);
    EXPECT_EQ(serial_u64(f.shadow()), last + 1);
    EXPECT_TRUE(same_public_key(X509_get0_pubkey(f.shadow()), fixture_key("rollover1")));
    // (the restarted engine starts its key list again: rollover1 is its first shadow key)
}

TEST(ca_rollover, changing_the_overlap_after_a_cancel_rearms_the_automatic_generation) {
    rollover_fixture f;
    f.clock.set(f.due());
    f.admin("rollover cancel");
    f.restart();
    EXPECT_EQ(f.shadow(), nullptr);
    f.options.server.auto_rollover = days{60};
    f.restart();  // overlap changed and the new due time is past: generated at once
    EXPECT_NE(f.shadow(), nullptr);
}

// ---------------------------------------------------------------------------------------------
// Persistence (issue 4 §1 "All of it persists").

TEST(ca_rollover, restart_during_the_overlap_keeps_the_same_shadow) {
    rollover_fixture f;
    f.at(f.due() + days{3});
    ASSERT_NE(f.shadow(), nullptr);
    const std::string fp = sha256_fingerprint(f.shadow());
    f.restart();
    ASSERT_NE(f.shadow(), nullptr);
    EXPECT_EQ(sha256_fingerprint(f.shadow()), fp);
    EXPECT_EQ(f.engine->get_next_ca_cert().status, 200u);
    // Wrong passphrase: the shadow key is protected like the CA key.
    f.engine.reset();
    auto bad = f.options;
    bad.passphrase = "wrong";
    EXPECT_THROW(ca_engine(bad, f.clock), startup_error);
}

TEST(ca_rollover, restart_after_not_after_performs_the_switchover) {
    rollover_fixture f;
    f.at(f.due());
    const std::string old_fp = sha256_fingerprint(f.ca());
    const std::string shadow_fp = sha256_fingerprint(f.shadow());
    const time_point old_end = f.ca_end();
    f.engine.reset();
    f.clock.set(old_end + hours{5});
    f.start();
    EXPECT_EQ(sha256_fingerprint(f.ca()), shadow_fp);
    EXPECT_EQ(f.shadow(), nullptr);
    auto body = f.engine->get_ca_cert().body;
    auto served = x509_from_der(as_bytes(body));
    ASSERT_TRUE(served);
    EXPECT_EQ(sha256_fingerprint(served->get()), shadow_fp);
    auto pem = x509_from_pem(slurp(f.engine->ca_pem_path()));
    ASSERT_TRUE(pem);
    EXPECT_EQ(sha256_fingerprint(pem->get()), shadow_fp);
    // The old generation is archived, not gone.
    int archived = 0;
    for (const auto& g : f.engine->database().ca_generations()) {
        if (g.state == ca_state::archived) {
            ++archived;
            auto c = x509_from_der(g.cert_der);
            ASSERT_TRUE(c);
            EXPECT_EQ(sha256_fingerprint(c->get()), old_fp);
        }
    }
    EXPECT_EQ(archived, 1);
}

TEST(ca_rollover, overlap_raised_then_restart_past_the_due_time_generates_the_shadow_at_once) {
    rollover_fixture f;
    f.clock.set(f.ca_end() - days{100});
    EXPECT_EQ(f.shadow(), nullptr);
    EXPECT_EQ(f.engine->get_next_ca_cert().status, 404u);
    f.options.server.auto_rollover = days{365};  // the seed's fix
    f.restart();
    ASSERT_NE(f.shadow(), nullptr);
    EXPECT_EQ(not_before(f.shadow()), f.ca_end());
    auto show = f.admin("show server");
    EXPECT_NE(show.find("Auto-Rollover configured, overlap period 365 days"), std::string::npos);
    EXPECT_NE(show.find("Rollover status: available for rollover"), std::string::npos);
}

// A clock that moves on every reading, as a warped clock does between two calls.
class stepping_clock final : public timers::clock {
  public:
    explicit stepping_clock(time_point start) : now_(start) {}
    time_point now() const override {
        const time_point t = now_;
        now_ += timers::seconds{1};
        return t;
    }

  private:
    mutable time_point now_;
};

TEST(ca_rollover, a_moving_clock_still_generates_a_shadow_whose_time_is_past) {
    temp_dir dir;
    load_providers(false);
    auto o = rollover_options(dir.path);
    stepping_clock clock{test_epoch()};
    { ca_engine first{o, clock}; }
    o.server.auto_rollover = days{1094};  // the due time is a day after the start: past
    stepping_clock later{test_epoch() + days{10}};
    ca_engine e{o, later};
    EXPECT_NE(e.shadow_certificate(), nullptr);
    EXPECT_EQ(e.get_next_ca_cert().status, 200u);
}

// ---------------------------------------------------------------------------------------------
// Rule 6: rollover ID certificates.

TEST(ca_rollover, request_encrypted_to_the_shadow_gets_a_rollover_certificate_from_the_shadow) {
    rollover_fixture f;
    f.at(f.due() + days{2});
    X509* shadow = f.shadow();
    ASSERT_NE(shadow, nullptr);
    auto c = make_client();
    // Signed by the shadow: the CA the client encrypted to (see the comment in pki_operation).
    auto rep = f.send(c, c.pkcs_req({shadow}), shadow);
    ASSERT_EQ(rep.status, pki_status::success) << f.last_detail;
    ASSERT_EQ(X509_cmp(rep.signer.get(), shadow), 0);
    X509* cert = rep.certs.front().get();
    EXPECT_EQ(X509_verify(cert, X509_get0_pubkey(shadow)), 1);
    EXPECT_EQ(not_before(cert), not_before(shadow));
    EXPECT_EQ(not_after(cert), not_before(shadow) + days{365});
    // The same client asking the current CA during the overlap: rule 2, truncated.
    auto c2 = make_client("client2", "CN=router2,O=lab");
    auto rep2 = f.send(c2, c2.pkcs_req({f.ca()}), f.ca());
    ASSERT_EQ(rep2.status, pki_status::success);
    EXPECT_EQ(X509_verify(rep2.certs.front().get(), X509_get0_pubkey(f.ca())), 1);
    EXPECT_EQ(not_before(rep2.certs.front().get()), f.clock.now());
    EXPECT_EQ(not_after(rep2.certs.front().get()), f.ca_end());
    // Renewal signed by the certificate the current CA issued, encrypted to the shadow.
    auto renewed = f.send(c2.renewal_req({shadow}, rep2.certs.front().get(), c2.key), shadow,
                          rep2.certs.front().get(), c2.key);
    ASSERT_EQ(renewed.status, pki_status::success) << f.last_detail;
    EXPECT_EQ(X509_verify(renewed.certs.front().get(), X509_get0_pubkey(shadow)), 1);
    EXPECT_EQ(not_before(renewed.certs.front().get()), not_before(shadow));
}

TEST(ca_rollover, the_same_request_encrypted_to_the_shadow_is_a_new_rollover_request) {
    // IOS and `pkisim client` keep the key: same transactionID, same CSR as the first time.
    rollover_fixture f;
    auto c = make_client();
    const auto first = f.send(c, c.pkcs_req({f.ca()}), f.ca());
    ASSERT_EQ(first.status, pki_status::success);
    f.at(f.due());
    auto rolled = f.send(c, c.pkcs_req({f.shadow()}), f.shadow());
    ASSERT_EQ(rolled.status, pki_status::success) << f.last_detail;
    EXPECT_NE(serial_u64(rolled.certs.front().get()), serial_u64(first.certs.front().get()));
    EXPECT_EQ(X509_verify(rolled.certs.front().get(), X509_get0_pubkey(f.shadow())), 1);
    // Re-sent (micromdm-style poll) or polled, each answer stays with its own generation.
    auto again = f.send(c, c.pkcs_req({f.shadow()}), f.shadow());
    EXPECT_EQ(serial_u64(again.certs.front().get()), serial_u64(rolled.certs.front().get()));
    auto polled = f.send(c, c.cert_poll({f.shadow()}, f.shadow()), f.shadow());
    EXPECT_EQ(serial_u64(polled.certs.front().get()), serial_u64(rolled.certs.front().get()));
    auto old = f.send(c, c.cert_poll({f.ca()}, f.ca()), f.ca());
    EXPECT_EQ(serial_u64(old.certs.front().get()), serial_u64(first.certs.front().get()));
}

TEST(ca_rollover, rollover_certificate_never_outlives_the_shadow) {
    rollover_fixture f;
    f.options.server.cert_lifetime = days{2000};
    f.restart();
    f.at(f.due());
    auto c = make_client();
    auto rep = f.send(c, c.pkcs_req({f.shadow()}), f.shadow());
    ASSERT_EQ(rep.status, pki_status::success);
    EXPECT_EQ(not_after(rep.certs.front().get()), not_after(f.shadow()));
}

TEST(ca_rollover, pending_rollover_request_granted_later_is_still_issued_by_the_shadow) {
    rollover_fixture f{grant_mode::manual};
    f.at(f.due());
    X509* shadow = f.shadow();
    auto c = make_client();
    auto rep = f.send(c, c.pkcs_req({shadow}), shadow);
    EXPECT_EQ(rep.status, pki_status::pending);
    f.clock.advance(days{1});
    f.admin("grant all");
    auto polled = f.send(c, c.cert_poll({shadow}, shadow), shadow);
    ASSERT_EQ(polled.status, pki_status::success) << f.last_detail;
    EXPECT_EQ(X509_verify(polled.certs.front().get(), X509_get0_pubkey(shadow)), 1);
    EXPECT_EQ(not_before(polled.certs.front().get()), not_before(shadow));
}

// ---------------------------------------------------------------------------------------------
// Rule 7: switchover, and the next rollover.

TEST(ca_rollover, switchover_activates_the_shadow_and_the_crl_is_signed_by_the_new_key) {
    rollover_fixture f;
    auto c = make_client();
    auto first = f.send(c, c.pkcs_req({f.ca()}), f.ca());
    ASSERT_EQ(first.status, pki_status::success);
    f.at(f.due());
    X509* shadow = f.shadow();
    const std::string shadow_der = [&] {
        auto d = to_der(shadow);
        return std::string(d.begin(), d.end());
    }();
    auto c2 = make_client("client2", "CN=router2,O=lab");
    auto rolled = f.send(c2, c2.pkcs_req({shadow}), shadow);
    ASSERT_EQ(rolled.status, pki_status::success);
    const auto rolled_serial = *serial_u64(rolled.certs.front().get());
    f.admin(fmt::format("revoke {:X}", rolled_serial));
    const auto serial_before = f.engine->database().last_serial();

    f.clock.set(f.ca_end());
    f.engine->tick();
    EXPECT_EQ(f.shadow(), nullptr);
    EXPECT_EQ(f.engine->get_ca_cert().body, shadow_der);
    auto pem = x509_from_pem(slurp(f.engine->ca_pem_path()));
    ASSERT_TRUE(pem);
    EXPECT_EQ(to_der(pem->get()), as_bytes(shadow_der));
    // The CRL file: signed by the new key, lists the revoked rollover certificate.
    auto crl_der = slurp(f.engine->crl_path());
    auto crl = x509_crl_from_der(as_bytes(crl_der));
    ASSERT_TRUE(crl);
    EXPECT_EQ(X509_CRL_verify(crl->get(), X509_get0_pubkey(f.ca())), 1);
    EXPECT_NE(X509_CRL_verify(crl->get(), fixture_key("shadow")), 1);  // not the old key
    EXPECT_TRUE(crl_lists(crl->get(), rolled_serial));
    // Certificates of the old CA stay in the store; serials continue.
    EXPECT_TRUE(f.engine->database().certificate(*serial_u64(first.certs.front().get())));
    auto c3 = make_client("client1", "CN=router3,O=lab");
    request_options o;
    o.transaction_id = "after-switchover";
    auto next = f.send(c3, c3.pkcs_req({f.ca()}, o), f.ca());
    ASSERT_EQ(next.status, pki_status::success) << f.last_detail;
    EXPECT_EQ(*serial_u64(next.certs.front().get()), serial_before + 1);
    EXPECT_EQ(X509_verify(next.certs.front().get(), X509_get0_pubkey(f.ca())), 1);
    EXPECT_EQ(not_before(next.certs.front().get()), f.clock.now());
    // GetCRL answers with the new CRL, signed (CertRep) by the new CA.
    auto got = f.send(c3, c3.get_crl({f.ca()}, next.certs.front().get(), o), f.ca());
    ASSERT_EQ(got.status, pki_status::success);
    ASSERT_EQ(got.crls.size(), 1u);
    EXPECT_EQ(X509_CRL_verify(got.crls.front().get(), X509_get0_pubkey(f.ca())), 1);
}

TEST(ca_rollover, second_rollover_a_lifetime_later_works_the_same_way) {
    rollover_fixture f;
    f.at(f.ca_end());  // shadow (rollover1) generated and switched to at once
    ASSERT_TRUE(same_public_key(X509_get0_pubkey(f.ca()), fixture_key("rollover1")));
    const time_point second_end = f.ca_end();
    EXPECT_EQ(second_end, test_epoch() + days{2 * 1095});
    f.clock.set(f.due() - timers::duration{1});
    EXPECT_EQ(f.engine->get_next_ca_cert().status, 404u);
    f.clock.set(f.due());
    auto a = f.engine->get_next_ca_cert();
    ASSERT_EQ(a.status, 200u);
    std::array<X509*, 1> trusted{f.ca()};  // signed by generation 2
    auto parsed = parse_get_next_ca_cert(as_bytes(a.body), trusted);
    ASSERT_TRUE(parsed);
    EXPECT_TRUE(same_public_key(X509_get0_pubkey(parsed->content_certs.front().get()),
                                fixture_key("rollover2")));
    f.at(second_end);
    EXPECT_TRUE(same_public_key(X509_get0_pubkey(f.ca()), fixture_key("rollover2")));
    EXPECT_EQ(not_before(f.ca()), second_end);
    int archived = 0;
    for (const auto& g : f.engine->database().ca_generations())
        archived += g.state == ca_state::archived;
    EXPECT_EQ(archived, 2);
}

TEST(ca_rollover, shadow_generation_and_switchover_are_reported_as_ios_syslog_lines) {
    temp_dir dir;
    auto options = rollover_options(dir.path);
    std::vector<std::string> events;
    options.event_log = [&events](const std::string& line) { events.push_back(line); };
    load_providers(false);
    timers::manual_clock clock{test_epoch()};
    ca_engine engine{options, clock};
    const time_point end = not_after(engine.ca_certificate());
    clock.set(end - days{30} - timers::duration{1});
    engine.tick();
    EXPECT_TRUE(events.empty());
    clock.set(end - days{30});
    engine.tick();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_NE(events[0].find("%PKI-6-CS_ROLLOVER_AVAILABLE"), std::string::npos) << events[0];
    EXPECT_NE(events[0].find(md5_fingerprint(engine.shadow_certificate())), std::string::npos);
    clock.set(end);
    engine.tick();
    ASSERT_EQ(events.size(), 2u);
    EXPECT_NE(events[1].find("%PKI-6-CS_ROLLOVER_ACTIVE"), std::string::npos) << events[1];
    EXPECT_NE(events[1].find(md5_fingerprint(engine.ca_certificate())), std::string::npos);
}

TEST(ca_rollover, show_server_and_show_timers_print_the_rollover_lines) {
    rollover_fixture f;
    auto before = f.admin("show server");
    EXPECT_NE(before.find("    Auto-Rollover configured, overlap period 30 days\n"),
              std::string::npos)
        << before;
    EXPECT_NE(before.find("    Autorollover timer: 00:00:00 UTC Dec 1 2032\n"), std::string::npos)
        << before;
    EXPECT_NE(before.find("    Rollover status: pending\n"), std::string::npos);
    EXPECT_EQ(before.find("Rollover CA cert fingerprint"), std::string::npos);
    auto timers_before = f.admin("show timers");
    EXPECT_NE(timers_before.find("(2032-12-01T00:00:00Z) CS SHADOW CERT GENERATION"),
              std::string::npos)
        << timers_before;
    EXPECT_NE(timers_before.find("(2032-12-31T00:00:00Z) CS CERT EXPIRE"), std::string::npos);
    EXPECT_NE(timers_before.find("(2030-01-08T00:00:00Z) CS CRL UPDATE"), std::string::npos);

    f.clock.set(f.due());
    auto after = f.admin("show server");
    EXPECT_NE(after.find("    Rollover status: available for rollover\n"), std::string::npos);
    EXPECT_NE(after.find(fmt::format("    Rollover CA cert fingerprint: {}\n",
                                     md5_fingerprint(f.shadow()))),
              std::string::npos)
        << after;
    EXPECT_NE(after.find("    Rollover CA cert expiration time: 00:00:00 UTC Dec 31 2035\n"),
              std::string::npos)
        << after;
    auto timers_after = f.admin("show timers");
    EXPECT_EQ(timers_after.find("CS SHADOW CERT GENERATION"), std::string::npos);
    EXPECT_NE(timers_after.find("CS CERT EXPIRE"), std::string::npos);
    // The shadow CA is listed with the issued certificates (it took a serial).
    EXPECT_NE(
        f.admin("show certificates")
            .find("2       00:00:00 UTC Dec 31 2032 00:00:00 UTC Dec 31 2035  cn=labca o=lab"),
        std::string::npos)
        << f.admin("show certificates");
}

// ---------------------------------------------------------------------------------------------
// Through the real HTTP server: the request sees the due instant; the tick alone generates it.

int stored_shadow_generations(const std::filesystem::path& db_file) {
    // A second, read-only connection (WAL): what the server committed, without asking the
    // engine (which would generate the shadow lazily).
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(db_file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
        sqlite3_close(db);
        return -1;
    }
    sqlite3_stmt* st = nullptr;
    int n = -1;
    if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM ca_generations WHERE state = 'shadow'", -1,
                           &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        n = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

TEST(ca_rollover_http, get_next_ca_cert_turns_from_404_to_200_at_the_due_instant) {
    temp_dir opts_dir;
    test_server s{grant_mode::auto_grant, rollover_options(opts_dir.path)};
    const std::string target = "/cgi-bin/pkiclient.exe?operation=GetNextCACert&message=labca";
    const time_point due = not_after(s.ca()) - days{30};
    s.clock.set(due - timers::duration{1});
    auto r404 = http_get(s.port(), target);
    EXPECT_EQ(r404.status, 404u);
    EXPECT_EQ(r404.header("Server"), "cisco-IOS");
    auto caps = http_get(s.port(), "/cgi-bin/pkiclient.exe?operation=GetCACaps");
    EXPECT_EQ(caps.body.find("GetNextCACert"), std::string::npos);
    s.clock.set(due);
    auto r200 = http_get(s.port(), target);
    EXPECT_EQ(r200.status, 200u);
    EXPECT_EQ(r200.header("Content-Type"), "application/x-x509-next-ca-cert");
    std::array<X509*, 1> trusted{s.ca()};
    auto parsed = parse_get_next_ca_cert(r200.body_bytes(), trusted);
    ASSERT_TRUE(parsed);
    EXPECT_EQ(not_before(parsed->content_certs.front().get()), not_after(s.ca()));
    caps = http_get(s.port(), "/cgi-bin/pkiclient.exe?operation=GetCACaps");
    EXPECT_NE(caps.body.find("GetNextCACert\n"), std::string::npos);
}

TEST(ca_rollover_http, the_server_tick_generates_the_shadow_without_any_request) {
    temp_dir opts_dir;
    test_server s{grant_mode::auto_grant, rollover_options(opts_dir.path)};
    const auto db_file = s.dir.path / "data" / "pkisim.db";
    EXPECT_EQ(stored_shadow_generations(db_file), 0);
    s.clock.set(not_after(s.ca()) - days{30});
    // The server ticks at least once a real second.
    int n = 0;
    for (int i = 0; i < 60 && n != 1; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds{50});
        n = stored_shadow_generations(db_file);
    }
    EXPECT_EQ(n, 1);
}

// ---------------------------------------------------------------------------------------------
// The CA side of RA mode (issue 4 §2; research §5): OU=ioscs RA, `grant ra-auto`.

struct ra_fixture : rollover_fixture {
    explicit ra_fixture(grant_mode grant) : rollover_fixture(grant) {
        // Certificates that last until the CA ends (rule 2), so the RA certificate is still
        // valid during the overlap.
        options.server.cert_lifetime = days{1500};
        restart();
        // The RA enrolls its own certificate first (self-signed signer, OU=ioscs RA).
        ra_client = make_client("ra", "CN=ra,OU=ioscs RA,O=lab", "secret", san);
        auto rep = send(ra_client, ra_client.pkcs_req({ca()}), ca());
        if (rep.status == pki_status::pending) {
            admin("grant all");
            rep = send(ra_client, ra_client.cert_poll({ca()}, ca()), ca());
        }
        EXPECT_EQ(rep.status, pki_status::success) << last_detail;
        if (!rep.certs.empty())
            ra_cert = std::move(rep.certs.front());
    }
    // A client's CSR (without a challenge: the RA checked it) forwarded, signed by the RA.
    cert_rep forward(const client& c, X509* to) {
        return send(c.pkcs_req({to}, {}, ra_cert.get(), fixture_key("ra")), to, ra_cert.get(),
                    fixture_key("ra"));
    }
    static csr_options ra_san() {
        csr_options o;
        o.dns_names = {"ra.lab"};
        return o;
    }
    csr_options san = ra_san();
    client ra_client;
    x509_ptr ra_cert;
};

TEST(ca_ra_contract, ra_certificate_request_is_listed_and_issued_with_the_ra_profile) {
    rollover_fixture f{grant_mode::manual};
    auto ra = make_client("ra", "CN=ra,OU=ioscs RA,O=lab", "secret", ra_fixture::ra_san());
    EXPECT_EQ(f.send(ra, ra.pkcs_req({f.ca()}), f.ca()).status, pki_status::pending);
    auto lower = make_client("client1", "CN=ra2,OU=IOSCS ra,O=lab");  // case-insensitive
    EXPECT_EQ(f.send(lower, lower.pkcs_req({f.ca()}), f.ca()).status, pki_status::pending);
    auto router = make_client("client2", "CN=router2,O=lab");
    EXPECT_EQ(f.send(router, router.pkcs_req({f.ca()}), f.ca()).status, pki_status::pending);
    const auto show = f.admin("show requests");
    const auto ra_section = show.find("RA certificate requests:");
    const auto router_section = show.find("Router certificates requests:");
    const auto ra_row = show.find("cn=ra,ou=ioscs RA,o=lab");
    const auto ra2_row = show.find("cn=ra2,ou=IOSCS ra,o=lab");
    const auto router_row = show.find("cn=router2,o=lab");
    ASSERT_NE(ra_row, std::string::npos) << show;
    EXPECT_TRUE(ra_section < ra_row && ra_row < router_section) << show;
    EXPECT_TRUE(ra_section < ra2_row && ra2_row < router_section) << show;
    EXPECT_GT(router_row, router_section) << show;
    f.admin("grant 1");
    auto rep = f.send(ra, ra.cert_poll({f.ca()}, f.ca()), f.ca());
    ASSERT_EQ(rep.status, pki_status::success);
    // cert_profile::registration_authority: signing + encryption, not a CA, no copied SAN.
    X509* cert = rep.certs.front().get();
    EXPECT_EQ(X509_check_ca(cert), 0);
    EXPECT_TRUE(X509_get_key_usage(cert) & KU_DIGITAL_SIGNATURE);
    EXPECT_TRUE(X509_get_key_usage(cert) & KU_KEY_ENCIPHERMENT);
    EXPECT_EQ(X509_get_ext_by_NID(cert, NID_subject_alt_name, -1), -1);
}

TEST(ca_ra_contract, ra_auto_grants_what_the_ra_forwarded_without_asking_the_challenge) {
    ra_fixture f{grant_mode::ra_auto};
    ASSERT_TRUE(f.ra_cert);
    auto c = make_client("client1", "CN=router1,O=lab", std::nullopt);
    auto rep = f.forward(c, f.ca());
    ASSERT_EQ(rep.status, pki_status::success) << f.last_detail;
    X509* cert = rep.certs.front().get();
    EXPECT_EQ(subject_string(cert), "CN=router1,O=lab");
    EXPECT_TRUE(same_public_key(X509_get0_pubkey(cert), c.key));  // the client's key, not the RA's
    EXPECT_NE(f.last_detail.find("forwarded by RA"), std::string::npos);
}

TEST(ca_ra_contract, ra_auto_holds_everything_not_signed_by_an_ra) {
    ra_fixture f{grant_mode::ra_auto};
    // The RA's own first request was held too (the fixture granted it by hand).
    EXPECT_EQ(f.engine->database().requests().front().state, request_state::issued);
    auto c = make_client("client1", "CN=router1,O=lab");
    auto rep = f.send(c, c.pkcs_req({f.ca()}), f.ca());
    EXPECT_EQ(rep.status, pki_status::pending);
    // A renewal signed by an ordinary issued certificate: held as well.
    f.admin("grant all");
    auto issued = f.send(c, c.cert_poll({f.ca()}, f.ca()), f.ca());
    ASSERT_EQ(issued.status, pki_status::success);
    auto renewal = f.send(c.renewal_req({f.ca()}, issued.certs.front().get(), c.key), f.ca(),
                          issued.certs.front().get(), c.key);
    EXPECT_EQ(renewal.status, pki_status::pending);
}

TEST(ca_ra_contract, ra_auto_grants_the_ra_own_renewal_and_rollover_request) {
    ra_fixture f{grant_mode::ra_auto};
    ASSERT_TRUE(f.ra_cert);
    auto renewal = f.send(f.ra_client.renewal_req({f.ca()}, f.ra_cert.get(), fixture_key("ra")),
                          f.ca(), f.ra_cert.get(), fixture_key("ra"));
    ASSERT_EQ(renewal.status, pki_status::success) << f.last_detail;
    EXPECT_TRUE(is_ra_subject(X509_get_subject_name(renewal.certs.front().get())));
    // During the overlap the RA's rollover request (PKCSReq signed with its RA certificate,
    // encrypted to the shadow) gets the rollover RA certificate from the shadow.
    f.at(f.due());
    request_options o;
    o.transaction_id = "ra-rollover";
    auto rolled = f.send(f.ra_client.pkcs_req({f.shadow()}, o, f.ra_cert.get(), fixture_key("ra")),
                         f.shadow(), f.ra_cert.get(), fixture_key("ra"));
    ASSERT_EQ(rolled.status, pki_status::success) << f.last_detail;
    EXPECT_EQ(X509_verify(rolled.certs.front().get(), X509_get0_pubkey(f.shadow())), 1);
    EXPECT_EQ(not_before(rolled.certs.front().get()), not_before(f.shadow()));
    // And a client request the RA forwards to the shadow: a rollover ID certificate.
    auto c = make_client("client2", "CN=router2,O=lab", std::nullopt);
    auto fwd = f.forward(c, f.shadow());
    ASSERT_EQ(fwd.status, pki_status::success) << f.last_detail;
    EXPECT_EQ(X509_verify(fwd.certs.front().get(), X509_get0_pubkey(f.shadow())), 1);
}

TEST(ca_ra_contract, forwarded_requests_follow_the_other_grant_modes) {
    {
        ra_fixture f{grant_mode::manual};
        auto c = make_client("client1", "CN=router1,O=lab", std::nullopt);
        EXPECT_EQ(f.forward(c, f.ca()).status, pki_status::pending);
    }
    {
        ra_fixture f{grant_mode::auto_grant};
        auto c = make_client("client1", "CN=router1,O=lab", std::nullopt);
        EXPECT_EQ(f.forward(c, f.ca()).status, pki_status::success) << f.last_detail;
    }
}

TEST(ca_ra_contract, a_certificate_without_the_ra_ou_is_not_an_ra) {
    ra_fixture f{grant_mode::ra_auto};
    // An ordinary router certificate (granted by hand) signing someone else's CSR.
    auto r = make_client("client2", "CN=router2,O=lab");
    f.send(r, r.pkcs_req({f.ca()}), f.ca());
    f.admin("grant all");
    auto issued = f.send(r, r.cert_poll({f.ca()}, f.ca()), f.ca());
    ASSERT_EQ(issued.status, pki_status::success);
    auto c = make_client("client1", "CN=router1,O=lab", std::nullopt);
    auto rep = f.send(c.pkcs_req({f.ca()}, {}, issued.certs.front().get(), r.key), f.ca(),
                      issued.certs.front().get(), r.key);
    // Not forwarded by an RA, so a renewal of router2 -- and a renewal may not change the
    // subject without a challenge (issue 11 §2.1): refused, never granted as ra-auto would.
    EXPECT_EQ(rep.status, pki_status::failure);
    EXPECT_NE(rep.fail_info_text.find("renewal may not change the subject"), std::string::npos);
}

}  // namespace
}  // namespace pkisim::scep
