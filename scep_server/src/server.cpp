#include "pkisim/scep/server.hpp"

#include <linux/filter.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <csignal>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <date/date.h>
#include <fmt/format.h>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace pkisim::scep {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using local = net::local::stream_protocol;

// ---------------------------------------------------------------------------------------------
// Query helpers.

std::string percent_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9')
            return c - '0';
        if (c >= 'a' && c <= 'f')
            return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
            return c - 'A' + 10;
        return -1;
    };
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
            out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 2;
        } else {
            out += s[i];  // '+' stays '+' (scep-wire §0.7)
        }
    }
    return out;
}

std::optional<bytes> lenient_base64_decode(std::string_view s) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z')
            return c - 'A';
        if (c >= 'a' && c <= 'z')
            return c - 'a' + 26;
        if (c >= '0' && c <= '9')
            return c - '0' + 52;
        if (c == '+' || c == '-')
            return 62;  // '-' = URL-safe (micromdm, scep-wire §0.7)
        if (c == '/' || c == '_')
            return 63;
        return -1;
    };
    bytes out;
    out.reserve(s.size() * 3 / 4);
    std::uint32_t acc = 0;
    int bits = 0;
    bool padding = false;
    for (char c : s) {
        if (c == '\r' || c == '\n' || c == ' ' || c == '\t')
            continue;  // IOS %0A line breaks
        if (c == '=') {
            padding = true;
            continue;
        }
        const int v = value(c);
        if (v < 0 || padding)
            return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<std::uint8_t>((acc >> bits) & 0xFF));
        }
    }
    if (bits >= 6)
        return std::nullopt;  // a lone trailing character cannot be base64
    return out;
}

namespace {

std::string http_date(time_point t) {
    return date::format("%a, %d %b %Y %H:%M:%S GMT", date::floor<std::chrono::seconds>(t));
}

struct query {
    std::string operation;
    std::optional<std::string> message;
};

query parse_query(std::string_view q) {
    query out;
    while (!q.empty()) {
        const auto amp = q.find('&');
        const auto item = q.substr(0, amp);
        q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
        const auto eq = item.find('=');
        const auto key = percent_decode(item.substr(0, eq));
        const auto value =
            eq == std::string_view::npos ? std::string{} : percent_decode(item.substr(eq + 1));
        // Parameters in any order (micromdm sends message first, scep-wire §0.7).
        if (key == "operation") {
            out.operation = value;
        } else if (key == "message") {
            out.message = value;
        }
    }
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(a[i])) !=
            std::tolower(static_cast<unsigned char>(b[i]))) {
            return false;
        }
    }
    return true;
}

void abort_close(tcp::socket& s) {
    boost::system::error_code ignored;
    s.set_option(net::socket_base::linger(true, 0), ignored);
    s.close(ignored);
}

// A classic BPF program that accepts nothing: on a listening socket the kernel then drops every
// SYN (and every handshake ACK) before TCP sees it, so no SYN-ACK and no RST go out (model §3:
// the deaf listener). Unprivileged; established connections keep their own sockets.
bool attach_drop_all_filter(int fd) {
    sock_filter code[] = {{BPF_RET | BPF_K, 0, 0, 0}};
    sock_fprog prog{1, code};
    return ::setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) == 0;
}

void detach_filter(int fd) {
    int unused = 0;
    ::setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &unused, sizeof unused);
}

// The `operation` label of pkisim_http_requests_total: the four SCEP operations IOS uses and
// GetCACaps, as RFC 8894 spells them; anything else (other operations, bad paths) is "other".
std::string_view operation_label(std::string_view op) {
    for (std::string_view known : {"GetCACert", "GetCACaps", "GetNextCACert", "PKIOperation"}) {
        if (iequals(op, known))
            return known;
    }
    return "other";
}

