// The one verdict for a CA (and its RA) and the client trustpoints that enroll with it, in
// closed form: the RA's own SHADOW timer (model §1 rule 8, the same rule the simulator's RA
// record follows), CA generation 1 (fleet in steady state) and generation 2 (every client
// holds a rollover certificate that starts at the old CA's notAfter, rule 6, so the fleet is
// phase-locked; generation 3 and later repeat generation 2 exactly), and the recommended
// change set, verified by this same closed form before it is returned. `pkisim check` prints
// it; `pkisim simulate` re-runs the fleet with `change_set::settings` applied through the
// --set registry (settings.hpp) to verify it against the event simulation.
//
//   fleet_input in;
//   in.ca = ca; in.ca_created_at = default_ca_start(); in.clients = {getvpn};
//   in.ra = ra_input{ra_server, ra_trustpoint, /*manual_rollover=*/days{1460}};
//   in.limiter.max_connections = 16;
//   const fleet_verdict v = analyze_fleet(in);
//   if (v.verdict != storm_verdict::safe)
//       for (const auto& s : v.change.settings) run("--set " + s);   // "ca.auto-rollover=365"
//
// Times are exact to the millisecond except where noted: the RA learns of the CA's shadow on
// its first 20 s poll at or after the shadow (a client asking at the same instant as the RA
// still gets a 404: the RA's own exchange with the CA takes a round trip).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "pkisim/timers/client_model.hpp"
#include "pkisim/timers/config.hpp"
#include "pkisim/timers/limiter.hpp"
#include "pkisim/timers/settings.hpp"
#include "pkisim/timers/storm.hpp"
#include "pkisim/timers/time.hpp"
#include "pkisim/timers/timeline.hpp"

namespace pkisim::timers {

struct ra_input {
    server_config server;          // the RA's `crypto pki server` (mode ra)
    trustpoint_config trustpoint;  // the RA's own certificate (IOS: trustpoint named like it)
    // Operator `crypto pki server RA rollover`, from the CA's creation: the scenario's
    // [ra] manual_rollover, check's --ra-rollover. Once, as the simulator does it: in the
    // generation whose life contains it.
    std::optional<duration> manual_rollover;
    // The RA certificate is first issued this long after the CA's creation (simulator: 0).
    duration enrolled_after{0};
};

struct fleet_input {
    server_config ca;  // the issuing CA (its lifetimes and auto-rollover)
    time_point ca_created_at{};
    std::optional<duration> ca_manual_rollover;  // operator CA `rollover`, from the creation
    std::optional<ra_input> ra;                  // clients talk to the RA when there is one
    std::vector<trustpoint_config> clients;
    std::optional<std::uint64_t> fleet_size;  // the generation-2 herd; nullopt = not given
    client_model client;
    limiter_config limiter;  // of the server the clients reach (max_connections, throttle)
    storm_options storm;     // recommendation factor and margin (client/limiter: see above)
};

// The RA's own certificate in one CA generation (the simulator's RA record): issued at
// `enrolled_at`, renewed at its trustpoint's RENEW points while it fits in the CA, then the
// certificate that ends with the CA arms SHADOW and the RA asks the CA (GetNextCACert every
// shadow retry interval) until the CA has its shadow.
struct ra_timer {
    time_point enrolled_at{};
    validity last_certificate;                  // the certificate held when the RA asks (or lapses)
    renewal_point own;                          // its SHADOW point; kind none = no auto-enroll
    std::optional<time_point> manual;           // the operator rollover, if in this generation
    std::optional<time_point> asks_ca_at;       // first GetNextCACert from the RA to the CA
    std::optional<time_point> knows_shadow_at;  // answers clients' GetNextCACert with 200 from
    std::optional<time_point> lapses_at;        // the RA certificate expires before the CA
};
ra_timer ra_shadow_timer(const validity& ca, duration cert_lifetime,
                         const trustpoint_config& ra_trustpoint, time_point enrolled_at,
                         std::optional<time_point> manual_rollover,
                         std::optional<time_point> ca_shadow_at, const client_model& client);

struct trustpoint_generation {
    std::string name;
    storm_verdict verdict = storm_verdict::safe;
    // The fleet's first GetNextCACert of this generation fall in [earliest, latest]
    // (generation 2: one instant, the herd). nullopt without auto-enroll.
    std::optional<time_point> earliest_request;
    std::optional<time_point> latest_request;
    bool phase_locked = false;  // generation 2: every client asks at once
    double max_404_days = 0;    // earliest request -> the front server answers 200
    // Share of a uniformly phased fleet (generation 1) that asks before the front server has
    // the shadow; 1 for a phase-locked herd that is early, 0 when nobody is.
    double share_hit = 0;
    // Generation 2: minutes an 80-per-minute throttle needs to serve the herd (GetNextCACert
    // and PKCSReq per client); nullopt without fleet_size or without a throttle.
    std::optional<double> herd_minutes;
    std::vector<std::string> findings;
};

struct generation_verdict {
    int number = 1;  // 1: the CA created at ca_created_at; 2: its successor (and every later one)
    validity ca;
    std::optional<time_point> ca_shadow_at;     // nullopt: never generated before expiry
    std::optional<ra_timer> ra;                 // with an RA
    std::optional<time_point> front_shadow_at;  // the server the clients reach answers 200
    storm_verdict verdict = storm_verdict::safe;
    std::vector<trustpoint_generation> trustpoints;
    std::vector<std::string> findings;
};

// IOS configuration text to type on one device.
struct device_change {
    std::string device;               // "CA crypto pki server ca-server" / "RA ..." / "clients"
    std::vector<std::string> config;  // "crypto pki server ca-server", " auto-rollover 365"
    std::vector<std::string> exec;    // "crypto pki server ra-server rollover" (with when)
    std::vector<std::string> why;     // the arithmetic, with the user's numbers
};

struct change_set {
    // The same change as --set KEY=VALUE of the registry, in order: what simulate applies.
    std::vector<std::string> settings;
    std::vector<device_change> devices;
    // analyze_fleet(apply_change_set(input)) is safe in every generation.
    bool verified_safe = false;
    std::vector<std::string> cannot_fix;  // what no change here can make safe, and why
    bool empty() const { return settings.empty(); }
};

struct fleet_verdict {
    storm_verdict verdict = storm_verdict::safe;  // the worst of every generation
    storm_analysis first;  // generation 1 per trustpoint, as analyze_storm (plus the RA)
    std::vector<generation_verdict> generations;  // [0] generation 1, [1] generation 2
    std::optional<change_set> change;             // when not safe
    std::vector<std::string> findings;
};

fleet_verdict analyze_fleet(const fleet_input& in);

// `in` with the change set's settings applied through the registry (settings.hpp): check
// verifies exactly what simulate will apply.
// Where --set KEY=VALUE lands in a fleet input (check and apply_change_set share it).
settings_target settings_target_of(fleet_input& in);
tl::expected<fleet_input, std::string> apply_change_set(fleet_input in, const change_set& c);

// "(1 − 0.70) × min(600, 1825) = 180 days" with the user's numbers.
std::string min_overlap_arithmetic(const server_config& ca, const trustpoint_config& tp);

}  // namespace pkisim::timers
