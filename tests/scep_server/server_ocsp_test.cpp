// Issue 11 §2.9: the CA's OCSP responder (RFC 6960; scep_server/src/ocsp.hpp). Requests are
// built and responses checked with OpenSSL's OCSP API as a client would (OCSP_basic_verify,
// OCSP_resp_find_status, OCSP_check_nonce); the engine runs on a manual clock over real SQLite,
// the HTTP side on a real socket (127.0.0.1:0). The real `openssl ocsp` client runs against
// `pkisim serve` in interop/ocsp_clock.sh.
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include <map>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "pkisim/scep/ca_engine.hpp"
#include "pkisim/scep/crypto.hpp"
#include "server_support.hpp"

namespace pkisim::scep {
namespace {

using namespace testing;
using timers::days;

bytes as_bytes(const std::string& s) {
    return {s.begin(), s.end()};
}

// One CertID per (certificate, issuer); the certificate may be given by serial only.
struct query {
    X509* issuer = nullptr;
    X509* cert = nullptr;
    std::uint64_t serial = 0;  // when cert is null
    const EVP_MD* md = EVP_sha1();
};

ocsp_certid_ptr certid_of(const query& q) {
    if (q.cert)
        return ocsp_certid_ptr{OCSP_cert_to_id(q.md, q.cert, q.issuer)};
    asn1_integer_ptr sn{ASN1_INTEGER_new()};
    ASN1_INTEGER_set_uint64(sn.get(), q.serial);
    return ocsp_certid_ptr{OCSP_cert_id_new(q.md, X509_get_subject_name(q.issuer),
                                            X509_get0_pubkey_bitstr(q.issuer), sn.get())};
}

bytes request_der(const std::vector<query>& qs, bool nonce, ocsp_request_ptr* keep = nullptr) {
    ocsp_request_ptr req{OCSP_REQUEST_new()};
    for (const auto& q : qs)
        OCSP_request_add0_id(req.get(), certid_of(q).release());
    if (nonce)
        OCSP_request_add1_nonce(req.get(), nullptr, 16);
    unsigned char* out = nullptr;
    const int n = i2d_OCSP_REQUEST(req.get(), &out);
    bytes der(out, out + n);
    OPENSSL_free(out);
    if (keep)
        *keep = std::move(req);
    return der;
}

struct parsed {
    int response_status = -1;
    ocsp_basicresp_ptr basic;
};

parsed parse_response(const std::string& body) {
    parsed p;
    const auto* d = reinterpret_cast<const unsigned char*>(body.data());
    ocsp_response_ptr r{d2i_OCSP_RESPONSE(nullptr, &d, static_cast<long>(body.size()))};
    if (!r)
        return p;
    p.response_status = OCSP_response_status(r.get());
    p.basic.reset(OCSP_response_get1_basic(r.get()));
    return p;
}

struct status_of {
    int status = -2;
    int reason = -2;
    std::optional<time_point> revoked_at;
    std::optional<time_point> this_update;
    bool has_next_update = false;
};

status_of find_status(OCSP_BASICRESP* bs, const query& q) {
    status_of s;
    ASN1_GENERALIZEDTIME* rev = nullptr;
    ASN1_GENERALIZEDTIME* thisupd = nullptr;
    ASN1_GENERALIZEDTIME* nextupd = nullptr;
    auto id = certid_of(q);
    if (OCSP_resp_find_status(bs, id.get(), &s.status, &s.reason, &rev, &thisupd, &nextupd) != 1)
        return s;
    if (rev)
        s.revoked_at = from_asn1_time(rev).value();
    if (thisupd)
        s.this_update = from_asn1_time(thisupd).value();
    s.has_next_update = nextupd != nullptr;
    return s;
}

// OCSP_basic_verify as a relying party that trusts `anchor` only (no OCSP_TRUSTOTHER: a
// delegated responder must chain to it and carry id-kp-OCSPSigning).
bool verifies(OCSP_BASICRESP* bs, X509* anchor, time_point at) {
    x509_store_ptr store{X509_STORE_new()};
    X509_STORE_add_cert(store.get(), anchor);
    X509_VERIFY_PARAM* param = X509_STORE_get0_param(store.get());
    X509_VERIFY_PARAM_set_time(
        param, std::chrono::duration_cast<std::chrono::seconds>(at.time_since_epoch()).count());
    const int r = OCSP_basic_verify(bs, nullptr, store.get(), 0);
    ERR_clear_error();
    return r == 1;
}

// The certificate that signed the response (the first in its certs).
X509* response_signer(OCSP_BASICRESP* bs) {
    const STACK_OF(X509)* certs = OCSP_resp_get0_certs(bs);
    return sk_X509_num(certs) > 0 ? sk_X509_value(certs, 0) : nullptr;
}

struct ocsp_fixture {
    explicit ocsp_fixture(bool delegated = false, bool aia = false) {
        load_providers(false);
        options = lab_engine_options(dir.path, timers::grant_mode::auto_grant);
        options.ocsp_delegated_responder = delegated;
        if (aia) {
            options.aia_ocsp_url = "http://127.0.0.1:8081/ocsp";
            options.aia_ca_issuers_url =
                "http://127.0.0.1:8080/cgi-bin/pkiclient.exe?operation=GetCACert";
        }
        options.shadow_key_pems = {private_key_to_pem(fixture_key("rollover1"))};
        start();
    }
    void start() { engine = std::make_unique<ca_engine>(options, clock); }
    X509* ca() { return engine->ca_certificate(); }
    x509_ptr enroll(const client& c, X509* encrypt_to = nullptr) {
        auto a = engine->pki_operation(c.pkcs_req({encrypt_to ? encrypt_to : ca()}));
        EXPECT_EQ(a.status, 200u) << a.detail;
        std::array<X509*, 2> trusted{ca(), engine->shadow_certificate()};
        auto rep = decode_cert_rep(as_bytes(a.body), c.self_signed.get(), c.key,
                                   std::span{trusted.data(), trusted[1] ? 2u : 1u});
        EXPECT_TRUE(rep && rep->status == pki_status::success && !rep->certs.empty()) << a.detail;
        return rep && !rep->certs.empty() ? std::move(rep->certs.front()) : nullptr;
    }
    admin_result admin(std::string_view line) { return engine->admin(line); }
    parsed ask(const std::vector<query>& qs, bool nonce = true) {
        ocsp_request_ptr req;
        auto a = engine->ocsp(request_der(qs, nonce, &req));
        EXPECT_EQ(a.status, 200u);
        EXPECT_EQ(a.content_type, "application/ocsp-response");
        last_detail = a.detail;
        auto p = parse_response(a.body);
        if (p.basic) {
            // 1: both carry the same nonce; 2: neither has one (RFC 8954).
            EXPECT_EQ(OCSP_check_nonce(req.get(), p.basic.get()), nonce ? 1 : 2)
                << "nonce not echoed, or invented";
        }
        return p;
    }

