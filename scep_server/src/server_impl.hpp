// Private to the server: the state shared by its three parts, one file each:
//   server_transport.cpp  one Beast HTTP session per accepted SCEP connection, query decoding;
//   server_listener.cpp   the acceptor, the IOS limiter, deaf periods, descriptor limits;
//   server_admin.cpp      DIR/admin.sock, /metrics, `show http`;
//   ocsp_listener.cpp     the --ocsp-listen acceptor (sessions: server_transport.cpp);
//   server.cpp            construction, threads, start/stop, the engine tick, the PKIOperation
//                         pipeline (workers -> engine batch -> workers, issue 12 §3).
// Everything here runs on the network thread unless it says otherwise (server.hpp: threads).
#pragma once

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <unistd.h>

#include <boost/asio.hpp>

#include "pkisim/scep/server.hpp"

namespace pkisim::scep {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using local = net::local::stream_protocol;

namespace detail {
// A descriptor closed on destruction (the access log, the reserve descriptor).
struct unique_fd {
    int fd = -1;
    unique_fd() = default;
    explicit unique_fd(int f) : fd(f) {}
    ~unique_fd() { reset(); }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    void reset(int f = -1) {
        if (fd >= 0)
            ::close(fd);
        fd = f;
    }
};
}  // namespace detail

namespace detail {
// Issue 12 §3: one static answer as whole HTTP responses, the Date header's value (29 bytes, RFC
// 9110 §5.6.7) left out: head + date + tail, for a connection that closes and one that stays.
struct static_response {
    std::string head[2];  // [keep-alive]
    std::string tail[2];
    unsigned status = 200;
    bool ios_404 = false;  // always closes (model §1 rule 4)
    std::string detail;
};
struct static_responses {
    static_response ca_cert, ca_caps, next_ca_cert;
    std::optional<time_point> until;  // static_answers::until
};
// Serializes what the engine prepared (server_transport.cpp); runs on the engine thread.
std::shared_ptr<const static_responses> make_static_responses(const static_answers& a);
}  // namespace detail

struct server::impl {
    impl(engine_options e, http_options h, const timers::clock& c);

    void open_listener();
    void open_admin();
    void log(std::string_view line);

    void do_accept();
    void on_accept(boost::system::error_code ec, tcp::socket socket);
    void on_listener_readable(boost::system::error_code ec);  // the IOS limits off
    timers::admission attempt(time_point now);
    void closed(time_point now);
    void trace(limiter_event::kind what, time_point at,
               timers::admission decision = timers::admission::accepted) {
        if (http.limiter_trace)
            http.limiter_trace(limiter_event{what, at, decision});
    }
    void enter_deaf(time_point now);
    void end_deaf();
    void hold(tcp::socket s);
    void release_held();
    void do_admin_accept();
    void open_metrics_listener();
    void do_metrics_accept();
    std::string metrics_text() const;
    void open_ocsp_listener();  // ocsp_listener.cpp
    void do_ocsp_accept();
    std::size_t ocsp_open = 0;  // OCSP connections open (network thread)
    void schedule_tick(std::chrono::milliseconds wait = std::chrono::milliseconds{1000});
    // Issue 12 §3: one PKIOperation through the pipeline (server.cpp): decode on a worker, the
    // engine's batch (group commit), the CertRep signed on a worker; `done` runs on a worker.
    void pki_operation(bytes der, std::function<void(http_answer)> done);
    void drain_pki();  // engine thread
    std::string show_http() const;
    // Issue 12 §3: after every engine call (engine thread): when the engine's static answers
    // changed, the network thread gets their new bytes, posted before the call's own answer.
    void republish(bool before_start = false);
    std::shared_ptr<const static_answers> published;          // engine thread
    std::shared_ptr<const detail::static_responses> statics;  // network thread
    // The Date header of the second last asked for (network thread).
    std::string_view date_header(time_point now);
    std::int64_t date_second = std::numeric_limits<std::int64_t>::min();
    std::string date_text;

