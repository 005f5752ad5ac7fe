// `pkisim fleet SCENARIO --target URL --out DIR`: the scenario's virtual IOS clients against a
// running SCEP server (loadgen/), with the same report folder as `simulate`, marked live.
#include <chrono>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "pkisim/loadgen/fleet.hpp"
#include "pkisim/sim/report.hpp"
#include "pkisim/sim/scenario.hpp"

namespace pkisim::cli {

namespace {

struct fleet_args {
    std::string scenario_path;
    std::string out_dir;
    std::vector<std::string> sets;
    std::string clock_start;
    std::string challenge_file;
    loadgen::fleet_options o;
    bool quiet = false;
};

int run_fleet_command(fleet_args& a) {
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
    if (a.clock_start.empty() && a.o.clock_rate == 1.0 && !a.o.clock_sync) {
        // A server on the real clock: the scenario starts now (its offsets stay relative).
        sc->start =
            std::chrono::time_point_cast<timers::duration>(std::chrono::system_clock::now());
    }
    if (!a.clock_start.empty()) {
        const auto t = timers::parse_iso8601(a.clock_start);
        if (!t) {
            std::cerr << "--clock-start " << a.clock_start
                      << ": expected ISO 8601 (2030-01-01T00:00:00Z)\n";
            return 2;
        }
        a.o.clock_start = *t;
    }
    if (!a.challenge_file.empty()) {
        std::ifstream in{a.challenge_file};
        std::string line;
        if (!in || !std::getline(in, line)) {
            std::cerr << a.challenge_file << ": cannot read the challenge\n";
            return 2;
        }
        a.o.challenge = line;
    } else if (const char* env = std::getenv("PKISIM_CHALLENGE")) {
        a.o.challenge = std::string{env};
    }
    if (!a.quiet)
        a.o.on_progress = [](const std::string& line) { std::cerr << '\r' << line << "\x1b[K"; };
    auto r = loadgen::run_fleet(*sc, a.o);
    if (!a.quiet)
        std::cerr << '\n';
    if (!r) {
        std::cerr << "pkisim fleet: " << r.error() << '\n';
        return 2;
    }
    sim::report_options ro;
    ro.wall_seconds = r->real_seconds;
    if (auto w = sim::write_report(a.out_dir, *sc, r->result, std::nullopt, ro); !w) {
        std::cerr << "pkisim fleet: " << w.error() << '\n';
        return 2;
    }
    // Marked live: summary.json gets "live": true and what only a live run sees.
    {
        const std::string path = a.out_dir + "/summary.json";
        std::ifstream in{path};
        auto j = nlohmann::ordered_json::parse(in, nullptr, false);
        in.close();
        if (!j.is_discarded()) {
            j["live"] = nlohmann::ordered_json::parse(loadgen::live_json(*r));
            j["engine"] = "live";
            std::ofstream{path} << j.dump(2) << '\n';
        }
        std::ofstream{a.out_dir + "/live.json"} << loadgen::live_json(*r) << '\n';
        std::ofstream{a.out_dir + "/attempts.csv"} << loadgen::attempts_csv(*r);
    }
    std::cout << "pkisim fleet: LIVE run against " << a.o.target << " (" << r->result.clients
              << " virtual clients, clock rate " << r->clock_rate << ", "
              << fmt::format("{:.1f}", r->real_seconds) << " s real, " << r->connections
              << " connections)\n";
    std::cout << "GetNextCACert answers:";
    for (const auto& s : r->next_ca_answers)
        std::cout << "\n  " << s;
    std::cout << (r->next_ca_answers.empty() ? " none\n" : "\n");
    std::cout << sim::verdict_text(*sc, r->result, a.out_dir);
    return r->result.outcome == sim::verdict::safe ? 0 : 1;
}

}  // namespace

void add_fleet_command(CLI::App& app, int& exit_code) {
    auto a = std::make_shared<fleet_args>();
    auto* cmd = app.add_subcommand(
        "fleet",
        "Drive the scenario's virtual IOS clients against a running SCEP server (live run)");
    cmd->footer(
        "Every virtual client runs the timers/ client rules: initial enrollment (PKCSReq, "
        "CertPoll while PENDING), RENEW, SHADOW -> GetNextCACert every 20 s while 404 (or no "
        "answer: connect timeout), the rollover enrollment encrypted to the shadow CA, the "
        "switchover; HTTP/1.0, one connection per request, the IOS User-Agent, GET with %0A. "
        "Every connection is asynchronous on one Asio io_context, so clients whose timers "
        "fire together reach the server together, as IOS routers do; the enrollments' "
        "RSA/CMS work (scep_server/'s codec) runs on one thread per core, and each client's "
        "CSR and self-signed signer are made before the clock starts.\n"
        "Keys: RSA keys are generated once, as a pool of --key-pool keys shared round-robin "
        "(default 8); --key-pool 0 generates one key per client.\n"
        "Time: with --clock-rate R (and --clock-start T) the fleet runs on the same warped clock "
        "as `pkisim serve --clock-start T --clock-rate R`; --clock-sync reads the server's clock "
        "from its HTTP Date header instead (else the offset between the two starts, times R, "
        "is the clock error). Without a rate it runs in real time from now; --duration bounds "
        "every run. live.json reports how late the fleet's own timers fired.\n"
        "Safety: loopback targets only unless --allow-remote; at most --max-rate connections "
        "started per real second, --duration real seconds, --max-clients clients; it stops "
        "by itself at the scenario's horizon.\n"
        "Writes the same summary.json, daily.csv, plots and report.html as `simulate` "
        "(summary.json: \"engine\": \"live\" and a \"live\" section), plus live.json: outcome "
        "classes (200, 404, reset, refused, connect timeout, read timeout, ...) and latencies, "
        "and attempts.csv: every attempt (start, end, client, operation, outcome).\n"
        "Exit codes: 0 safe, 1 storm or outage, 2 usage, scenario or connection error.");
    cmd->add_option("scenario", a->scenario_path, "Scenario file (TOML)")->required();
    cmd->add_option("--target", a->o.target, "SCEP server URL, http://127.0.0.1:8080")->required();
    cmd->add_option("--out", a->out_dir, "Report folder")->required();
    cmd->add_option("--set", a->sets, "KEY=VALUE scenario setting (as for simulate)");
    cmd->add_option("--clock-start", a->clock_start,
                    "Warped clock start (ISO 8601; default: the scenario start)");
    cmd->add_option("--clock-rate", a->o.clock_rate, "Warped clock: lab seconds per real second")
        ->default_val(1.0);
    cmd->add_flag("--clock-sync", a->o.clock_sync,
                  "Read the server's (warped) clock from its HTTP Date header at the start");
    cmd->add_option("--duration", a->o.max_duration_s, "Hard cap on real seconds")
        ->default_val(300.0);
    cmd->add_option("--max-rate", a->o.max_connections_per_s,
                    "Hard cap on connections started per real second")
        ->default_val(2000.0);
    cmd->add_option("--max-clients", a->o.max_clients, "Refuse scenarios with more clients")
        ->default_val(5000);
    cmd->add_option("--key-pool", a->o.key_pool, "RSA keys shared by the fleet (0 = one each)")
        ->default_val(8);
    cmd->add_option("--key-bits", a->o.key_bits, "RSA key size")->default_val(2048);
    cmd->add_option("--challenge-file", a->challenge_file,
                    "Challenge password file (else PKISIM_CHALLENGE)");
    cmd->add_flag("--exact-path", a->o.exact_path,
                  "Use the URL path as is (micromdm scepserver serves /scep)");
    cmd->add_flag("--legacy-crypto", a->o.legacy_crypto, "Accept DES/MD5 replies (scepserver)");
    cmd->add_flag("--probe-next-ca", a->o.probe_next_ca,
                  "Also send one GetNextCACert per client after its first enrollment (not IOS "
                  "behaviour: shows what a server answers)");
    cmd->add_flag("--allow-remote", a->o.allow_remote, "Allow a non-loopback target");
    cmd->add_flag("--quiet", a->quiet, "No progress line");
    cmd->callback([a, &exit_code] { exit_code = run_fleet_command(*a); });
}

}  // namespace pkisim::cli
