// Per-client forecast (forecast.hpp): the model §2 timers chained with rule 2 (truncation).
#include "pkisim/timers/forecast.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace pkisim::timers {

client_forecast forecast_client(const trustpoint_config& tp, router_phase phase,
                                const std::optional<validity>& id, time_point acts_at,
                                time_point from, const validity& ca, duration cert_lifetime,
                                std::optional<time_point> shadow_available) {
    client_forecast f;
    if (phase == router_phase::rollover || phase == router_phase::rollover_ca)
        return f;  // it already holds the next CA: no GetNextCACert before the switchover
    if (phase == router_phase::unknown) {
        f.reason = "state unknown";
        return f;
    }
    validity cert{};
    if (phase == router_phase::current && id) {
        cert = *id;
    } else {
        // Pending or no certificate: it enrolls when it next acts (rule 2 truncates).
        cert = issued_validity(cert_lifetime, std::max(acts_at, from), ca.not_after);
    }
    // Each RENEW is granted when asked; a renewal that ends with the CA arms SHADOW next. The
    // number of renewals is bounded by CA life / shortest certificate; 10,000 is a guard.
    for (int guard = 0; guard < 10'000; ++guard) {
        const auto rp = client_renewal(tp, cert, ca.not_after);
        if (rp.kind == renewal_kind::none) {
            f.outage = true;
            f.reason = fmt::format("no auto-enroll: the certificate expires {}",
                                   to_iso8601(cert.not_after));
            return f;
        }
        const time_point t = std::max(rp.at, from);
        if (rp.kind == renewal_kind::renew) {
            if (t >= ca.not_after) {
                f.outage = true;
                f.reason = "renews only when the CA has expired";
                return f;
            }
            cert = issued_validity(cert_lifetime, t, ca.not_after);
            continue;
        }
        f.first_get_next_ca_cert = t;
        if (t >= ca.not_after) {
            f.outage = true;
            f.reason = "asks for the next CA only when its CA has expired";
            return f;
        }
        if (!shadow_available || *shadow_available >= ca.not_after) {
            f.outage = true;
            f.window_end = ca.not_after;
            f.window_days = to_days(ca.not_after - t);
            f.reason = "its server has no next CA before the CA expires";
            return f;
        }
        f.window_end = std::max(t, *shadow_available);
        f.window_days = to_days(*f.window_end - t);
        return f;
    }
    f.reason = "no SHADOW point found";
    return f;
}

}  // namespace pkisim::timers
