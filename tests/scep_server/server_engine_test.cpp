#include "pkisim/scep/ca_engine.hpp"

#include <gtest/gtest.h>

#include "pkisim/scep/crypto.hpp"
#include "server_support.hpp"

namespace pkisim::scep {
namespace {

using namespace testing;
using timers::grant_mode;

struct engine_fixture {
    explicit engine_fixture(grant_mode grant = grant_mode::auto_grant) {
        load_providers(false);
        auto o = lab_engine_options(dir.path, grant);
        engine = std::make_unique<ca_engine>(o, clock);
    }
    X509* ca() { return engine->ca_certificate(); }
    // Sends `der`, expects a CertRep and decodes it for client `c`.
    cert_rep send(const client& c, const bytes& der) {
        return send(der, c.self_signed.get(), c.key);
    }
    // The reply is encrypted to the request's signer certificate.
    cert_rep send(const bytes& der, X509* recipient, EVP_PKEY* key) {
        auto a = engine->pki_operation(der);
        EXPECT_EQ(a.status, 200u) << a.detail;
        EXPECT_EQ(a.content_type, "application/x-pki-message");
        std::array<X509*, 1> trusted{ca()};
        auto rep = decode_cert_rep(bytes(a.body.begin(), a.body.end()), recipient, key, trusted);
        EXPECT_TRUE(rep.has_value()) << a.detail << " / " << (rep ? "" : rep.error().message());
        return rep ? std::move(*rep) : cert_rep{};
    }

