// The event loop, the client state machine and the server model of the fleet simulator.
// Every IOS rule is a call into pkisim::timers (timeline.hpp, client_model.hpp, limiter.hpp);
// what lives here is bookkeeping: who acts when, how many, and what they experienced.
#include "pkisim/sim/simulation.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <queue>
#include <random>
#include <tuple>

#include "pkisim/sim/event_queue.hpp"
#include "pkisim/sim/first_enrollments.hpp"
#include "pkisim/sim/jitter.hpp"
#include "pkisim/sim/server_model.hpp"
#include "pkisim/timers/client_model.hpp"
#include "pkisim/timers/limiter.hpp"

namespace pkisim::sim {

std::string_view to_string(engine_kind e) {
    switch (e) {
        case engine_kind::exact:
            return "exact";
        case engine_kind::cohort:
            return "cohort";
        case engine_kind::automatic:
            return "auto";
    }
    return "?";
}

std::optional<engine_kind> parse_engine_kind(std::string_view text) {
    if (text == "exact")
        return engine_kind::exact;
    if (text == "cohort")
        return engine_kind::cohort;
    if (text == "auto")
        return engine_kind::automatic;
    return std::nullopt;
}

std::string_view to_string(verdict v) {
    switch (v) {
        case verdict::safe:
            return "safe";
        case verdict::storm:
            return "storm";
        case verdict::outage:
            return "outage";
    }
    return "?";
}

namespace {

constexpr ms_t never = std::numeric_limits<ms_t>::max();
constexpr ms_t ms_per_day = 86'400'000;
constexpr ms_t ms_per_minute = 60'000;
// The cohort engine merges records of different instants of one time step (and spreads their
// members over the step) only when the step holds more records than this; see run().
constexpr std::size_t lossless_records_per_step = 32;
// run(): instants of up to this many records are sorted as keys (sort_key), bigger ones in place.
constexpr std::size_t max_sort_keys = 4096;
// seed_uniform_in_time_order(): from this many clients in a group.
constexpr std::uint64_t time_order_min = 4096;

// What a client does at its next event. The numeric order is also the order in which work is
// done within one instant: shadow-loop requests are served before enrollments, so that when the
// limiter has room for only some of them, it is the enrollments that fail (the conservative
// reading of seed 002: "legitimate enrollments fail").
enum phase : std::uint8_t {
    ph_switchover = 0,       // SHADOW_READY: the rollover CA and ID certificate become active
    ph_get_next_ca = 1,      // GET_NEW_CA_CERT: send GetNextCACert
    ph_rollover_enroll = 2,  // GET_NEW_ROUTER_CERT: PKCSReq to the shadow CA
    ph_enroll = 3,           // initial enrollment or RENEW
    ph_cert_expiry = 4,      // no auto-enroll (or gave up): the certificate runs out
};

// fl_hit_404: got 404 in the current loop; fl_ever_404: in any generation so far (the totals
// count clients once, not once per generation).
enum flag : std::uint8_t { fl_hit_404 = 1, fl_in_loop = 2, fl_ever_404 = 4 };

// A set of `count` clients in exactly the same state (count == 1 in the exact engine).
// One cache line (64 B, aligned): at 10^7 clients the pool is 640 MB and every event starts
// with a miss on its record (issue 12 §4), so a record must not straddle two lines.
struct alignas(64) cohort {
    std::uint64_t count = 0;
    ms_t cert_nb = 0;
    ms_t cert_na = 0;
    ms_t skew = 0;           // client clock − server clock (ms); dropped once in the loop
    ms_t first_404 = never;  // earliest first 404 of the members (not part of the state)
    // When exactly the members act: evenly spread over [tick + lo, tick + hi] (ms; not part of
    // the state: merged cohorts take the union, at most one step wide). A client alone has
    // lo == hi, its exact time, whatever the grid. Retries are armed from the instant each
    // attempt completed (timers::attempt_completion), range shifted by the cost, so rounding
    // events to the grid neither accumulates (a 20.040 s loop on a 1 s grid keeps its 40 ms per
    // round) nor spreads clients that act together over the step (issue 10 §3). Within one
    // step of the tick, and a step is at most 60 s (scenario.cpp), so 32 bits hold them.
    std::int32_t lo = 0;
    std::int32_t hi = 0;
    std::uint32_t version = 0;
    // > 0: this is a SYN retransmission of an attempt that began this many ms ago and found
    // the listener deaf (timers::syn_retransmission); not a new request.
    std::uint32_t syn_elapsed = 0;
    std::uint16_t group = 0;   // groups.size() = the RA itself
    std::uint16_t tries = 0;   // failed attempts of the current enrollment
    std::uint16_t ca_gen = 0;  // which CA generation issued the current certificate
    std::uint8_t phase = ph_enroll;
    std::uint8_t flags = 0;
};
static_assert(sizeof(cohort) == 64);

// The cohorts, in chunks of 2^15 records (2 MiB) that never move: growth allocates one more
// chunk instead of copying (a std::vector's doubling held the old and the new buffer at once,
// 1.34 GB at 10^7 clients: issue 12 §4), and indices stay valid. A chunk is one 2 MiB-aligned
// block that the kernel may back with a transparent huge page (madvise(2) MADV_HUGEPAGE; on a
// kernel set to "never" it is ordinary memory): events touch records in no particular order,
// and with 4 KiB pages each touch of a 640 MB pool is also a TLB miss.
class cohort_pool {
  public:
    cohort& operator[](std::uint32_t i) { return chunks_[i >> chunk_bits][i & chunk_mask]; }
    const cohort& operator[](std::uint32_t i) const {
        return chunks_[i >> chunk_bits][i & chunk_mask];
    }
    std::uint32_t size() const { return size_; }
    std::uint32_t push_back(const cohort& c) {
        if ((size_ >> chunk_bits) == chunks_.size())
            chunks_.push_back(new_chunk());
        (*this)[size_] = c;
        return size_++;
    }
    // Starts loading record i into the cache (the event queue calls this for the events of a
    // block when the block becomes current, long enough before they are handled).
    void prefetch(std::uint32_t i) const {
        if (i < size_)
            __builtin_prefetch(&(*this)[i], 1, 3);
    }
    std::size_t memory_bytes() const {
        return chunks_.size() * chunk_size * sizeof(cohort) +
               chunks_.capacity() * sizeof(chunks_[0]);
    }

  private:
    static constexpr unsigned chunk_bits = 15;
    static constexpr std::uint32_t chunk_size = std::uint32_t{1} << chunk_bits;
    static constexpr std::uint32_t chunk_mask = chunk_size - 1;
    static constexpr std::size_t chunk_bytes = std::size_t{chunk_size} * sizeof(cohort);
    struct free_chunk {
        void operator()(cohort* p) const { std::free(p); }
    };
    using chunk_ptr = std::unique_ptr<cohort[], free_chunk>;
    static chunk_ptr new_chunk() {
        static_assert(std::is_trivially_destructible_v<cohort>);
        void* p = std::aligned_alloc(chunk_bytes, chunk_bytes);
        if (p == nullptr)
            throw std::bad_alloc{};
#ifdef MADV_HUGEPAGE
        (void)::madvise(p, chunk_bytes, MADV_HUGEPAGE);  // a hint: failure changes nothing
#endif
        auto* c = static_cast<cohort*>(p);
        std::uninitialized_default_construct_n(c, chunk_size);
        return chunk_ptr{c};
    }
    std::vector<chunk_ptr> chunks_;
    std::uint32_t size_ = 0;
};

// The event queue's hint: an event's payload is (version << 32 | pool index).
struct prefetch_cohort {
    const cohort_pool* pool = nullptr;
    void operator()(std::uint64_t payload) const {
        pool->prefetch(static_cast<std::uint32_t>(payload & 0xffffffffu));
    }
};

bool same_state(const cohort& a, const cohort& b) {
    return a.phase == b.phase && a.group == b.group && a.ca_gen == b.ca_gen && a.flags == b.flags &&
           a.tries == b.tries && a.cert_nb == b.cert_nb && a.cert_na == b.cert_na &&
           a.skew == b.skew && a.syn_elapsed == b.syn_elapsed;
}
// An instant's record as the instant sorts it: same_state()'s fields in the order of `phase`
// first (shadow-loop requests before enrollments), then group, CA generation, flags, tries,
// certificate, SYN retransmission, skew; then the instant (lo, hi) and the pool index.
struct sort_key {
    std::uint64_t head;  // phase, group, ca_gen, flags, tries: most significant first
    ms_t cert_nb;
    ms_t cert_na;
    std::uint32_t syn_elapsed;
    ms_t skew;
    std::int32_t lo;
    std::int32_t hi;
    std::uint32_t idx;

