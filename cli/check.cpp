// `pkisim check FILE...`: IOS configuration -> parser -> timeline + storm analysis -> verdict.
// Exit codes (commands.hpp): 0 safe, 1 storm or outage, 2 usage or configuration error.
#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "pkisim/timers/config.hpp"
#include "pkisim/timers/storm.hpp"
#include "pkisim/timers/timeline.hpp"

namespace pkisim::cli {

namespace {

using namespace pkisim::timers;

struct check_options {
    std::vector<std::string> files;
    bool json = false;
    // Only relative times matter for the verdict; a fixed default keeps output reproducible.
    std::string ca_start = "2030-01-01T00:00:00Z";
    std::vector<std::string> sets;
    std::string server;
};

std::string days_text(double d) {
    if (d == static_cast<double>(static_cast<long long>(d))) {
        return fmt::format("{}", static_cast<long long>(d));
    }
    return fmt::format("{:.2f}", d);
}

// `--set server.auto-rollover=365`, `--set ra.mode=ra`, `--set trustpoint.auto-enroll=80`,
// `--set trustpoint.GETVPN.auto-enroll=60 regenerate`, `--set http.max-connections=16`.
bool apply_set(const std::string& spec, server_config& ca, std::vector<server_config*>& ras,
               std::vector<trustpoint_config>& tps, int& max_connections) {
    const auto eq = spec.find('=');
    const auto dot = spec.find('.');
    if (eq == std::string::npos || dot == std::string::npos || dot > eq) {
        std::cerr << fmt::format(
            "pkisim check: --set {}: expected SECTION.COMMAND=VALUE, e.g. "
            "server.auto-rollover=365 (sections: server, ra, trustpoint[.NAME], http)\n",
            spec);
        return false;
    }
    const std::string section = spec.substr(0, dot);
    std::string key = spec.substr(dot + 1, eq - dot - 1);
    const std::string value = spec.substr(eq + 1);
    std::replace(key.begin(), key.end(), '_', '-');
    const source_location where{"--set " + spec, 0, 0};
    auto fail = [&](const parse_error& e) {
        std::cerr << fmt::format("pkisim check: --set {}: {}\n", spec, e.message);
        return false;
    };
    if (section == "server" || section == "ra") {
        const std::string line = value.empty() ? key : key + " " + value;
        if (section == "server") {
            if (auto r = apply_server_command(ca, line, where); !r) {
                return fail(r.error());
            }
            return true;
        }
        if (ras.empty()) {
            std::cerr << fmt::format("pkisim check: --set {}: no `mode ra` server in the files\n",
                                     spec);
            return false;
        }
        for (auto* ra : ras) {
            if (auto r = apply_server_command(*ra, line, where); !r) {
                return fail(r.error());
            }
        }
        return true;
    }
    if (section == "trustpoint") {
        std::string name;
        if (const auto d2 = key.find('.'); d2 != std::string::npos) {
            name = key.substr(0, d2);
            key = key.substr(d2 + 1);
        }
        const std::string line = value.empty() ? key : key + " " + value;
        bool any = false;
        for (auto& tp : tps) {
            if (!name.empty() && tp.name != name) {
                continue;
            }
            any = true;
            if (auto r = apply_trustpoint_command(tp, line, where); !r) {
                return fail(r.error());
            }
        }
        if (!any) {
            std::cerr << fmt::format("pkisim check: --set {}: no such client trustpoint\n", spec);
            return false;
        }
        return true;
    }
    if (section == "http" && key == "max-connections") {
        try {
            std::size_t used = 0;
            const int n = std::stoi(value, &used);
            if (used == value.size() && n >= 1 && n <= 16) {
                max_connections = n;
                return true;
            }
        } catch (const std::exception&) {
        }
        std::cerr << fmt::format("pkisim check: --set {}: connections must be 1..16\n", spec);
        return false;
    }
    std::cerr << fmt::format(
        "pkisim check: --set {}: unknown section; expected server, ra, trustpoint[.NAME] or "
        "http.max-connections\n",
        spec);
    return false;
}

nlohmann::json optional_time(const std::optional<time_point>& t) {
    return t ? nlohmann::json(to_iso8601(*t)) : nlohmann::json(nullptr);
}

int run_check(const check_options& o) {
    const auto start = parse_iso8601(o.ca_start);
    if (!start) {
        std::cerr << fmt::format(
            "pkisim check: --ca-start {}: expected an ISO-8601 UTC time, e.g. "
            "2030-01-01T00:00:00Z\n",
            o.ca_start);
        return 2;
    }
    auto cfg = load_ios_config_files(o.files);
    if (!cfg) {
        std::cerr << cfg.error().to_string() << '\n';
        return 2;
    }
    for (const auto& w : cfg->warnings) {
        std::cerr << w.to_string() << '\n';
    }

    // The issuing CA is the server without `mode ra` (model §1 rule 8); RAs add their notes.
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
        std::cerr << "pkisim check: no issuing CA: none of the files has a `crypto pki server` "
                     "section without `mode ra`; add the CA's configuration\n";
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

    // Clients: trustpoints that are not a server's own (IOS creates trustpoint NAME for
    // server NAME) and that can enroll over SCEP.
    std::vector<trustpoint_config> clients;
    std::vector<std::string> skipped;
    for (const auto& tp : cfg->trustpoints) {
        if (cfg->find_server(tp.name) != nullptr) {
            skipped.push_back(
                fmt::format("trustpoint {} belongs to crypto pki server {}", tp.name, tp.name));
        } else if (tp.enrollment_url.empty() && !tp.auto_enroll) {
            skipped.push_back(fmt::format("trustpoint {} has no enrollment url", tp.name));
        } else {
            clients.push_back(tp);
        }
    }

    // The clients meet the HTTP server of the RA when there is one, else the CA's.
    int max_connections =
        ras.empty() ? ca->http_max_connections : ras.front()->http_max_connections;
    for (const auto& s : o.sets) {
        if (!apply_set(s, *ca, ras, clients, max_connections)) {
            return 2;
        }
    }

    storm_options opts;
    opts.limiter.max_connections = max_connections;
    const storm_analysis a = analyze_storm(*ca, *start, clients, opts);

    std::vector<std::string> notes;
    for (const auto* ra : ras) {
        notes.push_back(fmt::format(
            "RA crypto pki server {} answers the clients but learns of {}'s shadow CA only when "
            "it asks the CA on its own timer or when an operator runs `crypto pki server {} "
            "rollover`{}; until then it answers GetNextCACert with 404 even though the CA has its "
            "shadow. Run that command on the RA as soon as the CA's shadow exists.",
            ra->name, ca->name, ra->name,
            a.shadow_generated_at ? fmt::format(" (the CA's shadow is generated at {})",
                                                to_iso8601(*a.shadow_generated_at))
                                  : std::string{}));
    }
    if (a.verdict == storm_verdict::storm && max_connections < 16) {
        notes.push_back(fmt::format(
            "The HTTP server the clients reach allows {} simultaneous connections{}: raise it "
            "with `ip http max-connections 16` (the IOS maximum) so it copes with the request "
            "rate while the timers are fixed.",
            max_connections, max_connections == 5 ? " (the IOS default)" : ""));
    }

    const int exit_code = a.verdict == storm_verdict::safe ? 0 : 1;
    if (o.json) {
        nlohmann::json j;
        j["verdict"] = std::string{to_string(a.verdict)};
        j["ca_server"] = ca->name;
        j["ca_not_before"] = to_iso8601(a.ca.not_before);
        j["ca_not_after"] = to_iso8601(a.ca.not_after);
        j["ca_lifetime_days"] = to_days(ca->ca_lifetime);
        j["certificate_lifetime_days"] = to_days(ca->cert_lifetime);
        j["shadow_generated_at"] = optional_time(a.shadow_generated_at);
        j["overlap_days"] =
            a.overlap_days ? nlohmann::json(*a.overlap_days) : nlohmann::json(nullptr);
        j["switchover_at"] = to_iso8601(switchover_time(a.ca.not_after));
        j["http_max_connections"] = max_connections;
        j["ra_servers"] = nlohmann::json::array();
        for (const auto* ra : ras) {
            j["ra_servers"].push_back(ra->name);
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
            tj["min_safe_overlap_days"] = t.min_safe_overlap_days;
            tj["recommended_overlap_days"] = t.recommended_overlap_days;
            tj["requests_per_minute_per_client"] = t.requests_per_minute_per_client;
            tj["clients_to_reach_throttle"] = t.clients_to_reach_throttle;
            tj["findings"] = t.findings;
            j["trustpoints"].push_back(std::move(tj));
        }
        std::vector<std::string> findings = a.findings;
        findings.insert(findings.end(), notes.begin(), notes.end());
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
                       ca->mode_ra ? "RA" : "issuing CA", to_string(ca->grant));
    out += fmt::format("  CA notBefore         {}  (--ca-start; only relative times matter)\n",
                       to_iso8601(a.ca.not_before));
    out += fmt::format("  CA notAfter          {}  (lifetime ca-certificate {} days)\n",
                       to_iso8601(a.ca.not_after), days_text(to_days(ca->ca_lifetime)));
    if (a.shadow_generated_at) {
        out += fmt::format("  shadow CA generated  {}  (auto-rollover {} days before expiry)\n",
                           to_iso8601(*a.shadow_generated_at), days_text(*a.overlap_days));
    } else {
        out += "  shadow CA generated  never  (no auto-rollover)\n";
    }
    out += fmt::format("  switchover           {}  (the shadow CA becomes the CA)\n",
                       to_iso8601(switchover_time(a.ca.not_after)));
    out += fmt::format("  issued certificates  {} days, cut at the CA notAfter\n",
                       days_text(to_days(ca->cert_lifetime)));
    for (const auto* ra : ras) {
        out += fmt::format("RA: crypto pki server {} (mode ra)\n", ra->name);
    }
    out += fmt::format(
        "HTTP server the clients reach: max-connections {}, throttle {} per {} s, "
        "deaf {} s\n",
        max_connections, opts.limiter.throttle_limit,
        opts.limiter.throttle_window_length.count() / 1000,
        opts.limiter.deaf_period.count() / 1000);
    for (const auto& t : a.trustpoints) {
        out += fmt::format("Trustpoint {}: {}\n", t.name, to_string(t.verdict));
        if (t.first_get_next_ca_cert) {
            out += fmt::format("  first GetNextCACert  {}  ({} days before CA expiry)\n",
                               to_iso8601(*t.first_get_next_ca_cert),
                               days_text(t.first_get_next_ca_cert_days_before_ca_expiry));
            out += fmt::format("  fleet first requests {} .. {} days before CA expiry\n",
                               days_text(t.first_get_next_ca_cert_days_before_ca_expiry),
                               days_text(to_days(a.ca.not_after - *t.last_first_get_next_ca_cert)));
            out +=
                fmt::format("  max 404 window       {} days\n", days_text(t.max_404_window_days));
            out += fmt::format("  min safe overlap     {} days; recommended auto-rollover {}\n",
                               days_text(t.min_safe_overlap_days),
                               days_text(t.recommended_overlap_days));
        }
    }
    for (const auto& s : skipped) {
        out += fmt::format("Skipped: {}\n", s);
    }
    if (a.trustpoints.empty()) {
        out +=
            "No client trustpoint in the files: pass the clients' configuration too for a "
            "per-trustpoint verdict.\n";
    }
    out += "\nFindings:\n";
    for (const auto& f : a.findings) {
        out += "  - " + f + "\n";
    }
    for (const auto& t : a.trustpoints) {
        for (const auto& f : t.findings) {
            out += "  - " + f + "\n";
        }
    }
    for (const auto& n : notes) {
        out += "  - " + n + "\n";
    }
    out += fmt::format("\nVerdict: {}\n", to_string(a.verdict));
    std::cout << out;
    return exit_code;
}

}  // namespace

void add_check_command(CLI::App& app, int& exit_code) {
    auto opts = std::make_shared<check_options>();
    CLI::App* cmd = app.add_subcommand(
        "check",
        "Read IOS configurations (crypto pki server / trustpoint, ip http) and tell whether "
        "clients will storm the CA with GetNextCACert 404s or face an outage at CA rollover");
    cmd->add_option("files", opts->files,
                    "IOS configuration files or `show running-config` pastes (CA, RA, clients)")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_flag("--json", opts->json, "print one JSON object instead of text");
    cmd->add_option("--ca-start", opts->ca_start,
                    "when the CA certificate was created (its notBefore), ISO-8601 UTC; only "
                    "relative times matter")
        ->capture_default_str();
    cmd->add_option("--set", opts->sets,
                    "override a command before the analysis: server.auto-rollover=365, "
                    "ra.COMMAND=VALUE, trustpoint[.NAME].auto-enroll=80, http.max-connections=16")
        ->allow_extra_args(false);  // one value per --set, so that files may follow (issue 15)
    cmd->add_option("--server", opts->server,
                    "the issuing CA to analyse when the files hold several");
    cmd->footer(
        "Exit codes: 0 safe, 1 storm or outage, 2 usage or configuration error "
        "(file:line:column: message on stderr).");
    cmd->callback([opts, &exit_code] { exit_code = run_check(*opts); });
}

}  // namespace pkisim::cli
