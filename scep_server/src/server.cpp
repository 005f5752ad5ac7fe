#include "pkisim/scep/server.hpp"
#include "server_impl.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <future>
#include <iostream>
#include <utility>

#include <fmt/format.h>

namespace pkisim::scep {

server::impl::impl(engine_options e, http_options h, const timers::clock& c)
    : clock(c),
      http(std::move(h)),
      limiter(http.limiter),
      acceptor(net_ctx),
      admin_acceptor(net_ctx),
      metrics_acceptor(net_ctx),
      deaf_timer(net_ctx),
      tick_timer(engine_ctx) {
    if (!http.quiet && !http.access_log.empty()) {
        // Owner-only like the data folder (issue 13 §4): created 0600, and an existing file
        // that others could read is narrowed to 0600.
        log_file.reset(
            ::open(http.access_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
        if (log_file.fd < 0 || ::fchmod(log_file.fd, 0600) != 0) {
            throw startup_error(exit_status::config,
                                fmt::format("cannot open access log {}: {}",
                                            http.access_log.string(), std::strerror(errno)));
        }
    }
    // Bind first: a port in use must not leave a freshly created CA behind.
    open_listener();
    // Issue 13 §3: one descriptor kept in reserve for shedding load under EMFILE, and the cap
    // on open connections from the descriptor limit.
    reserve_fd.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    max_open = http.max_open;
    if (max_open == 0) {
        rlimit rl{};
        const std::size_t soft =
            ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                ? static_cast<std::size_t>(rl.rlim_cur)
                : 1024;
        max_open = soft > 2 * http_options::descriptor_margin
                       ? soft - http_options::descriptor_margin
                       : std::max<std::size_t>(soft / 2, 1);
    }
    open_metrics_listener();
    open_ocsp_listener();
    // Rollover events (shadow made, switchover) go to the access log as IOS syslog lines.
    e.event_log = [this](const std::string& line) {
        log(fmt::format("{} {}", timers::to_iso8601(clock.now()), line));
    };
    engine = make_service(std::move(e), c);
    open_admin();
}

void server::impl::open_listener() {
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
    // Non-blocking from the start: the accept loops (deaf, EMFILE, the IOS-limits-off accept4)
    // take what waits and stop at EAGAIN; Asio's async_accept works either way.
    if (!ec)
        acceptor.non_blocking(true, ec);
    if (ec) {
        throw startup_error(exit_status::listen,
                            fmt::format("cannot listen on {}: {}", where, ec.message()));
    }
}

void server::impl::log(std::string_view line) {
    if (http.quiet)
        return;
    // Last guard against forged lines: whatever a caller passed, no control byte or non-ASCII
    // byte reaches the log raw (client fields are escaped earlier, escape_log_field).
    std::string out;
    out.reserve(line.size() + 1);
    for (const char ch : line) {
        const auto b = static_cast<unsigned char>(ch);
        if (b < 0x20 || b >= 0x7F) {
            out += fmt::format("\\x{:02X}", b);
        } else {
            out += ch;
        }
    }
    out += '\n';
    if (log_file.fd < 0) {
        std::lock_guard lock{log_mutex};
        std::cerr << out;
        return;
    }
    // Issue 12 §3: while the threads run, lines collect and go out in one write(2) at most 20 ms
    // after the first of them (or at 64 KiB); stop() writes the rest.
    bool schedule = false;
    {
        std::lock_guard lock{log_mutex};
        schedule = log_buffer.empty() && log_batching;
        log_buffer += out;
        if (!log_batching || log_buffer.size() >= 64 * 1024) {
            write_log_locked();
            schedule = false;
        }
    }
    if (schedule) {
        // Within 20 ms (one write for every line until then), on the network thread.
        net::post(net_ctx, [this] {
            log_timer.expires_after(std::chrono::milliseconds{20});
            log_timer.async_wait([this](boost::system::error_code) { flush_log(); });
        });
    }
}

void server::impl::flush_log() {
    std::lock_guard lock{log_mutex};
    write_log_locked();
}

void server::impl::write_log_locked() {
    // Whole lines on an O_APPEND descriptor: lines never interleave.
    std::size_t done = 0;
    while (done < log_buffer.size()) {
        const auto n = ::write(log_file.fd, log_buffer.data() + done, log_buffer.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += static_cast<std::size_t>(n);
    }
    log_buffer.clear();
}

void server::impl::republish(bool before_start) {
    std::shared_ptr<const static_answers> now_ready;
    try {
        now_ready = engine->prepared_static(clock.now());
    } catch (const std::exception&) {
        now_ready = nullptr;  // every static request asks the engine, which reports the error
    }
    if (now_ready == published)
        return;
    published = now_ready;
    auto made = now_ready ? detail::make_static_responses(*now_ready) : nullptr;
    if (before_start) {
        statics = std::move(made);
        return;
    }
    net::post(net_ctx, [this, made = std::move(made)]() mutable { statics = std::move(made); });
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
            engine->record_clock(now);  // issue 11 §2.7: the store's clock high-water mark
            republish();
            const auto real = clock.to_real(next - now);
            next_wait = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(real),
                                   std::chrono::milliseconds{1}, std::chrono::milliseconds{1000});
        } catch (const std::exception& e) {
            log(fmt::format("{} tick failed: {}", timers::to_iso8601(clock.now()), e.what()));
        }
        schedule_tick(next_wait);
    });
}

