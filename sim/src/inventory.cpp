// Routers' captures -> a scenario of explicit per-client state (inventory.hpp). The IOS text is
// read by timers/ (parse_captures, the config parser, derive_router_state); this file decides
// what the scenario says and writes it.
#include "pkisim/sim/inventory.hpp"

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "pkisim/timers/timeline.hpp"

namespace pkisim::sim {

namespace {

using timers::router_phase;

std::string quoted(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\')
            out += '\\';
        if (static_cast<unsigned char>(c) >= 0x20)
            out += c;
    }
    return out + "\"";
}

bool same_instant(timers::time_point a, timers::time_point b) {
    // IOS prints whole seconds.
    return (a > b ? a - b : b - a) <= timers::seconds{1};
}

bool has_tp(const timers::shown_certificate& c, std::string_view tp) {
    return std::find(c.trustpoints.begin(), c.trustpoints.end(), tp) != c.trustpoints.end();
}

// The trustpoint as IOS text: the commands the simulator reads, nothing else.
std::string trustpoint_text(const timers::trustpoint_config& tp) {
    std::string s = fmt::format("crypto pki trustpoint {}\n", tp.name);
    if (!tp.enrollment_url.empty())
        s += fmt::format(" enrollment url {}\n", tp.enrollment_url);
    if (tp.enrollment_mode_ra)
        s += " enrollment mode ra\n";
    if (tp.retry_period != timers::minutes{1})
        s += fmt::format(" enrollment retry period {}\n",
                         std::chrono::duration_cast<timers::minutes>(tp.retry_period).count());
    if (tp.retry_count != 0)
        s += fmt::format(" enrollment retry count {}\n", tp.retry_count);
    if (tp.auto_enroll)
        s += fmt::format(" auto-enroll {}{}\n", tp.auto_enroll_percent,
                         tp.regenerate ? " regenerate" : "");
    return s;
}

std::string group_key(const timers::trustpoint_config& tp) {
    return trustpoint_text(tp);
}

std::string group_name(const timers::trustpoint_config& tp) {
    if (!tp.auto_enroll)
        return fmt::format("{} (no auto-enroll)", tp.name);
    return fmt::format("{} (auto-enroll {}{})", tp.name, tp.auto_enroll_percent,
                       tp.regenerate ? " regenerate" : "");
}

std::string iso(timers::time_point t) {
    return timers::to_iso8601(t);
}

}  // namespace

std::size_t inventory::unknown() const {
    return static_cast<std::size_t>(std::count_if(
        routers.begin(), routers.end(), [](const inventory_router& r) { return !r.in_scenario; }));
}

