// The certificate policy (issue 11 §2, policy.hpp) as the CA engine applies it: renewal rules,
// CSR key rules, EC client keys end to end, the challenge under `grant auto`, one-time
// passwords kept as digests. Real OpenSSL, real SQLite, a manual clock.
#include "pkisim/scep/policy.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <openssl/x509v3.h>

#include "pkisim/scep/ca_engine.hpp"
#include "pkisim/scep/crypto.hpp"
#include "server_support.hpp"

namespace pkisim::scep {
namespace {

using namespace testing;
using timers::grant_mode;

struct policy_fixture {
    explicit policy_fixture(grant_mode grant = grant_mode::auto_grant,
                            std::optional<std::string> challenge = std::string{"secret"},
                            unsigned min_rsa_bits = 2048, bool identity_change = false) {
        load_providers(false);
        auto o = lab_engine_options(dir.path, grant);
        o.challenge = std::move(challenge);
        o.min_rsa_bits = min_rsa_bits;
        o.renewal_identity_change = identity_change;
        engine = std::make_unique<ca_engine>(o, clock);
    }
    X509* ca() { return engine->ca_certificate(); }
    // The reply is encrypted to the request's signer certificate.
    cert_rep send(const bytes& der, X509* recipient, EVP_PKEY* key) {
        auto a = engine->pki_operation(der);
        last_detail = a.detail;
        EXPECT_EQ(a.status, 200u) << a.detail;
        std::array<X509*, 1> trusted{ca()};
        auto rep = decode_cert_rep(bytes(a.body.begin(), a.body.end()), recipient, key, trusted);
        EXPECT_TRUE(rep.has_value()) << a.detail << " / " << (rep ? "" : rep.error().message());
        return rep ? std::move(*rep) : cert_rep{};
    }
    cert_rep send(const client& c, const bytes& der) {
        return send(der, c.self_signed.get(), c.key);
    }
    // Enrolls `c` and returns its certificate.
    x509_ptr enroll(const client& c) {
        auto rep = send(c, c.pkcs_req({ca()}));
        EXPECT_EQ(rep.status, pki_status::success) << last_detail;
        return rep.certs.empty() ? nullptr : std::move(rep.certs.front());
    }

