// The running lab SCEP server: a Boost.Beast HTTP listener (SCEP over HTTP, any path ending in
// /pkiclient.exe) in front of the CA engine, the IOS connection limiter from timers/ on every
// accepted socket, and the operator channel DIR/admin.sock.
//
//   server s{engine_opts, http_opts, clock};   // creates/loads the CA, binds, throws startup_error
//   s.start();                                 // network thread + engine thread
//   std::cout << s.local_endpoint() << '\n';   // port 0 -> the real port
//   ...
//   s.stop();                                  // or s.run_until_signal() (SIGINT/SIGTERM)
//
// Threads: ONE network thread runs the acceptor, the HTTP sessions, the limiter and the admin
// socket (so they need no locks); ONE engine thread runs every CA engine and store call (they
// block on OpenSSL and fsync). Sessions post work to the engine and get the answer posted back.
//
// Deaf periods (model §3): while the limiter is deaf the listener stops calling accept(). The
// kernel still completes handshakes into the listen backlog (sized by http_options::backlog);
// those clients get no HTTP answer, and when the deaf period ends everything that queued up is
// reset (RST) and counted as ignored, because IOS would never have answered them. Once the
// backlog is full, new SYNs are dropped and clients see a connect timeout — the seed's symptom.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <ostream>
#include <string>

#include "pkisim/scep/service.hpp"
#include "pkisim/timers/clock.hpp"
#include "pkisim/timers/limiter.hpp"

namespace pkisim::scep {

struct http_options {
    std::string listen_address = "127.0.0.1";
    unsigned short port = 8080;  // 0 = any free port (tests)
    // Every read (request line, headers, body) must finish within this much real time.
    std::chrono::milliseconds read_timeout{10'000};
    std::size_t body_limit = 256 * 1024;
    // Fits a GET PKIOperation of several KB (scep-wire §0.8: 3.7 KB and more).
    std::size_t url_limit = 64 * 1024;
    int backlog = 64;
    timers::limiter_config limiter;
    // Access log: one line per request. Empty = stderr.
    std::filesystem::path access_log;
    bool quiet = false;  // no access log at all (benchmarks)
};

// Counters beyond the limiter's (`pkisim ca show http`).
struct http_counters {
    std::uint64_t requests = 0;
    std::uint64_t responses_2xx = 0;
    std::uint64_t responses_4xx = 0;
    std::uint64_t responses_5xx = 0;
    std::uint64_t read_timeouts = 0;
    std::uint64_t reset_after_deaf = 0;  // queued in the backlog during a deaf period
};

class server {
  public:
    server(engine_options engine, http_options http, const timers::clock& clock);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    // Starts the network and engine threads.
    void start();
    // Stops accepting, finishes the engine's current work, joins the threads. Idempotent.
    void stop();
    // start(), then blocks until SIGINT or SIGTERM, then stop().
    void run_until_signal();

    std::string local_address() const;  // "127.0.0.1:PORT"
    unsigned short local_port() const;
    std::filesystem::path admin_socket_path() const;
    scep_service& engine();

    struct impl;

  private:
    std::unique_ptr<impl> impl_;
};

// Sends one operator command to a running server over DIR/admin.sock and returns {ok, text}.
// Throws std::runtime_error when no server listens there.
admin_result admin_call(const std::filesystem::path& data_dir, const std::string& line);

// Query-string helpers (exposed for tests). Percent-decodes `s`; `+` stays `+` (scep-wire §0.7).
std::string percent_decode(std::string_view s);
// Lenient base64 for GET message=: strips whitespace and %0A line breaks (already decoded),
// accepts URL-safe `-` `_`, missing padding. nullopt on other characters.
std::optional<bytes> lenient_base64_decode(std::string_view s);

}  // namespace pkisim::scep
