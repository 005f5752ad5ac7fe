// What a simulation leaves behind: summary.json, daily.csv, SVG plots and one self-contained
// report.html, plus the verdict in words for the terminal.
//
//   auto r = run_simulation(sc);
//   write_report("out/", sc, r, std::nullopt, report_options{.wall_seconds = 1.2});
//   std::cout << verdict_text(sc, r, "out/");
//
// Everything here is a pure function of (scenario, result): the same run gives byte-identical
// files. The one exception, wall_seconds, is only written to summary.json, and is 0 when
// `deterministic` is set (golden tests).
#pragma once

#include <optional>
#include <string>

#include <tl/expected.hpp>

#include "pkisim/sim/scenario.hpp"
#include "pkisim/sim/simulation.hpp"
#include "pkisim/sim/sweep.hpp"

namespace pkisim::sim {

struct report_options {
    bool deterministic = false;
    double wall_seconds = 0;
};

std::string summary_json(const scenario& sc, const sim_result& r, const report_options& o);
std::string daily_csv(const sim_result& r);
std::string sweep_csv(const sweep_result& s);

// Plots (hand-written SVG, no scripts).
std::string plot_daily_svg(const sim_result& r);  // requests and outcomes per day
std::string plot_loop_svg(const sim_result& r);   // clients in the shadow loop per day
std::string plot_worst_day_svg(const scenario& sc, const sim_result& r);  // per minute vs 80/min
std::string plot_sweep_svg(const sweep_result& s);

std::string report_html(const scenario& sc, const sim_result& r,
                        const std::optional<sweep_result>& sweep, const report_options& o);

// The verdict in words: first 404, how long, how many clients, peak attempts per minute vs the
// throttle, deaf time, failed enrollments, outages, the recommended change, where the report is.
std::string verdict_text(const scenario& sc, const sim_result& r, const std::string& out_dir);
std::string sweep_table(const sweep_result& s);
// With more than one CA generation in the horizon: one block per generation (empty otherwise).
std::string generations_text(const sim_result& r);

// Writes summary.json, daily.csv, clients.csv (clients_csv.hpp), daily.svg, loop.svg,
// worst-day.svg, [sweep.svg, sweep.csv], report.html into `dir` (created if missing).
tl::expected<void, std::string> write_report(const std::string& dir, const scenario& sc,
                                             const sim_result& r,
                                             const std::optional<sweep_result>& sweep,
                                             const report_options& o);

}  // namespace pkisim::sim
