// Issue 11 §2.8 and §2.10 over real sockets: the CRL at its CDP URL, at /crl/NAME.crl and as
// GET operation=GetCRL (checked with OpenSSL's own CRL verification); an HTTP/1.0 POST whose
// body ends at the client's half-close; 405 with Allow.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <openssl/x509_vfy.h>

#include "pkisim/scep/ca_engine.hpp"
#include "server_support.hpp"

namespace pkisim::scep {
namespace {

using namespace testing;
using timers::grant_mode;

engine_options with_cdp(const std::string& cdp) {
    temp_dir unused;  // lab_engine_options only builds a path; test_server sets data_dir
    auto o = lab_engine_options(unused.path, grant_mode::auto_grant);
    o.server.cdp_url = cdp;
    return o;
}

// OpenSSL's verdict on `cert` with CRL checking against `ca` and `crl_der`.
int verify_with_crl(X509* cert, X509* ca, const std::string& crl_der, time_point at) {
    auto crl = x509_crl_from_der(
        byte_view{reinterpret_cast<const std::uint8_t*>(crl_der.data()), crl_der.size()});
    EXPECT_TRUE(crl.has_value());
    if (!crl)
        return -1;
    x509_store_ptr store{X509_STORE_new()};
    X509_STORE_add_cert(store.get(), ca);
    X509_STORE_add_crl(store.get(), crl->get());
    x509_store_ctx_ptr ctx{X509_STORE_CTX_new()};
    X509_STORE_CTX_init(ctx.get(), store.get(), cert, nullptr);
    X509_VERIFY_PARAM* p = X509_STORE_CTX_get0_param(ctx.get());
    X509_VERIFY_PARAM_set_flags(p, X509_V_FLAG_CRL_CHECK);
    X509_VERIFY_PARAM_set_time(p, std::chrono::system_clock::to_time_t(
                                      std::chrono::time_point_cast<std::chrono::seconds>(at)));
    X509_verify_cert(ctx.get());
    return X509_STORE_CTX_get_error(ctx.get());
}

TEST(crl_http, the_crl_is_served_where_the_cdp_points_and_shows_revocations) {
    test_server s{grant_mode::auto_grant,
                  with_cdp("http://labca.example:80/cgi-bin/pkiclient.exe?operation=GetCRL")};
    auto c = make_client();
    auto r = pki_post(s.port(), c.pkcs_req({s.ca()}));
    ASSERT_EQ(r.status, 200u);
    std::array<X509*, 1> trusted{s.ca()};
    auto rep = decode_cert_rep(r.body_bytes(), c.self_signed.get(), c.key, trusted);
    ASSERT_TRUE(rep && rep->status == pki_status::success);
    X509* cert = rep->certs.front().get();
    const std::vector<std::string> targets = {
        "/cgi-bin/pkiclient.exe?operation=GetCRL",  // the CDP's path and query
        "/crl/labca.crl",
        "/scep/x/pkiclient.exe?operation=getcrl&message=labca",  // IOS-style, any order/case
    };
    for (const auto& t : targets) {
        auto g = http_get(s.port(), t);
        ASSERT_EQ(g.status, 200u) << t;
        EXPECT_EQ(g.header("Content-Type"), "application/pkix-crl") << t;
        EXPECT_EQ(verify_with_crl(cert, s.ca(), g.body, s.clock.now()), X509_V_OK) << t;
    }
    ASSERT_TRUE(admin_call(s.dir.path / "data", fmt::format("revoke {}", serial_hex(cert))).ok);
    for (const auto& t : targets) {
        auto g = http_get(s.port(), t);
        ASSERT_EQ(g.status, 200u) << t;
        EXPECT_EQ(verify_with_crl(cert, s.ca(), g.body, s.clock.now()), X509_V_ERR_CERT_REVOKED)
            << t;
    }
    // Other names are not the CRL.
    EXPECT_EQ(http_get(s.port(), "/crl/other.crl").status, 404u);
    EXPECT_EQ(http_get(s.port(), "/cgi-bin/pkiclient.exe?operation=GetCRLX").status, 400u);
}

TEST(crl_http, a_cdp_with_a_plain_path_is_served_too) {
    test_server s{grant_mode::auto_grant, with_cdp("http://crl.lab/pki/labca-current.crl")};
    auto g = http_get(s.port(), "/pki/labca-current.crl");
    ASSERT_EQ(g.status, 200u);
    EXPECT_EQ(g.header("Content-Type"), "application/pkix-crl");
    EXPECT_EQ(http_get(s.port(), "/pki/labca-old.crl").status, 404u);
}

TEST(http_details, an_http10_post_without_content_length_is_read_to_eof) {
    test_server s;
    auto c = make_client();
    const auto der = c.pkcs_req({s.ca()});
    const std::string request =
        "POST /cgi-bin/pkiclient.exe?operation=PKIOperation HTTP/1.0\r\n"
        "User-Agent: Mozilla/4.0 (compatible; MSIE 5.0; Cisco PKI)\r\n\r\n" +
        std::string(der.begin(), der.end());
    auto r = http_raw(s.port(), request, std::chrono::milliseconds{5000}, true);
    ASSERT_EQ(r.status, 200u) << r.head << r.body;
    std::array<X509*, 1> trusted{s.ca()};
    auto rep = decode_cert_rep(r.body_bytes(), c.self_signed.get(), c.key, trusted);
    ASSERT_TRUE(rep) << rep.error().message();
    EXPECT_EQ(rep->status, pki_status::success);
    // Without a body at all it is still the documented 400.
    auto empty =
        http_raw(s.port(), "POST /cgi-bin/pkiclient.exe?operation=PKIOperation HTTP/1.0\r\n\r\n",
                 std::chrono::milliseconds{5000}, true);
    EXPECT_EQ(empty.status, 400u);
    EXPECT_NE(empty.body.find("empty pkiMessage"), std::string::npos);
}

TEST(http_details, a_405_carries_allow) {
    test_server s;
    for (const char* m : {"PUT", "DELETE", "OPTIONS"}) {
        auto r = http_raw(
            s.port(),
            fmt::format("{} /cgi-bin/pkiclient.exe?operation=GetCACaps HTTP/1.0\r\n\r\n", m));
        EXPECT_EQ(r.status, 405u) << m;
        EXPECT_EQ(r.header("Allow"), "GET, POST") << m;
    }
}

}  // namespace
}  // namespace pkisim::scep