    temp_dir dir;
    timers::manual_clock clock{test_epoch()};
    std::unique_ptr<ca_engine> engine;
    std::string last_detail;
};

// A client with a key made here (EC curves, short RSA keys), like make_client.
struct own_client {
    evp_pkey_ptr key;
    client c;
};
own_client client_with(evp_pkey_ptr key, std::string_view dn,
                       std::optional<std::string> challenge = std::string{"secret"},
                       const csr_options& extra = {}) {
    own_client out;
    out.key = std::move(key);
    out.c.key = out.key.get();
    const time_point t = test_epoch();
    out.c.self_signed = make_self_signed_signer(out.c.key, "CN=SCEP SIGNER,O=scep-client",
                                                {t - timers::hours{1}, t + timers::hours{1}});
    csr_options o = extra;
    o.challenge_password = std::move(challenge);
    out.c.csr = make_csr(out.c.key, dn, o);
    out.c.transaction_id = transaction_id_for(out.c.key);
    return out;
}

std::string key_usage_text(X509* cert) {
    const auto ku = X509_get_key_usage(cert);
    std::string out;
    if (ku & KU_DIGITAL_SIGNATURE)
        out += "digitalSignature ";
    if (ku & KU_KEY_ENCIPHERMENT)
        out += "keyEncipherment ";
    if (ku & KU_KEY_AGREEMENT)
        out += "keyAgreement ";
    if (ku & KU_KEY_CERT_SIGN)
        out += "keyCertSign ";
    return out;
}

// ---------------------------------------------------------------------------------------------
// Item 1: renewal.

TEST(renewal_policy, a_renewal_signed_by_a_revoked_certificate_is_refused_in_both_forms) {
    policy_fixture f;
    auto c = make_client();
    auto old = f.enroll(c);
    ASSERT_TRUE(old);
    ASSERT_TRUE(f.engine->admin(fmt::format("revoke {}", serial_hex(old.get()))).ok);
    request_options o;
    o.sender_nonce = test_nonce(7);
    for (const bool as_pkcs_req : {false, true}) {
        const auto der = as_pkcs_req ? c.pkcs_req({f.ca()}, o, old.get(), c.key)
                                     : c.renewal_req({f.ca()}, old.get(), c.key, o);
        auto rep = f.send(der, old.get(), c.key);
        EXPECT_EQ(rep.status, pki_status::failure) << f.last_detail;
        EXPECT_EQ(rep.failure, fail_info::bad_request);
        EXPECT_NE(rep.fail_info_text.find("revoked"), std::string::npos) << rep.fail_info_text;
    }
    EXPECT_EQ(f.engine->database().last_serial(), 2u);  // nothing issued after the revocation
}

TEST(renewal_policy, a_renewal_signed_by_an_expired_certificate_is_refused) {
    policy_fixture f;
    auto c = make_client();
    auto old = f.enroll(c);
    ASSERT_TRUE(old);
    f.clock.set(not_after(old.get()) + timers::seconds{1});
    for (const bool as_pkcs_req : {false, true}) {
        const auto der = as_pkcs_req ? c.pkcs_req({f.ca()}, {}, old.get(), c.key)
                                     : c.renewal_req({f.ca()}, old.get(), c.key);
        auto rep = f.send(der, old.get(), c.key);
        EXPECT_EQ(rep.status, pki_status::failure) << f.last_detail;
        EXPECT_NE(rep.fail_info_text.find("renewal signer rejected"), std::string::npos);
    }
}

TEST(renewal_policy, a_renewal_without_challenge_keeps_subject_and_subject_alt_name) {
    policy_fixture f;
    csr_options san;
    san.dns_names = {"r1.lab"};
    auto c = make_client("client1", "CN=router1,O=lab", "secret", san);
    auto old = f.enroll(c);
    ASSERT_TRUE(old);
    struct change {
        std::string dn;
        std::vector<std::string> dns;
        bool allowed;
    };
    const std::vector<change> cases = {
        {"CN=router1,O=lab", {"r1.lab"}, true},
        {"CN=admin,O=other-org", {"r1.lab"}, false},
        {"CN=router1,O=lab", {"admin.example.com"}, false},
        {"CN=router1,O=lab", {}, false},
        {"O=lab,CN=router1", {"r1.lab"}, false},  // same words, another DN
    };
    std::uint8_t nonce = 20;
    for (const auto& k : cases) {
        csr_options o;
        o.dns_names = k.dns;
        auto renewing = make_client("client2", k.dn, std::nullopt, o);
        request_options ro;
        ro.sender_nonce = test_nonce(nonce++);
        auto rep = f.send(renewing.renewal_req({f.ca()}, old.get(), c.key, ro), old.get(), c.key);
        EXPECT_EQ(rep.status, k.allowed ? pki_status::success : pki_status::failure)
            << k.dn << " " << f.last_detail;
        if (!k.allowed) {
            EXPECT_NE(rep.fail_info_text.find("renewal may not change"), std::string::npos);
        }
    }
}

TEST(renewal_policy, a_challenge_or_the_option_allows_a_new_identity_on_renewal) {
    for (const bool option : {false, true}) {
        policy_fixture f{grant_mode::auto_grant, std::string{"secret"}, 2048, option};
        auto c = make_client();
        auto old = f.enroll(c);
        ASSERT_TRUE(old);
        // With the static challenge (or the option): allowed; a wrong challenge authorises
        // nothing (and is not asked of a renewal).
        auto with = make_client("client2", "CN=admin,O=other-org", option ? "wrong" : "secret");
        auto rep = f.send(with.renewal_req({f.ca()}, old.get(), c.key), old.get(), c.key);
        EXPECT_EQ(rep.status, pki_status::success) << f.last_detail;
        auto wrong = make_client("client2", "CN=other,O=lab", "wrong");
        request_options ro;
        ro.sender_nonce = test_nonce(3);
        auto rep2 = f.send(wrong.renewal_req({f.ca()}, old.get(), c.key, ro), old.get(), c.key);
        EXPECT_EQ(rep2.status, option ? pki_status::success : pki_status::failure) << f.last_detail;
    }
}

// ---------------------------------------------------------------------------------------------
// Items 3 and 5: the CSR's key.

TEST(csr_policy, ec_client_keys_enroll_end_to_end_with_key_usage_by_key_type) {
    policy_fixture f;
    for (const char* curve : {"P-256", "P-384"}) {
        auto oc = client_with(generate_ec_key(curve), fmt::format("CN=ec-{},O=lab", curve));
        auto rep = f.send(oc.c, oc.c.pkcs_req({f.ca()}));
        ASSERT_EQ(rep.status, pki_status::success) << curve << " " << f.last_detail;
        X509* cert = rep.certs.front().get();
        EXPECT_TRUE(same_public_key(X509_get0_pubkey(cert), oc.key.get()));
        // RFC 5480: no keyEncipherment on an EC key.
        EXPECT_EQ(key_usage_text(cert), "digitalSignature ") << curve;
        // And a renewal signed by the EC certificate: the reply is agreed (ECDH) to it.
        auto renewed = f.send(oc.c.renewal_req({f.ca()}, cert, oc.key.get()), cert, oc.key.get());
        EXPECT_EQ(renewed.status, pki_status::success) << curve << " " << f.last_detail;
    }
    auto rsa = make_client();
    auto rep = f.send(rsa, rsa.pkcs_req({f.ca()}));
    ASSERT_EQ(rep.status, pki_status::success);
    EXPECT_EQ(key_usage_text(rep.certs.front().get()), "digitalSignature keyEncipherment ");
}

TEST(csr_policy, other_curves_and_key_types_are_refused_before_anything_is_stored) {
    policy_fixture f;
    const auto before = f.engine->database().last_serial();
    for (const char* curve : {"P-521", "secp256k1"}) {
        auto oc = client_with(generate_ec_key(curve), "CN=ec,O=lab");
        auto rep = f.send(oc.c, oc.c.pkcs_req({f.ca()}));
        EXPECT_EQ(rep.status, pki_status::failure) << curve;
        EXPECT_NE(rep.fail_info_text.find("not accepted"), std::string::npos) << rep.fail_info_text;
    }
    EXPECT_EQ(f.engine->database().last_serial(), before);
    EXPECT_TRUE(f.engine->database().requests().empty());
}

TEST(csr_policy, rsa_keys_below_the_minimum_are_refused_and_the_minimum_is_configurable) {
    struct row {
        unsigned bits;
        unsigned minimum;
        bool issued;
    };
    for (const row r : {row{1024, 2048, false}, row{512, 2048, false}, row{2047, 2048, false},
                        row{1024, 1024, true}, row{2048, 3072, false}}) {
        policy_fixture f{grant_mode::auto_grant, std::string{"secret"}, r.minimum};
        auto oc = client_with(generate_rsa_key(r.bits), "CN=short,O=lab");
        auto rep = f.send(oc.c, oc.c.pkcs_req({f.ca()}));
        EXPECT_EQ(rep.status, r.issued ? pki_status::success : pki_status::failure)
            << r.bits << "/" << r.minimum << " " << f.last_detail;
        if (!r.issued) {
            EXPECT_NE(rep.fail_info_text.find("below the minimum"), std::string::npos);
        }
    }
}

TEST(csr_policy, an_ec_ca_signs_replies_and_certificates_with_ecdsa) {
    load_providers(false);
    temp_dir dir;
    timers::manual_clock clock{test_epoch()};
    auto o = lab_engine_options(dir.path, grant_mode::auto_grant);
    o.existing_key_pem.clear();
    o.key_type = "ec";
    o.ec_curve = "P-384";
    ca_engine engine{o, clock};
    X509* ca = engine.ca_certificate();
    EXPECT_TRUE(EVP_PKEY_is_a(X509_get0_pubkey(ca), "EC"));
    EXPECT_EQ(key_usage_text(ca), "digitalSignature keyCertSign ");
    // An EC CA can only be reached by ECDH: an EC client enrolls.
    auto oc = client_with(generate_ec_key("P-256"), "CN=ec-client,O=lab");
    auto a = engine.pki_operation(oc.c.pkcs_req({ca}));
    ASSERT_EQ(a.status, 200u) << a.detail;
    std::array<X509*, 1> trusted{ca};
    auto rep = decode_cert_rep(bytes(a.body.begin(), a.body.end()), oc.c.self_signed.get(),
                               oc.key.get(), trusted);
    ASSERT_TRUE(rep) << rep.error().message();
    ASSERT_EQ(rep->status, pki_status::success) << a.detail;
    EXPECT_EQ(X509_verify(rep->certs.front().get(), X509_get0_pubkey(ca)), 1);
}

// ---------------------------------------------------------------------------------------------
// Item 6 and issue 13 §4: the challenge.

TEST(challenge_policy, grant_auto_without_a_configured_challenge_accepts_any_challenge) {
    struct row {
        grant_mode grant;
        std::optional<std::string> configured;
        std::optional<std::string> sent;
        pki_status expected;
    };
    const std::vector<row> rows = {
        {grant_mode::auto_grant, std::nullopt, std::string{"whatever-was-typed"},
         pki_status::success},
        {grant_mode::auto_grant, std::nullopt, std::nullopt, pki_status::success},
        {grant_mode::auto_grant, std::string{"secret"}, std::string{"wrong"}, pki_status::failure},
        {grant_mode::auto_grant, std::string{"secret"}, std::nullopt, pki_status::failure},
        {grant_mode::auto_grant, std::string{"secret"}, std::string{"secret"}, pki_status::success},
        {grant_mode::manual, std::nullopt, std::string{"typed"}, pki_status::failure},
        {grant_mode::manual, std::nullopt, std::nullopt, pki_status::pending},
    };
    for (const auto& r : rows) {
        policy_fixture f{r.grant, r.configured};
        auto c = make_client("client1", "CN=router1,O=lab", r.sent);
        auto rep = f.send(c, c.pkcs_req({f.ca()}));
        EXPECT_EQ(rep.status, r.expected)
            << r.configured.value_or("-") << " / " << r.sent.value_or("-") << " " << f.last_detail;
    }
}

TEST(challenge_policy, one_time_passwords_are_stored_as_digests_and_grant_once) {
    policy_fixture f{grant_mode::manual};
    auto g = f.engine->admin("password generate 10");
    ASSERT_TRUE(g.ok) << g.text;
    const auto open = g.text.find('(');
    const auto pw = g.text.substr(open + 1, g.text.find(')') - open - 1);
    ASSERT_EQ(pw.size(), 16u);
    // The plain password is not in the database.
    EXPECT_FALSE(f.engine->database().consume_password(pw, f.clock.now()));
    auto c = make_client("client1", "CN=router1,O=lab", pw);
    EXPECT_EQ(f.send(c, c.pkcs_req({f.ca()})).status, pki_status::success) << f.last_detail;
    auto again = make_client("client2", "CN=router2,O=lab", pw);
    auto rep = f.send(again, again.pkcs_req({f.ca()}));
    EXPECT_EQ(rep.status, pki_status::failure);
    EXPECT_EQ(rep.fail_info_text, "wrong or expired challenge password");
}

TEST(challenge_policy, the_static_challenge_matches_exactly) {
    EXPECT_TRUE(challenge_matches("secret", "secret"));
    for (const char* other : {"", "secre", "secret ", "Secret", "secret\n", "secretsecret"})
        EXPECT_FALSE(challenge_matches(other, "secret")) << other;
    EXPECT_NE(one_time_password_digest("A"), one_time_password_digest("B"));
    EXPECT_EQ(one_time_password_digest("A").size(), 64u);
}

TEST(grant_policy, decide_grant_follows_the_ios_grant_modes) {
    using c = challenge_outcome;
    EXPECT_EQ(decide_grant(grant_mode::none, c::one_time_password, false),
              grant_decision::issue_now);
    EXPECT_EQ(decide_grant(grant_mode::none, c::static_password, true), grant_decision::refuse);
    EXPECT_EQ(decide_grant(grant_mode::manual, c::static_password, true), grant_decision::hold);
    EXPECT_EQ(decide_grant(grant_mode::ra_auto, c::not_asked, true), grant_decision::issue_now);
    EXPECT_EQ(decide_grant(grant_mode::ra_auto, c::static_password, false), grant_decision::hold);
    EXPECT_EQ(decide_grant(grant_mode::auto_grant, c::ignored, false), grant_decision::issue_now);
}

}  // namespace
}  // namespace pkisim::scep

