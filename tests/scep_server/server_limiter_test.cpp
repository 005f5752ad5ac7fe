// The listener drives the timers/ connection_limiter on every accepted socket (model §3).
// What a client sees: over max-connections -> the connection is closed at once (RST, no answer);
// while deaf -> its handshake completes in the kernel backlog but no HTTP answer comes, and it
// is reset when the deaf period ends; after the deaf period -> normal service.
#include <gtest/gtest.h>
#include <boost/asio.hpp>

#include "pkisim/scep/server.hpp"
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

TEST(listener_limiter, connections_over_max_connections_are_dropped_at_once) {
    test_server s{timers::grant_mode::auto_grant, std::nullopt, limited(2, 1000)};
    net::io_context ctx;
    tcp::socket a{ctx}, b{ctx};
    a.connect({net::ip::make_address("127.0.0.1"), s.port()});
    b.connect({net::ip::make_address("127.0.0.1"), s.port()});
    // Let the server accept both (they stay open: no request yet).
    for (int i = 0; i < 50 && admin_call(s.srv->admin_socket_path().parent_path(), "show http")
                                      .text.find("Open connections: 2") == std::string::npos;
         ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    auto third = http_get(s.port(), caps);
    EXPECT_TRUE(third.closed_without_answer);
    a.close();
    b.close();
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
    EXPECT_EQ(http_get(s.port(), caps).status, 200u);
    const auto text = admin_call(s.srv->admin_socket_path().parent_path(), "show http").text;
    EXPECT_NE(text.find("Dropped (max-connections): 1"), std::string::npos) << text;
}

TEST(listener_limiter, throttle_makes_the_listener_deaf_then_it_serves_again) {
    test_server s{timers::grant_mode::auto_grant, std::nullopt, limited(16, 3)};
    for (int i = 0; i < 3; ++i)
        EXPECT_EQ(http_get(s.port(), caps).status, 200u);
    // The 4th connection in the window starts the deaf period and is not answered.
    EXPECT_TRUE(http_get(s.port(), caps).closed_without_answer);
    // While deaf: the kernel completes the handshake, but no HTTP answer ever comes.
    auto during = http_get(s.port(), caps);
    EXPECT_TRUE(during.closed_without_answer);
    // The deaf period ends (1 s of the server's clock, armed as 1 s of real time).
    s.clock.advance(timers::seconds{2});
    std::this_thread::sleep_for(std::chrono::milliseconds{1200});
    EXPECT_EQ(http_get(s.port(), caps).status, 200u);
    const auto text = admin_call(s.srv->admin_socket_path().parent_path(), "show http").text;
    EXPECT_NE(text.find("Deaf periods: 1"), std::string::npos) << text;
    EXPECT_NE(text.find("Ignored while deaf: 1"), std::string::npos) << text;
    EXPECT_NE(text.find("Reset from the backlog after a deaf period: 1"), std::string::npos)
        << text;
    EXPECT_NE(text.find("Connections accepted: 4"), std::string::npos) << text;
}

}  // namespace
}  // namespace pkisim::scep
