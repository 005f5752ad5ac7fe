#include "server_impl.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <openssl/asn1.h>
#include <openssl/err.h>

#include <date/date.h>
#include <fmt/format.h>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace pkisim::scep {

namespace beast = boost::beast;
namespace http = beast::http;
using detail::iequals;

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

std::string escape_log_field(std::string_view s, bool keep_spaces) {
    std::string out;
    out.reserve(s.size());
    for (const char ch : s) {
        const auto b = static_cast<unsigned char>(ch);
        if (b < 0x20 || b >= 0x7F || b == '\\' || (b == ' ' && !keep_spaces)) {
            out += fmt::format("\\x{:02X}", b);
        } else {
            out += ch;
        }
    }
    return out;
}

namespace detail {

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

}  // namespace detail

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

// A Date value of the right length (RFC 9110 §5.6.7, IMF-fixdate: always 29 bytes) where the
// prepared responses take the real one.
constexpr std::string_view date_placeholder = "Xxx, 00 Xxx 0000 00:00:00 GMT";

// The IOS HTTP server's 404 as IOS writes it (model §1 rule 4): no Content-Type, no length, the
// connection closes after it. Written by send() and prepared by serialize_static().
std::string ios_404_wire(std::string_view date, std::string_view body) {
    return fmt::format(
        "HTTP/1.1 404 Not Found\r\nDate: {}\r\nServer: cisco-IOS\r\nAccept-Ranges: "
        "none\r\n\r\n{}",
        date, body);
}

// The client's address, formatted only for a log line.
std::string peer_text(const std::optional<tcp::endpoint>& peer) {
    return peer ? fmt::format("{}:{}", peer->address().to_string(), peer->port())
                : std::string{"?"};
}

std::string_view operation_label(std::string_view op) {
    for (std::string_view known : {"GetCACert", "GetCACaps", "GetNextCACert", "PKIOperation"}) {
        if (iequals(op, known))
            return known;
    }
    return "other";
}

query query_of(std::string_view target) {
    const auto qpos = target.find('?');
    return parse_query(qpos == std::string_view::npos ? std::string_view{}
                                                      : target.substr(qpos + 1));
}

// The request line carries GET PKIOperation's message: room for the URL + headers (a session's
// parser and the one of an answer at accept).
std::uint32_t request_header_limit(const http_options& h) {
    return static_cast<std::uint32_t>(h.url_limit + 16 * 1024);
}

// A prepared answer, its Date put in, in one sendmsg(2) that does not wait: a prepared answer
// almost always fits the socket's send buffer. `error`: errno when the write failed (the peer
// is gone); else `sent` bytes of `total` (the rest for an asynchronous write).
struct prepared_write {
    int error = 0;
    std::size_t sent = 0;
    std::size_t total = 0;
    bool done() const { return error == 0 && sent == total; }
};

prepared_write write_prepared(int fd, const detail::static_response& r, bool keep_alive,
                              std::string_view date) {
    const std::string& head = r.head[keep_alive];
    const std::string& tail = r.tail[keep_alive];
    std::array<iovec, 3> iov{iovec{const_cast<char*>(head.data()), head.size()},
                             iovec{const_cast<char*>(date.data()), date.size()},
                             iovec{const_cast<char*>(tail.data()), tail.size()}};
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = iov.size();
    prepared_write w;
    w.total = head.size() + date.size() + tail.size();
    const auto n = ::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
        w.sent = static_cast<std::size_t>(n);
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        w.error = errno;
    }
    return w;
}

// Where a SCEP request goes once its request line is read: one rule for handle() and for the
// answer given at accept (serve_accepted). `error` carries the 4xx to send.
struct route {
    enum class kind { error, resource, operation } what = kind::operation;
    unsigned status = 0;
    std::string text;
};

