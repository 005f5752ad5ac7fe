#include <sys/stat.h>

#include <gtest/gtest.h>

#include "pkisim/scep/server.hpp"
#include "server_support.hpp"

namespace pkisim::scep {
namespace {

using namespace testing;
using timers::grant_mode;

tl::expected<cert_rep, std::error_code> read_rep(const raw_response& r, X509* ca, const client& c) {
    std::array<X509*, 1> trusted{ca};
    return decode_cert_rep(r.body_bytes(), c.self_signed.get(), c.key, trusted);
}

TEST(admin_channel, socket_is_owner_only_in_a_private_folder) {
    test_server s;
    struct stat st {};
    ASSERT_EQ(::stat(s.srv->admin_socket_path().c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(::stat(s.srv->admin_socket_path().parent_path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST(admin_channel, manual_grant_flow_pending_then_operator_grant_then_poll_succeeds) {
    test_server s{grant_mode::manual};
    const auto dir = s.srv->admin_socket_path().parent_path();
    auto c = make_client("client1", "CN=router7,O=lab", "secret");
    auto first = read_rep(pki_post(s.port(), c.pkcs_req({s.ca()})), s.ca(), c);
    ASSERT_TRUE(first);
    EXPECT_EQ(first->status, pki_status::pending);

    auto requests = admin_call(dir, "show requests");
    EXPECT_TRUE(requests.ok);
    EXPECT_NE(requests.text.find("1      pending    "), std::string::npos) << requests.text;
    EXPECT_NE(requests.text.find("cn=router7,o=lab"), std::string::npos);

    // Still pending on a poll before the grant.
    auto poll = read_rep(pki_get(s.port(), c.cert_poll({s.ca()}, s.ca())), s.ca(), c);
    ASSERT_TRUE(poll);
    EXPECT_EQ(poll->status, pki_status::pending);

    auto granted = admin_call(dir, "grant all");
    EXPECT_TRUE(granted.ok);
    EXPECT_NE(granted.text.find("Granted request 1: serial 2"), std::string::npos) << granted.text;

    poll = read_rep(pki_get(s.port(), c.cert_poll({s.ca()}, s.ca())), s.ca(), c);
    ASSERT_TRUE(poll);
    ASSERT_EQ(poll->status, pki_status::success);
    EXPECT_EQ(subject_string(poll->certs.front().get()), "CN=router7,O=lab");
    EXPECT_NE(admin_call(dir, "show certificates").text.find("cn=router7 o=lab"),
              std::string::npos);
}

TEST(admin_channel, reject_revoke_password_and_errors) {
    test_server s{grant_mode::manual};
    const auto dir = s.srv->admin_socket_path().parent_path();
    auto c = make_client("client1", "CN=r1", "secret");
    pki_post(s.port(), c.pkcs_req({s.ca()}));
    EXPECT_TRUE(admin_call(dir, "reject 1").ok);
    auto poll = read_rep(pki_post(s.port(), c.cert_poll({s.ca()}, s.ca())), s.ca(), c);
    ASSERT_TRUE(poll);
    EXPECT_EQ(poll->status, pki_status::failure);

    auto pw = admin_call(dir, "password generate 10");
    EXPECT_TRUE(pw.ok);
    EXPECT_NE(pw.text.find("is valid for 10 minute(s)"), std::string::npos);
    EXPECT_FALSE(admin_call(dir, "revoke 99").ok);
    EXPECT_FALSE(admin_call(dir, "revoke 1").ok);  // the CA certificate itself has serial 1
    EXPECT_FALSE(admin_call(dir, "launch missiles").ok);
}

TEST(admin_channel, show_http_counts_connections_and_requests) {
    http_options h;
    h.quiet = true;
    h.limiter.enabled = true;
    h.limiter.max_connections = 16;
    test_server s{grant_mode::auto_grant, std::nullopt, h};
    for (int i = 0; i < 3; ++i)
        http_get(s.port(), "/cgi-bin/pkiclient.exe?operation=GetCACaps");
    http_get(s.port(), "/nope");
    const auto text = admin_call(s.srv->admin_socket_path().parent_path(), "show http").text;
    EXPECT_NE(text.find("(IOS limits on)"), std::string::npos) << text;
    EXPECT_NE(text.find("Maximum connections (ip http max-connections): 16"), std::string::npos);
    EXPECT_NE(text.find("Connections accepted: 4"), std::string::npos) << text;
    EXPECT_NE(text.find("Requests: 4 (2xx 3, 4xx 1, 5xx 0)"), std::string::npos) << text;
}

TEST(admin_channel, a_second_server_on_the_same_folder_is_refused) {
    test_server s;
    auto e = lab_engine_options(s.dir.path, grant_mode::auto_grant);
    http_options h;
    h.port = 0;
    h.quiet = true;
    try {
        server second{e, h, s.clock};
        FAIL() << "two servers on one data folder";
    } catch (const startup_error& err) {
        EXPECT_EQ(err.status(), exit_status::listen);
    }
}

}  // namespace
}  // namespace pkisim::scep
