#include "pkisim/loadgen/bench.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server_support.hpp"

namespace pkisim::loadgen {
namespace {

using namespace std::chrono_literals;
using scep::testing::test_server;

// A small blocking server on 127.0.0.1:0 for behaviours the lab server does not have: refuse,
// reset, answer slowly, never accept. `serve` runs per accepted connection on the accept thread
// (one client at a time, which is the point for the slow server).
class toy_server {
  public:
    explicit toy_server(std::function<void(int fd)> serve, int backlog = 64, bool accept = true)
        : serve_{std::move(serve)} {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = 0;
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::listen(fd_, backlog) != 0) {
            throw std::runtime_error("toy_server: bind/listen failed");
        }
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        if (accept) {
            thread_ = std::thread{[this] {
                for (;;) {
                    const int c = ::accept(fd_, nullptr, nullptr);
                    if (c < 0) {
                        return;  // shut down
                    }
                    serve_(c);
                }
            }};
        }
    }
    ~toy_server() {
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        if (thread_.joinable()) {
            thread_.join();
        }
    }
    unsigned short port() const { return port_; }
    std::string url() const { return fmt::format("http://127.0.0.1:{}", port_); }

  private:
    std::function<void(int)> serve_;
    int fd_ = -1;
    unsigned short port_ = 0;
    std::thread thread_;
};

// Reads until the end of an HTTP request head (our GETs have no body).
std::string read_head(int fd) {
    std::string s;
    char buf[2048];
    while (s.find("\r\n\r\n") == std::string::npos) {
        const auto n = ::read(fd, buf, sizeof buf);
        if (n <= 0) {
            break;
        }
        s.append(buf, static_cast<std::size_t>(n));
    }
    return s;
}

void answer(int fd, std::string_view status = "200 OK", std::string_view body = "hello") {
    const std::string r =
        fmt::format("HTTP/1.0 {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{}",
                    status, body.size(), body);
    [[maybe_unused]] auto n = ::write(fd, r.data(), r.size());
}

bench_options base(std::string url) {
    bench_options o;
    o.url = std::move(url);
    o.warmup = 0ns;
    o.duration = 0ns;
    o.connect_timeout = 2s;
    o.read_timeout = 5s;
    return o;
}

bench_result run(const bench_options& o) {
    auto plan = prepare_bench(o);
    EXPECT_TRUE(plan.has_value()) << (plan ? "" : plan.error());
    if (!plan) {
        return {};
    }
    return run_bench(**plan, o);
}

std::uint64_t count(const bench_result& r, outcome o) {
    return r.outcomes[static_cast<std::size_t>(o)];
}

TEST(bench, connect_mode_opens_one_connection_per_request_against_the_lab_server) {
    test_server s;
    auto o = base(fmt::format("http://127.0.0.1:{}", s.port()));
    o.requests = 300;
    o.concurrency = 8;
    const auto r = run(o);
    EXPECT_EQ(r.completed, 300u);
    EXPECT_EQ(count(r, outcome::http_2xx), 300u);
    EXPECT_EQ(r.connections, 300u);
    EXPECT_EQ(r.latency.count(), 300u);
    EXPECT_EQ(r.stop_reason, "requests");
    EXPECT_GT(r.elapsed.count(), 0);
    std::uint64_t per_second = 0;
    for (const auto& sec : r.seconds) {
        per_second += sec.completed;
    }
    EXPECT_EQ(per_second, 300u);
}

TEST(bench, keepalive_mode_reuses_connections) {
    test_server s;
    auto o = base(fmt::format("http://127.0.0.1:{}", s.port()));
    o.mode = bench_mode::keepalive;
    o.op = operation::get_ca_caps;
    o.requests = 200;
    o.concurrency = 4;
    const auto r = run(o);
    EXPECT_EQ(count(r, outcome::http_2xx), 200u);
    EXPECT_LE(r.connections, 20u);  // one per slot, plus any the server chose to close
}

TEST(bench, get_next_ca_cert_without_a_shadow_is_the_ios_404) {
    test_server s;
    auto o = base(fmt::format("http://127.0.0.1:{}", s.port()));
    o.op = operation::get_next_ca_cert;
    o.requests = 20;
    o.concurrency = 2;
    const auto r = run(o);
    EXPECT_EQ(count(r, outcome::http_4xx), 20u);
    EXPECT_EQ(r.successes(), 0u);
}

TEST(bench, enroll_mode_issues_a_certificate_per_prebuilt_request) {
    test_server s;
    auto o = base(fmt::format("http://127.0.0.1:{}", s.port()));
    o.mode = bench_mode::enroll;
    o.requests = 12;
    o.concurrency = 4;
    o.keys = 2;
    o.challenge = "secret";
    o.decrypt = true;  // the issued certificate is really in the envelope
    const auto r = run(o);
    EXPECT_EQ(count(r, outcome::scep_success), 12u);
    EXPECT_EQ(r.completed, 12u);
}

TEST(bench, a_wrong_challenge_is_a_scep_failure_bad_request) {
    test_server s;
    auto o = base(fmt::format("http://127.0.0.1:{}", s.port()));
    o.mode = bench_mode::enroll;
    o.requests = 6;
    o.concurrency = 3;
    o.keys = 1;
    o.challenge = "wrong";
    const auto r = run(o);
    EXPECT_EQ(count(r, outcome::scep_failure_bad_request), 6u);
}

TEST(bench, renewals_are_renewal_requests_signed_by_an_enrolled_certificate) {
    test_server s;
    auto o = base(fmt::format("http://127.0.0.1:{}", s.port()));
    o.mode = bench_mode::enroll;
    o.renew = true;
    o.requests = 4;
    o.concurrency = 2;
    o.keys = 2;
    o.challenge = "secret";
    const auto r = run(o);
    EXPECT_EQ(count(r, outcome::scep_success), 4u);
}

TEST(bench, pending_is_followed_with_cert_polls_when_asked) {
    test_server s{timers::grant_mode::manual};
    auto o = base(fmt::format("http://127.0.0.1:{}", s.port()));
    o.mode = bench_mode::enroll;
    o.requests = 3;
    o.concurrency = 3;
    o.keys = 1;
    o.challenge = "secret";
    auto r = run(o);
    EXPECT_EQ(count(r, outcome::scep_pending), 3u);
    EXPECT_EQ(r.polls, 0u);

    o.poll = true;
    o.max_polls = 2;
    o.poll_interval = 20ms;
    r = run(o);
    EXPECT_EQ(count(r, outcome::scep_pending), 3u);  // nobody grants them
    EXPECT_EQ(r.polls, 6u);
    // Each enrollment waited at least two poll intervals before its final answer.
    EXPECT_GE(r.latency.min(), 40'000'000u);
}

TEST(bench, a_closed_port_is_refused) {
    unsigned short port = 0;
    {
        toy_server t{[](int fd) { ::close(fd); }};
        port = t.port();
    }  // closed: nothing listens there now
    auto o = base(fmt::format("http://127.0.0.1:{}", port));
    o.requests = 10;
    o.concurrency = 2;
    const auto r = run(o);
    EXPECT_EQ(count(r, outcome::refused), 10u);
}

TEST(bench, a_server_that_resets_is_counted_as_reset) {
    toy_server t{[](int fd) {
        read_head(fd);
        linger l{1, 0};  // close with RST
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        ::close(fd);
    }};
    auto o = base(t.url());
    o.requests = 10;
    o.concurrency = 1;
    const auto r = run(o);
    EXPECT_EQ(count(r, outcome::reset), 10u);
}

TEST(bench, http_status_classes_are_counted) {
    std::atomic<int> n{0};
    toy_server t{[&](int fd) {
        read_head(fd);
        const int i = n++;
        answer(fd, i % 3 == 0 ? "200 OK" : i % 3 == 1 ? "404 Not Found" : "503 Busy");
        ::close(fd);
    }};
    auto o = base(t.url());
    o.requests = 30;
    o.concurrency = 1;
    const auto r = run(o);
    EXPECT_EQ(count(r, outcome::http_2xx), 10u);
    EXPECT_EQ(count(r, outcome::http_4xx), 10u);
    EXPECT_EQ(count(r, outcome::http_5xx), 10u);
}

TEST(bench, a_listener_that_never_accepts_gives_read_then_connect_timeouts) {
    // backlog 0: the kernel completes one or two handshakes into the accept queue (those
    // connections then wait for an answer: read timeout) and drops every later SYN (connect
    // timeout), as IOS's deaf listener looks from outside.
    toy_server t{[](int) {}, 0, /*accept=*/false};
    auto o = base(t.url());
    o.requests = 6;
    o.concurrency = 6;
    o.connect_timeout = 300ms;
    o.read_timeout = 300ms;
    const auto r = run(o);
    EXPECT_EQ(r.completed, 6u);
    EXPECT_GE(count(r, outcome::connect_timeout), 1u);
    EXPECT_GE(count(r, outcome::read_timeout), 1u);
    EXPECT_EQ(count(r, outcome::connect_timeout) + count(r, outcome::read_timeout), 6u);
}

// One client at a time, 100 ms each: the open loop's latency must count the queueing behind a
// slow server from the intended send time (wrk2), the closed loop's cannot.
TEST(bench, open_loop_latency_counts_from_the_intended_send_time) {
    toy_server t{[](int fd) {
        read_head(fd);
        std::this_thread::sleep_for(100ms);  // the server's service time
        answer(fd);
        ::close(fd);
    }};
    auto o = base(t.url());
    o.requests = 8;
    o.concurrency = 1;
    o.rate = 50;  // one every 20 ms, five times faster than the server
    const auto open = run(o);
    EXPECT_EQ(count(open, outcome::http_2xx), 8u);
    // Request k is due at 20k ms and done no earlier than 100(k+1) ms.
    EXPECT_GE(open.latency.max(), 600'000'000u);
    EXPECT_GE(open.latency.value_at_percentile(50), 300'000'000u);

    o.rate.reset();
    const auto closed = run(o);
    EXPECT_EQ(count(closed, outcome::http_2xx), 8u);
    EXPECT_LT(closed.latency.value_at_percentile(50), open.latency.value_at_percentile(50));
}

TEST(bench, mix_sends_each_operation_in_proportion) {
    std::mutex m;
    std::map<std::string, int> seen;
    toy_server t{[&](int fd) {
        const auto head = read_head(fd);
        const auto op = head.substr(0, head.find(' ', 4));
        {
            std::lock_guard lock{m};
            ++seen[head.find("GetCACaps") != std::string::npos   ? "caps"
                   : head.find("GetCACert") != std::string::npos ? "cert"
                                                                 : "other"];
        }
        answer(fd);
        ::close(fd);
    }};
    auto o = base(t.url());
    o.mode = bench_mode::mix;
    auto mix = parse_mix("GetCACert:3,GetCACaps:1");
    ASSERT_TRUE(mix);
    o.mix = *mix;
    o.requests = 400;
    o.concurrency = 1;
    const auto r = run(o);
    EXPECT_EQ(count(r, outcome::http_2xx), 400u);
    EXPECT_EQ(seen["other"], 0);
    EXPECT_EQ(seen["cert"] + seen["caps"], 400);
    EXPECT_NEAR(seen["cert"], 300, 45);  // binomial(400, 3/4): sd 8.7
}

TEST(bench, a_duration_bound_run_ends_on_time_and_reports_the_series) {
    test_server s;
    auto o = base(fmt::format("http://127.0.0.1:{}", s.port()));
    o.duration = 1500ms;
    o.concurrency = 2;
    auto plan = prepare_bench(o);
    ASSERT_TRUE(plan) << plan.error();
    const auto r = run_bench(**plan, o);
    EXPECT_EQ(r.stop_reason, "duration");
    EXPECT_EQ(r.elapsed, 1500ms);
    EXPECT_GT(r.completed, 0u);
    EXPECT_LE(r.unfinished, 2u);
    const auto j = nlohmann::json::parse(bench_json(o, **plan, r));
    std::uint64_t sum = 0;
    for (const auto& sec : j["seconds"]) {
        sum += sec["completed"].get<std::uint64_t>();
    }
    EXPECT_EQ(sum, r.completed);
    EXPECT_EQ(j["outcomes"]["http_2xx"].get<std::uint64_t>(), count(r, outcome::http_2xx));
    EXPECT_LE(j["latency_ns"]["p50"].get<std::uint64_t>(),
              j["latency_ns"]["p99"].get<std::uint64_t>());
    const auto csv = bench_csv(r);
    EXPECT_EQ(static_cast<std::size_t>(std::count(csv.begin(), csv.end(), '\n')),
              r.seconds.size() + 1);
    const auto html = bench_html(o, **plan, r);
    EXPECT_EQ(std::count(html.begin(), html.end(), '<') > 0, true);
    EXPECT_NE(html.find("<svg"), std::string::npos);
    EXPECT_NE(html.find("Outcomes over time"), std::string::npos);
}

TEST(bench, options_that_cannot_run_are_usage_errors) {
    auto o = base("http://192.0.2.1:80");
    o.requests = 1;
    auto p = prepare_bench(o);
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error().rfind("usage: ", 0), 0u) << p.error();
    EXPECT_NE(p.error().find("loopback"), std::string::npos);