route route_request(const server::impl& srv, http::verb method, std::string_view target,
                    const query& q) {
    const auto path = target.substr(0, target.find('?'));
    // Issue 11 §2.8: the CRL at its CDP URL, /crl/NAME.crl, GET operation=GetCRL.
    if (method == http::verb::get && srv.engine->is_resource(target))
        return {route::kind::resource, 0, {}};
    // RFC 8894 §4.1 / IOS: any path that ends in /pkiclient.exe.
    constexpr std::string_view suffix = "/pkiclient.exe";
    if (path.size() < suffix.size() || path.substr(path.size() - suffix.size()) != suffix)
        return {route::kind::error, 404, "not a SCEP path (expected .../pkiclient.exe)\n"};
    if (method != http::verb::get && method != http::verb::post)
        return {route::kind::error, 405, "method not allowed\n"};  // with Allow (send)
    if (q.operation.empty())
        return {route::kind::error, 400, "missing operation parameter\n"};
    return {};
}

// Issue 12 §3: the bytes prepared for the CA's current state when `operation` is one of the
// static operations; none past `until` (the engine would change that state by itself: a warped
// clock), when the engine answers until it has prepared the next ones.
const detail::static_response* prepared_for(const server::impl& srv, std::string_view operation) {
    const auto* statics = srv.statics.get();
    if (!statics || (statics->until && srv.clock.now() >= *statics->until))
        return nullptr;
    if (iequals(operation, "GetCACert"))
        return &statics->ca_cert;
    if (iequals(operation, "GetCACaps"))
        return &statics->ca_caps;
    if (iequals(operation, "GetNextCACert"))
        return &statics->next_ca_cert;
    return nullptr;
}

// One answer written: the counters of `show http` and /metrics, and the access-log line
// (method, operation and detail carry client bytes: escaped, issue 13 §4; no line is formatted
// when there is no log, `--access-log off`).
void count_answer(server::impl& srv, bool ocsp, std::string_view method, std::string_view operation,
                  unsigned status, std::string_view detail,
                  std::chrono::steady_clock::time_point started,
                  const std::optional<tcp::endpoint>& peer) {
    // OCSP answers count under operation="OCSP" only (`show http` is the SCEP listener's).
    ++srv.requests_by[{ocsp ? std::string{"OCSP"} : std::string{operation_label(operation)},
                       status}];
    if (!ocsp) {
        ++srv.counters.requests;
        if (status < 300) {
            ++srv.counters.responses_2xx;
        } else if (status < 500) {
            ++srv.counters.responses_4xx;
        } else {
            ++srv.counters.responses_5xx;
        }
    }
    if (srv.http.quiet)
        return;
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
    srv.log(fmt::format("{} {} {} {} {} {}ms {}", timers::to_iso8601(srv.clock.now()),
                        peer_text(peer), escape_log_field(method), escape_log_field(operation),
                        status, ms, escape_log_field(detail, true)));
}

// One HTTP connection (Beast listener/session split; all on the network thread). The same
// session serves the OCSP port (issue 11 §2.9, `ocsp`): no IOS limiter, no timeout-policy,
// OCSP requests only.
class http_session : public std::enable_shared_from_this<http_session> {
  public:
    // `received`: bytes of the first request already read from the socket (serve_accepted).
    http_session(server::impl& srv, tcp::socket socket, bool ocsp = false,
                 std::optional<tcp::endpoint> peer = std::nullopt, std::string_view received = {})
        : srv_(srv), stream_(std::move(socket)), ocsp_(ocsp) {
        if (!received.empty()) {
            auto room = buffer_.prepare(received.size());
            std::memcpy(room.data(), received.data(), received.size());
            buffer_.commit(received.size());
        }
        if (peer) {
            peer_ = *peer;
        } else {
            boost::system::error_code ec;
            peer_ = stream_.socket().remote_endpoint(ec);
            if (ec)
                peer_.reset();
        }
        // Issue 12 §3: with the IOS limits off, a connection whose answer is out and whose
        // request was read whole closes at once (nginx's default); with them on, the close
        // waits for the client as before (the limiter counts the connection until then).
        close_at_once_ = !srv_.limiter.config().enabled;
    }
    ~http_session() {
        release_body_memory();
        if (ocsp_) {
            --srv_.ocsp_open;
        } else {
            srv_.closed(srv_.clock.now());
        }
    }
    http_session(const http_session&) = delete;
    http_session& operator=(const http_session&) = delete;