// Prometheus text format 0.0.4: one # HELP and # TYPE line per metric family.
void metric_family(std::string& out, std::string_view name, std::string_view type,
                   std::string_view help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

struct server::impl {
    impl(engine_options e, http_options h, const timers::clock& c)
        : clock(c),
          http(std::move(h)),
          limiter(http.limiter),
          acceptor(net_ctx),
          admin_acceptor(net_ctx),
          metrics_acceptor(net_ctx),
          deaf_timer(net_ctx),
          tick_timer(engine_ctx) {
        if (!http.quiet && !http.access_log.empty()) {
            log_file.open(http.access_log, std::ios::app);
            if (!log_file) {
                throw startup_error(exit_status::config,
                                    "cannot open access log " + http.access_log.string());
            }
        }
        // Bind first: a port in use must not leave a freshly created CA behind.
        open_listener();
        open_metrics_listener();
        // Rollover events (shadow made, switchover) go to the access log as IOS syslog lines.
        e.event_log = [this](const std::string& line) {
            log(fmt::format("{} {}", timers::to_iso8601(clock.now()), line));
        };
        engine = make_service(std::move(e), c);
        open_admin();
    }

    void open_listener() {
        boost::system::error_code ec;
        const auto address = net::ip::make_address(http.listen_address, ec);
        if (ec) {
            throw startup_error(exit_status::config,
                                fmt::format("bad listen address '{}'", http.listen_address));
        }
        const tcp::endpoint ep{address, http.port};
        const auto where = fmt::format("{}:{}", http.listen_address, http.port);
        acceptor.open(ep.protocol(), ec);
        if (!ec)
            acceptor.set_option(net::socket_base::reuse_address(true), ec);
        if (!ec)
            acceptor.bind(ep, ec);
        if (!ec)
            acceptor.listen(http.backlog, ec);
        if (ec) {
            throw startup_error(exit_status::listen,
                                fmt::format("cannot listen on {}: {}", where, ec.message()));
        }
    }

    void open_admin() {
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
            throw startup_error(exit_status::listen,
                                fmt::format("cannot create admin socket {}: {}",
                                            admin_path.string(), ec.message()));
        }
        ::chmod(admin_path.c_str(), 0600);
    }

    void log(std::string_view line) {
        if (http.quiet)
            return;
        std::lock_guard lock{log_mutex};
        if (log_file.is_open()) {
            log_file << line << '\n';
            log_file.flush();
        } else {
            std::cerr << line << '\n';
        }
    }

    void do_accept();
    void on_accept(boost::system::error_code ec, tcp::socket socket);
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
    void schedule_tick(std::chrono::milliseconds wait = std::chrono::milliseconds{1000});
    std::string show_http() const;

    const timers::clock& clock;
    http_options http;
    std::unique_ptr<scep_service> engine;
    timers::connection_limiter limiter;  // network thread only
    http_counters counters;              // network thread only
    // pkisim_http_requests_total{operation, status}; network thread only.
    std::map<std::pair<std::string, unsigned>, std::uint64_t> requests_by;
    std::ofstream log_file;
    std::mutex log_mutex;
    std::filesystem::path admin_path;
    bool deaf = false;

    // Declared after everything the handlers use: destroyed first.
    net::io_context net_ctx{1};
    net::io_context engine_ctx{1};
    tcp::acceptor acceptor;
    local::acceptor admin_acceptor;
    tcp::acceptor metrics_acceptor;
    net::steady_timer deaf_timer;
    net::steady_timer tick_timer;
    // Connections ignored while deaf, held unanswered until the deaf period ends (hold()).
    std::vector<tcp::socket> held;
    std::optional<net::executor_work_guard<net::io_context::executor_type>> net_guard;
    std::optional<net::executor_work_guard<net::io_context::executor_type>> engine_guard;
    std::thread net_thread;
    std::thread engine_thread;
    bool started = false;
    std::atomic<bool> stopped{false};
};

