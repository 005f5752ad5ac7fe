#include "server_impl.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

#include <fmt/format.h>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace pkisim::scep {

namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// Prometheus text format 0.0.4: one # HELP and # TYPE line per metric family.
void metric_family(std::string& out, std::string_view name, std::string_view type,
                   std::string_view help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

// The whole HTTP/1.0 answer to a request line on the admin side: GET /metrics -> Prometheus
// text; anything else -> 404 (only /metrics is served there).
std::string http_metrics_reply(const server::impl& srv, std::string_view request_line) {
    const auto sp1 = request_line.find(' ');
    const auto sp2 = request_line.find(' ', sp1 + 1);
    const auto method = request_line.substr(0, sp1);
    auto target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
    if (const auto q = target.find('?'); q != std::string_view::npos)
        target = target.substr(0, q);
    // Absolute form (a proxy-style request line) names the same path.
    if (const auto scheme = target.find("://"); scheme != std::string_view::npos) {
        const auto slash = target.find('/', scheme + 3);
        target = slash == std::string_view::npos ? std::string_view{"/"} : target.substr(slash);
    }
    std::string status = "200 OK";
    std::string type = "text/plain; version=0.0.4; charset=utf-8";
    std::string body;
    if (target != "/metrics") {
        status = "404 Not Found";
        type = "text/plain";
        body = "only /metrics here\n";
    } else if (method != "GET" && method != "HEAD") {
        status = "405 Method Not Allowed";
        type = "text/plain";
        body = "GET /metrics\n";
    } else {
        body = srv.metrics_text();
    }
    std::string out = fmt::format(
        "HTTP/1.0 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        status, type, body.size());
    if (method != "HEAD")
        out += body;
    return out;
}

// One scrape on the --metrics-listen port: read one request, answer, close. Not behind the IOS
// limiter (it is not the SCEP listener); short read timeout, small header limit.
class metrics_session : public std::enable_shared_from_this<metrics_session> {
  public:
    metrics_session(server::impl& srv, tcp::socket socket)
        : srv_(srv), stream_(std::move(socket)) {}

    void run() {
        parser_.header_limit(8 * 1024);
        parser_.body_limit(0);
        stream_.expires_after(std::chrono::seconds{5});
        http::async_read(
            stream_, buffer_, parser_,
            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                if (ec)
                    return;
                const auto& req = self->parser_.get();
                self->out_ = http_metrics_reply(
                    self->srv_, fmt::format("{} {} HTTP/1.0", std::string_view{req.method_string()},
                                            std::string_view{req.target()}));
                net::async_write(
                    self->stream_, net::buffer(self->out_), [self](beast::error_code, std::size_t) {
                        beast::error_code ignored;
                        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                        self->stream_.close();
                    });
            });
    }

  private:
    server::impl& srv_;
    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    http::request_parser<http::empty_body> parser_;
    std::string out_;
};

// One operator command over DIR/admin.sock: a line in, "ok|error\n" + text out, then close.
class admin_session : public std::enable_shared_from_this<admin_session> {
  public:
    admin_session(server::impl& srv, local::socket socket)
        : srv_(srv), socket_(std::move(socket)), timer_(srv.net_ctx) {}

    void run() {
        // Only the user who runs the server (the folder is 0700 and the socket 0600 as well).
        ucred cred{};
        socklen_t len = sizeof cred;
        if (::getsockopt(socket_.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
            cred.uid != ::geteuid()) {
            return reply({false, "% permission denied\n"});
        }
        timer_.expires_after(std::chrono::seconds{5});
        timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
            if (!ec) {
                boost::system::error_code ignored;
                self->socket_.close(ignored);
            }
        });
        net::async_read_until(socket_, net::dynamic_buffer(line_, 4096), '\n',
                              [self = shared_from_this()](boost::system::error_code ec,
                                                          std::size_t n) { self->on_line(ec, n); });
    }

  private:
    void on_line(boost::system::error_code ec, std::size_t n) {
        if (ec)
            return;
        std::string cmd = line_.substr(0, n);
        while (!cmd.empty() && (cmd.back() == '\n' || cmd.back() == '\r'))
            cmd.pop_back();
        // `curl --unix-socket DIR/admin.sock http://localhost/metrics`: an HTTP request line
        // instead of a command. Read the headers (unread bytes would make close() send a RST).
        if ((cmd.starts_with("GET ") || cmd.starts_with("HEAD ")) &&
            cmd.find(" HTTP/") != std::string::npos) {
            net::async_read_until(
                socket_, net::dynamic_buffer(line_, 16 * 1024), "\r\n\r\n",
                [self = shared_from_this(), cmd](boost::system::error_code e, std::size_t) {
                    if (!e)
                        self->reply_http(cmd);
                });
            return;
        }
        if (cmd == "show http")
            return reply({true, srv_.show_http()});
        if (cmd == "show metrics")
            return reply({true, srv_.metrics_text()});
        // The 5 s bound is for reading the command, not for running it: `rollover` makes an RSA
        // key on the engine thread (seconds on a loaded machine), and a close at 5 s left the
        // operator with an empty answer and exit 1.
        timer_.cancel();
        auto& engine = *srv_.engine;
        net::post(srv_.engine_ctx, [self = shared_from_this(), &engine, cmd]() mutable {
            auto r = engine.admin(cmd);
            self->srv_.republish();  // a rollover is visible to the next GetNextCACert
            auto& ctx = self->srv_.net_ctx;
            net::post(ctx, [self = std::move(self), r = std::move(r)] { self->reply(r); });
        });
    }

    void reply_http(const std::string& request_line) {
        out_ = http_metrics_reply(srv_, request_line);
        write_out();
    }

    void reply(const admin_result& r) {
        out_ = std::string{r.ok ? "ok\n" : "error\n"} + r.text;
        write_out();
    }

    void write_out() {
        net::async_write(socket_, net::buffer(out_),
                         [self = shared_from_this()](boost::system::error_code, std::size_t) {
                             boost::system::error_code ignored;
                             self->timer_.cancel();
                             self->socket_.close(ignored);
                         });
    }

    server::impl& srv_;
    local::socket socket_;
    net::steady_timer timer_;
    std::string line_;
    std::string out_;
};

}  // namespace