    void run() { do_read(); }

    // serve_accepted wrote the first `sent` bytes of a prepared answer and the socket took no
    // more: the rest goes out asynchronously, then as any answer (on_write).
    void finish_static(const detail::static_response& r, std::string_view date, std::size_t sent,
                       std::string_view method, std::string_view operation,
                       std::chrono::steady_clock::time_point started) {
        ++srv_.counters.prepared_answers;
        method_ = std::string{method};
        operation_ = std::string{operation};
        started_ = started;
        keep_alive_ = false;
        status_ = r.status;
        detail_ = r.detail;
        write_rest(r.head[0], date, r.tail[0], sent);
    }

  private:
    using body = http::vector_body<std::uint8_t>;

    // How long the next request may take to arrive: read_timeout, shortened by the IOS
    // timeout-policy (idle between requests, life since the accept). Zero: close now.
    std::chrono::milliseconds read_deadline() const {
        auto t = srv_.http.read_timeout;
        if (const auto& p = srv_.http.timeout_policy; p && !ocsp_) {
            if (served_ > 0)
                t = std::min(t, std::chrono::milliseconds{std::chrono::seconds{p->idle_s}});
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                accepted_ + std::chrono::seconds{p->life_s} - std::chrono::steady_clock::now());
            t = std::min(t, std::max(left, std::chrono::milliseconds{0}));
        }
        return t;
    }

    void do_read() {
        parser_.emplace();
        parser_->body_limit(srv_.http.body_limit);
        parser_->header_limit(request_header_limit(srv_.http));
        const auto deadline = read_deadline();
        if (deadline.count() <= 0) {
            ++srv_.counters.closed_by_timeout_policy;
            return close();
        }
        // Issue 12 §3: a new connection's request has usually arrived by the time it is
        // accepted: read and parse it here, without an asynchronous read and its timer. Not
        // between keep-alive requests: the next one is rarely there yet, and a read that found
        // nothing would cost a system call.
        if (served_ == 0) {
            beast::error_code ec;
            if (parse_waiting(ec))
                return on_header(ec);
        }
        // One deadline for the request line, the headers and the body together.
        stream_.expires_after(deadline);
        http::async_read_header(stream_, buffer_, *parser_,
                                [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                    self->on_header(ec);
                                });
    }

    // True when the header was parsed (or failed to parse: `ec`) from bytes already received
    // (handed over by serve_accepted, or waiting in the socket).
    bool parse_waiting(beast::error_code& ec) {
        if (buffer_.size() == 0) {
            auto room = buffer_.prepare(4096);
            const auto n =
                ::recv(stream_.socket().native_handle(), room.data(), room.size(), MSG_DONTWAIT);
            if (n <= 0)
                return false;  // nothing yet, or EOF or an error: the asynchronous read says which
            buffer_.commit(static_cast<std::size_t>(n));
        }
        const auto used = parser_->put(buffer_.data(), ec);
        buffer_.consume(used);
        if (ec == http::error::need_more) {
            ec = {};
            return false;  // the rest arrives later: async_read_header goes on from the buffer
        }
        return ec || parser_->is_header_done();
    }

    void on_header(beast::error_code ec) {
        if (ec)
            return on_read(ec);
        // Issue 13 §3: bodies in flight share one memory bound (each reserves what it may
        // grow to) so that many slow uploads cannot take the server's memory.
        std::size_t want = 0;
        if (const auto n = parser_->content_length()) {
            want = static_cast<std::size_t>(std::min<std::uint64_t>(*n, srv_.http.body_limit));
        } else if (parser_->chunked()) {
            want = srv_.http.body_limit;
        }
        if (want > 0) {
            if (srv_.body_memory_in_flight + want > srv_.http.body_memory_limit) {
                started_ = std::chrono::steady_clock::now();
                ++srv_.counters.refused_body_memory;
                keep_alive_ = false;
                method_ = std::string{parser_->get().method_string()};
                operation_ = "-";
                return send_plain(503, "busy: too many request bodies in flight, retry later\n");
            }
            reserved_ = want;
            srv_.body_memory_in_flight += want;
        }
        if (parser_->is_done())
            return on_read({});
        http::async_read(
            stream_, buffer_, *parser_,
            [self = shared_from_this()](beast::error_code e, std::size_t) { self->on_read(e); });
    }

    void release_body_memory() {
        srv_.body_memory_in_flight -= reserved_;
        reserved_ = 0;
    }

    void on_read(beast::error_code ec) {
        release_body_memory();
        started_ = std::chrono::steady_clock::now();
        if (ec == http::error::end_of_stream || ec == net::error::eof ||
            ec == net::error::connection_reset) {
            return close();
        }
        if (ec == beast::error::timeout) {
            // A slow client that never finishes its request: closed without an answer.
            ++srv_.counters.read_timeouts;
            if (!srv_.http.quiet)
                srv_.log(fmt::format("{} {} - - timeout 0 read timeout after {} ms",
                                     timers::to_iso8601(srv_.clock.now()), peer_text(peer_),
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
        const auto q = query_of(target);
        operation_ = q.operation.empty() ? "-" : q.operation;
        if (ocsp_)
            return handle_ocsp(std::move(req), target);
        switch (const auto r = route_request(srv_, req.method(), target, q); r.what) {
            case route::kind::resource:
                return run_on_engine([&engine = *srv_.engine, t = std::string{target}] {
                    return engine.resource(t);
                });
            case route::kind::error:
                return send_plain(r.status, r.text);
            case route::kind::operation:
                break;
        }
        auto& engine = *srv_.engine;
        if (const auto* prepared = prepared_for(srv_, q.operation))
            return send_static(*prepared);
        if (iequals(q.operation, "GetCACert"))
            return run_on_engine([&engine] { return engine.get_ca_cert(); });
        if (iequals(q.operation, "GetCACaps"))
            return run_on_engine([&engine] { return engine.get_ca_caps(); });
        if (iequals(q.operation, "GetNextCACert"))
            return run_on_engine([&engine] { return engine.get_next_ca_cert(); });
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
            // Issue 12 §3: decrypt and sign on the workers, the store on the engine thread.
            return srv_.pki_operation(std::move(der),
                                      [self = shared_from_this()](http_answer a) mutable {
                                          send_on_network(std::move(self), std::move(a));
                                      });
        }
        return send_plain(400, fmt::format("unknown operation '{}'\n", q.operation));
    }

    // RFC 6960 Appendix A.1: POST with the DER request as the body (application/ocsp-request),
    // or GET {url}/{url-encoding of base64 of the DER}. The base URL's path is not known here
    // (the AIA URL may have one) and '/' inside the base64 may come unescaped, so each suffix
    // of the path that starts after a '/' is tried, longest first.
    void handle_ocsp(http::request<body> req, std::string_view target) {
        operation_ = "OCSP";
        auto& engine = *srv_.engine;
        if (req.method() == http::verb::post) {
            const auto type = req[http::field::content_type];
            if (!type.empty() &&
                !iequals(type.substr(0, type.find(';')), "application/ocsp-request"))
                return send_plain(415, "expected Content-Type: application/ocsp-request\n");
            if (req.body().empty())
                return send_plain(400, "empty OCSP request\n");
            return run_on_engine(
                [&engine, der = std::move(req.body())] { return engine.ocsp(der); });
        }
        if (req.method() != http::verb::get)
            return send_plain(405, "method not allowed\n");  // Allow: GET, POST (send)
        const auto path = percent_decode(target.substr(0, target.find('?')));
        std::optional<bytes> der;
        constexpr int max_tries = 16;
        int tries = 0;
        for (std::size_t from = 0; from != std::string::npos && tries < max_tries; ++tries) {
            const auto slash = path.find('/', from);
            if (slash == std::string::npos)
                break;
            const std::string_view candidate = std::string_view{path}.substr(slash + 1);
            if (candidate.empty())
                break;
            // Structure check only (the engine parses for real): a DER SEQUENCE whose length
            // covers the rest exactly.
            if (auto d = lenient_base64_decode(candidate); d && d->size() >= 2 && (*d)[0] == 0x30) {
                const unsigned char* p = d->data();
                long len = 0;
                int tag = 0;
                int cls = 0;
                const int r = ASN1_get_object(&p, &len, &tag, &cls, static_cast<long>(d->size()));
                ERR_clear_error();
                if (r == V_ASN1_CONSTRUCTED && p + len == d->data() + d->size()) {
                    der = std::move(d);
                    break;
                }
            }
            from = slash + 1;
        }
        if (!der) {
            return send_plain(400,
                              "expected GET /BASE64-OF-DER-OCSPREQUEST (RFC 6960 A.1) or POST\n");
        }
        return run_on_engine([&engine, der = std::move(*der)] { return engine.ocsp(der); });
    }

    template <typename Fn>
    void run_on_engine(Fn fn) {
        // Store calls and RSA work never run on the network thread.
        net::post(srv_.engine_ctx, [self = shared_from_this(), fn = std::move(fn)]() mutable {
            http_answer a;
            try {
                a = fn();
            } catch (const std::exception& e) {
                a = internal_error_answer(e.what());
            }
            // Whatever the call changed (a switchover, the RA's shadow) reaches the static
            // answers before this answer goes out.
            self->srv_.republish();
            send_on_network(std::move(self), std::move(a));
        });
    }

    // From another thread: the answer and our reference go to the network thread, where the
    // session must die (its destructor updates the limiter).
    static void send_on_network(std::shared_ptr<http_session> self, http_answer a) {
        auto executor = self->stream_.get_executor();
        net::post(executor, [self = std::move(self), a = std::move(a)]() mutable {
            self->send(std::move(a));
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

    void apply_timeout_policy() {
        if (const auto& p = srv_.http.timeout_policy; p && keep_alive_ && !ocsp_) {
            // `requests N`: the Nth answer on a connection closes it; `life S`: so does any
            // answer after S seconds.
            if (served_ + 1 >= static_cast<std::size_t>(p->requests) ||
                std::chrono::steady_clock::now() >= accepted_ + std::chrono::seconds{p->life_s}) {
                keep_alive_ = false;
                ++srv_.counters.closed_by_timeout_policy;
            }
        }
    }

    // Issue 12 §3: a prepared response, the Date put in; one gathered write.
    void send_static(const detail::static_response& r) {
        if (r.ios_404)
            keep_alive_ = false;
        apply_timeout_policy();
        ++srv_.counters.prepared_answers;
        status_ = r.status;
        detail_ = r.detail;
        const auto date = srv_.date_header(srv_.clock.now());
        const auto w = write_prepared(stream_.socket().native_handle(), r, keep_alive_, date);
        if (w.done())
            return on_write({});
        if (w.error != 0)
            return on_write(beast::error_code{w.error, boost::system::system_category()});
        write_rest(r.head[keep_alive_], date, r.tail[keep_alive_], w.sent);
    }

    // What the socket did not take of a prepared answer, asynchronously.
    void write_rest(std::string_view head, std::string_view date, std::string_view tail,
                    std::size_t sent) {
        raw_ = head;
        raw_ += date;
        raw_ += tail;
        raw_.erase(0, sent);
        stream_.expires_after(srv_.http.read_timeout);
        net::async_write(
            stream_, net::buffer(raw_),
            [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_write(ec); });
    }

    void send(http_answer a) {
        const auto now = srv_.clock.now();
        apply_timeout_policy();
        status_ = a.status;
        detail_ = std::move(a.detail);
        if (a.ios_404) {
            // Model §1 rule 4: byte for byte what IOS sends; the body ends at the close.
            raw_ = ios_404_wire(srv_.date_header(now), a.body);
            keep_alive_ = false;
            stream_.expires_after(srv_.http.read_timeout);
            net::async_write(stream_, net::buffer(raw_),
                             [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                 self->on_write(ec);
                             });
            return;
        }
        res_.emplace(static_cast<http::status>(a.status), 11);
        res_->set(http::field::date, srv_.date_header(now));
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
        ++served_;
        count_answer(srv_, ocsp_, method_, operation_, status_, detail_, started_, peer_);
        res_.reset();
        if (ec || !keep_alive_)
            return close();
        do_read();
    }

    void close() {
        beast::error_code ignored;
        if (close_at_once_ && status_ != 0 && status_ < 400 && buffer_.size() == 0 && !to_eof_) {
            // Nothing left unread that could make the kernel answer with a RST.
            stream_.socket().close(ignored);
            return;
        }
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
    std::optional<tcp::endpoint> peer_;
    std::string method_ = "-";
    std::string operation_ = "-";
    std::string detail_;
    unsigned status_ = 0;
    bool keep_alive_ = false;
    std::chrono::steady_clock::time_point started_{};
    // Issue 13 §3.
    std::chrono::steady_clock::time_point accepted_ = std::chrono::steady_clock::now();
    std::size_t served_ = 0;    // answers written on this connection
    std::size_t reserved_ = 0;  // body memory reserved for the request being read
    bool ocsp_ = false;         // the OCSP port's session (issue 11 §2.9)
    bool close_at_once_ = false;
};

// One prepared answer as Beast would write it (send() below), for both connection states.
detail::static_response serialize_static(const http_answer& a) {
    detail::static_response out;
    out.status = a.status;
    out.ios_404 = a.ios_404;
    out.detail = a.detail;
    for (int keep = 0; keep < 2; ++keep) {
        std::string wire;
        if (a.ios_404) {
            wire = ios_404_wire(date_placeholder, a.body);
        } else {
            http::response<http::string_body> res{static_cast<http::status>(a.status), 11};
            res.set(http::field::date, date_placeholder);
            res.set(http::field::server, "cisco-IOS");
            if (!a.content_type.empty())
                res.set(http::field::content_type, a.content_type);
            res.body() = a.body;
            res.keep_alive(keep != 0);
            res.prepare_payload();
            http::response_serializer<http::string_body> sr{res};
            beast::error_code ec;
            do {
                sr.next(ec, [&](beast::error_code&, const auto& buffers) {
                    for (const auto b : beast::buffers_range_ref(buffers))
                        wire.append(static_cast<const char*>(b.data()), b.size());
                    sr.consume(beast::buffer_bytes(buffers));
                });
            } while (!ec && !sr.is_done());
        }
        const auto at = wire.find(date_placeholder);
        out.head[keep] = wire.substr(0, at);
        out.tail[keep] = wire.substr(at + date_placeholder.size());
    }
    return out;
}

}  // namespace

std::shared_ptr<const detail::static_responses> detail::make_static_responses(
    const static_answers& a) {
    auto out = std::make_shared<static_responses>();
    out->ca_cert = serialize_static(a.ca_cert);
    out->ca_caps = serialize_static(a.ca_caps);
    out->next_ca_cert = serialize_static(a.next_ca_cert);
    out->until = a.until;
    return out;
}

std::string_view server::impl::date_header(time_point now) {
    const auto second = std::chrono::floor<std::chrono::seconds>(now).time_since_epoch().count();
    if (second != date_second) {
        date_text = http_date(now);
        date_second = second;
    }
    return date_text;
}

void detail::start_ocsp_session(server::impl& srv, tcp::socket socket) {
    ++srv.ocsp_open;  // the session's destructor takes it back
    std::make_shared<http_session>(srv, std::move(socket), true)->run();
}

void detail::serve_accepted(server::impl& srv, int fd, const tcp::endpoint& peer) {
    ++srv.open_sessions;  // closed() below, or the session's destructor
    const auto started = std::chrono::steady_clock::now();
    // The descriptor as an Asio socket for a session (its epoll registration); false: it could
    // not be registered and is closed.
    const auto adopt = [&](tcp::socket& socket) {
        boost::system::error_code ec;
        socket.assign(peer.protocol(), fd, ec);
        if (ec) {
            ::close(fd);
            srv.closed(srv.clock.now());
        }
        return !ec;
    };
    // Issue 12 §3: an IOS-style request (HTTP/1.0, or Connection: close) for a prepared answer
    // has usually arrived whole by the time it is accepted. Answered here from the descriptor,
    // it costs recv, sendmsg and close: no epoll registration (and removal), no session. The
    // same rules decide as in a session (route_request, prepared_for), the same counters and
    // log line (count_answer), the same bytes (the prepared ones). Anything else (a partial
    // request, keep-alive, a body, another operation, a timeout-policy) goes to a session with
    // what was read.
    std::array<char, 4096> got;
    const auto n = ::recv(fd, got.data(), got.size(), 0);  // accept4: non-blocking
    std::string_view received;
    if (n > 0) {
        received = {got.data(), static_cast<std::size_t>(n)};
        http::request_parser<http::empty_body> parser;
        parser.header_limit(request_header_limit(srv.http));
        beast::error_code ec;
        const auto used = parser.put(net::buffer(got.data(), received.size()), ec);
        const auto& req = parser.get();
        const detail::static_response* r = nullptr;
        std::string operation;
        if (!ec && used == received.size() && parser.is_done() && !req.keep_alive() &&
            !srv.http.timeout_policy && req.target().size() <= srv.http.url_limit) {
            const auto q = query_of(req.target());
            if (route_request(srv, req.method(), req.target(), q).what == route::kind::operation)
                r = prepared_for(srv, q.operation);
            operation = q.operation;
        }
        if (r && r->status < 400 && !r->ios_404) {
            const auto date = srv.date_header(srv.clock.now());
            const auto w = write_prepared(fd, *r, false, date);
            if (w.done() || w.error != 0) {
                // Written (or the peer is gone, which a session would also count and log).
                ++srv.counters.prepared_answers;
                ++srv.counters.answered_at_accept;
                count_answer(srv, false, req.method_string(), operation, r->status, r->detail,
                             started, peer);
                ::close(fd);
                srv.closed(srv.clock.now());
                return;
            }
            // The socket took only part of it: the rest from a session.
            tcp::socket socket{srv.net_ctx};
            if (!adopt(socket))
                return;
            std::make_shared<http_session>(srv, std::move(socket), false, peer)
                ->finish_static(*r, date, w.sent, req.method_string(), operation, started);
            return;
        }
    }
    tcp::socket socket{srv.net_ctx};
    if (adopt(socket))
        std::make_shared<http_session>(srv, std::move(socket), false, peer, received)->run();
}

void detail::start_http_session(server::impl& srv, tcp::socket socket,
                                std::optional<tcp::endpoint> peer) {
    ++srv.open_sessions;  // the session's destructor calls closed()
    std::make_shared<http_session>(srv, std::move(socket), false, peer)->run();
}

}  // namespace pkisim::scep
