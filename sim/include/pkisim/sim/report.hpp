// What a simulation leaves behind: summary.json, daily.csv, SVG plots and one self-contained
// report.html, plus the verdict in words for the terminal.
//
//   auto r = run_simulation(sc);
//   write_report("out/", sc, r, std::nullopt, report_options{.wall_seconds = 1.2});
//   std::cout << verdict_text(sc, r, "out/");
//
// Everything here is a pure function of (scenario, result, options): the same run gives
// byte-identical files. The exceptions are the wall-clock facts (wall_seconds in summary.json,
// when the run started and how long it took in report.html's footer); `deterministic` leaves
// them out (golden tests).
//
// report.html is one self-contained page that opens offline: the verdict and the lines to
// change at the top, interactive plots drawn by dygraphs (Debian libjs-dygraphs, inlined at
// build time from /usr/share/javascript/dygraphs, see sim/CMakeLists.txt), the same plots as
// static SVG files next to it, the summary, the IOS configuration of each device and a footer
// saying how the page was made.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "pkisim/sim/scenario.hpp"
#include "pkisim/sim/simulation.hpp"
#include "pkisim/sim/sweep.hpp"

namespace pkisim::sim {

// Text for HTML element content and attribute values (& < > " escaped); also the bench page's.
std::string html_escape(std::string_view s);

struct report_options {
    bool deterministic = false;
    double wall_seconds = 0;
    // The footer of report.html: how this run was made (empty fields are left out).
    std::string command_line{};   // exactly as typed (argv joined, quoted where needed)
    std::string scenario_sha256{};  // of the scenario file
    std::string started_at{};     // wall clock, ISO 8601 (left out when deterministic)
};

// One device's part of the change set: the IOS text to type there.
struct device_change {
    std::string device;  // "CA (configs/seed002/ca.ios)"
    std::string why;     // one sentence
    std::vector<std::string> lines;  // IOS text, config mode unless a line says otherwise
};
// What to change so that the run comes out safe: per device (CA, RA, clients), in order.
// Empty when nothing needs to change.
std::vector<device_change> change_set(const scenario& sc, const sim_result& r);
// The change set as one block of IOS text ("! CA (ca.ios)" comment lines between devices).
std::string change_block(const std::vector<device_change>& changes);

std::string summary_json(const scenario& sc, const sim_result& r, const report_options& o);
std::string daily_csv(const sim_result& r);
std::string sweep_csv(const sweep_result& s);

// Plots (hand-written SVG, no scripts): dates on the x axis with days before CA expiry as a
// second scale, the run's events marked, the 404 window and deaf days shaded.
std::string plot_timeline_svg(const scenario& sc, const sim_result& r);  // the whole run
std::string plot_daily_svg(const sim_result& r);  // requests and outcomes per day
std::string plot_loop_svg(const sim_result& r);   // clients in the shadow loop per day
std::string plot_deaf_svg(const sim_result& r);   // hours the listener was deaf, per day
std::string plot_worst_day_svg(const scenario& sc, const sim_result& r);  // the peak minute's day
std::string plot_sweep_svg(const sweep_result& s);

std::string report_html(const scenario& sc, const sim_result& r,
                        const std::optional<sweep_result>& sweep, const report_options& o);

// The verdict in words for the terminal, in short labelled sections with the same words as the
// page: what happens, when, how bad, why (the arithmetic), what to change, where the report is.
std::string verdict_text(const scenario& sc, const sim_result& r, const std::string& out_dir);
std::string sweep_table(const sweep_result& s);
// With more than one CA generation in the horizon: one block per generation (empty otherwise).
std::string generations_text(const sim_result& r);

// Writes summary.json, daily.csv, clients.csv (clients_csv.hpp), timeline.svg, daily.svg,
// loop.svg, deaf.svg, worst-day.svg, [sweep.svg, sweep.csv], report.html into `dir` (created if
// missing).
tl::expected<void, std::string> write_report(const std::string& dir, const scenario& sc,
                                             const sim_result& r,
                                             const std::optional<sweep_result>& sweep,
                                             const report_options& o);

}  // namespace pkisim::sim
