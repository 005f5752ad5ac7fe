// The recommended change set (timers::analyze_fleet: overlap on the CA, manual RA rollover, RA
// and client auto-enroll, ip http max-connections), verified by the event simulation: the same
// fleet is re-run with the change set's --set settings applied (through the one registry), over
// at least two CA generations, and the change set is only called a fix if that run is safe.
//
//   auto r = run_simulation(sc, opt);
//   if (r.outcome != verdict::safe) {
//       const auto v = verify_change_set(sc, opt);          // runs the fleet again
//       std::cout << change_set_text(v);                    // IOS text per device, or why not
//   }
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pkisim/sim/scenario.hpp"
#include "pkisim/sim/simulation.hpp"
#include "pkisim/timers/verdict.hpp"

namespace pkisim::sim {

// The closed form's input for this scenario (CA, RA with its own trustpoint and manual
// rollover, the client trustpoints, the fleet size, the limiter the clients meet).
timers::fleet_input fleet_input_of(const scenario& sc);

struct verified_change_set {
    timers::fleet_verdict closed_form;         // analyze_fleet(fleet_input_of(sc))
    std::optional<timers::change_set> change;  // nothing to change when nullopt or empty
    bool rerun_done = false;
    std::string rerun_error;         // a setting of the change set did not apply to the scenario
    unsigned rerun_generations = 0;  // CA generations the re-run covered
    sim_result rerun;                // the fleet with the change set applied
    // The change set made the simulated fleet safe in every generation of the re-run.
    bool verified() const {
        return change && !change->empty() && rerun_done && rerun.outcome == verdict::safe;
    }
};

// Computes the change set and, when there is one, re-runs the fleet with it. The re-run covers
// max(2, the scenario's generations) CA generations (generation 2 is the phase-locked herd).
verified_change_set verify_change_set(const scenario& sc, const run_options& options);

// Printed only when verified: the IOS configuration text to type per device (config lines,
// exec commands with when), the arithmetic, and the --set line that reproduces the re-run.
// Otherwise: which part cannot be made safe and why (the closed form's reasons and the
// re-run's generations that still storm).
std::string change_set_text(const verified_change_set& v, const std::string& scenario_path);
// The part of it that goes into sim_result (summary.json "change_set").
change_set_check summarize(const verified_change_set& v, const std::string& scenario_path);

}  // namespace pkisim::sim