    o = base("http://127.0.0.1:9");  // no bound
    p = prepare_bench(o);
    ASSERT_FALSE(p);
    EXPECT_NE(p.error().find("bound"), std::string::npos);

    o = base("ftp://127.0.0.1");
    o.requests = 1;
    EXPECT_FALSE(prepare_bench(o));

    EXPECT_FALSE(parse_mix("GetCACert:0"));
    EXPECT_FALSE(parse_mix("Nope:1"));
    EXPECT_FALSE(parse_mix(""));
    auto m = parse_mix("getcacert,enroll:5");
    ASSERT_TRUE(m);
    ASSERT_EQ(m->size(), 2u);
    EXPECT_EQ((*m)[0].weight, 1u);
    EXPECT_EQ((*m)[1].op, operation::enroll);
}

#ifdef PKISIM_BINARY
int run_cli(const std::string& args) {
    const int rc =
        std::system((std::string{PKISIM_BINARY} + " bench " + args + " >/dev/null 2>&1").c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST(bench_cli, exit_codes_say_what_happened) {
    EXPECT_EQ(run_cli("--help"), 0);
    EXPECT_EQ(run_cli(""), 2);                       // no URL
    EXPECT_EQ(run_cli("http://192.0.2.1 -n 1"), 2);  // not loopback
    EXPECT_EQ(run_cli("http://127.0.0.1:9 -n 1 --mode nope"), 2);
    test_server s;
    const auto url = fmt::format("http://127.0.0.1:{}", s.port());
    EXPECT_EQ(run_cli(url + " -n 20 -c 2 -q"), 0);
    EXPECT_EQ(run_cli(url + " -n 5 -c 1 -q --op GetNextCACert"), 1);    // 404s
    EXPECT_EQ(run_cli("http://127.0.0.1:9 --mode enroll -n 1 -q"), 3);  // cannot GetCACaps
}
#endif

}  // namespace
}  // namespace pkisim::loadgen
