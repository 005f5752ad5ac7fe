// Issue 12 §3: GetCACert, GetCACaps and GetNextCACert are answered on the network thread from
// bytes prepared when the CA changes. These tests fail when the prepared bytes go stale: every
// change (the operator's `rollover` and `rollover cancel` on the admin socket, the shadow made and
// the switchover at a warped clock) must show in the very next answer, byte for byte what the
// engine itself answers. Manual clock, fixture shadow keys, no sleeps: each step waits only for
// its own answer.
#include <charconv>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "pkisim/scep/codec.hpp"
#include "pkisim/scep/crypto.hpp"
#include "pkisim/scep/server.hpp"
#include "server_support.hpp"

namespace pkisim::scep {
namespace {

using namespace testing;
using timers::days;

// pkisim_http_prepared_answers_total from /metrics (over the admin socket).
std::uint64_t prepared_answers(const std::filesystem::path& data) {
    const auto text = admin_call(data, "show metrics").text;
    constexpr std::string_view name = "\npkisim_http_prepared_answers_total ";
    const auto at = text.find(name);
    EXPECT_NE(at, std::string::npos) << text;
    std::uint64_t n = 0;
    if (at != std::string::npos) {
        const char* p = text.data() + at + name.size();
        std::from_chars(p, text.data() + text.size(), n);
    }
    return n;
}

struct static_fixture {
    static engine_options options(const std::filesystem::path& dir) {
        auto o = lab_engine_options(dir, timers::grant_mode::auto_grant);
        o.server.auto_rollover = days{30};
        o.shadow_key_pems = {private_key_to_pem(fixture_key("rollover1")),
                             private_key_to_pem(fixture_key("rollover2"))};
        return o;
    }
    static http_options http() {
        http_options h;
        h.quiet = true;
        h.limiter.enabled = false;
        return h;
    }
    raw_response get(std::string_view op) {
        return http_get(s.port(),
                        fmt::format("/cgi-bin/pkiclient.exe?operation={}&message=labca", op));
    }
    admin_result admin(const std::string& line) {
        auto r = admin_call(data, line);
        EXPECT_TRUE(r.ok) << line << ": " << r.text;
        return r;
    }
    // The certificate the next GetNextCACert announces (signed by the current CA `current`).
    x509_ptr next_ca(X509* current) {
        auto r = get("GetNextCACert");
        EXPECT_EQ(r.status, 200u) << r.raw;
        EXPECT_EQ(r.header("Content-Type"), "application/x-x509-next-ca-cert");
        std::array<X509*, 1> trusted{current};
        auto parsed = parse_get_next_ca_cert(r.body_bytes(), trusted);
        EXPECT_TRUE(parsed) << "GetNextCACert not signed by the current CA";
        if (!parsed || parsed->content_certs.empty())
            return nullptr;
        return std::move(parsed->content_certs.front());
    }
    void expect_no_next_ca() {
        auto r = get("GetNextCACert");
        // Model §1 rule 4: the IOS 404, byte for byte apart from the date.
        EXPECT_EQ(r.status, 404u) << r.raw;
        EXPECT_EQ(r.head.substr(0, r.head.find("\r\n")), "HTTP/1.1 404 Not Found");
        EXPECT_EQ(r.header("Server"), "cisco-IOS");
        EXPECT_EQ(r.header("Accept-Ranges"), "none");
        EXPECT_EQ(r.body, "404 Not Found\r\n");
        EXPECT_EQ(get("GetCACaps").body.find("GetNextCACert"), std::string::npos);
    }
    bytes ca_cert_der() {
        auto r = get("GetCACert");
        EXPECT_EQ(r.status, 200u) << r.raw;
        EXPECT_EQ(r.header("Content-Type"), "application/x-x509-ca-cert");
        return r.body_bytes();
    }