void detail::start_admin_session(server::impl& srv, local::socket socket) {
    std::make_shared<admin_session>(srv, std::move(socket))->run();
}

void detail::start_metrics_session(server::impl& srv, tcp::socket socket) {
    std::make_shared<metrics_session>(srv, std::move(socket))->run();
}

void server::impl::open_admin() {
    admin_path = engine->options().data_dir / "admin.sock";
    // A socket file left by a killed server is stale if nobody answers on it.
    if (std::filesystem::exists(admin_path)) {
        local::socket probe{net_ctx};
        boost::system::error_code ec;
        probe.connect(local::endpoint{admin_path.string()}, ec);
        if (!ec) {
            throw startup_error(exit_status::listen,
                                fmt::format("another pkisim server is running on {}",
                                            engine->options().data_dir.string()));
        }
        std::filesystem::remove(admin_path, ec);
    }
    // Owner-only from the first instant: the folder is 0700 and the socket is created
    // under umask 077, then chmod 0600; every connection's peer uid is checked too.
    const mode_t old = ::umask(077);
    boost::system::error_code ec;
    admin_acceptor.open(local{}, ec);
    if (!ec)
        admin_acceptor.bind(local::endpoint{admin_path.string()}, ec);
    if (!ec)
        admin_acceptor.listen(8, ec);
    ::umask(old);
    if (ec) {
        throw startup_error(exit_status::listen, fmt::format("cannot create admin socket {}: {}",
                                                             admin_path.string(), ec.message()));
    }
    ::chmod(admin_path.c_str(), 0600);
}

void server::impl::do_admin_accept() {
    admin_acceptor.async_accept([this](boost::system::error_code ec, local::socket s) {
        if (ec == net::error::operation_aborted || stopped)
            return;
        if (!ec)
            detail::start_admin_session(*this, std::move(s));
        do_admin_accept();
    });
}

void server::impl::open_metrics_listener() {
    if (http.metrics_listen.empty())
        return;
    const auto colon = http.metrics_listen.rfind(':');
    boost::system::error_code ec;
    const auto address = net::ip::make_address(
        colon == std::string::npos ? std::string{} : http.metrics_listen.substr(0, colon), ec);
    int port = -1;
    if (!ec && colon != std::string::npos) {
        try {
            port = std::stoi(http.metrics_listen.substr(colon + 1));
        } catch (const std::exception&) {
            port = -1;
        }
    }
    if (ec || port < 0 || port > 65535) {
        throw startup_error(exit_status::config,
                            fmt::format("bad metrics address '{}' (expected ADDRESS:PORT, e.g. "
                                        "127.0.0.1:9180)",
                                        http.metrics_listen));
    }
    const tcp::endpoint ep{address, static_cast<unsigned short>(port)};
    metrics_acceptor.open(ep.protocol(), ec);
    if (!ec)
        metrics_acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec)
        metrics_acceptor.bind(ep, ec);
    if (!ec)
        metrics_acceptor.listen(16, ec);
    if (ec) {
        throw startup_error(exit_status::listen, fmt::format("cannot listen on {} (metrics): {}",
                                                             http.metrics_listen, ec.message()));
    }
}