    temp_dir dir;
    timers::manual_clock clock{test_epoch()};
    engine_options options;
    std::unique_ptr<ca_engine> engine;
    std::string last_detail;
};

// The authorityInfoAccess URIs of an issued certificate, by access method NID.
std::map<int, std::string> aia_uris(X509* cert) {
    std::map<int, std::string> uris;
    std::unique_ptr<AUTHORITY_INFO_ACCESS,
                    openssl_deleter<AUTHORITY_INFO_ACCESS, AUTHORITY_INFO_ACCESS_free>>
        aia{static_cast<AUTHORITY_INFO_ACCESS*>(
            X509_get_ext_d2i(cert, NID_info_access, nullptr, nullptr))};
    for (int i = 0; aia && i < sk_ACCESS_DESCRIPTION_num(aia.get()); ++i) {
        const ACCESS_DESCRIPTION* ad = sk_ACCESS_DESCRIPTION_value(aia.get(), i);
        if (ad->location->type != GEN_URI)
            continue;
        const auto* uri = ad->location->d.uniformResourceIdentifier;
        uris[OBJ_obj2nid(ad->method)] =
            std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                        static_cast<std::size_t>(ASN1_STRING_length(uri)));
    }
    return uris;
}

TEST(ocsp, good_then_revoked_with_time_and_reason_unknown_for_foreign_and_unissued) {
    ocsp_fixture f{false, true};
    const auto c1 = make_client("client1", "CN=router1,O=lab");
    const auto c2 = make_client("client2", "CN=router2,O=lab");
    auto cert1 = f.enroll(c1);
    auto cert2 = f.enroll(c2);
    ASSERT_TRUE(cert1 && cert2);
    // --aia-ocsp-url / --aia-ca-issuers-url: both URIs, nothing else.
    const auto uris = aia_uris(cert1.get());
    EXPECT_EQ(uris.size(), 2u);
    EXPECT_EQ(uris.count(NID_ad_OCSP) ? uris.at(NID_ad_OCSP) : "", f.options.aia_ocsp_url);
    EXPECT_EQ(uris.count(NID_ad_ca_issuers) ? uris.at(NID_ad_ca_issuers) : "",
              f.options.aia_ca_issuers_url);
    const query q1{f.ca(), cert1.get()};
    const query q2{f.ca(), cert2.get(), 0, EVP_sha256()};  // any hash OpenSSL knows

    auto p = f.ask({q1, q2});
    ASSERT_EQ(p.response_status, OCSP_RESPONSE_STATUS_SUCCESSFUL);
    EXPECT_EQ(find_status(p.basic.get(), q1).status, V_OCSP_CERTSTATUS_GOOD) << f.last_detail;
    const auto s2 = find_status(p.basic.get(), q2);
    EXPECT_EQ(s2.status, V_OCSP_CERTSTATUS_GOOD);
    EXPECT_EQ(s2.this_update, f.clock.now());  // the server's clock
    EXPECT_FALSE(s2.has_next_update);
    EXPECT_TRUE(verifies(p.basic.get(), f.ca(), f.clock.now()));

    // Revoked an hour later, with a reason; the other one stays good; the CRL says the same.
    f.clock.advance(timers::hours{1});
    const time_point revoked_at = f.clock.now();
    const auto serial1 = *serial_u64(cert1.get());
    EXPECT_TRUE(f.admin(fmt::format("revoke {:X} keyCompromise", serial1)).ok);
    f.clock.advance(timers::minutes{5});
    p = f.ask({q1, q2}, false);
    const auto s1 = find_status(p.basic.get(), q1);
    EXPECT_EQ(s1.status, V_OCSP_CERTSTATUS_REVOKED);
    EXPECT_EQ(s1.reason, OCSP_REVOKED_STATUS_KEYCOMPROMISE);
    EXPECT_EQ(s1.revoked_at, revoked_at);
    EXPECT_EQ(find_status(p.basic.get(), q2).status, V_OCSP_CERTSTATUS_GOOD);
    auto crl = x509_crl_from_der(as_bytes(f.engine->resource("/crl/labca.crl").body));
    ASSERT_TRUE(crl);
    X509_REVOKED* entry = nullptr;
    asn1_integer_ptr sn{ASN1_INTEGER_new()};
    ASN1_INTEGER_set_uint64(sn.get(), serial1);
    ASSERT_EQ(X509_CRL_get0_by_serial(crl->get(), &entry, sn.get()), 1);
    std::unique_ptr<ASN1_ENUMERATED, openssl_deleter<ASN1_ENUMERATED, ASN1_ENUMERATED_free>> code{
        static_cast<ASN1_ENUMERATED*>(
            X509_REVOKED_get_ext_d2i(entry, NID_crl_reason, nullptr, nullptr))};
    ASSERT_TRUE(code);
    EXPECT_EQ(ASN1_ENUMERATED_get(code.get()), 1);  // keyCompromise
    // Without a reason: revoked, no reason; an unknown reason is refused.
    EXPECT_FALSE(f.admin(fmt::format("revoke {:X} stolen", *serial_u64(cert2.get()))).ok);
    EXPECT_TRUE(f.admin(fmt::format("revoke {:X}", *serial_u64(cert2.get()))).ok);
    p = f.ask({q2});
    EXPECT_EQ(find_status(p.basic.get(), q2).status, V_OCSP_CERTSTATUS_REVOKED);
    EXPECT_EQ(find_status(p.basic.get(), q2).reason, OCSP_REVOKED_STATUS_NOSTATUS);

    // A serial we never issued, and a foreign CA's certificate: unknown (RFC 6960 §2.2).
    const auto foreign = make_ca("ca", "CN=foreign-ca,O=elsewhere");
    const auto fc = make_client("client1", "CN=stranger,O=elsewhere");
    auto foreign_cert = issue_for(fc, foreign, 2);
    const query unissued{f.ca(), nullptr, 0xBEEF};
    const query stranger{foreign.cert.get(), foreign_cert.get()};
    p = f.ask({unissued, stranger});
    EXPECT_EQ(find_status(p.basic.get(), unissued).status, V_OCSP_CERTSTATUS_UNKNOWN);
    EXPECT_EQ(find_status(p.basic.get(), stranger).status, V_OCSP_CERTSTATUS_UNKNOWN);
    // One signature covers every answer: a relying party accepts a CA-signed response only
    // when every CertID names that CA (OpenSSL's ocsp_check_issuer), so a mixed request does
    // not verify; one that names us does.
    EXPECT_FALSE(verifies(p.basic.get(), f.ca(), f.clock.now()));
    p = f.ask({unissued});
    EXPECT_EQ(find_status(p.basic.get(), unissued).status, V_OCSP_CERTSTATUS_UNKNOWN);
    EXPECT_TRUE(verifies(p.basic.get(), f.ca(), f.clock.now())) << "signed by the active CA";
    p = f.ask({stranger});
    EXPECT_EQ(find_status(p.basic.get(), stranger).status, V_OCSP_CERTSTATUS_UNKNOWN);
    EXPECT_FALSE(verifies(p.basic.get(), foreign.cert.get(), f.clock.now()))
        << "we never sign for another CA";
}

TEST(ocsp, every_ca_generation_answers_for_its_own_certificates_across_a_switchover) {
    ocsp_fixture f;
    X509* const first_ptr = f.ca();
    auto first = share(first_ptr);
    auto old_cert = f.enroll(make_client("client1", "CN=router1,O=lab"));
    ASSERT_TRUE(old_cert);
    // No --aia-* option: no authorityInfoAccess at all.
    EXPECT_LT(X509_get_ext_by_NID(old_cert.get(), NID_info_access, -1), 0);
    ASSERT_TRUE(f.admin("rollover").ok);
    auto shadow = share(f.engine->shadow_certificate());
    ASSERT_TRUE(shadow);
    // Past the old CA's notAfter: the switchover (rule 7) on the next operation.
    f.clock.set(not_after(first.get()) + timers::hours{1});
    f.engine->get_ca_caps();
    auto new_cert = f.enroll(make_client("client2", "CN=router2,O=lab"));
    ASSERT_TRUE(new_cert);
    ASSERT_EQ(X509_cmp(f.ca(), shadow.get()), 0) << "no switchover";

    const query old_q{first.get(), old_cert.get()};
    const query new_q{shadow.get(), new_cert.get()};
    // The previous generation answers for its certificate, signed by its own key (its
    // validity is over, so no delegated responder either way).
    auto p = f.ask({old_q});
    EXPECT_EQ(find_status(p.basic.get(), old_q).status, V_OCSP_CERTSTATUS_GOOD) << f.last_detail;
    EXPECT_TRUE(verifies(p.basic.get(), first.get(), not_before(old_cert.get())));
    EXPECT_FALSE(verifies(p.basic.get(), shadow.get(), f.clock.now()));
    p = f.ask({new_q});
    EXPECT_EQ(find_status(p.basic.get(), new_q).status, V_OCSP_CERTSTATUS_GOOD);
    EXPECT_TRUE(verifies(p.basic.get(), shadow.get(), f.clock.now()));
    // The same issuer name with the other generation's key: that generation did not sign it.
    const query crossed{shadow.get(), nullptr, *serial_u64(old_cert.get())};
    p = f.ask({crossed});
    EXPECT_EQ(find_status(p.basic.get(), crossed).status, V_OCSP_CERTSTATUS_UNKNOWN);
    // A revocation of the old generation's certificate shows under the old issuer.
    ASSERT_TRUE(f.admin(fmt::format("revoke {:X} superseded", *serial_u64(old_cert.get()))).ok);
    p = f.ask({old_q});
    EXPECT_EQ(find_status(p.basic.get(), old_q).status, V_OCSP_CERTSTATUS_REVOKED);
    EXPECT_EQ(find_status(p.basic.get(), old_q).reason, OCSP_REVOKED_STATUS_SUPERSEDED);
}

TEST(ocsp, a_delegated_responder_certificate_signs_and_is_kept_across_restarts) {
    ocsp_fixture f{true};
    auto cert = f.enroll(make_client("client1", "CN=router1,O=lab"));
    ASSERT_TRUE(cert);
    const query q{f.ca(), cert.get()};
    auto p = f.ask({q});
    ASSERT_EQ(p.response_status, OCSP_RESPONSE_STATUS_SUCCESSFUL);
    EXPECT_EQ(find_status(p.basic.get(), q).status, V_OCSP_CERTSTATUS_GOOD);
    X509* responder = response_signer(p.basic.get());
    ASSERT_NE(responder, nullptr);
    EXPECT_NE(X509_cmp(responder, f.ca()), 0) << "signed by the CA itself";
    // RFC 6960 §4.2.2.2: issued by the CA, id-kp-OCSPSigning, ocsp-nocheck.
    EXPECT_EQ(X509_check_issued(f.ca(), responder), X509_V_OK);
    EXPECT_TRUE(X509_get_extended_key_usage(responder) & XKU_OCSP_SIGN);
    EXPECT_GE(X509_get_ext_by_NID(responder, NID_id_pkix_OCSP_noCheck, -1), 0);
    EXPECT_FALSE(X509_get_extension_flags(responder) & EXFLAG_CA);
    // What a relying party that trusts only the CA checks (OCSP_basic_verify, no TRUSTOTHER).
    EXPECT_TRUE(verifies(p.basic.get(), f.ca(), f.clock.now()));
    const auto responder_serial = *serial_u64(responder);
    // Its serial is the store's: never given to a client.
    auto next = f.enroll(make_client("client2", "CN=router2,O=lab"));
    EXPECT_GT(*serial_u64(next.get()), responder_serial);

    // A restart keeps the same responder certificate (no new serial per start).
    f.engine.reset();
    f.start();
    const query again{f.ca(), cert.get()};  // the new engine's CA certificate object
    p = f.ask({again});
    EXPECT_EQ(find_status(p.basic.get(), again).status, V_OCSP_CERTSTATUS_GOOD);
    ASSERT_NE(response_signer(p.basic.get()), nullptr);
    EXPECT_EQ(*serial_u64(response_signer(p.basic.get())), responder_serial);
    EXPECT_TRUE(verifies(p.basic.get(), f.ca(), f.clock.now()));
}

TEST(ocsp, malformed_requests_get_malformed_request_and_the_responder_keeps_answering) {
    ocsp_fixture f;
    auto cert = f.enroll(make_client("client1", "CN=router1,O=lab"));
    const query q{f.ca(), cert.get()};
    const bytes good = request_der({q}, true);
    std::vector<bytes> bad = {
        {},
        {0x30},
        {0x30, 0x00},  // no tbsRequest
        {0xFF, 0xFF, 0xFF, 0xFF},
        bytes(good.begin(), good.end() - 1),  // truncated
    };
    bytes trailing = good;
    trailing.push_back(0);
    bad.push_back(trailing);
    bytes flipped = good;
    flipped[flipped.size() / 2] ^= 0xFF;
    bad.push_back(flipped);
    // 65 CertIDs: over the bound (ocsp_responder::max_certids).
    bad.push_back(request_der(std::vector<query>(65, q), false));
    for (const auto& der : bad) {
        auto a = f.engine->ocsp(der);
        EXPECT_EQ(a.status, 200u);
        auto p = parse_response(a.body);
        // A flipped byte may still parse (then it is answered, e.g. unknown); everything else
        // is malformedRequest without a body.
        if (&der == &bad[6] && p.response_status == OCSP_RESPONSE_STATUS_SUCCESSFUL)
            continue;
        EXPECT_EQ(p.response_status, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST) << a.detail;
        EXPECT_FALSE(p.basic);
    }
    auto p = f.ask({q});
    EXPECT_EQ(find_status(p.basic.get(), q).status, V_OCSP_CERTSTATUS_GOOD);
}

// The HTTP side on its own port: POST and GET (RFC 6960 Appendix A), errors as 4xx.
TEST(ocsp_http, post_and_get_on_the_ocsp_port_and_4xx_for_bad_http) {
    http_options h;
    h.quiet = true;
    h.limiter.enabled = false;
    h.ocsp_listen = "127.0.0.1:0";
    test_server s{timers::grant_mode::auto_grant, std::nullopt, h};
    const auto addr = s.srv->ocsp_address();
    ASSERT_FALSE(addr.empty());
    const auto port = static_cast<unsigned short>(std::stoi(addr.substr(addr.rfind(':') + 1)));
    ASSERT_NE(port, s.port());
    // The CA certificate (serial 1) is a certificate of this CA: good.
    const query q{s.ca(), s.ca()};
    ocsp_request_ptr req;
    const bytes der = request_der({q}, true, &req);

    auto r = http_post(port, "/", der, "Content-Type: application/ocsp-request\r\n");
    ASSERT_EQ(r.status, 200u) << r.raw;
    EXPECT_EQ(r.header("Content-Type"), "application/ocsp-response");
    auto p = parse_response(r.body);
    ASSERT_EQ(p.response_status, OCSP_RESPONSE_STATUS_SUCCESSFUL);
    EXPECT_EQ(find_status(p.basic.get(), q).status, V_OCSP_CERTSTATUS_GOOD);
    EXPECT_EQ(OCSP_check_nonce(req.get(), p.basic.get()), 1);

    // GET, base64 URL-escaped (RFC 6960 A.1), under a path prefix; and with '/' left raw.
    for (const auto& target :
         {"/ocsp/" + url_escape(base64(der)), "/" + base64(der), "/a/b/" + base64(der)}) {
        r = http_get(port, target);
        ASSERT_EQ(r.status, 200u) << target << "\n" << r.raw;
        p = parse_response(r.body);
        ASSERT_EQ(p.response_status, OCSP_RESPONSE_STATUS_SUCCESSFUL) << target;
        EXPECT_EQ(find_status(p.basic.get(), q).status, V_OCSP_CERTSTATUS_GOOD);
    }
    // Garbage POSTed as an OCSP request: an OCSP malformedRequest answer.
    r = http_post(port, "/", as_bytes("not DER at all"),
                  "Content-Type: application/ocsp-request\r\n");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(parse_response(r.body).response_status, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    // Bad HTTP: 4xx, never a crash.
    EXPECT_EQ(http_post(port, "/", der, "Content-Type: text/plain\r\n").status, 415u);
    EXPECT_EQ(http_post(port, "/", {}, "Content-Type: application/ocsp-request\r\n").status, 400u);
    EXPECT_EQ(http_get(port, "/").status, 400u);
    EXPECT_EQ(http_get(port, "/%%%not-base64").status, 400u);
    r = http_raw(port, "PUT / HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(r.status, 405u);
    EXPECT_EQ(r.header("Allow"), "GET, POST");
    EXPECT_EQ(http_raw(port, "\x01\x02 nonsense\r\n\r\n").status, 400u);
    // SCEP is not served on the OCSP port, OCSP not on the SCEP port; both keep serving.
    EXPECT_NE(http_get(port, "/cgi-bin/pkiclient.exe?operation=GetCACaps").status, 200u);
    EXPECT_EQ(http_get(s.port(), "/cgi-bin/pkiclient.exe?operation=GetCACaps").status, 200u);
    r = http_post(port, "/", der, "Content-Type: application/ocsp-request\r\n");
    EXPECT_EQ(parse_response(r.body).response_status, OCSP_RESPONSE_STATUS_SUCCESSFUL);
}

}  // namespace
}  // namespace pkisim::scep
