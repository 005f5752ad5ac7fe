#include "pkisim/scep/server.hpp"

#include <functional>
#include <random>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "pkisim/scep/ca_engine.hpp"
#include "pkisim/scep/crypto.hpp"
#include "server_support.hpp"

namespace pkisim::scep {
namespace {

using namespace testing;
using timers::grant_mode;

constexpr std::string_view caps_target = "/cgi-bin/pkiclient.exe?operation=GetCACaps";
constexpr std::string_view cisco_agent =
    "User-Agent: Mozilla/4.0 (compatible; MSIE 5.0; Cisco PKI)\r\n";

// Decodes a 200 application/x-pki-message answer for the holder of (recipient, key).
tl::expected<cert_rep, std::error_code> read_rep(const raw_response& r, X509* ca, X509* recipient,
                                                 EVP_PKEY* key) {
    std::array<X509*, 1> trusted{ca};
    return decode_cert_rep(r.body_bytes(), recipient, key, trusted);
}

TEST(scep_http, get_next_ca_cert_without_rollover_is_the_ios_404_byte_for_byte) {
    test_server s;
    auto r = http_get(s.port(), "/cgi-bin/pkiclient.exe?operation=GetNextCACert&message=labca",
                      "1.0", cisco_agent);
    // Model §1 rule 4; the Date comes from the server's (manual) clock.
    EXPECT_EQ(
        r.raw,
        "HTTP/1.1 404 Not Found\r\nDate: Tue, 01 Jan 2030 00:00:00 GMT\r\nServer: cisco-IOS\r\n"
        "Accept-Ranges: none\r\n\r\n404 Not Found\r\n");
    EXPECT_EQ(r.body.size(), 15u);
}

TEST(scep_http, get_ca_caps_lists_the_keywords_with_content_length) {
    test_server s;
    auto r = http_get(s.port(), caps_target, "1.1");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.header("Content-Type"), "text/plain");
    EXPECT_EQ(r.header("Content-Length"), std::to_string(r.body.size()));
    EXPECT_EQ(r.header("Server"), "cisco-IOS");
    // Model rule 5: no GetNextCACert without a shadow.
    EXPECT_EQ(r.body,
              "AES\nDES3\nPOSTPKIOperation\nRenewal\nSHA-1\nSHA-256\nSHA-384\nSHA-512\n"
              "SCEPStandard\n");
}

TEST(scep_http, get_ca_cert_is_the_raw_der_ca_certificate) {
    test_server s;
    auto r = http_get(s.port(), "/cgi-bin/pkiclient.exe?operation=GetCACert&message=0");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.header("Content-Type"), "application/x-x509-ca-cert");
    auto cert = x509_from_der(r.body_bytes());
    ASSERT_TRUE(cert);
    EXPECT_EQ(sha256_fingerprint(cert->get()), sha256_fingerprint(s.ca()));
}

TEST(scep_http, any_path_ending_in_pkiclient_exe_is_served) {
    test_server s;
    for (const auto* path :
         {"/cgi-bin/pkiclient.exe", "/scep/myscep/pkiclient.exe", "/scep:8081/pkiclient.exe",
          "/pkiclient.exe", "/certsrv/mscep/mscep.dll/pkiclient.exe"}) {
        auto r =
            http_get(s.port(), fmt::format("{}?operation=GetCACert&message=Test-Router", path));
        EXPECT_EQ(r.status, 200u) << path;
    }
}

TEST(scep_http, http11_keep_alive_serves_several_requests_on_one_connection) {
    test_server s;
    const std::string one = fmt::format("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", caps_target);
    const std::string last =
        fmt::format("GET {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", caps_target);
    auto r = http_raw(s.port(), one + one + last);
    std::size_t count = 0;
    for (auto pos = r.raw.find("HTTP/1.1 200 OK"); pos != std::string::npos;
         pos = r.raw.find("HTTP/1.1 200 OK", pos + 1)) {
        ++count;
    }
    EXPECT_EQ(count, 3u);
}

