// `pkisim fleet`: virtual IOS clients on one Asio io_context against a real SCEP server.
// The rules are timers/'s (client_renewal, shadow_step, attempt_completion); the counters and
// the report are sim/'s; the SCEP messages are scep_server/'s client codec.
#include "pkisim/loadgen/fleet.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <latch>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <sstream>

#include <date/date.h>
#include <openssl/rand.h>
#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <nlohmann/json.hpp>

#include "pkisim/scep/client.hpp"
#include "pkisim/scep/crypto.hpp"
#include "pkisim/sim/first_enrollments.hpp"
#include "pkisim/timers/client_model.hpp"
#include "pkisim/timers/storm.hpp"
#include "pkisim/timers/timeline.hpp"

namespace pkisim::loadgen {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;

std::string_view to_string(outcome_class c) {
    switch (c) {
        case outcome_class::ok_200:
            return "200";
        case outcome_class::not_found_404:
            return "404";
        case outcome_class::other_status:
            return "other HTTP status";
        case outcome_class::reset:
            return "reset";
        case outcome_class::refused:
            return "refused";
        case outcome_class::connect_timeout:
            return "connect timeout";
        case outcome_class::read_timeout:
            return "read timeout";
        case outcome_class::scep_failure:
            return "SCEP FAILURE";
        case outcome_class::pending:
            return "SCEP PENDING";
        case outcome_class::other:
            return "other";
    }
    return "?";
}

namespace {

double percentile(std::vector<double> v, double p) {
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    const auto i = static_cast<std::size_t>(std::min<double>(
        static_cast<double>(v.size() - 1), std::floor(p * static_cast<double>(v.size() - 1))));
    return v[i];
}

}  // namespace

double latency_stats::p50() const {
    return percentile(samples_ms, 0.5);
}
double latency_stats::p99() const {
    return percentile(samples_ms, 0.99);
}
double latency_stats::max() const {
    return samples_ms.empty() ? 0 : *std::max_element(samples_ms.begin(), samples_ms.end());
}

namespace {

constexpr std::int64_t ms_per_day = 86'400'000;
constexpr std::int64_t ms_per_minute = 60'000;

bool is_loopback_host(const std::string& url) {
    // http://HOST[:port]/...
    auto rest = std::string_view{url};
    if (rest.starts_with("http://"))
        rest.remove_prefix(7);
    std::string host;
    if (!rest.empty() && rest.front() == '[') {
        host = std::string{rest.substr(1, rest.find(']') - 1)};
    } else {
        host = std::string{rest.substr(0, rest.find_first_of(":/"))};
    }
    if (host == "localhost" || host == "::1")
        return true;
    boost::system::error_code ec;
    const auto a = net::ip::make_address(host, ec);
    return !ec && a.is_loopback();
}

struct host_port {
    std::string host;
    std::string port = "80";
};
std::optional<host_port> split_url(const std::string& url) {
    auto rest = std::string_view{url};
    if (!rest.starts_with("http://"))
        return std::nullopt;
    rest.remove_prefix(7);
    rest = rest.substr(0, rest.find('/'));
    host_port hp;
    if (!rest.empty() && rest.front() == '[') {
        const auto close = rest.find(']');
        if (close == std::string_view::npos)
            return std::nullopt;
        hp.host = std::string{rest.substr(1, close - 1)};
        if (close + 1 < rest.size() && rest[close + 1] == ':')
            hp.port = std::string{rest.substr(close + 2)};
    } else {
        const auto colon = rest.find(':');
        hp.host = std::string{rest.substr(0, colon)};
        if (colon != std::string_view::npos)
            hp.port = std::string{rest.substr(colon + 1)};
    }
    if (hp.host.empty() || hp.port.empty())
        return std::nullopt;
    return hp;
}

// What the limiter did to an attempt, as the client can tell (model §3): an answer = accepted;
// a reset or refusal = dropped at max-connections; no answer = ignored while deaf.
enum class seen { accepted, dropped, ignored, other };
seen seen_as(outcome_class c) {
    switch (c) {
        case outcome_class::ok_200:
        case outcome_class::not_found_404:
        case outcome_class::other_status:
        case outcome_class::scep_failure:
        case outcome_class::pending:
            return seen::accepted;
        case outcome_class::reset:
        case outcome_class::refused:
            return seen::dropped;
        case outcome_class::connect_timeout:
        case outcome_class::read_timeout:
            return seen::ignored;
        case outcome_class::other:
            break;
    }
    return seen::other;
}

timers::http_outcome to_http_outcome(outcome_class c) {
    switch (c) {
        case outcome_class::ok_200:
            return timers::http_outcome::ok;
        case outcome_class::not_found_404:
            return timers::http_outcome::not_found;
        case outcome_class::reset:
        case outcome_class::refused:
            return timers::http_outcome::refused;
        case outcome_class::connect_timeout:
        case outcome_class::read_timeout:
            return timers::http_outcome::timed_out;
        case outcome_class::pending:
            return timers::http_outcome::pending;
        default:
            return timers::http_outcome::failure;
    }
}

enum class phase { enroll, get_next_ca, rollover_enroll, switchover, down };

struct vclient {
    std::size_t id = 0;
    std::uint16_t group = 0;
    phase ph = phase::enroll;
    std::size_t gen = 0;  // CA generation of the current certificate
    timers::validity cert{};
    scep::x509_ptr cert_x;
    EVP_PKEY* key = nullptr;
    bool in_loop = false;
    bool hit_404 = false;
    time_point first_404{};
    int tries = 0;
    std::unique_ptr<net::steady_timer> timer;
    scep::x509_ptr rollover_cert;
    bool probed = false;
    // Precomputed before the clock starts (they do not depend on the CA): the PKCS#10 and the
    // self-signed signer, two of the four RSA private-key operations of an enrollment.
    scep::x509_req_ptr csr;
    scep::bytes csr_der;
    scep::x509_ptr signer;
};

// One enrollment in flight (PKCSReq, then CertPoll while PENDING). The RSA/CMS work runs on
// cpu_pool_; the connection is asynchronous on the io_context, so enrollments of different
// clients overlap on the wire as IOS routers' do.
struct enroll_job {
    vclient* c = nullptr;
    bool rollover = false;
    time_point started{};
    steady::time_point fired{};
    std::shared_ptr<const scep::ca_certs> ca;
    X509* signer_cert = nullptr;  // signs the request; the CertRep is encrypted to it
    EVP_PKEY* signer_key = nullptr;
    bool renewal = false;
    std::string transaction_id;
    scep::bytes nonce;
    unsigned polls_left = 0;
    bool first_sent = false;
};
using enroll_job_ptr = std::shared_ptr<enroll_job>;

struct ca_gen {
    std::shared_ptr<const scep::ca_certs> certs;
    timers::validity validity;
};

class fleet {
  public:
    fleet(const sim::scenario& sc, const fleet_options& o) : sc_(sc), o_(o), rng_(sc.seed) {}

