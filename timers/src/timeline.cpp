// Certificate timeline rules of ios-pki-model.md §1 rules 1–7 and §2 timers 1–2.
#include "pkisim/timers/timeline.hpp"

#include <algorithm>

namespace pkisim::timers {

validity ca_validity(const server_config& server, time_point created_at) {
    // Rule 1: notBefore = first `no shutdown`, notAfter = + lifetime ca-certificate.
    return {created_at, created_at + server.ca_lifetime};
}

validity issued_validity(duration cert_lifetime, time_point granted_at, time_point ca_not_after) {
    // Rule 2: no back-dating; a certificate never outlives its issuer.
    return {granted_at, std::min(granted_at + cert_lifetime, ca_not_after)};
}

bool is_truncated(const validity& issued, time_point ca_not_after) {
    // §2 timer 2 uses "ends with the CA": notAfter >= CA notAfter.
    return issued.not_after >= ca_not_after;
}

std::optional<time_point> shadow_generation_time(time_point ca_not_after,
                                                 std::optional<duration> overlap) {
    if (!overlap) {
        return std::nullopt;
    }
    return ca_not_after - *overlap;
}

std::optional<time_point> shadow_time_of_generation(const validity& ca,
                                                    std::optional<duration> overlap) {
    auto s = shadow_generation_time(ca.not_after, overlap);
    if (!s || *s >= ca.not_after) {
        return std::nullopt;
    }
    return std::max(*s, ca.not_before);
}

std::optional<time_point> shadow_generation_due(time_point ca_not_after,
                                                std::optional<duration> overlap, time_point now) {
    if (!overlap || now >= ca_not_after) {
        return std::nullopt;
    }
    // Rule 3: overlap raised on a live server so that notAfter − overlap is past -> now.
    return std::max(ca_not_after - *overlap, now);
}

validity shadow_ca_validity(time_point ca_not_after, duration ca_lifetime) {
    return {ca_not_after, ca_not_after + ca_lifetime};
}

validity rollover_id_validity(duration cert_lifetime, const validity& shadow_ca) {
    // Rule 6: issued by the shadow CA from its notBefore, truncated at its notAfter.
    return issued_validity(cert_lifetime, shadow_ca.not_before, shadow_ca.not_after);
}

std::optional<time_point> next_expiry_alert(time_point not_after, time_point now) {
    const time_point first = not_after - days{60};
    if (now < first)
        return first;
    const time_point last_week = not_after - days{7};
    if (now < last_week)
        return std::min(first + days{7} * ((now - first) / days{7} + 1), last_week);
    const time_point daily = last_week + days{1} * ((now - last_week) / days{1} + 1);
    if (daily >= not_after)
        return std::nullopt;
    return daily;
}

renewal_point client_renewal(const trustpoint_config& tp, const validity& id,
                             time_point ca_not_after) {
    return client_renewal(tp.auto_enroll_percent, tp.auto_enroll, id, ca_not_after);
}

renewal_point client_renewal(int auto_enroll_percent, bool auto_enroll, const validity& id,
                             time_point ca_not_after) {
    if (!auto_enroll) {
        return {renewal_kind::none, {}};
    }
    const int p = std::clamp(auto_enroll_percent, 0, 100);
    // §2 timer 1: notBefore + P % of the life, computed in milliseconds (integer, exact for
    // whole-minute lifetimes times whole percents).
    const auto life = id.not_after - id.not_before;
    const time_point at =
        id.not_before + duration{life.count() / 100 * p + life.count() % 100 * p / 100};
    // §2 timer 2: a certificate that ends with the CA needs the next CA first.
    const renewal_kind kind =
        is_truncated(id, ca_not_after) ? renewal_kind::shadow : renewal_kind::renew;
    return {kind, at};
}

}  // namespace pkisim::timers