namespace pkisim::scep {
namespace {

using namespace testing;

std::string eku_text(X509* cert) {
    auto* eku = static_cast<EXTENDED_KEY_USAGE*>(
        X509_get_ext_d2i(cert, NID_ext_key_usage, nullptr, nullptr));
    std::string out;
    for (int i = 0; eku != nullptr && i < sk_ASN1_OBJECT_num(eku); ++i) {
        out += OBJ_nid2sn(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i)));
        out += ' ';
    }
    EXTENDED_KEY_USAGE_free(eku);
    return out;
}

// Item 4: `eku` under `crypto pki server`, and the rule for requested extensions.
TEST(extension_policy, the_server_eku_wins_else_a_requested_eku_is_copied) {
    struct row {
        std::vector<std::string> server;
        std::vector<std::string> requested;
        std::string expected;
    };
    const std::vector<row> rows = {
        {{}, {}, ""},
        {{}, {"clientAuth"}, "clientAuth "},
        {{"client-auth", "server-auth"}, {}, "clientAuth serverAuth "},
        {{"ipsec-end-system"}, {"codeSigning"}, "ipsecEndSystem "},
    };
    for (const auto& r : rows) {
        load_providers(false);
        temp_dir dir;
        timers::manual_clock clock{test_epoch()};
        auto o = lab_engine_options(dir.path, grant_mode::auto_grant);
        o.server.eku = r.server;
        ca_engine engine{o, clock};
        csr_options extra;
        extra.dns_names = {"r1.lab"};
        extra.extended_key_usages = r.requested;
        auto c = make_client("client1", "CN=router1,O=lab", "secret", extra);
        auto a = engine.pki_operation(c.pkcs_req({engine.ca_certificate()}));
        std::array<X509*, 1> trusted{engine.ca_certificate()};
        auto rep = decode_cert_rep(bytes(a.body.begin(), a.body.end()), c.self_signed.get(), c.key,
                                   trusted);
        ASSERT_TRUE(rep && rep->status == pki_status::success) << a.detail;
        EXPECT_EQ(eku_text(rep->certs.front().get()), r.expected) << r.expected;
        // The SAN is still copied, CA:FALSE is ours.
        EXPECT_EQ(X509_check_ca(rep->certs.front().get()), 0);
        EXPECT_GE(X509_get_ext_by_NID(rep->certs.front().get(), NID_subject_alt_name, -1), 0);
    }
}

