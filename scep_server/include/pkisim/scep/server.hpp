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
// Deaf periods (model §3; seed 002: "a telnet to port 80 times out"): while the limiter is deaf
// the listening socket carries a drop-everything socket filter (Linux SO_ATTACH_FILTER), so the
// kernel answers no SYN: a client sees no SYN-ACK and no RST, and its connect times out
// (timers::attempt_cost). The connection that trips the throttle, and what had already queued
// when the period started, are counted as ignored and held open unread and unanswered, so they
// too get no answer; they are reset when the period ends (or the server stops).
// When the period ends the filter goes away and the next SYN (a retransmission of a connect still
// in progress, or a new one) is served again.
//
// Every decision is counted: `pkisim ca show http`, and Prometheus text at GET /metrics over
// DIR/admin.sock (and on http_options::metrics_listen), never on the SCEP port.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "pkisim/scep/service.hpp"
#include "pkisim/timers/clock.hpp"
#include "pkisim/timers/config.hpp"
#include "pkisim/timers/limiter.hpp"

namespace pkisim::scep {

// One call into the listener's connection_limiter, as the server made it (a replay of these
// through a fresh timers::connection_limiter reproduces every decision).
struct limiter_event {
    enum class kind { attempt, close, deaf_start, deaf_end };
    kind what = kind::attempt;
    time_point at{};                                           // the server's clock
    timers::admission decision = timers::admission::accepted;  // attempt only
};

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
    // "ADDRESS:PORT" of an extra plain-HTTP listener that serves only GET /metrics (Prometheus
    // scraping); empty = none. Never the SCEP port, never behind the IOS limiter.
    std::string metrics_listen;
    // Issue 11 §2.9: "ADDRESS:PORT" of the OCSP responder (RFC 6960 over HTTP: POST
    // application/ocsp-request, GET /BASE64); empty = none. Its own port, not behind the IOS
    // limiter, served by the same session code as SCEP; at most max_ocsp_open connections.
    std::string ocsp_listen;
    static constexpr std::size_t max_ocsp_open = 256;
    // Tests: called on the network thread for every limiter call, in order (see limiter_event).
    std::function<void(const limiter_event&)> limiter_trace;

    // --- Resource bounds (issue 13 §3), outside the IOS model: they hold with --ios-limits off.
    // Most SCEP connections open at once (sessions + connections held while deaf); the next one
    // is reset. 0 = from the descriptor limit: RLIMIT_NOFILE (soft) minus descriptor_margin.
    std::size_t max_open = 0;
    static constexpr std::size_t descriptor_margin = 32;  // store, logs, listeners, admin
    // Request bodies being received at once may reserve at most this much memory in total
    // (each reserves its Content-Length, or body_limit when chunked); beyond it: 503.
    std::size_t body_memory_limit = 64 * 1024 * 1024;
    // `ip http timeout-policy idle S life S requests N` (timers::http_config). Unset: each read
    // has read_timeout and a connection may serve any number of requests. Set: at most N
    // requests per connection, none after `life` seconds from the accept, and the wait for the
    // next request on a kept-alive connection is `idle` (every wait still ends at read_timeout:
    // the slow-client bound stays).
    std::optional<timers::http_config::timeout_policy> timeout_policy;
};

// Counters beyond the limiter's (`pkisim ca show http`).
struct http_counters {
    std::uint64_t requests = 0;
    std::uint64_t responses_2xx = 0;
    std::uint64_t responses_4xx = 0;
    std::uint64_t responses_5xx = 0;
    std::uint64_t read_timeouts = 0;
    // Handshakes found in the backlog when a deaf period ended (only when the socket filter
    // could not be attached, e.g. not Linux): reset, since IOS would never have answered them.
    std::uint64_t reset_after_deaf = 0;
    // Connections ignored while deaf that the kernel had already accepted (the one that tripped
    // the throttle, handshakes queued before the filter went up): held open without reading or
    // answering until the deaf period ends, then reset (model §3: ignored = no answer).
    std::uint64_t held_now = 0;
    std::uint64_t reset_after_hold = 0;
    bool syn_filter = true;  // deaf periods drop SYNs (false: the filter could not be attached)
    // Issue 13 §3: descriptors and memory.
    std::uint64_t accept_no_descriptors = 0;     // accept() failed with EMFILE/ENFILE (backed off)
    std::uint64_t shed_no_descriptors = 0;       // reset through the reserve descriptor meanwhile
    std::uint64_t dropped_max_open = 0;          // reset at once: max_open connections were open
    std::uint64_t refused_body_memory = 0;       // answered 503: body memory bound reached
    std::uint64_t closed_by_timeout_policy = 0;  // requests N or life S reached
    // Issue 12 §3: GetCACert, GetCACaps, GetNextCACert answered on the network thread from the
    // bytes prepared when the CA last changed (the others went to the engine thread).
    std::uint64_t prepared_answers = 0;
    // Of those, answered at accept with the IOS limits off (the whole request had arrived;
    // no session was made for the connection).
    std::uint64_t answered_at_accept = 0;
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
    // "127.0.0.1:PORT" of the /metrics listener, empty when there is none.
    std::string metrics_address() const;
    // "127.0.0.1:PORT" of the OCSP listener, empty when there is none.
    std::string ocsp_address() const;
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

// An access-log field that came from the client (method, operation, detail text), made safe
// (issue 13 §4): every byte outside printable ASCII, and `\`, becomes `\xHH` (`\` -> `\x5C`),
// so a client can neither end a line nor forge one, and NUL or 0xFF never go in raw. With
// `keep_spaces` false a space is escaped too (`\x20`), so the field stays one word.
std::string escape_log_field(std::string_view s, bool keep_spaces = false);

}  // namespace pkisim::scep
