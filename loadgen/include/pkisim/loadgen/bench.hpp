// `pkisim bench`: connection and enrollment throughput of any SCEP server (issue 12 §1).
//
// One Asio event loop per thread, `concurrency` connection slots per run. Closed loop: every
// slot sends its next request as soon as the last one is answered. Open loop (`rate`): request
// i is due at start + i/rate whatever the server does, and its latency is measured from that
// intended send time, so a stalled server shows its stall instead of hiding it by slowing the
// generator (wrk2's correction for coordinated omission).
//
//   bench_options o;
//   o.url = "http://127.0.0.1:8080";
//   o.mode = bench_mode::connect;           // a new TCP connection per GetCACert, as IOS
//   o.concurrency = 64; o.duration = std::chrono::seconds{10};
//   auto plan = prepare_bench(o);           // GetCACaps/GetCACert, keys and PKCSReqs if needed
//   bench_result r = run_bench(*plan, o);   // r.latency.value_at_percentile(99)
//   std::cout << bench_text(o, r);          // also bench_json, bench_csv, bench_html
//
// Loopback targets only unless allow_remote (the tool generates load; it must not be pointed
// at someone else's server by a typo). Every run is bounded by a duration and/or a count.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "pkisim/loadgen/histogram.hpp"

namespace pkisim::loadgen {

enum class bench_mode {
    connect,    // a new TCP connection per request (HTTP/1.0 as IOS)
    keepalive,  // persistent HTTP/1.1 connections
    enroll,     // PKCSReq (or RenewalReq) per request, new connection each
    mix,        // weighted operations, new connection each
};
std::string_view to_string(bench_mode m) noexcept;

// What one request does.
enum class operation {
    get_ca_cert,
    get_ca_caps,
    get_next_ca_cert,
    path,    // GET of a fixed path (`--path`)
    enroll,  // PKCSReq / RenewalReq
};
std::string_view to_string(operation o) noexcept;

// The outcome classes of issue 12 §1. SCEP operations answered 200 are classified by the
// CertRep's pkiStatus (and failInfo); everything else by its HTTP status class or the socket
// error. `other` collects what none of these describes (a malformed HTTP answer, ...).
enum class outcome : std::uint8_t {
    http_2xx,
    http_3xx,
    http_4xx,
    http_5xx,
    scep_success,
    scep_pending,
    scep_failure_bad_alg,
    scep_failure_bad_message_check,
    scep_failure_bad_request,
    scep_failure_bad_time,
    scep_failure_bad_cert_id,
    bad_response,  // 200, but not a CertRep (or the signature does not verify)
    refused,       // connection refused (RST to SYN)
    reset,         // reset / closed by the server before a complete answer
    connect_timeout,
    read_timeout,
    other,
    count_  // number of classes
};
inline constexpr std::size_t outcome_count = static_cast<std::size_t>(outcome::count_);
std::string_view to_string(outcome o) noexcept;  // "http_2xx", "scep_failure_badRequest", ...
// A request that did what was asked (2xx for plain operations, SUCCESS, or PENDING without
// --poll for enrollments).
bool is_success(outcome o) noexcept;

struct mix_weight {
    operation op = operation::get_ca_cert;
    unsigned weight = 1;
};

struct bench_options {
    std::string url;          // http://host[:port][/path]
    bool exact_path = false;  // use the URL path as is (micromdm: /scep)
    bench_mode mode = bench_mode::connect;
    operation op = operation::get_ca_cert;  // connect / keepalive
    std::string path;                       // operation::path: "/index.html"
    std::vector<mix_weight> mix;            // mode mix
    std::string ca_identifier = "bench";    // message= of GetCACert & co. (the trustpoint)

    unsigned concurrency = 64;
    std::optional<double> rate;  // open loop: requests per second (all threads)
    unsigned threads = 1;
    std::chrono::nanoseconds duration{std::chrono::seconds{10}};  // 0 = until `requests`
    std::uint64_t requests = 0;                                   // 0 = until `duration`
    std::chrono::nanoseconds warmup{std::chrono::seconds{1}};
    std::chrono::nanoseconds connect_timeout{std::chrono::seconds{2}};
    std::chrono::nanoseconds read_timeout{std::chrono::seconds{10}};
    bool allow_remote = false;

