// The fleet simulation: virtual IOS clients (initial enrollment, RENEW, the shadow state machine,
// rollover ID certificate, switchover, outage) against a model of the CA (and RA) and the IOS
// HTTP limiter in front of them. Every rule comes from pkisim::timers; this module only moves
// clients through time.
//
//   auto sc = load_scenario("configs/seed002.toml").value();
//   sim_result r = run_simulation(sc, run_options{.engine = engine_kind::automatic});
//   fmt::print("{} clients hit 404 from {}\n", r.clients_hit_404, to_iso8601(*r.first_404_at));
//
// Two engines share this code. Clients with the same state that act at the same instant (the
// scenario's time_step grid, 1 s by default) are interchangeable: the *cohort* engine merges
// them into one record with a count and drives the limiter with the whole batch; the *exact*
// engine keeps one record per client. Within an instant both order work by client state, so the
// two engines produce the same daily counters (tests/sim/engine_agreement_test.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pkisim/sim/scenario.hpp"
#include "pkisim/timers/storm.hpp"
#include "pkisim/timers/timeline.hpp"

namespace pkisim::sim {

enum class engine_kind { exact, cohort, automatic };
std::string_view to_string(engine_kind e);
std::optional<engine_kind> parse_engine_kind(std::string_view text);

struct progress {
    time_point sim_now;
    double fraction = 0;  // of the horizon
    std::uint64_t events = 0;
    // Running counters for the progress line (issue 15 §2).
    std::uint64_t responses_404 = 0;
    std::int64_t deaf_ms = 0;
};

struct run_options {
    engine_kind engine = engine_kind::automatic;
    // `automatic` uses the exact engine up to this many clients (up to the second figure when
    // retry jitter is on), the cohort engine above.
    std::uint64_t exact_max_clients = 500;
    std::uint64_t exact_max_clients_jitter = 20'000;
    // The exact engine keeps a clients.csv record per client up to this fleet size (about 100
    // bytes each); above it, one record per group.
    std::uint64_t max_client_records = 1'000'000;
    std::function<void(const progress&)> on_progress;  // called every ~2^18 events
};

// One row of daily.csv: what the clients experienced on one UTC day (day 0 = CA creation).
struct day_counters {
    std::uint64_t get_next_ca_cert_requests = 0;  // GetNextCACert connection attempts
    std::uint64_t responses_404 = 0;
    std::uint64_t responses_200 = 0;
    std::uint64_t enrollment_attempts = 0;  // PKCSReq attempts (initial, renewal, rollover)
    std::uint64_t enrollments_ok = 0;
    std::uint64_t enrollments_failed = 0;
    std::uint64_t connections_accepted = 0;
    std::uint64_t connections_dropped_max_connections = 0;
    std::uint64_t connections_ignored_deaf = 0;
    std::int64_t deaf_ms = 0;  // deaf periods that started this day
    std::uint64_t clients_entered_shadow_loop = 0;
    std::uint64_t clients_first_404 = 0;
    std::uint64_t clients_got_next_ca = 0;
    std::uint64_t clients_outage = 0;
    std::uint64_t peak_clients_in_shadow_loop = 0;
    std::uint64_t peak_attempts_per_minute = 0;
    bool operator==(const day_counters&) const = default;
};

enum class verdict { safe, storm, outage };
std::string_view to_string(verdict v);

// One CA generation: what happened while its certificate was the CA's, and above all the
// rollover at its end (its clients asking for generation `number + 1`). Generation 1 is the CA
// created at the start; generation k + 1 is the shadow of generation k. Client-side counters
// (loop, 404, windows, outages) belong to the generation that issued the client's certificate;
// server-side ones (peak minute, deaf time, failed enrollments) to the generation whose
// validity contains the instant.
struct generation_stats {
    unsigned number = 1;  // 1-based, as printed
    timers::validity ca;
    bool complete = true;  // the horizon reaches this generation's notAfter
    std::optional<time_point> shadow_generated_at;        // its successor, made by the CA
    std::optional<time_point> ra_shadow_at;               // when the RA had that successor
    std::optional<time_point> first_get_next_ca_cert_at;  // first client entering the loop
    std::optional<time_point> last_loop_entry_at;         // last client entering the loop
    std::optional<time_point> first_404_at;
    std::optional<time_point> last_404_at;
    std::uint64_t clients_entered_loop = 0;
    std::uint64_t clients_hit_404 = 0;  // = its 404 windows: one per client at most
    double max_404_window_days = 0;
    double mean_404_window_days = 0;
    std::uint64_t get_next_ca_cert_requests = 0;
    std::uint64_t responses_404 = 0;
    std::uint64_t peak_attempts_per_minute = 0;
    std::optional<time_point> peak_minute_at;
    std::int64_t deaf_ms = 0;
    std::uint64_t enrollments_failed = 0;
    std::uint64_t clients_outage = 0;
    verdict outcome = verdict::safe;
};

// The recommended change set and its verification by a re-run (sim/change_set.hpp fills it;
// run_simulation leaves it empty).
struct change_set_check {
    std::vector<std::string> settings;  // --set KEY=VALUE, in order
    bool verified = false;              // the re-run with them is safe
    std::optional<verdict> rerun_outcome;
    unsigned rerun_generations = 0;
    std::vector<std::string> cannot_fix;
    std::string text;  // what simulate prints
};

// What one client measured (exact engine: one record per client, in creation order within its
// group, which for pattern "state" is the routers' order), or one client group (cohort engine:
// its members are merged, so the record sums the group). clients.csv writes them.
struct client_record {
    std::uint16_t group = 0;
    std::uint64_t index = 0;    // within the group (exact engine); 0 for a group record
    std::uint64_t clients = 0;  // 1 (exact engine) or the group's size
    std::optional<time_point> first_get_next_ca_cert_at;  // first SHADOW point reached
    std::optional<time_point> first_404_at;
    std::uint64_t clients_hit_404 = 0;  // distinct clients (0 or 1 for one client)
    std::uint64_t windows_404 = 0;      // one per client and generation
    std::int64_t longest_404_window_ms = 0;
    std::uint64_t enrollments_failed = 0;  // enrollment attempts that failed (retried)
    std::uint64_t outages = 0;             // clients left without a valid certificate
    bool per_client = false;
};

struct sim_result {
    engine_kind engine = engine_kind::exact;  // the one that ran
    time_point start{};
    time_point end{};  // start + horizon
    timers::validity ca;
    std::optional<time_point> shadow_generated_at;
    std::optional<time_point> ra_first_get_next_ca_cert_at;
    std::optional<time_point> ra_shadow_at;  // when the RA had the shadow CA (RA scenarios)
    std::optional<time_point> first_get_next_ca_cert_at;
    std::optional<time_point> first_404_at;
    std::optional<time_point> last_404_at;
    // Distance of first_404_at to the expiry of the CA generation it happened in.
    std::optional<double> first_404_days_before_ca_expiry;
    std::uint64_t clients = 0;
    std::uint64_t clients_hit_404 = 0;  // distinct clients, whatever the number of generations
    std::uint64_t windows_404 = 0;      // 404 windows over all generations (>= clients_hit_404)
    std::uint64_t clients_outage = 0;
    double max_404_window_days = 0;
    double mean_404_window_days = 0;            // per window
    std::vector<generation_stats> generations;  // every generation that starts in the horizon
    day_counters totals;                        // sums (peaks: maxima)
    std::uint64_t peak_attempts_per_minute = 0;
    std::optional<time_point> peak_minute_at;
    int worst_day = -1;  // the day of peak_minute_at (the busiest minute of the run)
    std::vector<std::uint32_t> worst_day_attempts_per_minute;  // 1440 entries
    std::vector<std::uint32_t> worst_day_accepted_per_minute;
    std::vector<day_counters> daily;
    std::uint64_t events = 0;
    std::uint64_t peak_cohorts = 0;
    std::uint64_t memory_bytes = 0;  // peak of the engine's own data structures
    // The RA's connections to the CA (RA scenarios).
    std::uint64_t ca_connections_accepted = 0;
    std::uint64_t ca_connections_refused_or_ignored = 0;
    verdict outcome = verdict::safe;  // the worst generation's
    std::optional<change_set_check> change_set;
    // Per client (exact engine, up to run_options::max_client_records clients) or per group.
    std::vector<client_record> client_records;
    timers::storm_analysis closed_form;  // pkisim check's answer, for the report
};

sim_result run_simulation(const scenario& sc, const run_options& options = {});

}  // namespace pkisim::sim
