// The listener drives the timers/ connection_limiter on every accepted socket (model §3).
// What a client sees (timers::attempt_cost is the same rule for the simulator):
//   over max-connections -> the connection is reset at once (no HTTP answer);
//   the attempt that trips the throttle -> connected (the kernel completed the handshake before
//   the filter went up) but never answered: the client gives up at its own timeout; the server
//   resets it when the deaf period ends;
//   while deaf -> no SYN-ACK at all: the connect times out (seed 002: "a telnet to port 80
//   times out"); a connect still retrying its SYN when the deaf period ends is served;
// Either way an ignored attempt gets no answer, the cost timers::attempt_cost charges.
//   after the deaf period -> normal service.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/asio.hpp>

#include "pkisim/scep/server.hpp"
#include "pkisim/timers/client_model.hpp"
#include "server_support.hpp"

namespace pkisim::scep {
namespace {

using namespace testing;
namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr std::string_view caps = "/cgi-bin/pkiclient.exe?operation=GetCACaps";

http_options limited(int max_connections, int throttle_limit) {
    http_options h;
    h.quiet = true;
    h.limiter.enabled = true;
    h.limiter.max_connections = max_connections;
    h.limiter.throttle_limit = throttle_limit;
    h.limiter.throttle_window_length = timers::seconds{1};
    h.limiter.deaf_period = timers::seconds{1};
    return h;
}

std::string show_http(const test_server& s) {
    return admin_call(s.srv->admin_socket_path().parent_path(), "show http").text;
}

// The network thread holds the tripping connection and raises the SYN filter in one handler:
// once `show http` reports it held, the listener is deaf. Bounded wait (real time).
bool wait_until_held(const test_server& s, int n = 1) {
    const auto want = fmt::format("Held unanswered while deaf: {} now", n);
    for (int i = 0; i < 500; ++i) {
        if (show_http(s).find(want) != std::string::npos)
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    return false;
}

// A non-blocking connect to 127.0.0.1:port, as a client with a connect timeout sees it.
enum class connect_result { connected, refused, timed_out };
struct pending_connect {
    explicit pending_connect(unsigned short port) {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
    }
    ~pending_connect() { ::close(fd); }
    pending_connect(const pending_connect&) = delete;
    pending_connect& operator=(const pending_connect&) = delete;
    connect_result wait(std::chrono::milliseconds timeout) const {
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) == 0)
            return connect_result::timed_out;
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        return err == 0 ? connect_result::connected : connect_result::refused;
    }
    int fd = -1;
};

// A connection whose request was sent: what, if anything, comes back within a bound.
enum class answer { nothing, reset, data, closed };
struct sent_request {
    explicit sent_request(unsigned short port) : c{port} {
        connected = c.wait(std::chrono::milliseconds{5000}) == connect_result::connected;
        const std::string req = fmt::format("GET {} HTTP/1.0\r\n\r\n", caps);
        if (connected)
            connected = ::send(c.fd, req.data(), req.size(), MSG_NOSIGNAL) ==
                        static_cast<ssize_t>(req.size());
    }
    answer wait(std::chrono::milliseconds timeout) const {
        pollfd p{c.fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) == 0)
            return answer::nothing;
        char b[64];
        const auto n = ::recv(c.fd, b, sizeof b, MSG_DONTWAIT);
        if (n > 0)
            return answer::data;
        return n == 0 ? answer::closed : errno == ECONNRESET ? answer::reset : answer::closed;
    }
    pending_connect c;
    bool connected = false;
};

TEST(listener_limiter, connections_over_max_connections_are_dropped_at_once) {
    test_server s{timers::grant_mode::auto_grant, std::nullopt, limited(2, 1000)};
    net::io_context ctx;
    tcp::socket a{ctx}, b{ctx};
    a.connect({net::ip::make_address("127.0.0.1"), s.port()});
    b.connect({net::ip::make_address("127.0.0.1"), s.port()});
    // Let the server accept both (they stay open: no request yet).
    for (int i = 0; i < 50 && show_http(s).find("Open connections: 2") == std::string::npos; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds{10});
    auto third = http_get(s.port(), caps);
    EXPECT_TRUE(third.closed_without_answer);
    a.close();
    b.close();
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
    EXPECT_EQ(http_get(s.port(), caps).status, 200u);
    const auto text = show_http(s);
    EXPECT_NE(text.find("Dropped (max-connections): 1"), std::string::npos) << text;
}

