// `pkisim check FILE...`: IOS configuration -> parser -> timeline + storm analysis -> verdict.
// Exit codes (commands.hpp): 0 safe, 1 storm or outage, 2 usage or configuration error.
#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "pkisim/timers/config.hpp"
#include "pkisim/timers/settings.hpp"
#include "pkisim/timers/storm.hpp"
#include "pkisim/timers/timeline.hpp"
#include "pkisim/timers/verdict.hpp"

namespace pkisim::cli {

namespace {

using namespace pkisim::timers;

struct check_options {
    std::vector<std::string> files;
    bool json = false;
    // Only relative times matter for the verdict; the default is the scenarios' (one
    // default for check and simulate: timers::default_ca_start).
    std::string ca_start = to_iso8601(default_ca_start());
    std::vector<std::string> sets;
    std::string server;
    std::string ra_rollover;    // --ra-rollover WHEN: the scenario's [ra] manual_rollover
    std::string ra_trustpoint;  // the RA's own trustpoint (default: named like the RA server)
    std::string clients;        // --clients N: the generation-2 herd
};

std::string days_text(double d) {
    if (d == static_cast<double>(static_cast<long long>(d))) {
        return fmt::format("{}", static_cast<long long>(d));
    }
    return fmt::format("{:.2f}", d);
}

nlohmann::json optional_time(const std::optional<time_point>& t) {
    return t ? nlohmann::json(to_iso8601(*t)) : nlohmann::json(nullptr);
}

std::string opt_time(const std::optional<time_point>& t) {
    return t ? to_iso8601(*t) : std::string{"never"};
}

nlohmann::json generation_json(const generation_verdict& g) {
    nlohmann::json j;
    j["number"] = g.number;
    j["verdict"] = std::string{to_string(g.verdict)};
    j["ca_not_before"] = to_iso8601(g.ca.not_before);
    j["ca_not_after"] = to_iso8601(g.ca.not_after);
    j["ca_shadow_at"] = optional_time(g.ca_shadow_at);
    j["front_shadow_at"] = optional_time(g.front_shadow_at);
    if (g.ra) {
        nlohmann::json r;
        r["own_shadow_at"] = g.ra->own.kind == renewal_kind::shadow
                                 ? nlohmann::json(to_iso8601(g.ra->own.at))
                                 : nlohmann::json(nullptr);
        r["manual_rollover_at"] = optional_time(g.ra->manual);
        r["asks_ca_at"] = optional_time(g.ra->asks_ca_at);
        r["knows_shadow_at"] = optional_time(g.ra->knows_shadow_at);
        r["certificate_lapses_at"] = optional_time(g.ra->lapses_at);
        j["ra"] = r;
    } else {
        j["ra"] = nullptr;
    }
    j["trustpoints"] = nlohmann::json::array();
    for (const auto& t : g.trustpoints) {
        nlohmann::json tj;
        tj["name"] = t.name;
        tj["verdict"] = std::string{to_string(t.verdict)};
        tj["earliest_request"] = optional_time(t.earliest_request);
        tj["latest_request"] = optional_time(t.latest_request);
        tj["phase_locked"] = t.phase_locked;
        tj["max_404_days"] = t.max_404_days;
        tj["share_hit"] = t.share_hit;
        tj["herd_minutes"] =
            t.herd_minutes ? nlohmann::json(*t.herd_minutes) : nlohmann::json(nullptr);
        tj["findings"] = t.findings;
        j["trustpoints"].push_back(std::move(tj));
    }
    j["findings"] = g.findings;
    return j;
}

int run_check(const check_options& o) {
    const auto start = parse_iso8601(o.ca_start);
    if (!start) {
        std::cerr << fmt::format(
            "pkisim check: --ca-start {}: expected an ISO-8601 UTC time, e.g. "
            "2025-01-01T00:00:00Z\n",
            o.ca_start);
        return 2;
    }
    // Every --set is parsed before any file is read: a typo in a key fails fast.
    std::vector<setting> sets;
    for (const auto& spec : o.sets) {
        auto s = parse_setting(spec, "--set " + spec);
        if (!s) {
            std::cerr << "pkisim check: " << s.error() << '\n';
            return 2;
        }
        if (!s->key->in_check) {
            std::cerr << fmt::format(
                "pkisim check: --set {}: `{}` is a simulator parameter; use it with `pkisim "
                "simulate`\n",
                spec, s->key->name);
            return 2;
        }
        sets.push_back(std::move(*s));
    }
    if (!o.ra_rollover.empty()) {
        auto s =
            parse_setting("ra.manual_rollover", o.ra_rollover, "--ra-rollover " + o.ra_rollover);
        if (!s) {
            std::cerr << "pkisim check: " << s.error() << '\n';
            return 2;
        }
        sets.push_back(std::move(*s));
    }
    if (!o.clients.empty()) {
        auto s = parse_setting("clients", o.clients, "--clients " + o.clients);
        if (!s) {
            std::cerr << "pkisim check: " << s.error() << '\n';
            return 2;
        }
        sets.push_back(std::move(*s));
    }

    auto cfg = load_ios_config_files(o.files);
    if (!cfg) {
        std::cerr << cfg.error().to_string() << '\n';
        return 2;
    }
    for (const auto& w : cfg->warnings) {
        std::cerr << w.to_string() << '\n';
    }
    const std::string warned = cfg->warnings.empty()
                                   ? std::string{}
                                   : fmt::format(" ({} warning(s) above)", cfg->warnings.size());

    // The issuing CA is the server without `mode ra` (model §1 rule 8).
    std::vector<server_config*> cas;
    std::vector<server_config*> ras;
    for (auto& s : cfg->servers) {
        (s.mode_ra ? ras : cas).push_back(&s);
    }
    server_config* ca = nullptr;
    if (!o.server.empty()) {
        auto it =
            std::find_if(cas.begin(), cas.end(), [&](auto* s) { return s->name == o.server; });
        if (it == cas.end()) {
            std::cerr << fmt::format(
                "pkisim check: --server {}: no issuing `crypto pki server {}` (without mode ra) "
                "in the files\n",
                o.server, o.server);
            return 2;
        }
        ca = *it;
    } else if (cas.size() == 1) {
        ca = cas.front();
    } else if (cas.empty()) {
        std::cerr << fmt::format(
            "pkisim check: no issuing CA: none of the files ({}) has a `crypto pki server` "
            "section without `mode ra`{}; add the CA's configuration\n",
            fmt::join(o.files, ", "), warned);
        return 2;
    } else {
        std::string names;
        for (auto* s : cas) {
            names += (names.empty() ? "" : ", ") + s->name;
        }
        std::cerr << fmt::format(
            "pkisim check: several issuing CA servers ({}); choose one with --server NAME\n",
            names);
        return 2;
    }
    if (ras.size() > 1) {
        std::cerr << "pkisim check: several `mode ra` servers; check one RA at a time\n";
        return 2;
    }

    // The RA's own certificate: IOS keeps it in the trustpoint named like the RA server.
    std::optional<ra_input> ra;
    if (!ras.empty()) {
        ra_input r;
        r.server = *ras.front();
        const std::string tp_name = o.ra_trustpoint.empty() ? r.server.name : o.ra_trustpoint;
        const trustpoint_config* tp = cfg->find_trustpoint(tp_name);
        if (tp == nullptr) {
            std::cerr << fmt::format(
                "pkisim check: the RA crypto pki server {} has no `crypto pki trustpoint {}` (its "
                "own RA certificate, with its auto-enroll) in the files; add it or name it with "
                "--ra-trustpoint\n",
                r.server.name, tp_name);
            return 2;
        }
        r.trustpoint = *tp;
        ra = std::move(r);
    }

    // Clients: trustpoints that are not a server's own (IOS creates trustpoint NAME for
    // server NAME) and that can enroll over SCEP.
    std::vector<trustpoint_config> clients;
    std::vector<std::string> skipped;
    for (const auto& tp : cfg->trustpoints) {
        if (cfg->find_server(tp.name) != nullptr || (ra && tp.name == ra->trustpoint.name)) {
            skipped.push_back(fmt::format(
                "trustpoint {} belongs to crypto pki server {}{}", tp.name,
                ra && tp.name == ra->trustpoint.name ? ra->server.name : tp.name,
                ra && tp.name == ra->trustpoint.name ? " (the RA's own certificate)" : ""));
        } else if (tp.enrollment_url.empty() && !tp.auto_enroll) {
            skipped.push_back(fmt::format("trustpoint {} has no enrollment url", tp.name));
        } else {
            clients.push_back(tp);
        }
    }

    fleet_input in;
    in.ca = *ca;
    in.ca_created_at = *start;
    in.ra = ra;
    in.clients = clients;
    // The clients meet the HTTP server of the RA when there is one, else the CA's.
    in.limiter.max_connections =
        ras.empty() ? ca->http_max_connections : ras.front()->http_max_connections;
    {
        settings_target t = settings_target_of(in);
        for (const auto& s : sets) {
            if (auto r = apply_setting(s, t); !r) {
                std::cerr << "pkisim check: " << r.error() << '\n';
                return 2;
            }
        }
    }
    if (in.clients.empty()) {
        std::cerr << fmt::format(
            "pkisim check: no client trustpoint in the files ({}){}: nothing to analyse. Pass "
            "the clients' configuration too (a `crypto pki trustpoint` with `enrollment url` "
            "and `auto-enroll`){}\n",
            fmt::join(o.files, ", "), warned,
            skipped.empty() ? "" : fmt::format("; skipped: {}", fmt::join(skipped, "; ")));
        return 2;
    }

    const fleet_verdict v = analyze_fleet(in);
    const storm_analysis& a = v.first;
    const int exit_code = v.verdict == storm_verdict::safe ? 0 : 1;
    const int max_connections = in.limiter.max_connections;

    if (o.json) {
        nlohmann::json j;
        j["verdict"] = std::string{to_string(v.verdict)};
        j["ca_server"] = ca->name;
        j["ca_not_before"] = to_iso8601(a.ca.not_before);
        j["ca_not_after"] = to_iso8601(a.ca.not_after);
        j["ca_lifetime_days"] = to_days(in.ca.ca_lifetime);
        j["certificate_lifetime_days"] = to_days(in.ca.cert_lifetime);
        j["shadow_generated_at"] = optional_time(a.shadow_generated_at);
        j["overlap_days"] =
            a.overlap_days ? nlohmann::json(*a.overlap_days) : nlohmann::json(nullptr);
        j["switchover_at"] = to_iso8601(switchover_time(a.ca.not_after));
        j["front_shadow_at"] = optional_time(a.front_shadow_at);
        j["http_max_connections"] = max_connections;
        j["http_limits"] = in.limiter.enabled;
        j["ra_servers"] = nlohmann::json::array();
        for (const auto* r : ras) {
            j["ra_servers"].push_back(r->name);
        }
        j["trustpoints"] = nlohmann::json::array();
        for (const auto& t : a.trustpoints) {
            nlohmann::json tj;
            tj["name"] = t.name;
            tj["verdict"] = std::string{to_string(t.verdict)};
            tj["first_get_next_ca_cert"] = optional_time(t.first_get_next_ca_cert);
            tj["first_get_next_ca_cert_days_before_ca_expiry"] =
                t.first_get_next_ca_cert
                    ? nlohmann::json(t.first_get_next_ca_cert_days_before_ca_expiry)
                    : nlohmann::json(nullptr);
            tj["last_first_get_next_ca_cert_days_before_ca_expiry"] =
                t.last_first_get_next_ca_cert
                    ? nlohmann::json(to_days(a.ca.not_after - *t.last_first_get_next_ca_cert))
                    : nlohmann::json(nullptr);
            tj["max_404_window_days"] = t.max_404_window_days;
            tj["share_hit"] = t.share_hit;
            tj["min_safe_overlap_days"] = t.min_safe_overlap_days;
            tj["recommended_overlap_days"] = t.recommended_overlap_days;
            tj["requests_per_minute_per_client"] = t.requests_per_minute_per_client;
            tj["clients_to_reach_throttle"] = t.clients_to_reach_throttle;
            tj["findings"] = t.findings;
            j["trustpoints"].push_back(std::move(tj));
        }
        j["generations"] = nlohmann::json::array();
        for (const auto& g : v.generations) {
            j["generations"].push_back(generation_json(g));
        }
        if (v.change) {
            nlohmann::json c;
            c["settings"] = v.change->settings;
            c["verified_safe"] = v.change->verified_safe;
            c["cannot_fix"] = v.change->cannot_fix;
            c["devices"] = nlohmann::json::array();
            for (const auto& d : v.change->devices) {
                c["devices"].push_back(
                    {{"device", d.device}, {"config", d.config}, {"exec", d.exec}, {"why", d.why}});
            }
            j["change_set"] = c;
        } else {
            j["change_set"] = nullptr;
        }
        std::vector<std::string> findings = a.findings;
        for (const auto& g : v.generations) {
            findings.insert(findings.end(), g.findings.begin(), g.findings.end());
        }
        j["findings"] = findings;
        j["skipped"] = skipped;
        std::vector<std::string> warnings;
        for (const auto& w : cfg->warnings) {
            warnings.push_back(w.to_string());
        }
        j["warnings"] = warnings;
        // Names come from the files: never let a stray byte abort the report.
        std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
        return exit_code;
    }

    std::string out;
    out += fmt::format("CA: crypto pki server {} ({}, grant {})\n", ca->name,
                       ca->mode_ra ? "RA" : "issuing CA", to_string(in.ca.grant));
    out += fmt::format("  CA notBefore         {}  (--ca-start; only relative times matter)\n",
                       to_iso8601(a.ca.not_before));
    out += fmt::format("  CA notAfter          {}  (lifetime ca-certificate {} days)\n",
                       to_iso8601(a.ca.not_after), days_text(to_days(in.ca.ca_lifetime)));
    if (a.shadow_generated_at) {
        out += fmt::format("  shadow CA generated  {}  (auto-rollover {} days{})\n",
                           to_iso8601(*a.shadow_generated_at), days_text(*a.overlap_days),
                           *a.shadow_generated_at == a.ca.not_before
                               ? ": not shorter than the CA lifetime, so at the CA's creation"
                               : " before expiry");
    } else if (in.ca.auto_rollover && in.ca.auto_rollover->count() == 0) {
        out += fmt::format(
            "  shadow CA generated  {}  (auto-rollover 0: at the CA's expiry, no "
            "usable overlap)\n",
            to_iso8601(a.ca.not_after));
    } else {
        out += "  shadow CA generated  never  (no auto-rollover)\n";
    }
    out += fmt::format("  switchover           {}  (the shadow CA becomes the CA)\n",
                       to_iso8601(switchover_time(a.ca.not_after)));
    out += fmt::format("  issued certificates  {} days, cut at the CA notAfter\n",
                       days_text(to_days(in.ca.cert_lifetime)));
    const auto& g1 = v.generations.front();
    if (ra && g1.ra) {
        const auto& r = *g1.ra;
        out += fmt::format(
            "RA: crypto pki server {} (mode ra), own trustpoint {} (auto-enroll {})\n",
            ra->server.name, in.ra->trustpoint.name,
            in.ra->trustpoint.auto_enroll ? fmt::format("{}", in.ra->trustpoint.auto_enroll_percent)
                                          : std::string{"none"});
        out += fmt::format("  RA certificate       {} .. {} when it asks ({} days)\n",
                           to_iso8601(r.last_certificate.not_before),
                           to_iso8601(r.last_certificate.not_after),
                           days_text(to_days(r.last_certificate.length())));
        out += fmt::format("  RA SHADOW timer      {}\n",
                           r.own.kind == renewal_kind::shadow
                               ? fmt::format("{}  ({} days before CA expiry)", to_iso8601(r.own.at),
                                             days_text(to_days(a.ca.not_after - r.own.at)))
                               : std::string{"none (no auto-enroll)"});
        if (in.ra->manual_rollover) {
            out += fmt::format(
                "  manual RA rollover   {}  (--ra-rollover / ra.manual_rollover: {} "
                "after the CA's creation)\n",
                to_iso8601(in.ca_created_at + *in.ra->manual_rollover),
                format_duration(*in.ra->manual_rollover));
        }
        out += fmt::format("  RA asks the CA       {}\n", opt_time(r.asks_ca_at));
        out += fmt::format(
            "  RA answers 200 from  {}{}\n", opt_time(r.knows_shadow_at),
            r.knows_shadow_at ? fmt::format("  ({} days before CA expiry)",
                                            days_text(to_days(a.ca.not_after - *r.knows_shadow_at)))
                              : std::string{});
        if (r.lapses_at) {
            out += fmt::format("  RA certificate ends  {}  (no auto-enroll: before the CA)\n",
                               to_iso8601(*r.lapses_at));
        }
    }
    if (in.limiter.enabled) {
        out += fmt::format(
            "HTTP server the clients reach: max-connections {}, {}\n", max_connections,
            in.limiter.throttle
                ? fmt::format("throttle {} per {} s, deaf {} s", in.limiter.throttle_limit,
                              in.limiter.throttle_window_length.count() / 1000,
                              in.limiter.deaf_period.count() / 1000)
                : std::string{"no throttle (throttle=off)"});
    } else {
        out += "HTTP server the clients reach: no limits modelled (limiter=off)\n";
    }
    for (const auto& g : v.generations) {
        out +=
            fmt::format("Generation {}: CA {} .. {}, {}\n", g.number, to_iso8601(g.ca.not_before),
                        to_iso8601(g.ca.not_after), to_string(g.verdict));
        for (const auto& t : g.trustpoints) {
            out += fmt::format("  trustpoint {}: {}\n", t.name, to_string(t.verdict));
            if (t.earliest_request) {
                const double e = to_days(g.ca.not_after - *t.earliest_request);
                const double l = to_days(g.ca.not_after - *t.latest_request);
                if (t.phase_locked) {
                    out += fmt::format(
                        "    herd               {}  ({} days before CA expiry, "
                        "every client at once)\n",
                        to_iso8601(*t.earliest_request), days_text(e));
                } else {
                    out += fmt::format("    first GetNextCACert {}  ({} days before CA expiry)\n",
                                       to_iso8601(*t.earliest_request), days_text(e));
                    out += fmt::format("    fleet first requests {} .. {} days before CA expiry\n",
                                       days_text(e), days_text(l));
                }
                out += fmt::format("    max 404 window     {}{}\n",
                                   std::fabs(t.max_404_days - std::round(t.max_404_days)) > 1e-9
                                       ? format_duration(from_days(t.max_404_days))
                                       : days_text(t.max_404_days) + " days",
                                   t.max_404_days > 0 && !t.phase_locked
                                       ? fmt::format(" ({:.1f} % of a uniformly phased fleet)",
                                                     100.0 * t.share_hit)
                                       : std::string{});
                if (t.herd_minutes) {
                    out += fmt::format("    herd through throttle >= {} minutes\n",
                                       days_text(*t.herd_minutes));
                }
            }
        }
    }
    for (const auto& t : a.trustpoints) {
        if (t.first_get_next_ca_cert) {
            out += fmt::format(
                "Trustpoint {}: min safe overlap {} days; recommended auto-rollover {}\n", t.name,
                days_text(t.min_safe_overlap_days), days_text(t.recommended_overlap_days));
        }
    }
    for (const auto& s : skipped) {
        out += fmt::format("Skipped: {}\n", s);
    }
    out += "\nFindings:\n";
    for (const auto& f : a.findings) {
        out += "  - " + f + "\n";
    }
    for (const auto& g : v.generations) {
        for (const auto& f : g.findings) {
            out += "  - " + f + "\n";
        }
        for (const auto& t : g.trustpoints) {
            for (const auto& f : t.findings) {
                out += "  - " + f + "\n";
            }
        }
    }
    if (v.change) {
        const auto& c = *v.change;
        out += fmt::format("\nRecommended change set ({}):\n",
                           c.verified_safe ? "verified safe in every generation by the closed form"
                                           : "NOT enough on its own; see below");
        for (const auto& d : c.devices) {
            out += fmt::format("  on {}:\n", d.device);
            for (const auto& l : d.config) {
                out += "    " + l + "\n";
            }
            for (const auto& l : d.exec) {
                out += "    " + l + "\n";
            }
            for (const auto& w : d.why) {
                out += "    ! because " + w + "\n";
            }
        }
        for (const auto& w : c.cannot_fix) {
            out += "  cannot be made safe here: " + w + "\n";
        }
        if (!c.settings.empty()) {
            std::string sets_line;
            for (const auto& s2 : c.settings) {
                sets_line += fmt::format(" --set '{}'", s2);
            }
            out += fmt::format("  check it again:{}\n", sets_line);
        }
    }
    out += fmt::format("\nVerdict: {}\n", to_string(v.verdict));
    std::cout << out;
    return exit_code;
}

}  // namespace

void add_check_command(CLI::App& app, int& exit_code) {
    auto opts = std::make_shared<check_options>();
    CLI::App* cmd = app.add_subcommand(
        "check",
        "Read IOS configurations (crypto pki server / trustpoint, ip http) and tell whether "
        "clients will storm the CA with GetNextCACert 404s or face an outage at CA rollover, in "
        "this CA generation and the next, with the RA's own timer, and what to change");
    cmd->add_option("files", opts->files,
                    "IOS configuration files or `show running-config` pastes (CA, RA, clients); "
                    "- reads standard input")
        ->required();
    cmd->add_flag("--json", opts->json, "print one JSON object instead of text");
    cmd->add_option("--ca-start", opts->ca_start,
                    "when the CA certificate was created (its notBefore), ISO-8601 UTC; only "
                    "relative times matter (the same default as a scenario's `start`)")
        ->capture_default_str();
    cmd->add_option("--set", opts->sets,
                    "KEY=VALUE, one per --set (repeatable): override a command or parameter "
                    "before the analysis; the keys are listed below")
        ->allow_extra_args(false);
    cmd->add_option("--ra-rollover", opts->ra_rollover,
                    "WHEN the operator runs `crypto pki server RA rollover`: a time from the CA's "
                    "creation (1460d) or a date; the scenario's [ra] manual_rollover");
    cmd->add_option("--ra-trustpoint", opts->ra_trustpoint,
                    "the RA's own trustpoint (default: the trustpoint named like the RA server)");
    cmd->add_option("--clients", opts->clients,
                    "fleet size, for the generation-2 herd through the throttle");
    cmd->add_option("--server", opts->server,
                    "the issuing CA to analyse when the files hold several");
    cmd->footer(settings_help(setting_command::check) +
                "\nExit codes: 0 safe (every generation), 1 storm or outage, 2 usage or "
                "configuration error (file:line:column: message on stderr), including files "
                "without an issuing CA or without a client trustpoint.");
    cmd->callback([opts, &exit_code] { exit_code = run_check(*opts); });
}

}  // namespace pkisim::cli
