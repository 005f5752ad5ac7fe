// The simulator's event queue: a two-level timing wheel plus a 4-ary heap. Events are delivered
// in (time, insertion order), so a run replays exactly (the SimGrid / simcpp20 rule), and the
// events of one tick come out as one batch: an "instant" that the simulator sorts and merges
// into cohorts.
//
//   event_queue q{0};                   // starts at tick 0
//   q.push(20, client_id);              // fire at tick 20
//   auto e = q.pop();                   // e.time == 20, e.payload == client_id
//   std::vector<std::uint64_t> batch;
//   std::int64_t t = q.pop_instant(batch);   // every event of the next instant, in order
//
// Layout: level 0 = one vector per tick of the current block of 1024 ticks; level 1 = one
// append-only vector per block for the next blocks (a ring of 128: the 64-block window plus the
// rest of the level-2 bucket it touches); level 2 = one append-only vector per bucket of 64
// blocks (65,536 ticks) for the next 4096 buckets (2^28 ticks: 8.5 years of 1 s ticks); beyond
// that, a 4-ary heap ordered by (time, sequence). When the level-1 window touches a bucket, the
// bucket is distributed into level 1; when time enters a block, that block's level-1 vector is
// distributed into the level-0 slots.
// Why levels 0 and 1: the shadow loop re-arms every client ~20 s ahead, so nearly every push
// lands a few thousand ticks ahead; appending to one of 64 hot vectors and later to one of 1024
// slots stays in cache where a heap would pay log2(10^6) cache misses per event. Why level 2:
// the clients whose next event is months ahead (renewals); 10^7 of them in the heap cost ~12
// cache misses per event (issue 12 §4), in level 2 three sequential appends.
// Ties need no sequence numbers in the wheel: an event for tick t reaches the heap only while t
// is beyond level 2, level 2 only while t's bucket is not yet open, level 1 only while t is
// beyond the current block, and level 0 only once t's block is current (after level 1 was
// distributed, in insertion order, and level 2 before it); so for any t, heap events precede
// level-2 events precede level-1 events precede direct level-0 events, each group in insertion
// order.
// Level 2 stores its events in chunks of 256 (4 KiB) taken from a free list shared by all
// buckets and given back when a bucket opens: 10^7 far-ahead events cost their 16 B each plus at
// most one partly filled chunk per bucket, where one growing vector per bucket held up to twice
// that and briefly three times while it doubled (issue 12 §4).
// `Prefetch` is called with the payload of every event of a level-0 slot `prefetch_ticks` ticks
// before that slot is delivered (as delivery passes it by): the simulator starts loading the
// record each event will touch, which at 10^7 clients is a cache miss per event otherwise. A
// few ticks ahead, not when the block becomes current: hints for a whole block at once (~300
// records in the sparse phase at 10^7 clients) filled the CPU's miss buffers and the prefetch
// instruction itself stalled (issue 12 §4: 6 % of all samples); spread out, the loads overlap
// with the handling of the events before them.
#pragma once

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstdint>
#include <limits>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

namespace pkisim::sim {

// No hint: the default.
struct no_prefetch {
    void operator()(std::uint64_t /*payload*/) const {}
};

template <typename Prefetch = no_prefetch>
class basic_event_queue {
  public:
    using tick = std::int64_t;
    struct event {
        tick time;
        std::uint64_t payload;
    };

    // `wheel_bits` is accepted for compatibility and ignored: the wheel always spans 64 blocks
    // of 1024 ticks.
    explicit basic_event_queue(tick start = 0, unsigned /*wheel_bits*/ = 16,
                               Prefetch prefetch = Prefetch{})
        : now_(start),
          block_(start >> block_bits),
          open_bucket_((block_ + window - 1) >> bucket_bits),
          l0_(block_size),
          l1_(l1_ring),
          l2_(buckets),
          prefetch_(prefetch) {}

