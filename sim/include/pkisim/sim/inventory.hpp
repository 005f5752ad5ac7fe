// A fleet as it is: routers' captures (timers::parse_captures) turned into a scenario whose
// clients are those routers, each with its own certificate and trustpoint, starting at the
// capture time (pattern "state", configs/README.md "Scenario files").
//
//   auto inv = build_inventory(router_captures, ca_captures, inventory_options{});
//   if (!inv) { std::cerr << inv.error() << '\n'; return 2; }
//   write_file("fleet.toml", inv->scenario_toml);
//   for (const auto& r : inv->routers) std::cout << r.state.hostname << ' ' << ...;
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "pkisim/timers/forecast.hpp"
#include "pkisim/timers/ios_show.hpp"
#include "pkisim/timers/time.hpp"

namespace pkisim::sim {

struct inventory_options {
    std::string trustpoint;                            // empty: each router's SCEP trustpoint
    std::optional<timers::time_point> start;           // default: the earliest capture time
    timers::duration tolerance = timers::minutes{10};  // printed vs computed timers
    std::string name = "inventory";
};

struct inventory_router {
    timers::router_state state;
    std::vector<std::string> disagreements;  // printed RENEW/SHADOW vs timers/
    timers::client_forecast forecast;        // with the CA's shadow time (no RA, no throttle)
    bool in_scenario = false;                // false: state unknown, listed only
    std::string group;
};

struct inventory {
    std::vector<inventory_router> routers;
    timers::time_point start{};
    timers::validity ca;
    std::optional<timers::time_point> shadow_at;  // CA shadow generation (or already there)
    std::vector<std::string> findings;  // CA-side doubts, CA/router mismatches, assumptions
    std::string scenario_toml;
    std::size_t unknown() const;
};

// `ca_captures`: the CA's (and RA's) captures: running-config with `crypto pki server`, and
// ideally `show crypto pki server`, `show crypto pki certificates`, `show clock`.
tl::expected<inventory, std::string> build_inventory(
    const std::vector<timers::router_capture>& routers,
    const std::vector<timers::router_capture>& ca_captures, const inventory_options& options);

// The table printed by `pkisim inventory`: one line per router.
std::string inventory_table(const inventory& inv);

}  // namespace pkisim::sim
