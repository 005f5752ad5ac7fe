// One client's way to its first GetNextCACert, in closed form: the renewals before it (each
// granted when asked), the SHADOW point that follows, and the 404 window until its server has
// the next CA. The per-router counterpart of analyze_storm(); `pkisim inventory` and the
// simulator's clients.csv print it, and the simulation runs the same timers.
//
//   auto f = forecast_client(tp, router_phase::current, id_cert, capture_time, ca_cert,
//                            server.cert_lifetime, shadow_generated_at);
//   if (f.first_get_next_ca_cert) std::cout << to_iso8601(*f.first_get_next_ca_cert) << '\n';
#pragma once

#include <optional>
#include <string>

#include "pkisim/timers/config.hpp"
#include "pkisim/timers/ios_show.hpp"
#include "pkisim/timers/time.hpp"
#include "pkisim/timers/timeline.hpp"

namespace pkisim::timers {

struct client_forecast {
    // The SHADOW point (the first GetNextCACert), not before `from`. nullopt when the client
    // never asks before its CA expires (rollover already installed, no auto-enroll ...).
    std::optional<time_point> first_get_next_ca_cert;
    // The 404 window: from the first request until the server has the next CA (empty when it
    // already has it).
    std::optional<time_point> window_end;
    double window_days = 0;
    bool outage = false;
    std::string reason;  // why outage, in words
};

// `id`: the current ID certificate (current/pending phases); `acts_at`: when a pending or
// certificate-less client enrolls; `from`: the start (capture time); `ca`: the CA certificate
// the client holds; `shadow_available`: when its server (CA, or the RA) has the next CA.
client_forecast forecast_client(const trustpoint_config& tp, router_phase phase,
                                const std::optional<validity>& id, time_point acts_at,
                                time_point from, const validity& ca, duration cert_lifetime,
                                std::optional<time_point> shadow_available);

}  // namespace pkisim::timers
