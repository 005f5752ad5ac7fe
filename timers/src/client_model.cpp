// Client shadow state machine steps (ios-pki-model.md §2.3).
#include "pkisim/timers/client_model.hpp"

namespace pkisim::timers {

std::string_view to_string(shadow_state s) {
    switch (s) {
        case shadow_state::idle:
            return "IDLE";
        case shadow_state::get_new_ca_cert:
            return "GET_NEW_CA_CERT";
        case shadow_state::get_new_ca_cert_wait_for_retry:
            return "GET_NEW_CA_CERT_WAIT_FOR_RETRY";
        case shadow_state::get_new_router_cert:
            return "GET_NEW_ROUTER_CERT";
        case shadow_state::shadow_ready:
            return "SHADOW_READY";
        case shadow_state::expired:
            return "EXPIRED";
    }
    return "UNKNOWN";
}

shadow_transition shadow_step(shadow_state current, http_outcome outcome, time_point now,
                              time_point ca_not_after, const client_model& model) {
    // Rollover certificates already stored: nothing more to fetch; the switchover happens at
    // CA notAfter (model §2.3 last bullet).
    if (current == shadow_state::shadow_ready) {
        return {shadow_state::shadow_ready, ca_not_after};
    }
    // Seed 002: the loop lasts "until the shadow is generated" or the CA expires; after CA
    // notAfter a client without the next CA has nothing valid left.
    if (now >= ca_not_after && outcome != http_outcome::ok) {
        return {shadow_state::expired, now};
    }
    switch (outcome) {
        case http_outcome::ok:
            if (current == shadow_state::get_new_router_cert) {
                return {shadow_state::shadow_ready, now};
            }
            // 200 to GetNextCACert: store the rollover CA, enroll at once (§2.3).
            return {shadow_state::get_new_router_cert, now};
        case http_outcome::pending:
            // A pending rollover enrollment is polled like any other (§2.4, retry period is
            // the trustpoint's; the caller supplies it). Stay in GET_NEW_ROUTER_CERT.
            return {shadow_state::get_new_router_cert, now};
        case http_outcome::not_found:
        case http_outcome::refused:
        case http_outcome::timed_out:
        case http_outcome::failure: {
            if (current == shadow_state::get_new_router_cert) {
                // A failed rollover enrollment is retried after the shadow retry interval too.
                return {shadow_state::get_new_router_cert, now + model.shadow_retry_interval};
            }
            // Seed 002 log: 404 -> GET_NEW_CA_CERT_WAIT_FOR_RETRY, next try 20 s later.
            const time_point next = now + model.shadow_retry_interval;
            return {shadow_state::get_new_ca_cert_wait_for_retry, next};
        }
    }
    return {current, now};
}

unanswered_attempt attempt_cost(admission decision, duration round_trip,
                                const client_model& model) {
    switch (decision) {
        case admission::dropped_max_connections:
            // Accepted by the kernel, then reset at once by the listener: one round trip.
            return {http_outcome::refused, round_trip};
        case admission::ignored_deaf:
            // No answer while deaf (SYN dropped, or connection held unanswered): the client's
            // own timeout decides (model §2.5).
            return {http_outcome::timed_out, model.connect_timeout};
        case admission::accepted:
            break;
    }
    return {http_outcome::ok, duration{0}};
}

attempt_end attempt_completion(admission decision, time_point connect_start, duration round_trip,
                               duration service, const client_model& model) {
    if (decision == admission::accepted)
        return {http_outcome::ok, connect_start + round_trip + service};
    const auto cost = attempt_cost(decision, round_trip, model);
    return {cost.outcome, connect_start + cost.after};
}

std::optional<duration> syn_retransmission(duration after, duration deaf_left,
                                           const client_model& model) {
    if (model.syn_retransmit <= duration{0})
        return std::nullopt;
    // Retransmissions at rto × (2^k − 1): 1, 3, 7, 15 s for rto = 1 s.
    duration at = model.syn_retransmit;
    duration step = model.syn_retransmit;
    while (at < model.connect_timeout) {
        if (at > after && at >= deaf_left)
            return at;
        step *= 2;
        at += step;
    }
    return std::nullopt;
}

}  // namespace pkisim::timers