    temp_dir dir;
    timers::manual_clock clock{test_epoch()};
    std::unique_ptr<ca_engine> engine;
};

TEST(ca_engine, first_start_creates_a_ca_per_rule_1) {
    engine_fixture f;
    EXPECT_EQ(subject_string(f.ca()), "CN=labca,O=lab");
    EXPECT_EQ(not_before(f.ca()), test_epoch());
    EXPECT_EQ(not_after(f.ca()), test_epoch() + timers::days{1095});
    EXPECT_EQ(serial_u64(f.ca()), 1u);
    EXPECT_TRUE(std::filesystem::exists(f.engine->crl_path()));
}

TEST(ca_engine, auto_grant_issues_with_validity_from_timers) {
    engine_fixture f;
    f.clock.advance(timers::days{10});
    csr_options extra;
    extra.dns_names = {"r1.lab"};
    auto c = make_client("client1", "CN=router1,O=lab", "secret", extra);
    auto rep = f.send(c, c.pkcs_req({f.ca()}));
    ASSERT_EQ(rep.status, pki_status::success);
    ASSERT_EQ(rep.certs.size(), 1u);
    X509* cert = rep.certs.front().get();
    EXPECT_EQ(subject_string(cert), "CN=router1,O=lab");
    EXPECT_EQ(serial_u64(cert), 2u);
    EXPECT_EQ(not_before(cert), test_epoch() + timers::days{10});
    EXPECT_EQ(not_after(cert), test_epoch() + timers::days{375});
    EXPECT_EQ(rep.cipher_nid, NID_aes_256_cbc);  // the client's own cipher (scep-wire §0.2)
}

TEST(ca_engine, issued_certificate_is_truncated_at_the_ca_not_after) {
    engine_fixture f;
    f.clock.advance(timers::days{1000});
    auto c = make_client();
    auto rep = f.send(c, c.pkcs_req({f.ca()}));
    ASSERT_EQ(rep.status, pki_status::success);
    EXPECT_EQ(not_after(rep.certs.front().get()), not_after(f.ca()));
}

TEST(ca_engine, resent_identical_pkcsreq_gets_the_same_certificate) {
    engine_fixture f;
    auto c = make_client();
    const auto req = c.pkcs_req({f.ca()});
    auto first = f.send(c, req);
    request_options o;
    o.sender_nonce = test_nonce(9);
    auto again = f.send(c, c.pkcs_req({f.ca()}, o));
    ASSERT_EQ(again.status, pki_status::success);
    EXPECT_EQ(serial_u64(again.certs.front().get()), serial_u64(first.certs.front().get()));
    EXPECT_EQ(again.recipient_nonce, test_nonce(9));
    EXPECT_EQ(f.engine->database().last_serial(), 2u);
}

TEST(ca_engine, manual_mode_holds_the_request_until_an_operator_grants_it) {
    engine_fixture f{grant_mode::manual};
    auto c = make_client();
    auto rep = f.send(c, c.pkcs_req({f.ca()}));
    EXPECT_EQ(rep.status, pki_status::pending);
    EXPECT_EQ(f.send(c, c.cert_poll({f.ca()}, f.ca())).status, pki_status::pending);
    EXPECT_NE(f.engine->admin("show requests").text.find("pending"), std::string::npos);
    f.clock.advance(timers::hours{2});
    auto g = f.engine->admin("grant 1");
    EXPECT_TRUE(g.ok);
    EXPECT_NE(g.text.find("Granted request 1"), std::string::npos) << g.text;
    auto poll = f.send(c, c.cert_poll({f.ca()}, f.ca()));
    ASSERT_EQ(poll.status, pki_status::success);
    // Model rule 2: notBefore = grant time, not request time.
    EXPECT_EQ(not_before(poll.certs.front().get()), test_epoch() + timers::hours{2});
}

TEST(ca_engine, rejected_request_answers_the_next_poll_with_failure) {
    engine_fixture f{grant_mode::manual};
    auto c = make_client();
    f.send(c, c.pkcs_req({f.ca()}));
    EXPECT_TRUE(f.engine->admin("reject all").ok);
    auto poll = f.send(c, c.cert_poll({f.ca()}, f.ca()));
    EXPECT_EQ(poll.status, pki_status::failure);
    EXPECT_EQ(poll.failure, fail_info::bad_request);
}

TEST(ca_engine, pending_request_expires_after_lifetime_enrollment_request) {
    engine_fixture f{grant_mode::manual};
    auto c = make_client();
    f.send(c, c.pkcs_req({f.ca()}));
    f.clock.advance(timers::hours{168});
    f.engine->tick();
    EXPECT_EQ(f.engine->database().request(1)->state, request_state::expired);
    EXPECT_EQ(f.send(c, c.cert_poll({f.ca()}, f.ca())).status, pki_status::failure);
    EXPECT_FALSE(f.engine->admin("grant 1").text.find("Granted") != std::string::npos);
}

TEST(ca_engine, grant_none_rejects_every_request) {
    engine_fixture f{grant_mode::none};
    auto c = make_client();
    auto rep = f.send(c, c.pkcs_req({f.ca()}));
    EXPECT_EQ(rep.status, pki_status::failure);
}

TEST(ca_engine, one_time_password_is_granted_at_once_and_only_once) {
    engine_fixture f{grant_mode::manual};
    auto out = f.engine->admin("password generate 5");
    ASSERT_TRUE(out.ok);
    const auto open = out.text.find('(');
    const auto pw = out.text.substr(open + 1, out.text.find(')') - open - 1);
    EXPECT_NE(out.text.find("valid for 5 minute(s)"), std::string::npos) << out.text;
    auto c = make_client("client1", "CN=router1,O=lab", pw);
    EXPECT_EQ(f.send(c, c.pkcs_req({f.ca()})).status, pki_status::success);
    auto c2 = make_client("client2", "CN=router2,O=lab", pw);
    EXPECT_EQ(f.send(c2, c2.pkcs_req({f.ca()})).status, pki_status::failure);
}

TEST(ca_engine, renewal_signed_by_our_certificate_needs_no_challenge) {
    engine_fixture f;
    auto c = make_client();
    auto first = f.send(c, c.pkcs_req({f.ca()}));
    ASSERT_EQ(first.status, pki_status::success);
    f.clock.advance(timers::days{100});
    auto renewing = make_client("client2", "CN=router1,O=lab", std::nullopt);
    // scep-wire §0.12: PKCSReq signed by a certificate we issued is a renewal.
    auto rep = f.send(renewing.pkcs_req({f.ca()}, {}, first.certs.front().get(), c.key),
                      first.certs.front().get(), c.key);
    ASSERT_EQ(rep.status, pki_status::success) << rep.fail_info_text;
    EXPECT_EQ(serial_u64(rep.certs.front().get()), 3u);
    EXPECT_TRUE(f.engine->database().request(2)->renewal);
}

TEST(ca_engine, renewal_with_an_expired_certificate_fails) {
    engine_fixture f;
    auto c = make_client();
    auto first = f.send(c, c.pkcs_req({f.ca()}));
    f.clock.advance(timers::days{400});
    auto rep = f.send(c.renewal_req({f.ca()}, first.certs.front().get(), c.key),
                      first.certs.front().get(), c.key);
    EXPECT_EQ(rep.status, pki_status::failure);
}

TEST(ca_engine, get_cert_and_get_crl_with_revocation) {
    engine_fixture f;
    auto c = make_client();
    auto first = f.send(c, c.pkcs_req({f.ca()}));
    X509* issued = first.certs.front().get();
    auto got = f.send(c, c.get_cert({f.ca()}, issued));
    ASSERT_EQ(got.status, pki_status::success);
    EXPECT_EQ(serial_u64(got.certs.front().get()), 2u);
    EXPECT_TRUE(f.engine->admin("revoke 2").ok);
    EXPECT_FALSE(f.engine->admin("revoke 77").ok);
    auto crl = f.send(c, c.get_crl({f.ca()}, issued));
    ASSERT_EQ(crl.status, pki_status::success);
    ASSERT_EQ(crl.crls.size(), 1u);
    EXPECT_TRUE(crl_lists(crl.crls.front().get(), 2));
}

TEST(ca_engine, crl_is_renewed_per_lifetime_crl) {
    engine_fixture f;
    const auto before = read_file(f.engine->crl_path().string());
    f.clock.advance(timers::hours{168});
    f.engine->tick();
    const auto after = read_file(f.engine->crl_path().string());
    EXPECT_NE(before, after);
    auto crl = x509_crl_from_der(bytes(after.begin(), after.end()));
    ASSERT_TRUE(crl);
    EXPECT_EQ(from_asn1_time(X509_CRL_get0_lastUpdate(crl->get())).value(),
              test_epoch() + timers::hours{168});
}

TEST(ca_engine, database_level_complete_writes_serial_cer_files) {
    load_providers(false);
    temp_dir dir;
    timers::manual_clock clock{test_epoch()};
    auto o = lab_engine_options(dir.path, grant_mode::auto_grant);
    o.server.db_level = timers::database_level::complete;
    ca_engine engine{o, clock};
    auto c = make_client();
    ASSERT_EQ(engine.pki_operation(c.pkcs_req({engine.ca_certificate()})).status, 200u);
    EXPECT_TRUE(std::filesystem::exists(o.data_dir / "2.cer"));
}

TEST(ca_engine, restart_loads_the_same_ca_and_wrong_passphrase_is_refused) {
    load_providers(false);
    temp_dir dir;
    timers::manual_clock clock{test_epoch()};
    auto o = lab_engine_options(dir.path, grant_mode::auto_grant);
    std::string fp;
    {
        ca_engine e{o, clock};
        fp = sha256_fingerprint(e.ca_certificate());
    }
    {
        ca_engine e{o, clock};
        EXPECT_EQ(sha256_fingerprint(e.ca_certificate()), fp);
    }
    auto wrong = o;
    wrong.passphrase = "not-it";
    try {
        ca_engine e{wrong, clock};
        FAIL() << "wrong passphrase accepted";
    } catch (const startup_error& e) {
        EXPECT_EQ(e.status(), exit_status::wrong_passphrase);
    }
    auto other = o;
    other.server.issuer_name = "CN=someone-else";
    try {
        ca_engine e{other, clock};
        FAIL() << "foreign data folder accepted";
    } catch (const startup_error& e) {
        EXPECT_EQ(e.status(), exit_status::foreign_data);
    }
}

TEST(ca_engine, show_commands_use_the_ios_layouts) {
    engine_fixture f;
    auto server = f.engine->admin("show server").text;
    EXPECT_NE(server.find("Certificate Server labca:\n    Status: enabled\n"), std::string::npos);
    EXPECT_NE(server.find("    Issuer name: CN=labca,O=lab\n"), std::string::npos);
    EXPECT_NE(server.find("    Granting mode is: auto\n"), std::string::npos);
    EXPECT_NE(server.find("    CA certificate expiration timer: 00:00:00 UTC Dec 31 2032\n"),
              std::string::npos)
        << server;
    auto certs = f.engine->admin("show certificates").text;
    EXPECT_EQ(certs,
              "Serial Issued date              Expire date               Subject Name\n"
              "1       00:00:00 UTC Jan 1 2030  00:00:00 UTC Dec 31 2032  cn=labca o=lab\n");
    auto timers_text = f.engine->admin("show timers").text;
    EXPECT_NE(timers_text.find("CS Timers\n|  7d 0:00:00.000  (2030-01-08T00:00:00Z)\n"),
              std::string::npos)
        << timers_text;
    EXPECT_NE(timers_text.find("  |1095d 0:00:00.000  (2032-12-31T00:00:00Z) CS CERT EXPIRE\n"),
              std::string::npos)
        << timers_text;
    EXPECT_FALSE(f.engine->admin("frobnicate").ok);
}

TEST(ca_engine, ios_countdown_drops_leading_zero_fields) {
    EXPECT_EQ(ios_countdown(timers::duration{48'241}), "48.241");
    EXPECT_EQ(ios_countdown(timers::duration{273'164}), "4:33.164");
    EXPECT_EQ(ios_countdown(timers::hours{5} + timers::minutes{54} + timers::duration{30'889}),
              "5:54:30.889");
    EXPECT_EQ(ios_countdown(timers::days{1094} + timers::hours{5} + timers::minutes{21} +
                            timers::duration{45'573}),
              "1094d 5:21:45.573");
}

}  // namespace
}  // namespace pkisim::scep
