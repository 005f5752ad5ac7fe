// Golden outputs: daily.csv of small seeded scenarios, checked in under tests/data/sim/golden/.
// PKISIM_UPDATE_GOLDEN=1 rewrites them (review the diff: it is a model change).
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "pkisim/sim/report.hpp"
#include "pkisim/sim/simulation.hpp"
#include "sim_test_util.hpp"

using namespace pkisim::sim;
using pkisim::sim::testing::make_scenario;
using pkisim::sim::testing::source_dir;

namespace {

void check_golden(const std::string& name, const std::string& toml) {
    const auto sc = make_scenario(toml);
    const auto r = run_simulation(sc);
    const std::string csv = daily_csv(r);
    const std::string path = source_dir() + "/tests/data/sim/golden/" + name + ".daily.csv";
    if (std::getenv("PKISIM_UPDATE_GOLDEN") != nullptr) {
        std::ofstream{path, std::ios::binary} << csv;
        GTEST_SKIP() << "rewrote " << path;
    }
    std::ifstream in{path, std::ios::binary};
    ASSERT_TRUE(in) << path << " missing; run with PKISIM_UPDATE_GOLDEN=1";
    std::stringstream want;
    want << in.rdbuf();
    EXPECT_EQ(csv, want.str()) << name;
}

}  // namespace

TEST(golden, mini_ra_fleet_of_36_uniform_clients) {
    check_golden("mini-ra-36", R"(
horizon = "4d"
seed = 5
[ca]
config = "tests/data/sim/mini/ca.ios"
[ra]
config = "tests/data/sim/mini/ra.ios"
[[clients]]
config = "tests/data/sim/mini/client.ios"
pattern = "uniform"
window = "16h 48m"
count = 36
)");
}

TEST(golden, mini_ca_fleet_in_batches_and_csv_with_max_connections_1) {
    check_golden("mini-ca-batches", R"(
horizon = "4d"
seed = 3
[ca]
config = "tests/data/sim/mini/ca.ios"
[network]
service_enrollment = "2s"
clock_skew = "5m"
[[clients]]
name = "batches"
config = "tests/data/sim/mini/client.ios"
pattern = "batches"
batches = [{ at = "0d", count = 20 }, { at = "6h", count = 10 }]
[[clients]]
name = "from csv"
config = "tests/data/sim/mini/client.ios"
pattern = "csv"
csv = "tests/data/sim/mini/times.csv"
)");
}
