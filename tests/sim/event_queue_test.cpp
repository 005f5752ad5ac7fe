#include "pkisim/sim/event_queue.hpp"

#include <cstdint>
#include <iterator>
#include <queue>
#include <random>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

using pkisim::sim::event_queue;

TEST(event_queue, delivers_events_in_time_then_insertion_order) {
    event_queue q{0, 6};
    q.push(5, 1);
    q.push(3, 2);
    q.push(5, 3);
    q.push(1000, 4);  // beyond the 64-tick wheel: the far heap
    q.push(3, 5);
    std::vector<std::pair<std::int64_t, std::uint64_t>> got;
    while (!q.empty()) {
        auto e = q.pop();
        got.emplace_back(e.time, e.payload);
    }
    const std::vector<std::pair<std::int64_t, std::uint64_t>> want{
        {3, 2}, {3, 5}, {5, 1}, {5, 3}, {1000, 4}};
    EXPECT_EQ(got, want);
}

TEST(event_queue, far_events_of_an_instant_come_before_later_wheel_events_of_it) {
    event_queue q{0, 6};
    q.push(100, 1);  // far (100 >= 64)
    q.push(50, 2);
    EXPECT_EQ(q.pop().payload, 2u);  // now = 50: tick 100 is inside the wheel now
    q.push(100, 3);
    EXPECT_EQ(q.pop().payload, 1u);
    EXPECT_EQ(q.pop().payload, 3u);
}

TEST(event_queue, pop_instant_returns_one_instant_and_later_pushes_at_it_come_next) {
    event_queue q{10, 8};
    q.push(12, 1);
    q.push(12, 2);
    q.push(13, 3);
    std::vector<std::uint64_t> batch;
    EXPECT_EQ(q.pop_instant(batch), 12);
    EXPECT_EQ(batch, (std::vector<std::uint64_t>{1, 2}));
    q.push(12, 4);  // zero-delay event while handling the instant
    EXPECT_EQ(q.pop_instant(batch), 12);
    EXPECT_EQ(batch, (std::vector<std::uint64_t>{4}));
    EXPECT_EQ(q.pop_instant(batch), 13);
    EXPECT_EQ(batch, (std::vector<std::uint64_t>{3}));
    EXPECT_TRUE(q.empty());
}

TEST(event_queue, matches_a_sorted_reference_on_a_random_hold_model) {
    // Hold model: pop the minimum, push at now + random (some far beyond the wheel).
    std::mt19937_64 rng{42};
    event_queue q{0, 8};
    std::vector<std::tuple<std::int64_t, std::uint64_t, std::uint64_t>> ref;  // time, seq, id
    std::uint64_t seq = 0;
    for (std::uint64_t i = 0; i < 2000; ++i) {
        const auto t = static_cast<std::int64_t>(rng() % 600);
        q.push(t, i);
        ref.emplace_back(t, seq++, i);
    }
    for (int step = 0; step < 50000; ++step) {
        auto it = std::min_element(ref.begin(), ref.end());
        const auto want = *it;
        ref.erase(it);
        const auto e = q.pop();
        ASSERT_EQ(e.time, std::get<0>(want)) << "step " << step;
        ASSERT_EQ(e.payload, std::get<2>(want)) << "step " << step;
        const auto t = e.time + static_cast<std::int64_t>(rng() % 700);
        q.push(t, e.payload);
        ref.emplace_back(t, seq++, e.payload);
    }
    EXPECT_EQ(q.size(), ref.size());
}

TEST(event_queue, keeps_time_then_insertion_order_across_every_level) {
    // Delays from one tick to past level 2's 2^28 ticks, on a coarse grid so that many events
    // share an instant after coming through different levels (heap, level 2, 1, 0).
    std::mt19937_64 rng{7};
    event_queue q{5};
    using item = std::tuple<std::int64_t, std::uint64_t, std::uint64_t>;  // time, seq, id
    std::priority_queue<item, std::vector<item>, std::greater<>> ref;
    std::uint64_t seq = 0;
    auto delay = [&] {
        static constexpr std::int64_t spans[] = {3,         900,         70'000,
                                                 3'000'000, 200'000'000, 600'000'000};
        const auto span = spans[rng() % std::size(spans)];
        const auto grid = span > 1000 ? span / 50 : 1;
        return static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(span)) / grid * grid;
    };
    for (std::uint64_t i = 0; i < 3000; ++i) {
        const auto t = 5 + delay();
        q.push(t, i);
        ref.emplace(t, seq++, i);
    }
    for (int step = 0; !ref.empty(); ++step) {
        const auto want = ref.top();
        ref.pop();
        const auto e = q.pop();
        ASSERT_EQ(e.time, std::get<0>(want)) << "step " << step;
        ASSERT_EQ(e.payload, std::get<2>(want)) << "step " << step;
        if (step % 3 != 0) {  // drains slowly: the last events come through the far levels
            const auto t = e.time + delay();
            q.push(t, e.payload);
            ref.emplace(t, seq++, e.payload);
        }
    }
    EXPECT_EQ(q.size(), ref.size());
}
