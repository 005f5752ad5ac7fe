// `--sweep KEY=VALUES`: the same fleet for several settings, two at a time (this machine has two
// cores), and the smallest value that comes out safe.
//
//   auto spec = parse_sweep("overlap=30,100,180,365").value();
//   auto sw = run_sweep(scenario, spec, run_options{}).value();
//   if (sw.smallest_safe) fmt::print("smallest safe: {}\n", sw.points[*sw.smallest_safe].value);
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "pkisim/sim/scenario.hpp"
#include "pkisim/sim/simulation.hpp"

namespace pkisim::sim {

struct sweep_spec {
    std::string key;                  // any --set key (overlap, auto-enroll, max-connections...)
    std::vector<std::string> values;  // as written to --set
};

// "overlap=30,60,90", "auto-enroll=60..90" (step 5 by default), "overlap=30..390:30".
tl::expected<sweep_spec, std::string> parse_sweep(std::string_view text);

struct sweep_point {
    std::string value;
    sim_result result;
};

struct sweep_result {
    std::string key;
    std::vector<sweep_point> points;           // in the order given
    std::optional<std::size_t> smallest_safe;  // index of the numerically smallest safe value
};

// Runs every value on `threads` worker threads; results do not depend on the thread count.
tl::expected<sweep_result, std::string> run_sweep(const scenario& base, const sweep_spec& spec,
                                                  const run_options& options, unsigned threads = 2);

}  // namespace pkisim::sim
