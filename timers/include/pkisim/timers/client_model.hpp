// The IOS client behaviours that are not a configuration command: the shadow retry interval,
// the connect timeout, what a GetNextCACert answer makes the client do next.
// Defaults are model assumptions (ios-pki-model.md §2.3, §2.5); every one is a parameter.
//
//   client_model m;                                   // 20 s shadow retry, 10 s connect timeout
//   auto next = shadow_step(shadow_state::get_new_ca_cert, http_outcome::not_found, now, ca_end,
//   m);
//   // next.state == get_new_ca_cert_wait_for_retry, next.at == now + 20 s
#pragma once

#include <optional>
#include <string_view>

#include "pkisim/timers/limiter.hpp"
#include "pkisim/timers/time.hpp"

namespace pkisim::timers {

struct client_model {
    // Seed 002: 03:14:19.184 -> 03:14:39.187, one retry every ~20 s.
    duration shadow_retry_interval = seconds{20};
    // A connection that finds the listener deaf gets no SYN-ACK; the client gives up after this.
    duration connect_timeout = seconds{10};
    // The client's TCP retransmits an unanswered SYN after this, then doubling (RFC 6298 §2.1,
    // §5.5: 1 s, so at 1, 3, 7 s after the start); 0 = never. The live server drops SYNs while
    // deaf and answers the first one after the deaf period ends (scep_server/src/server.cpp),
    // so a connect begun late in a deaf period gets in on a retransmission instead of timing
    // out. The default is what `pkisim serve` does with a Linux client in real time; against a
    // warped server the retransmissions come R times later in lab time (set R s).
    duration syn_retransmit = seconds{1};
};

// IOS debug names where known (seed 002), our labels otherwise (ios-pki-model.md §2.3).
enum class shadow_state {
    idle,
    get_new_ca_cert,                 // IOS: GET_NEW_CA_CERT
    get_new_ca_cert_wait_for_retry,  // IOS: GET_NEW_CA_CERT_WAIT_FOR_RETRY
    get_new_router_cert,             // ours: enrolling the rollover ID certificate
    shadow_ready,                    // ours: rollover CA + rollover ID certificate stored
    expired,                         // ours: CA expired before the client got the next CA
};
std::string_view to_string(shadow_state s);

// What came back for one HTTP attempt.
enum class http_outcome {
    ok,         // 200 with the expected content
    not_found,  // 404 (no shadow yet)
    refused,    // dropped for max-connections (closed at once)
    timed_out,  // listener deaf: no answer until the connect timeout
    pending,    // SCEP PENDING
    failure,    // SCEP FAILURE
};

struct shadow_transition {
    shadow_state state;
    time_point at;  // when the client acts next
};
// §2.3: 404 / refused / timed out -> WAIT_FOR_RETRY, next attempt after the shadow retry
// interval; 200 -> GET_NEW_ROUTER_CERT at once; at or after CA notAfter without the next CA
// -> expired.
shadow_transition shadow_step(shadow_state current, http_outcome outcome, time_point now,
                              time_point ca_not_after, const client_model& model);

// What one connection attempt that the listener did not serve costs the client (model §2.5,
// §3): the one rule for "what a client sees" that the real server (scep_server/src/server.cpp)
// implements on the wire and the simulator charges.
//   dropped_max_connections -> refused: the server accepts and resets at once; the client
//                              knows after one round trip.
//   ignored_deaf            -> timed_out: no answer, and the client gives up after its timeout
//                              (IOS: 10 s, shorter than the 15 s deaf period). Either the deaf
//                              listener drops the SYN (no SYN-ACK, no RST; seed 002: "a telnet
//                              to port 80 times out"), or -- the attempt that trips the throttle,
//                              and handshakes the kernel completed before the filter went up --
//                              the server holds the connection open without reading or answering
//                              it and resets it only when the deaf period ends.
//   accepted                -> the attempt is served; not an unanswered attempt (ok, cost 0).
struct unanswered_attempt {
    http_outcome outcome;
    duration after;  // from the moment the client starts connecting
};
unanswered_attempt attempt_cost(admission decision, duration round_trip, const client_model& model);

// THE timing rule of every retry (issue 10 §3): a client's next timer -- the shadow retry
// interval after a 404, the enrollment retry period after a failure -- is armed when the attempt
// is over for the client, not when it started:
//   accepted                -> when the answer arrived: start + round trip + service time
//   dropped_max_connections -> when the reset arrived: start + round trip
//   ignored_deaf            -> when the client gave up: start + connect timeout
// The exact and cohort engines of the simulator (sim/src/simulation.cpp) and the live fleet
// (loadgen/) all feed this instant to shadow_step() / the retry period. `outcome` is ok for an
// accepted attempt (the caller knows the HTTP/SCEP answer).
struct attempt_end {
    http_outcome outcome;
    time_point completed;
};
attempt_end attempt_completion(admission decision, time_point connect_start, duration round_trip,
                               duration service, const client_model& model);

// A connect whose SYN the deaf listener dropped (not the connection held unanswered, which
// was accepted by the kernel): the offset from the connect's start of the first SYN
// retransmission after `after` that the listener hears (at or after `deaf_left`, when its deaf
// period ends) and that comes before the connect timeout; nullopt = the client times out.
std::optional<duration> syn_retransmission(duration after, duration deaf_left,
                                           const client_model& model);

}  // namespace pkisim::timers