TEST(extension_policy, the_ios_eku_command_is_parsed_and_checked) {
    auto ok = timers::parse_ios_config(
        "crypto pki server labca\n eku client-auth ipsec-end-system\n", "ca.ios");
    ASSERT_TRUE(ok) << ok.error().message;
    const auto* s = ok->find_server("labca");
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->eku, (std::vector<std::string>{"client-auth", "ipsec-end-system"}));
    auto bad =
        timers::parse_ios_config("crypto pki server labca\n eku client-auth bogus\n", "ca.ios");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("expected client-auth"), std::string::npos);
}

}  // namespace
}  // namespace pkisim::scep

namespace pkisim::scep {
namespace {

using namespace testing;

// Item 1 in RA mode: what the CA's CRL says about a renewal signer (the RA asks with GetCRL;
// interop.strongswan_ra revokes at the CA and renews through the RA with strongSwan pki).
TEST(renewal_policy, the_cas_crl_decides_revoked_good_or_unknown) {
    using state = revocation_knowledge::state;
    load_providers(false);
    const auto ca = make_ca();
    const auto other = make_ca("shadow", "CN=other-ca,O=lab");
    const auto c = make_client();
    const auto listed = issue_for(c, ca, 7);
    const auto unlisted = issue_for(c, ca, 8);
    const auto now = test_epoch() + timers::days{3};
    const std::array<revoked_entry, 2> entries{
        {{5, test_epoch(), std::nullopt}, {7, test_epoch(), std::nullopt}}};
    auto crl = make_crl(ca.cert.get(), ca.key, entries, now - timers::hours{1},
                        now + timers::hours{6}, 12, timers::hash_algorithm::sha256);
    ASSERT_TRUE(crl);
    auto k = revocation_from_crl(listed.get(), crl->get(), ca.cert.get(), now);
    EXPECT_EQ(k.status, state::revoked);
    EXPECT_EQ(k.source, "the CA's CRL number C");  // cRLNumber 12, in hex as IOS prints serials
    EXPECT_EQ(revocation_from_crl(unlisted.get(), crl->get(), ca.cert.get(), now).status,
              state::good);
    // Past its nextUpdate: a listed certificate is still revoked; an unlisted one is unknown.
    const auto late = now + timers::hours{7};
    EXPECT_EQ(revocation_from_crl(listed.get(), crl->get(), ca.cert.get(), late).status,
              state::revoked);
    k = revocation_from_crl(unlisted.get(), crl->get(), ca.cert.get(), late);
    EXPECT_EQ(k.status, state::unknown);
    EXPECT_NE(k.source.find("past its nextUpdate"), std::string::npos) << k.source;
    // A CRL of another CA, or one whose signature is not the CA's, proves nothing.
    auto foreign = make_crl(other.cert.get(), other.key, entries, now - timers::hours{1},
                            now + timers::hours{6}, 1, timers::hash_algorithm::sha256);
    ASSERT_TRUE(foreign);
    EXPECT_EQ(revocation_from_crl(listed.get(), foreign->get(), ca.cert.get(), now).status,
              state::unknown);
    const auto same_name = make_ca("shadow");  // CN=ca-server,O=lab, another key
    auto forged = make_crl(same_name.cert.get(), same_name.key, entries, now - timers::hours{1},
                           now + timers::hours{6}, 1, timers::hash_algorithm::sha256);
    ASSERT_TRUE(forged);
    k = revocation_from_crl(unlisted.get(), forged->get(), ca.cert.get(), now);
    EXPECT_EQ(k.status, state::unknown);
    EXPECT_NE(k.source.find("signature"), std::string::npos) << k.source;
    EXPECT_EQ(revocation_from_crl(unlisted.get(), nullptr, ca.cert.get(), now).status,
              state::unknown);
}

TEST(renewal_policy, check_renewal_refuses_revoked_and_unknown_signers_with_the_source) {
    using state = revocation_knowledge::state;
    load_providers(false);
    const auto ca = make_ca();
    const auto c = make_client("client1", "CN=router1,O=lab");
    const auto old = issue_for(c, ca, 0x2A);
    auto decoded = decode_pki_message(c.pkcs_req({ca.cert.get()}), std::array{ca.decryption()});
    ASSERT_TRUE(decoded);
    const csr_request* csr = decoded->csr();
    ASSERT_NE(csr, nullptr);
    EXPECT_TRUE(
        check_renewal(old.get(), {state::good, "x"}, *csr, challenge_outcome::not_asked, false));
    auto r = check_renewal(old.get(), {state::revoked, "the CA's CRL number 3 (GetCRL)"}, *csr,
                           challenge_outcome::static_password, true);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().info, fail_info::bad_request);
    EXPECT_EQ(r.error().text,
              "renewal signer rejected: certificate serial 2A is revoked (the "
              "CA's CRL number 3 (GetCRL))");
    r = check_renewal(old.get(), {state::unknown, "GetCRL: connection refused"}, *csr,
                      challenge_outcome::static_password, true);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().text.find("cannot be checked (GetCRL: connection refused)"),
              std::string::npos)
        << r.error().text;
}

}  // namespace
}  // namespace pkisim::scep
