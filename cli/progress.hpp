// The terminal side of `pkisim simulate` (issue 15 §2) and the facts for report.html's footer:
//
//   remember_command_line(argc, argv);                  // in main()
//   opt.on_progress = progress_printer(wall_start);     // only when stderr is a TTY
//   ... run ...
//   clear_progress_line();
//
// The progress line is rewritten in place on stderr: simulated date, share done, events/s,
// ETA and the running counters (404s so far, deaf hours so far). It is safe to call from the
// sweep's worker threads.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "pkisim/sim/simulation.hpp"

namespace pkisim::cli {

void remember_command_line(int argc, char** argv);
// argv as typed, each argument shell-quoted when it needs it ("" before remember_command_line).
std::string command_line();

// SHA-256 of a file as 64 hex digits, or "" when it cannot be read.
std::string file_sha256(const std::string& path);

// The wall clock as ISO 8601 UTC (report footer only; never used by the simulation).
std::string wall_clock_now();

// One progress line: "simulated 2029-07-07 | 29.3 % | 0.8 M events/s | ETA 3 s | 404s so far
// 1.2 M | deaf so far 12.5 h".
std::string progress_text(const sim::progress& p, double elapsed_seconds);

std::function<void(const sim::progress&)> progress_printer(
    std::chrono::steady_clock::time_point start);
void clear_progress_line();

}  // namespace pkisim::cli