void server::impl::do_metrics_accept() {
    if (!metrics_acceptor.is_open())
        return;
    metrics_acceptor.async_accept(net_ctx, [this](boost::system::error_code ec, tcp::socket s) {
        if (ec == net::error::operation_aborted || stopped)
            return;
        if (!ec)
            detail::start_metrics_session(*this, std::move(s));
        do_metrics_accept();
    });
}

std::string server::impl::metrics_text() const {
    // Prometheus text exposition format 0.0.4; names pkisim_*_total for counters. The same
    // numbers as `show http` (what IOS never showed: CSCuj83430).
    const auto& c = limiter.counters();
    const auto& cfg = limiter.config();
    std::string out;
    const auto counter = [&out](std::string_view name, std::string_view help, auto value) {
        metric_family(out, name, "counter", help);
        out += fmt::format("{} {}\n", name, value);
    };
    const auto gauge = [&out](std::string_view name, std::string_view help, auto value) {
        metric_family(out, name, "gauge", help);
        out += fmt::format("{} {}\n", name, value);
    };
    counter("pkisim_http_connections_accepted_total",
            "Connections the IOS limiter accepted (served).", c.accepted);
    counter("pkisim_http_connections_dropped_max_connections_total",
            "Connections reset at once because ip http max-connections were open.",
            c.dropped_max_connections);
    counter("pkisim_http_connections_ignored_deaf_total",
            "Connections the listener saw while deaf (the one that tripped the throttle and "
            "handshakes already queued): held unanswered, reset when the deaf period ends. SYNs "
            "dropped by the deaf listener never reach it and are not counted.",
            c.ignored_deaf);
    counter("pkisim_http_connections_reset_after_hold_total",
            "Connections ignored while deaf, held unanswered, then reset when the deaf period "
            "ended (or the server stopped).",
            counters.reset_after_hold);
    counter("pkisim_http_connections_reset_after_deaf_total",
            "Handshakes found queued when a deaf period ended, reset (only without the SYN "
            "filter).",
            counters.reset_after_deaf);
    counter("pkisim_http_deaf_periods_total",
            "Deaf periods started by the connection-rate throttle.", c.deaf_periods);
    counter("pkisim_http_deaf_seconds_total", "Server-clock seconds of deaf periods started.",
            std::chrono::duration<double>(c.deaf_time).count());
    counter("pkisim_http_read_timeouts_total",
            "Connections closed because the request did not arrive in time.",
            counters.read_timeouts);
    metric_family(out, "pkisim_http_requests_total", "counter",
                  "HTTP requests answered, by SCEP operation and HTTP status.");
    for (const auto& [key, n] : requests_by) {
        out += fmt::format("pkisim_http_requests_total{{operation=\"{}\",status=\"{}\"}} {}\n",
                           key.first, key.second, n);
    }
    counter("pkisim_http_accept_no_descriptors_total",
            "accept() failures for want of descriptors (EMFILE/ENFILE); each backs off.",
            counters.accept_no_descriptors);
    counter("pkisim_http_connections_shed_no_descriptors_total",
            "Connections accepted with the reserve descriptor and reset while out of "
            "descriptors.",
            counters.shed_no_descriptors);
    counter("pkisim_http_connections_dropped_max_open_total",
            "Connections reset at once because --max-open connections were open.",
            counters.dropped_max_open);
    counter("pkisim_http_requests_refused_body_memory_total",
            "Requests answered 503 because request bodies in flight reached --max-body-memory.",
            counters.refused_body_memory);
    counter("pkisim_http_connections_closed_timeout_policy_total",
            "Connections closed by ip http timeout-policy (requests N, life S).",
            counters.closed_by_timeout_policy);
    counter("pkisim_http_prepared_answers_total",
            "GetCACert, GetCACaps and GetNextCACert answered from bytes prepared when the CA "
            "last changed (not by the engine thread).",
            counters.prepared_answers);
    counter("pkisim_http_answered_at_accept_total",
            "Prepared answers written at accept, without a session (the IOS limits off and the "
            "whole request already received).",
            counters.answered_at_accept);
    gauge("pkisim_http_reserve_descriptor", "1 while the reserve descriptor is held.",
          reserve_fd.fd >= 0 ? 1 : 0);
    gauge("pkisim_http_max_open", "Most SCEP connections open at once (--max-open).", max_open);
    gauge("pkisim_http_open_sessions", "SCEP connections open now, any limiter.",
          open_sessions + held.size());
    gauge("pkisim_http_body_memory_bytes", "Memory reserved by request bodies in flight.",
          body_memory_in_flight);
    gauge("pkisim_http_body_memory_limit_bytes", "--max-body-memory.", http.body_memory_limit);
    gauge("pkisim_http_open_connections", "Connections open now.", c.open);
    gauge("pkisim_http_open_connections_peak", "Most connections open at once.", c.peak_open);
    gauge("pkisim_http_connections_held", "Connections ignored while deaf, held unanswered now.",
          counters.held_now);
    gauge("pkisim_http_listener_deaf", "1 while the throttle keeps the listener deaf.",
          limiter.is_deaf(clock.now()) ? 1 : 0);
    gauge("pkisim_http_max_connections", "ip http max-connections in force.", cfg.max_connections);
    gauge("pkisim_http_ios_limits_enabled", "0 with --ios-limits off.", cfg.enabled ? 1 : 0);
    return out;
}

