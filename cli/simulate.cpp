// `pkisim simulate SCENARIO`: run a fleet, print the verdict, write the report folder.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "progress.hpp"
#include "pkisim/sim/report.hpp"
#include "pkisim/sim/scenario.hpp"
#include "pkisim/sim/simulation.hpp"
#include "pkisim/sim/sweep.hpp"

namespace pkisim::cli {

namespace {

struct simulate_args {
    std::string scenario_path;
    std::string out_dir;
    std::optional<std::uint64_t> seed;
    std::optional<std::uint64_t> clients;
    std::vector<std::string> sets;
    std::string sweep;
    std::string engine = "auto";
    std::uint64_t exact_max_clients = 500;
    bool quiet = false;
    bool deterministic = false;
};

int run_simulate(const simulate_args& a) {
    auto sc = sim::load_scenario(a.scenario_path);
    if (!sc) {
        std::cerr << sc.error() << '\n';
        return 2;
    }
    for (const auto& kv : a.sets) {
        const auto eq = kv.find('=');
        if (eq == std::string::npos) {
            std::cerr << "--set " << kv << ": expected key=value\n";
            return 2;
        }
        if (auto r = sim::apply_setting(*sc, kv.substr(0, eq), kv.substr(eq + 1)); !r) {
            std::cerr << r.error() << '\n';
            return 2;
        }
    }
    if (a.seed)
        sc->seed = *a.seed;
    if (a.clients) {
        if (auto r = sim::apply_setting(*sc, "clients", std::to_string(*a.clients)); !r) {
            std::cerr << r.error() << '\n';
            return 2;
        }
    }
    const auto engine = sim::parse_engine_kind(a.engine);
    if (!engine) {
        std::cerr << "--engine " << a.engine << ": expected exact, cohort or auto\n";
        return 2;
    }
    std::optional<sim::sweep_spec> spec;
    if (!a.sweep.empty()) {
        auto s = sim::parse_sweep(a.sweep);
        if (!s) {
            std::cerr << s.error() << '\n';
            return 2;
        }
        spec = *s;
    }
    std::string out_dir = a.out_dir;
    if (out_dir.empty()) {
        std::string stem = std::filesystem::path{a.scenario_path}.stem().string();
        out_dir = "pkisim-out/" + (stem.empty() ? std::string{"run"} : stem);
    }

    // Progress on stderr only for a person watching (a TTY) and not --quiet.
    const bool show_progress = !a.quiet && ::isatty(2) != 0;
    const auto wall_start = std::chrono::steady_clock::now();
    sim::run_options opt;
    opt.engine = *engine;
    opt.exact_max_clients = a.exact_max_clients;
    if (show_progress)
        opt.on_progress = progress_printer(wall_start);  // cli/progress.cpp
    const std::string started_at = wall_clock_now();

    std::optional<sim::sweep_result> sweep;
    if (spec) {
        if (show_progress)
            std::fprintf(stderr, "  sweeping %s over %zu values on 2 threads...\n",
                         spec->key.c_str(), spec->values.size());
        auto s = sim::run_sweep(*sc, *spec, opt, 2);
        if (!s) {
            std::cerr << s.error() << '\n';
            return 2;
        }
        sweep = std::move(*s);
    }
    const sim::sim_result result = sim::run_simulation(*sc, opt);
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    if (show_progress)
        clear_progress_line();

    sim::report_options ro;
    ro.deterministic = a.deterministic;
    ro.wall_seconds = wall;
    ro.command_line = command_line();
    ro.scenario_sha256 = file_sha256(a.scenario_path);
    ro.started_at = started_at;
    if (auto w = sim::write_report(out_dir, *sc, result, sweep, ro); !w) {
        std::cerr << w.error() << '\n';
        return 2;
    }
    if (sweep)
        std::cout << sim::sweep_table(*sweep) << '\n';
    std::cout << sim::verdict_text(*sc, result, out_dir);
    if (!a.deterministic)
        std::cout << fmt::format("  ({:.2f} s)\n", wall);
    return result.outcome == sim::verdict::safe ? 0 : 1;
}

}  // namespace

void add_simulate_command(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<simulate_args>();
    auto* cmd = app.add_subcommand(
        "simulate",
        "Simulate a fleet of IOS clients against the CA/RA and its HTTP limiter; print the "
        "verdict and write a report (summary.json, daily.csv, SVG plots, report.html)");
    cmd->add_option("scenario", args->scenario_path, "Scenario file (TOML, see configs/README.md)")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--out", args->out_dir, "Report folder (default pkisim-out/<scenario name>)");
    cmd->add_option("--seed", args->seed, "Random seed (overrides the scenario's)");
    cmd->add_option("--clients", args->clients,
                    "Total number of clients (split across groups by their share)");
    cmd->add_option("--set", args->sets,
                    "key=value, e.g. overlap=365, auto-enroll=80, max-connections=16, "
                    "ra.auto-enroll=95, latency=5ms (repeatable)")
        ->allow_extra_args(false);
    cmd->add_option("--sweep", args->sweep,
                    "Run one value after another of a parameter, e.g. overlap=30,60,90,180,365 "
                    "or auto-enroll=60..90; prints a table and the smallest safe value");
    cmd->add_option("--engine", args->engine,
                    "exact (one record per client), cohort (identical clients merged), or auto "
                    "(exact up to --exact-max-clients)")
        ->check(CLI::IsMember({"exact", "cohort", "auto"}));
    cmd->add_option("--exact-max-clients", args->exact_max_clients,
                    "Largest fleet that --engine auto runs on the exact engine");
    cmd->add_flag("--quiet,-q", args->quiet, "No progress display");
    cmd->add_flag("--deterministic", args->deterministic,
                  "Byte-identical output: write wall_seconds as 0 and omit timings");
    cmd->callback([args, &exit_code] { exit_code = run_simulate(*args); });
}

}  // namespace pkisim::cli
