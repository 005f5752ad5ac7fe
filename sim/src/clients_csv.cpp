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

// The measured columns of one record (empty when there is none).
std::string measured(const client_record* m) {
    if (m == nullptr)
        return ",,,,,,,";
    return fmt::format("{},{},{},{},{:.3f},{},{},{}", m->clients,
                       iso_or_empty(m->first_get_next_ca_cert_at), iso_or_empty(m->first_404_at),
                       m->windows_404,
                       timers::to_days(timers::duration{m->longest_404_window_ms}),
                       m->clients_hit_404, m->enrollments_failed, m->outages);
}

}  // namespace

std::string clients_csv(const scenario& sc, const sim_result& r) {
    // Forecast columns (timers::forecast_client, per router of a `state` group), then what the
    // run measured: per client with the exact engine, per group with the cohort engine.
    std::string out =
        "hostname,group,trustpoint,state,cert_not_after_utc,first_get_next_ca_cert_utc,"
        "expected_404_from_utc,expected_404_until_utc,expected_404_days,caught_by_throttle,"
        "outage,clients,measured_first_get_next_ca_cert_utc,measured_first_404_utc,"
        "measured_404_windows,measured_longest_404_days,clients_hit_404,enrollments_failed,"
        "outages,note\n";
    const timers::validity ca = r.ca;
    // Records by group: per client (in creation order) or one per group.
    std::vector<std::vector<const client_record*>> per_client(sc.groups.size());
    std::vector<const client_record*> per_group(sc.groups.size(), nullptr);
    for (const auto& rec : r.client_records) {
        if (rec.group >= sc.groups.size())
            continue;
        if (rec.per_client)
            per_client[rec.group].push_back(&rec);
        else
            per_group[rec.group] = &rec;
    }
    for (std::size_t gi = 0; gi < sc.groups.size(); ++gi) {
        const auto& g = sc.groups[gi];
        const bool via_ra = sc.ra && g.via_ra;
        const std::optional<time_point> shadow = via_ra ? r.ra_shadow_at : r.shadow_generated_at;
        auto row = [&](std::string_view host, std::string_view state,
                       const std::optional<timers::validity>& cert,
                       const timers::client_forecast& f, const client_record* m,
                       std::string_view note) {
            const bool has_window = f.first_get_next_ca_cert && f.window_end &&
                                    *f.window_end > *f.first_get_next_ca_cert;
            const bool throttled =
                has_window && throttled_between(r, *f.first_get_next_ca_cert, *f.window_end);
            const bool forecast = f.first_get_next_ca_cert.has_value() || !f.reason.empty();
            out += fmt::format(
                "{},{},{},{},{},{},{},{},{},{},{},{},{}\n", csv_field(host), csv_field(g.name),
                csv_field(g.trustpoint.name), state,
                cert ? timers::to_iso8601(cert->not_after) : std::string{},
                iso_or_empty(f.first_get_next_ca_cert),
                has_window ? iso_or_empty(f.first_get_next_ca_cert) : std::string{},
                has_window ? iso_or_empty(f.window_end) : std::string{},
                forecast ? fmt::format("{:.3f}", f.window_days) : std::string{},
                forecast ? (throttled ? "yes" : "no") : "", forecast ? (f.outage ? "yes" : "no") : "",
                measured(m), csv_field(note));
        };
        if (g.pattern == enrollment_pattern::state) {
            for (std::size_t i = 0; i < g.routers.size(); ++i) {
                const auto& cs = g.routers[i];
                const auto acts = r.start + cs.at.value_or(duration{0});
                const auto f =
                    timers::forecast_client(g.trustpoint, cs.phase, cs.certificate, acts, r.start,
                                            ca, sc.ca.server.cert_lifetime, shadow);
                const client_record* m =
                    i < per_client[gi].size() ? per_client[gi][i] : nullptr;
                row(cs.hostname, timers::to_string(cs.phase), cs.certificate, f, m, f.reason);
            }
            if (per_group[gi] != nullptr)
                row("", "", std::nullopt, {}, per_group[gi],
                    "measured for the group (the cohort engine merges its routers)");
            continue;
        }
        // A statistical group: its earliest client in steady state (pkisim check's figure),
        // with the group's measured totals; then, with the exact engine, one row per client.
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
        f.reason = fmt::format("group of {} clients: forecast of its earliest GetNextCACert", g.count);
        client_record total;
        const client_record* group_m = per_group[gi];
        if (group_m == nullptr && !per_client[gi].empty()) {
            total.group = static_cast<std::uint16_t>(gi);
            for (const auto* m : per_client[gi]) {
                total.clients += m->clients;
                const auto earliest = [](auto& a, const auto& b) {
                    if (b && (!a || *b < *a))
                        a = b;
                };
                earliest(total.first_get_next_ca_cert_at, m->first_get_next_ca_cert_at);
                earliest(total.first_404_at, m->first_404_at);
                total.windows_404 += m->windows_404;
                total.longest_404_window_ms =
                    std::max(total.longest_404_window_ms, m->longest_404_window_ms);
                total.clients_hit_404 += m->clients_hit_404;
                total.enrollments_failed += m->enrollments_failed;
                total.outages += m->outages;
            }
            group_m = &total;
        }
        row("", "", std::nullopt, f, group_m, f.reason + "; measured: the group's totals");
        for (const auto* m : per_client[gi])
            row("", "", std::nullopt, {}, m, fmt::format("client {} of the group", m->index + 1));
    }
    return out;
}

}  // namespace pkisim::sim