    // Schedules `payload` at tick t. Requires t >= now().
    void push(tick t, std::uint64_t payload) {
        assert(t >= now_);
        ++size_;
        const tick bt = t >> block_bits;
        if (bt == block_) {
            const auto s = static_cast<std::size_t>(t & (block_size - 1));
            l0_[s].push_back(payload);
            bits0_[s >> 6] |= std::uint64_t{1} << (s & 63);
            ++n0_;
        } else if ((bt >> bucket_bits) <= open_bucket_) {
            // Within the window, or in the bucket it touches (already distributed).
            const auto b = static_cast<std::size_t>(bt & (l1_ring - 1));
            l1_[b].push_back(timed{t, payload});
            set_bit(bits1_, b);
        } else if ((bt >> bucket_bits) - open_bucket_ <= static_cast<tick>(buckets)) {
            const auto k = static_cast<std::size_t>((bt >> bucket_bits) & (buckets - 1));
            auto& bk = l2_[k];
            if (bk.fill == chunk_len || bk.chunks.empty()) {
                bk.chunks.push_back(take_chunk());
                bk.fill = 0;
            }
            bk.chunks.back()[bk.fill++] = timed{t, payload};
            set_bit(bits2_, k);
            ++n2_;
        } else {
            heap_push(far_event{t, seq_++, payload});
        }
    }

    bool empty() const { return size_ == 0; }
    std::size_t size() const { return size_; }
    // The time of the last delivered instant (the simulated "now").
    tick now() const { return now_; }

    // The next event. Requires !empty().
    event pop() {
        if (batch_pos_ == batch_.size())
            load_next_instant();
        --size_;
        return event{now_, batch_[batch_pos_++]};
    }

    // The time of the next event (after the ones already delivered). Requires !empty().
    tick next_time() {
        if (batch_pos_ == batch_.size())
            load_next_instant();
        return now_;
    }

    // Moves every not yet delivered event of the next instant into `out` (cleared first), in
    // (time, insertion) order, and returns that instant. Events pushed at the returned instant
    // while the caller handles `out` come back in the next call. Requires !empty().
    tick pop_instant(std::vector<std::uint64_t>& out) {
        out.clear();
        if (batch_pos_ == batch_.size())
            load_next_instant();
        if (batch_pos_ == 0) {
            out.swap(batch_);
        } else {
            out.assign(batch_.begin() + static_cast<std::ptrdiff_t>(batch_pos_), batch_.end());
        }
        batch_.clear();
        batch_pos_ = 0;
        size_ -= out.size();
        return now_;
    }

    // Bytes held by the queue, for the memory report.
    std::size_t memory_bytes() const {
        std::size_t b = (l0_.capacity() + l1_.capacity()) * sizeof(std::vector<std::uint64_t>) +
                        l2_.capacity() * sizeof(bucket) + heap_.capacity() * sizeof(far_event) +
                        batch_.capacity() * 8 +
                        chunks_.size() * (chunk_len * sizeof(timed) + sizeof(chunks_[0])) +
                        free_chunks_.capacity() * sizeof(timed*);
        for (const auto& v : l0_)
            b += v.capacity() * 8;
        for (const auto& v : l1_)
            b += v.capacity() * sizeof(timed);
        for (const auto& k : l2_)
            b += k.chunks.capacity() * sizeof(timed*);
        return b;
    }

  private:
    static constexpr unsigned block_bits = 10;
    static constexpr std::size_t block_size = std::size_t{1} << block_bits;
    static constexpr tick window = 64;           // blocks pushed straight into level 1
    static constexpr unsigned bucket_bits = 6;   // a level-2 bucket = 64 blocks
    static constexpr std::size_t l1_ring = 128;  // window + the rest of the touched bucket
    static constexpr std::size_t buckets = 4096;
    static constexpr std::size_t prefetch_ticks = 32;
    static_assert(l1_ring >= 2 * (std::size_t{1} << bucket_bits));

    template <std::size_t W>
    static void set_bit(std::uint64_t (&bits)[W], std::size_t i) {
        bits[i >> 6] |= std::uint64_t{1} << (i & 63);
    }
    template <std::size_t W>
    static void clear_bit(std::uint64_t (&bits)[W], std::size_t i) {
        bits[i >> 6] &= ~(std::uint64_t{1} << (i & 63));
    }
    template <std::size_t W>
    static bool test_bit(const std::uint64_t (&bits)[W], std::size_t i) {
        return (bits[i >> 6] >> (i & 63)) & 1;
    }
    // Distance d in [0, 64 W) from `start` to the first set bit at ring position
    // (start + d) mod 64 W, or 64 W when no bit is set.
    template <std::size_t W>
    static std::size_t ring_distance(const std::uint64_t (&bits)[W], std::size_t start) {
        constexpr std::size_t n = W * 64;
        std::size_t pos = start;
        for (std::size_t scanned = 0; scanned <= n;) {
            const std::uint64_t word = bits[(pos >> 6) % W] >> (pos & 63);
            if (word != 0) {
                const std::size_t d =
                    pos + static_cast<std::size_t>(std::countr_zero(word)) - start;
                return d < n ? d : n;
            }
            const std::size_t step = 64 - (pos & 63);
            pos += step;
            scanned += step;
        }
        return n;
    }

