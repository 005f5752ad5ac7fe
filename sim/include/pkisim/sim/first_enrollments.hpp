// When a client group's routers first enroll (the scenario's `pattern`, configs/README.md), as
// one rule for `pkisim simulate` (sim/src/simulation.cpp) and `pkisim fleet`
// (loadgen/src/fleet.cpp), so that both start the same fleet from the same seed.
//
//   std::mt19937_64 rng{sc.seed};
//   for_each_first_enrollment(g, rng, [&](duration offset, std::uint64_t n) { ... });
//
// `add(offset, n)`: n routers enroll `offset` after the scenario's start; called in a fixed
// order (the order of the pattern), so a caller that draws more numbers from `rng` inside
// `add` (the simulator's clock skew) stays reproducible. Pattern "state" (captured routers)
// calls nothing: those routers are not first enrollments.
#pragma once

#include <cstdint>
#include <random>

#include "pkisim/sim/scenario.hpp"

namespace pkisim::sim {

// A uniform double in [0, 1) from 53 random bits.
inline double unit_uniform(std::mt19937_64& rng) {
    return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

template <typename Add>
void for_each_first_enrollment(const client_group& g, std::mt19937_64& rng, Add&& add) {
    const auto at0 = g.at.count();
    const auto win = static_cast<double>(g.window.count());
    switch (g.pattern) {
        case enrollment_pattern::instant:
            add(g.at, g.count);
            break;
        case enrollment_pattern::spread:
            // Evenly, each router in the middle of its share of the window.
            for (std::uint64_t i = 0; i < g.count; ++i) {
                const double f = (static_cast<double>(i) + 0.5) / static_cast<double>(g.count);
                add(duration{at0 + static_cast<duration::rep>(f * win)}, std::uint64_t{1});
            }
            break;
        case enrollment_pattern::uniform:
            for (std::uint64_t i = 0; i < g.count; ++i) {
                const double u = unit_uniform(rng);
                add(duration{at0 + static_cast<duration::rep>(u * win)}, std::uint64_t{1});
            }
            break;
        case enrollment_pattern::batches:
            for (const auto& b : g.batches)
                add(b.at, b.count);
            break;
        case enrollment_pattern::csv:
            for (const auto& t : g.times)
                add(t, std::uint64_t{1});
            break;
        case enrollment_pattern::state:
            break;
    }
}

}  // namespace pkisim::sim
