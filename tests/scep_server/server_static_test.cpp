// Issue 12 §3: GetCACert, GetCACaps and GetNextCACert are answered on the network thread from
// bytes prepared when the CA changes. These tests fail when the prepared bytes go stale: every
// change (the operator's `rollover` and `rollover cancel` on the admin socket, the shadow made and
// the switchover at a warped clock) must show in the very next answer, byte for byte what the
// engine itself answers. Manual clock, fixture shadow keys, no sleeps: each step waits only for
// its own answer.
#include <charconv>
#include <fstream>
#include <iterator>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/asio.hpp>

#include "pkisim/scep/codec.hpp"
#include "pkisim/scep/crypto.hpp"
#include "pkisim/scep/server.hpp"
#include "server_support.hpp"

namespace pkisim::scep {
namespace {

using namespace testing;
using timers::days;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// One counter from /metrics (over the admin socket).
std::uint64_t metric(const std::filesystem::path& data, std::string_view metric_name) {
    const auto text = admin_call(data, "show metrics").text;
    const auto name = fmt::format("\n{} ", metric_name);
    const auto at = text.find(name);
    EXPECT_NE(at, std::string::npos) << text;
    std::uint64_t n = 0;
    if (at != std::string::npos) {
        const char* p = text.data() + at + name.size();
        std::from_chars(p, text.data() + text.size(), n);
    }
    return n;
}
std::uint64_t prepared_answers(const std::filesystem::path& data) {
    return metric(data, "pkisim_http_prepared_answers_total");
}
std::uint64_t answered_at_accept(const std::filesystem::path& data) {
    return metric(data, "pkisim_http_answered_at_accept_total");
}

struct static_fixture {
    static engine_options options(const std::filesystem::path& dir) {
        auto o = lab_engine_options(dir, timers::grant_mode::auto_grant);
        o.server.auto_rollover = days{30};
        o.shadow_key_pems = {private_key_to_pem(fixture_key("rollover1")),
                             private_key_to_pem(fixture_key("rollover2"))};
        return o;
    }
    static http_options http(const std::filesystem::path& log = {}, bool ios_limits = false) {
        http_options h;
        h.quiet = log.empty();
        h.access_log = log;
        h.limiter.enabled = ios_limits;
        return h;
    }
    static_fixture() = default;
    static_fixture(const std::filesystem::path& log, bool ios_limits)
        : s{timers::grant_mode::auto_grant, options(opts_dir.path), http(log, ios_limits)} {}
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

// Issue 12 §3: with the IOS limits off, an HTTP/1.0 (or Connection: close) request for a
// prepared answer that has arrived whole is answered at accept, without a session. Whichever
// way a request goes (whole, split so that a session must finish reading it, keep-alive, with a
// body), the client gets the same bytes and the access log the same line; anything that is not
// a prepared 2xx answer still goes to a session. Timing decides whether a whole request is
// there at accept, so the test asserts that some were, not which.
TEST(static_answers, answered_at_accept_or_by_a_session_the_bytes_and_log_line_are_the_same) {
    temp_dir logs;
    const auto log = logs.path / "access.log";
    const std::string target = "/cgi-bin/pkiclient.exe?operation=GetCACert&message=labca";
    const auto ios = fmt::format("GET {} HTTP/1.0\r\nHost: x\r\n\r\n", target);
    std::vector<std::string> whole, split;
    std::string keep_alive_second, with_body, other, not_found;
    std::uint64_t at_accept = 0, prepared = 0;
    {
        static_fixture f{log, false};
        for (int i = 0; i < 20; ++i)
            whole.push_back(http_raw(f.s.port(), ios).raw);
        at_accept = answered_at_accept(f.data);
        // Split inside the request line: the server may accept between the parts, so a session
        // finishes the request from the bytes read at accept.
        for (int i = 0; i < 3; ++i) {
            net::io_context ctx{1};
            tcp::socket c{ctx};
            c.connect({net::ip::make_address("127.0.0.1"), f.s.port()});
            net::write(c, net::buffer(ios.substr(0, 20)));
            // Wait until the server holds the connection: then the rest cannot be read at accept.
            while (metric(f.data, "pkisim_http_open_sessions") == 0) {
            }
            net::write(c, net::buffer(ios.substr(20)));
            std::string got;
            boost::system::error_code ec;
            std::array<char, 4096> buf{};
            for (;;) {
                const auto n = c.read_some(net::buffer(buf), ec);
                got.append(buf.data(), n);
                if (ec)
                    break;
            }
            split.push_back(got);
        }
        const auto pair = http_raw(
            f.s.port(),
            fmt::format("GET {0} HTTP/1.1\r\nHost: x\r\n\r\nGET {0} HTTP/1.0\r\n\r\n", target));
        keep_alive_second = pair.raw.substr(pair.raw.find("HTTP/1.1 200 OK", 1));
        with_body = http_raw(f.s.port(), fmt::format("POST {} HTTP/1.0\r\nContent-Length: "
                                                     "3\r\n\r\nabc",
                                                     target))
                        .raw;
        other =
            http_raw(f.s.port(), "GET /cgi-bin/pkiclient.exe?operation=Nope HTTP/1.0\r\n\r\n").raw;
        not_found = http_raw(f.s.port(),
                             "GET /cgi-bin/pkiclient.exe?operation=GetNextCACert HTTP/1.0\r\n\r\n")
                        .raw;
        prepared = prepared_answers(f.data);
        // Nothing answered after the whole requests was answered at accept: split requests got
        // a session, and the rest are keep-alive, a body, an error or the IOS 404.
        EXPECT_EQ(answered_at_accept(f.data), at_accept);
        EXPECT_EQ(
            metric(f.data, R"(pkisim_http_requests_total{operation="GetCACert",status="200"})"),
            26u);
    }
    EXPECT_GE(at_accept, 1u) << "no request was answered at accept";
    EXPECT_LE(at_accept, 20u);
    // Every GetCACert the same bytes (manual clock: the same Date), whichever path served it.
    ASSERT_EQ(whole.front().substr(0, 15), "HTTP/1.1 200 OK");
    for (const auto& r : whole)
        EXPECT_EQ(r, whole.front());
    for (const auto& r : split)
        EXPECT_EQ(r, whole.front());
    EXPECT_EQ(keep_alive_second, whole.front());
    EXPECT_EQ(with_body, whole.front());
    EXPECT_EQ(other.substr(0, 24), "HTTP/1.1 400 Bad Request") << other;
    EXPECT_EQ(not_found.substr(0, 22), "HTTP/1.1 404 Not Found") << not_found;
    // 20 + 3 + 2 + 1 GetCACert, and the IOS 404 of GetNextCACert: all from prepared bytes.
    EXPECT_EQ(prepared, 27u);
    // The access log: one line per answer; the GetCACert lines differ only in the client's port
    // and the milliseconds.
    std::ifstream in{log};
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);)
        lines.push_back(l);
    ASSERT_EQ(lines.size(), 28u);
    const auto shape = [](const std::string& l) {
        std::istringstream words{l};
        std::vector<std::string> w{std::istream_iterator<std::string>{words}, {}};
        if (w.size() >= 6) {
            w[1] = w[1].substr(0, w[1].rfind(':'));  // 127.0.0.1:PORT
            w[5] = "ms";
        }
        return w;
    };
    const auto expected = shape(lines.front());
    ASSERT_GE(expected.size(), 6u) << lines.front();  // time peer method op status ms [detail]
    EXPECT_EQ(expected[1], "127.0.0.1");
    EXPECT_EQ(expected[2], "GET");
    EXPECT_EQ(expected[3], "GetCACert");
    EXPECT_EQ(expected[4], "200");
    int getcacert = 0;
    for (const auto& l : lines) {
        auto w = shape(l);
        if (w.size() > 3 && w[3] == "GetCACert") {
            ++getcacert;
            if (w[2] == "POST")
                w[2] = "GET";
            EXPECT_EQ(w, expected) << l;
        }
    }
    EXPECT_EQ(getcacert, 26);
}

// With the IOS limits on, nothing is answered at accept: the limiter's path is the session's
// (model §3), and the bytes are the prepared ones all the same.
TEST(static_answers, with_the_ios_limits_on_no_answer_is_given_at_accept) {
    static_fixture f{{}, true};
    const auto r = f.get("GetCACert");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(f.get("GetCACaps").status, 200u);
    EXPECT_EQ(prepared_answers(f.data), 2u);
    EXPECT_EQ(answered_at_accept(f.data), 0u);
}

}  // namespace
}  // namespace pkisim::scep
