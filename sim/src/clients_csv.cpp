// clients.csv writer (clients_csv.hpp).
#include "pkisim/sim/clients_csv.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "pkisim/timers/forecast.hpp"

namespace pkisim::sim {

namespace {

std::string csv_field(std::string_view s) {
    if (s.find_first_of(",\"\n") == std::string_view::npos)
        return std::string{s};
    std::string out = "\"";
    for (char c : s) {
        if (c == '"')
            out += '"';
        out += c;
    }
    return out + "\"";
}

std::string iso_or_empty(const std::optional<time_point>& t) {
    return t ? timers::to_iso8601(*t) : std::string{};
}

// Was the simulated listener deaf (the 80/min throttle) on any day of [from, until]?
bool throttled_between(const sim_result& r, time_point from, time_point until) {
    if (until < from || r.daily.empty())
        return false;
    const auto day = [&](time_point t) {
        const auto d = std::chrono::floor<timers::days>(t - r.start).count();
        return static_cast<std::size_t>(
            std::clamp<long long>(d, 0, static_cast<long long>(r.daily.size()) - 1));
    };
    for (std::size_t d = day(from); d <= day(until); ++d)
        if (r.daily[d].connections_ignored_deaf > 0)
            return true;
    return false;
}

}  // namespace

std::string clients_csv(const scenario& sc, const sim_result& r) {
    std::string out =
        "hostname,group,trustpoint,state,cert_not_after_utc,first_get_next_ca_cert_utc,"
        "expected_404_from_utc,expected_404_until_utc,expected_404_days,caught_by_throttle,"
        "outage,note\n";
    const timers::validity ca = r.ca;
    for (std::size_t gi = 0; gi < sc.groups.size(); ++gi) {
        const auto& g = sc.groups[gi];
        const bool via_ra = sc.ra && g.via_ra;
        const std::optional<time_point> shadow = via_ra ? r.ra_shadow_at : r.shadow_generated_at;
        auto row = [&](std::string_view host, std::string_view state,
                       const std::optional<timers::validity>& cert,
                       const timers::client_forecast& f) {
            const bool has_window = f.first_get_next_ca_cert && f.window_end &&
                                    *f.window_end > *f.first_get_next_ca_cert;
            const bool throttled =
                has_window && throttled_between(r, *f.first_get_next_ca_cert, *f.window_end);
            out += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{}\n", csv_field(host),
                               csv_field(g.name), csv_field(g.trustpoint.name), state,
                               cert ? timers::to_iso8601(cert->not_after) : std::string{},
                               iso_or_empty(f.first_get_next_ca_cert),
                               has_window ? iso_or_empty(f.first_get_next_ca_cert) : std::string{},
                               has_window ? iso_or_empty(f.window_end) : std::string{},
                               fmt::format("{:.3f}", f.window_days), throttled ? "yes" : "no",
                               f.outage ? "yes" : "no", csv_field(f.reason));
        };
        if (g.pattern == enrollment_pattern::state) {
            for (const auto& cs : g.routers) {
                const auto acts = r.start + cs.at.value_or(duration{0});
                const auto f =
                    timers::forecast_client(g.trustpoint, cs.phase, cs.certificate, acts, r.start,
                                            ca, sc.ca.server.cert_lifetime, shadow);
                row(cs.hostname, timers::to_string(cs.phase), cs.certificate, f);
            }
            continue;
        }
        // A statistical group: its earliest client in steady state (pkisim check's figure).
        timers::client_forecast f;
        if (gi < r.closed_form.trustpoints.size()) {
            const auto& ts = r.closed_form.trustpoints[gi];
            f.first_get_next_ca_cert = ts.first_get_next_ca_cert;
            if (ts.first_get_next_ca_cert && shadow && *shadow > *ts.first_get_next_ca_cert) {
                f.window_end = std::min(*shadow, ca.not_after);
                f.window_days = timers::to_days(*f.window_end - *ts.first_get_next_ca_cert);
            }
            f.outage = ts.verdict == timers::storm_verdict::outage;
        }
        f.reason = fmt::format("group of {} clients: its earliest GetNextCACert", g.count);
        row("", "", std::nullopt, f);
    }
    return out;
}

}  // namespace pkisim::sim
