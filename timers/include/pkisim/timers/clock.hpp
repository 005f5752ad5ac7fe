// Clocks that the server reads and that tests control (injected, never system_clock inside rules).
//
//   manual_clock m{parse_iso8601("2030-01-01").value()};
//   warped_clock w{m, parse_iso8601("2030-01-01").value(), 86400.0};   // one day per second
//   m.advance(seconds{1});   // w.now() is now 2030-01-02
#pragma once

#include <atomic>
#include <mutex>

#include "pkisim/timers/time.hpp"

namespace pkisim::timers {

class clock {
public:
    virtual ~clock() = default;
    virtual time_point now() const = 0;
    // Real duration that corresponds to `d` of this clock's time (used to arm real timers for a
    // warped clock). Identity for real-time clocks.
    virtual duration to_real(duration d) const { return d; }
};

// The host's UTC clock. The only place in timers/ that reads the wall clock.
class system_clock final : public clock {
public:
    time_point now() const override;
};

// A test clock that moves only when told.
class manual_clock final : public clock {
public:
    explicit manual_clock(time_point start = {}) : now_(start.time_since_epoch().count()) {}
    time_point now() const override { return time_point{duration{now_.load()}}; }
    void set(time_point t) { now_.store(t.time_since_epoch().count()); }
    void advance(duration d) { now_.fetch_add(d.count()); }

private:
    std::atomic<duration::rep> now_;
};

// Lives through years in minutes: now = start + rate × (base.now() − base time at construction).
class warped_clock final : public clock {
public:
    warped_clock(const clock& base, time_point start, double rate);
    time_point now() const override;
    duration to_real(duration d) const override;
    double rate() const { return rate_; }
    time_point start() const { return start_; }

private:
    const clock& base_;
    time_point start_;
    time_point base_origin_;
    double rate_;
};

}  // namespace pkisim::timers