// ---------------------------------------------------------------------------------------------
// Issue 12 §3: PKIOperation on the workers, the store on the engine thread, in batches.

namespace {
http_answer internal_error(const std::exception& e) {
    return internal_error_answer(std::string{"internal: "} + e.what());
}
}  // namespace

void server::impl::pki_operation(bytes der, std::function<void(http_answer)> done) {
    net::post(workers, [this, der = std::move(der), done = std::move(done)]() mutable {
        pki_item item{nullptr, std::move(done)};
        try {
            item.job = engine->pki_prepare(std::move(der));
        } catch (const std::exception& e) {
            return item.done(internal_error(e));
        }
        bool post = false;
        {
            std::lock_guard lock{pki_mutex};
            pki_ready.push_back(std::move(item));
            post = !std::exchange(pki_drain_posted, true);
        }
        if (post)
            net::post(engine_ctx, [this] { drain_pki(); });
    });
}

void server::impl::drain_pki() {
    // Everything decoded since the last batch is one batch: while the engine thread commits
    // one, the workers decode the next (group commit forms by itself under load, and a lone
    // request is never held back waiting for company).
    std::vector<pki_item> batch;
    {
        std::lock_guard lock{pki_mutex};
        batch.swap(pki_ready);
        pki_drain_posted = false;
    }
    std::vector<std::unique_ptr<pki_job>> jobs;
    jobs.reserve(batch.size());
    for (auto& item : batch)
        jobs.push_back(std::move(item.job));
    std::optional<http_answer> failed;
    try {
        engine->pki_process(jobs);
    } catch (const std::exception& e) {
        failed = internal_error(e);
    }
    // What the batch changed (a switchover it ran into) reaches the static answers before any
    // of its CertReps goes out: this post to the network thread precedes theirs.
    republish();
    for (std::size_t n = 0; n < batch.size(); ++n) {
        batch[n].job = std::move(jobs[n]);
        net::post(workers, [this, item = std::move(batch[n]), failed]() mutable {
            http_answer a;
            if (failed) {
                a = *failed;
            } else {
                try {
                    a = engine->pki_finish(*item.job);
                } catch (const std::exception& e) {
                    a = internal_error(e);
                }
            }
            item.job.reset();
            item.done(std::move(a));
        });
    }
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
    i.log_batching = true;
    // Before either thread runs: the first static answers are served from prepared bytes too.
    i.republish(true);
    i.net_guard.emplace(i.net_ctx.get_executor());
    i.engine_guard.emplace(i.engine_ctx.get_executor());
    net::post(i.net_ctx, [&i] {
        i.do_accept();
        i.do_admin_accept();
        i.do_metrics_accept();
        i.do_ocsp_accept();
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
        i.ocsp_acceptor.close(ec);
        i.deaf_timer.cancel();
        i.accept_backoff_timer.cancel();
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
    // What the workers still run ends here; what they would have posted is dropped with the
    // loops (no CertRep leaves after stop).
    i.workers.stop();
    i.workers.join();
    // Every line logged before the stop is written.
    i.log_batching = false;
    if (i.log_file.fd >= 0)
        i.flush_log();
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

std::string server::ocsp_address() const {
    if (!impl_->ocsp_acceptor.is_open())
        return {};
    const auto ep = impl_->ocsp_acceptor.local_endpoint();
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
