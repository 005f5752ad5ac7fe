// Issue 13 §3: descriptors, connections and memory. Out of descriptors the listener backs off
// and sheds load through its reserve descriptor instead of spinning on accept(); --max-open caps
// open connections with the IOS limits off; request bodies in flight share a memory bound; and
// `ip http timeout-policy idle S life S requests N` is parsed and enforced.
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/asio.hpp>

#include "pkisim/timers/config.hpp"
#include "server_support.hpp"

namespace pkisim::scep {
namespace {

using namespace testing;
namespace net = boost::asio;
using tcp = net::ip::tcp;
constexpr std::string_view caps = "/cgi-bin/pkiclient.exe?operation=GetCACaps";

// A connected socket to 127.0.0.1:port (blocking).
struct conn {
    net::io_context ctx;
    tcp::socket s{ctx};
    explicit conn(unsigned short port) { s.connect({net::ip::address_v4::loopback(), port}); }
    void send(std::string_view text) { net::write(s, net::buffer(text)); }
    // Reads one HTTP response (headers + Content-Length body); "" on EOF/reset first.
    std::string read_response() {
        std::string head;
        boost::system::error_code ec;
        net::read_until(s, net::dynamic_buffer(buf), "\r\n\r\n", ec);
        if (ec)
            return {};
        const auto end = buf.find("\r\n\r\n") + 4;
        head = buf.substr(0, end);
        buf.erase(0, end);
        std::size_t len = 0;
        if (const auto at = head.find("Content-Length: "); at != std::string::npos)
            len = std::stoul(head.substr(at + 16));
        if (buf.size() < len)
            net::read(s, net::dynamic_buffer(buf), net::transfer_exactly(len - buf.size()), ec);
        head += buf.substr(0, len);
        buf.erase(0, std::min(len, buf.size()));
        return head;
    }
    // true when the server closed (EOF or RST) within `ms`.
    bool closed_within(int ms) {
        pollfd p{s.native_handle(), POLLIN, 0};
        if (::poll(&p, 1, ms) <= 0)
            return false;
        char c;
        const auto n = ::recv(s.native_handle(), &c, 1, MSG_DONTWAIT);
        return n <= 0;
    }
    std::string buf;
};

std::uint64_t metric_value(const std::string& text, std::string_view name) {
    std::istringstream in{text};
    for (std::string line; std::getline(in, line);) {
        if (line.starts_with(std::string{name} + " "))
            return std::stoull(line.substr(name.size() + 1));
    }
    ADD_FAILURE() << "no metric " << name;
    return 0;
}

std::string metrics_of(const test_server& s) {
    return admin_call(s.dir.path / "data", "show metrics").text;
}

http_options no_ios_limits() {
    http_options h;
    h.quiet = true;
    h.limiter.enabled = false;
    return h;
}

TEST(resource_limits, max_open_resets_connections_over_the_cap_with_ios_limits_off) {
    auto h = no_ios_limits();
    h.max_open = 3;
    test_server s{timers::grant_mode::auto_grant, std::nullopt, h};
    const std::string keep = fmt::format("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", caps);
    std::vector<std::unique_ptr<conn>> open;
    for (int i = 0; i < 3; ++i) {
        open.push_back(std::make_unique<conn>(s.port()));
        open.back()->send(keep);
        EXPECT_NE(open.back()->read_response().find("200 OK"), std::string::npos);
    }
    // Three kept-alive sessions: the fourth connection is reset without an answer.
    auto r = http_get(s.port(), std::string{caps});
    EXPECT_TRUE(r.reset || r.closed_without_answer) << r.raw;
    EXPECT_EQ(metric_value(metrics_of(s), "pkisim_http_connections_dropped_max_open_total"), 1u);
    EXPECT_EQ(metric_value(metrics_of(s), "pkisim_http_max_open"), 3u);
    // One closes: serving resumes (the session is gone once the server has seen the close).
    open.pop_back();
    raw_response ok;
    for (int i = 0; i < 200 && ok.status != 200; ++i)
        ok = http_get(s.port(), std::string{caps});
    EXPECT_EQ(ok.status, 200u);
    const auto shown = admin_call(s.dir.path / "data", "show http").text;
    EXPECT_NE(shown.find("of --max-open 3"), std::string::npos) << shown;
}

TEST(resource_limits, the_default_max_open_follows_the_descriptor_limit) {
    test_server s{timers::grant_mode::auto_grant, std::nullopt, no_ios_limits()};
    rlimit rl{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &rl), 0);
    const auto expected = rl.rlim_cur - http_options::descriptor_margin;
    EXPECT_EQ(metric_value(metrics_of(s), "pkisim_http_max_open"), expected);
    EXPECT_EQ(metric_value(metrics_of(s), "pkisim_http_reserve_descriptor"), 1u);
}

TEST(resource_limits, bodies_in_flight_share_one_memory_bound_then_503) {
    auto h = no_ios_limits();
    h.body_memory_limit = 300'000;
    test_server s{timers::grant_mode::auto_grant, std::nullopt, h};
    const std::string head =
        "POST /cgi-bin/pkiclient.exe?operation=PKIOperation HTTP/1.1\r\nHost: x\r\n"
        "Content-Length: 200000\r\n\r\n";
    conn a{s.port()};
    a.send(head + "0123456789");
    // Wait until the server has read A's headers and reserved its body.
    std::uint64_t reserved = 0;
    for (int i = 0; i < 500 && reserved == 0; ++i) {
        reserved = metric_value(metrics_of(s), "pkisim_http_body_memory_bytes");
        if (reserved == 0)
            std::this_thread::yield();
    }
    ASSERT_EQ(reserved, 200'000u);
    conn b{s.port()};
    b.send(head);
    const auto refused = b.read_response();
    EXPECT_NE(refused.find("HTTP/1.1 503"), std::string::npos) << refused;
    EXPECT_EQ(metric_value(metrics_of(s), "pkisim_http_requests_refused_body_memory_total"), 1u);
    // A finishes its (garbage) body: answered 400, and the memory is released.
    a.send(std::string(200'000 - 10, 'x'));
    const auto answered = a.read_response();
    EXPECT_NE(answered.find("HTTP/1.1 400"), std::string::npos) << answered.substr(0, 200);
    EXPECT_EQ(metric_value(metrics_of(s), "pkisim_http_body_memory_bytes"), 0u);
    conn c{s.port()};
    c.send(head + std::string(200'000, 'x'));
    EXPECT_NE(c.read_response().find("HTTP/1.1 400"), std::string::npos);
}

TEST(timeout_policy, the_ios_command_is_parsed_with_ranges_and_file_line_errors) {
    auto ok = timers::parse_ios_config(
        "ip http timeout-policy idle 30 life 120 requests 5\ncrypto pki server ca\n", "a.ios");
    ASSERT_TRUE(ok) << ok.error().to_string();
    ASSERT_TRUE(ok->http.timeouts);
    EXPECT_EQ(ok->http.timeouts->idle_s, 30);
    EXPECT_EQ(ok->http.timeouts->life_s, 120);
    EXPECT_EQ(ok->http.timeouts->requests, 5);
    EXPECT_EQ(ok->http.timeouts->where.line, 1);
    // Abbreviated as IOS accepts it.
    auto abbrev = timers::parse_ios_config("ip http timeout idle 1 life 86400 req 86400\n", "b");
    ASSERT_TRUE(abbrev) << abbrev.error().to_string();
    EXPECT_EQ(abbrev->http.timeouts->requests, 86400);
    auto none = timers::parse_ios_config("crypto pki server ca\n", "c.ios");
    ASSERT_TRUE(none);
    EXPECT_FALSE(none->http.timeouts);
    auto removed = timers::parse_ios_config(
        "ip http timeout-policy idle 30 life 120 requests 5\nno ip http timeout-policy\n", "d");
    ASSERT_TRUE(removed) << removed.error().to_string();
    EXPECT_FALSE(removed->http.timeouts);
    for (const auto* bad : {"ip http timeout-policy idle 0 life 120 requests 5\n",
                            "ip http timeout-policy idle 30 life 86401 requests 5\n",
                            "ip http timeout-policy idle 30 requests 5\n",
                            "ip http timeout-policy idle 30 life 120\n",
                            "ip http timeout-policy idle 30 life 120 requests 5 extra\n"}) {
        auto e = timers::parse_ios_config(std::string{"!\n"} + bad, "bad.ios");
        ASSERT_FALSE(e) << bad;
        EXPECT_TRUE(e.error().to_string().starts_with("bad.ios:2:")) << e.error().to_string();
    }
}

TEST(timeout_policy, requests_n_closes_the_connection_after_the_nth_answer) {
    auto h = no_ios_limits();
    h.timeout_policy = timers::http_config::timeout_policy{30, 60, 2, {}};
    test_server s{timers::grant_mode::auto_grant, std::nullopt, h};
    const std::string one = fmt::format("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", caps);
    conn c{s.port()};
    c.send(one);
    const auto first = c.read_response();
    EXPECT_NE(first.find("200 OK"), std::string::npos);
    EXPECT_EQ(first.find("Connection: close"), std::string::npos) << first;
    c.send(one);
    const auto second = c.read_response();
    EXPECT_NE(second.find("200 OK"), std::string::npos);
    EXPECT_NE(second.find("Connection: close"), std::string::npos) << second;
    EXPECT_TRUE(c.closed_within(5000));
    EXPECT_GE(metric_value(metrics_of(s), "pkisim_http_connections_closed_timeout_policy_total"),
              1u);
}

TEST(timeout_policy, idle_s_ends_the_wait_for_the_next_request) {
    auto h = no_ios_limits();
    h.timeout_policy = timers::http_config::timeout_policy{1, 60, 100, {}};
    test_server s{timers::grant_mode::auto_grant, std::nullopt, h};
    conn c{s.port()};
    c.send(fmt::format("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", caps));
    EXPECT_NE(c.read_response().find("200 OK"), std::string::npos);
    // Idle 1 s (not the 10 s read timeout): closed well before 10 s.
    EXPECT_TRUE(c.closed_within(5000));
}

// `pkisim serve` under `ulimit -n 64` with hundreds of idle connections (the case:
// --ios-limits off, descriptors exhausted): accept() must not spin, the backlog is shed through
// the reserve descriptor, and serving resumes when connections go away.
TEST(resource_limits, out_of_descriptors_the_listener_backs_off_and_sheds_instead_of_spinning) {
#if defined(__SANITIZE_ADDRESS__)
    // Not a pkisim bug (found in session 4): out of descriptors, the sanitized server dies on a
    // false UBSan report, "error_category.hpp:203: member access within address ... which does
    // not point to an object of type 'error_category' ... invalid vptr <memory cannot be
    // printed>". UBSan's vptr check, on a type-cache miss, asks sanitizer_common's
    // IsAccessibleMemoryRange() whether it may read the vtable, and that function writes the
    // memory into a fresh pipe(2) (compiler-rt sanitizer_posix_libcdep.cpp; llvm-project PR
    // 112665). At EMFILE the pipe fails, the vtable counts as unreadable, and
    // -fno-sanitize-recover aborts the process: the test's next connect() is refused. No
    // runtime option turns that off (vptr suppressions match the dynamic type's name, which
    // cannot be read here). The release build runs this test; the EMFILE code itself is the same.
    GTEST_SKIP() << "UBSan's vptr check needs pipe(2) and aborts when descriptors run out";
#endif
    temp_dir dir;
    std::ofstream{dir.path / "ca.ios"} << "crypto pki server labca\n issuer-name CN=labca,O=lab\n";
    std::ofstream{dir.path / "pass"} << "fd-test-passphrase\n";
    std::filesystem::permissions(dir.path / "pass", std::filesystem::perms::owner_read |
                                                        std::filesystem::perms::owner_write);
    int out[2];
    ASSERT_EQ(::pipe(out), 0);
    const std::string cmd = fmt::format(
        "ulimit -n 64 && exec {} serve {} --data {} --listen 127.0.0.1:0 --passphrase-file {} "
        "--ios-limits off --max-open 100000 --backlog 512 --read-timeout-ms 60000 2>{}",
        PKISIM_BINARY, (dir.path / "ca.ios").string(), (dir.path / "data").string(),
        (dir.path / "pass").string(), (dir.path / "stderr.txt").string());
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(out[1], STDOUT_FILENO);
        ::close(out[0]);
        ::execl("/bin/bash", "bash", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(out[1]);
    std::string line;
    pollfd p{out[0], POLLIN, 0};
    while (line.find('\n') == std::string::npos && ::poll(&p, 1, 20'000) > 0) {
        char b[256];
        const auto n = ::read(out[0], b, sizeof b);
        if (n <= 0)
            break;
        line.append(b, static_cast<std::size_t>(n));
    }
    const auto at = line.find("127.0.0.1:");
    ASSERT_NE(at, std::string::npos) << line;
    const auto port = static_cast<unsigned short>(std::stoi(line.substr(at + 10)));
    const auto cpu_ticks = [pid] {
        std::ifstream in{fmt::format("/proc/{}/stat", pid)};
        std::string s{std::istreambuf_iterator<char>{in}, {}};
        std::istringstream f{s.substr(s.rfind(')') + 2)};
        std::vector<std::string> fields{std::istream_iterator<std::string>{f}, {}};
        return std::stoull(fields.at(11)) + std::stoull(fields.at(12));  // utime + stime
    };

    // Far more idle connections than the server has descriptors.
    std::vector<std::unique_ptr<conn>> idle;
    for (int i = 0; i < 150; ++i)
        idle.push_back(std::make_unique<conn>(port));
    // Some are reset at once (shed through the reserve): wait for the first.
    bool any_reset = false;
    for (int round = 0; round < 50 && !any_reset; ++round) {
        for (auto& c : idle) {
            if (c->closed_within(0)) {
                any_reset = true;
                break;
            }
        }
        if (!any_reset)
            std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
    EXPECT_TRUE(any_reset) << "no connection was shed";
    // A measurement window: a spinning accept() loop burns the whole second (100 ticks).
    const auto before = cpu_ticks();
    std::this_thread::sleep_for(std::chrono::seconds{1});
    const auto used = cpu_ticks() - before;
    EXPECT_LT(used, 30u) << "the server used " << used << " CPU ticks in 1 s while out of "
                         << "descriptors";
    idle.clear();  // they go away: descriptors come back
    raw_response ok;
    for (int i = 0; i < 100 && ok.status != 200; ++i) {
        ok = http_get(port, std::string{caps});
        if (ok.status != 200)
            std::this_thread::sleep_for(std::chrono::milliseconds{50});
    }
    EXPECT_EQ(ok.status, 200u);
    const auto shown = admin_call(dir.path / "data", "show http").text;
    EXPECT_NE(shown.find("out of descriptors"), std::string::npos) << shown;
    EXPECT_EQ(shown.find("out of descriptors 0 times"), std::string::npos) << shown;
    ::kill(pid, SIGTERM);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ::close(out[0]);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
}  // namespace pkisim::scep
