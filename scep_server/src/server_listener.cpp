#include "server_impl.hpp"

#include <linux/filter.h>
#include <sys/socket.h>

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace pkisim::scep {

void detail::abort_close(tcp::socket& s) {
    boost::system::error_code ignored;
    s.set_option(net::socket_base::linger(true, 0), ignored);
    s.close(ignored);
}

void detail::abort_close(int fd) {
    const ::linger lg{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    ::close(fd);
}

namespace {

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

}  // namespace

using detail::abort_close;

void server::impl::do_accept() {
    if (stopped || deaf)
        return;
    if (!limiter.config().enabled) {
        // Issue 12 §3: with the IOS limits off, the connections waiting are accepted here with
        // accept4(2), without an Asio socket each (serve_accepted). The listener is
        // non-blocking (open_listener).
        acceptor.async_wait(tcp::acceptor::wait_read,
                            [this](boost::system::error_code ec) { on_listener_readable(ec); });
        return;
    }
    // The peer's address comes with accept(2) (no getpeername(2) per connection).
    acceptor.async_accept(net_ctx, accepted_peer,
                          [this](boost::system::error_code ec, tcp::socket socket) {
                              on_accept(ec, std::move(socket));
                          });
}

timers::admission server::impl::attempt(time_point now) {
    const auto decision = limiter.on_attempt(now);
    trace(limiter_event::kind::attempt, now, decision);
    return decision;
}

void server::impl::closed(time_point now) {
    --open_sessions;
    limiter.on_close(now);
    trace(limiter_event::kind::close, now);
}

bool server::impl::over_max_open() {
    if (open_sessions + held.size() < max_open)
        return false;
    ++counters.dropped_max_open;
    return true;
}

void server::impl::on_accept(boost::system::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || stopped)
        return;
    if (ec == net::error::no_descriptors || ec.value() == ENFILE)
        return on_no_descriptors();
    if (ec)
        return do_accept();  // e.g. the peer went away before accept
    accept_backoff = std::chrono::milliseconds{0};
    if (over_max_open()) {
        abort_close(socket);  // reset at once, like a connection over max-connections
        return do_accept();
    }
    const time_point now = clock.now();
    switch (attempt(now)) {
        case timers::admission::accepted:
            detail::start_http_session(*this, std::move(socket), accepted_peer);
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

void server::impl::on_listener_readable(boost::system::error_code ec) {
    if (ec == net::error::operation_aborted || stopped)
        return;
    // At most 64 per wake-up: the sessions already open get their turn too.
    for (int i = 0; !ec && i < 64; ++i) {
        sockaddr_storage addr{};
        socklen_t len = sizeof addr;
        const int fd = ::accept4(acceptor.native_handle(), reinterpret_cast<sockaddr*>(&addr), &len,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                return on_no_descriptors();
            if (errno == ECONNABORTED || errno == EPROTO || errno == EINTR)
                continue;  // e.g. the peer went away before accept
            break;         // EAGAIN: nothing more waits
        }
        accept_backoff = std::chrono::milliseconds{0};
        tcp::endpoint peer;
        std::memcpy(peer.data(), &addr, std::min<std::size_t>(len, peer.capacity()));
        peer.resize(std::min<std::size_t>(len, peer.capacity()));
        if (over_max_open()) {
            abort_close(fd);  // as in on_accept
            continue;
        }
        // The limiter is off: the attempt is counted and traced, and always accepted.
        (void)attempt(clock.now());
        detail::serve_accepted(*this, fd, peer);
    }
    do_accept();
}

void server::impl::on_no_descriptors() {
    // Issue 13 §3: out of descriptors (EMFILE/ENFILE). Retrying accept() at once spins a core
    // and starves the sessions that could free descriptors. Instead: give up the reserve
    // descriptor, accept-and-reset what waits in the backlog (those clients get a RST now, not a
    // hang), take the reserve back, and retry after a back-off (10 ms doubling to 1 s).
    ++counters.accept_no_descriptors;
    boost::system::error_code ec;  // the listener is non-blocking (open_listener)
    for (int i = 0; i < 1024; ++i) {
        reserve_fd.reset();
        tcp::socket s{net_ctx};
        acceptor.accept(s, ec);
        if (ec)
            break;
        ++counters.shed_no_descriptors;
        abort_close(s);
    }
    if (reserve_fd.fd < 0)
        reserve_fd.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    accept_backoff = std::clamp(accept_backoff * 2, std::chrono::milliseconds{10},
                                std::chrono::milliseconds{1000});
    accept_backoff_timer.expires_after(accept_backoff);
    accept_backoff_timer.async_wait([this](boost::system::error_code e) {
        if (!e)
            do_accept();
    });
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
        boost::system::error_code ec;  // the listener is non-blocking (open_listener)
        for (;;) {
            tcp::socket s{net_ctx};
            acceptor.accept(s, ec);
            if (ec)
                break;
            const auto t = clock.now();
            if (attempt(t) == timers::admission::accepted) {
                // The clock moved past the deaf period meanwhile (a very fast warped clock).
                detail::start_http_session(*this, std::move(s));
            } else {
                hold(std::move(s));
            }
        }
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
    boost::system::error_code ec;  // the listener is non-blocking (open_listener)
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

}  // namespace pkisim::scep
