// Retry jitter on the grid (sim/jitter.hpp): where the members of a cohort land.
// - The tick weights are checked against brute force: every one of the j whole-millisecond
//   offsets rounded to the grid one by one, the simulator's own rounding.
// - split_jitter must give multinomial(n, w_k / j) counts whichever way it draws them (member by
//   member for small cohorts, sequential binomials for large ones). Checked with seeded
//   goodness-of-fit statistics whose null distribution is known, each held to a bound of
//   6 standard deviations (or the chi-square quantile at p = 1e-9): a correct sampler fails
//   such a bound with probability below 1e-8 for any seed, while the wrong laws these tests
//   are there for (an off-by-one tick, weights from the continuous window instead of whole
//   milliseconds at the window's ends, counts rounded instead of drawn, draws that are not
//   independent between calls) move the statistic by tens to thousands of deviations here.
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "pkisim/sim/jitter.hpp"

using namespace pkisim::sim;

namespace {

struct window_case {
    std::int64_t when, jitter, step, min_tick;
};

// Brute force: the tick each offset d in [0, j) lands on.
std::vector<std::int64_t> landings(const window_case& c) {
    std::vector<std::int64_t> out;
    for (std::int64_t d = 0; d < c.jitter; ++d)
        out.push_back(std::max(c.min_tick, (c.when + d + c.step / 2) / c.step));
    return out;
}

// Pearson's statistic of observed counts against n × w_k / j.
double pearson(const jitter_window& w, const std::vector<std::uint64_t>& counts, double n) {
    double x2 = 0;
    for (std::size_t k = 0; k < counts.size(); ++k) {
        const double e = n * static_cast<double>(w.weight(w.lo + static_cast<std::int64_t>(k))) /
                         static_cast<double>(w.jitter);
        if (e == 0) {
            EXPECT_EQ(counts[k], 0u) << "tick " << k << " has no weight";
            continue;
        }
        const double d = static_cast<double>(counts[k]) - e;
        x2 += d * d / e;
    }
    return x2;
}

std::size_t cells_with_weight(const jitter_window& w) {
    std::size_t n = 0;
    for (auto k = w.lo; k <= w.hi; ++k)
        n += w.weight(k) > 0;
    return n;
}

// R calls of split_jitter with n members each. Checks (1) the summed counts against the law
// (Pearson chi-square with df = cells - 1, as a z-score: (X2 - df) / sqrt(2 df) <= 6, the
// summed counts being multinomial(R n, w / j)); (2) the dispersion of single calls: for a
// multinomial E[X2] = df exactly whatever n, so the mean of the R per-call statistics must be
// within 6 standard errors of df (the standard error estimated from the R values) - counts
// rounded to n w / j would give ~0, clumped draws far more than df.
void expect_multinomial(const jitter_window& w, std::uint64_t n, int calls, std::uint64_t seed) {
    std::mt19937_64 rng{seed};
    std::vector<std::uint64_t> per_tick;
    std::vector<std::uint64_t> sum(w.ticks(), 0);
    std::vector<double> x2s;
    for (int r = 0; r < calls; ++r) {
        split_jitter(w, n, rng, per_tick);
        ASSERT_EQ(per_tick.size(), w.ticks());
        std::uint64_t total = 0;
        for (std::size_t k = 0; k < per_tick.size(); ++k) {
            total += per_tick[k];
            sum[k] += per_tick[k];
        }
        ASSERT_EQ(total, n) << "every member lands somewhere";
        x2s.push_back(pearson(w, per_tick, static_cast<double>(n)));
    }
    const double df = static_cast<double>(cells_with_weight(w) - 1);
    const double total_x2 = pearson(w, sum, static_cast<double>(n) * calls);
    EXPECT_LE((total_x2 - df) / std::sqrt(2 * df), 6.0)
        << "summed counts vs the law, X2 = " << total_x2 << ", df = " << df;
    double mean = 0;
    for (const double x : x2s)
        mean += x;
    mean /= calls;
    double var = 0;
    for (const double x : x2s)
        var += (x - mean) * (x - mean);
    var /= calls - 1;
    const double se = std::sqrt(var / calls);
    EXPECT_NEAR(mean, df, 6 * se) << "per-call dispersion, n = " << n;
}

}  // namespace

