// The `pkisim bench` load generator: options, preparation and the event loop (see bench.hpp).
//
// Per thread one io_context and `concurrency / threads` slots. A slot is one client: it
// connects (or reuses its keep-alive connection), writes a pre-built request, reads the answer
// with a Beast parser, classifies it and records the latency in a histogram. Every wait has a
// deadline (one steady_timer per slot) so that a deaf server ends as connect or read timeouts,
// never as a hung run. The per-request path allocates nothing but the parser's body.
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include "bench_plan.hpp"

namespace pkisim::loadgen {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// Names.

std::string_view to_string(bench_mode m) noexcept {
    switch (m) {
        case bench_mode::connect:
            return "connect";
        case bench_mode::keepalive:
            return "keepalive";
        case bench_mode::enroll:
            return "enroll";
        case bench_mode::mix:
            return "mix";
    }
    return "?";
}

std::string_view to_string(operation o) noexcept {
    switch (o) {
        case operation::get_ca_cert:
            return "GetCACert";
        case operation::get_ca_caps:
            return "GetCACaps";
        case operation::get_next_ca_cert:
            return "GetNextCACert";
        case operation::path:
            return "path";
        case operation::enroll:
            return "enroll";
    }
    return "?";
}

std::string_view to_string(outcome o) noexcept {
    switch (o) {
        case outcome::http_2xx:
            return "http_2xx";
        case outcome::http_3xx:
            return "http_3xx";
        case outcome::http_4xx:
            return "http_4xx";
        case outcome::http_5xx:
            return "http_5xx";
        case outcome::scep_success:
            return "scep_success";
        case outcome::scep_pending:
            return "scep_pending";
        case outcome::scep_failure_bad_alg:
            return "scep_failure_badAlg";
        case outcome::scep_failure_bad_message_check:
            return "scep_failure_badMessageCheck";
        case outcome::scep_failure_bad_request:
            return "scep_failure_badRequest";
        case outcome::scep_failure_bad_time:
            return "scep_failure_badTime";
        case outcome::scep_failure_bad_cert_id:
            return "scep_failure_badCertId";
        case outcome::bad_response:
            return "bad_response";
        case outcome::refused:
            return "refused";
        case outcome::reset:
            return "reset";
        case outcome::connect_timeout:
            return "connect_timeout";
        case outcome::read_timeout:
            return "read_timeout";
        case outcome::other:
            return "other";
        case outcome::count_:
            break;
    }
    return "?";
}

bool is_success(outcome o) noexcept {
    return o == outcome::http_2xx || o == outcome::scep_success || o == outcome::scep_pending;
}

double bench_result::throughput() const {
    const double s = std::chrono::duration<double>(elapsed).count();
    return s > 0 ? static_cast<double>(completed) / s : 0.0;
}

std::uint64_t bench_result::successes() const {
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < outcome_count; ++i) {
        if (is_success(static_cast<outcome>(i))) {
            n += outcomes[i];
        }
    }
    return n;
}

tl::expected<operation, std::string> parse_operation(std::string_view name) {
    auto eq = [&](std::string_view w) {
        return name.size() == w.size() &&
               std::equal(name.begin(), name.end(), w.begin(), [](char a, char b) {
                   return std::tolower(static_cast<unsigned char>(a)) ==
                          std::tolower(static_cast<unsigned char>(b));
               });
    };
    if (eq("GetCACert")) {
        return operation::get_ca_cert;
    }
    if (eq("GetCACaps")) {
        return operation::get_ca_caps;
    }
    if (eq("GetNextCACert")) {
        return operation::get_next_ca_cert;
    }
    if (eq("path")) {
        return operation::path;
    }
    if (eq("enroll") || eq("PKCSReq")) {
        return operation::enroll;
    }
    return tl::unexpected(fmt::format(
        "unknown operation '{}': expected GetCACert, GetCACaps, GetNextCACert, path or enroll",
        name));
}