    temp_dir opts_dir;
    test_server s{timers::grant_mode::auto_grant, options(opts_dir.path), http()};
    std::filesystem::path data = s.dir.path / "data";
};

TEST(static_answers, every_ca_change_shows_in_the_next_answer) {
    static_fixture f;
    const auto ca1 = x509_from_der(f.ca_cert_der());
    ASSERT_TRUE(ca1);
    f.expect_no_next_ca();
    EXPECT_EQ(f.get("GetCACaps").status, 200u);
    // Prepared at start: none of these went to the engine thread.
    EXPECT_EQ(prepared_answers(f.data), 4u);

    // The operator's rollover: the next GetNextCACert announces the shadow, GetCACaps lists it.
    f.admin("rollover");
    auto shadow1 = f.next_ca(ca1->get());
    ASSERT_TRUE(shadow1);
    EXPECT_EQ(not_before(shadow1.get()), not_after(ca1->get()));
    EXPECT_NE(f.get("GetCACaps").body.find("GetNextCACert\n"), std::string::npos);
    EXPECT_EQ(prepared_answers(f.data), 6u);

    // `rollover cancel`: back to the IOS 404 at once; a new rollover announces a new key.
    f.admin("rollover cancel");
    f.expect_no_next_ca();
    f.admin("rollover");
    auto shadow2 = f.next_ca(ca1->get());
    ASSERT_TRUE(shadow2);
    EXPECT_NE(to_der(shadow2.get()), to_der(shadow1.get()));
    EXPECT_EQ(f.ca_cert_der(), to_der(ca1->get()));

    // The switchover on a warped clock: at the old CA's notAfter GetCACert is the new CA. The
    // first answer after that instant comes from the engine (which switches over; unless the
    // server's tick did it first), the next from the bytes prepared for the new state: the same
    // bytes (same second, same Date).
    const auto before = prepared_answers(f.data);
    f.s.clock.set(not_after(ca1->get()));
    const auto by_engine = f.get("GetCACert");
    const auto prepared = f.get("GetCACert");
    EXPECT_EQ(by_engine.body_bytes(), to_der(shadow2.get()));
    EXPECT_EQ(prepared.raw, by_engine.raw);
    EXPECT_GE(prepared_answers(f.data), before + 1);
    f.expect_no_next_ca();

    // The automatic shadow of the new CA (auto-rollover 30 days): 404 a second before it is due,
    // 200 at the due instant, from the engine and then from prepared bytes, the same bytes.
    const time_point due = not_after(shadow2.get()) - days{30};
    f.s.clock.set(due - timers::duration{1});
    f.expect_no_next_ca();
    f.s.clock.set(due);
    const auto next_by_engine = f.get("GetNextCACert");
    const auto next_prepared = f.get("GetNextCACert");
    EXPECT_EQ(next_by_engine.status, 200u);
    EXPECT_EQ(next_prepared.raw, next_by_engine.raw);
    auto shadow3 = f.next_ca(shadow2.get());
    ASSERT_TRUE(shadow3);
    EXPECT_EQ(not_before(shadow3.get()), not_after(shadow2.get()));

    // `show http` and the access counters count prepared answers like any other.
    const auto show = admin_call(f.data, "show http").text;
    EXPECT_NE(show.find("Answered from prepared bytes (GetCACert, GetCACaps, GetNextCACert): "),
              std::string::npos)
        << show;
    EXPECT_NE(show.find("GetNextCACert 404: "), std::string::npos) << show;
}

TEST(static_answers, keep_alive_and_close_get_the_same_bytes_as_the_engine_path) {
    static_fixture f;
    // HTTP/1.1 keep-alive: two answers on one connection, both prepared, then the close.
    const auto target = std::string{"/cgi-bin/pkiclient.exe?operation=GetCACaps&message=labca"};
    const auto req = fmt::format(
        "GET {} HTTP/1.1\r\nHost: x\r\n\r\nGET {} HTTP/1.1\r\nHost: "
        "x\r\nConnection: close\r\n\r\n",
        target, target);
    const auto r = http_raw(f.s.port(), req);
    const auto first_end = r.raw.find("\r\n\r\n");
    ASSERT_NE(first_end, std::string::npos) << r.raw;
    const auto second = r.raw.find("HTTP/1.1 200 OK", first_end);
    ASSERT_NE(second, std::string::npos) << r.raw;
    const auto one = r.raw.substr(0, second);
    const auto two = r.raw.substr(second);
    EXPECT_EQ(one.find("Connection: close"), std::string::npos) << one;
    EXPECT_NE(two.find("Connection: close\r\n"), std::string::npos) << two;
    // HTTP/1.0 (as IOS sends it): closes, Content-Length, no chunking.
    const auto caps = f.get("GetCACaps");
    EXPECT_EQ(caps.header("Content-Length"), std::to_string(caps.body.size()));
    EXPECT_EQ(caps.header("Transfer-Encoding"), "");
    EXPECT_EQ(caps.header("Date").size(), 29u);
    EXPECT_EQ(prepared_answers(f.data), 3u);
}

}  // namespace
}  // namespace pkisim::scep