    static sort_key of(const cohort& c, std::uint32_t idx) {
        const std::uint64_t head = std::uint64_t{c.phase} << 56 | std::uint64_t{c.group} << 40 |
                                   std::uint64_t{c.ca_gen} << 24 | std::uint64_t{c.flags} << 16 |
                                   std::uint64_t{c.tries};
        return sort_key{head, c.cert_nb, c.cert_na, c.syn_elapsed, c.skew, c.lo, c.hi, idx};
    }
    bool operator<(const sort_key& o) const {
        return std::tie(head, cert_nb, cert_na, syn_elapsed, skew, lo, hi, idx) <
               std::tie(o.head, o.cert_nb, o.cert_na, o.syn_elapsed, o.skew, o.lo, o.hi, o.idx);
    }
};

timers::limiter_config limiter_for(const scenario& sc, const server_side& side) {
    timers::limiter_config c;
    c.max_connections = side.http.max_connections;
    c.throttle = sc.throttle;
    c.window = sc.throttle_window;
    c.enabled = sc.limiter_enabled;
    return c;
}

class simulator {
  public:
    simulator(const scenario& sc, bool merge, const run_options& opt)
        : sc_(sc),
          merge_(merge),
          opt_(opt),
          origin_(sc.start),
          // The exact engine times every client to the millisecond whatever the scenario's
          // grid (issue 10 §3: its answer must not depend on an implementation detail); the
          // grid is the cohort engine's merging resolution.
          step_(merge ? std::max<ms_t>(1, sc.time_step.count()) : 1),
          horizon_ms_(sc.effective_horizon().count()),
          horizon_tick_(horizon_ms_ / step_),
          queue_(0, wheel_bits_for(sc), prefetch_cohort{&pool_}),
          ca_server_(limiter_for(sc, sc.ca)),
          ra_server_(limiter_for(sc, sc.ra ? *sc.ra : sc.ca)),
          rng_(sc.seed) {
        const auto days = static_cast<std::size_t>(horizon_ms_ / ms_per_day + 1);
        daily_.resize(days);
        minute_attempts_.assign(1440, 0);
        minute_accepted_.assign(1440, 0);
        ra_group_ = static_cast<std::uint16_t>(sc.groups.size());
    }

    sim_result run();