tl::expected<std::vector<mix_weight>, std::string> parse_mix(std::string_view text) {
    std::vector<mix_weight> out;
    while (!text.empty()) {
        const auto comma = text.find(',');
        std::string_view item = text.substr(0, comma);
        text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
        if (item.empty()) {
            continue;
        }
        mix_weight w;
        std::string_view name = item;
        if (const auto colon = item.find(':'); colon != std::string_view::npos) {
            name = item.substr(0, colon);
            const std::string number{item.substr(colon + 1)};
            char* end = nullptr;
            const unsigned long v = std::strtoul(number.c_str(), &end, 10);
            if (number.empty() || *end != '\0' || v == 0 || v > 1'000'000) {
                return tl::unexpected(fmt::format(
                    "--mix '{}': the weight must be a whole number from 1 to 1000000", item));
            }
            w.weight = static_cast<unsigned>(v);
        }
        auto op = parse_operation(name);
        if (!op) {
            return tl::unexpected("--mix: " + op.error());
        }
        w.op = *op;
        out.push_back(w);
    }
    if (out.empty()) {
        return tl::unexpected(
            std::string{"--mix needs NAME[:WEIGHT],... e.g. GetCACert:8,enroll:1"});
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// Preparation.

void bench_plan_deleter::operator()(bench_plan* p) const noexcept {
    delete p;
}

std::string_view plan_description(const bench_plan& plan) {
    return plan.description;
}

namespace {

bool uses_enroll(const bench_options& o) {
    if (o.mode == bench_mode::enroll) {
        return true;
    }
    if (o.mode == bench_mode::mix) {
        return std::any_of(o.mix.begin(), o.mix.end(),
                           [](const mix_weight& w) { return w.op == operation::enroll; });
    }
    return false;
}

std::string usage(std::string text) {
    return "usage: " + std::move(text);
}

}  // namespace

tl::expected<bench_plan_ptr, std::string> prepare_bench(const bench_options& o) {
    if (o.concurrency == 0 || o.concurrency > 100'000) {
        return tl::unexpected(usage("--concurrency must be 1..100000"));
    }
    if (o.threads == 0 || o.threads > 64 || o.threads > o.concurrency) {
        return tl::unexpected(usage("--threads must be 1..64 and at most --concurrency"));
    }
    if (o.duration.count() <= 0 && o.requests == 0) {
        return tl::unexpected(usage("a run needs a bound: --duration and/or --requests"));
    }
    if (o.duration > std::chrono::hours{24}) {
        return tl::unexpected(usage("--duration is at most 24 h"));
    }
    if (o.rate && (!std::isfinite(*o.rate) || *o.rate <= 0 || *o.rate > 10'000'000)) {
        return tl::unexpected(usage("--rate must be a positive number of requests per second"));
    }
    if (o.mode == bench_mode::mix && o.mix.empty()) {
        return tl::unexpected(usage("--mode mix needs --mix NAME:WEIGHT,..."));
    }
    const bool needs_path =
        o.op == operation::path || std::any_of(o.mix.begin(), o.mix.end(), [](const mix_weight& w) {
            return w.op == operation::path;
        });
    if ((o.mode == bench_mode::connect || o.mode == bench_mode::keepalive) &&
        o.op == operation::enroll) {
        return tl::unexpected(usage("enrollments are --mode enroll (or part of --mode mix)"));
    }
    if (needs_path && (o.path.empty() || o.path.front() != '/')) {
        return tl::unexpected(usage("the operation 'path' needs --path /SOMETHING"));
    }
    if (o.method != "auto" && o.method != "get" && o.method != "post") {
        return tl::unexpected(usage("--method must be auto, get or post"));
    }

    bench_plan_ptr plan{new bench_plan};
    try {
        plan->client = std::make_unique<scep::scep_client>(bench_client_options(o));
    } catch (const std::exception& e) {
        return tl::unexpected(usage(e.what()));
    }
    const auto& c = *plan->client;
    asio::io_context io;
    tcp::resolver resolver{io};
    boost::system::error_code ec;
    auto results = resolver.resolve(c.host(), c.port(), ec);
    if (ec || results.empty()) {
        return tl::unexpected(fmt::format("cannot resolve {}: {}", c.host(), ec.message()));
    }
    plan->endpoint = results.begin()->endpoint();
    if (!plan->endpoint.address().is_loopback() && !o.allow_remote) {
        return tl::unexpected(usage(fmt::format(
            "{} is not a loopback address; pkisim bench loads only servers on this machine "
            "unless --allow-remote says the target is yours",
            plan->endpoint.address().to_string())));
    }
    plan->host_header = c.host() + ":" + c.port();
    const std::string targets[5] = {
        c.target("GetCACert", o.ca_identifier),
        c.target("GetCACaps", o.ca_identifier),
        c.target("GetNextCACert", o.ca_identifier),
        o.path,
        {},
    };
    for (int i = 0; i < 4; ++i) {
        plan->request_10[i] = make_http_request(*plan, false, targets[i], nullptr, true);
        plan->request_11[i] = make_http_request(*plan, false, targets[i], nullptr, false);
    }
    if (uses_enroll(o)) {
        if (auto r = prepare_enrollment(*plan, o); !r) {
            return tl::unexpected(r.error());
        }
    }
    std::string what;
    switch (o.mode) {
        case bench_mode::connect:
        case bench_mode::keepalive:
            what = fmt::format("{} {}", o.op == operation::path ? o.path : to_string(o.op),
                               o.op == operation::path ? "" : targets[static_cast<int>(o.op)]);
            break;
        case bench_mode::enroll:
            what =
                fmt::format("{} ({} {}, {} pre-built, {} keys)", o.renew ? "RenewalReq" : "PKCSReq",
                            plan->post ? "POST" : "GET", plan->poll_target,
                            plan->enrollments.size(), plan->identities.size());
            break;
        case bench_mode::mix:
            for (const auto& w : o.mix) {
                what += fmt::format("{}{}:{}", what.empty() ? "" : ",", to_string(w.op), w.weight);
            }
            break;
    }
    plan->description = fmt::format("{} {} -> {}:{}", to_string(o.mode), what,
                                    plan->endpoint.address().to_string(), plan->endpoint.port());
    return plan;
}

// ---------------------------------------------------------------------------------------------
// The event loop.

namespace {

// State shared by the threads of one run.
struct shared_run {
    steady::time_point t0;       // the clock starts (warm-up begins)
    steady::time_point measure;  // warm-up ends
    std::optional<steady::time_point> end;
    std::uint64_t requests = 0;  // measured requests, 0 = unbounded
    std::atomic<std::uint64_t> measured_started{0};
    std::atomic<bool> pool_exhausted{false};
    std::atomic<std::uint64_t> done_total{0};  // for the progress line
    std::atomic<std::uint64_t> ok_total{0};
    std::atomic<std::uint64_t> error_total{0};
};

std::uint64_t splitmix64(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

bool is_reset(const boost::system::error_code& ec) {
    return ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
           ec == asio::error::eof || ec == asio::error::connection_aborted ||
           ec == http::error::end_of_stream || ec == http::error::partial_message;
}

class engine {
  public:
    engine(bench_plan& plan, const bench_options& o, shared_run& run, unsigned id,
           unsigned concurrency)
        : plan_{plan}, o_{o}, run_{run}, id_{id}, pace_{io_}, stop_timer_{io_} {
        rng_ = o.seed * 0x100000001b3ull + id;
        for (const auto& w : o.mix) {
            total_weight_ += w.weight;
        }
        slots_.reserve(concurrency);
        for (unsigned i = 0; i < concurrency; ++i) {
            slots_.push_back(std::make_unique<slot>(io_));
        }
        if (o.rate) {
            period_ns_ = 1e9 / *o.rate;
        }
    }

    void run() {
        if (run_.end) {
            stop_timer_.expires_at(*run_.end);
            stop_timer_.async_wait([this](const boost::system::error_code& ec) {
                if (!ec) {
                    stop_all("duration");
                }
            });
        }
        if (o_.rate) {
            for (auto& s : slots_) {
                free_.push_back(s.get());
            }
            pump();
        } else {
            for (auto& s : slots_) {
                start_next(*s, steady::now());
            }
        }
        maybe_finish();
        io_.run();
    }

    // Results (read after run()).
    bench_result result;
    std::vector<histogram> second_hist;
    std::string stop_reason;
    steady::time_point last_completion{};

  private:
    enum class phase { idle, connecting, exchanging, poll_wait };
    struct slot {
        // Room for a whole GetCACert answer in one read(2) (Beast reads at most the free
        // capacity, 512 bytes on a fresh buffer).
        explicit slot(asio::io_context& io) : sock{io}, timer{io} { buffer.reserve(16384); }
        tcp::socket sock;
        asio::steady_timer timer;
        beast::flat_buffer buffer;
        std::optional<http::response_parser<http::string_body>> parser;
        steady::time_point intended;
        operation op = operation::get_ca_cert;
        const prepared_enrollment* enrollment = nullptr;
        std::string poll_request;
        const std::string* request = nullptr;
        unsigned polls = 0;
        std::uint64_t generation = 0;
        phase state = phase::idle;
        bool timed_out = false;
        bool measured = false;
    };

    bool keepalive() const { return o_.mode == bench_mode::keepalive; }

    operation pick_operation() {
        if (o_.mode == bench_mode::enroll) {
            return operation::enroll;
        }
        if (o_.mode != bench_mode::mix) {
            return o_.op;
        }
        std::uint64_t r = splitmix64(rng_) % total_weight_;
        for (const auto& w : o_.mix) {
            if (r < w.weight) {
                return w.op;
            }
            r -= w.weight;
        }
        return o_.mix.back().op;
    }

    // Takes the next request for `s`, due at `intended`. False when the run has no more.
    bool acquire(slot& s, steady::time_point intended) {
        if (stopping_) {
            return false;
        }
        s.measured = intended >= run_.measure;
        if (s.measured && run_.requests &&
            run_.measured_started.fetch_add(1, std::memory_order_relaxed) >= run_.requests) {
            finish_issuing("requests");
            return false;
        }
        s.op = pick_operation();
        s.enrollment = nullptr;
        s.polls = 0;
        if (s.op == operation::enroll) {
            const std::size_t i = plan_.next_enrollment.fetch_add(1, std::memory_order_relaxed);
            if (i >= plan_.enrollments.size()) {
                run_.pool_exhausted = true;
                finish_issuing("pool exhausted");
                return false;
            }
            s.enrollment = &plan_.enrollments[i];
            s.request = &s.enrollment->http;
        } else {
            const auto i = static_cast<std::size_t>(s.op);
            s.request = keepalive() ? &plan_.request_11[i] : &plan_.request_10[i];
        }
        s.intended = intended;
        if (s.measured) {
            ++result.sent;
        }
        return true;
    }

    void start_next(slot& s, steady::time_point intended) {
        if (!acquire(s, intended)) {
            s.state = phase::idle;
            return;
        }
        ++busy_;
        issue(s);
    }

    // Open loop: start every request that is due while a slot is free.
    void pump() {
        while (!stopping_ && !free_.empty()) {
            const auto due =
                run_.t0 + std::chrono::nanoseconds{static_cast<std::int64_t>(std::llround(
                              (static_cast<double>(next_index_) * o_.threads + id_) * period_ns_))};
            const auto now = steady::now();
            if (due > now) {
                if (!pace_armed_) {
                    pace_armed_ = true;
                    pace_.expires_at(due);
                    pace_.async_wait([this](const boost::system::error_code& ec) {
                        pace_armed_ = false;
                        if (!ec) {
                            pump();
                        }
                    });
                }
                return;
            }
            slot* s = free_.back();
            free_.pop_back();
            if (!acquire(*s, due)) {
                free_.push_back(s);
                return;
            }
            ++next_index_;
            ++busy_;
            issue(*s);
        }
    }

    void arm(slot& s, std::chrono::nanoseconds after) {
        s.timed_out = false;
        s.timer.expires_after(after);
        s.timer.async_wait(
            [this, &s, gen = s.generation, st = s.state](const boost::system::error_code& ec) {
                if (ec || gen != s.generation || st != s.state) {
                    return;
                }
                if (s.state == phase::poll_wait) {
                    s.poll_request = plan_.cert_poll_request(*s.enrollment);
                    s.request = &s.poll_request;
                    ++s.polls;
                    ++polls_;
                    connect(s);
                    return;
                }
                s.timed_out = true;
                boost::system::error_code ignored;
                s.sock.close(ignored);
            });
    }

    void issue(slot& s) {
        if (keepalive() && s.sock.is_open()) {
            ++s.generation;
            send(s);
        } else {
            connect(s);
        }
    }

    void connect(slot& s) {
        ++s.generation;
        boost::system::error_code ec;
        if (s.sock.is_open()) {
            s.sock.close(ec);
        }
        s.sock.open(plan_.endpoint.protocol(), ec);
        if (ec) {
            // Out of file descriptors, ...: through the loop, so a run of failures cannot
            // recurse.
            asio::post(io_, [this, &s] { complete(s, outcome::other); });
            return;
        }
        s.state = phase::connecting;
        arm(s, o_.connect_timeout);
        // connect(2) by hand and wait for writability: Asio's async_connect adds a poll(2)
        // per connection, which is measurable at tens of thousands of connections a second.
        s.sock.non_blocking(true, ec);
        if (::connect(s.sock.native_handle(), plan_.endpoint.data(),
                      static_cast<socklen_t>(plan_.endpoint.size())) == 0) {
            return on_connected(s, {});
        }
        if (errno != EINPROGRESS) {
            const boost::system::error_code e{errno, asio::error::get_system_category()};
            asio::post(io_, [this, &s, e] { on_connected(s, e); });
            return;
        }
        s.sock.async_wait(tcp::socket::wait_write, [this, &s](boost::system::error_code e) {
            if (!e) {
                int err = 0;
                socklen_t len = sizeof err;
                if (::getsockopt(s.sock.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
                    err = errno;
                }
                if (err != 0) {
                    e = boost::system::error_code{err, asio::error::get_system_category()};
                }
            }
            on_connected(s, e);
        });
    }

    void on_connected(slot& s, const boost::system::error_code& e) {
        if (stopping_) {
            return drop(s);
        }
        if (e) {
            outcome oc = outcome::other;
            if (s.timed_out || e == asio::error::timed_out) {
                oc = outcome::connect_timeout;
            } else if (e == asio::error::connection_refused) {
                oc = outcome::refused;
            } else if (is_reset(e)) {
                oc = outcome::reset;
            }
            return complete(s, oc);
        }
        if (s.measured) {
            ++result.connections;
        }
        send(s);
    }

    void send(slot& s) {
        s.state = phase::exchanging;
        arm(s, o_.read_timeout);
        s.parser.emplace();
        s.parser->body_limit(4 * 1024 * 1024);
        asio::async_write(
            s.sock, asio::buffer(*s.request),
            [this, &s](const boost::system::error_code& e, std::size_t) {
                if (stopping_) {
                    return drop(s);
                }
                if (e) {
                    return complete(s, s.timed_out   ? outcome::read_timeout
                                       : is_reset(e) ? outcome::reset
                                                     : outcome::other);
                }
                // Wait for the answer before reading: no read(2) that can
                // only say EAGAIN.
                s.sock.async_wait(
                    tcp::socket::wait_read, [this, &s](const boost::system::error_code& e2) {
                        if (e2) {
                            return on_answer(s, e2);
                        }
                        http::async_read(s.sock, s.buffer, *s.parser,
                                         [this, &s](const boost::system::error_code& e3,
                                                    std::size_t) { on_answer(s, e3); });
                    });
            });
    }

    void on_answer(slot& s, const boost::system::error_code& e) {
        if (stopping_) {
            return drop(s);
        }
        if (e) {
            s.buffer.clear();
            return complete(s, s.timed_out   ? outcome::read_timeout
                               : is_reset(e) ? outcome::reset
                                             : outcome::other);
        }
        auto& msg = s.parser->get();
        const unsigned status = msg.result_int();
        outcome oc = outcome::other;
        if (status >= 200 && status < 300) {
            oc = s.enrollment ? plan_.classify_cert_rep(msg.body(), *s.enrollment)
                              : outcome::http_2xx;
        } else if (status >= 300 && status < 400) {
            oc = outcome::http_3xx;
        } else if (status >= 400 && status < 500) {
            oc = outcome::http_4xx;
        } else if (status >= 500 && status < 600) {
            oc = outcome::http_5xx;
        }
        const bool keep = keepalive() && s.parser->keep_alive();
        if (!keep) {
            boost::system::error_code ignored;
            s.sock.close(ignored);
            s.buffer.clear();
        }
        if (oc == outcome::scep_pending && o_.poll && s.polls < o_.max_polls) {
            // IOS `enrollment retry period`: the client waits, then sends CertPoll.
            ++s.generation;
            s.state = phase::poll_wait;
            arm(s, o_.poll_interval);
            return;
        }
        complete(s, oc);
    }

    // The run is over for this slot without a result (stopped at the deadline).
    void drop(slot& s) {
        s.state = phase::idle;
        if (busy_ > 0) {
            --busy_;
        }
        maybe_finish();
    }

    void complete(slot& s, outcome oc) {
        const auto now = steady::now();
        s.state = phase::idle;
        --busy_;
        const bool ok = is_success(oc);
        run_.done_total.fetch_add(1, std::memory_order_relaxed);
        (ok ? run_.ok_total : run_.error_total).fetch_add(1, std::memory_order_relaxed);
        if (s.measured && (!run_.end || now <= *run_.end)) {
            const auto ns =
                static_cast<std::uint64_t>(std::max<std::int64_t>(0, (now - s.intended).count()));
            ++result.completed;
            ++result.outcomes[static_cast<std::size_t>(oc)];
            result.latency.record(ns);
            if (ok) {
                result.success_latency.record(ns);
            }
            const auto sec = static_cast<std::size_t>(
                std::chrono::duration_cast<std::chrono::seconds>(now - run_.measure).count());
            if (sec >= result.seconds.size()) {
                result.seconds.resize(sec + 1);
                while (second_hist.size() <= sec) {
                    second_hist.emplace_back(7, 44);
                }
            }
            ++result.seconds[sec].outcomes[static_cast<std::size_t>(oc)];
            ++result.seconds[sec].completed;
            second_hist[sec].record(ns);
            last_completion = now;
        } else if (!s.measured) {
            ++result.warmup_completed;
        }
        if (o_.rate) {
            free_.push_back(&s);
            pump();
        } else {
            start_next(s, now);
        }
        maybe_finish();
    }

    void finish_issuing(std::string_view why) {
        if (stop_reason.empty()) {
            stop_reason = std::string{why};
        }
        issuing_done_ = true;
    }

    void stop_all(std::string_view why) {
        if (stop_reason.empty()) {
            stop_reason = std::string{why};
        }
        stopping_ = true;
        for (auto& s : slots_) {
            if (s->state != phase::idle) {
                if (s->measured) {
                    ++result.unfinished;
                }
                if (s->state == phase::poll_wait) {
                    s->state = phase::idle;
                    --busy_;
                }
            }
            boost::system::error_code ignored;
            s->sock.close(ignored);
            s->timer.cancel();
        }
        pace_.cancel();
        maybe_finish();
    }

    void maybe_finish() {
        if (busy_ == 0 && (stopping_ || issuing_done_)) {
            if (!stopping_) {
                stopping_ = true;
                for (auto& s : slots_) {
                    boost::system::error_code ignored;
                    s->sock.close(ignored);
                    s->timer.cancel();
                }
            }
            pace_.cancel();
            stop_timer_.cancel();
        }
    }

  public:
    std::uint64_t polls_ = 0;

  private:
    bench_plan& plan_;
    const bench_options& o_;
    shared_run& run_;
    unsigned id_;
    asio::io_context io_{1};
    std::vector<std::unique_ptr<slot>> slots_;
    std::vector<slot*> free_;
    asio::steady_timer pace_;
    asio::steady_timer stop_timer_;
    bool pace_armed_ = false;
    double period_ns_ = 0;
    std::uint64_t next_index_ = 0;
    std::uint64_t rng_ = 0;
    std::uint64_t total_weight_ = 0;
    std::size_t busy_ = 0;
    bool stopping_ = false;
    bool issuing_done_ = false;
};

}  // namespace

bench_result run_bench(bench_plan& plan, const bench_options& o) {
    shared_run run;
    run.requests = o.requests;
    plan.next_enrollment = 0;
    std::vector<std::unique_ptr<engine>> engines;
    for (unsigned t = 0; t < o.threads; ++t) {
        const unsigned c = o.concurrency / o.threads + (t < o.concurrency % o.threads ? 1 : 0);
        engines.push_back(std::make_unique<engine>(plan, o, run, t, c));
    }
    // A few milliseconds for the threads to start before the first request is due.
    run.t0 = steady::now() + std::chrono::milliseconds{5};
    run.measure = run.t0 + o.warmup;
    if (o.duration.count() > 0) {
        run.end = run.measure + o.duration;
    }

    std::mutex m;
    std::condition_variable cv;
    unsigned running = o.threads;
    std::vector<std::thread> threads;
    for (auto& e : engines) {
        threads.emplace_back([&, eng = e.get()] {
            std::this_thread::sleep_until(run.t0);
            eng->run();
            std::lock_guard lock{m};
            --running;
            cv.notify_all();
        });
    }
    {
        std::unique_lock lock{m};
        auto next = run.t0 + std::chrono::seconds{1};
        std::uint64_t last_done = 0;
        while (running > 0) {
            if (cv.wait_until(lock, next, [&] { return running == 0; })) {
                break;
            }
            if (o.progress) {
                const auto done = run.done_total.load(std::memory_order_relaxed);
                const double t = std::chrono::duration<double>(steady::now() - run.measure).count();
                o.progress(fmt::format("{:7.1f} s  {:9.0f} /s  done {}  ok {}  errors {}", t,
                                       static_cast<double>(done - last_done), done,
                                       run.ok_total.load(), run.error_total.load()));
                last_done = done;
            }
            next += std::chrono::seconds{1};
        }
    }
    for (auto& t : threads) {
        t.join();
    }

    bench_result r;
    std::vector<histogram> second_hist;
    steady::time_point last{};
    for (auto& e : engines) {
        auto& er = e->result;
        r.completed += er.completed;
        r.sent += er.sent;
        r.unfinished += er.unfinished;
        r.warmup_completed += er.warmup_completed;
        r.connections += er.connections;
        r.polls += e->polls_;
        for (std::size_t i = 0; i < outcome_count; ++i) {
            r.outcomes[i] += er.outcomes[i];
        }
        r.latency.merge(er.latency);
        r.success_latency.merge(er.success_latency);
        if (er.seconds.size() > r.seconds.size()) {
            r.seconds.resize(er.seconds.size());
        }
        while (second_hist.size() < e->second_hist.size()) {
            second_hist.emplace_back(7, 44);
        }
        for (std::size_t s = 0; s < er.seconds.size(); ++s) {
            for (std::size_t i = 0; i < outcome_count; ++i) {
                r.seconds[s].outcomes[i] += er.seconds[s].outcomes[i];
            }
            r.seconds[s].completed += er.seconds[s].completed;
            second_hist[s].merge(e->second_hist[s]);
        }
        last = std::max(last, e->last_completion);
        if (r.stop_reason.empty() || e->stop_reason == "pool exhausted") {
            r.stop_reason = e->stop_reason;
        }
    }
    for (std::size_t s = 0; s < r.seconds.size(); ++s) {
        r.seconds[s].p50_ns = second_hist[s].value_at_percentile(50);
        r.seconds[s].p99_ns = second_hist[s].value_at_percentile(99);
        r.seconds[s].max_ns = second_hist[s].max();
    }
    if (run.end && r.stop_reason == "duration") {
        r.elapsed = *run.end - run.measure;
    } else {
        r.elapsed = last > run.measure ? last - run.measure : std::chrono::nanoseconds{0};
    }
    return r;
}

}  // namespace pkisim::loadgen
