// Storm analysis in closed form (ios-pki-model.md §4): for a CA server section and the
// trustpoints that enroll with it, when the first GetNextCACert comes, whether the shadow
// exists by then, the 404 window, the minimum safe overlap and a recommendation.
//
//   auto a = analyze_storm(server, ca_created_at, trustpoints, storm_options{});
//   if (a.verdict == storm_verdict::storm)
//       std::cout << a.trustpoints[0].max_404_window_days << " days of 404\n";
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "pkisim/timers/client_model.hpp"
#include "pkisim/timers/config.hpp"
#include "pkisim/timers/limiter.hpp"
#include "pkisim/timers/time.hpp"
#include "pkisim/timers/timeline.hpp"

namespace pkisim::timers {

enum class storm_verdict { safe, storm, outage };
std::string_view to_string(storm_verdict v);

struct storm_options {
    client_model client;
    limiter_config limiter;  // for "N looping clients exceed the throttle"
    // Recommended overlap = max(2 × minimum safe overlap, minimum + 30 days), rounded up to
    // a multiple of 5 days, kept below the CA lifetime. Factor and margin are parameters.
    double recommendation_factor = 2.0;
    duration recommendation_margin = days{30};
    // The server the clients reach when it is not the CA (an RA, model §1 rule 8): from when it
    // answers GetNextCACert with 200 (verdict.hpp computes it from the RA's own timer).
    // nullopt `knows_shadow_at` = never before the CA expires. Unset = the clients ask the CA.
    struct front_server {
        std::string name;  // "RA crypto pki server ra-server"
        std::optional<time_point> knows_shadow_at;
        // true: a client asking at exactly `knows_shadow_at` still gets a 404 (the RA learns
        // of the shadow a round trip after it asks).
        bool inclusive = true;
        std::string why;  // "its own SHADOW timer at ... (auto-enroll 70 of a 565-day certificate)"
    };
    std::optional<front_server> front;
};

struct trustpoint_storm {
    std::string name;
    storm_verdict verdict = storm_verdict::safe;
    // The earliest GetNextCACert of any client in steady state: a certificate issued exactly
    // min(client lifetime, CA lifetime) before CA expiry. nullopt without auto-enroll.
    std::optional<time_point> first_get_next_ca_cert;
    double first_get_next_ca_cert_days_before_ca_expiry = 0;
    // The latest first request in steady state (a client whose last certificate is the
    // shortest one that still ends with the CA): the fleet's first requests fall in
    // [first_get_next_ca_cert, last_first_get_next_ca_cert].
    // With client certificates at least as long as the CA (every certificate truncated), the
    // requests depend on when each client first enrolled and run up to the CA's expiry.
    std::optional<time_point> last_first_get_next_ca_cert;
    bool requests_follow_enrollment = false;
    // Share of a uniformly phased fleet whose first request comes before the server it asks
    // has the shadow (enrollments spread over the CA's life when requests_follow_enrollment).
    double share_hit = 0;
    double max_404_window_days = 0;    // worst case: earliest request -> shadow (or CA expiry)
    double min_safe_overlap_days = 0;  // (1 − P) × min(client lifetime, CA lifetime)
    double recommended_overlap_days = 0;
    // Requests per minute of one looping client, and how many looping clients reach the
    // throttle (seed 002: 3 per minute, 27 clients).
    double requests_per_minute_per_client = 0;
    int clients_to_reach_throttle = 0;
    std::vector<std::string> findings;  // sentences a network engineer can act on
};

struct storm_analysis {
    storm_verdict verdict = storm_verdict::safe;  // the worst of the trustpoints
    validity ca;
    std::optional<time_point> shadow_generated_at;
    std::optional<double> overlap_days;
    // When the server the clients reach answers 200 (the RA's, or the CA's shadow time).
    std::optional<time_point> front_shadow_at;
    std::vector<trustpoint_storm> trustpoints;
    std::vector<std::string> findings;  // server-wide (no auto-rollover, overlap ≥ CA life ...)
};

storm_analysis analyze_storm(const server_config& server, time_point ca_created_at,
                             std::span<const trustpoint_config> trustpoints,
                             const storm_options& options = {});

}  // namespace pkisim::timers