  private:
    static unsigned wheel_bits_for(const scenario& sc) {
        // Cover a few shadow retries + connect timeouts ahead; beyond that, the heap.
        const ms_t span = 4 * (sc.client.shadow_retry_interval.count() +
                               sc.client.connect_timeout.count() + 60'000);
        const ms_t ticks = span / std::max<ms_t>(1, sc.time_step.count());
        unsigned bits = 6;
        while (bits < 20 && (ms_t{1} << bits) < ticks)
            ++bits;
        return bits;
    }

    time_point at(ms_t ms) const { return origin_ + timers::duration{ms}; }
    ms_t ms_of(time_point t) const { return (t - origin_).count(); }
    // Client actions snap to the grid (nearest tick), never into the past.
    event_queue::tick tick_of(ms_t ms) const {
        const ms_t t = (ms + step_ / 2) / step_;
        return std::max<event_queue::tick>(t, now_tick_);
    }

    const timers::trustpoint_config& trustpoint_of(const cohort& c) const {
        return c.group == ra_group_ ? sc_.ra_trustpoint : sc_.groups[c.group].trustpoint;
    }
    bool is_ra(const cohort& c) const { return c.group == ra_group_; }
    bool talks_to_ra(const cohort& c) const {
        return !is_ra(c) && sc_.ra && sc_.groups[c.group].via_ra;
    }

    std::uint32_t alloc(const cohort& c) {
        std::uint32_t idx;
        if (!free_.empty()) {
            idx = free_.back();
            free_.pop_back();
            const auto v = pool_[idx].version;
            pool_[idx] = c;
            pool_[idx].version = v + 1;
        } else {
            idx = pool_.push_back(c);
        }
        ++live_cohorts_;
        peak_cohorts_ = std::max(peak_cohorts_, live_cohorts_);
        return idx;
    }
    void release(std::uint32_t idx) {
        pool_[idx].count = 0;
        ++pool_[idx].version;
        free_.push_back(idx);
        --live_cohorts_;
    }
    // Moves n members of cohort idx into a new cohort (same state) and returns it.
    std::uint32_t split(std::uint32_t idx, std::uint64_t n) {
        cohort copy = pool_[idx];
        copy.count = n;
        pool_[idx].count -= n;
        const std::uint32_t out = alloc(copy);
        if (per_client_ && idx < client_of_.size()) {
            if (client_of_.size() <= out)
                client_of_.resize(static_cast<std::size_t>(out) + 1);
            client_of_[out] = client_of_[idx];
        }
        return out;
    }
    // Members act in [when, when + width] (width 0: one instant).
    void schedule(std::uint32_t idx, ms_t when, ms_t width = 0) {
        width = std::clamp<ms_t>(width, 0, step_ - 1);
        const auto tick = tick_of(when + width / 2);
        const ms_t t0 = tick * step_;
        auto& c = pool_[idx];
        c.lo = static_cast<std::int32_t>(std::clamp<ms_t>(when - t0, -step_, step_));
        c.hi = static_cast<std::int32_t>(std::clamp<ms_t>(when + width - t0, c.lo, step_));
        queue_.push(tick, (std::uint64_t{c.version} << 32) | idx);
    }
    // The exact instant a cohort's first member acts at.
    ms_t exact_now(std::uint32_t idx, ms_t now) const { return now + pool_[idx].lo; }
    ms_t width_of(const cohort& c) const { return c.hi - c.lo; }

    day_counters& day_at(ms_t ms) {
        const auto d = static_cast<std::size_t>(
            std::clamp<ms_t>(ms / ms_per_day, 0, static_cast<ms_t>(daily_.size()) - 1));
        return daily_[d];
    }

    // A retry at `when` plus each member's own uniform jitter in [0, retry_jitter). The members
    // of a cohort draw independently: the cohort is split by the grid step each one lands on
    // (sim/jitter.hpp: member by member or as one multinomial, the same law), so the exact and
    // cohort engines agree in distribution, not draw for draw.
    void schedule_retry(std::uint32_t idx, ms_t when, ms_t width = 0) {
        const ms_t j = sc_.retry_jitter.count();
        if (j <= 0) {
            schedule(idx, when, width);
            return;
        }
        const std::uint64_t n = pool_[idx].count;
        if (n == 1) {
            schedule(idx, when + draw_jitter_ms(rng_, j));
            return;
        }
        const jitter_window w{when, j, step_, now_tick_};
        split_jitter(w, n, rng_, per_tick_);
        std::uint64_t remaining = n;
        for (std::size_t k = 0; k < per_tick_.size(); ++k) {
            const std::uint64_t c = per_tick_[k];
            if (c == 0)
                continue;
            const std::uint32_t part = c == remaining ? idx : split(idx, c);
            remaining -= c;
            // Its members are spread over the milliseconds of the window that land on this
            // tick (piled onto the tick's first millisecond, a herd spread by jitter would meet
            // max-connections as one: 20x the drops of the exact engine at 1 s, issue 12 §4).
            const auto tick = w.lo + static_cast<event_queue::tick>(k);
            const ms_t t0 = tick * step_;
            auto& pc = pool_[part];
            pc.lo =
                static_cast<std::int32_t>(std::clamp<ms_t>(w.first_ms(tick) - t0, -step_, step_));
            pc.hi = static_cast<std::int32_t>(std::clamp<ms_t>(w.last_ms(tick) - t0, pc.lo, step_));
            queue_.push(tick, (std::uint64_t{pc.version} << 32) | part);
        }
    }

    // CA generations: gen 0 is created at the start; gen k+1 is the shadow of gen k.
    void build_generations();
    bool ca_has_gen(std::size_t g, ms_t t) const {
        if (g >= gens_.size())
            return false;
        return g == 0 || t >= shadow_at_[g - 1];
    }
    std::optional<std::size_t> active_gen(ms_t t) const {
        for (std::size_t g = 0; g < gens_.size(); ++g) {
            if (t >= ms_of(gens_[g].not_before) && t < ms_of(gens_[g].not_after) &&
                ca_has_gen(g, t))
                return g;
        }
        return std::nullopt;
    }
    bool server_has_gen(bool via_ra, std::size_t g, ms_t t) const {
        if (via_ra)
            return !ra_dead_ && ra_known_gen_ >= g;
        return ca_has_gen(g, t);
    }

    // Per-generation accounting (see generation_stats).
    struct generation_acc {
        generation_stats s;
        // Σ first-404 and Σ loop-exit times of the generation's windows, in ms from the
        // generation's notBefore (relative, so that long horizons and big fleets do not
        // overflow the sums).
        ms_t base = 0;
        std::int64_t sum_first_404 = 0;
        std::int64_t sum_exit = 0;
        std::uint64_t exited = 0;
        ms_t max_window = 0;
    };
    generation_acc& gen_acc(std::size_t g) { return gen_acc_[std::min(g, gen_acc_.size() - 1)]; }
    // The generation whose validity contains `ms` (the last one in the horizon after it).
    std::size_t gen_at(ms_t ms) const {
        for (std::size_t g = 0; g + 1 < gen_acc_.size(); ++g)
            if (ms < ms_of(gens_[g].not_after))
                return g;
        return gen_acc_.size() - 1;
    }
    void note_window_end(std::uint32_t idx, ms_t when, std::uint64_t n) {
        const cohort& c = pool_[idx];
        auto& g = gen_acc(c.ca_gen);
        g.sum_exit += static_cast<std::int64_t>(n) * (when - g.base);
        g.exited += n;
        g.max_window = std::max(g.max_window, when - c.first_404);
        max_window_ = std::max(max_window_, when - c.first_404);
        if (auto* rec = record_of(idx))
            rec->longest_404_window_ms = std::max(rec->longest_404_window_ms, when - c.first_404);
    }

    void count_connections(const cohort& c, ms_t now, const admission_counts& a) {
        if (is_ra(c)) {
            ca_accepted_ += a.accepted;
            ca_refused_ += a.dropped + a.ignored;
            return;
        }
        auto& d = day_at(now);
        d.connections_accepted += a.accepted;
        d.connections_dropped_max_connections += a.dropped;
        d.connections_ignored_deaf += a.ignored;
        note_minute(now, a.accepted + a.dropped + a.ignored, a.accepted);
    }
    void note_minute(ms_t now, std::uint64_t attempts, std::uint64_t accepted);
    // The SYN-dropped attempts of `a` that get in later on a retransmission (the live
    // server's behaviour, timers::syn_retransmission): taken out of the counts, which then
    // hold only attempts whose fate is decided now; returns their retransmission offset from
    // the attempt's start (0 = none).
    ms_t late_connects(const server_model& srv, ms_t attempt_start, ms_t elapsed,
                       admission_counts& a, std::uint64_t& late) const {
        late = 0;
        const std::uint64_t syn_dropped = a.ignored - a.held;
        if (syn_dropped == 0)
            return 0;
        const ms_t deaf_left = ms_of(srv.limiter.deaf_until()) - attempt_start;
        const auto r = timers::syn_retransmission(timers::duration{elapsed},
                                                  timers::duration{deaf_left}, sc_.client);
        if (!r)
            return 0;
        late = syn_dropped;
        a.ignored -= late;
        return r->count();
    }
    void flush_minute();
    void flush_day();
    void collect_deaf(ms_t now) {
        ms_t deaf = ra_server_.take_deaf_ms();
        const ms_t ca_deaf = ca_server_.take_deaf_ms();
        if (!sc_.ra)
            deaf += ca_deaf;
        day_at(now).deaf_ms += deaf;
        if (deaf > 0)
            gen_acc(gen_at(now)).s.deaf_ms += deaf;
    }

    void schedule_renewal(std::uint32_t idx);
    void outage(std::uint32_t idx, ms_t when);
    void leave_loop(std::uint32_t idx, ms_t when, std::uint64_t n);
    void do_enroll(std::uint32_t idx, ms_t now, bool rollover);
    void do_get_next_ca(std::uint32_t idx, ms_t now);
    void do_switchover(std::uint32_t idx, ms_t now);
    void do_ra_manual_rollover(ms_t now);
    void seed_fleet();
    void seed_uniform_in_time_order(std::size_t gi);
    void seed_state(std::size_t gi, const client_state& cs);
    void handle(std::uint32_t idx, ms_t now);

    const scenario& sc_;
    bool merge_;
    const run_options& opt_;
    time_point origin_;
    ms_t step_;
    ms_t horizon_ms_;
    event_queue::tick horizon_tick_;
    event_queue::tick now_tick_ = 0;
    cohort_pool pool_;  // before queue_, which prefetches from it
    basic_event_queue<prefetch_cohort> queue_;
    server_model ca_server_;
    server_model ra_server_;  // unused without an RA
    std::mt19937_64 rng_;
    std::vector<std::uint64_t> per_tick_;  // schedule_retry's scratch
    std::vector<sort_key> keys_;           // run()'s scratch

    std::vector<timers::validity> gens_;
    std::vector<ms_t> shadow_at_;          // shadow_at_[k]: when gen k+1 was generated
    std::vector<generation_acc> gen_acc_;  // the generations that start within the horizon

    std::vector<std::uint32_t> free_;
    std::uint64_t live_cohorts_ = 0;
    std::uint64_t peak_cohorts_ = 0;
    std::uint16_t ra_group_ = 0;
    std::uint32_t ra_index_ = std::numeric_limits<std::uint32_t>::max();
    std::size_t ra_known_gen_ = 0;
    bool ra_dead_ = false;

    std::vector<day_counters> daily_;
    std::uint64_t in_loop_ = 0;
    ms_t cur_minute_ = -1;
    std::uint64_t cur_minute_attempts_ = 0;
    std::vector<std::uint32_t> minute_attempts_;
    std::vector<std::uint32_t> minute_accepted_;
    ms_t cur_day_ = 0;
    bool peak_minute_today_ = false;  // the fleet's peak minute so far fell on cur_day_

    sim_result r_;
    // clients.csv: per client (exact engine) or per group. client_of_[pool index] is the
    // record of a client's cohort when per_client_.
    bool per_client_ = false;
    std::vector<std::uint32_t> client_of_;
    std::vector<std::uint64_t> group_next_;  // next client index per group
    client_record* record_of(std::uint32_t idx) {
        const cohort& c = pool_[idx];
        if (is_ra(c))
            return nullptr;
        if (!per_client_)
            return &r_.client_records[c.group];
        return idx < client_of_.size() ? &r_.client_records[client_of_[idx]] : nullptr;
    }
    // A new client's cohort (creation order within its group is its clients.csv index).
    std::uint32_t new_client(const cohort& c) {
        const std::uint32_t idx = alloc(c);
        if (per_client_) {
            client_record rec;
            rec.group = c.group;
            rec.index = group_next_[c.group]++;
            rec.clients = 1;
            rec.per_client = true;
            if (client_of_.size() <= idx)
                client_of_.resize(static_cast<std::size_t>(idx) + 1);
            client_of_[idx] = static_cast<std::uint32_t>(r_.client_records.size());
            r_.client_records.push_back(rec);
        }
        return idx;
    }
    ms_t max_window_ = 0;
    std::uint64_t events_ = 0;
    std::uint64_t ca_accepted_ = 0;
    std::uint64_t ca_refused_ = 0;
    // Positions of this instant's connections (see `arrivals`).
    std::uint64_t instant_total_ = 1;
    std::uint64_t instant_next_ = 0;
    std::vector<ms_t> accepted_at_;
    bool instant_points_ = true;
    ms_t instant_lo_ = 0;
    ms_t instant_spread_ = 1;
    // Where the k members of cohort idx reach the server. Records that act at one exact
    // instant each arrive then (time order); otherwise the instant's connections are spread
    // evenly over the union of its records' ranges, in state order (shadow-loop requests before
    // enrollments).
    arrivals place(std::uint32_t idx, ms_t now, std::uint64_t k) {
        arrivals a;
        if (instant_points_) {
            a.base = now + pool_[idx].lo + sc_.latency.count();
            a.spread = 0;
            a.total = std::max<std::uint64_t>(1, k);
            a.first = 0;
            a.count = k;
            return a;
        }
        a.base = now + instant_lo_ + sc_.latency.count();
        a.spread = instant_spread_;
        a.total = std::max<std::uint64_t>(instant_total_, instant_next_ + k);
        a.first = instant_next_;
        a.count = k;
        instant_next_ += k;
        return a;
    }
};

void simulator::build_generations() {
    const auto& srv = sc_.ca.server;
    // Generation 0: the CA certificate as captured (inventory), else created at the start.
    gens_.push_back(sc_.ca_certificate());
    while (true) {
        const auto& cur = gens_.back();
        // Rule 3, the one timers/ rule check uses too (overlap >= CA life: at the creation).
        auto s = timers::shadow_time_of_generation(cur, srv.auto_rollover);
        if (gens_.size() == 1 && sc_.ca.manual_rollover) {
            // Operator `rollover`: the shadow is made at once (ios-pki-model.md §1 exec commands).
            const auto manual = origin_ + *sc_.ca.manual_rollover;
            if ((!s || manual < *s) && manual < cur.not_after)
                s = manual;
        }
        if (!s)
            break;
        shadow_at_.push_back(ms_of(*s));
        gens_.push_back(timers::shadow_ca_validity(cur.not_after, srv.ca_lifetime));
        if (ms_of(gens_.back().not_before) > horizon_ms_)
            break;
    }
}

void simulator::note_minute(ms_t now, std::uint64_t attempts, std::uint64_t accepted) {
    const ms_t minute = now / ms_per_minute;
    if (minute != cur_minute_) {
        flush_minute();
        cur_minute_ = minute;
    }
    cur_minute_attempts_ += attempts;
    const auto slot = static_cast<std::size_t>(minute % 1440);
    minute_attempts_[slot] +=
        static_cast<std::uint32_t>(std::min<std::uint64_t>(attempts, UINT32_MAX));
    minute_accepted_[slot] +=
        static_cast<std::uint32_t>(std::min<std::uint64_t>(accepted, UINT32_MAX));
}

void simulator::flush_minute() {
    if (cur_minute_ < 0)
        return;
    auto& d = day_at(cur_minute_ * ms_per_minute);
    d.peak_attempts_per_minute = std::max(d.peak_attempts_per_minute, cur_minute_attempts_);
    if (cur_minute_attempts_ > r_.peak_attempts_per_minute) {
        r_.peak_attempts_per_minute = cur_minute_attempts_;
        r_.peak_minute_at = at(cur_minute_ * ms_per_minute);
        peak_minute_today_ = true;
    }
    auto& g = gen_acc(gen_at(cur_minute_ * ms_per_minute)).s;
    if (cur_minute_attempts_ > g.peak_attempts_per_minute) {
        g.peak_attempts_per_minute = cur_minute_attempts_;
        g.peak_minute_at = at(cur_minute_ * ms_per_minute);
    }
    cur_minute_attempts_ = 0;
}

void simulator::flush_day() {
    flush_minute();
    // The busiest day is the day of the peak minute (issue 15: the plot of that day must show the
    // minute the summary reports). The peak only rises, so the last day that raised it holds it.
    if (peak_minute_today_) {
        peak_minute_today_ = false;
        r_.worst_day = static_cast<int>(cur_day_);
        r_.worst_day_attempts_per_minute = minute_attempts_;
        r_.worst_day_accepted_per_minute = minute_accepted_;
    }
    std::fill(minute_attempts_.begin(), minute_attempts_.end(), 0);
    std::fill(minute_accepted_.begin(), minute_accepted_.end(), 0);
}

void simulator::schedule_renewal(std::uint32_t idx) {
    cohort& c = pool_[idx];
    const timers::validity id{at(c.cert_nb), at(c.cert_na)};
    const auto ca_na = gens_[c.ca_gen].not_after;
    const auto rp = timers::client_renewal(trustpoint_of(c), id, ca_na);
    switch (rp.kind) {
        case timers::renewal_kind::renew:
            c.phase = ph_enroll;
            c.tries = 0;
            schedule(idx, ms_of(rp.at) - c.skew);
            return;
        case timers::renewal_kind::shadow:
            c.phase = ph_get_next_ca;
            c.tries = 0;
            schedule(idx, ms_of(rp.at) - c.skew);
            return;
        case timers::renewal_kind::none:
            c.phase = ph_cert_expiry;
            schedule(idx, c.cert_na - c.skew);
            return;
    }
}

void simulator::leave_loop(std::uint32_t idx, ms_t when, std::uint64_t n) {
    cohort& c = pool_[idx];
    if ((c.flags & fl_in_loop) == 0)
        return;
    if (!is_ra(c)) {
        in_loop_ -= n;
        if (c.flags & fl_hit_404)
            note_window_end(idx, when, n);
    }
    c.flags = static_cast<std::uint8_t>(c.flags & ~fl_in_loop);
}

void simulator::outage(std::uint32_t idx, ms_t when) {
    cohort& c = pool_[idx];
    leave_loop(idx, when, c.count);
    if (is_ra(c)) {
        ra_dead_ = true;
    } else {
        day_at(when).clients_outage += c.count;
        r_.clients_outage += c.count;
        if (auto* rec = record_of(idx))
            rec->outages += c.count;
        gen_acc(c.ca_gen).s.clients_outage += c.count;
    }
    release(idx);
}

void simulator::do_enroll(std::uint32_t idx, ms_t now, bool rollover) {
    // > 0: a SYN retransmission of an attempt begun `elapsed` ms ago (not a new request).
    // The copy is taken before the record is written: a 4-byte store followed by 16-byte loads
    // of the same line stalled on store forwarding (13 % of this function at 10^7 clients).
    cohort snapshot = pool_[idx];
    const ms_t elapsed = snapshot.syn_elapsed;
    snapshot.syn_elapsed = 0;
    pool_[idx].syn_elapsed = 0;  // every part decided here starts afresh
    const std::uint64_t k = snapshot.count;
    const bool ra_client = is_ra(snapshot);
    const bool via_ra = talks_to_ra(snapshot);
    const auto& tp = trustpoint_of(snapshot);

    if (rollover && now >= ms_of(gens_[snapshot.ca_gen].not_after)) {
        // The CA expired before the rollover certificate arrived (§2.3 "until the CA expires").
        outage(idx, now);
        return;
    }
    if (!ra_client && elapsed == 0)
        day_at(now).enrollment_attempts += k;

    const ms_t lat = sc_.latency.count();
    const ms_t service = sc_.service_enrollment.count();
    // The attempt starts at the exact instant (tick + remainder); its end arms the retry.
    const ms_t start = exact_now(idx, now);
    const ms_t arrival = start + lat;
    server_model& front = via_ra ? ra_server_ : ca_server_;
    accepted_at_.clear();
    admission_counts a = front.admit(origin_, place(idx, now, k), service, &accepted_at_);
    std::uint64_t late = 0;
    const ms_t late_at = late_connects(front, start - elapsed, elapsed, a, late);
    count_connections(snapshot, now, a);

    // Which CA generation signs: the shadow for a rollover request, else the active one.
    std::optional<std::size_t> gen;
    if (rollover) {
        gen = snapshot.ca_gen + 1u;
    } else {
        gen = active_gen(arrival);
    }
    std::uint64_t ok = a.accepted;
    ms_t reply = ms_of(timers::attempt_completion(timers::admission::accepted, at(start),
                                                  timers::duration{2 * lat},
                                                  timers::duration{service}, sc_.client)
                           .completed);
    if (via_ra && ok > 0) {
        // The RA re-signs and forwards the request to the CA over SCEP (§1 rule 8).
        std::uint64_t forwarded_ok = 0;
        for (const ms_t t : accepted_at_) {
            arrivals one;
            one.base = t + lat;
            one.count = 1;
            const admission_counts f = ca_server_.admit(origin_, one, service);
            ca_accepted_ += f.accepted;
            ca_refused_ += f.dropped + f.ignored;
            forwarded_ok += f.accepted;
        }
        ok = forwarded_ok;
        reply += 2 * lat + service;
        if (ra_dead_ || sc_.ra->server.grant == timers::grant_mode::none)
            ok = 0;
    }
    if (!gen || sc_.ca.server.grant == timers::grant_mode::none)
        ok = 0;
    const std::uint64_t failed_other = a.accepted - ok;

    if (!ra_client) {
        day_at(now).enrollments_ok += ok;
        day_at(now).enrollments_failed += k - late - ok;
        gen_acc(gen_at(now)).s.enrollments_failed += k - late - ok;
    }

    // The failures. A rollover request follows the shadow state machine (timers::shadow_step:
    // retried after the shadow retry interval until the CA expires); an initial or RENEW
    // enrollment is retried after `enrollment retry period` (+ the connect timeout when nobody
    // answered), up to `enrollment retry count` (0 = forever).
    const time_point client_ca_na = gens_[snapshot.ca_gen].not_after;
    const auto fail = [&](std::uint32_t part, timers::http_outcome outcome, ms_t when_known) {
        cohort& c = pool_[part];
        if (auto* rec = record_of(part))
            rec->enrollments_failed += c.count;
        if (rollover) {
            const auto tr = timers::shadow_step(timers::shadow_state::get_new_router_cert, outcome,
                                                at(when_known), client_ca_na, sc_.client);
            if (tr.state == timers::shadow_state::expired) {
                outage(part, when_known);
                return;
            }
            schedule_retry(part, ms_of(tr.at), width_of(c));
            return;
        }
        c.tries = static_cast<std::uint16_t>(std::min<int>(c.tries + 1, 65535));
        if (!gen) {
            // No CA to enroll with (it expired without a successor): the client stays without
            // a valid certificate.
            outage(part, now);
            return;
        }
        if (tp.retry_count > 0 && c.tries > tp.retry_count) {
            if (c.cert_na > now) {
                c.phase = ph_cert_expiry;
                schedule(part, c.cert_na);
            } else {
                outage(part, now);
            }
            return;
        }
        schedule_retry(part, when_known + tp.retry_period.count(), width_of(c));
    };

    // Split in a fixed order: ok, failed after an answer, refused, ignored (deaf).
    std::uint32_t rest = idx;
    std::uint64_t rest_count = k;
    auto take = [&](std::uint64_t n) -> std::optional<std::uint32_t> {
        if (n == 0)
            return std::nullopt;
        if (n == rest_count) {
            rest_count = 0;
            return rest;
        }
        rest_count -= n;
        return split(rest, n);
    };
    if (auto part = take(ok)) {
        cohort& c = pool_[*part];
        c.tries = 0;
        if (rollover) {
            // SHADOW_READY: keep the current certificate until the switchover (§1 rule 7).
            const auto tr =
                timers::shadow_step(timers::shadow_state::get_new_router_cert,
                                    timers::http_outcome::ok, at(reply), client_ca_na, sc_.client);
            (void)tr;  // always shadow_ready on a 200
            c.phase = ph_switchover;
            if (ra_client) {
                ra_known_gen_ = std::max(ra_known_gen_, *gen);
                if (!r_.ra_shadow_at)
                    r_.ra_shadow_at = at(reply);
                auto& gs = gen_acc(*gen - 1).s;
                if (!gs.ra_shadow_at)
                    gs.ra_shadow_at = at(reply);
            }
            schedule(*part, ms_of(timers::switchover_time(gens_[c.ca_gen].not_after)));
        } else {
            const auto id = timers::issued_validity(sc_.ca.server.cert_lifetime, at(arrival),
                                                    gens_[*gen].not_after);
            c.ca_gen = static_cast<std::uint16_t>(*gen);
            c.cert_na = ms_of(id.not_after);
            c.cert_nb = ms_of(id.not_before);
            schedule_renewal(*part);
        }
    }
    if (auto part = take(failed_other))
        fail(*part, timers::http_outcome::failure, reply);
    // What the client sees for an attempt the listener did not serve: one rule in timers/,
    // the same one the real server implements on the wire (model §2.5, §3).
    const auto unanswered = [&](const auto& handler, std::uint32_t part, timers::admission d) {
        // No answer: the connect timeout runs from the attempt's first SYN.
        const ms_t from = d == timers::admission::ignored_deaf ? start - elapsed : start;
        const auto end = timers::attempt_completion(d, at(from), timers::duration{2 * lat},
                                                    timers::duration{service}, sc_.client);
        handler(part, end.outcome, ms_of(end.completed));
    };
    if (auto part = take(a.dropped))
        unanswered(fail, *part, timers::admission::dropped_max_connections);
    if (auto part = take(a.ignored))
        unanswered(fail, *part, timers::admission::ignored_deaf);
    if (auto part = take(late)) {
        // The deaf period ends before the connect timeout: a retransmitted SYN gets in.
        pool_[*part].syn_elapsed = static_cast<std::uint32_t>(late_at);
        schedule(*part, start - elapsed + late_at, width_of(pool_[*part]));
    }
}

void simulator::do_get_next_ca(std::uint32_t idx, ms_t now) {
    cohort& c0 = pool_[idx];
    const ms_t elapsed = c0.syn_elapsed;  // > 0: a SYN retransmission, not a new request
    c0.syn_elapsed = 0;
    const bool ra_client = is_ra(c0);
    const bool via_ra = talks_to_ra(c0);
    const std::uint64_t k = c0.count;
    const time_point ca_na = gens_[c0.ca_gen].not_after;

    if ((c0.flags & fl_in_loop) == 0) {
        // The SHADOW timer fired: GET_NEW_CA_CERT (§2 timer 2).
        // From here on the old certificate only matters through its CA (it ends with it), and
        // the clock skew no longer matters (the 20 s timer is relative): forget both, so that
        // every looping client of a group is in the same state and cohorts can merge.
        c0.flags = static_cast<std::uint8_t>(c0.flags | fl_in_loop);
        c0.skew = 0;
        c0.cert_nb = ms_of(gens_[c0.ca_gen].not_before);
        if (ra_client) {
            if (!r_.ra_first_get_next_ca_cert_at)
                r_.ra_first_get_next_ca_cert_at = at(now);
        } else {
            in_loop_ += k;
            day_at(now).clients_entered_shadow_loop += k;
            if (auto* rec = record_of(idx); rec && (!rec->first_get_next_ca_cert_at ||
                                                    at(now) < *rec->first_get_next_ca_cert_at))
                rec->first_get_next_ca_cert_at = at(now);
            if (!r_.first_get_next_ca_cert_at || at(now) < *r_.first_get_next_ca_cert_at)
                r_.first_get_next_ca_cert_at = at(now);
            auto& gs = gen_acc(c0.ca_gen).s;
            gs.clients_entered_loop += k;
            if (!gs.first_get_next_ca_cert_at || at(now) < *gs.first_get_next_ca_cert_at)
                gs.first_get_next_ca_cert_at = at(now);
            if (!gs.last_loop_entry_at || at(now) > *gs.last_loop_entry_at)
                gs.last_loop_entry_at = at(now);
        }
    }
    if (now >= ms_of(ca_na)) {
        // Asking after the CA expired: §2.3 "forever, until the CA expires".
        const auto tr =
            timers::shadow_step(timers::shadow_state::get_new_ca_cert,
                                timers::http_outcome::timed_out, at(now), ca_na, sc_.client);
        if (tr.state == timers::shadow_state::expired) {
            outage(idx, now);
            return;
        }
    }
    if (!ra_client && elapsed == 0) {
        day_at(now).get_next_ca_cert_requests += k;
        gen_acc(c0.ca_gen).s.get_next_ca_cert_requests += k;
    }

    const ms_t lat = sc_.latency.count();
    const ms_t service = sc_.service_get_next_ca_cert.count();
    const ms_t start = exact_now(idx, now);
    const ms_t arrival = start + lat;
    server_model& srv = via_ra ? ra_server_ : ca_server_;
    admission_counts a = srv.admit(origin_, place(idx, now, k), service);
    std::uint64_t late = 0;
    const ms_t late_at = late_connects(srv, start - elapsed, elapsed, a, late);
    count_connections(c0, now, a);
    const bool has_next = server_has_gen(via_ra, c0.ca_gen + 1u, arrival);

    std::uint32_t rest = idx;
    std::uint64_t rest_count = k;
    auto take = [&](std::uint64_t n) -> std::optional<std::uint32_t> {
        if (n == 0)
            return std::nullopt;
        if (n == rest_count) {
            rest_count = 0;
            return rest;
        }
        rest_count -= n;
        return split(rest, n);
    };
    const auto react = [&](std::uint32_t part, timers::http_outcome outcome, ms_t when) {
        cohort& c = pool_[part];
        const std::uint64_t n = c.count;
        if (!ra_client) {
            auto& d = day_at(when);
            if (outcome == timers::http_outcome::not_found) {
                d.responses_404 += n;
                auto& g = gen_acc(c.ca_gen);
                g.s.responses_404 += n;
                if ((c.flags & fl_hit_404) == 0) {
                    // A new 404 window (one per client and generation).
                    c.flags = static_cast<std::uint8_t>(c.flags | fl_hit_404);
                    c.first_404 = when;
                    d.clients_first_404 += n;
                    r_.windows_404 += n;
                    g.s.clients_hit_404 += n;
                    g.sum_first_404 += static_cast<std::int64_t>(n) * (when - g.base);
                    if (auto* rec = record_of(part)) {
                        rec->windows_404 += n;
                        if (!rec->first_404_at || at(when) < *rec->first_404_at)
                            rec->first_404_at = at(when);
                    }
                }
                if ((c.flags & fl_ever_404) == 0) {
                    c.flags = static_cast<std::uint8_t>(c.flags | fl_ever_404);
                    r_.clients_hit_404 += n;
                    if (auto* rec = record_of(part))
                        rec->clients_hit_404 += n;
                }
                if (!r_.first_404_at || at(when) < *r_.first_404_at) {
                    r_.first_404_at = at(when);
                    r_.first_404_days_before_ca_expiry =
                        timers::to_days(gens_[c.ca_gen].not_after - at(when));
                }
                if (!r_.last_404_at || at(when) > *r_.last_404_at)
                    r_.last_404_at = at(when);
                if (!g.s.first_404_at || at(when) < *g.s.first_404_at)
                    g.s.first_404_at = at(when);
                if (!g.s.last_404_at || at(when) > *g.s.last_404_at)
                    g.s.last_404_at = at(when);
            } else if (outcome == timers::http_outcome::ok) {
                d.responses_200 += n;
                d.clients_got_next_ca += n;
            }
        }
        const auto tr = timers::shadow_step(timers::shadow_state::get_new_ca_cert, outcome,
                                            at(when), ca_na, sc_.client);
        switch (tr.state) {
            case timers::shadow_state::get_new_router_cert:
                leave_loop(part, when, n);
                c.phase = ph_rollover_enroll;
                c.tries = 0;
                schedule(part, ms_of(tr.at), width_of(c));
                return;
            case timers::shadow_state::expired:
                outage(part, when);
                return;
            case timers::shadow_state::shadow_ready:
                leave_loop(part, when, n);
                c.phase = ph_switchover;
                schedule(part, ms_of(timers::switchover_time(ca_na)));
                return;
            case timers::shadow_state::idle:
            case timers::shadow_state::get_new_ca_cert:
            case timers::shadow_state::get_new_ca_cert_wait_for_retry:
                c.phase = ph_get_next_ca;
                schedule_retry(part, ms_of(tr.at), width_of(c));
                return;
        }
    };
    if (auto part = take(a.accepted)) {
        const auto end = timers::attempt_completion(timers::admission::accepted, at(start),
                                                    timers::duration{2 * lat},
                                                    timers::duration{service}, sc_.client);
        react(*part, has_next ? timers::http_outcome::ok : timers::http_outcome::not_found,
              ms_of(end.completed));
    }
    // What the client sees for an attempt the listener did not serve: one rule in timers/,
    // the same one the real server implements on the wire (model §2.5, §3).
    const auto unanswered = [&](const auto& handler, std::uint32_t part, timers::admission d) {
        // No answer: the connect timeout runs from the attempt's first SYN.
        const ms_t from = d == timers::admission::ignored_deaf ? start - elapsed : start;
        const auto end = timers::attempt_completion(d, at(from), timers::duration{2 * lat},
                                                    timers::duration{service}, sc_.client);
        handler(part, end.outcome, ms_of(end.completed));
    };
    if (auto part = take(a.dropped))
        unanswered(react, *part, timers::admission::dropped_max_connections);
    if (auto part = take(a.ignored))
        unanswered(react, *part, timers::admission::ignored_deaf);
    if (auto part = take(late)) {
        // The deaf period ends before the connect timeout: a retransmitted SYN gets in.
        pool_[*part].syn_elapsed = static_cast<std::uint32_t>(late_at);
        schedule(*part, start - elapsed + late_at, width_of(pool_[*part]));
    }
}

void simulator::do_switchover(std::uint32_t idx, ms_t now) {
    cohort& c = pool_[idx];
    const std::size_t next = c.ca_gen + 1u;
    if (next >= gens_.size()) {
        outage(idx, now);
        return;
    }
    // Rule 6 + rule 7: the rollover ID certificate issued by the shadow CA becomes active.
    const auto id = timers::rollover_id_validity(sc_.ca.server.cert_lifetime, gens_[next]);
    c.cert_nb = ms_of(id.not_before);
    c.cert_na = ms_of(id.not_after);
    c.ca_gen = static_cast<std::uint16_t>(next);
    c.flags = static_cast<std::uint8_t>(c.flags & fl_ever_404);
    c.first_404 = never;
    schedule_renewal(idx);
}

void simulator::do_ra_manual_rollover(ms_t now) {
    // Operator `crypto pki server RA rollover`: the RA fetches the shadow now (seed 002 fix
    // step 4). Its pending timer is cancelled by bumping the record's version.
    if (ra_index_ == std::numeric_limits<std::uint32_t>::max())
        return;
    cohort& c = pool_[ra_index_];
    if (c.count == 0 || c.phase == ph_switchover)
        return;
    ++c.version;
    c.phase = ph_get_next_ca;
    c.tries = 0;
    schedule(ra_index_, now);
}

void simulator::handle(std::uint32_t idx, ms_t now) {
    switch (pool_[idx].phase) {
        case ph_enroll:
            do_enroll(idx, now, false);
            return;
        case ph_rollover_enroll:
            do_enroll(idx, now, true);
            return;
        case ph_get_next_ca:
            do_get_next_ca(idx, now);
            return;
        case ph_switchover:
            do_switchover(idx, now);
            return;
        case ph_cert_expiry:
            outage(idx, now);
            return;
    }
}

void simulator::seed_fleet() {
    // The RA's own certificate: issued by the CA when both are set up (day 0), from the CA's
    // `lifetime certificate` (rule 2), then renewed per its trustpoint's auto-enroll.
    if (sc_.ra) {
        cohort ra;
        ra.count = 1;
        ra.group = ra_group_;
        const auto id = sc_.ra->certificate ? *sc_.ra->certificate
                                            : timers::issued_validity(sc_.ca.server.cert_lifetime,
                                                                      origin_, gens_[0].not_after);
        ra.cert_nb = ms_of(id.not_before);
        ra.cert_na = ms_of(id.not_after);
        ra_index_ = alloc(ra);
        schedule_renewal(ra_index_);
        if (sc_.ra->manual_rollover)
            queue_.push(tick_of(sc_.ra->manual_rollover->count()),
                        std::numeric_limits<std::uint64_t>::max());
    }
    const ms_t skew = sc_.clock_skew.count();
    for (std::size_t gi = 0; gi < sc_.groups.size(); ++gi) {
        const auto& g = sc_.groups[gi];
        auto add = [&](ms_t when, std::uint64_t n) {
            if (n == 0)
                return;
            cohort c;
            c.group = static_cast<std::uint16_t>(gi);
            c.phase = ph_enroll;
            if (skew == 0 && merge_) {
                c.count = n;
                schedule(new_client(c), when);
                return;
            }
            for (std::uint64_t i = 0; i < n; ++i) {
                c.count = 1;
                if (skew > 0) {
                    const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
                    c.skew =
                        static_cast<ms_t>(std::llround((2 * u - 1) * static_cast<double>(skew)));
                }
                schedule(new_client(c), when);
            }
        };
        // The pattern's first enrollments: one rule with `pkisim fleet` (first_enrollments.hpp).
        if (merge_ && skew == 0 && g.pattern == enrollment_pattern::uniform &&
            g.count >= time_order_min) {
            seed_uniform_in_time_order(gi);
        } else {
            for_each_first_enrollment(
                g, rng_, [&](duration offset, std::uint64_t n) { add(offset.count(), n); });
        }
        if (g.pattern == enrollment_pattern::state)
            for (const auto& cs : g.routers)
                seed_state(gi, cs);
    }
}

// Sorts times ascending: an LSD radix sort on 11-bit digits of t - min (at 10^7 offsets,
// 0.55 s in std::sort, a quarter of that in four counting passes), std::sort for spans over
// 44 bits. Needs a second buffer as large as `v`.
void sort_times(std::vector<ms_t>& v) {
    if (v.size() < 2)
        return;
    const auto [lo_it, hi_it] = std::minmax_element(v.begin(), v.end());
    const ms_t lo = *lo_it;
    const auto span = static_cast<std::uint64_t>(*hi_it) - static_cast<std::uint64_t>(lo);
    constexpr unsigned digit_bits = 11;
    constexpr std::size_t radix = std::size_t{1} << digit_bits;
    const unsigned passes =
        (static_cast<unsigned>(std::bit_width(span)) + digit_bits - 1) / digit_bits;
    if (passes > 4) {
        std::sort(v.begin(), v.end());
        return;
    }
    std::vector<ms_t> tmp(v.size());
    for (unsigned p = 0; p < passes; ++p) {
        const unsigned shift = p * digit_bits;
        const auto digit = [&](ms_t t) {
            return static_cast<std::size_t>(
                ((static_cast<std::uint64_t>(t) - static_cast<std::uint64_t>(lo)) >> shift) &
                (radix - 1));
        };
        std::vector<std::size_t> at(radix + 1, 0);
        for (const ms_t t : v)
            ++at[digit(t) + 1];
        for (std::size_t b = 1; b <= radix; ++b)
            at[b] += at[b - 1];
        for (const ms_t t : v)
            tmp[at[digit(t)]++] = t;
        v.swap(tmp);
    }
}

// A big "uniform" group in the cohort engine without clock skew: the same clients from the same
// draws of rng_ as seed_fleet's `add` (one record per client), but created and scheduled in
// the order of their first enrollment time instead of the order of the draws. Why: the
// clients then renew in that order for years (one certificate lifetime each), so the sparse
// phase walks the pool almost sequentially instead of touching a random record of a 640 MB
// pool per event (a cache miss and, in a VM, a nested TLB walk each at 10^7 clients; issue 12
// §4). The cohort engine's results depend neither on record indices nor on the order in which
// the events of one tick were pushed (an instant's records are sorted by state and instant,
// and records equal in both merge), so they are identical; the exact engine keeps creation
// order (its clients.csv index). The offsets are held for the sort (8 B per client, freed
// before the first event).
void simulator::seed_uniform_in_time_order(std::size_t gi) {
    const auto& g = sc_.groups[gi];
    std::vector<ms_t> when;
    when.reserve(static_cast<std::size_t>(g.count));
    for_each_first_enrollment(g, rng_, [&](duration offset, std::uint64_t n) {
        when.insert(when.end(), static_cast<std::size_t>(n), offset.count());
    });
    sort_times(when);
    cohort c;
    c.group = static_cast<std::uint16_t>(gi);
    c.phase = ph_enroll;
    c.count = 1;
    for (const ms_t t : when)
        schedule(new_client(c), t);
}

void simulator::seed_state(std::size_t gi, const client_state& cs) {
    // A router as captured at the start (pattern "state"): its own certificate, issued by the
    // current CA (generation 0), and what it was doing then.
    cohort c;
    c.count = 1;
    c.group = static_cast<std::uint16_t>(gi);
    if (sc_.clock_skew.count() > 0) {
        const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
        c.skew = static_cast<ms_t>(
            std::llround((2 * u - 1) * static_cast<double>(sc_.clock_skew.count())));
    }
    if (cs.certificate) {
        c.cert_nb = ms_of(cs.certificate->not_before);
        c.cert_na = ms_of(cs.certificate->not_after);
    }
    const ms_t when = cs.at ? cs.at->count() : 0;
    switch (cs.phase) {
        case timers::router_phase::current:
            // Its RENEW/SHADOW point from timers/; one already past acts at the start.
            schedule_renewal(new_client(c));
            return;
        case timers::router_phase::pending:
        case timers::router_phase::no_certificate:
        case timers::router_phase::unknown:
            c.phase = ph_enroll;
            schedule(new_client(c), when);
            return;
        case timers::router_phase::rollover:
            // SHADOW_READY: waits for the switchover (rule 7).
            c.phase = ph_switchover;
            schedule(new_client(c), ms_of(timers::switchover_time(gens_[0].not_after)));
            return;
        case timers::router_phase::rollover_ca:
            c.phase = ph_rollover_enroll;
            schedule(new_client(c), when);
            return;
    }
}

sim_result simulator::run() {
    build_generations();
    r_.engine = merge_ ? engine_kind::cohort : engine_kind::exact;
    r_.start = origin_;
    r_.end = origin_ + timers::duration{horizon_ms_};
    r_.ca = gens_[0];
    if (!shadow_at_.empty())
        r_.shadow_generated_at = at(shadow_at_[0]);
    r_.clients = sc_.clients();
    per_client_ = !merge_ && r_.clients <= opt_.max_client_records;
    group_next_.assign(sc_.groups.size(), 0);
    if (per_client_) {
        r_.client_records.reserve(static_cast<std::size_t>(r_.clients));
    } else {
        r_.client_records.resize(sc_.groups.size());
        for (std::size_t g = 0; g < sc_.groups.size(); ++g) {
            r_.client_records[g].group = static_cast<std::uint16_t>(g);
            r_.client_records[g].clients = sc_.groups[g].count;
        }
    }
    for (std::size_t g = 0; g < gens_.size(); ++g) {
        if (g > 0 && ms_of(gens_[g].not_before) >= horizon_ms_)
            break;
        generation_acc acc;
        acc.s.number = static_cast<unsigned>(g + 1);
        acc.s.ca = gens_[g];
        acc.s.complete = ms_of(gens_[g].not_after) <= horizon_ms_;
        acc.base = ms_of(gens_[g].not_before);
        if (g < shadow_at_.size())
            acc.s.shadow_generated_at = at(shadow_at_[g]);
        gen_acc_.push_back(acc);
    }
    {
        std::vector<timers::trustpoint_config> tps;
        for (const auto& g : sc_.groups)
            tps.push_back(g.trustpoint);
        timers::storm_options so;
        so.client = sc_.client;
        so.limiter = limiter_for(sc_, sc_.front());
        r_.closed_form =
            timers::analyze_storm(sc_.ca.server, sc_.ca_certificate().not_before, tps, so);
    }

    seed_fleet();

    std::vector<std::uint64_t> batch;
    std::vector<std::uint32_t> live;
    std::uint64_t next_progress = 1u << 18;
    while (!queue_.empty()) {
        const auto t = queue_.next_time();
        if (t > horizon_tick_)
            break;
        queue_.pop_instant(batch);
        now_tick_ = t;
        const ms_t now = t * step_;
        const ms_t day = now / ms_per_day;
        if (day != cur_day_) {
            flush_day();
            cur_day_ = std::min<ms_t>(day, static_cast<ms_t>(daily_.size()) - 1);
        }
        live.clear();
        bool ra_rollover = false;
        for (const auto p : batch) {
            if (p == std::numeric_limits<std::uint64_t>::max()) {
                ra_rollover = true;
                continue;
            }
            const auto idx = static_cast<std::uint32_t>(p & 0xffffffffu);
            if (pool_[idx].version != static_cast<std::uint32_t>(p >> 32))
                continue;  // cancelled
            live.push_back(idx);
        }
        events_ += live.size();
        if (ra_rollover)
            do_ra_manual_rollover(now);
        if (live.size() > 1) {
            // By state, then by instant, so that the records of one instant are neighbours
            // (lossless merging below), then by index: a total order. Sorted as keys copied
            // out of the pool, not as indices compared through it (each comparison two
            // lookups and up to nine fields: the shadow loop and jittered runs sort every tick).
            // A very big instant (a whole fleet switching over at once) is sorted in place
            // instead: the keys would cost 48 B per record of extra peak memory.
            if (live.size() <= max_sort_keys) {
                keys_.clear();
                for (const auto idx : live)
                    keys_.push_back(sort_key::of(pool_[idx], idx));
                std::sort(keys_.begin(), keys_.end());
                for (std::size_t i = 0; i < live.size(); ++i)
                    live[i] = keys_[i].idx;
            } else {
                std::sort(live.begin(), live.end(), [this](std::uint32_t a, std::uint32_t b) {
                    return sort_key::of(pool_[a], a) < sort_key::of(pool_[b], b);
                });
            }
            if (merge_) {
                // Records that act at the same instant in the same state merge losslessly
                // (the limiter decides them one after the other in either form). Records of
                // different instants within the step merge only when the step holds more than
                // lossless_records_per_step of them: the merged record's members are spread
                // evenly over the union of the ranges, which is what costs the engine its
                // accuracy (a herd at one millisecond meets max-connections, the same herd
                // spread over the step does not; issue 10 §3, bench/README.md). Below that,
                // merging saves nothing worth the error: the cohort engine then equals the
                // exact one. Only below a 1 s step: a finer step is a request for accuracy,
                // while at 1 s (the default, the million-client runs) deciding up to 32
                // records one by one costs 2-4x the CPU for mid-size fleets (seed 002 with
                // 2,000 clients: 1.4 s -> 6.1 s) and the spread costs ~2 % (bench/README.md).
                const bool lossy = step_ >= 1000 || live.size() > lossless_records_per_step;
                std::size_t out = 0;
                for (std::size_t i = 0; i < live.size(); ++i) {
                    if (out > 0 && same_state(pool_[live[out - 1]], pool_[live[i]]) &&
                        (lossy || (pool_[live[out - 1]].lo == pool_[live[i]].lo &&
                                   pool_[live[out - 1]].hi == pool_[live[i]].hi))) {
                        auto& dst = pool_[live[out - 1]];
                        const auto& src = pool_[live[i]];
                        dst.lo = std::min(dst.lo, src.lo);
                        dst.hi = static_cast<std::int32_t>(
                            std::min<ms_t>(std::max(dst.hi, src.hi), dst.lo + step_ - 1));
                        dst.count += pool_[live[i]].count;
                        dst.first_404 = std::min(dst.first_404, pool_[live[i]].first_404);
                        release(live[i]);
                    } else {
                        live[out++] = live[i];
                    }
                }
                live.resize(out);
            }
        }
        instant_total_ = 0;
        instant_points_ = true;
        instant_lo_ = step_;
        ms_t instant_hi = -step_;
        for (const auto idx : live) {
            const auto& c = pool_[idx];
            instant_total_ += c.count;
            instant_points_ = instant_points_ && c.lo == c.hi;
            instant_lo_ = std::min<ms_t>(instant_lo_, c.lo);
            instant_hi = std::max<ms_t>(instant_hi, c.hi);
        }
        instant_spread_ = std::max<ms_t>(1, instant_hi - instant_lo_ + 1);
        if (instant_points_ && live.size() > 1) {
            // Every record acts at one exact instant (the exact engine, or cohorts of clients
            // that act together): the server sees them in time order, state order on ties.
            std::stable_sort(live.begin(), live.end(), [this](std::uint32_t a, std::uint32_t b) {
                return pool_[a].lo < pool_[b].lo;
            });
        }
        instant_total_ = std::max<std::uint64_t>(1, instant_total_);
        instant_next_ = 0;
        for (const auto idx : live)
            handle(idx, now);
        collect_deaf(now);
        auto& d = day_at(now);
        d.peak_clients_in_shadow_loop = std::max(d.peak_clients_in_shadow_loop, in_loop_);
        if (events_ >= next_progress) {
            next_progress = events_ + (1u << 18);
            if (opt_.on_progress) {
                progress p{
                    at(now),
                    static_cast<double>(now) / static_cast<double>(std::max<ms_t>(1, horizon_ms_)),
                    events_};
                for (ms_t dd = 0; dd <= cur_day_; ++dd) {
                    p.responses_404 += daily_[static_cast<std::size_t>(dd)].responses_404;
                    p.deaf_ms += daily_[static_cast<std::size_t>(dd)].deaf_ms;
                }
                opt_.on_progress(p);
            }
        }
    }
    flush_day();

    // Clients still looping at the horizon: their window is cut there.
    for (std::uint32_t i = 0; i < pool_.size(); ++i) {
        const cohort& c = pool_[i];
        if (c.count > 0 && (c.flags & fl_in_loop) && (c.flags & fl_hit_404) &&
            c.group != ra_group_) {
            note_window_end(i, horizon_ms_, c.count);
        }
    }

    r_.daily = daily_;
    for (const auto& d : daily_) {
        auto& t = r_.totals;
        t.get_next_ca_cert_requests += d.get_next_ca_cert_requests;
        t.responses_404 += d.responses_404;
        t.responses_200 += d.responses_200;
        t.enrollment_attempts += d.enrollment_attempts;
        t.enrollments_ok += d.enrollments_ok;
        t.enrollments_failed += d.enrollments_failed;
        t.connections_accepted += d.connections_accepted;
        t.connections_dropped_max_connections += d.connections_dropped_max_connections;
        t.connections_ignored_deaf += d.connections_ignored_deaf;
        t.deaf_ms += d.deaf_ms;
        t.clients_entered_shadow_loop += d.clients_entered_shadow_loop;
        t.clients_first_404 += d.clients_first_404;
        t.clients_got_next_ca += d.clients_got_next_ca;
        t.clients_outage += d.clients_outage;
        t.peak_clients_in_shadow_loop =
            std::max(t.peak_clients_in_shadow_loop, d.peak_clients_in_shadow_loop);
        t.peak_attempts_per_minute =
            std::max(t.peak_attempts_per_minute, d.peak_attempts_per_minute);
    }
    if (r_.windows_404 > 0) {
        std::int64_t total_window_ms = 0;
        for (const auto& g : gen_acc_)
            total_window_ms += g.sum_exit - g.sum_first_404;
        r_.mean_404_window_days = timers::to_days(
            timers::duration{total_window_ms / static_cast<std::int64_t>(r_.windows_404)});
        r_.max_404_window_days = timers::to_days(timers::duration{max_window_});
    }
    for (auto& g : gen_acc_) {
        auto& s = g.s;
        if (s.clients_hit_404 > 0) {
            s.mean_404_window_days = timers::to_days(timers::duration{
                (g.sum_exit - g.sum_first_404) / static_cast<std::int64_t>(s.clients_hit_404)});
            s.max_404_window_days = timers::to_days(timers::duration{g.max_window});
        }
        s.outcome = s.clients_outage > 0    ? verdict::outage
                    : s.clients_hit_404 > 0 ? verdict::storm
                                            : verdict::safe;
        // A generation the horizon only starts (the default horizon runs 60 days into the
        // second) is listed only if its rollover already began.
        if (s.complete || s.clients_entered_loop > 0 || s.clients_outage > 0 ||
            s.enrollments_failed > 0 || s.deaf_ms > 0)
            r_.generations.push_back(s);
    }
    r_.events = events_;
    r_.peak_cohorts = peak_cohorts_;
    r_.memory_bytes = pool_.memory_bytes() + free_.capacity() * 4 + queue_.memory_bytes() +
                      daily_.capacity() * sizeof(day_counters);
    r_.ca_connections_accepted = ca_accepted_;
    r_.ca_connections_refused_or_ignored = ca_refused_;
    r_.outcome = r_.clients_outage > 0    ? verdict::outage
                 : r_.clients_hit_404 > 0 ? verdict::storm
                                          : verdict::safe;
    if (r_.worst_day_attempts_per_minute.empty()) {
        r_.worst_day_attempts_per_minute.assign(1440, 0);
        r_.worst_day_accepted_per_minute.assign(1440, 0);
    }
    return r_;
}

}  // namespace

sim_result run_simulation(const scenario& sc, const run_options& options) {
    bool merge = true;
    switch (options.engine) {
        case engine_kind::exact:
            merge = false;
            break;
        case engine_kind::cohort:
            merge = true;
            break;
        case engine_kind::automatic:
            // Without jitter both engines give the same daily counters (tested), and the
            // cohort engine is faster from a few hundred clients on; with jitter they agree only
            // statistically, so the exact engine is kept as long as it is affordable.
            merge = sc.clients() > (sc.retry_jitter.count() > 0 ? options.exact_max_clients_jitter
                                                                : options.exact_max_clients);
            break;
    }
    simulator s{sc, merge, options};
    return s.run();
}

}  // namespace pkisim::sim