namespace {

// One HTTP connection (Beast listener/session split; all on the network thread).
class http_session : public std::enable_shared_from_this<http_session> {
  public:
    http_session(server::impl& srv, tcp::socket socket) : srv_(srv), stream_(std::move(socket)) {
        boost::system::error_code ec;
        const auto ep = stream_.socket().remote_endpoint(ec);
        peer_ = ec ? std::string{"?"} : fmt::format("{}:{}", ep.address().to_string(), ep.port());
    }
    ~http_session() { srv_.closed(srv_.clock.now()); }
    http_session(const http_session&) = delete;
    http_session& operator=(const http_session&) = delete;

    void run() { do_read(); }

  private:
    using body = http::vector_body<std::uint8_t>;

    void do_read() {
        parser_.emplace();
        parser_->body_limit(srv_.http.body_limit);
        // The request line carries GET PKIOperation's message: room for the URL + headers.
        parser_->header_limit(static_cast<std::uint32_t>(srv_.http.url_limit + 16 * 1024));
        stream_.expires_after(srv_.http.read_timeout);
        http::async_read(
            stream_, buffer_, *parser_,
            [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec) {
        started_ = std::chrono::steady_clock::now();
        if (ec == http::error::end_of_stream || ec == net::error::eof ||
            ec == net::error::connection_reset) {
            return close();
        }
        if (ec == beast::error::timeout) {
            // A slow client that never finishes its request: closed without an answer.
            ++srv_.counters.read_timeouts;
            srv_.log(fmt::format("{} {} - - timeout 0 read timeout after {} ms",
                                 timers::to_iso8601(srv_.clock.now()), peer_,
                                 srv_.http.read_timeout.count()));
            return;  // tcp_stream already closed the socket
        }
        keep_alive_ = false;
        method_ = "-";
        operation_ = "-";
        if (ec == http::error::body_limit)
            return send_plain(413, "request body too large\n");
        if (ec == http::error::header_limit)
            return send_plain(414, "request URL or headers too large\n");
        if (ec)
            return send_plain(400, fmt::format("bad HTTP request: {}\n", ec.message()));
        auto req = parser_->release();
        // Issue 11 §2.10: an HTTP/1.0 POST without Content-Length ends its body with the
        // client's half-close (RFC 1945 §7.2.2); read it to EOF.
        if (req.method() == http::verb::post && req.version() == 10 &&
            req.find(http::field::content_length) == req.end() &&
            req.find(http::field::transfer_encoding) == req.end()) {
            const auto left = buffer_.data();
            const auto* p = static_cast<const std::uint8_t*>(left.data());
            req.body().insert(req.body().end(), p, p + left.size());
            buffer_.consume(buffer_.size());
            to_eof_.emplace(std::move(req));
            return read_to_eof();
        }
        handle(std::move(req));
    }

    void read_to_eof() {
        stream_.expires_after(srv_.http.read_timeout);
        stream_.async_read_some(
            net::buffer(drain_buffer_),
            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                auto& got = self->to_eof_->body();
                got.insert(got.end(), self->drain_buffer_.begin(),
                            self->drain_buffer_.begin() + static_cast<std::ptrdiff_t>(n));
                if (got.size() > self->srv_.http.body_limit)
                    return self->send_plain(413, "request body too large\n");
                if (ec == net::error::eof) {
                    auto req = std::move(*self->to_eof_);
                    self->to_eof_.reset();
                    return self->handle(std::move(req));
                }
                if (ec)
                    return self->close();
                self->read_to_eof();
            });
    }

    void handle(http::request<body> req) {
        keep_alive_ = req.keep_alive();
        method_ = std::string{req.method_string()};
        const std::string_view target = req.target();
        if (target.size() > srv_.http.url_limit)
            return send_plain(414, "request URL too large\n");
        const auto qpos = target.find('?');
        const auto path = target.substr(0, qpos);
        const auto q = parse_query(qpos == std::string_view::npos ? std::string_view{}
                                                                  : target.substr(qpos + 1));
        operation_ = q.operation.empty() ? "-" : q.operation;
        // Issue 11 §2.8: the CRL at its CDP URL, /crl/NAME.crl, GET operation=GetCRL.
        if (req.method() == http::verb::get && srv_.engine->is_resource(target)) {
            return run_on_engine([&engine = *srv_.engine, t = std::string{target}] {
                return engine.resource(t);
            });
        }
        // RFC 8894 §4.1 / IOS: any path that ends in /pkiclient.exe.
        constexpr std::string_view suffix = "/pkiclient.exe";
        if (path.size() < suffix.size() || path.substr(path.size() - suffix.size()) != suffix) {
            return send_plain(404, "not a SCEP path (expected .../pkiclient.exe)\n");
        }
        if (req.method() != http::verb::get && req.method() != http::verb::post) {
            return send_plain(405, "method not allowed\n");  // with Allow (send)
        }
        if (q.operation.empty())
            return send_plain(400, "missing operation parameter\n");
        auto& engine = *srv_.engine;
        if (iequals(q.operation, "GetCACert"))
            return run_on_engine([&engine] { return engine.get_ca_cert(); });
        if (iequals(q.operation, "GetCACaps"))
            return run_on_engine([&engine] { return engine.get_ca_caps(); });
        if (iequals(q.operation, "GetNextCACert")) {
            return run_on_engine([&engine] { return engine.get_next_ca_cert(); });
        }
        if (iequals(q.operation, "PKIOperation")) {
            bytes der;
            if (req.method() == http::verb::post) {
                // scep-wire §0.9: no Content-Type required.
                der = std::move(req.body());
            } else {
                if (!q.message)
                    return send_plain(400, "missing message parameter\n");
                auto decoded = lenient_base64_decode(*q.message);
                if (!decoded)
                    return send_plain(400, "message is not base64\n");
                der = std::move(*decoded);
            }
            if (der.empty())
                return send_plain(400, "empty pkiMessage\n");
            return run_on_engine(
                [&engine, der = std::move(der)] { return engine.pki_operation(der); });
        }
        return send_plain(400, fmt::format("unknown operation '{}'\n", q.operation));
    }

    template <typename Fn>
    void run_on_engine(Fn fn) {
        // Store calls and RSA work never run on the network thread.
        net::post(srv_.engine_ctx, [self = shared_from_this(), fn = std::move(fn)]() mutable {
            http_answer a;
            try {
                a = fn();
            } catch (const std::exception& e) {
                a = {500, "text/plain", "internal error\n", false, e.what()};
            }
            // Hand our reference over: the session must die on the network thread (its
            // destructor updates the limiter).
            auto executor = self->stream_.get_executor();
            net::post(executor, [self = std::move(self), a = std::move(a)]() mutable {
                self->send(std::move(a));
            });
        });
    }

    void send_plain(unsigned status, std::string text) {
        http_answer a;
        a.status = status;
        a.content_type = "text/plain";
        a.detail = text.substr(0, text.find('\n'));
        a.body = std::move(text);
        if (status >= 400)
            keep_alive_ = false;
        send(std::move(a));
    }

    void send(http_answer a) {
        const auto now = srv_.clock.now();
        status_ = a.status;
        detail_ = std::move(a.detail);
        if (a.ios_404) {
            // Model §1 rule 4: byte for byte what IOS sends; the body ends at the close.
            raw_ = fmt::format(
                "HTTP/1.1 404 Not Found\r\nDate: {}\r\nServer: cisco-IOS\r\nAccept-Ranges: "
                "none\r\n\r\n{}",
                http_date(now), a.body);
            keep_alive_ = false;
            stream_.expires_after(srv_.http.read_timeout);
            net::async_write(stream_, net::buffer(raw_),
                             [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                 self->on_write(ec);
                             });
            return;
        }
        res_.emplace(static_cast<http::status>(a.status), 11);
        res_->set(http::field::date, http_date(now));
        res_->set(http::field::server, "cisco-IOS");
        if (!a.content_type.empty())
            res_->set(http::field::content_type, a.content_type);
        if (a.status == 405)
            res_->set(http::field::allow, "GET, POST");  // RFC 9110 §15.5.6
        res_->body() = std::move(a.body);
        res_->keep_alive(keep_alive_);
        res_->prepare_payload();  // Content-Length, never chunked (scep-wire §1.1)
        stream_.expires_after(srv_.http.read_timeout);
        http::async_write(
            stream_, *res_,
            [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_write(ec); });
    }

    void on_write(beast::error_code ec) {
        ++srv_.counters.requests;
        ++srv_.requests_by[{std::string{operation_label(operation_)}, status_}];
        if (status_ < 300) {
            ++srv_.counters.responses_2xx;
        } else if (status_ < 500) {
            ++srv_.counters.responses_4xx;
        } else {
            ++srv_.counters.responses_5xx;
        }
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - started_)
                            .count();
        srv_.log(fmt::format("{} {} {} {} {} {}ms {}", timers::to_iso8601(srv_.clock.now()), peer_,
                             method_, operation_, status_, ms, detail_));
        res_.reset();
        if (ec || !keep_alive_)
            return close();
        do_read();
    }