TEST(scep_http, ios_style_get_with_line_breaks_over_http10_gets_its_certificate) {
    test_server s;
    auto c = make_client("client1", "CN=R15.labtech.su,serialNumber=67109104", "secret");
    request_options o;
    o.cipher_nid = NID_des_ede3_cbc;  // what an IOS without DES-only images sends
    o.digest_nid = NID_sha1;
    const bytes req = c.pkcs_req({s.ca()}, o);
    const std::string target = ios_get_target(req);
    ASSERT_NE(target.find("%0A"), std::string::npos);
    auto r = http_get(s.port(), target, "1.0", cisco_agent);
    ASSERT_EQ(r.status, 200u) << r.raw.substr(0, 300);
    EXPECT_EQ(r.header("Content-Type"), "application/x-pki-message");
    auto rep = read_rep(r, s.ca(), c.self_signed.get(), c.key);
    ASSERT_TRUE(rep) << rep.error().message();
    ASSERT_EQ(rep->status, pki_status::success) << rep->fail_info_text;
    EXPECT_EQ(rep->digest_nid, NID_sha1);          // signed with the client's digest (§0.3)
    EXPECT_EQ(rep->cipher_nid, NID_des_ede3_cbc);  // encrypted with the client's cipher (§0.2)
    ASSERT_EQ(rep->certs.size(), 1u);
    EXPECT_EQ(subject_string(rep->certs.front().get()), "CN=R15.labtech.su,serialNumber=67109104");
}

TEST(scep_http, old_ios_des_and_md5_enroll_only_with_legacy_crypto) {
    load_providers(true);  // the test client encrypts with single DES
    auto c = make_client("client1", "CN=old-router", "secret");
    request_options o;
    o.cipher_nid = NID_des_cbc;
    o.digest_nid = NID_md5;
    {
        test_server modern;
        auto r = http_get(modern.port(), ios_get_target(c.pkcs_req({modern.ca()}, o)), "1.0",
                          cisco_agent);
        ASSERT_EQ(r.status, 200u);
        auto rep = read_rep(r, modern.ca(), c.self_signed.get(), c.key);
        ASSERT_TRUE(rep);
        EXPECT_EQ(rep->status, pki_status::failure);
        EXPECT_EQ(rep->failure, fail_info::bad_alg);
    }
    temp_dir d;
    auto e = lab_engine_options(d.path, grant_mode::auto_grant);
    e.legacy_crypto = true;
    test_server legacy{grant_mode::auto_grant, e};
    auto r =
        http_get(legacy.port(), ios_get_target(c.pkcs_req({legacy.ca()}, o)), "1.0", cisco_agent);
    ASSERT_EQ(r.status, 200u);
    decode_options lenient;
    lenient.allow_legacy = true;
    std::array<X509*, 1> trusted{legacy.ca()};
    auto rep = decode_cert_rep(r.body_bytes(), c.self_signed.get(), c.key, trusted, lenient);
    ASSERT_TRUE(rep) << rep.error().message();
    EXPECT_EQ(rep->status, pki_status::success) << rep->fail_info_text;
    EXPECT_EQ(rep->cipher_nid, NID_des_cbc);
}

TEST(scep_http, micromdm_style_url_safe_get_and_post_without_content_type_work) {
    test_server s;
    auto c1 = make_client("client1", "CN=r1", "secret");
    auto r1 = http_get(s.port(), micromdm_get_target(c1.pkcs_req({s.ca()})));
    auto rep1 = read_rep(r1, s.ca(), c1.self_signed.get(), c1.key);
    ASSERT_TRUE(rep1);
    EXPECT_EQ(rep1->status, pki_status::success);
    auto c2 = make_client("client2", "CN=r2", "secret");
    auto r2 = pki_post(s.port(), c2.pkcs_req({s.ca()}));
    auto rep2 = read_rep(r2, s.ca(), c2.self_signed.get(), c2.key);
    ASSERT_TRUE(rep2);
    EXPECT_EQ(rep2->status, pki_status::success);
}

// ---------------------------------------------------------------------------------------------
// Issue 3 §6.5: malformed and hostile requests, each with its documented answer.

struct expectation {
    enum kind { http_status, scep_failure, scep_success, no_answer } what = http_status;
    unsigned status = 400;
    fail_info failure = fail_info::bad_request;
};
expectation http(unsigned status) {
    return {expectation::http_status, status, {}};
}
expectation failure(fail_info f) {
    return {expectation::scep_failure, 200, f};
}
expectation success() {
    return {expectation::scep_success, 200, {}};
}
expectation silence() {
    return {expectation::no_answer, 0, {}};
}

struct bad_input_fixture {
    bad_input_fixture() : s{grant_mode::auto_grant, std::nullopt, make_http()} {
        foreign_ca = make_ca("ca", "CN=foreign-ca,O=elsewhere");
        fake_ours = make_ca("ra", "CN=labca,O=lab");  // same name as our CA, other key
    }
    static http_options make_http() {
        http_options h;
        h.quiet = true;
        h.limiter.enabled = false;
        h.read_timeout = std::chrono::milliseconds{300};
        return h;
    }
    test_server s;
    authority foreign_ca;
    authority fake_ours;
    client good = make_client("client1", "CN=router1,O=lab", "secret");
    X509* recipient = nullptr;  // who the reply of the current case is encrypted to
    EVP_PKEY* recipient_key = nullptr;
};

