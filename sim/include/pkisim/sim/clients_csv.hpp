// clients.csv: one row per router of an inventory scenario (pattern "state"), and one per
// other client group with an empty hostname: its first GetNextCACert, the expected 404
// window, whether the throttle catches it, whether it ends in outage.
//
//   auto r = run_simulation(sc);
//   write_text("out/clients.csv", clients_csv(sc, r));
//
// The per-router times are timers::forecast_client() (the same timers the simulation runs,
// each enrollment granted when asked) against the time the client's server had the next CA in
// this run (the CA's shadow, or the RA's when the clients go through an RA); "caught by
// throttle" is whether the simulated listener was deaf (the 80/min throttle) on a day of that
// window. Columns are documented in README.md "Simulate your own fleet".
#pragma once

#include <string>

#include "pkisim/sim/scenario.hpp"
#include "pkisim/sim/simulation.hpp"

namespace pkisim::sim {

std::string clients_csv(const scenario& sc, const sim_result& r);

}  // namespace pkisim::sim
