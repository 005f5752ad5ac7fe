// The IOS HTTP server limiter (ios-pki-model.md §3; seed 002: max-connections, 80 connections
// per minute, 15 s deaf period). Hot path of the simulator: no allocation after construction.
#include "pkisim/timers/limiter.hpp"

#include <algorithm>

namespace pkisim::timers {

std::string_view to_string(throttle_window w) {
    switch (w) {
        case throttle_window::sliding:
            return "sliding";
        case throttle_window::fixed_minute:
            return "fixed-minute";
        case throttle_window::reset_after_deaf:
            return "reset-after-deaf";
    }
    return "unknown";
}

std::string_view to_string(admission a) {
    switch (a) {
        case admission::accepted:
            return "accepted";
        case admission::dropped_max_connections:
            return "dropped-max-connections";
        case admission::ignored_deaf:
            return "ignored-deaf";
    }
    return "unknown";
}

connection_limiter::connection_limiter(limiter_config config) : config_(config) {
    // The sliding window only needs the last `throttle_limit` accept times: the throttle fires
    // as soon as that many fall inside the window.
    ring_.resize(static_cast<std::size_t>(std::max(config_.throttle_limit, 1)));
}

int connection_limiter::accepted_in_window(time_point t) {
    const duration w = config_.throttle_window_length;
    switch (config_.window) {
        case throttle_window::sliding: {
            // An accept at a counts while t − a < window.
            while (ring_size_ > 0 && t - ring_[ring_head_] >= w) {
                if (++ring_head_ == ring_.size()) {
                    ring_head_ = 0;
                }
                --ring_size_;
            }
            return static_cast<int>(ring_size_);
        }
        case throttle_window::fixed_minute: {
            // Buckets aligned on multiples of the window since the epoch (wall-clock minutes).
            const auto len = std::max<duration::rep>(w.count(), 1);
            auto since = t.time_since_epoch().count();
            auto start = since / len * len;
            if (since < 0 && start != since) {
                start -= len;
            }
            const time_point bucket{duration{start}};
            if (bucket != bucket_start_) {
                bucket_start_ = bucket;
                bucket_count_ = 0;
            }
            return bucket_count_;
        }
        case throttle_window::reset_after_deaf:
            // A window opens at the first accept after a reset and lasts one window length;
            // a deaf period ending also resets it (see on_attempt).
            if (bucket_count_ > 0 && t - bucket_start_ >= w) {
                bucket_count_ = 0;
            }
            return bucket_count_;
    }
    return 0;
}

admission connection_limiter::on_attempt(time_point t) {
    if (!config_.enabled) {
        ++counters_.accepted;
        counters_.peak_open = std::max(counters_.peak_open, ++counters_.open);
        return admission::accepted;
    }
    if (config_.throttle) {
        if (t < deaf_until_) {
            // Seed 002: the listener "stops listening": no SYN-ACK, the client times out.
            ++counters_.ignored_deaf;
            return admission::ignored_deaf;
        }
        if (accepted_in_window(t) >= config_.throttle_limit) {
            // The 81st connection in a window: deaf for 15 s from now; this one is not answered.
            deaf_until_ = t + config_.deaf_period;
            ++counters_.deaf_periods;
            counters_.deaf_time += config_.deaf_period;
            ++counters_.ignored_deaf;
            if (config_.window == throttle_window::reset_after_deaf) {
                bucket_count_ = 0;
            }
            return admission::ignored_deaf;
        }
    }
    if (counters_.open >= config_.max_connections) {
        ++counters_.dropped_max_connections;
        return admission::dropped_max_connections;
    }
    if (config_.throttle) {
        switch (config_.window) {
            case throttle_window::sliding: {
                // accepted_in_window() above emptied expired entries and found room.
                const std::size_t cap = ring_.size();
                if (ring_size_ == cap) {  // only when throttle_limit <= 0 kept nothing out
                    if (++ring_head_ == cap) {
                        ring_head_ = 0;
                    }
                    --ring_size_;
                }
                std::size_t slot = ring_head_ + ring_size_;
                if (slot >= cap) {
                    slot -= cap;
                }
                ring_[slot] = t;
                ++ring_size_;
                break;
            }
            case throttle_window::fixed_minute:
                ++bucket_count_;
                break;
            case throttle_window::reset_after_deaf:
                if (bucket_count_ == 0) {
                    bucket_start_ = t;
                }
                ++bucket_count_;
                break;
        }
    }
    ++counters_.accepted;
    counters_.peak_open = std::max(counters_.peak_open, ++counters_.open);
    return admission::accepted;
}

void connection_limiter::on_close(time_point /*t*/) {
    if (counters_.open > 0) {
        --counters_.open;
    }
}

bool connection_limiter::is_deaf(time_point t) const {
    return config_.enabled && config_.throttle && t < deaf_until_;
}

}  // namespace pkisim::timers