    // Enrollment.
    std::optional<std::string> challenge;  // read from --challenge-file by the CLI
    bool renew = false;                    // RenewalReq signed by a certificate enrolled first
    bool poll = false;                     // follow PENDING with CertPolls
    std::chrono::nanoseconds poll_interval{std::chrono::seconds{1}};
    unsigned max_polls = 10;
    unsigned keys = 8;  // RSA keys generated before the clock starts (reused)
    unsigned key_bits = 2048;
    std::uint64_t pool = 0;       // pre-built requests; 0 = `requests`, or 2000 when unbounded
    std::string method = "auto";  // auto (POST when GetCACaps says so) | get | post
    bool legacy_crypto = false;   // DES/MD5 answers (micromdm scepserver)
    bool decrypt = false;         // open SUCCESS envelopes (client RSA work) instead of status only
    std::string subject_prefix = "CN=bench";
    std::uint64_t seed = 1;  // mix choice and subjects

    // Progress: called about once a second from the calling thread with a one-line summary.
    std::function<void(std::string_view)> progress;
};

// Everything a run needs, built before the clock starts (resolution, request bytes, keys,
// pre-built and pre-encoded PKIOperation requests).
struct bench_plan;
struct bench_plan_deleter {
    void operator()(bench_plan* p) const noexcept;
};
using bench_plan_ptr = std::unique_ptr<bench_plan, bench_plan_deleter>;

// Checks the options and prepares. Errors are one line for the CLI: "usage: ..." for bad
// options (exit 2), otherwise the target could not be used (exit 3).
tl::expected<bench_plan_ptr, std::string> prepare_bench(const bench_options& options);
std::string_view plan_description(const bench_plan& plan);  // "GetCACert http://...?..."

struct second_stats {
    std::array<std::uint64_t, outcome_count> outcomes{};
    std::uint64_t completed = 0;
    std::uint64_t p50_ns = 0, p99_ns = 0, max_ns = 0;
};

struct bench_result {
    std::chrono::nanoseconds elapsed{0};  // measured window (after warm-up)
    std::uint64_t completed = 0;          // in the window
    std::uint64_t sent = 0;               // started in the window
    std::uint64_t unfinished = 0;         // in flight when the run ended (not counted)
    std::uint64_t warmup_completed = 0;
    std::uint64_t polls = 0;        // CertPolls sent (--poll)
    std::uint64_t connections = 0;  // TCP connections opened in the window
    std::array<std::uint64_t, outcome_count> outcomes{};
    histogram latency{10, 44};          // nanoseconds, all completed requests
    histogram success_latency{10, 44};  // nanoseconds, is_success() outcomes only
    std::vector<second_stats> seconds;  // by completion second since the window opened
    std::string stop_reason;            // "duration", "requests", "pool exhausted"
    double throughput() const;          // completed / elapsed, per second
    std::uint64_t successes() const;
};

// Runs the load. Not thread-safe against itself: one run per plan at a time.
bench_result run_bench(bench_plan& plan, const bench_options& options);

// Reports. bench_text: the terminal summary; bench_json: everything incl. the series;
// bench_csv: the per-second series; bench_html: one self-contained page (SVG, no scripts) with
// throughput, latency and outcomes over time.
std::string bench_text(const bench_options& o, const bench_plan& plan, const bench_result& r);
std::string bench_json(const bench_options& o, const bench_plan& plan, const bench_result& r);
std::string bench_csv(const bench_result& r);
std::string bench_html(const bench_options& o, const bench_plan& plan, const bench_result& r);

// "GetCACert:8,GetCACaps:1,enroll:2": NAME[:WEIGHT],... with the names of parse_operation
// (weight 1 when omitted). Errors are one line.
tl::expected<std::vector<mix_weight>, std::string> parse_mix(std::string_view text);
// GetCACert, GetCACaps, GetNextCACert, path (the --path), enroll (or PKCSReq); any case.
tl::expected<operation, std::string> parse_operation(std::string_view name);

}  // namespace pkisim::loadgen
