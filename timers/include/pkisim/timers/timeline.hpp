// Certificate timeline rules of ios-pki-model.md §1 (server) and §2 (client timers).
// Pure functions: every instant comes in as an argument.
//
//   auto ca = ca_validity(server, created_at);                   // rule 1
//   auto id = issued_validity(server.cert_lifetime, grant, ca.not_after);   // rule 2: truncation
//   auto next = client_renewal(tp, id, ca.not_after);            // RENEW or SHADOW point
//   auto shadow_at = shadow_generation_time(ca.not_after, server.auto_rollover);   // rule 3
#pragma once

#include <optional>

#include "pkisim/timers/config.hpp"
#include "pkisim/timers/time.hpp"

namespace pkisim::timers {

struct validity {
    time_point not_before;
    time_point not_after;
    duration length() const { return not_after - not_before; }
    bool contains(time_point t) const { return t >= not_before && t < not_after; }
};

// Rule 1: the CA certificate created at the first `no shutdown`.
validity ca_validity(const server_config& server, time_point created_at);

// Rule 2: notBefore = grant time, notAfter = min(notBefore + lifetime, CA notAfter).
validity issued_validity(duration cert_lifetime, time_point granted_at, time_point ca_not_after);
// True when rule 2 cut the certificate short (it ends with its CA).
bool is_truncated(const validity& issued, time_point ca_not_after);

// Rule 3: when the shadow CA is generated. nullopt without auto-rollover.
std::optional<time_point> shadow_generation_time(time_point ca_not_after,
                                                 std::optional<duration> overlap);
// Rule 3 for one CA generation, decided from its creation: notAfter − overlap, or the creation
// itself when that is already past (overlap ≥ CA lifetime: the shadow is generated at once, as
// for an overlap raised on a live server). nullopt without auto-rollover, or when the shadow
// would only come at notAfter (`auto-rollover 0`: no usable overlap). The simulator's CA
// generations and `check` both use this.
std::optional<time_point> shadow_time_of_generation(const validity& ca,
                                                    std::optional<duration> overlap);
// Rule 3, on a running server: the scheduled time, or `now` if the overlap was raised so that
// notAfter − overlap is already past (the seed's fix applied to a live system). nullopt if no
// auto-rollover, or if the CA has already expired.
std::optional<time_point> shadow_generation_due(time_point ca_not_after,
                                                std::optional<duration> overlap, time_point now);
// Rule 3: the shadow CA certificate: notBefore = current CA notAfter, same lifetime as configured.
validity shadow_ca_validity(time_point ca_not_after, duration ca_lifetime);
// Rule 6: a rollover ID certificate issued by the shadow CA.
validity rollover_id_validity(duration cert_lifetime, const validity& shadow_ca);
// Rule 7: the shadow becomes active at the current CA's notAfter.
inline time_point switchover_time(time_point ca_not_after) { return ca_not_after; }

// Credential expiry alerts (`show crypto pki timers`, section Expiry Alert Timers: `CS(name)`,
// `CA(tp)`, `ID(tp)`): the first 60 days before notAfter, then weekly until the last week, then
// daily (ios-pki-research.md §2, S6 [DOC-seen]; the weekly grid counted from the first alert is
// our reading). The next alert strictly after `now`; nullopt once no alert is left before
// notAfter.
std::optional<time_point> next_expiry_alert(time_point not_after, time_point now);

// Client §2 timers.
enum class renewal_kind {
    renew,   // RENEW timer: enroll again with the current CA
    shadow,  // SHADOW timer: the ID certificate ends with the CA; fetch the next CA first
    none,    // no auto-enroll: nothing happens until the certificate expires
};
struct renewal_point {
    renewal_kind kind = renewal_kind::none;
    time_point at{};  // meaningless when kind == none
};
// §2 timer 1: RENEW = notBefore + P % × (notAfter − notBefore);
// §2 timer 2: SHADOW instead of RENEW, same instant, when notAfter ≥ CA notAfter.
renewal_point client_renewal(const trustpoint_config& tp, const validity& id,
                             time_point ca_not_after);
// Same rule from the raw values (the simulator's hot path uses this one).
renewal_point client_renewal(int auto_enroll_percent, bool auto_enroll, const validity& id,
                             time_point ca_not_after);

}  // namespace pkisim::timers