    void close() {
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        // Lingering close: read what the client still sends (an oversized URL or body we
        // refused), else the kernel answers the unread bytes with a RST that can destroy our
        // response in flight.
        stream_.expires_after(std::chrono::seconds{1});
        drain();
    }

    void drain() {
        stream_.async_read_some(net::buffer(drain_buffer_),
                                [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                                    self->drained_ += n;
                                    if (ec || self->drained_ > 4 * 1024 * 1024) {
                                        beast::error_code ignored;
                                        self->stream_.socket().close(ignored);
                                        return;
                                    }
                                    self->drain();
                                });
    }

    server::impl& srv_;
    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<body>> parser_;
    std::optional<http::response<http::string_body>> res_;
    std::optional<http::request<body>> to_eof_;  // HTTP/1.0 POST read to EOF
    std::string raw_;
    std::array<char, 4096> drain_buffer_{};
    std::size_t drained_ = 0;
    std::string peer_;
    std::string method_ = "-";
    std::string operation_ = "-";
    std::string detail_;
    unsigned status_ = 0;
    bool keep_alive_ = false;
    std::chrono::steady_clock::time_point started_{};
};

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
        auto& engine = *srv_.engine;
        net::post(srv_.engine_ctx, [self = shared_from_this(), &engine, cmd]() mutable {
            auto r = engine.admin(cmd);
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

void server::impl::do_accept() {
    if (stopped || deaf)
        return;
    acceptor.async_accept(net_ctx, [this](boost::system::error_code ec, tcp::socket socket) {
        on_accept(ec, std::move(socket));
    });
}

timers::admission server::impl::attempt(time_point now) {
    const auto decision = limiter.on_attempt(now);
    trace(limiter_event::kind::attempt, now, decision);
    return decision;
}

void server::impl::closed(time_point now) {
    limiter.on_close(now);
    trace(limiter_event::kind::close, now);
}

void server::impl::on_accept(boost::system::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || stopped)
        return;
    if (ec)
        return do_accept();  // e.g. the peer went away before accept
    const time_point now = clock.now();
    switch (attempt(now)) {
        case timers::admission::accepted:
            std::make_shared<http_session>(*this, std::move(socket))->run();
            break;
        case timers::admission::dropped_max_connections:
            // Model §3: a connection over `ip http max-connections` is dropped at once (RST).
            abort_close(socket);
            break;
        case timers::admission::ignored_deaf:
            // The attempt that trips the throttle: ignored like every attempt while deaf, i.e.
            // no answer (timers::attempt_cost: the client gives up at its own timeout). The
            // kernel has completed its handshake, so the socket is held, unread, until the deaf
            // period ends.
            hold(std::move(socket));
            enter_deaf(now);
            return;
    }
    do_accept();
}

void server::impl::enter_deaf(time_point now) {
    // Model §3: the listener stops listening for the deaf period (IOS: 15 s). First the filter,
    // so that no new handshake completes; then whatever the kernel completed before it went up
    // goes through the limiter (ignored: we are deaf) and is held unanswered like the attempt
    // that tripped the throttle.
    if (!deaf) {
        deaf = true;
        counters.syn_filter = attach_drop_all_filter(acceptor.native_handle());
        trace(limiter_event::kind::deaf_start, now);
        boost::system::error_code ec;
        acceptor.non_blocking(true, ec);
        for (;;) {
            tcp::socket s{net_ctx};
            acceptor.accept(s, ec);
            if (ec)
                break;
            const auto t = clock.now();
            if (attempt(t) == timers::admission::accepted) {
                // The clock moved past the deaf period meanwhile (a very fast warped clock).
                std::make_shared<http_session>(*this, std::move(s))->run();
            } else {
                hold(std::move(s));
            }
        }
        acceptor.non_blocking(false, ec);
    }
    const auto wait = clock.to_real(limiter.deaf_until() - clock.now());
    deaf_timer.expires_after(
        std::chrono::milliseconds{std::max<timers::duration::rep>(wait.count(), 0)});
    deaf_timer.async_wait([this](boost::system::error_code ec) {
        if (!ec)
            end_deaf();
    });
}

void server::impl::end_deaf() {
    if (stopped)
        return;
    const auto now = clock.now();
    if (limiter.is_deaf(now)) {
        // The real timer fired before the (warped) clock got there: wait for the rest.
        return enter_deaf(now);
    }
    deaf = false;
    detach_filter(acceptor.native_handle());
    trace(limiter_event::kind::deaf_end, now);
    release_held();
    // Without the filter (not Linux) handshakes queued in the backlog while deaf: IOS would
    // never have answered them, so they are reset rather than served late.
    boost::system::error_code ec;
    acceptor.non_blocking(true, ec);
    for (;;) {
        if (counters.syn_filter)
            break;
        tcp::socket s{net_ctx};
        acceptor.accept(s, ec);
        if (ec)
            break;
        ++counters.reset_after_deaf;
        abort_close(s);
    }
    acceptor.non_blocking(false, ec);
    do_accept();
}

void server::impl::hold(tcp::socket s) {
    // Neither read nor answered: the client's request sits in the receive buffer and the client
    // gives up at its own timeout (IOS: 10 s, model §2.5, shorter than the 15 s deaf period).
    held.push_back(std::move(s));
    counters.held_now = held.size();
}

void server::impl::release_held() {
    // The deaf period is over (or the server stops): IOS never answers what it ignored, so the
    // held connections are reset rather than served late.
    for (auto& s : held) {
        ++counters.reset_after_hold;
        abort_close(s);
    }
    held.clear();
    counters.held_now = 0;
}

void server::impl::do_admin_accept() {
    admin_acceptor.async_accept([this](boost::system::error_code ec, local::socket s) {
        if (ec == net::error::operation_aborted || stopped)
            return;
        if (!ec)
            std::make_shared<admin_session>(*this, std::move(s))->run();
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
            std::make_shared<metrics_session>(*this, std::move(s))->run();
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

void server::impl::schedule_tick(std::chrono::milliseconds wait) {
    // Pending-request expiry, CRL renewal, shadow generation and switchover on the (possibly
    // warped) clock: the engine says when it next has work; we wake then, and at least once a
    // real second (the clock may be warped, the config reloaded, an admin command run).
    tick_timer.expires_after(wait);
    tick_timer.async_wait([this](boost::system::error_code ec) {
        if (ec || stopped)
            return;
        auto next_wait = std::chrono::milliseconds{1000};
        try {
            const auto now = clock.now();
            const auto next = engine->tick();
            const auto real = clock.to_real(next - now);
            next_wait = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(real),
                                   std::chrono::milliseconds{1}, std::chrono::milliseconds{1000});
        } catch (const std::exception& e) {
            log(fmt::format("{} tick failed: {}", timers::to_iso8601(clock.now()), e.what()));
        }
        schedule_tick(next_wait);
    });
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
    out += fmt::format("    Requests: {} (2xx {}, 4xx {}, 5xx {}), read timeouts {}\n",
                       counters.requests, counters.responses_2xx, counters.responses_4xx,
                       counters.responses_5xx, counters.read_timeouts);
    for (const auto& [key, n] : requests_by)
        out += fmt::format("      {} {}: {}\n", key.first, key.second, n);
    return out;
}

// ---------------------------------------------------------------------------------------------

server::server(engine_options engine, http_options http, const timers::clock& clock)
    : impl_(std::make_unique<impl>(std::move(engine), std::move(http), clock)) {}

server::~server() {
    stop();
    boost::system::error_code ec;
    if (!impl_->admin_path.empty())
        std::filesystem::remove(impl_->admin_path, ec);
}

void server::start() {
    auto& i = *impl_;
    if (i.started)
        return;
    i.started = true;
    i.net_guard.emplace(i.net_ctx.get_executor());
    i.engine_guard.emplace(i.engine_ctx.get_executor());
    net::post(i.net_ctx, [&i] {
        i.do_accept();
        i.do_admin_accept();
        i.do_metrics_accept();
    });
    net::post(i.engine_ctx, [&i] { i.schedule_tick(); });
    i.engine_thread = std::thread([&i] { i.engine_ctx.run(); });
    i.net_thread = std::thread([&i] { i.net_ctx.run(); });
}

void server::stop() {
    auto& i = *impl_;
    if (!i.started || i.stopped)
        return;
    // Close the listeners on their own thread, let the engine finish what it is doing (a store
    // transaction is never cut in half), then stop both loops.
    std::promise<void> closed;
    net::post(i.net_ctx, [&i, &closed] {
        i.stopped = true;
        boost::system::error_code ec;
        i.acceptor.close(ec);
        i.admin_acceptor.close(ec);
        i.metrics_acceptor.close(ec);
        i.deaf_timer.cancel();
        i.release_held();
        closed.set_value();
    });
    closed.get_future().wait();
    std::promise<void> engine_idle;
    net::post(i.engine_ctx, [&i, &engine_idle] {
        i.tick_timer.cancel();
        engine_idle.set_value();
    });
    engine_idle.get_future().wait();
    i.engine_guard.reset();
    i.net_guard.reset();
    i.engine_ctx.stop();
    i.net_ctx.stop();
    if (i.engine_thread.joinable())
        i.engine_thread.join();
    if (i.net_thread.joinable())
        i.net_thread.join();
}

void server::run_until_signal() {
    net::io_context sig_ctx{1};
    net::signal_set signals{sig_ctx, SIGINT, SIGTERM};
    signals.async_wait([](boost::system::error_code, int) {});
    start();
    sig_ctx.run();
    stop();
}

std::string server::local_address() const {
    const auto ep = impl_->acceptor.local_endpoint();
    return fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

unsigned short server::local_port() const {
    return impl_->acceptor.local_endpoint().port();
}

std::filesystem::path server::admin_socket_path() const {
    return impl_->admin_path;
}

std::string server::metrics_address() const {
    if (!impl_->metrics_acceptor.is_open())
        return {};
    const auto ep = impl_->metrics_acceptor.local_endpoint();
    return fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

scep_service& server::engine() {
    return *impl_->engine;
}

admin_result admin_call(const std::filesystem::path& data_dir, const std::string& line) {
    net::io_context ctx{1};
    local::socket s{ctx};
    boost::system::error_code ec;
    const auto path = data_dir / "admin.sock";
    s.connect(local::endpoint{path.string()}, ec);
    if (ec) {
        throw std::runtime_error(
            fmt::format("no pkisim server answers on {}: {}", path.string(), ec.message()));
    }
    net::write(s, net::buffer(line + "\n"), ec);
    std::string out;
    net::read(s, net::dynamic_buffer(out), ec);  // until EOF
    if (ec && ec != net::error::eof) {
        throw std::runtime_error(fmt::format("admin socket {}: {}", path.string(), ec.message()));
    }
    const auto nl = out.find('\n');
    const auto status = out.substr(0, nl);
    return {status == "ok", nl == std::string::npos ? std::string{} : out.substr(nl + 1)};
}

}  // namespace pkisim::scep