    const timers::clock& clock;
    http_options http;
    std::unique_ptr<scep_service> engine;
    timers::connection_limiter limiter;  // network thread only
    http_counters counters;              // network thread only
    // pkisim_http_requests_total{operation, status}; network thread only.
    std::map<std::pair<std::string, unsigned>, std::uint64_t> requests_by;
    detail::unique_fd log_file;  // the access log; -1 = stderr
    std::mutex log_mutex;
    std::string log_buffer;  // lines not yet written (log_mutex)
    std::atomic<bool> log_batching{false};
    void flush_log();
    void write_log_locked();
    std::filesystem::path admin_path;
    bool deaf = false;
    // Issue 13 §3 (network thread only).
    std::size_t open_sessions = 0;          // SCEP connections open (sessions + held)
    std::size_t max_open = 0;               // http.max_open, or from RLIMIT_NOFILE
    std::size_t body_memory_in_flight = 0;  // reserved by bodies being received
    detail::unique_fd reserve_fd;           // given up to accept-and-reset under EMFILE
    std::chrono::milliseconds accept_backoff{0};
    void on_no_descriptors();
    // Issue 13 §3: --max-open reached (a resource cap outside the IOS model: it holds with
    // --ios-limits off and is not a limiter attempt). Counts the drop when it is.
    bool over_max_open();

    // Declared after everything the handlers use: destroyed first.
    net::io_context net_ctx{1};
    net::io_context engine_ctx{1};
    tcp::acceptor acceptor;
    local::acceptor admin_acceptor;
    tcp::acceptor metrics_acceptor;
    tcp::acceptor ocsp_acceptor{net_ctx};
    net::steady_timer deaf_timer;
    net::steady_timer tick_timer;
    net::steady_timer accept_backoff_timer{net_ctx};
    net::steady_timer log_timer{net_ctx};  // flushes log_buffer
    // Connections ignored while deaf, held unanswered until the deaf period ends (hold()).
    std::vector<tcp::socket> held;
    tcp::endpoint accepted_peer;  // filled by async_accept
    std::optional<net::executor_work_guard<net::io_context::executor_type>> net_guard;
    std::optional<net::executor_work_guard<net::io_context::executor_type>> engine_guard;
    std::thread net_thread;
    std::thread engine_thread;
    bool started = false;
    std::atomic<bool> stopped{false};

    // Issue 12 §3: the PKIOperation pipeline. Decoded requests wait in pki_ready until the
    // engine thread takes them all as one batch; one drain is posted at a time.
    struct pki_item {
        std::unique_ptr<pki_job> job;
        std::function<void(http_answer)> done;
    };
    std::mutex pki_mutex;
    std::vector<pki_item> pki_ready;  // guarded by pki_mutex
    bool pki_drain_posted = false;    // guarded by pki_mutex
    // Signing and decryption, sized to the cores. Declared last: destroyed (joined) first,
    // while everything its handlers hold (sessions, the engine) still exists.
    net::thread_pool workers{std::max(1u, std::thread::hardware_concurrency())};
};

namespace detail {

// Case-insensitive ASCII comparison (SCEP operation names, scep-wire §0.7).
bool iequals(std::string_view a, std::string_view b);
// Closes with SO_LINGER 0: the peer gets a RST (model §3: dropped at once).
void abort_close(tcp::socket& s);
void abort_close(int fd);  // the same for a descriptor without an Asio socket (accept4)
// Starts serving one accepted SCEP connection (server_transport.cpp).
// `peer`: the address accept(2) returned, when known.
void start_http_session(server::impl& srv, tcp::socket socket,
                        std::optional<tcp::endpoint> peer = std::nullopt);
// With the IOS limits off: one connection accepted with accept4(2) (non-blocking), its limiter
// attempt made: answered at once from the prepared bytes when its whole request is there and
// asks for one, else served by a session (server_transport.cpp).
void serve_accepted(server::impl& srv, int fd, const tcp::endpoint& peer);
// The same session on the OCSP port: OCSP requests only, no IOS limiter (issue 11 §2.9).
void start_ocsp_session(server::impl& srv, tcp::socket socket);
// "ADDRESS:PORT" -> endpoint; throws startup_error(config) naming `what` (--metrics-listen...).
tcp::endpoint parse_listen_endpoint(const std::string& text, std::string_view what);
// Starts one operator command on DIR/admin.sock / one /metrics scrape (server_admin.cpp).
void start_admin_session(server::impl& srv, local::socket socket);
void start_metrics_session(server::impl& srv, tcp::socket socket);

}  // namespace detail

}  // namespace pkisim::scep
