// The simulator's event queue: a timing wheel of 2^bits one-tick slots for the near future plus a
// 4-ary heap for events beyond the wheel. Events are delivered in (time, insertion order), so a
// run replays exactly (the SimGrid / simcpp20 rule), and a slot's events come out as one batch:
// an "instant" that the simulator sorts and merges into cohorts.
//
//   event_queue q{0, 12};               // starts at tick 0, wheel of 4096 ticks
//   q.push(20, client_id);              // fire at tick 20
//   auto e = q.pop();                   // e.time == 20, e.payload == client_id
//   std::vector<std::uint64_t> batch;
//   std::int64_t t = q.pop_instant(batch);   // every event of the next instant, in order
//
// Why a wheel: the shadow loop re-arms every client 20 s ahead, so almost every push lands a
// few thousand ticks ahead of now; appending to a slot vector is O(1) and cache friendly, where a
// heap would pay log2(10^6) cache misses per event. Ties need no sequence numbers in the wheel:
// an event that went to the overflow heap for time t was pushed while t was still beyond the
// wheel, i.e. before any event for t could be pushed into the wheel, so heap events of an
// instant always precede its wheel events, and the heap orders its own ties by sequence.
#pragma once

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace pkisim::sim {

class event_queue {
public:
    using tick = std::int64_t;
    struct event {
        tick time;
        std::uint64_t payload;
    };

    // wheel_bits is clamped to 6..24 (64 ticks .. 16 M ticks).
    explicit event_queue(tick start = 0, unsigned wheel_bits = 16)
        : now_(start),
          slots_(std::size_t{1} << clamp_bits(wheel_bits)),
          mask_(slots_.size() - 1),
          bits_(slots_.size() / 64, 0),
          summary_((bits_.size() + 63) / 64, 0) {}

    // Schedules `payload` at tick t. Requires t >= now().
    void push(tick t, std::uint64_t payload) {
        assert(t >= now_);
        ++size_;
        const auto ahead = static_cast<std::uint64_t>(t - now_);
        if (ahead < slots_.size()) {
            const std::size_t s = static_cast<std::size_t>(t) & mask_;
            auto& slot = slots_[s];
            if (slot.empty()) set_bit(s);
            slot.push_back(payload);
            ++wheel_count_;
        } else {
            heap_push(far_event{t, seq_++, payload});
        }
    }

    bool empty() const { return size_ == 0; }
    std::size_t size() const { return size_; }
    // The time of the last delivered event (the simulated "now").
    tick now() const { return now_; }

    // The next event. Requires !empty().
    event pop() {
        if (batch_pos_ == batch_.size()) load_next_instant();
        --size_;
        return event{now_, batch_[batch_pos_++]};
    }

    // The time of the next event (after the ones already delivered). Requires !empty().
    tick next_time() {
        if (batch_pos_ == batch_.size()) load_next_instant();
        return now_;
    }

    // Moves every not yet delivered event of the next instant into `out` (cleared first), in
    // (time, insertion) order, and returns that instant. Events pushed at the returned instant
    // while the caller handles `out` come back in the next call. Requires !empty().
    tick pop_instant(std::vector<std::uint64_t>& out) {
        out.clear();
        if (batch_pos_ == batch_.size()) load_next_instant();
        if (batch_pos_ == 0) {
            out.swap(batch_);
        } else {
            out.assign(batch_.begin() + static_cast<std::ptrdiff_t>(batch_pos_), batch_.end());
            batch_.clear();
        }
        batch_pos_ = 0;
        size_ -= out.size();
        return now_;
    }

    // Bytes held by the queue (slot vectors, heap, batch), for the memory report.
    std::size_t memory_bytes() const {
        std::size_t b = slots_.capacity() * sizeof(std::vector<std::uint64_t>) +
                        (bits_.capacity() + summary_.capacity()) * 8 +
                        heap_.capacity() * sizeof(far_event) + batch_.capacity() * 8;
        for (const auto& s : slots_) b += s.capacity() * 8;
        return b;
    }

private:
    struct far_event {
        tick time;
        std::uint64_t seq;
        std::uint64_t payload;
        bool before(const far_event& o) const {
            return time < o.time || (time == o.time && seq < o.seq);
        }
    };

    void set_bit(std::size_t s) {
        bits_[s >> 6] |= std::uint64_t{1} << (s & 63);
        summary_[s >> 12] |= std::uint64_t{1} << ((s >> 6) & 63);
    }
    void clear_bit(std::size_t s) {
        auto& w = bits_[s >> 6];
        w &= ~(std::uint64_t{1} << (s & 63));
        if (w == 0) summary_[s >> 12] &= ~(std::uint64_t{1} << ((s >> 6) & 63));
    }
    // First occupied slot index >= from, or npos.
    std::size_t find_from(std::size_t from) const {
        const std::size_t n = slots_.size();
        if (from >= n) return npos;
        std::size_t w = from >> 6;
        std::uint64_t word = bits_[w] & (~std::uint64_t{0} << (from & 63));
        if (word != 0) return (w << 6) + static_cast<std::size_t>(std::countr_zero(word));
        // Whole words after w, via the summary.
        std::size_t sw = (w + 1) >> 6;
        if ((w + 1) >= bits_.size()) return npos;
        std::uint64_t sword = summary_[sw] & (~std::uint64_t{0} << ((w + 1) & 63));
        while (true) {
            if (sword != 0) {
                const std::size_t wi = (sw << 6) + static_cast<std::size_t>(std::countr_zero(sword));
                return (wi << 6) + static_cast<std::size_t>(std::countr_zero(bits_[wi]));
            }
            if (++sw >= summary_.size()) return npos;
            sword = summary_[sw];
        }
    }

    void load_next_instant() {
        assert(size_ > 0);
        batch_.clear();
        batch_pos_ = 0;
        tick t_wheel = std::numeric_limits<tick>::max();
        std::size_t slot = npos;
        if (wheel_count_ > 0) {
            const std::size_t start = static_cast<std::size_t>(now_) & mask_;
            slot = find_from(start);
            if (slot == npos) slot = find_from(0);
            assert(slot != npos);
            const std::size_t dist = (slot - start) & mask_;
            t_wheel = now_ + static_cast<tick>(dist);
        }
        const tick t_heap = heap_.empty() ? std::numeric_limits<tick>::max() : heap_.front().time;
        const tick t = std::min(t_wheel, t_heap);
        now_ = t;
        while (!heap_.empty() && heap_.front().time == t) {
            batch_.push_back(heap_.front().payload);
            heap_pop();
        }
        if (t == t_wheel) {
            auto& v = slots_[slot];
            wheel_count_ -= v.size();
            if (batch_.empty()) {
                batch_.swap(v);  // the slot keeps the batch's old buffer: no allocation
            } else {
                batch_.insert(batch_.end(), v.begin(), v.end());
            }
            v.clear();
            clear_bit(slot);
        }
    }

    void heap_push(far_event e) {
        std::size_t i = heap_.size();
        heap_.push_back(e);
        while (i > 0) {
            const std::size_t p = (i - 1) / 4;
            if (!heap_[i].before(heap_[p])) break;
            std::swap(heap_[i], heap_[p]);
            i = p;
        }
    }
    void heap_pop() {
        const far_event last = heap_.back();
        heap_.pop_back();
        if (heap_.empty()) return;
        std::size_t i = 0;
        const std::size_t n = heap_.size();
        while (true) {
            const std::size_t c = 4 * i + 1;
            if (c >= n) break;
            std::size_t best = c;
            const std::size_t end = std::min(c + 4, n);
            for (std::size_t j = c + 1; j < end; ++j) {
                if (heap_[j].before(heap_[best])) best = j;
            }
            if (!heap_[best].before(last)) break;
            heap_[i] = heap_[best];
            i = best;
        }
        heap_[i] = last;
    }

    static constexpr unsigned clamp_bits(unsigned b) { return b < 6 ? 6 : (b > 24 ? 24 : b); }
    static constexpr std::size_t npos = std::numeric_limits<std::size_t>::max();

    tick now_;
    std::vector<std::vector<std::uint64_t>> slots_;
    std::size_t mask_;
    std::vector<std::uint64_t> bits_;
    std::vector<std::uint64_t> summary_;
    std::vector<far_event> heap_;
    std::vector<std::uint64_t> batch_;
    std::size_t batch_pos_ = 0;
    std::size_t size_ = 0;
    std::size_t wheel_count_ = 0;
    std::uint64_t seq_ = 0;
};

}  // namespace pkisim::sim
