// Subcommands of the `pkisim` executable. Each registers itself on the CLI11 app and, when
// chosen, stores its exit code in `exit_code`:
//   0 = success / safe, 1 = storm or outage (the verdict), 2 = usage or configuration error,
//   other codes are documented by the command.
#pragma once

#include <CLI/CLI.hpp>

namespace pkisim::cli {

void add_check_command(CLI::App& app, int& exit_code);
#ifdef PKISIM_HAS_SIM
void add_simulate_command(CLI::App& app, int& exit_code);
// `pkisim inventory`: routers' captures -> a scenario of explicit per-router state.
void add_inventory_command(CLI::App& app, int& exit_code);
#endif
#ifdef PKISIM_HAS_SCEP
// `pkisim serve` and `pkisim ca ...`
void add_serve_commands(CLI::App& app, int& exit_code);
#endif
#ifdef PKISIM_HAS_SCEP_CLIENT
// `pkisim client ...`: an IOS-like SCEP client for the lab.
void add_client_command(CLI::App& app, int& exit_code);
#endif
#ifdef PKISIM_HAS_BENCH
// `pkisim bench URL`: load generator (loadgen/include/pkisim/loadgen/bench.hpp).
void add_bench_command(CLI::App& app, int& exit_code);
#endif

#ifdef PKISIM_HAS_LOADGEN
// `pkisim fleet`: the scenario's virtual IOS clients against a real SCEP server.
void add_fleet_command(CLI::App& app, int& exit_code);
#endif

}  // namespace pkisim::cli
