#include "pkisim/timers/client_model.hpp"

#include <gtest/gtest.h>

namespace {

using namespace pkisim::timers;

TEST(shadow_state, names_are_the_ios_debug_names) {
    EXPECT_EQ(to_string(shadow_state::get_new_ca_cert), "GET_NEW_CA_CERT");
    EXPECT_EQ(to_string(shadow_state::get_new_ca_cert_wait_for_retry),
              "GET_NEW_CA_CERT_WAIT_FOR_RETRY");
    EXPECT_EQ(to_string(shadow_state::get_new_router_cert), "GET_NEW_ROUTER_CERT");
    EXPECT_EQ(to_string(shadow_state::shadow_ready), "SHADOW_READY");
    EXPECT_EQ(to_string(shadow_state::expired), "EXPIRED");
    EXPECT_EQ(to_string(shadow_state::idle), "IDLE");
}

TEST(client_model, defaults_are_the_seed_retry_and_a_10_s_connect_timeout) {
    const client_model m;
    EXPECT_EQ(m.shadow_retry_interval, seconds{20});
    EXPECT_EQ(m.connect_timeout, seconds{10});
}

TEST(shadow_step, a_404_waits_20_s_then_retries) {
    const client_model m;
    const auto now = *parse_iso8601("2034-07-04T03:14:19.184Z");
    const auto ca_end = *parse_iso8601("2034-12-31");
    for (auto outcome : {http_outcome::not_found, http_outcome::refused, http_outcome::timed_out}) {
        const auto next = shadow_step(shadow_state::get_new_ca_cert, outcome, now, ca_end, m);
        EXPECT_EQ(next.state, shadow_state::get_new_ca_cert_wait_for_retry);
        EXPECT_EQ(next.at, now + seconds{20});
    }
}

TEST(shadow_step, a_200_enrolls_the_rollover_certificate_at_once) {
    const client_model m;
    const auto now = *parse_iso8601("2034-12-02");
    const auto ca_end = *parse_iso8601("2034-12-31");
    const auto next = shadow_step(shadow_state::get_new_ca_cert, http_outcome::ok, now, ca_end, m);
    EXPECT_EQ(next.state, shadow_state::get_new_router_cert);
    EXPECT_EQ(next.at, now);
    const auto done =
        shadow_step(shadow_state::get_new_router_cert, http_outcome::ok, now, ca_end, m);
    EXPECT_EQ(done.state, shadow_state::shadow_ready);
}

TEST(shadow_step, the_loop_ends_expired_at_ca_not_after) {
    const client_model m;
    const auto ca_end = *parse_iso8601("2034-12-31");
    const auto next =
        shadow_step(shadow_state::get_new_ca_cert, http_outcome::not_found, ca_end, ca_end, m);
    EXPECT_EQ(next.state, shadow_state::expired);
}

TEST(shadow_step, the_retry_interval_is_a_parameter) {
    client_model m;
    m.shadow_retry_interval = seconds{60};
    const auto now = *parse_iso8601("2034-07-04");
    const auto next = shadow_step(shadow_state::get_new_ca_cert, http_outcome::not_found, now,
                                  *parse_iso8601("2035-01-01"), m);
    EXPECT_EQ(next.at, now + minutes{1});
}

}  // namespace

namespace {

using namespace pkisim::timers;

TEST(attempt_cost, a_deaf_listener_costs_the_connect_timeout_and_a_drop_one_round_trip) {
    client_model m;
    m.connect_timeout = seconds{7};
    const auto deaf = attempt_cost(admission::ignored_deaf, duration{40}, m);
    EXPECT_EQ(deaf.outcome, http_outcome::timed_out);
    EXPECT_EQ(deaf.after, seconds{7});
    const auto dropped = attempt_cost(admission::dropped_max_connections, duration{40}, m);
    EXPECT_EQ(dropped.outcome, http_outcome::refused);
    EXPECT_EQ(dropped.after, duration{40});
    EXPECT_EQ(attempt_cost(admission::accepted, duration{40}, m).outcome, http_outcome::ok);
}

}  // namespace

namespace {

using namespace pkisim::timers;

// Issue 10 §3: the retry is armed when the attempt is over for the client.
TEST(attempt_completion, the_retry_is_armed_when_the_attempt_is_over_for_the_client) {
    client_model m;
    m.connect_timeout = seconds{7};
    m.shadow_retry_interval = seconds{30};
    const auto start = *parse_iso8601("2034-07-04T03:14:19.184Z");
    const auto ca_end = *parse_iso8601("2034-12-31");
    // Served: the 404 arrives after the round trip and the service time.
    const auto served =
        attempt_completion(admission::accepted, start, duration{4}, duration{36}, m);
    EXPECT_EQ(served.outcome, http_outcome::ok);
    EXPECT_EQ(served.completed, start + duration{40});
    EXPECT_EQ(shadow_step(shadow_state::get_new_ca_cert, http_outcome::not_found, served.completed,
                          ca_end, m)
                  .at,
              start + duration{30'040});
    // Deaf: the client gives up after its connect timeout, whatever the service time.
    const auto deaf =
        attempt_completion(admission::ignored_deaf, start, duration{4}, duration{36}, m);
    EXPECT_EQ(deaf.outcome, http_outcome::timed_out);
    EXPECT_EQ(deaf.completed, start + seconds{7});
    // Dropped for max-connections: the reset arrives after one round trip.
    const auto dropped =
        attempt_completion(admission::dropped_max_connections, start, duration{4}, duration{36}, m);
    EXPECT_EQ(dropped.outcome, http_outcome::refused);
    EXPECT_EQ(dropped.completed, start + duration{4});
}

}  // namespace

namespace {

using namespace pkisim::timers;

TEST(syn_retransmission, a_connect_begun_late_in_a_deaf_period_gets_in_on_the_next_syn) {
    client_model m;  // 1 s initial RTO: SYNs at 0, 1, 3, 7 s; connect timeout 10 s
    // Deaf for 2.5 more seconds: the SYN at 3 s is heard.
    EXPECT_EQ(syn_retransmission(duration{0}, duration{2500}, m), seconds{3});
    // Deaf for 0.4 s: the first retransmission (1 s) is heard.
    EXPECT_EQ(syn_retransmission(duration{0}, duration{400}, m), seconds{1});
    // Deaf for 8 s: the next SYN would be at 15 s, after the 10 s timeout.
    EXPECT_EQ(syn_retransmission(duration{0}, seconds{8}, m), std::nullopt);
    // A retransmission that was heard but ignored again (it tripped the throttle): the next.
    EXPECT_EQ(syn_retransmission(seconds{3}, seconds{3}, m), seconds{7});
    // Off: the model §3 reading, every deaf connect times out.
    m.syn_retransmit = duration{0};
    EXPECT_EQ(syn_retransmission(duration{0}, duration{400}, m), std::nullopt);
    // A warped server at rate 40: the kernel's 1 s is 40 s of lab time, after the timeout.
    m.syn_retransmit = seconds{40};
    EXPECT_EQ(syn_retransmission(duration{0}, duration{400}, m), std::nullopt);
}

}  // namespace