    // Opens every level-2 bucket up to `to` (the window now touches them): each is appended, in
    // insertion order, to the level-1 vectors of its blocks.
    void open_buckets(tick to) {
        while (open_bucket_ < to && n2_ > 0) {
            const std::size_t start = static_cast<std::size_t>((open_bucket_ + 1) & (buckets - 1));
            const std::size_t d = ring_distance(bits2_, start);
            if (d == buckets || open_bucket_ + 1 + static_cast<tick>(d) > to)
                break;
            open_bucket_ += 1 + static_cast<tick>(d);
            const auto k = static_cast<std::size_t>(open_bucket_ & (buckets - 1));
            auto& bk = l2_[k];
            for (std::size_t c = 0; c < bk.chunks.size(); ++c) {
                timed* chunk = bk.chunks[c];
                const std::size_t n = c + 1 == bk.chunks.size() ? bk.fill : chunk_len;
                for (std::size_t i = 0; i < n; ++i) {
                    const timed& e = chunk[i];
                    const auto b = static_cast<std::size_t>((e.time >> block_bits) & (l1_ring - 1));
                    l1_[b].push_back(e);
                    set_bit(bits1_, b);
                }
                n2_ -= n;
                free_chunks_.push_back(chunk);
            }
            bk.chunks.clear();
            bk.chunks.shrink_to_fit();  // a bucket is used once per 8.5 years of ticks
            bk.fill = 0;
            clear_bit(bits2_, k);
        }
        open_bucket_ = std::max(open_bucket_, to);
    }

    struct timed {
        tick time;
        std::uint64_t payload;
    };
    static constexpr std::size_t chunk_len = 256;
    // A level-2 bucket: its chunks in insertion order, the last one filled up to `fill`.
    struct bucket {
        std::vector<timed*> chunks;
        std::size_t fill = 0;
    };
    timed* take_chunk() {
        if (free_chunks_.empty()) {
            chunks_.push_back(std::make_unique<timed[]>(chunk_len));
            return chunks_.back().get();
        }
        timed* c = free_chunks_.back();
        free_chunks_.pop_back();
        return c;
    }
    struct far_event {
        tick time;
        std::uint64_t seq;
        std::uint64_t payload;
        bool before(const far_event& o) const {
            return time < o.time || (time == o.time && seq < o.seq);
        }
    };

    // First occupied level-0 slot >= from, or block_size.
    std::size_t next_slot(std::size_t from) const {
        for (std::size_t w = from >> 6; w < block_size / 64; ++w) {
            std::uint64_t word = bits0_[w];
            if (w == (from >> 6))
                word &= ~std::uint64_t{0} << (from & 63);
            if (word != 0)
                return (w << 6) + static_cast<std::size_t>(std::countr_zero(word));
        }
        return block_size;
    }

