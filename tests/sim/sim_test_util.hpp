// Helpers shared by the simulator tests: scenarios from inline TOML, resolved against the repo.
#pragma once

#include <string>

#include <gtest/gtest.h>

#include "pkisim/sim/scenario.hpp"
#include "pkisim/sim/simulation.hpp"

namespace pkisim::sim::testing {

inline std::string source_dir() {
    return PKISIM_SOURCE_DIR;
}

// Parses inline TOML; IOS paths are relative to the repository root.
inline scenario make_scenario(const std::string& toml) {
    auto sc = parse_scenario(toml, "test.toml", source_dir());
    if (!sc)
        ADD_FAILURE() << sc.error();
    return sc ? *sc : scenario{};
}

inline run_options engine_opt(engine_kind e) {
    run_options o;
    o.engine = e;
    return o;
}

}  // namespace pkisim::sim::testing
