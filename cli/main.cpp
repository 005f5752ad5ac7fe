// pkisim: an IOS PKI certificate-server lab and fleet simulator. See README.md.
#include <algorithm>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "pkisim/timers/settings.hpp"
#ifdef PKISIM_HAS_SIM
#include "progress.hpp"
#endif

int main(int argc, char** argv) {
    CLI::App app{
        "pkisim " PKISIM_VERSION
        ": Cisco IOS PKI certificate-server timers, a lab SCEP CA/RA and a fleet simulator"};
    app.set_version_flag("--version", std::string{"pkisim "} + PKISIM_VERSION);
    app.require_subcommand(1);
    app.footer(
        "Run 'pkisim COMMAND --help' for the options and exit codes of a command; 2 is "
        "always a usage or configuration error.");

    int exit_code = 0;
#ifdef PKISIM_HAS_SIM
    pkisim::cli::remember_command_line(argc, argv);  // report.html's footer
#endif
    pkisim::cli::add_check_command(app, exit_code);
#ifdef PKISIM_HAS_SIM
    pkisim::cli::add_simulate_command(app, exit_code);
    pkisim::cli::add_inventory_command(app, exit_code);
#endif
#ifdef PKISIM_HAS_SCEP
    pkisim::cli::add_serve_commands(app, exit_code);
#endif
#ifdef PKISIM_HAS_SCEP_CLIENT
    pkisim::cli::add_client_command(app, exit_code);
#endif
#ifdef PKISIM_HAS_LOADGEN
    pkisim::cli::add_fleet_command(app, exit_code);
#endif
#ifdef PKISIM_HAS_BENCH
    pkisim::cli::add_bench_command(app, exit_code);
#endif

    // `pkisim simulat`: not a command; suggest the nearest one (before CLI11 reports only
    // "A subcommand is required").
    if (argc > 1 && argv[1][0] != '-') {
        std::vector<std::string> names;
        for (const auto* sub : app.get_subcommands({})) {
            names.push_back(sub->get_name());
        }
        if (std::find(names.begin(), names.end(), argv[1]) == names.end()) {
            std::vector<std::string_view> views(names.begin(), names.end());
            const std::string near = pkisim::timers::nearest_word(argv[1], views);
            std::cerr << "pkisim: `" << argv[1] << "` is not a command"
                      << (near.empty() ? std::string{} : "; did you mean `pkisim " + near + "`?")
                      << " (pkisim --help lists the commands)\n";
            return 2;
        }
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return 2;  // usage error, whatever CLI11's own code
    } catch (const std::exception& e) {
        std::cerr << "pkisim: " << e.what() << '\n';
        return 2;
    }
    return exit_code;
}
