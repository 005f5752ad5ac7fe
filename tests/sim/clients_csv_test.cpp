// clients.csv measured columns (issue 15 §1): the per-client records of the exact engine and the
// per-group records of the cohort engine add up to the run's own totals, whatever the fleet.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <tuple>
#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "pkisim/sim/clients_csv.hpp"
#include "sim_test_util.hpp"

namespace pkisim::sim {
namespace {

using testing::engine_opt;

namespace fs = std::filesystem;

void write(const fs::path& p, const std::string& text) {
    std::ofstream out{p};
    out << text;
}

// Two groups: one that loops on 404 with the limiter tripping, one that is safe; a short CA so
// that two generations run quickly (4 d certificates at 75 % and 95 %, a 3.5 d CA, an overlap
// of `overlap` hours).
scenario fleet(const std::string& overlap, std::uint64_t a, std::uint64_t b) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    const auto dir = fs::temp_directory_path() / (std::string{"pkisim-csv-"} + info->name());
    fs::create_directories(dir);
    write(dir / "ca.ios",
          "crypto pki server ca\n grant auto\n lifetime ca-certificate 3 12\n lifetime "
          "certificate 4\n auto-rollover 0 " + overlap + "\n!\nip http max-connections 5\n");
    write(dir / "tp75.ios", "crypto pki trustpoint tp\n enrollment url http://10.0.0.1:80\n auto-enroll 75\n");
    write(dir / "tp95.ios", "crypto pki trustpoint tp2\n enrollment url http://10.0.0.1:80\n auto-enroll 95\n");
    write(dir / "s.toml",
          fmt::format("start = \"2031-03-01T00:00:00Z\"\nseed = 7\n[ca]\nconfig = \"ca.ios\"\n"
                      "[[clients]]\nname = \"early\"\nconfig = \"tp75.ios\"\ncount = {}\n"
                      "pattern = \"uniform\"\nwindow = \"1d\"\n"
                      "[[clients]]\nname = \"late\"\nconfig = \"tp95.ios\"\ncount = {}\n"
                      "pattern = \"spread\"\nwindow = \"1d\"\n",
                      a, b));
    auto sc = load_scenario((dir / "s.toml").string());
    EXPECT_TRUE(sc) << (sc ? "" : sc.error());
    return sc ? *sc : scenario{};
}

struct sums {
    std::uint64_t clients = 0, hit = 0, windows = 0, failed = 0, outages = 0;
    std::int64_t longest = 0;
    std::optional<time_point> first_404, first_loop;
};

sums add_up(const sim_result& r) {
    sums s;
    for (const auto& m : r.client_records) {
        s.clients += m.clients;
        s.hit += m.clients_hit_404;
        s.windows += m.windows_404;
        s.failed += m.enrollments_failed;
        s.outages += m.outages;
        s.longest = std::max(s.longest, m.longest_404_window_ms);
        for (auto [dst, src] : {std::pair{&s.first_404, &m.first_404_at},
                                std::pair{&s.first_loop, &m.first_get_next_ca_cert_at}})
            if (*src && (!*dst || **src < **dst))
                *dst = *src;
    }
    return s;
}

void expect_totals(const sim_result& r, const sums& s, const std::string& what) {
    EXPECT_EQ(s.clients, r.clients) << what;
    EXPECT_EQ(s.hit, r.clients_hit_404) << what;
    EXPECT_EQ(s.windows, r.windows_404) << what;
    EXPECT_EQ(s.failed, r.totals.enrollments_failed) << what;
    EXPECT_EQ(s.outages, r.clients_outage) << what;
    EXPECT_EQ(s.first_404, r.first_404_at) << what;
    EXPECT_EQ(s.first_loop, r.first_get_next_ca_cert_at) << what;
    EXPECT_NEAR(timers::to_days(timers::duration{s.longest}), r.max_404_window_days, 1e-9) << what;
}

}  // namespace

TEST(clients_csv, per_client_records_add_up_to_the_runs_totals) {
    for (const auto& [overlap, a, b] : {std::tuple{"10", 40u, 7u}, std::tuple{"20", 5u, 30u},
                                        std::tuple{"0", 12u, 1u}}) {
        const auto sc = fleet(overlap, a, b);
        const auto what = fmt::format("overlap {} h, {} + {} clients", overlap, a, b);
        const auto r = run_simulation(sc, engine_opt(engine_kind::exact));
        ASSERT_EQ(r.client_records.size(), a + b) << what;
        EXPECT_TRUE(std::all_of(r.client_records.begin(), r.client_records.end(),
                                [](const auto& m) { return m.per_client && m.clients == 1; }));
        expect_totals(r, add_up(r), what);
        // Within a group, records are numbered in creation order.
        std::vector<std::uint64_t> next(2, 0);
        for (const auto& m : r.client_records)
            EXPECT_EQ(m.index, next[m.group]++) << what;
        // The CSV: a header, one group row and one row per client for each group.
        const auto csv = clients_csv(sc, r);
        EXPECT_EQ(static_cast<std::size_t>(std::count(csv.begin(), csv.end(), '\n')),
                  1 + 2 + a + b)
            << what;
        EXPECT_NE(csv.find(",clients_hit_404,enrollments_failed,outages,note\n"), std::string::npos);
    }
}

TEST(clients_csv, the_cohort_engine_records_each_group) {
    const auto sc = fleet("10", 400, 50);
    const auto r = run_simulation(sc, engine_opt(engine_kind::cohort));
    ASSERT_EQ(r.client_records.size(), 2u);
    EXPECT_EQ(r.client_records[0].clients, 400u);
    EXPECT_EQ(r.client_records[1].clients, 50u);
    EXPECT_GT(r.client_records[0].clients_hit_404, 0u);  // the 75 % group loops
    expect_totals(r, add_up(r), "cohort");
    // A fleet too big for per-client records gets group records from the exact engine too.
    run_options o = engine_opt(engine_kind::exact);
    o.max_client_records = 100;
    const auto big = run_simulation(sc, o);
    ASSERT_EQ(big.client_records.size(), 2u);
    expect_totals(big, add_up(big), "exact, group records");
}

}  // namespace pkisim::sim
