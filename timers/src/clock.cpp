// Injected clocks (style.md: rules never read the wall clock).
#include "pkisim/timers/clock.hpp"

#include <chrono>
#include <cmath>

namespace pkisim::timers {

time_point system_clock::now() const {
    return std::chrono::time_point_cast<duration>(std::chrono::system_clock::now());
}

warped_clock::warped_clock(const clock& base, time_point start, double rate)
    : base_(base), start_(start), base_origin_(base.now()), rate_(rate > 0 ? rate : 1.0) {}

time_point warped_clock::now() const {
    const auto elapsed = static_cast<double>((base_.now() - base_origin_).count());
    return start_ + duration{static_cast<duration::rep>(std::llround(elapsed * rate_))};
}

duration warped_clock::to_real(duration d) const {
    return duration{
        static_cast<duration::rep>(std::llround(static_cast<double>(d.count()) / rate_))};
}

}  // namespace pkisim::timers