TEST(listener_limiter, throttle_makes_the_listener_deaf_then_it_serves_again) {
    test_server s{timers::grant_mode::auto_grant, std::nullopt, limited(16, 3)};
    for (int i = 0; i < 3; ++i)
        EXPECT_EQ(http_get(s.port(), caps).status, 200u);
    // The 4th connection in the window starts the deaf period: connected, never answered.
    sent_request fourth{s.port()};
    EXPECT_TRUE(fourth.connected);
    ASSERT_TRUE(wait_until_held(s));
    EXPECT_EQ(fourth.wait(std::chrono::milliseconds{200}), answer::nothing);
    // While deaf: no SYN-ACK, the connect times out (the kernel retransmits the SYN after 1 s;
    // we give up before that, as a client with a short connect timeout).
    {
        pending_connect during{s.port()};
        EXPECT_EQ(during.wait(std::chrono::milliseconds{300}), connect_result::timed_out);
    }
    EXPECT_NE(show_http(s).find("Listener: deaf until"), std::string::npos);
    // The deaf period ends (1 s of the server's clock, armed as 1 s of real time).
    s.clock.advance(timers::seconds{2});
    // The held 4th connection is reset when it ends, without an answer.
    EXPECT_EQ(fourth.wait(std::chrono::milliseconds{5000}), answer::reset);
    EXPECT_EQ(http_get(s.port(), caps).status, 200u);
    const auto text = show_http(s);
    EXPECT_NE(text.find("Deaf periods: 1"), std::string::npos) << text;
    // The SYN dropped while deaf never reached the server: only the 4th connection counts.
    EXPECT_NE(text.find("Ignored while deaf: 1"), std::string::npos) << text;
    EXPECT_NE(text.find("Held unanswered while deaf: 0 now, 1 reset when the deaf period ended"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("Reset from the backlog after a deaf period: 0"), std::string::npos)
        << text;
    EXPECT_NE(text.find("Connections accepted: 4"), std::string::npos) << text;
}

TEST(listener_limiter, a_deaf_listener_sends_neither_syn_ack_nor_reset) {
    // The shared rule: an ignored attempt costs the client its connect timeout.
    timers::client_model m;
    m.connect_timeout = timers::duration{400};
    const auto cost = timers::attempt_cost(timers::admission::ignored_deaf, {}, m);
    ASSERT_EQ(cost.outcome, timers::http_outcome::timed_out);

    auto h = limited(16, 1);
    h.limiter.deaf_period = timers::seconds{30};
    test_server s{timers::grant_mode::auto_grant, std::nullopt, h};
    EXPECT_EQ(http_get(s.port(), caps).status, 200u);
    // The attempt that trips the throttle: connected, then no answer for the client's timeout.
    sent_request tripping{s.port()};
    EXPECT_TRUE(tripping.connected);
    ASSERT_TRUE(wait_until_held(s));
    // Not refused (that would be an RST), not connected (that would be a SYN-ACK): nothing,
    // for as long as the client cares to wait.
    std::vector<std::unique_ptr<pending_connect>> tries;
    for (int i = 0; i < 5; ++i)
        tries.push_back(std::make_unique<pending_connect>(s.port()));
    for (const auto& t : tries)
        EXPECT_EQ(t->wait(std::chrono::milliseconds{cost.after.count()}),
                  connect_result::timed_out);
    EXPECT_EQ(tripping.wait(std::chrono::milliseconds{cost.after.count()}), answer::nothing);
}

TEST(listener_limiter, the_tripping_connection_gets_no_answer_until_the_deaf_period_ends) {
    // The manual clock stands still: the server stays deaf however long real time runs (its
    // real timer keeps re-arming), so "the rest of the deaf period" is as long as we look.
    auto h = limited(16, 1);
    h.limiter.deaf_period = timers::duration{100};
    test_server s{timers::grant_mode::auto_grant, std::nullopt, h};
    EXPECT_EQ(http_get(s.port(), caps).status, 200u);
    sent_request tripping{s.port()};
    ASSERT_TRUE(tripping.connected);
    ASSERT_TRUE(wait_until_held(s));
    // Several deaf-timer rounds (100 ms real each): still held, not read, not answered.
    EXPECT_EQ(tripping.wait(std::chrono::milliseconds{500}), answer::nothing);
    auto text = show_http(s);
    EXPECT_NE(text.find("Listener: deaf until"), std::string::npos) << text;
    EXPECT_NE(text.find("Held unanswered while deaf: 1 now, 0 reset"), std::string::npos) << text;
    // The deaf period ends on the server's clock: the held connection is reset, never served.
    s.clock.advance(timers::seconds{2});
    EXPECT_EQ(tripping.wait(std::chrono::milliseconds{5000}), answer::reset);
    text = show_http(s);
    EXPECT_NE(text.find("Listener: listening"), std::string::npos) << text;
    EXPECT_NE(text.find("Held unanswered while deaf: 0 now, 1 reset"), std::string::npos) << text;
    EXPECT_NE(text.find("Requests: 1 "), std::string::npos) << text;  // only the first
    EXPECT_EQ(http_get(s.port(), caps).status, 200u);
}

TEST(listener_limiter, held_connections_are_reset_when_the_server_stops) {
    auto h = limited(16, 1);
    h.limiter.deaf_period = timers::seconds{30};
    test_server s{timers::grant_mode::auto_grant, std::nullopt, h};
    EXPECT_EQ(http_get(s.port(), caps).status, 200u);
    sent_request tripping{s.port()};
    ASSERT_TRUE(tripping.connected);
    ASSERT_TRUE(wait_until_held(s));
    EXPECT_EQ(tripping.wait(std::chrono::milliseconds{100}), answer::nothing);
    s.srv->stop();
    EXPECT_EQ(tripping.wait(std::chrono::milliseconds{5000}), answer::reset);
}

TEST(listener_limiter, a_connect_still_retrying_when_the_deaf_period_ends_is_served) {
    auto h = limited(16, 1);
    h.limiter.deaf_period = timers::duration{300};
    test_server s{timers::grant_mode::auto_grant, std::nullopt, h};
    EXPECT_EQ(http_get(s.port(), caps).status, 200u);
    sent_request tripping{s.port()};  // deaf for 300 ms (real) of a clock that stands still
    EXPECT_TRUE(tripping.connected);
    ASSERT_TRUE(wait_until_held(s));
    pending_connect late{s.port()};
    EXPECT_EQ(late.wait(std::chrono::milliseconds{200}), connect_result::timed_out);
    s.clock.advance(timers::seconds{5});  // the window has passed too
    // Linux retransmits the SYN 1 s after the first: the listener hears it now.
    EXPECT_EQ(late.wait(std::chrono::milliseconds{3000}), connect_result::connected);
    EXPECT_EQ(tripping.wait(std::chrono::milliseconds{3000}), answer::reset);
}

TEST(listener_limiter, every_decision_reaches_the_trace_in_order) {
    auto h = limited(16, 2);
    std::vector<limiter_event> events;
    std::mutex m;
    h.limiter_trace = [&](const limiter_event& e) {
        std::lock_guard lock{m};
        events.push_back(e);
    };
    test_server s{timers::grant_mode::auto_grant, std::nullopt, h};
    for (int i = 0; i < 2; ++i)
        http_get(s.port(), caps);
    sent_request third{s.port()};  // trips the throttle: held unanswered
    ASSERT_TRUE(wait_until_held(s));
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
    std::lock_guard lock{m};
    // Attempts in order (closes may interleave: a client's close races its next connect).
    std::vector<timers::admission> attempts;
    int closes = 0, deaf_starts = 0;
    for (const auto& e : events) {
        if (e.what == limiter_event::kind::attempt)
            attempts.push_back(e.decision);
        closes += e.what == limiter_event::kind::close;
        deaf_starts += e.what == limiter_event::kind::deaf_start;
    }
    using a = timers::admission;
    EXPECT_EQ(attempts, (std::vector<a>{a::accepted, a::accepted, a::ignored_deaf}));
    EXPECT_EQ(closes, 2);
    EXPECT_EQ(deaf_starts, 1);
    EXPECT_EQ(events.back().what, limiter_event::kind::deaf_start);
}

}  // namespace
}  // namespace pkisim::scep
