// The simulator's view of one SCEP listener (CA or RA): the timers/ connection limiter plus
// the bookkeeping of open connections, fed with batches of arrivals.
//
//   server_model srv{timers::limiter_config{}};
//   arrivals a{.base = 1000, .spread = 1000, .total = 300, .first = 0, .count = 300};
//   admission_counts c = srv.admit(origin, a, 36);   // c.accepted == 80, c.ignored == 220
#pragma once

#include <algorithm>
#include <cstdint>
#include <queue>
#include <vector>

#include "pkisim/timers/limiter.hpp"
#include "pkisim/timers/time.hpp"

namespace pkisim::sim {

using ms_t = std::int64_t;  // milliseconds since the scenario start

struct admission_counts {
    std::uint64_t accepted = 0;
    std::uint64_t dropped = 0;
    std::uint64_t ignored = 0;
    // Of `ignored`: attempts that tripped the throttle. The kernel accepted them and the
    // server holds them unanswered (no SYN retransmission can save them); the others had their
    // SYN dropped by the deaf listener.
    std::uint64_t held = 0;
};

// Where the members of one cohort reach a server: member j of the instant's K connections
// arrives at base + floor(j × spread / K), j in [first, first + count). Connections made in
// the same time step are spread evenly over the step, in state order, in both engines alike, so
// that quantizing client timers to the grid does not pile them onto one millisecond.
struct arrivals {
    ms_t base = 0;
    ms_t spread = 0;
    std::uint64_t total = 1;  // K
    std::uint64_t first = 0;
    std::uint64_t count = 0;
    ms_t time_of(std::uint64_t j) const {
        if (spread == 0)
            return base;  // one instant: no 64-bit division (2 % of a 10^7-client run)
        return base + static_cast<ms_t>(j * static_cast<std::uint64_t>(spread) / total);
    }
    // time_of(j) for a j that mostly moves by one: the quotient and remainder of j × spread /
    // total are carried from one member to the next instead of divided anew (a 64-bit division
    // per attempt was 10 % of the shadow-loop phase at 10^7 clients, issue 12 §4). Exact: the
    // remainder stays in [0, total).
    class cursor {
      public:
        cursor(const arrivals& a, std::uint64_t j) : a_(a) { seek(j); }
        void seek(std::uint64_t j) {
            if (a_.spread == 0)
                return;
            const std::uint64_t p = j * static_cast<std::uint64_t>(a_.spread);
            q_ = p / a_.total;
            r_ = p % a_.total;
        }
        void step() {
            if (a_.spread == 0)
                return;
            if (!have_step_) {
                dq_ = static_cast<std::uint64_t>(a_.spread) / a_.total;
                dr_ = static_cast<std::uint64_t>(a_.spread) % a_.total;
                have_step_ = true;
            }
            q_ += dq_;
            r_ += dr_;
            if (r_ >= a_.total) {
                r_ -= a_.total;
                ++q_;
            }
        }
        ms_t time() const { return a_.base + static_cast<ms_t>(q_); }

      private:
        const arrivals& a_;
        std::uint64_t q_ = 0;
        std::uint64_t r_ = 0;
        std::uint64_t dq_ = 0;
        std::uint64_t dr_ = 0;
        bool have_step_ = false;
    };
    // The first member index >= lo that arrives at or after t.
    std::uint64_t first_at_or_after(ms_t t, std::uint64_t lo) const {
        if (t <= base)
            return lo;
        const auto need = static_cast<std::uint64_t>(t - base) * total;
        const auto sp = static_cast<std::uint64_t>(std::max<ms_t>(spread, 1));
        const std::uint64_t j = (need + sp - 1) / sp;
        return std::max(lo, std::min(j, first + count));
    }
};

// One SCEP listener (CA or RA) behind the timers/ limiter policy.
struct server_model {
    timers::connection_limiter limiter;
    std::priority_queue<ms_t, std::vector<ms_t>, std::greater<>> closes;
    timers::duration deaf_seen{0};
    ms_t last_ = 0;  // the limiter wants times that never go backwards

    explicit server_model(const timers::limiter_config& cfg) : limiter(cfg) {}

    void release_until(timers::time_point origin, ms_t t) {
        while (!closes.empty() && closes.top() <= t) {
            limiter.on_close(origin + timers::duration{closes.top()});
            closes.pop();
        }
    }

    // The connection attempts of `a`, each held open for `service` if accepted. Every attempt
    // is decided by the limiter, except that runs of attempts whose outcome cannot change are
    // counted in one go: while the listener is deaf every attempt is ignored until it hears
    // again, and while max-connections are open every attempt is dropped until the next one
    // closes (a refused attempt changes nothing the policy looks at;
    // tests/sim/limiter_batch_test.cpp pins this against one-by-one calls). `accepted_at`
    // receives the arrival times of accepted attempts when not null.
    admission_counts admit(timers::time_point origin, const arrivals& a, ms_t service,
                           std::vector<ms_t>* accepted_at = nullptr) {
        admission_counts out;
        if (!limiter.config().enabled) {
            // `--ios-limits off`: the policy admits everything and counts nothing we need.
            out.accepted = a.count;
            if (accepted_at != nullptr)
                for (std::uint64_t j = a.first; j < a.first + a.count; ++j)
                    accepted_at->push_back(a.time_of(j));
            return out;
        }
        const std::uint64_t end = a.first + a.count;
        std::uint64_t j = a.first;
        arrivals::cursor at{a, j};
        // Moves on to member j2 (> j): by one step, or by a new division for a jump.
        const auto advance = [&](std::uint64_t j2) {
            if (j2 >= end) {
                j = j2;
                return;
            }
            if (j2 == j + 1) {
                at.step();
            } else {
                at.seek(j2);
            }
            j = j2;
        };
        while (j < end) {
            const ms_t t = std::max(last_, at.time());
            last_ = t;
            release_until(origin, t);
            const timers::time_point tp = origin + timers::duration{t};
            if (limiter.is_deaf(tp)) {
                const ms_t until = (limiter.deaf_until() - origin).count();
                const std::uint64_t j2 = std::max(j + 1, a.first_at_or_after(until, j));
                out.ignored += j2 - j;
                advance(j2);
                continue;
            }
            switch (limiter.on_attempt(tp)) {
                case timers::admission::accepted:
                    ++out.accepted;
                    closes.push(t + service);
                    if (accepted_at != nullptr)
                        accepted_at->push_back(t);
                    advance(j + 1);
                    break;
                case timers::admission::dropped_max_connections: {
                    const ms_t next_close = closes.empty() ? t + 1 : closes.top();
                    const std::uint64_t j2 = std::max(j + 1, a.first_at_or_after(next_close, j));
                    out.dropped += j2 - j;
                    advance(j2);
                    break;
                }
                case timers::admission::ignored_deaf:
                    ++out.ignored;
                    ++out.held;
                    advance(j + 1);
                    break;
            }
        }
        return out;
    }
    // Deaf time started since the last call.
    ms_t take_deaf_ms() {
        const auto now = limiter.counters().deaf_time;
        const auto d = now - deaf_seen;
        deaf_seen = now;
        return d.count();
    }
};

}  // namespace pkisim::sim