    tl::expected<fleet_result, std::string> run();

  private:
    time_point now() const {
        const auto real = steady::now() - t0_;
        const double model_ms =
            std::chrono::duration<double, std::milli>(real).count() * o_.clock_rate;
        return model_start_ + timers::duration{static_cast<std::int64_t>(model_ms)};
    }
    steady::duration real(timers::duration d) const {
        return std::chrono::duration_cast<steady::duration>(
            std::chrono::duration<double, std::milli>(static_cast<double>(d.count()) /
                                                      o_.clock_rate));
    }
    void at(vclient& c, time_point t, std::function<void()> fn) {
        const auto when = t0_ + real(t - model_start_);
        c.timer->expires_at(when);
        c.timer->async_wait([this, when, fn = std::move(fn)](beast::error_code ec) {
            if (ec || stopping_)
                return;
            // How late the loop runs (a loaded machine): at rate R, R times this in lab time.
            const double late_ms =
                std::chrono::duration<double, std::milli>(steady::now() - when).count();
            sample(r_.timer_lateness, std::max(0.0, late_ms) * o_.clock_rate);
            fn();
        });
    }
    sim::day_counters& day(time_point t) {
        const auto d = std::clamp<std::int64_t>((t - sc_.start).count() / ms_per_day, 0,
                                                static_cast<std::int64_t>(daily_.size()) - 1);
        return daily_[static_cast<std::size_t>(d)];
    }
    void note_attempt(time_point t, seen s) {
        auto& m = minutes_[(t - sc_.start).count() / ms_per_minute];
        ++m.first;
        auto& d = day(t);
        switch (s) {
            case seen::accepted:
                ++m.second;
                ++d.connections_accepted;
                break;
            case seen::dropped:
                ++d.connections_dropped_max_connections;
                break;
            case seen::ignored:
                ++d.connections_ignored_deaf;
                break;
            case seen::other:
                break;
        }
    }
    // Hard cap on connections started per real second: a start over the cap waits for the next
    // second (counted; it would distort the comparison, so the summary says how many).
    steady::duration rate_delay() {
        const auto n = steady::now();
        if (n - rate_second_ >= std::chrono::seconds{1}) {
            rate_second_ = n;
            rate_count_ = 0;
        }
        if (static_cast<double>(++rate_count_) <= o_.max_connections_per_s)
            return steady::duration{0};
        ++r_.delayed_by_rate_cap;
        return std::chrono::seconds{1} - (n - rate_second_);
    }

