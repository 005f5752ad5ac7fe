// `pkisim fleet`: the scenario's virtual IOS clients as real HTTP connections against a running
// SCEP server. Every client runs the timers/ client rules (client_renewal, shadow_step,
// attempt_completion); every connection is asynchronous on one Asio io_context (one
// steady_timer per client, no thread per client), so clients whose timers fire together reach
// the server together, as IOS routers do. The RSA/CMS work of an enrollment (PKCSReq + CertPoll
// built and CertRep read with scep_server/'s codec) runs on a pool of one thread per core; each
// client's CSR and self-signed signer are made before the clock starts.
//
//   fleet_options o{.target = "http://127.0.0.1:8080", .clock_rate = 40};
//   auto r = run_fleet(load_scenario("configs/fidelity/limiter.toml").value(), o);
//   sim::write_report("out/live", sc, r->result, std::nullopt, {});
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "pkisim/sim/scenario.hpp"
#include "pkisim/sim/simulation.hpp"

namespace pkisim::loadgen {

using timers::duration;
using timers::time_point;

struct fleet_options {
    std::string target;  // http://host[:port][/path]
    bool exact_path = false;
    bool allow_remote = false;  // default: loopback targets only
    std::optional<std::string> challenge;
    bool legacy_crypto = false;
    // The warped clock of `pkisim serve --clock-start T --clock-rate R` (same values); without a
    // start, the scenario's start.
    std::optional<time_point> clock_start;
    double clock_rate = 1.0;
    // Read the server's clock instead: poll GetCACaps until its HTTP Date header turns to the
    // next second, and take that edge as "now" (error: one poll interval, at most 1/20 of a
    // lab second, plus a round trip). Costs up to ~25 connections at the start.
    bool clock_sync = false;
    // One GetNextCACert per client right after its first enrollment, outside the IOS state
    // machine, to see what a server answers (a foreign CA's clients may never reach SHADOW
    // within a test). Recorded in next_ca_answers and the outcome classes only.
    bool probe_next_ca = false;
    // Hard caps: real seconds, connections started per real second.
    double max_duration_s = 300;
    double max_connections_per_s = 2000;
    std::size_t max_clients = 5000;
    // RSA keys: 0 = one per client, N = a pool of N keys shared round-robin.
    std::size_t key_pool = 8;
    unsigned key_bits = 2048;
    // Prometheus text of the server's admin side (pkisim serve --metrics-listen), read at the
    // end for deaf seconds and the server's own counters. Optional.
    std::string metrics_url;
    std::function<void(const std::string&)> on_progress;  // one line, about once a second
};

// What only a live run sees.
enum class outcome_class {
    ok_200,
    not_found_404,
    other_status,
    reset,
    refused,
    connect_timeout,
    read_timeout,
    scep_failure,
    pending,
    other
};
inline constexpr std::size_t outcome_classes = 10;
std::string_view to_string(outcome_class c);

struct latency_stats {
    std::uint64_t count = 0;
    std::vector<double> samples_ms;  // model milliseconds (bounded reservoir)
    double p50() const;
    double p99() const;
    double max() const;
};

// One connection attempt as the client saw it (attempts.csv): when it began and ended (model
// time), which request, what came back.
struct attempt_record {
    time_point started{};
    time_point completed{};
    std::uint32_t client = 0;  // 1-based
    bool enrollment = false;   // PKCSReq/CertPoll, else GetNextCACert
    bool rollover = false;     // the rollover enrollment (to the shadow CA)
    outcome_class outcome = outcome_class::other;
};

struct fleet_result {
    sim::sim_result result;  // the same counters as `simulate`
    std::array<std::uint64_t, outcome_classes> get_next_ca_outcomes{};
    std::array<std::uint64_t, outcome_classes> enroll_outcomes{};
    latency_stats get_next_ca_latency;
    latency_stats enroll_latency;
    // How late client timers fired, in lab milliseconds (real lateness × rate): the fleet's
    // own clock error on this machine.
    latency_stats timer_lateness;
    // From an enrollment's timer to its connection (building the PKCSReq on the CPU pool), lab
    // milliseconds: how far this machine's CPU shifts enrollments that IOS routers would send
    // at once.
    latency_stats enroll_prep;
    std::uint64_t connections = 0;
    // The fleet's own connections before the clients start (GetCACaps, GetCACert, the clock
    // sync's polls): the server's throttle counts them too; the last one ended at setup_done_at.
    std::uint64_t setup_connections = 0;
    time_point setup_done_at{};
    double real_seconds = 0;
    double clock_rate = 1;
    bool stopped_by_duration_cap = false;
    std::uint64_t delayed_by_rate_cap = 0;
    std::vector<std::string>
        next_ca_answers;                   // distinct GetNextCACert answers ("404", "200 CN=...")
    std::string server_metrics;            // raw text when metrics_url was given
    std::vector<attempt_record> attempts;  // in completion order (bounded: 1,000,000)
};

tl::expected<fleet_result, std::string> run_fleet(const sim::scenario& sc, const fleet_options& o);

// The extra JSON of a live run (outcome classes, latencies, caps), merged into summary.json.
std::string live_json(const fleet_result& r);

// attempts.csv: one line per attempt (started, completed, client, operation, outcome).
std::string attempts_csv(const fleet_result& r);

}  // namespace pkisim::loadgen