struct bad_case {
    std::string name;
    std::function<raw_response(bad_input_fixture&)> send;
    expectation expect;
};

std::vector<bad_case> bad_cases() {
    std::vector<bad_case> v;
    const std::string p = "/cgi-bin/pkiclient.exe";
    auto get = [](std::string target) {
        return [target](bad_input_fixture& f) { return http_get(f.s.port(), target); };
    };
    auto raw = [](std::string text) {
        return [text](bad_input_fixture& f) { return http_raw(f.s.port(), text); };
    };
    // HTTP layer.
    v.push_back({"root path", get("/"), http(404)});
    v.push_back({"path without .exe", get("/cgi-bin/pkiclient?operation=GetCACaps"), http(404)});
    v.push_back({"path with suffix after .exe", get(p + ".bak?operation=GetCACaps"), http(404)});
    v.push_back({"no query string", get(p), http(400)});
    v.push_back({"empty operation", get(p + "?operation="), http(400)});
    v.push_back({"unknown operation", get(p + "?operation=Frobnicate"), http(400)});
    v.push_back({"operation with a typo", get(p + "?operation=GetCACertX"), http(400)});
    v.push_back({"only a message parameter", get(p + "?message=AAAA"), http(400)});
    v.push_back(
        {"PKIOperation GET without message", get(p + "?operation=PKIOperation"), http(400)});
    v.push_back(
        {"PKIOperation GET empty message", get(p + "?operation=PKIOperation&message="), http(400)});
    v.push_back({"message not base64", get(p + "?operation=PKIOperation&message=!!!!"), http(400)});
    v.push_back({"message of one base64 character", get(p + "?operation=PKIOperation&message=A"),
                 http(400)});
    v.push_back({"message of three garbage bytes", get(p + "?operation=PKIOperation&message=AAAA"),
                 http(400)});
    v.push_back({"message is base64 text",
                 get(p + "?operation=PKIOperation&message=aGVsbG8gd29ybGQ%3D"), http(400)});
    v.push_back({"POST with empty body",
                 [p](bad_input_fixture& f) {
                     return http_post(f.s.port(), p + "?operation=PKIOperation", {});
                 },
                 http(400)});
    v.push_back(
        {"POST text body",
         [p](bad_input_fixture& f) {
             return http_post(f.s.port(), p + "?operation=PKIOperation", bytes{'h', 'i', '!'});
         },
         http(400)});
    // Seeded garbage: plain random, and random behind a DER SEQUENCE header.
    for (std::size_t size : {1u, 2u, 16u, 100u, 1000u, 4000u}) {
        for (bool sequence : {false, true}) {
            if (size < 4 && sequence)
                continue;
            v.push_back(
                {fmt::format("POST {} random bytes{}", size, sequence ? " as SEQUENCE" : ""),
                 [p, size, sequence](bad_input_fixture& f) {
                     std::mt19937 rng{static_cast<unsigned>(size * 7 + (sequence ? 1 : 0))};
                     bytes body(size);
                     for (auto& b : body)
                         b = static_cast<std::uint8_t>(rng());
                     if (sequence) {
                         body[0] = 0x30;
                         body[1] = 0x82;
                         body[2] = static_cast<std::uint8_t>((size - 4) >> 8);
                         body[3] = static_cast<std::uint8_t>((size - 4) & 0xFF);
                     }
                     return http_post(f.s.port(), p + "?operation=PKIOperation", body);
                 },
                 http(400)});
        }
    }
    v.push_back(
        {"PUT method", raw("PUT " + p + "?operation=GetCACaps HTTP/1.0\r\n\r\n"), http(405)});
    v.push_back(
        {"DELETE method", raw("DELETE " + p + "?operation=GetCACaps HTTP/1.0\r\n\r\n"), http(405)});
    v.push_back({"oversized URL (70 KB)",
                 get(p + "?operation=PKIOperation&message=" + std::string(70 * 1024, 'A')),
                 http(414)});
    v.push_back({"oversized header block",
                 raw(fmt::format("GET {}?operation=GetCACaps HTTP/1.0\r\nX-Big: {}\r\n\r\n", p,
                                 std::string(90 * 1024, 'x'))),
                 http(414)});
    v.push_back(
        {"oversized body (Content-Length 300 KB)",
         raw(fmt::format(
             "POST {}?operation=PKIOperation HTTP/1.0\r\nContent-Length: 300000\r\n\r\n0", p)),
         http(413)});
    v.push_back({"garbage request line", raw("GARBAGE\r\n\r\n"), http(400)});
    v.push_back({"malformed HTTP version", raw("GET " + p + "?operation=GetCACaps HTTP/1\r\n\r\n"),
                 http(400)});
    v.push_back({"header without colon",
                 raw("GET " + p + "?operation=GetCACaps HTTP/1.0\r\nBroken\r\n\r\n"), http(400)});
    v.push_back({"slow client never finishes its headers",
                 raw("GET " + p + "?operation=GetCACaps HTTP/1.0\r\nHost: x\r\n"), silence()});
    v.push_back({"connection that sends nothing", raw(""), silence()});

    // SCEP layer. Truncations of a valid request are malformed DER: HTTP 400 (no reply context).
    for (int k = 1; k <= 10; ++k) {
        v.push_back({fmt::format("PKCSReq truncated to {}/11", k),
                     [k](bad_input_fixture& f) {
                         bytes der = f.good.pkcs_req({f.s.ca()});
                         der.resize(der.size() * static_cast<std::size_t>(k) / 11);
                         return pki_post(f.s.port(), der);
                     },
                     http(400)});
    }
    v.push_back({"signature byte flipped",
                 [](bad_input_fixture& f) {
                     bytes der = f.good.pkcs_req({f.s.ca()});
                     der.back() ^= 0x01;  // the SignerInfo signature is the last field
                     return pki_post(f.s.port(), der);
                 },
                 failure(fail_info::bad_message_check)});
    v.push_back({"envelope for another recipient",
                 [](bad_input_fixture& f) {
                     return pki_post(f.s.port(), f.good.pkcs_req({f.foreign_ca.cert.get()}));
                 },
                 failure(fail_info::bad_request)});
    v.push_back({"wrong challenge password",
                 [](bad_input_fixture& f) {
                     auto c = make_client("client2", "CN=r2", "not-the-secret");
                     return pki_post(f.s.port(), c.pkcs_req({f.s.ca()}));
                 },
                 failure(fail_info::bad_request)});
    v.push_back({"missing challenge password",
                 [](bad_input_fixture& f) {
                     auto c = make_client("client2", "CN=r2", std::nullopt);
                     return pki_post(f.s.port(), c.pkcs_req({f.s.ca()}));
                 },
                 failure(fail_info::bad_request)});
    v.push_back({"RenewalReq signed by a self-signed certificate",
                 [](bad_input_fixture& f) {
                     return pki_post(
                         f.s.port(),
                         f.good.renewal_req({f.s.ca()}, f.good.self_signed.get(), f.good.key));
                 },
                 failure(fail_info::bad_request)});
    v.push_back({"RenewalReq signed by an unknown CA's certificate",
                 [](bad_input_fixture& f) {
                     static x509_ptr foreign = issue_for(f.good, f.foreign_ca, 5);
                     f.recipient = foreign.get();
                     return pki_post(f.s.port(),
                                     f.good.renewal_req({f.s.ca()}, foreign.get(), f.good.key));
                 },
                 failure(fail_info::bad_request)});
    v.push_back({"PKCSReq signed by a forged certificate in our CA's name",
                 [](bad_input_fixture& f) {
                     static x509_ptr forged = issue_for(f.good, f.fake_ours, 6);
                     f.recipient = forged.get();
                     return pki_post(f.s.port(),
                                     f.good.pkcs_req({f.s.ca()}, {}, forged.get(), f.good.key));
                 },
                 failure(fail_info::bad_request)});
    v.push_back({"CertPoll for an unknown transaction",
                 [](bad_input_fixture& f) {
                     request_options o;
                     o.transaction_id = "never-seen-before";
                     return pki_post(f.s.port(), f.good.cert_poll({f.s.ca()}, f.s.ca(), o));
                 },
                 failure(fail_info::bad_request)});
    v.push_back({"GetCert for a serial never issued",
                 [](bad_input_fixture& f) {
                     static x509_ptr other = issue_for(f.good, f.foreign_ca, 999);
                     return pki_post(f.s.port(), f.good.get_cert({f.s.ca()}, other.get()));
                 },
                 failure(fail_info::bad_cert_id)});
    v.push_back({"MD5 digest without --legacy-crypto",
                 [](bad_input_fixture& f) {
                     request_options o;
                     o.digest_nid = NID_md5;
                     return pki_post(f.s.port(), f.good.pkcs_req({f.s.ca()}, o));
                 },
                 failure(fail_info::bad_alg)});
    v.push_back({"single DES without --legacy-crypto",
                 [](bad_input_fixture& f) {
                     load_providers(true);  // for the test client's own encryption
                     request_options o;
                     o.cipher_nid = NID_des_cbc;
                     return pki_post(f.s.port(), f.good.pkcs_req({f.s.ca()}, o));
                 },
                 failure(fail_info::bad_alg)});
    v.push_back({"a CertRep sent as a request",
                 [](bad_input_fixture& f) {
                     // A server's own answer, replayed at it.
                     auto c = make_client("client2", "CN=r2", "wrong");
                     auto answer = pki_post(f.s.port(), c.pkcs_req({f.s.ca()}));
                     return pki_post(f.s.port(), answer.body_bytes());
                 },
                 failure(fail_info::bad_request)});
    v.push_back({"replayed identical PKCSReq",
                 [](bad_input_fixture& f) {
                     pki_post(f.s.port(), f.good.pkcs_req({f.s.ca()}));
                     return pki_post(f.s.port(), f.good.pkcs_req({f.s.ca()}));
                 },
                 success()});
    v.push_back({"renewal signed by our certificate after it expired",
                 [](bad_input_fixture& f) {
                     auto c = make_client("client2", "CN=r2", "secret");
                     auto r = pki_post(f.s.port(), c.pkcs_req({f.s.ca()}));
                     auto rep = read_rep(r, f.s.ca(), c.self_signed.get(), c.key);
                     static x509_ptr issued;
                     issued = std::move(rep->certs.front());
                     f.s.clock.advance(timers::days{366});
                     f.recipient = issued.get();
                     return pki_post(f.s.port(), c.renewal_req({f.s.ca()}, issued.get(), c.key));
                 },
                 failure(fail_info::bad_request)});
    return v;
}

