// The recommended change set, verified by re-running the fleet (change_set.hpp).
#include "pkisim/sim/change_set.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace pkisim::sim {

timers::fleet_input fleet_input_of(const scenario& sc) {
    timers::fleet_input in;
    in.ca = sc.ca.server;
    in.ca_created_at = sc.start;
    in.ca_manual_rollover = sc.ca.manual_rollover;
    if (sc.ra)
        in.ra = timers::ra_input{sc.ra->server, sc.ra_trustpoint, sc.ra->manual_rollover, {}};
    for (const auto& g : sc.groups)
        in.clients.push_back(g.trustpoint);
    in.fleet_size = sc.clients();
    in.client = sc.client;
    in.limiter.max_connections = sc.front().http.max_connections;
    in.limiter.throttle = sc.throttle;
    in.limiter.window = sc.throttle_window;
    in.limiter.enabled = sc.limiter_enabled;
    in.storm.client = sc.client;
    in.storm.limiter = in.limiter;
    return in;
}

verified_change_set verify_change_set(const scenario& sc, const run_options& options) {
    verified_change_set v;
    v.closed_form = timers::analyze_fleet(fleet_input_of(sc));
    v.change = v.closed_form.change;
    if (!v.change || v.change->empty())
        return v;
    scenario fixed = sc;
    for (const auto& s : v.change->settings) {
        const auto eq = s.find('=');
        const std::string key = s.substr(0, eq);
        const std::string value = eq == std::string::npos ? std::string{} : s.substr(eq + 1);
        if (auto r = apply_setting(fixed, key, value, "change set: --set " + s); !r) {
            v.rerun_error = r.error();
            return v;
        }
    }
    // Generation 2 is where the herd is: verify over at least two generations, and never over
    // a shorter horizon than the run being fixed.
    const auto wanted = sc.effective_horizon();
    fixed.horizon.reset();
    fixed.generations = std::max(2u, sc.generations.value_or(default_generations));
    if (fixed.effective_horizon() < wanted)
        fixed.horizon = wanted;
    v.rerun_generations = *fixed.generations;
    run_options quiet = options;
    quiet.on_progress = nullptr;
    v.rerun = run_simulation(fixed, quiet);
    v.rerun_done = true;
    return v;
}

std::string change_set_text(const verified_change_set& v, const std::string& scenario_path) {
    std::string o;
    if (!v.change || v.change->empty()) {
        o += "No change set: the closed form finds nothing to change";
        if (v.change && !v.change->cannot_fix.empty()) {
            o += "; what cannot be made safe:\n";
            for (const auto& w : v.change->cannot_fix)
                o += "  - " + w + "\n";
        } else {
            o += ".\n";
        }
        return o;
    }
    const auto& c = *v.change;
    std::string sets;
    for (const auto& s : c.settings)
        sets += " --set " + s;
    if (v.verified()) {
        o += fmt::format(
            "Recommended change set, verified: the same fleet re-run with it over {} CA "
            "generations is safe ({} clients, no 404, no outage; peak {} connection attempts per "
            "minute, deaf {:.1f} hours, {} enrollment attempts refused and retried).\n",
            v.rerun_generations, v.rerun.clients, v.rerun.peak_attempts_per_minute,
            static_cast<double>(v.rerun.totals.deaf_ms) / 3.6e6,
            v.rerun.totals.enrollments_failed);
        for (const auto& d : c.devices) {
            o += fmt::format("  on {}:\n", d.device);
            if (!d.config.empty()) {
                o += "    configure terminal\n";
                for (const auto& l : d.config)
                    o += "     " + l + "\n";
                o += "    end\n";
            }
            for (const auto& l : d.exec)
                o += "    " + l + "\n";
            for (const auto& w : d.why)
                o += "    ! because " + w + "\n";
        }
        o += fmt::format("  The re-run: pkisim simulate {}{} --generations {}\n", scenario_path,
                         sets, v.rerun_generations);
        return o;
    }
    o += "No change set is printed as a fix: ";
    if (!v.rerun_error.empty()) {
        o += fmt::format("a setting of it does not apply to this scenario: {}.\n", v.rerun_error);
    } else {
        o += fmt::format(
            "the fleet re-run with{} over {} CA generations is still {}: {} of {} clients got "
            "404, {} in outage.\n",
            sets, v.rerun_generations, to_string(v.rerun.outcome), v.rerun.clients_hit_404,
            v.rerun.clients, v.rerun.clients_outage);
        for (const auto& g : v.rerun.generations) {
            if (g.outcome == verdict::safe)
                continue;
            o += fmt::format("  generation {}: {}", g.number, to_string(g.outcome));
            if (g.first_404_at)
                o += fmt::format(
                    ", {} clients got 404 from {} ({:.1f} days before its CA "
                    "expires), longest {:.1f} days",
                    g.clients_hit_404, timers::to_iso8601(*g.first_404_at),
                    timers::to_days(g.ca.not_after - *g.first_404_at), g.max_404_window_days);
            if (g.clients_outage > 0)
                o += fmt::format(", {} clients in outage", g.clients_outage);
            o += ".\n";
        }
    }
    if (!c.cannot_fix.empty()) {
        o += "  What the closed form says cannot be made safe:\n";
        for (const auto& w : c.cannot_fix)
            o += "  - " + w + "\n";
    }
    return o;
}

change_set_check summarize(const verified_change_set& v, const std::string& scenario_path) {
    change_set_check c;
    if (v.change) {
        c.settings = v.change->settings;
        c.cannot_fix = v.change->cannot_fix;
    }
    c.verified = v.verified();
    if (v.rerun_done)
        c.rerun_outcome = v.rerun.outcome;
    c.rerun_generations = v.rerun_generations;
    c.text = change_set_text(v, scenario_path);
    return c;
}

}  // namespace pkisim::sim
