// The IOS HTTP server's connection limiter (ios-pki-model.md §3), as one policy object that the
// real listener (scep_server/) and the simulator (sim/) both drive.
//
//   connection_limiter lim{limiter_config{.max_connections = 16}};
//   switch (lim.on_attempt(now)) {
//       case admission::accepted: serve(); lim.on_close(later); break;
//       case admission::dropped_max_connections: close_at_once(); break;
//       case admission::ignored_deaf: /* no SYN-ACK: the client times out */ break;
//   }
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "pkisim/timers/time.hpp"

namespace pkisim::timers {

// How "80 connections per minute" is counted; the seed does not say (ios-pki-model.md §3).
enum class throttle_window {
    sliding,           // default: accepted connections in the last 60 s
    fixed_minute,      // accepted connections in the current wall-clock minute bucket
    reset_after_deaf,  // count from the last reset; the counter restarts when the deaf period ends
};
std::string_view to_string(throttle_window w);

struct limiter_config {
    int max_connections = 5;  // `ip http max-connections`, IOS default 5, 1..16
    bool throttle = true;     // the internal rate throttle (not configurable on IOS)
    int throttle_limit = 80;  // connections per window
    duration throttle_window_length = seconds{60};
    duration deaf_period = seconds{15};
    throttle_window window = throttle_window::sliding;
    // false = no limits at all (benchmarks: `--ios-limits off`)
    bool enabled = true;
};

enum class admission { accepted, dropped_max_connections, ignored_deaf };
std::string_view to_string(admission a);

struct limiter_counters {
    std::uint64_t accepted = 0;
    std::uint64_t dropped_max_connections = 0;
    std::uint64_t ignored_deaf = 0;
    std::uint64_t deaf_periods = 0;
    duration deaf_time{0};  // total length of deaf periods started so far
    int open = 0;           // currently open connections
    int peak_open = 0;
};

// Not thread-safe: the server calls it from one strand, the simulator from its event loop.
// Times must not go backwards between calls.
class connection_limiter {
public:
    explicit connection_limiter(limiter_config config = {});

    // A new TCP connection arrives at t. With max-connections reached it is dropped; while
    // deaf it is ignored; when this attempt would exceed the throttle, a deaf period of
    // `deaf_period` starts at t and this attempt is ignored (the 81st attempt in a window).
    admission on_attempt(time_point t);
    // An accepted connection closed.
    void on_close(time_point t);

    bool is_deaf(time_point t) const;
    // When the current deaf period ends (== t if not deaf).
    time_point deaf_until() const { return deaf_until_; }
    const limiter_counters& counters() const { return counters_; }
    const limiter_config& config() const { return config_; }

private:
    int accepted_in_window(time_point t);

    limiter_config config_;
    limiter_counters counters_;
    time_point deaf_until_{};
    // sliding: ring buffer of the last `throttle_limit` accept times.
    std::vector<time_point> ring_;
    std::size_t ring_head_ = 0;
    std::size_t ring_size_ = 0;
    // fixed_minute / reset_after_deaf: a plain counter and its bucket start.
    int bucket_count_ = 0;
    time_point bucket_start_{};
};

}  // namespace pkisim::timers
