// A log-linear latency histogram in the manner of Gil Tene's HdrHistogram: every power-of-two
// range of values is cut into the same number of linear sub-buckets, so each recorded value
// is kept to a fixed relative precision (2^-precision_bits) over the whole range, in constant
// memory and O(1) per record, and histograms of several threads or seconds merge by adding
// counts. Debian has no C/C++ HdrHistogram (only Go and Java), hence this compact one.
//
//   histogram h{7};                  // 1/128 = 0.8 % relative precision
//   h.record(23'456);                // nanoseconds, or any unsigned unit
//   h.value_at_percentile(99.0);     // highest value equivalent to the 99th percentile sample
//   h.merge(other);                  // same precision_bits
//
// Values above max_value() are recorded as max_value() (and counted in saturated()).
#pragma once

#include <cstdint>
#include <vector>

namespace pkisim::loadgen {

class histogram {
  public:
    // precision_bits in [1, 16]: sub-buckets per power of two = 2^precision_bits; values up to
    // 2^max_bits - 1 (max_bits in [precision_bits + 1, 63]).
    explicit histogram(unsigned precision_bits = 10, unsigned max_bits = 44);

    void record(std::uint64_t value, std::uint64_t count = 1) noexcept;
    void merge(const histogram& other);  // throws std::invalid_argument on other parameters
    void reset() noexcept;

    std::uint64_t count() const noexcept { return count_; }
    std::uint64_t min() const noexcept { return count_ ? min_ : 0; }
    std::uint64_t max() const noexcept { return max_; }  // exact
    double mean() const noexcept;
    std::uint64_t saturated() const noexcept { return saturated_; }
    std::uint64_t max_value() const noexcept { return max_value_; }
    unsigned precision_bits() const noexcept { return precision_bits_; }

    // The smallest recorded-value bucket such that at least `percentile` % of the samples are
    // at or below it, reported as the highest value of that bucket (capped at max()), as
    // HdrHistogram's getValueAtPercentile does. 0 when empty. percentile in [0, 100].
    std::uint64_t value_at_percentile(double percentile) const noexcept;

    // Bucket arithmetic, exposed for tests: values v and w share a bucket iff
    // bucket_index(v) == bucket_index(w); lowest/highest_equivalent bound that bucket.
    std::size_t bucket_index(std::uint64_t value) const noexcept;
    std::uint64_t lowest_equivalent(std::uint64_t value) const noexcept;
    std::uint64_t highest_equivalent(std::uint64_t value) const noexcept;

  private:
    std::uint64_t value_of_index(std::size_t index) const noexcept;  // lowest value of a bucket

    unsigned precision_bits_;
    unsigned max_bits_;
    std::uint64_t max_value_;
    std::vector<std::uint64_t> counts_;
    std::uint64_t count_ = 0;
    std::uint64_t saturated_ = 0;
    std::uint64_t min_ = UINT64_MAX;
    std::uint64_t max_ = 0;
    long double sum_ = 0;
};

}  // namespace pkisim::loadgen
