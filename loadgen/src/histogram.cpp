#include "pkisim/loadgen/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <stdexcept>

namespace pkisim::loadgen {

// Layout: values below S = 2^p have a bucket each (index = value). Above, a value whose highest
// set bit is m is shifted right by s = m - p + 1 >= 1, which leaves a sub-bucket in [S/2, S):
// S/2 linear buckets per power of two, each 2^s wide, i.e. relative width <= 2/S.
histogram::histogram(unsigned precision_bits, unsigned max_bits)
    : precision_bits_{precision_bits}, max_bits_{max_bits} {
    if (precision_bits < 1 || precision_bits > 16 || max_bits <= precision_bits || max_bits > 63) {
        throw std::invalid_argument("histogram: precision_bits in [1,16], max_bits in (p,63]");
    }
    max_value_ = (std::uint64_t{1} << max_bits) - 1;
    const std::size_t s = std::size_t{1} << precision_bits;
    counts_.assign(s + (max_bits - precision_bits) * (s / 2), 0);
}

std::size_t histogram::bucket_index(std::uint64_t value) const noexcept {
    value = std::min(value, max_value_);
    const std::uint64_t s = std::uint64_t{1} << precision_bits_;
    if (value < s) {
        return static_cast<std::size_t>(value);
    }
    const unsigned m = 63u - static_cast<unsigned>(std::countl_zero(value));
    const unsigned shift = m - precision_bits_ + 1;
    const std::uint64_t sub = value >> shift;  // [s/2, s)
    return static_cast<std::size_t>(s + (shift - 1) * (s / 2) + (sub - s / 2));
}

std::uint64_t histogram::value_of_index(std::size_t index) const noexcept {
    const std::uint64_t s = std::uint64_t{1} << precision_bits_;
    if (index < s) {
        return index;
    }
    const std::uint64_t rest = index - s;
    const unsigned shift = static_cast<unsigned>(rest / (s / 2)) + 1;
    const std::uint64_t sub = rest % (s / 2) + s / 2;
    return sub << shift;
}

std::uint64_t histogram::lowest_equivalent(std::uint64_t value) const noexcept {
    return value_of_index(bucket_index(value));
}

std::uint64_t histogram::highest_equivalent(std::uint64_t value) const noexcept {
    const std::size_t i = bucket_index(value);
    if (i + 1 >= counts_.size()) {
        return max_value_;
    }
    return value_of_index(i + 1) - 1;
}

void histogram::record(std::uint64_t value, std::uint64_t count) noexcept {
    if (count == 0) {
        return;
    }
    if (value > max_value_) {
        saturated_ += count;
        value = max_value_;
    }
    counts_[bucket_index(value)] += count;
    count_ += count;
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
    sum_ += static_cast<long double>(value) * static_cast<long double>(count);
}

void histogram::merge(const histogram& other) {
    if (other.precision_bits_ != precision_bits_ || other.max_bits_ != max_bits_) {
        throw std::invalid_argument("histogram::merge: different precision or range");
    }
    for (std::size_t i = 0; i < counts_.size(); ++i) {
        counts_[i] += other.counts_[i];
    }
    count_ += other.count_;
    saturated_ += other.saturated_;
    if (other.count_) {
        min_ = std::min(min_, other.min_);
        max_ = std::max(max_, other.max_);
    }
    sum_ += other.sum_;
}

void histogram::reset() noexcept {
    std::fill(counts_.begin(), counts_.end(), 0);
    count_ = saturated_ = 0;
    min_ = UINT64_MAX;
    max_ = 0;
    sum_ = 0;
}

double histogram::mean() const noexcept {
    return count_ ? static_cast<double>(sum_ / static_cast<long double>(count_)) : 0.0;
}

std::uint64_t histogram::value_at_percentile(double percentile) const noexcept {
    if (count_ == 0) {
        return 0;
    }
    percentile = std::clamp(percentile, 0.0, 100.0);
    // The rank of the sample, 1-based: the ceil keeps p100 = the last sample and p0 = the first.
    const auto rank = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(
               std::ceil(percentile / 100.0 * static_cast<double>(count_) - 1e-9)));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
        seen += counts_[i];
        if (seen >= rank) {
            const std::uint64_t high =
                i + 1 < counts_.size() ? value_of_index(i + 1) - 1 : max_value_;
            return std::min(high, max_);
        }
    }
    return max_;
}

}  // namespace pkisim::loadgen