    void schedule_renewal(vclient& c);
    void start_enroll(vclient& c, bool rollover);
    // One PKCSReq or CertPoll of `j`: message built on cpu_pool_, sent on the io_context,
    // CertRep read on cpu_pool_.
    void send_pki_message(const enroll_job_ptr& j);
    void pki_answer(const enroll_job_ptr& j, outcome_class oc, std::string body);
    void enroll_done(vclient& c, bool rollover, time_point started, outcome_class oc,
                     scep::x509_ptr cert);
    // One HTTP/1.0 GET, one connection (model §2), asynchronous; `done` runs on the io_context
    // with the outcome class and, for an HTTP answer, "status" in `status` and the body.
    using http_done = std::function<void(outcome_class, unsigned status, std::string body)>;
    void http_get(const std::string& target, http_done done);
    // probe: one GetNextCACert outside the state machine (--probe-next-ca), answer recorded.
    void start_get_next_ca(vclient& c, bool probe = false);
    void get_next_ca_done(vclient& c, time_point started, outcome_class oc, std::string body,
                          bool probe);
    void switchover(vclient& c);
    void outage(vclient& c, time_point t);
    void leave_loop(vclient& c) {
        if (c.in_loop) {
            c.in_loop = false;
            --in_loop_;
        }
    }
    void progress_tick();
    tl::expected<void, std::string> sync_clock();
    void stop() {
        if (stopping_)
            return;
        stopping_ = true;
        for (auto& c : clients_)
            c.timer->cancel();
        progress_timer_->cancel();
        ioc_.stop();
    }
    scep::client_options client_options_for(const vclient& c) const {
        auto co = scep::ios_client_options(o_.target, sc_.groups[c.group].trustpoint.name);
        co.exact_path = o_.exact_path;
        co.legacy_crypto = o_.legacy_crypto;
        co.connect_timeout =
            std::chrono::duration_cast<std::chrono::milliseconds>(real(sc_.client.connect_timeout));
        co.read_timeout =
            std::chrono::duration_cast<std::chrono::milliseconds>(real(sc_.client.connect_timeout));
        co.connect_timeout = std::max(co.connect_timeout, std::chrono::milliseconds{1});
        co.read_timeout = std::max(co.read_timeout, std::chrono::milliseconds{1});
        co.now = [this] { return now(); };
        return co;
    }
    void record(const attempt_record& a) {
        if (r_.attempts.size() < 1'000'000)
            r_.attempts.push_back(a);
    }
    void sample(latency_stats& s, double ms) {
        ++s.count;
        if (s.samples_ms.size() < 200'000)
            s.samples_ms.push_back(ms);
    }

    const sim::scenario& sc_;
    const fleet_options& o_;
    std::mt19937_64 rng_;
    net::io_context ioc_;
    // RSA/CMS work of enrollments, one thread per core: CPU only, never a socket.
    std::unique_ptr<net::thread_pool> cpu_pool_;
    std::unique_ptr<scep::scep_client> wire_;  // request targets (immutable)
    int cipher_nid_ = 0;
    int digest_nid_ = 0;
    tcp::endpoint endpoint_;
    std::string next_ca_target_;
    std::string caps_target_;
    steady::time_point t0_;
    time_point model_start_{};
    time_point model_end_{};
    std::vector<ca_gen> gens_;
    scep::ca_caps caps_;
    std::vector<scep::evp_pkey_ptr> keys_;
    std::vector<vclient> clients_;
    std::vector<sim::day_counters> daily_;
    std::map<std::int64_t, std::pair<std::uint64_t, std::uint64_t>> minutes_;
    std::uint64_t in_loop_ = 0;
    std::uint64_t outstanding_ = 0;
    bool stopping_ = false;
    steady::time_point rate_second_{};
    std::uint64_t rate_count_ = 0;
    std::unique_ptr<net::steady_timer> progress_timer_;
    std::set<std::string> answers_;
    fleet_result r_;
};

void fleet::schedule_renewal(vclient& c) {
    const auto& tp = sc_.groups[c.group].trustpoint;
    const auto rp = timers::client_renewal(tp, c.cert, gens_[c.gen].validity.not_after);
    switch (rp.kind) {
        case timers::renewal_kind::renew:
            c.ph = phase::enroll;
            c.tries = 0;
            at(c, rp.at, [this, &c] { start_enroll(c, false); });
            return;
        case timers::renewal_kind::shadow:
            c.ph = phase::get_next_ca;
            at(c, rp.at, [this, &c] { start_get_next_ca(c); });
            return;
        case timers::renewal_kind::none:
            c.ph = phase::down;
            at(c, c.cert.not_after, [this, &c] { outage(c, now()); });
            return;
    }
}

void fleet::outage(vclient& c, time_point t) {
    leave_loop(c);
    c.ph = phase::down;
    ++day(t).clients_outage;
    ++r_.result.clients_outage;
}

void fleet::start_enroll(vclient& c, bool rollover) {
    const auto delay = rate_delay();
    if (delay.count() > 0) {
        c.timer->expires_after(delay);
        c.timer->async_wait([this, &c, rollover](beast::error_code ec) {
            if (!ec && !stopping_)
                start_enroll(c, rollover);
        });
        return;
    }
    auto j = std::make_shared<enroll_job>();
    j->c = &c;
    j->rollover = rollover;
    j->started = now();
    j->fired = steady::now();
    ++day(j->started).enrollment_attempts;
    // The rollover request is encrypted to the shadow CA (model §2.3 GET_NEW_ROUTER_CERT).
    j->ca = rollover ? gens_[c.gen + 1].certs : gens_[c.gen].certs;
    // RENEW is signed with the current certificate (RFC 8894 §2.3, as PKCSReq: scep-wire
    // §0.12); the first enrollment and the rollover request with the self-signed signer.
    j->renewal = c.cert_x && !rollover;
    j->signer_cert = j->renewal ? c.cert_x.get() : c.signer.get();
    j->signer_key = c.key;
    j->transaction_id = scep::transaction_id_for(c.key);
    const auto& tp = sc_.groups[c.group].trustpoint;
    j->polls_left = tp.retry_count > 0 ? static_cast<unsigned>(tp.retry_count) : 10;
    ++outstanding_;
    send_pki_message(j);
}

void fleet::send_pki_message(const enroll_job_ptr& j) {
    net::post(*cpu_pool_, [this, j] {
        vclient& c = *j->c;
        scep::request_params p;
        if (!j->first_sent) {
            p.type = scep::message_type::pkcs_req;
            p.message_data = c.csr_der;
        } else {
            p.type = scep::message_type::cert_poll;
            p.message_data = scep::encode_issuer_and_subject(
                X509_get_subject_name(j->ca->ca.get()), X509_REQ_get_subject_name(c.csr.get()));
        }
        p.signer_cert = j->signer_cert;
        p.signer_key = j->signer_key;
        p.recipients = {j->ca->encryption.get()};
        p.cipher_nid = cipher_nid_;
        p.digest_nid = digest_nid_;
        p.transaction_id = j->transaction_id;
        j->nonce.assign(16, 0);
        RAND_bytes(j->nonce.data(), static_cast<int>(j->nonce.size()));
        p.sender_nonce = j->nonce;
        p.signing_time = now();
        auto msg = scep::encode_pki_request(p);
        std::string target;
        if (msg)
            target = wire_->target("PKIOperation", scep::encode_get_message(*msg, true));
        net::post(ioc_, [this, j, ok = msg.has_value(), target = std::move(target)] {
            if (stopping_)
                return;
            if (!ok) {
                pki_answer(j, outcome_class::other, {});
                return;
            }
            if (!j->first_sent)
                // From the timer to the connection: this machine's share of the enrollment's
                // CPU work (an IOS router does it on its own CPU).
                sample(r_.enroll_prep,
                       std::chrono::duration<double, std::milli>(steady::now() - j->fired).count() *
                           o_.clock_rate);
            j->first_sent = true;
            ++r_.connections;
            http_get(target, [this, j](outcome_class oc, unsigned status, std::string body) {
                if (oc != outcome_class::ok_200 || status != 200) {
                    pki_answer(j, oc, {});
                    return;
                }
                pki_answer(j, outcome_class::ok_200, std::move(body));
            });
        });
    });
}

void fleet::pki_answer(const enroll_job_ptr& j, outcome_class oc, std::string body) {
    if (oc != outcome_class::ok_200) {
        --outstanding_;
        enroll_done(*j->c, j->rollover, j->started, oc, nullptr);
        return;
    }
    // The CertRep: signature by the CA (or RA), decrypted with the signer's key.
    net::post(*cpu_pool_, [this, j, body = std::move(body)] {
        scep::byte_view der{reinterpret_cast<const std::uint8_t*>(body.data()), body.size()};
        auto trusted = j->ca->all();
        scep::decode_options opts;
        opts.allow_legacy = o_.legacy_crypto;
        auto rep = scep::decode_cert_rep(der, j->signer_cert, j->signer_key, trusted, opts);
        outcome_class res = outcome_class::other;
        scep::x509_ptr cert;
        if (rep && rep->transaction_id == j->transaction_id &&
            (rep->recipient_nonce.empty() || rep->recipient_nonce == j->nonce)) {
            switch (rep->status) {
                case scep::pki_status::failure:
                    res = outcome_class::scep_failure;
                    break;
                case scep::pki_status::pending:
                    res = outcome_class::pending;
                    break;
                case scep::pki_status::success:
                    // The issued certificate is the one for our key (certs may carry the chain).
                    for (auto& x : rep->certs)
                        if (!cert && EVP_PKEY_eq(X509_get0_pubkey(x.get()), j->c->key) == 1)
                            cert = std::move(x);
                    res = cert ? outcome_class::ok_200 : outcome_class::other;
                    break;
            }
        }
        net::post(ioc_, [this, j, res, cert = std::move(cert)]() mutable {
            if (stopping_)
                return;
            if (res == outcome_class::pending && j->polls_left > 0) {
                // CertPoll after the enrollment retry period (IOS polls at that interval).
                --j->polls_left;
                const auto& tp = sc_.groups[j->c->group].trustpoint;
                j->c->timer->expires_after(real(tp.retry_period));
                j->c->timer->async_wait([this, j](beast::error_code ec) {
                    if (!ec && !stopping_)
                        send_pki_message(j);
                });
                return;
            }
            --outstanding_;
            enroll_done(*j->c, j->rollover, j->started, res, std::move(cert));
        });
    });
}

void fleet::enroll_done(vclient& c, bool rollover, time_point started, outcome_class oc,
                        scep::x509_ptr cert) {
    const time_point done = now();
    ++r_.enroll_outcomes[static_cast<std::size_t>(oc)];
    record(attempt_record{started, done, static_cast<std::uint32_t>(c.id), true, rollover, oc});
    sample(r_.enroll_latency, static_cast<double>((done - started).count()));
    note_attempt(started, seen_as(oc));
    const auto& tp = sc_.groups[c.group].trustpoint;
    if (oc == outcome_class::ok_200 && cert) {
        ++day(started).enrollments_ok;
        c.tries = 0;
        if (rollover) {
            // SHADOW_READY: the rollover certificate waits for the switchover (§1 rule 7).
            c.rollover_cert = std::move(cert);
            c.ph = phase::switchover;
            at(c, timers::switchover_time(gens_[c.gen].validity.not_after),
               [this, &c] { switchover(c); });
            return;
        }
        c.cert = timers::validity{scep::not_before(cert.get()), scep::not_after(cert.get())};
        c.cert_x = std::move(cert);
        schedule_renewal(c);
        if (o_.probe_next_ca && !c.probed) {
            c.probed = true;
            start_get_next_ca(c, true);
        }
        return;
    }
    ++day(started).enrollments_failed;
    if (rollover) {
        const auto tr =
            timers::shadow_step(timers::shadow_state::get_new_router_cert, to_http_outcome(oc),
                                done, gens_[c.gen].validity.not_after, sc_.client);
        if (tr.state == timers::shadow_state::expired) {
            outage(c, done);
            return;
        }
        at(c, tr.at, [this, &c] { start_enroll(c, true); });
        return;
    }
    ++c.tries;
    if (tp.retry_count > 0 && c.tries > tp.retry_count) {
        if (c.cert_x && c.cert.not_after > done)
            at(c, c.cert.not_after, [this, &c] { outage(c, now()); });
        else
            outage(c, done);
        return;
    }
    // The enrollment retry period, armed when the attempt was over (timers rule, issue 10 §3).
    at(c, done + tp.retry_period, [this, &c] { start_enroll(c, false); });
}

void fleet::http_get(const std::string& target, http_done done) {
    struct exchange {
        explicit exchange(net::io_context& ioc) : stream(ioc) {}
        beast::tcp_stream stream;
        http::request<http::empty_body> req;
        http::response_parser<http::string_body> parser;
        beast::flat_buffer buffer;
    };
    auto x = std::make_shared<exchange>(ioc_);
    x->req = http::request<http::empty_body>{http::verb::get, target, 10};
    x->req.set(http::field::host,
               endpoint_.address().to_string() + ":" + std::to_string(endpoint_.port()));
    x->req.set(http::field::user_agent, scep::ios_user_agent);
    x->parser.body_limit(1 << 20);
    const auto timeout = real(sc_.client.connect_timeout);
    x->stream.expires_after(timeout);
    auto finish = [done = std::move(done)](outcome_class oc, unsigned status, std::string body) {
        done(oc, status, std::move(body));
    };
    x->stream.async_connect(endpoint_, [x, finish, timeout](beast::error_code ec) {
        if (ec) {
            finish(ec == beast::error::timeout            ? outcome_class::connect_timeout
                   : ec == net::error::connection_refused ? outcome_class::refused
                                                          : outcome_class::reset,
                   0, {});
            return;
        }
        // The read gets the same budget: a held connection (the one that tripped the throttle)
        // is not answered before the deaf period ends.
        x->stream.expires_after(timeout);
        http::async_write(x->stream, x->req, [x, finish](beast::error_code wec, std::size_t) {
            if (wec) {
                finish(wec == beast::error::timeout ? outcome_class::read_timeout
                                                    : outcome_class::reset,
                       0, {});
                return;
            }
            http::async_read(
                x->stream, x->buffer, x->parser, [x, finish](beast::error_code rec, std::size_t) {
                    beast::error_code ignored;
                    x->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
                    if (rec) {
                        finish(rec == beast::error::timeout ? outcome_class::read_timeout
                                                            : outcome_class::reset,
                               0, {});
                        return;
                    }
                    const auto st = static_cast<unsigned>(x->parser.get().result_int());
                    const auto oc = st == 200   ? outcome_class::ok_200
                                    : st == 404 ? outcome_class::not_found_404
                                                : outcome_class::other_status;
                    finish(oc, st, std::move(x->parser.get().body()));
                });
        });
    });
}

void fleet::start_get_next_ca(vclient& c, bool probe) {
    const auto delay = rate_delay();
    if (delay.count() > 0 && !probe) {
        c.timer->expires_after(delay);
        c.timer->async_wait([this, &c](beast::error_code ec) {
            if (!ec && !stopping_)
                start_get_next_ca(c);
        });
        return;
    }
    const time_point started = now();
    if (!probe) {
        if (started >= gens_[c.gen].validity.not_after) {
            outage(c, started);
            return;
        }
        if (!c.in_loop) {
            c.in_loop = true;
            ++in_loop_;
            auto& d = day(started);
            ++d.clients_entered_shadow_loop;
            d.peak_clients_in_shadow_loop = std::max(d.peak_clients_in_shadow_loop, in_loop_);
            if (!r_.result.first_get_next_ca_cert_at ||
                started < *r_.result.first_get_next_ca_cert_at)
                r_.result.first_get_next_ca_cert_at = started;
        }
        ++day(started).get_next_ca_cert_requests;
    }
    ++r_.connections;
    ++outstanding_;

    // One connection per request, HTTP/1.0, IOS User-Agent (model §2), asynchronous.
    http_get(next_ca_target_,
             [this, &c, started, probe](outcome_class oc, unsigned st, std::string body) {
                 --outstanding_;
                 if (stopping_)
                     return;
                 if (oc == outcome_class::other_status) {
                     // Keep what the server said, for the answers list.
                     auto b = body.substr(0, 80);
                     std::replace(b.begin(), b.end(), '\n', ' ');
                     body = fmt::format("HTTP {} {}", st, b);
                 }
                 get_next_ca_done(c, started, oc, std::move(body), probe);
             });
}

void fleet::get_next_ca_done(vclient& c, time_point started, outcome_class oc, std::string body,
                             bool probe) {
    const time_point done = now();
    ++r_.get_next_ca_outcomes[static_cast<std::size_t>(oc)];
    if (probe) {
        // --probe-next-ca: what the server answers, outside the IOS state machine.
        note_attempt(started, seen_as(oc));
        if (oc == outcome_class::other_status)
            answers_.insert(body);
        else if (oc == outcome_class::ok_200 || oc == outcome_class::not_found_404)
            answers_.insert(fmt::format("{} ({} bytes)", to_string(oc), body.size()));
        else
            answers_.insert(std::string{to_string(oc)});
        return;
    }
    sample(r_.get_next_ca_latency, static_cast<double>((done - started).count()));
    record(attempt_record{started, done, static_cast<std::uint32_t>(c.id), false, false, oc});
    note_attempt(started, seen_as(oc));
    auto& d = day(done);
    if (oc == outcome_class::not_found_404) {
        ++d.responses_404;
        answers_.insert("404");
        if (!c.hit_404) {
            c.hit_404 = true;
            c.first_404 = done;
            ++d.clients_first_404;
            ++r_.result.clients_hit_404;
        }
        if (!r_.result.first_404_at || done < *r_.result.first_404_at)
            r_.result.first_404_at = done;
        if (!r_.result.last_404_at || done > *r_.result.last_404_at)
            r_.result.last_404_at = done;
    }
    if (oc == outcome_class::ok_200) {
        // A SignedData by the current CA carrying the next CA (RFC 8894 §4.7.1), parsed by
        // scep_server's codec.
        const auto& cur = *gens_[c.gen].certs;
        scep::byte_view der{reinterpret_cast<const std::uint8_t*>(body.data()), body.size()};
        auto trusted = cur.all();
        auto parsed = scep::parse_get_next_ca_cert(der, trusted);
        std::vector<scep::x509_ptr> certs;
        if (parsed)
            certs = !parsed->content_certs.empty() ? std::move(parsed->content_certs)
                                                   : std::move(parsed->outer_certs);
        if (certs.empty()) {
            oc = outcome_class::other;
            answers_.insert("200 (not a valid next-CA answer)");
        } else {
            ++d.responses_200;
            ++d.clients_got_next_ca;
            if (gens_.size() == c.gen + 1) {
                const auto v = timers::validity{scep::not_before(certs.front().get()),
                                                scep::not_after(certs.front().get())};
                auto classified = scep::classify_ca_certs(std::move(certs), "");
                if (!classified) {
                    oc = outcome_class::other;
                } else {
                    gens_.push_back(
                        ca_gen{std::make_shared<const scep::ca_certs>(std::move(*classified)), v});
                    if (!r_.result.shadow_generated_at)
                        r_.result.shadow_generated_at = done;
                }
            }
            if (gens_.size() > c.gen + 1)
                answers_.insert(
                    fmt::format("200 next CA {} valid from {}",
                                scep::subject_string(gens_[c.gen + 1].certs->ca.get()),
                                timers::to_iso8601(gens_[c.gen + 1].validity.not_before)));
        }
    }
    const auto tr = timers::shadow_step(timers::shadow_state::get_new_ca_cert, to_http_outcome(oc),
                                        done, gens_[c.gen].validity.not_after, sc_.client);
    switch (tr.state) {
        case timers::shadow_state::get_new_router_cert:
            leave_loop(c);
            c.ph = phase::rollover_enroll;
            start_enroll(c, true);
            return;
        case timers::shadow_state::expired:
            outage(c, done);
            return;
        default:
            // 404, no answer, reset: GET_NEW_CA_CERT_WAIT_FOR_RETRY, retry armed at `done`.
            at(c, tr.at, [this, &c] { start_get_next_ca(c); });
            return;
    }
}

void fleet::switchover(vclient& c) {
    if (c.gen + 1 >= gens_.size() || !c.rollover_cert) {
        outage(c, now());
        return;
    }
    ++c.gen;
    c.cert = timers::validity{scep::not_before(c.rollover_cert.get()),
                              scep::not_after(c.rollover_cert.get())};
    c.cert_x = std::move(c.rollover_cert);
    c.hit_404 = false;
    schedule_renewal(c);
}

void fleet::progress_tick() {
    if (stopping_)
        return;
    const auto t = now();
    const double real_s = std::chrono::duration<double>(steady::now() - t0_).count();
    if (t >= model_end_ || real_s >= o_.max_duration_s) {
        r_.stopped_by_duration_cap = t < model_end_;
        stop();
        return;
    }
    if (o_.on_progress) {
        std::uint64_t req = 0, n404 = 0, ign = 0, acc = 0;
        for (const auto& d : daily_) {
            req += d.get_next_ca_cert_requests;
            n404 += d.responses_404;
            ign += d.connections_ignored_deaf;
            acc += d.connections_accepted;
        }
        o_.on_progress(fmt::format(
            "fleet: {} (day {}) {:.0f} s real, {} clients in the shadow loop, {} connections, "
            "{} accepted, {} unanswered, {} GetNextCACert, {} x 404",
            timers::to_iso8601(t), (t - sc_.start).count() / ms_per_day, real_s, in_loop_,
            r_.connections, acc, ign, req, n404));
    }
    progress_timer_->expires_after(std::chrono::milliseconds{
        std::clamp<std::int64_t>(static_cast<std::int64_t>(60'000 / o_.clock_rate), 20, 1000)});
    progress_timer_->async_wait([this](beast::error_code ec) {
        if (!ec)
            progress_tick();
    });
}

// The server's clock from its HTTP Date header (RFC 9110 IMF-fixdate, whole seconds): poll
// until the second changes; at that edge the server's clock reads exactly that second.
tl::expected<void, std::string> fleet::sync_clock() {
    const auto interval = std::chrono::duration<double, std::milli>(
        std::clamp(1000.0 / o_.clock_rate / 20.0, 1.0, 50.0));
    std::optional<std::string> first;
    for (int i = 0; i < 60; ++i) {
        beast::tcp_stream stream{ioc_};
        beast::error_code ec;
        stream.expires_after(std::chrono::seconds{2});
        stream.connect(endpoint_, ec);
        ++r_.setup_connections;
        if (ec)
            return tl::unexpected("clock sync: connect: " + ec.message());
        http::request<http::empty_body> req{http::verb::get, caps_target_, 10};
        req.set(http::field::user_agent, scep::ios_user_agent);
        http::write(stream, req, ec);
        beast::flat_buffer buf;
        http::response<http::string_body> res;
        if (!ec)
            http::read(stream, buf, res, ec);
        const auto received = steady::now();
        if (ec)
            return tl::unexpected("clock sync: " + ec.message());
        const std::string d{res[http::field::date]};
        if (d.empty())
            return tl::unexpected(std::string{"clock sync: the server sends no Date header"});
        if (!first) {
            first = d;
        } else if (d != *first) {
            std::istringstream in{d};
            date::sys_time<std::chrono::seconds> t;
            in >> date::parse("%a, %d %b %Y %H:%M:%S GMT", t);
            if (in.fail())
                return tl::unexpected("clock sync: cannot read Date: " + d);
            model_start_ =
                time_point{std::chrono::duration_cast<timers::duration>(t.time_since_epoch())};
            t0_ = received;
            return {};
        }
        std::this_thread::sleep_for(interval);
    }
    return tl::unexpected(
        std::string{"clock sync: the server's Date did not move (--clock-rate?)"});
}

tl::expected<fleet_result, std::string> fleet::run() {
    if (o_.clock_rate <= 0)
        return tl::unexpected(std::string{"--clock-rate must be > 0"});
    for (const auto& g : sc_.groups)
        if (g.pattern == sim::enrollment_pattern::state)
            // Captured routers hold certificates of a CA that is not the target's: a live run
            // cannot start them in that state (simulate runs such a scenario).
            return tl::unexpected(fmt::format(
                "{}: a fleet from captures (pattern = \"state\") cannot be driven live: its "
                "routers' certificates come from another CA; run it with `pkisim simulate`",
                g.config_path));
    const auto hp = split_url(o_.target);
    if (!hp)
        return tl::unexpected(fmt::format("{}: expected http://host[:port][/path]", o_.target));
    if (!o_.allow_remote && !is_loopback_host(o_.target))
        return tl::unexpected(fmt::format(
            "{}: not a loopback address; pass --allow-remote to load a server you run elsewhere",
            o_.target));
    if (sc_.clients() > o_.max_clients)
        return tl::unexpected(fmt::format("{} clients: over the cap of {} (--max-clients)",
                                          sc_.clients(), o_.max_clients));
    if (sc_.groups.empty())
        return tl::unexpected(std::string{"the scenario has no client group"});
    {
        tcp::resolver res{ioc_};
        boost::system::error_code ec;
        auto eps = res.resolve(hp->host, hp->port, ec);
        if (ec || eps.empty())
            return tl::unexpected(fmt::format("{}: {}", hp->host, ec.message()));
        endpoint_ = eps.begin()->endpoint();
    }

    model_start_ = o_.clock_start.value_or(sc_.start);
    model_end_ = sc_.start + sc_.effective_horizon();
    t0_ = steady::now();

    // The CA as the fleet's routers authenticate it (GetCACert once: the trustpoint's
    // `crypto pki authenticate`), and its capabilities.
    {
        vclient probe;
        probe.group = 0;
        auto co = client_options_for(probe);
        co.connect_timeout = std::max(co.connect_timeout, std::chrono::milliseconds{2000});
        co.read_timeout = std::max(co.read_timeout, std::chrono::milliseconds{5000});
        scep::scep_client client{co};
        auto caps = client.get_ca_caps();
        r_.setup_connections += 2;  // GetCACaps, GetCACert
        if (caps)
            caps_ = std::move(*caps);
        auto ca = client.get_ca_cert();
        if (!ca)
            return tl::unexpected("GetCACert: " + ca.error().message());
        const auto v =
            timers::validity{scep::not_before(ca->ca.get()), scep::not_after(ca->ca.get())};
        gens_.push_back(ca_gen{std::make_shared<const scep::ca_certs>(std::move(*ca)), v});
        next_ca_target_ = client.target("GetNextCACert", sc_.groups[0].trustpoint.name);
        caps_target_ = client.target("GetCACaps", sc_.groups[0].trustpoint.name);
        wire_ = std::make_unique<scep::scep_client>(co);
    }
    // The fleet's own connections come first, the slow set-up after them: they are not IOS
    // traffic, yet the server's throttle counts them (80 a minute), so they should fall out of
    // its window before the first client connects (live.json: setup_connections).
    if (o_.clock_sync) {
        if (auto ok = sync_clock(); !ok)
            return tl::unexpected(ok.error());
    }
    r_.setup_done_at = now();

    // The slow part, before the first client's timer: RSA keys (a pool unless --key-pool 0)
    // and each client's CSR and self-signed signer (below). At rate R every real second of it
    // is R lab seconds: timers that it makes late show in timer_lateness.
    const std::size_t nkeys =
        o_.key_pool == 0 ? sc_.clients() : std::min<std::size_t>(o_.key_pool, sc_.clients());
    for (std::size_t i = 0; i < nkeys; ++i)
        keys_.push_back(scep::generate_rsa_key(o_.key_bits));
    cpu_pool_ = std::make_unique<net::thread_pool>(
        std::max<std::size_t>(1, std::thread::hardware_concurrency()));
    // The algorithms IOS picks from GetCACaps (AES/SHA-256 when advertised, else 3DES/SHA-1).
    cipher_nid_ = caps_.cipher_nid(o_.legacy_crypto);
    digest_nid_ = caps_.digest_nid(o_.legacy_crypto);
    r_.result.ca = gens_[0].validity;

    // The fleet, with the scenario's first-enrollment pattern: the simulator's rule and seed.
    std::vector<std::pair<std::uint16_t, timers::duration>> firsts;
    for (std::size_t gi = 0; gi < sc_.groups.size(); ++gi)
        sim::for_each_first_enrollment(
            sc_.groups[gi], rng_, [&](timers::duration when, std::uint64_t n) {
                for (std::uint64_t i = 0; i < n; ++i)
                    firsts.emplace_back(static_cast<std::uint16_t>(gi), when);
            });
    clients_.resize(firsts.size());
    daily_.resize(static_cast<std::size_t>(sc_.effective_horizon().count() / ms_per_day + 1));
    {
        // Each client's PKCS#10 and self-signed signer, on every core (they do not depend on
        // the CA; RFC 8894 §2.3: the signer has the CSR's subject and key). The signer is
        // valid over the whole run (IOS's is created at enrollment time: same effect).
        const auto lo = std::min(sc_.start, model_start_) - timers::days{1};
        const auto hi =
            std::max(sc_.start, model_start_) + sc_.effective_horizon() + timers::days{1};
        scep::csr_options co;
        co.challenge_password = o_.challenge;
        co.digest_nid = digest_nid_ == NID_md5 ? NID_md5 : NID_sha256;
        std::atomic<bool> failed{false};
        std::latch left{static_cast<std::ptrdiff_t>(firsts.size())};
        for (std::size_t i = 0; i < firsts.size(); ++i) {
            auto& c = clients_[i];
            c.id = i + 1;
            c.group = firsts[i].first;
            c.key = keys_[i % keys_.size()].get();
            c.timer = std::make_unique<net::steady_timer>(ioc_);
            net::post(*cpu_pool_, [&c, &co, &failed, &left, lo, hi] {
                try {
                    const auto subject = fmt::format("CN=fleet-{}", c.id);
                    c.csr = scep::make_csr(c.key, subject, co);
                    c.csr_der = scep::to_der(c.csr.get());
                    c.signer =
                        scep::make_self_signed_signer(c.key, subject, timers::validity{lo, hi});
                } catch (const std::exception&) {
                    failed = true;
                }
                left.count_down();
            });
        }
        left.wait();
        if (failed)
            return tl::unexpected(std::string{"cannot build the clients' CSRs"});
    }
    if (!o_.clock_sync)
        // Without a sync the fleet's clock is ours: it starts when the fleet is ready, so the
        // slow set-up does not make the first clients late and bunch them together (a foreign
        // CA on the real clock then sees the scenario's spacing).
        t0_ = steady::now();
    for (std::size_t i = 0; i < firsts.size(); ++i) {
        auto& c = clients_[i];
        at(c, sc_.start + firsts[i].second, [this, &c] { start_enroll(c, false); });
    }
    progress_timer_ = std::make_unique<net::steady_timer>(ioc_);
    progress_tick();
    ioc_.run();
    cpu_pool_->join();

    // The same result record as `simulate`.
    auto& res = r_.result;
    res.engine = sim::engine_kind::exact;
    res.start = sc_.start;
    res.end = model_end_;
    res.clients = clients_.size();
    res.daily = daily_;
    for (const auto& d : daily_) {
        auto& t = res.totals;
        t.get_next_ca_cert_requests += d.get_next_ca_cert_requests;
        t.responses_404 += d.responses_404;
        t.responses_200 += d.responses_200;
        t.enrollment_attempts += d.enrollment_attempts;
        t.enrollments_ok += d.enrollments_ok;
        t.enrollments_failed += d.enrollments_failed;
        t.connections_accepted += d.connections_accepted;
        t.connections_dropped_max_connections += d.connections_dropped_max_connections;
        t.connections_ignored_deaf += d.connections_ignored_deaf;
        t.clients_entered_shadow_loop += d.clients_entered_shadow_loop;
        t.clients_first_404 += d.clients_first_404;
        t.clients_got_next_ca += d.clients_got_next_ca;
        t.clients_outage += d.clients_outage;
        t.peak_clients_in_shadow_loop =
            std::max(t.peak_clients_in_shadow_loop, d.peak_clients_in_shadow_loop);
    }
    // Per-minute attempts: the peak, and the worst day's profile.
    std::map<std::int64_t, std::uint64_t> per_day_attempts;
    for (const auto& [minute, v] : minutes_) {
        if (v.first > res.peak_attempts_per_minute) {
            res.peak_attempts_per_minute = v.first;
            res.peak_minute_at = sc_.start + timers::duration{minute * ms_per_minute};
        }
        per_day_attempts[minute / 1440] += v.first;
        auto& d = daily_[static_cast<std::size_t>(std::clamp<std::int64_t>(
            minute / 1440, 0, static_cast<std::int64_t>(daily_.size()) - 1))];
        d.peak_attempts_per_minute = std::max(d.peak_attempts_per_minute, v.first);
    }
    res.daily = daily_;
    for (const auto& d : daily_)
        res.totals.peak_attempts_per_minute =
            std::max(res.totals.peak_attempts_per_minute, d.peak_attempts_per_minute);
    res.worst_day_attempts_per_minute.assign(1440, 0);
    res.worst_day_accepted_per_minute.assign(1440, 0);
    std::uint64_t worst = 0;
    for (const auto& [dd, n] : per_day_attempts)
        if (n > worst) {
            worst = n;
            res.worst_day = static_cast<int>(dd);
        }
    for (const auto& [minute, v] : minutes_)
        if (minute / 1440 == res.worst_day) {
            res.worst_day_attempts_per_minute[static_cast<std::size_t>(minute % 1440)] =
                static_cast<std::uint32_t>(v.first);
            res.worst_day_accepted_per_minute[static_cast<std::size_t>(minute % 1440)] =
                static_cast<std::uint32_t>(v.second);
        }
    {
        std::vector<timers::trustpoint_config> tps;
        for (const auto& g : sc_.groups)
            tps.push_back(g.trustpoint);
        timers::storm_options so;
        so.client = sc_.client;
        res.closed_form = timers::analyze_storm(sc_.ca.server, sc_.start, tps, so);
    }
    res.outcome = res.clients_outage > 0    ? sim::verdict::outage
                  : res.clients_hit_404 > 0 ? sim::verdict::storm
                                            : sim::verdict::safe;
    r_.real_seconds = std::chrono::duration<double>(steady::now() - t0_).count();
    r_.clock_rate = o_.clock_rate;
    r_.next_ca_answers.assign(answers_.begin(), answers_.end());
    return std::move(r_);
}

}  // namespace

tl::expected<fleet_result, std::string> run_fleet(const sim::scenario& sc, const fleet_options& o) {
    fleet f{sc, o};
    return f.run();
}

std::string live_json(const fleet_result& r) {
    nlohmann::ordered_json j;
    j["live"] = true;
    j["clock_rate"] = r.clock_rate;
    j["real_seconds"] = r.real_seconds;
    j["connections"] = r.connections;
    j["connections_per_real_second"] =
        r.real_seconds > 0 ? static_cast<double>(r.connections) / r.real_seconds : 0.0;
    j["stopped_by_duration_cap"] = r.stopped_by_duration_cap;
    j["delayed_by_rate_cap"] = r.delayed_by_rate_cap;
    const auto classes = [](const std::array<std::uint64_t, outcome_classes>& a) {
        nlohmann::ordered_json o;
        for (std::size_t i = 0; i < outcome_classes; ++i)
            o[std::string{to_string(static_cast<outcome_class>(i))}] = a[i];
        return o;
    };
    const auto lat = [](const latency_stats& s) {
        return nlohmann::ordered_json{
            {"count", s.count}, {"p50_ms", s.p50()}, {"p99_ms", s.p99()}, {"max_ms", s.max()}};
    };
    j["outcomes"]["GetNextCACert"] = classes(r.get_next_ca_outcomes);
    j["outcomes"]["PKCSReq"] = classes(r.enroll_outcomes);
    j["latency_model_ms"]["GetNextCACert"] = lat(r.get_next_ca_latency);
    j["latency_model_ms"]["PKCSReq"] = lat(r.enroll_latency);
    j["timer_lateness_model_ms"] = lat(r.timer_lateness);
    j["enroll_prep_model_ms"] = lat(r.enroll_prep);
    j["setup_connections"] = r.setup_connections;
    j["setup_done_at"] = timers::to_iso8601(r.setup_done_at);
    j["get_next_ca_cert_answers"] = r.next_ca_answers;
    return j.dump(2);
}

std::string attempts_csv(const fleet_result& r) {
    std::string out = "started,completed,client,operation,outcome\n";
    for (const auto& a : r.attempts)
        out += fmt::format(
            "{},{},{},{},{}\n", timers::to_iso8601(a.started), timers::to_iso8601(a.completed),
            a.client,
            a.enrollment ? (a.rollover ? "PKCSReq rollover" : "PKCSReq") : "GetNextCACert",
            to_string(a.outcome));
    return out;
}

}  // namespace pkisim::loadgen
