// `pkisim simulate SCENARIO`: run a fleet, print the verdict, write the report folder.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "pkisim/sim/change_set.hpp"
#include "progress.hpp"
#include "pkisim/sim/report.hpp"
#include "pkisim/sim/scenario.hpp"
#include "pkisim/sim/simulation.hpp"
#include "pkisim/sim/sweep.hpp"
#include "pkisim/timers/settings.hpp"

namespace pkisim::cli {

namespace {

struct simulate_args {
    std::string scenario_path;
    std::string out_dir;
    std::optional<std::uint64_t> seed;
    std::string clients;  // text: the registry parses it (`--clients -5` is an error)
    std::optional<unsigned> generations;
    std::vector<std::string> sets;
    std::string sweep;
    std::string sweep_point;
    std::string emit_jobs;
    unsigned jobs = 0;  // 0 = every core
    std::string engine = "auto";
    std::uint64_t exact_max_clients = 500;
    bool quiet = false;
    bool no_change_set = false;
    bool deterministic = false;
};

unsigned all_cores() {
    return std::max(1u, std::thread::hardware_concurrency());
}

bool write_text(const std::filesystem::path& p, const std::string& text) {
    std::ofstream out{p, std::ios::binary};
    out << text;
    return static_cast<bool>(out);
}

// The point runs of --emit-jobs: this executable, the same scenario and options.
std::string point_command(const simulate_args& a) {
    namespace fs = std::filesystem;
    std::error_code ec;
    auto self = fs::read_symlink("/proc/self/exe", ec);
    std::string o = sim::shell_quote(ec ? std::string{"pkisim"} : self.string());
    o += " simulate " + sim::shell_quote(fs::absolute(a.scenario_path).lexically_normal().string());
    if (a.seed)
        o += fmt::format(" --seed {}", *a.seed);
    if (!a.clients.empty())
        o += " --clients " + sim::shell_quote(a.clients);
    if (a.generations)
        o += fmt::format(" --generations {}", *a.generations);
    for (const auto& kv : a.sets)
        o += " --set " + sim::shell_quote(kv);
    o += " --engine " + a.engine;
    o += fmt::format(" --exact-max-clients {}", a.exact_max_clients);
    return o + " --quiet --deterministic";
}

int run_simulate(const simulate_args& a) {
    if (!a.emit_jobs.empty() && a.sweep.empty()) {
        std::cerr << "--emit-jobs needs --sweep KEY=VALUES (the sweep to split into jobs)\n";
        return 2;
    }
    if (!a.sweep_point.empty() && !a.sweep.empty()) {
        std::cerr << "--sweep-point runs one point of a split sweep; give it without --sweep\n";
        return 2;
    }
    auto sc = sim::load_scenario(a.scenario_path);
    if (!sc) {
        std::cerr << sc.error() << '\n';
        return 2;
    }
    for (const auto& kv : a.sets) {
        const auto eq = kv.find('=');
        if (eq == std::string::npos) {
            std::cerr << "--set " << kv << ": expected KEY=VALUE, e.g. overlap=365\n";
            return 2;
        }
        if (auto r = sim::apply_setting(*sc, kv.substr(0, eq), kv.substr(eq + 1), "--set " + kv);
            !r) {
            std::cerr << r.error() << '\n';
            return 2;
        }
    }
    if (a.seed)
        sc->seed = *a.seed;
    if (a.generations) {
        if (auto r = sim::apply_setting(*sc, "generations", std::to_string(*a.generations),
                                        fmt::format("--generations {}", *a.generations));
            !r) {
            std::cerr << r.error() << '\n';
            return 2;
        }
    }
    if (!a.clients.empty()) {
        if (auto r = sim::apply_setting(*sc, "clients", a.clients, "--clients " + a.clients); !r) {
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
        // Every value must apply before anything runs (or is emitted).
        for (const auto& v : spec->values) {
            auto copy = *sc;
            if (auto r = sim::apply_setting(copy, spec->key, v,
                                            fmt::format("--sweep {}={}", spec->key, v));
                !r) {
                std::cerr << r.error() << '\n';
                return 2;
            }
        }
    }
    if (!a.emit_jobs.empty()) {
        auto jobs = sim::emit_jobs(a.emit_jobs, *spec, point_command(a));
        if (!jobs) {
            std::cerr << jobs.error() << '\n';
            return 2;
        }
        const auto dir = std::filesystem::path{*jobs}.parent_path().string();
        std::cout << sim::describe(*spec);
        std::cout << fmt::format(
            "Wrote {} job lines to {} (and the manifest sweep.json); nothing was run.\n"
            "  GNU parallel:  parallel -j {} < {}\n"
            "  Slurm array:   sbatch --array=1-{} --wrap 'sed -n \"${{SLURM_ARRAY_TASK_ID}}p\" {} "
            "| sh'\n"
            "Then: pkisim sweep-merge {} (results from other machines: copy their points/ "
            "folders under it, or name their folders too).\n",
            spec->values.size(), *jobs, all_cores(), *jobs, spec->values.size(), *jobs, dir);
        return 0;
    }
    std::optional<std::pair<std::string, std::string>> point;
    if (!a.sweep_point.empty()) {
        const auto eq = a.sweep_point.find('=');
        if (eq == std::string::npos || eq == 0) {
            std::cerr << "--sweep-point " << a.sweep_point << ": expected KEY=VALUE\n";
            return 2;
        }
        point = std::pair{a.sweep_point.substr(0, eq), a.sweep_point.substr(eq + 1)};
        if (auto r = sim::apply_setting(*sc, point->first, point->second,
                                        "--sweep-point " + a.sweep_point);
            !r) {
            std::cerr << r.error() << '\n';
            return 2;
        }
        sc->sweep_point = point;
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
    const unsigned threads = a.jobs == 0 ? all_cores() : a.jobs;
    sim::report_options ro;
    ro.deterministic = a.deterministic;
    sim::scenario shown = *sc;
    std::optional<sim::sim_result> shown_result;
    if (spec) {
        if (show_progress)
            std::fprintf(stderr, "  sweeping %s over %zu values on %u threads...\n",
                         spec->key.c_str(), spec->values.size(), threads);
        auto s = sim::run_sweep(*sc, *spec, opt, threads);
        if (!s) {
            std::cerr << s.error() << '\n';
            return 2;
        }
        sweep = std::move(*s);
        // The verdict, summary and plots are the recommended value's run (the one the sweep
        // already made), labelled; without a safe value, the base scenario's, labelled too.
        if (const auto rec = sweep->analysis.recommended) {
            const auto& p = sweep->points[*rec];
            (void)sim::apply_setting(shown, spec->key, p.value);  // checked above
            shown_result = p.result;
            shown.run_label =
                fmt::format("{}={}, the value the sweep recommends", spec->key, p.value);
        } else {
            shown.run_label = fmt::format(
                "the scenario as given (no value of {} in the sweep is safe)", spec->key);
        }
    }
    sim::sim_result result =
        shown_result ? std::move(*shown_result) : sim::run_simulation(*sc, opt);
    // Not safe: the recommended change set, printed as a fix only if the fleet re-run with it
    // is safe (issue 9 §4). Not for sweep points (the merge recommends) nor after a sweep.
    if (result.outcome != sim::verdict::safe && !point && !spec && !a.no_change_set) {
        if (show_progress)
            std::fprintf(stderr, "\r  verifying the recommended change set...%30s", "");
        result.change_set = sim::summarize(sim::verify_change_set(*sc, opt), a.scenario_path);
    }
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    if (show_progress)
        clear_progress_line();

    ro.wall_seconds = wall;
    ro.command_line = command_line();
    ro.scenario_sha256 = file_sha256(a.scenario_path);
    ro.started_at = started_at;
    if (auto w = sim::write_report(out_dir, shown, result, sweep, ro); !w) {
        std::cerr << w.error() << '\n';
        return 2;
    }
    if (sweep) {
        std::cout << sim::describe(*spec);
        std::cout << sim::sweep_table(*sweep) << '\n';
        std::cout << fmt::format("Verdict of the run with {}:\n", shown.run_label);
    }
    const std::string verdict =
        sim::verdict_text(shown, result, out_dir) + sim::generations_text(result);
    std::cout << verdict;  // its "What to change" is the verified change set
    if (!a.deterministic)
        std::cout << fmt::format("  ({:.2f} s)\n", wall);
    if (point) {
        // The verdict in words for `pkisim sweep-merge`; the exit code of a point run says only
        // whether it ran (job runners treat 1 as a failed job): the verdict is in summary.json.
        if (!write_text(std::filesystem::path{out_dir} / "verdict.txt", verdict)) {
            std::cerr << out_dir << "/verdict.txt: cannot write\n";
            return 2;
        }
        return 0;
    }
    return result.outcome == sim::verdict::safe ? 0 : 1;
}

struct merge_args {
    std::vector<std::string> dirs;
    std::string out_dir;
};

int run_sweep_merge(const merge_args& a) {
    namespace fs = std::filesystem;
    auto sw = sim::merge_sweep(a.dirs);
    if (!sw) {
        std::cerr << sw.error() << '\n';
        return 2;
    }
    const std::string out_dir = a.out_dir.empty() ? a.dirs.front() : a.out_dir;
    std::error_code ec;
    fs::create_directories(out_dir, ec);
    std::string text;
    if (sw->spec)
        text += sim::describe(*sw->spec);
    text +=
        fmt::format("Merged {} point(s) from {}.\n", sw->points.size(), fmt::join(a.dirs, ", "));
    text += sim::sweep_table(*sw);
    if (!write_text(fs::path{out_dir} / "sweep.csv", sim::sweep_csv(*sw)) ||
        !write_text(fs::path{out_dir} / "sweep.svg", sim::plot_sweep_svg(*sw)) ||
        !write_text(fs::path{out_dir} / "sweep.txt", text)) {
        std::cerr << out_dir << ": cannot write sweep.csv, sweep.svg, sweep.txt\n";
        return 2;
    }
    std::cout << text << '\n';
    if (const auto rec = sw->analysis.recommended) {
        const auto& p = sw->points[*rec];
        std::cout << fmt::format(
            "Verdict of the run with {}={}, the value the sweep recommends "
            "({}):\n",
            sw->key, p.value, p.out_dir);
        std::ifstream in{fs::path{p.out_dir} / "verdict.txt"};
        std::stringstream ss;
        ss << in.rdbuf();
        std::cout << ss.str();
        std::cout << fmt::format("Written: {}/sweep.csv, sweep.svg, sweep.txt\n", out_dir);
        return 0;
    }
    std::cout << fmt::format("Written: {}/sweep.csv, sweep.svg, sweep.txt\n", out_dir);
    return 1;
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
    cmd->add_option("--generations", args->generations,
                    "Simulate N CA generations (N - 1 rollovers after the first; default 2, the "
                    "generations `pkisim check` judges, or the scenario's `generations` or "
                    "`horizon`); replaces the scenario's horizon");
    cmd->add_option("--set", args->sets,
                    "KEY=VALUE, one per --set (repeatable), e.g. overlap=365; the keys (shared "
                    "with `pkisim check`) are listed below")
        ->allow_extra_args(false);
    cmd->add_option("--sweep", args->sweep,
                    "Run the fleet for each value of one --set key: a list (overlap=30,90,365) or "
                    "a range FROM..TO[:STEP] (both ends always run; the default step, printed, is "
                    "1 up to a width of 20, else a round step giving at most 12 values). Prints "
                    "a table, which direction is safer, the safe range and a recommended value; "
                    "the verdict, summary and plots are then that value's run");
    cmd->add_option("--jobs,-j", args->jobs,
                    "Sweep points run at once (default: every core of this machine)");
    cmd->add_option("--emit-jobs", args->emit_jobs,
                    "With --sweep: run nothing, write DIR/jobs.txt (one command line per point, "
                    "for GNU parallel or a Slurm array) and DIR/sweep.json; then `pkisim "
                    "sweep-merge DIR`");
    cmd->add_option("--sweep-point", args->sweep_point,
                    "KEY=VALUE: one point of a split sweep (what --emit-jobs writes): applies it "
                    "like --set, records it in summary.json, writes verdict.txt; exit 0 whenever "
                    "the report was written");
    cmd->add_option("--engine", args->engine,
                    "exact (one record per client), cohort (identical clients merged), or auto "
                    "(exact up to --exact-max-clients)")
        ->check(CLI::IsMember({"exact", "cohort", "auto"}));
    cmd->add_option("--exact-max-clients", args->exact_max_clients,
                    "Largest fleet that --engine auto runs on the exact engine");
    cmd->add_flag("--quiet,-q", args->quiet, "No progress display");
    cmd->add_flag("--no-change-set", args->no_change_set,
                  "When the fleet is not safe, do not compute the recommended change set and "
                  "re-run the fleet with it (the re-run covers at least 2 CA generations)");
    cmd->add_flag("--deterministic", args->deterministic,
                  "Byte-identical output: write wall_seconds as 0 and omit timings");
    cmd->footer(timers::settings_help(timers::setting_command::simulate) +
                "\nExit codes: 0 safe, 1 storm or outage (the verdict), 2 usage, scenario or "
                "configuration error (file:line: message on stderr). After a sweep: the code of "
                "the recommended value's run (1 when no value is safe); --emit-jobs and "
                "--sweep-point: 0 once written.");
    cmd->callback([args, &exit_code] { exit_code = run_simulate(*args); });

    auto merge = std::make_shared<merge_args>();
    auto* mc = app.add_subcommand(
        "sweep-merge",
        "Assemble the point summaries of a split sweep (simulate --sweep ... --emit-jobs DIR, "
        "jobs run anywhere) into the sweep's table, plot and recommendation");
    mc->add_option("dirs", merge->dirs,
                   "Folders holding the points (each DIR of --emit-jobs, or copies of its points/ "
                   "from other machines); searched recursively for summary.json")
        ->required()
        ->check(CLI::ExistingDirectory);
    mc->add_option("--out", merge->out_dir,
                   "Where sweep.csv, sweep.svg and sweep.txt go (default: the first folder)");
    mc->footer(
        "Exit codes: 0 a safe value was found (its verdict is printed), 1 no value is safe, 2 "
        "usage error, a missing point or a summary that does not belong to the sweep.");
    mc->callback([merge, &exit_code] { exit_code = run_sweep_merge(*merge); });
}

}  // namespace pkisim::cli