std::string server::impl::show_http() const {
    const auto& c = limiter.counters();
    const auto& cfg = limiter.config();
    const auto now = clock.now();
    std::string out =
        fmt::format("HTTP server {} (IOS limits {}):\n",
                    fmt::format("{}:{}", http.listen_address, acceptor.local_endpoint().port()),
                    cfg.enabled ? "on" : "off");
    out +=
        fmt::format("    Maximum connections (ip http max-connections): {}\n", cfg.max_connections);
    out += fmt::format(
        "    Throttle: {}, {} connections per {} s, deaf {} s, window {}\n",
        cfg.throttle ? "on" : "off", cfg.throttle_limit,
        std::chrono::duration_cast<std::chrono::seconds>(cfg.throttle_window_length).count(),
        std::chrono::duration_cast<std::chrono::seconds>(cfg.deaf_period).count(),
        timers::to_string(cfg.window));
    out += fmt::format(
        "    Listener: {}\n",
        limiter.is_deaf(now)
            ? fmt::format("deaf until {} ({})", timers::to_iso8601(limiter.deaf_until()),
                          counters.syn_filter ? "SYNs dropped: clients time out" : "not accepting")
            : std::string{"listening"});
    out += fmt::format("    Connections accepted: {}\n", c.accepted);
    out += fmt::format("    Dropped (max-connections): {}\n", c.dropped_max_connections);
    out += fmt::format("    Ignored while deaf: {}\n", c.ignored_deaf);
    out +=
        fmt::format("    Held unanswered while deaf: {} now, {} reset when the deaf period ended\n",
                    counters.held_now, counters.reset_after_hold);
    out += fmt::format("    Reset from the backlog after a deaf period: {}\n",
                       counters.reset_after_deaf);
    out += fmt::format("    Deaf periods: {} ({} s in total)\n", c.deaf_periods,
                       std::chrono::duration_cast<std::chrono::seconds>(c.deaf_time).count());
    out += fmt::format("    Open connections: {} (peak {})\n", c.open, c.peak_open);
    out += fmt::format(
        "    Descriptors: {} open of --max-open {}, reserve {}; out of descriptors {} times, "
        "{} shed, {} dropped at --max-open\n",
        open_sessions + held.size(), max_open, reserve_fd.fd >= 0 ? "held" : "in use",
        counters.accept_no_descriptors, counters.shed_no_descriptors, counters.dropped_max_open);
    out += fmt::format("    Body memory: {} of {} bytes in flight, {} refused (503)\n",
                       body_memory_in_flight, http.body_memory_limit, counters.refused_body_memory);
    if (const auto& p = http.timeout_policy) {
        out += fmt::format(
            "    Timeout policy (ip http timeout-policy): idle {} s, life {} s, requests {}; {} "
            "closed by it\n",
            p->idle_s, p->life_s, p->requests, counters.closed_by_timeout_policy);
    }
    out +=
        fmt::format("    Answered from prepared bytes (GetCACert, GetCACaps, GetNextCACert): {}\n",
                    counters.prepared_answers);
    out += fmt::format("    Of which answered at accept, without a session: {}\n",
                       counters.answered_at_accept);
    out += fmt::format("    Requests: {} (2xx {}, 4xx {}, 5xx {}), read timeouts {}\n",
                       counters.requests, counters.responses_2xx, counters.responses_4xx,
                       counters.responses_5xx, counters.read_timeouts);
    for (const auto& [key, n] : requests_by)
        out += fmt::format("      {} {}: {}\n", key.first, key.second, n);
    return out;
}

}  // namespace pkisim::scep
