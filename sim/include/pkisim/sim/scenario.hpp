// A fleet scenario: which IOS configuration files describe the CA (and RA) and the client
// groups, plus only what IOS has no command for (fleet sizes and enrollment patterns, latency,
// the shadow retry interval, connect timeout, jitter, clock skew, service times, horizon).
// Format: TOML, documented in configs/README.md "Scenario files".
//
//   auto sc = load_scenario("configs/seed002.toml");
//   if (!sc) { std::cerr << sc.error() << '\n'; return 2; }     // "seed002.toml:12: ..."
//   apply_setting(*sc, "overlap", "365");                        // --set / --sweep
//   auto result = run_simulation(*sc, {});
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <tl/expected.hpp>

#include "pkisim/timers/client_model.hpp"
#include "pkisim/timers/config.hpp"
#include "pkisim/timers/ios_show.hpp"
#include "pkisim/timers/limiter.hpp"
#include "pkisim/timers/time.hpp"
#include "pkisim/timers/timeline.hpp"

namespace pkisim::sim {

using timers::duration;
using timers::time_point;

// How a group's first enrollments are spread (all offsets are from the scenario start, which is
// the CA's creation: the first `no shutdown`).
enum class enrollment_pattern {
    instant,  // all `count` clients at `at`
    uniform,  // independent uniform random times in [at, at + window) (seeded)
    spread,   // evenly spaced: client i at at + (i + 0.5) / count × window (no randomness)
    batches,  // explicit {at, count} batches
    csv,      // one time per line in a CSV file (offset like "12d 3h" or an ISO date)
    state,    // explicit per-client state at the start (a fleet read from routers' captures)
};
std::string_view to_string(enrollment_pattern p);

struct enrollment_batch {
    duration at{0};
    std::uint64_t count = 0;
};

// One client of a `pattern = "state"` group: a router as its captures showed it at the
// scenario start (`pkisim inventory` writes these).
struct client_state {
    std::string hostname;
    // current: certificate + its RENEW/SHADOW timer; pending: an enrollment waiting (polled at
    // `at`); rollover: rollover CA + rollover ID certificate installed (switchover at CA
    // notAfter); rollover-ca: rollover CA installed, rollover enrollment at `at`; none: no
    // certificate, enrolls at `at`.
    timers::router_phase phase = timers::router_phase::current;
    std::optional<timers::validity> certificate;  // the current ID certificate
    std::optional<duration> at;                   // offset from the start; default 0
};

struct client_group {
    std::string name;
    std::string config_path;  // the IOS file with the trustpoint (resolved path)
    std::string config_text;  // its content, for the report
    timers::trustpoint_config trustpoint;
    std::uint64_t count = 0;
    enrollment_pattern pattern = enrollment_pattern::spread;
    duration at{0};
    duration window{0};
    std::vector<enrollment_batch> batches;
    std::vector<duration> times;        // csv
    std::vector<client_state> routers;  // state
    bool via_ra = false;  // clients talk to the RA (default when the scenario has one)
};

// One IOS box that serves SCEP: the CA, or the RA in front of it.
struct server_side {
    std::string config_path;
    std::string config_text;
    timers::server_config server;
    timers::http_config http;
    // Operator `crypto pki server NAME rollover` at this offset from the start (optional).
    std::optional<duration> manual_rollover;
    // The certificate as captured: [ca] the CA certificate (not_before / not_after; without it
    // the CA is created at the start), [ra] the RA's own certificate (cert_not_before /
    // cert_not_after; without it the RA enrolls at the start).
    std::optional<timers::validity> certificate;
};

inline constexpr unsigned max_generations = 20;
// The default horizon: two CA generations, because generation 2 is the first with a
// phase-locked fleet (rule 6) and every later generation repeats it exactly; `pkisim check`
// judges the same two (timers/verdict.hpp), so both give one verdict for one configuration.
inline constexpr unsigned default_generations = 2;

struct scenario {
    std::string path;  // the scenario file (resolved)
    std::string name;
    std::string description;
    time_point start{};  // CA created (first `no shutdown`), or the capture time of an inventory
    // default: until the end of the last generation's CA (`generations` CA lifetimes from the
    // CA's creation) + 60 days
    std::optional<duration> horizon;
    // How many CA generations the horizon covers (default_generations): the first rollover is generation
    // 1 -> 2; generation 2's clients all hold rollover certificates that start at the same
    // instant (model §1 rule 6), so later rollovers can behave differently.
    std::optional<unsigned> generations;
    std::uint64_t seed = 1;
    // Client actions happen on this grid (model resolution). 1 s keeps the 20 s shadow retry
    // exact and lets clients that act in the same second merge into cohorts.
    duration time_step = timers::seconds{1};

    server_side ca;
    std::optional<server_side> ra;
    timers::trustpoint_config ra_trustpoint;  // the RA's own certificate (auto-enroll)

    // IOS has no command for these (ios-pki-model.md §2.3, §2.5, §3).
    timers::client_model client;             // shadow retry interval (20 s), connect timeout (10 s)
    duration latency = timers::duration{2};  // one way, client <-> server
    duration retry_jitter{0};                // uniform extra delay in [0, jitter] per retry
    duration clock_skew{0};                  // per-client skew uniform in [-skew, +skew]
    duration service_get_next_ca_cert = timers::duration{36};  // seed 002: 36 ms for a 404
    duration service_enrollment = timers::duration{250};       // PKCSReq round (assumption)
    timers::throttle_window throttle_window = timers::throttle_window::sliding;
    bool throttle = true;
    bool limiter_enabled = true;

    std::vector<client_group> groups;

    // Which run this is when it is not simply the file (set by `simulate`, not read from TOML).
    // After a sweep: "overlap=365, the value the sweep recommends": summary.json "run", and the
    // report page says it above the verdict and the plots.
    std::string run_label;
    // A point of a split sweep (--sweep-point KEY=VALUE): summary.json "sweep_point".
    std::optional<std::pair<std::string, std::string>> sweep_point;

    std::uint64_t clients() const;
    // The server the clients talk to: the RA if there is one.
    const server_side& front() const { return ra ? *ra : ca; }
    duration effective_horizon() const;
    // The CA certificate of generation 0: as captured, else created at the start (rule 1).
    timers::validity ca_certificate() const;
};

// Reads a scenario and every IOS file it names. Errors read "file:line: what was expected".
tl::expected<scenario, std::string> load_scenario(const std::string& path);
// The same from text (tests); IOS paths are resolved relative to `base_dir`.
tl::expected<scenario, std::string> parse_scenario(std::string_view text,
                                                   const std::string& display_name,
                                                   const std::string& base_dir);

// `--set key=value` and sweeps: the keys, values and ranges of the one registry shared with
// `pkisim check` (timers/settings.hpp, listed by `pkisim simulate --help`). `typed` is what the
// user typed, quoted in errors ("--sweep overlap=abc", "--clients -5"); default "--set K=V".
//   (simulate only) generations=N → a horizon covering N CA generations (max_generations).
tl::expected<void, std::string> apply_setting(scenario& sc, std::string_view key,
                                              std::string_view value,
                                              std::string_view typed = {});

// "20s", "36ms", "420d", "1d 12h 30m", "1.5d"; a bare number is seconds.
std::optional<duration> parse_duration_text(std::string_view text);
std::string format_duration(duration d);

}  // namespace pkisim::sim
