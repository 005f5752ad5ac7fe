// `pkisim inventory CAPTURES... --ca CA_CAPTURES... --out fleet.toml [--simulate DIR]`: the
// routers' own `show` output -> a scenario of explicit per-router state (sim/inventory.hpp),
// the printed-timer consistency check, a per-router table, and optionally the simulation.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "pkisim/sim/inventory.hpp"
#include "pkisim/sim/report.hpp"
#include "pkisim/sim/scenario.hpp"
#include "pkisim/sim/simulation.hpp"
#include "pkisim/timers/ios_show.hpp"

namespace pkisim::cli {

namespace {

namespace fs = std::filesystem;

struct inventory_args {
    std::vector<std::string> inputs;
    std::vector<std::string> ca;
    std::string out;
    std::string trustpoint;
    std::string start;
    std::string tolerance = "10m";
    std::string simulate_dir;
    std::string name;
    bool quiet = false;
};

// Files named, and every regular file under folders named (sorted: the same folder gives the
// same scenario).
tl::expected<std::vector<std::string>, std::string> expand(const std::vector<std::string>& in) {
    std::vector<std::string> out;
    for (const auto& p : in) {
        std::error_code ec;
        if (fs::is_directory(p, ec)) {
            std::vector<std::string> found;
            for (const auto& e : fs::recursive_directory_iterator(p, ec))
                if (e.is_regular_file() && e.path().filename().string().front() != '.')
                    found.push_back(e.path().string());
            std::sort(found.begin(), found.end());
            out.insert(out.end(), found.begin(), found.end());
        } else if (fs::is_regular_file(p, ec)) {
            out.push_back(p);
        } else {
            return tl::make_unexpected(fmt::format("{}: no such file or folder", p));
        }
    }
    return out;
}

tl::expected<std::vector<timers::router_capture>, std::string> read_captures(
    const std::vector<std::string>& files) {
    std::vector<timers::router_capture> out;
    for (const auto& f : files) {
        std::ifstream in{f, std::ios::binary};
        if (!in)
            return tl::make_unexpected(fmt::format("{}: cannot read", f));
        std::stringstream ss;
        ss << in.rdbuf();
        auto rs = timers::parse_captures(ss.str(), f);
        for (auto& r : rs)
            out.push_back(std::move(r));
    }
    // One router's commands may be in several files (or several places of one file).
    return timers::merge_same_router(std::move(out));
}

int run_inventory(const inventory_args& a) {
    auto files = expand(a.inputs);
    if (!files) {
        std::cerr << files.error() << '\n';
        return 2;
    }
    auto ca_files = expand(a.ca);
    if (!ca_files) {
        std::cerr << ca_files.error() << '\n';
        return 2;
    }
    // A CA file named among the routers too is read as the CA only.
    std::erase_if(*files, [&](const std::string& f) {
        return std::find(ca_files->begin(), ca_files->end(), f) != ca_files->end();
    });
    auto routers = read_captures(*files);
    if (!routers) {
        std::cerr << routers.error() << '\n';
        return 2;
    }
    auto cas = read_captures(*ca_files);
    if (!cas) {
        std::cerr << cas.error() << '\n';
        return 2;
    }
    sim::inventory_options opt;
    opt.trustpoint = a.trustpoint;
    opt.name = a.name.empty() ? fs::path{a.out}.stem().string() : a.name;
    if (!a.start.empty()) {
        opt.start = timers::parse_iso8601(a.start);
        if (!opt.start) {
            std::cerr << "--start " << a.start << ": expected a UTC time such as "
                      << "2029-03-02T10:15:00Z\n";
            return 2;
        }
    }
    const auto tol = sim::parse_duration_text(a.tolerance);
    if (!tol) {
        std::cerr << "--tolerance " << a.tolerance << ": expected a duration such as 10m\n";
        return 2;
    }
    opt.tolerance = *tol;
    auto inv = sim::build_inventory(*routers, *cas, opt);
    if (!inv) {
        std::cerr << inv.error() << '\n';
        for (const auto& r : *routers)
            for (const auto& p : timers::derive_router_state(r, a.trustpoint).problems)
                std::cerr << "  " << p << '\n';
        return 2;
    }
    {
        std::error_code ec;
        if (const auto parent = fs::path{a.out}.parent_path(); !parent.empty())
            fs::create_directories(parent, ec);
        std::ofstream out{a.out, std::ios::binary};
        out << inv->scenario_toml;
        if (!out) {
            std::cerr << a.out << ": cannot write\n";
            return 2;
        }
    }
    std::cout << fmt::format(
        "{} routers read, {} in the scenario, {} whose state could not be determined; CA {} .. "
        "{}, shadow CA {}; start {}\n",
        inv->routers.size(), inv->routers.size() - inv->unknown(), inv->unknown(),
        timers::to_iso8601(inv->ca.not_before), timers::to_iso8601(inv->ca.not_after),
        inv->shadow_at ? timers::to_iso8601(*inv->shadow_at) : std::string{"never"},
        timers::to_iso8601(inv->start));
    if (!a.quiet)
        std::cout << '\n' << sim::inventory_table(*inv) << '\n';
    for (const auto& f : inv->findings)
        std::cout << "note: " << f << '\n';
    std::size_t disagreements = 0;
    for (const auto& r : inv->routers) {
        for (const auto& d : r.disagreements) {
            std::cout << "timer disagrees: " << d << '\n';
            ++disagreements;
        }
        for (const auto& p : r.state.problems)
            std::cout << (r.in_scenario ? "doubt: " : "left out: ") << p << '\n';
    }
    std::cout << fmt::format("scenario written to {}{}\n", a.out,
                             disagreements ? fmt::format(" ({} printed timers disagree with the "
                                                         "model; see above)",
                                                         disagreements)
                                           : std::string{});
    if (a.simulate_dir.empty())
        return inv->unknown() > 0 ? 3 : 0;

    // The same scenario, read back as `pkisim simulate` reads it.
    auto sc = sim::load_scenario(a.out);
    if (!sc) {
        std::cerr << sc.error() << '\n';
        return 2;
    }
    const auto result = sim::run_simulation(*sc, {});
    sim::report_options ro;
    ro.deterministic = true;
    if (auto w = sim::write_report(a.simulate_dir, *sc, result, std::nullopt, ro); !w) {
        std::cerr << w.error() << '\n';
        return 2;
    }
    std::cout << '\n' << sim::verdict_text(*sc, result, a.simulate_dir);
    std::cout << fmt::format("per-router predictions: {}/clients.csv\n", a.simulate_dir);
    return result.outcome == sim::verdict::safe ? 0 : 1;
}

}  // namespace

void add_inventory_command(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<inventory_args>();
    auto* cmd = app.add_subcommand(
        "inventory",
        "Build a scenario from the routers' own captures (show running-config, show crypto pki "
        "certificates [verbose], show crypto pki timers, show clock; one file per router or "
        "many separated by prompts): each router with its own certificate and trustpoint, "
        "starting at the capture time. Checks the printed RENEW/SHADOW timers against the "
        "model. Exit 0 written, 3 written but some routers' state is unknown (listed), 2 error; "
        "with --simulate: 0 safe, 1 storm or outage");
    cmd->add_option("captures", args->inputs, "Capture files or folders of the routers")
        ->required();
    cmd->add_option("--ca", args->ca,
                    "Capture files or folders of the CA (and RA): show running-config, show "
                    "crypto pki server, show crypto pki certificates, show clock")
        ->required();
    cmd->add_option("--out", args->out, "The scenario file to write (TOML)")->required();
    cmd->add_option("--trustpoint", args->trustpoint,
                    "The trustpoint to follow on every router (default: each router's "
                    "trustpoint with an enrollment url)");
    cmd->add_option("--start", args->start,
                    "Start of the simulation (default: the earliest `show clock`)");
    cmd->add_option("--tolerance", args->tolerance,
                    "How far a printed renew date / RENEW / SHADOW timer may be from the "
                    "computed one before it is reported (default 10m)");
    cmd->add_option("--name", args->name, "Scenario name (default: the --out file's stem)");
    cmd->add_option("--simulate", args->simulate_dir,
                    "Also simulate the scenario and write the report (with clients.csv) here");
    cmd->add_flag("--quiet,-q", args->quiet, "No per-router table");
    cmd->callback([args, &exit_code] { exit_code = run_inventory(*args); });
}

}  // namespace pkisim::cli
