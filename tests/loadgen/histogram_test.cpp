#include "pkisim/loadgen/histogram.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

namespace pkisim::loadgen {
namespace {

// The nearest-rank quantile of sorted samples: the smallest sample with at least p % at or
// below it (the definition value_at_percentile approximates).
std::uint64_t exact_quantile(const std::vector<std::uint64_t>& sorted, double p) {
    const auto n = static_cast<double>(sorted.size());
    auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * n - 1e-9));
    rank = std::clamp<std::size_t>(rank, 1, sorted.size());
    return sorted[rank - 1];
}

std::vector<std::uint64_t> lognormal_samples(std::uint64_t seed, std::size_t n) {
    std::mt19937_64 rng{seed};
    std::lognormal_distribution<double> d{std::log(50'000.0), 1.5};  // ~50 us, heavy tail
    std::vector<std::uint64_t> v(n);
    for (auto& x : v) {
        x = static_cast<std::uint64_t>(d(rng));
    }
    return v;
}

TEST(histogram, every_bucket_holds_its_value_within_the_relative_precision) {
    for (unsigned p : {3u, 7u, 10u}) {
        histogram h{p, 40};
        const double width_bound = std::ldexp(1.0, 1 - static_cast<int>(p));
        std::mt19937_64 rng{p};
        for (int i = 0; i < 20'000; ++i) {
            const std::uint64_t v = rng() >> (24 + rng() % 40);  // all magnitudes
            if (v > h.max_value()) {
                continue;
            }
            const auto lo = h.lowest_equivalent(v);
            const auto hi = h.highest_equivalent(v);
            ASSERT_LE(lo, v);
            ASSERT_GE(hi, v);
            ASSERT_EQ(h.bucket_index(lo), h.bucket_index(v));
            ASSERT_EQ(h.bucket_index(hi), h.bucket_index(v));
            if (hi + 1 <= h.max_value()) {
                ASSERT_EQ(h.bucket_index(hi + 1), h.bucket_index(v) + 1) << v;
            }
            // Width relative to the bucket's lowest value (exact below 2^p).
            ASSERT_LE(static_cast<double>(hi - lo),
                      std::max(0.0, width_bound * static_cast<double>(lo)))
                << "p=" << p << " v=" << v;
        }
    }
}

TEST(histogram, small_values_are_exact) {
    histogram h{4, 20};
    for (std::uint64_t v = 0; v < 16; ++v) {
        EXPECT_EQ(h.lowest_equivalent(v), v);
        EXPECT_EQ(h.highest_equivalent(v), v);
    }
}

TEST(histogram, percentiles_agree_with_exact_quantiles_within_precision) {
    for (std::uint64_t seed : {1u, 2u, 3u}) {
        auto samples = lognormal_samples(seed, 50'000);
        histogram h{10, 44};
        for (auto v : samples) {
            h.record(v);
        }
        std::sort(samples.begin(), samples.end());
        for (double p : {0.0, 1.0, 25.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
            const auto exact = exact_quantile(samples, p);
            const auto got = h.value_at_percentile(p);
            // Reported as the highest value of the sample's bucket: never below it, and above
            // it by at most the bucket width.
            EXPECT_GE(got, exact) << "p" << p;
            EXPECT_LE(static_cast<double>(got - exact),
                      std::ldexp(1.0, -9) * static_cast<double>(exact) + 1.0)
                << "p" << p;
        }
        EXPECT_EQ(h.value_at_percentile(100), samples.back());
        EXPECT_EQ(h.max(), samples.back());
        EXPECT_EQ(h.min(), samples.front());
        EXPECT_EQ(h.count(), samples.size());
        long double sum = 0;
        for (auto v : samples) {
            sum += static_cast<long double>(v);
        }
        EXPECT_NEAR(h.mean(), static_cast<double>(sum / samples.size()), 1e-6 * h.mean());
    }
}

TEST(histogram, merging_equals_recording_everything_in_one) {
    auto a = lognormal_samples(10, 5'000);
    auto b = lognormal_samples(11, 7'000);
    histogram ha{7, 44}, hb{7, 44}, all{7, 44};
    for (auto v : a) {
        ha.record(v);
        all.record(v);
    }
    for (auto v : b) {
        hb.record(v, 2);  // counts
        all.record(v, 2);
    }
    ha.merge(hb);
    EXPECT_EQ(ha.count(), all.count());
    EXPECT_EQ(ha.min(), all.min());
    EXPECT_EQ(ha.max(), all.max());
    for (double p : {10.0, 50.0, 99.0, 99.9}) {
        EXPECT_EQ(ha.value_at_percentile(p), all.value_at_percentile(p));
    }
    histogram other{8, 44};
    EXPECT_THROW(ha.merge(other), std::invalid_argument);
}

TEST(histogram, values_beyond_the_range_saturate_and_are_counted) {
    histogram h{5, 20};
    h.record(1u << 25);
    h.record(3);
    EXPECT_EQ(h.saturated(), 1u);
    EXPECT_EQ(h.max(), h.max_value());
    EXPECT_EQ(h.value_at_percentile(100), h.max_value());
    EXPECT_EQ(h.value_at_percentile(50), 3u);
}

TEST(histogram, empty_and_reset_report_zero) {
    histogram h;
    EXPECT_EQ(h.value_at_percentile(99), 0u);
    EXPECT_EQ(h.min(), 0u);
    EXPECT_EQ(h.mean(), 0.0);
    h.record(1000);
    h.reset();
    EXPECT_EQ(h.count(), 0u);
    EXPECT_EQ(h.max(), 0u);
    EXPECT_EQ(h.value_at_percentile(50), 0u);
}

TEST(histogram, rejects_impossible_parameters) {
    EXPECT_THROW(histogram(0, 10), std::invalid_argument);
    EXPECT_THROW(histogram(10, 10), std::invalid_argument);
    EXPECT_THROW(histogram(10, 64), std::invalid_argument);
}

}  // namespace
}  // namespace pkisim::loadgen