tl::expected<inventory, std::string> build_inventory(
    const std::vector<timers::router_capture>& routers,
    const std::vector<timers::router_capture>& ca_captures, const inventory_options& options) {
    inventory inv;
    // The CA (and RA) from their running-config.
    const timers::router_capture* ca_cap = nullptr;
    const timers::router_capture* ra_cap = nullptr;
    timers::server_config ca_srv, ra_srv;
    timers::ios_config ra_cfg;
    for (const auto& c : ca_captures) {
        if (!c.has_running_config)
            continue;
        auto cfg = timers::capture_config(c);
        if (!cfg)
            return tl::make_unexpected(cfg.error().to_string());
        for (const auto& s : cfg->servers) {
            if (s.mode_ra && ra_cap == nullptr) {
                ra_cap = &c;
                ra_srv = s;
                ra_cfg = *cfg;
            } else if (!s.mode_ra && ca_cap == nullptr) {
                ca_cap = &c;
                ca_srv = s;
            }
        }
    }
    if (ca_cap == nullptr)
        return tl::make_unexpected(
            "--ca: no `crypto pki server` without `mode ra` in the CA captures; give the CA's "
            "`show running-config` (its lifetimes and auto-rollover decide the simulation)");
    const timers::shown_server* shown = nullptr;
    for (const auto& s : ca_cap->servers)
        if (s.name == ca_srv.name)
            shown = &s;

    // The routers.
    for (const auto& c : routers) {
        inventory_router r;
        r.state = timers::derive_router_state(c, options.trustpoint);
        r.disagreements = timers::printed_timer_disagreements(r.state, options.tolerance);
        inv.routers.push_back(std::move(r));
    }

    // The CA certificate: the CA's own, else its expiration timer and lifetime, else what the
    // routers hold (the most common).
    std::optional<timers::validity> ca;
    for (const auto& cert : ca_cap->certificates)
        if (cert.kind == timers::shown_cert_kind::ca && !cert.rollover && cert.start && cert.end &&
            has_tp(cert, ca_srv.name))
            ca = timers::validity{*cert.start, *cert.end};
    if (!ca && shown && shown->ca_expiration) {
        // The routers' CA certificate gives the notBefore when it ends at the same instant.
        for (const auto& r : inv.routers)
            if (r.state.ca && same_instant(r.state.ca->not_after, *shown->ca_expiration)) {
                ca = *r.state.ca;
                break;
            }
        if (!ca) {
            ca =
                timers::validity{*shown->ca_expiration - ca_srv.ca_lifetime, *shown->ca_expiration};
            inv.findings.push_back(fmt::format(
                "CA notBefore taken as the expiration timer minus `lifetime ca-certificate` ({})",
                iso(ca->not_before)));
        }
    }
    if (!ca) {
        std::map<std::int64_t, std::pair<int, timers::validity>> seen;
        for (const auto& r : inv.routers)
            if (r.state.ca) {
                auto& e = seen[r.state.ca->not_after.time_since_epoch().count()];
                e.first++;
                e.second = *r.state.ca;
            }
        int best = 0;
        for (const auto& [k, v] : seen)
            if (v.first > best) {
                best = v.first;
                ca = v.second;
            }
        if (ca)
            inv.findings.push_back(
                "no `show crypto pki server` or CA certificate in the CA captures: the CA "
                "certificate is the one most routers hold");
    }
    if (!ca)
        return tl::make_unexpected(
            "the CA certificate's dates are unknown: give the CA's `show crypto pki server` "
            "(CA certificate expiration timer) or `show crypto pki certificates`");
    inv.ca = *ca;
    if (!same_instant(ca->not_before + ca_srv.ca_lifetime, ca->not_after))
        inv.findings.push_back(fmt::format(
            "the CA certificate lasts {:.1f} days but `lifetime ca-certificate` says {:.1f}: the "
            "captured dates are used for this CA, the configured lifetime for its shadow",
            timers::to_days(ca->length()), timers::to_days(ca_srv.ca_lifetime)));

    // Start: the earliest capture.
    std::optional<timers::time_point> start = options.start;
    if (!start) {
        for (const auto& r : inv.routers)
            if (r.state.captured_at && (!start || *r.state.captured_at < *start))
                start = r.state.captured_at;
        if (ca_cap->clock && (!start || *ca_cap->clock < *start))
            start = ca_cap->clock;
    }
    if (!start)
        return tl::make_unexpected(
            "no capture has a readable `show clock`: the start time is unknown (or give --start)");
    inv.start = *start;

    // The shadow CA: the configured timer, or already there.
    std::optional<timers::duration> manual_rollover;
    inv.shadow_at = timers::shadow_generation_time(ca->not_after, ca_srv.auto_rollover);
    if (inv.shadow_at && *inv.shadow_at < ca->not_before)
        inv.shadow_at = ca->not_before;
    const bool shown_available =
        shown && shown->rollover_status.find("available") != std::string::npos;
    if (shown_available && (!inv.shadow_at || *inv.shadow_at > *start)) {
        manual_rollover = timers::duration{0};
        inv.shadow_at = *start;
        inv.findings.push_back(
            "`show crypto pki server` says the rollover CA exists although the auto-rollover "
            "timer is later: taken as an operator `rollover` (the shadow exists from the start)");
    } else if (shown && !shown->rollover_status.empty() && !shown_available && inv.shadow_at &&
               *inv.shadow_at <= *start) {
        inv.findings.push_back(fmt::format(
            "`Rollover status: {}` but the overlap puts the shadow at {}, before the capture",
            shown->rollover_status, iso(*inv.shadow_at)));
    }
    if (shown && shown->overlap && ca_srv.auto_rollover && *shown->overlap != *ca_srv.auto_rollover)
        inv.findings.push_back(fmt::format(
            "`show crypto pki server` prints an overlap of {:.1f} days, the running-config says "
            "auto-rollover {:.1f}: the running-config is used",
            timers::to_days(*shown->overlap), timers::to_days(*ca_srv.auto_rollover)));
    if (shown && shown->autorollover_timer && inv.shadow_at && !manual_rollover &&
        !same_instant(*shown->autorollover_timer, *inv.shadow_at))
        inv.findings.push_back(
            fmt::format("`Autorollover timer` {} differs from CA notAfter − auto-rollover = {}",
                        iso(*shown->autorollover_timer), iso(*inv.shadow_at)));
    if (!ca_srv.auto_rollover)
        inv.findings.push_back("the CA has no `auto-rollover`: no shadow CA will be generated");
    if (ca_srv.grant == timers::grant_mode::manual)
        inv.findings.push_back(
            "the CA grants manually; the simulator grants every request when it arrives (no "
            "operator model), so pending requests are granted at their next poll");

    // The RA, if any: its own certificate from its captures.
    std::optional<timers::validity> ra_cert;
    const timers::trustpoint_config* ra_tp = nullptr;
    if (ra_cap != nullptr) {
        ra_tp = ra_cfg.find_trustpoint(ra_srv.name);
        if (ra_tp == nullptr)
            return tl::make_unexpected(
                fmt::format("{}: the RA `crypto pki server {}` has no trustpoint of the same name",
                            ra_cap->file, ra_srv.name));
        for (const auto& cert : ra_cap->certificates)
            if (cert.kind != timers::shown_cert_kind::ca && !cert.rollover && cert.start &&
                cert.end && has_tp(cert, ra_srv.name))
                ra_cert = timers::validity{*cert.start, *cert.end};
        if (!ra_cert)
            inv.findings.push_back(
                "the RA's own certificate is not in its captures: the simulation enrolls it at "
                "the start");
    }

    // Which routers go in, grouped by identical trustpoint settings.
    std::map<std::string, std::vector<std::size_t>> groups;
    std::vector<std::string> group_order;
    for (std::size_t i = 0; i < inv.routers.size(); ++i) {
        auto& r = inv.routers[i];
        auto& st = r.state;
        if (st.phase == router_phase::unknown) {
            if (st.problems.empty())
                st.problems.push_back(
                    fmt::format("{}: state could not be determined", st.where.to_string()));
            continue;
        }
        if (st.ca && !same_instant(st.ca->not_after, ca->not_after)) {
            st.problems.push_back(fmt::format(
                "{}: its CA certificate ends {}, the CA's ends {}: not this CA (or another "
                "generation); left out",
                st.where.to_string(), iso(st.ca->not_after), iso(ca->not_after)));
            continue;
        }
        r.in_scenario = true;
        const auto key = group_key(st.trustpoint);
        if (!groups.count(key))
            group_order.push_back(key);
        groups[key].push_back(i);
        const auto acts = st.next_poll.value_or(*start);
        r.forecast = timers::forecast_client(st.trustpoint, st.phase, st.id, acts, *start, *ca,
                                             ca_srv.cert_lifetime, inv.shadow_at);
    }

    // The scenario text.
    std::string t;
    t += fmt::format(
        "# Written by `pkisim inventory` from {} routers' captures ({} in the fleet, {} whose "
        "state could not be determined are left out).\n# Start = the earliest capture time; "
        "each router's certificate and state as its captures showed them.\n",
        inv.routers.size(), inv.routers.size() - inv.unknown(), inv.unknown());
    t += fmt::format("name = {}\n", quoted(options.name));
    t += fmt::format("description = {}\n", quoted(fmt::format("{} routers captured from {}",
                                                              inv.routers.size(), iso(*start))));
    t += fmt::format("start = {}\n\n", quoted(iso(*start)));
    t += "[ca]\n";
    t += fmt::format("server = {}\n", quoted(ca_srv.name));
    t += fmt::format("not_before = {}\nnot_after = {}\n", quoted(iso(ca->not_before)),
                     quoted(iso(ca->not_after)));
    if (manual_rollover)
        t += "manual_rollover = \"0s\"\n";
    t += fmt::format("ios = '''\n{}'''\n\n", ca_cap->running_config);
    if (ra_cap != nullptr) {
        t += "[ra]\n";
        t +=
            fmt::format("server = {}\ntrustpoint = {}\n", quoted(ra_srv.name), quoted(ra_tp->name));
        if (ra_cert)
            t += fmt::format("cert_not_before = {}\ncert_not_after = {}\n",
                             quoted(iso(ra_cert->not_before)), quoted(iso(ra_cert->not_after)));
        t += fmt::format("ios = '''\n{}'''\n\n", ra_cap->running_config);
    }
    std::map<std::string, int> name_uses;
    for (const auto& key : group_order) {
        const auto& members = groups[key];
        const auto& tp = inv.routers[members.front()].state.trustpoint;
        std::string gname = group_name(tp);
        if (++name_uses[gname] > 1)
            gname += fmt::format(" #{}", name_uses[gname]);
        t += "[[clients]]\n";
        t += fmt::format("name = {}\n", quoted(gname));
        t += fmt::format("ios = '''\n{}'''\n", trustpoint_text(tp));
        t += "pattern = \"state\"\nrouters = [\n";
        for (const auto i : members) {
            auto& r = inv.routers[i];
            r.group = gname;
            const auto& st = r.state;
            std::string line = fmt::format("  {{ hostname = {}, state = {}", quoted(st.hostname),
                                           quoted(timers::to_string(st.phase)));
            std::optional<timers::validity> cert = st.id;
            if (st.phase == router_phase::rollover || st.phase == router_phase::rollover_ca) {
                if (!cert)
                    cert = st.rollover_id;
            }
            if (cert)
                line += fmt::format(", not_before = {}, not_after = {}",
                                    quoted(iso(cert->not_before)), quoted(iso(cert->not_after)));
            if ((st.phase == router_phase::pending || st.phase == router_phase::no_certificate ||
                 st.phase == router_phase::rollover_ca) &&
                st.next_poll && *st.next_poll > *start)
                line += fmt::format(", at = {}", quoted(iso(*st.next_poll)));
            t += line + " },\n";
        }
        t += "]\n\n";
    }
    if (group_order.empty())
        return tl::make_unexpected(
            "no router's state could be determined; nothing to simulate (see the problems "
            "listed per router)");
    inv.scenario_toml = std::move(t);
    return inv;
}

std::string inventory_table(const inventory& inv) {
    std::string out =
        fmt::format("{:<20} {:<18} {:<11} {:<20} {:<20} {:>8}  {}\n", "hostname", "trustpoint",
                    "state", "cert notAfter", "first GetNextCACert", "404 days", "outage");
    for (const auto& r : inv.routers) {
        const auto& st = r.state;
        if (!r.in_scenario) {
            out += fmt::format("{:<20} {:<18} {:<11} {}\n", st.hostname,
                               st.trustpoint.name.empty() ? "?" : st.trustpoint.name, "unknown",
                               st.problems.empty() ? std::string{} : st.problems.front());
            continue;
        }
        const auto& f = r.forecast;
        out += fmt::format(
            "{:<20} {:<18} {:<11} {:<20} {:<20} {:>8.1f}  {}\n", st.hostname, st.trustpoint.name,
            timers::to_string(st.phase), st.id ? iso(st.id->not_after) : std::string{"-"},
            f.first_get_next_ca_cert ? iso(*f.first_get_next_ca_cert) : std::string{"-"},
            f.window_days, f.outage ? "yes: " + f.reason : std::string{"no"});
    }
    return out;
}

}  // namespace pkisim::sim