    void load_next_instant() {
        assert(size_ > 0);
        batch_.clear();
        batch_pos_ = 0;
        constexpr tick none = std::numeric_limits<tick>::max();
        while (true) {
            const tick block_start = block_ << block_bits;
            tick t0 = none;
            std::size_t slot = block_size;
            if (n0_ > 0) {
                slot =
                    next_slot(static_cast<std::size_t>(std::max(now_, block_start) - block_start));
                assert(slot < block_size);
                t0 = block_start + static_cast<tick>(slot);
            }
            const tick th = heap_.empty() ? none : heap_.front().time;
            const tick t = std::min(t0, th);
            if (t < block_start + static_cast<tick>(block_size)) {
                now_ = t;
                if constexpr (!std::is_same_v<Prefetch, no_prefetch>)
                    prefetch_ahead(static_cast<std::size_t>(t - block_start));
                while (!heap_.empty() && heap_.front().time == t) {
                    batch_.push_back(heap_.front().payload);
                    heap_pop();
                }
                if (t == t0) {
                    auto& v = l0_[slot];
                    n0_ -= v.size();
                    if (batch_.empty()) {
                        batch_.swap(v);  // the slot keeps the batch's old buffer
                    } else {
                        batch_.insert(batch_.end(), v.begin(), v.end());
                    }
                    v.clear();
                    bits0_[slot >> 6] &= ~(std::uint64_t{1} << (slot & 63));
                }
                return;
            }
            // The current block is done: move to the next block that has events (in level 1,
            // else the first block of the next level-2 bucket, else the heap's).
            tick next = th == none ? none : (th >> block_bits);
            const std::size_t d1 =
                ring_distance(bits1_, static_cast<std::size_t>((block_ + 1) & (l1_ring - 1)));
            if (d1 < l1_ring) {
                next = std::min(next, block_ + 1 + static_cast<tick>(d1));
            } else if (n2_ > 0) {
                const std::size_t d2 = ring_distance(
                    bits2_, static_cast<std::size_t>((open_bucket_ + 1) & (buckets - 1)));
                assert(d2 < buckets);
                next = std::min(next, (open_bucket_ + 1 + static_cast<tick>(d2)) << bucket_bits);
            }
            assert(next != none);
            block_ = next;
            prefetched_to_ = 0;
            now_ = std::max(now_, block_ << block_bits);
            open_buckets((block_ + window - 1) >> bucket_bits);
            const auto b = static_cast<std::size_t>(block_ & (l1_ring - 1));
            if (test_bit(bits1_, b)) {
                for (const auto& e : l1_[b]) {
                    const auto s = static_cast<std::size_t>(e.time & (block_size - 1));
                    l0_[s].push_back(e.payload);
                    bits0_[s >> 6] |= std::uint64_t{1} << (s & 63);
                }
                n0_ += l1_[b].size();
                l1_[b].clear();
                clear_bit(bits1_, b);
            }
        }
    }

    // Hints the events of the level-0 slots after `slot` up to `slot + prefetch_ticks` that
    // were not hinted yet (each event once; events pushed into a slot after it was hinted were
    // just handled by the simulator, their records are in cache).
    void prefetch_ahead(std::size_t slot) {
        const std::size_t to = std::min(block_size, slot + 1 + prefetch_ticks);
        for (std::size_t p = next_slot(std::max(prefetched_to_, slot + 1)); p < to;
             p = next_slot(p + 1)) {
            for (const std::uint64_t payload : l0_[p])
                prefetch_(payload);
        }
        prefetched_to_ = std::max(prefetched_to_, to);
    }

    void heap_push(far_event e) {
        std::size_t i = heap_.size();
        heap_.push_back(e);
        while (i > 0) {
            const std::size_t p = (i - 1) / 4;
            if (!heap_[i].before(heap_[p]))
                break;
            std::swap(heap_[i], heap_[p]);
            i = p;
        }
    }
    void heap_pop() {
        const far_event last = heap_.back();
        heap_.pop_back();
        if (heap_.empty())
            return;
        std::size_t i = 0;
        const std::size_t n = heap_.size();
        while (true) {
            const std::size_t c = 4 * i + 1;
            if (c >= n)
                break;
            std::size_t best = c;
            const std::size_t end = std::min(c + 4, n);
            for (std::size_t j = c + 1; j < end; ++j) {
                if (heap_[j].before(heap_[best]))
                    best = j;
            }
            if (!heap_[best].before(last))
                break;
            heap_[i] = heap_[best];
            i = best;
        }
        heap_[i] = last;
    }

    tick now_;
    tick block_;
    tick open_bucket_;  // level-2 buckets up to this one are distributed into level 1
    std::vector<std::vector<std::uint64_t>> l0_;
    std::uint64_t bits0_[block_size / 64] = {};
    std::vector<std::vector<timed>> l1_;
    std::uint64_t bits1_[l1_ring / 64] = {};
    std::vector<bucket> l2_;
    std::uint64_t bits2_[buckets / 64] = {};
    std::vector<std::unique_ptr<timed[]>> chunks_;  // every level-2 chunk, in use or free
    std::vector<timed*> free_chunks_;
    [[no_unique_address]] Prefetch prefetch_;
    std::size_t prefetched_to_ = 0;  // level-0 slots below this one were hinted
    std::size_t n2_ = 0;
    std::vector<far_event> heap_;
    std::vector<std::uint64_t> batch_;
    std::size_t batch_pos_ = 0;
    std::size_t size_ = 0;
    std::size_t n0_ = 0;
    std::uint64_t seq_ = 0;
};

using event_queue = basic_event_queue<>;

}  // namespace pkisim::sim