TEST(jitter_window, weights_count_the_whole_millisecond_offsets_that_land_on_each_tick) {
    const window_case cases[] = {
        {1'234, 3'000, 1'000, 0},     // partial first and last ticks
        {1'500, 3'000, 1'000, 0},     // starts on a rounding boundary
        {1'499, 1, 1'000, 0},         // one offset
        {9'999, 250, 1'000, 0},       // inside one tick
        {10'400, 250, 1'000, 0},      // across the boundary at 10'500
        {20'040, 2'000, 100, 0},      // 100 ms grid
        {7, 3'000, 1, 0},             // the 1 ms grid: one tick per offset
        {400, 5'000, 1'000, 3},       // ticks before the current one fold into it
        {60'000, 59'999, 60'000, 0},  // the coarsest grid
    };
    for (const auto& c : cases) {
        const jitter_window w{c.when, c.jitter, c.step, c.min_tick};
        const auto land = landings(c);
        EXPECT_EQ(w.lo, *std::min_element(land.begin(), land.end())) << c.when;
        EXPECT_EQ(w.hi, *std::max_element(land.begin(), land.end())) << c.when;
        std::int64_t total = 0;
        for (auto k = w.lo; k <= w.hi; ++k) {
            const auto expect = std::count(land.begin(), land.end(), k);
            EXPECT_EQ(w.weight(k), expect)
                << "when " << c.when << " step " << c.step << " tick " << k;
            total += w.weight(k);
        }
        EXPECT_EQ(total, c.jitter);
        // The division-free tick of each offset (member-by-member splits) is the rounding's.
        for (std::int64_t d = 0; d < c.jitter; ++d)
            ASSERT_EQ(w.tick_of_jitter(d), land[static_cast<std::size_t>(d)])
                << "when " << c.when << " step " << c.step << " d " << d;
    }
}

TEST(jitter_window, one_client_draws_every_offset_and_only_those) {
    std::mt19937_64 rng{5};
    std::vector<int> seen(7, 0);
    for (int i = 0; i < 7'000; ++i) {
        const auto d = draw_jitter_ms(rng, 7);
        ASSERT_GE(d, 0);
        ASSERT_LT(d, 7);
        ++seen[static_cast<std::size_t>(d)];
    }
    for (const int s : seen)
        EXPECT_NEAR(s, 1'000, 6 * std::sqrt(1'000.0 * 6 / 7));
}

TEST(split_jitter, small_cohorts_drawn_member_by_member_follow_the_multinomial_law) {
    // 4 ticks (weights 266, 1000, 1000, 734 of 3000): n <= 12 is drawn member by member.
    expect_multinomial(jitter_window{1'234, 3'000, 1'000, 0}, 5, 20'000, 1);
    expect_multinomial(jitter_window{1'234, 3'000, 1'000, 0}, 12, 10'000, 2);
}

TEST(split_jitter, large_cohorts_drawn_as_a_multinomial_follow_the_same_law) {
    // Sequential binomials: small means (inversion), large means (BTRD), and a window with a
    // tick of weight 1 at its end.
    expect_multinomial(jitter_window{1'234, 3'000, 1'000, 0}, 13, 10'000, 3);
    expect_multinomial(jitter_window{1'234, 3'000, 1'000, 0}, 5'000, 4'000, 4);
    expect_multinomial(jitter_window{1'234, 3'000, 1'000, 0}, 10'000'000, 2'000, 5);
    expect_multinomial(jitter_window{1'500, 2'001, 1'000, 0}, 100'000, 2'000, 6);
    // The 100 ms grid, 20 s of jitter (200 ticks).
    expect_multinomial(jitter_window{20'040, 20'000, 100, 0}, 50'000, 500, 7);
}

TEST(split_jitter, both_ways_agree_on_the_mean_of_every_tick) {
    // The same window and law on either side of the switch between the two ways: the mean count
    // of each tick over R calls within 6 standard errors of n w_k / j (binomial variance).
    const jitter_window w{20'040, 2'000, 100, 0};  // 21 ticks: member by member up to n = 80
    for (const std::uint64_t n : {80u, 81u}) {
        std::mt19937_64 rng{n};
        std::vector<std::uint64_t> per_tick;
        std::vector<double> sum(w.ticks(), 0);
        const int calls = 20'000;
        for (int r = 0; r < calls; ++r) {
            split_jitter(w, n, rng, per_tick);
            for (std::size_t k = 0; k < per_tick.size(); ++k)
                sum[k] += static_cast<double>(per_tick[k]);
        }
        for (std::size_t k = 0; k < w.ticks(); ++k) {
            const double p = static_cast<double>(w.weight(w.lo + static_cast<std::int64_t>(k))) /
                             static_cast<double>(w.jitter);
            const double se = std::sqrt(static_cast<double>(n) * p * (1 - p) / calls);
            EXPECT_NEAR(sum[k] / calls, static_cast<double>(n) * p, 6 * se + 1e-12)
                << "n " << n << " tick " << k;
        }
    }
}

TEST(split_jitter, the_same_seed_gives_the_same_split) {
    const jitter_window w{1'234, 3'000, 1'000, 0};
    std::vector<std::uint64_t> a, b;
    std::mt19937_64 r1{9}, r2{9};
    for (const std::uint64_t n : {3u, 50u, 70'000u}) {
        split_jitter(w, n, r1, a);
        split_jitter(w, n, r2, b);
        EXPECT_EQ(a, b);
    }
}
