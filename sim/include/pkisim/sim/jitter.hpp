// Retry jitter on the simulator's time grid: where the members of one cohort land when each of
// them retries at `when` plus its own uniform jitter (scenario `retry_jitter`).
//
//   jitter_window w{when, 3'000, 1'000, now_tick};     // 3 s of jitter on the 1 s grid
//   std::vector<std::uint64_t> per_tick;
//   split_jitter(w, 5'000, rng, per_tick);             // per_tick[k]: members at tick w.lo + k
//
// A client's jitter is a whole number of milliseconds d, uniform on [0, j) (draw_jitter_ms: what
// the exact engine draws for one client), and the client acts on grid tick
// (when + d + step/2) / step, never before the current tick. For n members drawing
// independently the counts per tick are multinomial(n, w_k / j), where w_k is the number of the j
// values of d that land on tick k. split_jitter draws those counts either member by member (n
// uniforms) or as the multinomial itself (one binomial per tick but the last, conditioned on
// what is left: the standard sequential method), whichever costs fewer draws. Both give the same
// distribution, so the choice changes the draws, never the law: the cohort engine agrees with
// the exact engine in distribution (tests/sim/jitter_test.cpp, engine_agreement_test.cpp).
//
// The binomials come from Boost.Random's binomial_distribution (Hörmann's BTRD, cheap to set
// up: one square root; inversion below a mean of 11), not std::binomial_distribution, whose
// set-up computes logarithms and lgamma for every new (n, p): with one new (n, p) per tick per
// retry that set-up dominated jittered runs (issue 12 §4: 12.6x the time of the same run
// without jitter).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include <boost/random/binomial_distribution.hpp>

namespace pkisim::sim {

// One client's jitter d (ms), uniform on [0, j), from 53 random bits.
template <typename Rng>
std::int64_t draw_jitter_ms(Rng& rng, std::int64_t j) {
    const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
    return static_cast<std::int64_t>(u * static_cast<double>(j));
}

struct jitter_window {
    std::int64_t when = 0;      // ms: the retry time before jitter
    std::int64_t jitter = 1;    // j > 0 (ms): d is uniform on [0, j)
    std::int64_t step = 1;      // the grid (ms per tick)
    std::int64_t min_tick = 0;  // no client acts before this tick (the current one)
    std::int64_t lo = 0;        // first and last tick reached
    std::int64_t hi = 0;

    jitter_window(std::int64_t when_ms, std::int64_t jitter_ms, std::int64_t step_ms,
                  std::int64_t first_tick)
        : when(when_ms), jitter(jitter_ms), step(step_ms), min_tick(first_tick) {
        lo = tick_of(when);
        hi = tick_of(when + jitter - 1);
    }
    // The simulator's rounding to the grid (nearest tick, never before min_tick).
    std::int64_t tick_of(std::int64_t ms) const {
        return std::max(min_tick, (ms + step / 2) / step);
    }
    std::size_t ticks() const { return static_cast<std::size_t>(hi - lo + 1); }
    // How many of the j values of d land on a tick <= k (k >= lo).
    std::int64_t landed_by(std::int64_t k) const {
        return std::clamp<std::int64_t>((k + 1) * step - step / 2 - when, 0, jitter);
    }
    // tick_of(when + d) for d in [0, jitter). In a window of a few ticks (2 s of jitter on the
    // 1 s grid: 2 or 3) without a 64-bit division: the first tick k whose landed_by(k) exceeds
    // d (the offsets landing by k are a prefix of [0, jitter)); member-by-member splits,
    // issue 12 §4.
    std::int64_t tick_of_jitter(std::int64_t d) const {
        if (hi - lo >= 8)
            return tick_of(when + d);
        std::int64_t k = lo;
        while (k < hi && landed_by(k) <= d)
            ++k;
        return k;
    }
    // w_k: how many land on tick k.
    std::int64_t weight(std::int64_t k) const {
        return k == lo ? landed_by(k) : landed_by(k) - landed_by(k - 1);
    }
    // The first and last ms (when + d) that land on tick k (w_k > 0): the members of tick k
    // are spread evenly over them, as a cohort's members are over [tick + lo, tick + hi].
    std::int64_t first_ms(std::int64_t k) const { return when + (k == lo ? 0 : landed_by(k - 1)); }
    std::int64_t last_ms(std::int64_t k) const { return when + landed_by(k) - 1; }
};

// Fills per_tick (resized to w.ticks()) with how many of the n members land on each tick.
template <typename Rng>
void split_jitter(const jitter_window& w, std::uint64_t n, Rng& rng,
                  std::vector<std::uint64_t>& per_tick) {
    per_tick.assign(w.ticks(), 0);
    if (per_tick.size() == 1) {
        per_tick[0] = n;
        return;
    }
    // A member's draw costs one 64-bit number; a binomial one to three plus its set-up, so
    // members are drawn one by one until they outnumber the ticks a few times over.
    if (n <= 4 * (per_tick.size() - 1)) {
        for (std::uint64_t i = 0; i < n; ++i)
            ++per_tick[static_cast<std::size_t>(w.tick_of_jitter(draw_jitter_ms(rng, w.jitter)) -
                                                w.lo)];
        return;
    }
    std::uint64_t left = n;
    std::int64_t mass_left = w.jitter;
    for (std::int64_t k = w.lo; k < w.hi && left > 0; ++k) {
        const std::int64_t wk = w.weight(k);
        std::uint64_t c = 0;
        if (wk >= mass_left) {
            c = left;
        } else if (wk > 0) {
            // Signed: BTRD's rejection step compares k - m and k < 0.
            boost::random::binomial_distribution<std::int64_t, double> bin{
                static_cast<std::int64_t>(left),
                static_cast<double>(wk) / static_cast<double>(mass_left)};
            c = static_cast<std::uint64_t>(bin(rng));
        }
        per_tick[static_cast<std::size_t>(k - w.lo)] = c;
        left -= c;
        mass_left -= wk;
    }
    per_tick.back() += left;
}

}  // namespace pkisim::sim