TEST(scep_http, fifty_bad_inputs_get_their_documented_answers_and_service_continues) {
    bad_input_fixture f;
    const auto cases = bad_cases();
    ASSERT_GE(cases.size(), 50u);
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        f.recipient = f.good.self_signed.get();
        f.recipient_key = f.good.key;
        const raw_response r = c.send(f);
        switch (c.expect.what) {
            case expectation::http_status:
                EXPECT_EQ(r.status, c.expect.status) << r.raw.substr(0, 200);
                break;
            case expectation::no_answer:
                EXPECT_TRUE(r.closed_without_answer) << r.raw.substr(0, 200);
                break;
            case expectation::scep_failure:
            case expectation::scep_success: {
                ASSERT_EQ(r.status, 200u) << r.raw.substr(0, 200);
                auto rep = read_rep(r, f.s.ca(), f.recipient, f.recipient_key);
                ASSERT_TRUE(rep) << rep.error().message();
                if (c.expect.what == expectation::scep_success) {
                    EXPECT_EQ(rep->status, pki_status::success) << rep->fail_info_text;
                } else {
                    EXPECT_EQ(rep->status, pki_status::failure);
                    EXPECT_EQ(rep->failure, c.expect.failure) << rep->fail_info_text;
                }
                break;
            }
        }
        // Still serving after every case.
        EXPECT_EQ(http_get(f.s.port(), caps_target).status, 200u);
    }
    // And a good enrollment right after.
    auto fresh = make_client("ra", "CN=after-the-storm,O=lab", "secret");
    auto r = pki_get(f.s.port(), fresh.pkcs_req({f.s.ca()}));
    auto rep = read_rep(r, f.s.ca(), fresh.self_signed.get(), fresh.key);
    ASSERT_TRUE(rep);
    EXPECT_EQ(rep->status, pki_status::success);
}

TEST(scep_http, replay_with_another_csr_while_pending_is_refused) {
    test_server s{grant_mode::manual};
    auto c = make_client("client1", "CN=r1", "secret");
    auto first =
        read_rep(pki_post(s.port(), c.pkcs_req({s.ca()})), s.ca(), c.self_signed.get(), c.key);
    ASSERT_TRUE(first);
    EXPECT_EQ(first->status, pki_status::pending);
    // Same transactionID and signer, another CSR (scep-wire §0.11).
    auto other = make_client("client1", "CN=someone-else", "secret");
    other.self_signed = share(c.self_signed.get());
    auto replay =
        read_rep(pki_post(s.port(), other.pkcs_req({s.ca()})), s.ca(), c.self_signed.get(), c.key);
    ASSERT_TRUE(replay);
    EXPECT_EQ(replay->status, pki_status::failure);
    EXPECT_EQ(dynamic_cast<ca_engine&>(s.srv->engine()).database().requests().size(), 1u);
}

}  // namespace
}  // namespace pkisim::scep
