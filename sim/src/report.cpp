// Report writers: JSON (nlohmann, ordered keys), CSV, hand-written SVG and one HTML page.
#include "pkisim/sim/report.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

namespace pkisim::sim {

namespace {

using ordered_json = nlohmann::ordered_json;

constexpr double ms_per_day = 86'400'000.0;

ordered_json time_or_null(const std::optional<time_point>& t) {
    if (!t)
        return nullptr;
    return timers::to_iso8601(*t);
}

double seconds_of(timers::duration d) {
    return static_cast<double>(d.count()) / 1000.0;
}

double days_before(time_point later, time_point earlier) {
    return timers::to_days(later - earlier);
}

std::string html_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            default:
                out += c;
        }
    }
    return out;
}

std::string num(double v) {
    if (std::fabs(v - std::round(v)) < 1e-9 && std::fabs(v) < 1e15)
        return fmt::format("{}", static_cast<long long>(std::llround(v)));
    return fmt::format("{:.1f}", v);
}

std::string with_commas(std::uint64_t v) {
    const std::string digits = fmt::format("{}", v);
    std::string out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0)
            out += ',';
        out += digits[i];
    }
    return out;
}

// ---- SVG line charts -------------------------------------------------------------------------

struct series {
    std::string name;
    std::string color;
    std::vector<double> y;
    bool dashed = false;
};

struct chart {
    std::string id;
    std::string title;
    std::string x_label;
    std::string y_label;
    std::vector<double> x;
    std::vector<series> lines;
    std::optional<std::pair<double, std::string>> hline;  // value, label
    std::optional<std::pair<double, std::string>> vline;
    bool log_y = false;
};

double nice_step(double range, int target) {
    if (range <= 0)
        return 1;
    const double raw = range / target;
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    const double f = raw / mag;
    const double nice = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
    return nice * mag;
}

std::string render(const chart& c) {
    const double w = 900;
    const double h = 380;
    const double ml = 78;
    const double mr = 20;
    const double mt = 40;
    const double mb = 78;
    const double pw = w - ml - mr;
    const double ph = h - mt - mb;
    double xmin = c.x.empty() ? 0 : c.x.front();
    double xmax = c.x.empty() ? 1 : c.x.back();
    if (xmax <= xmin)
        xmax = xmin + 1;
    auto tr = [&](double v) { return c.log_y ? std::log10(1 + std::max(0.0, v)) : v; };
    double ymax = 0;
    for (const auto& s : c.lines)
        for (double v : s.y)
            ymax = std::max(ymax, tr(v));
    if (c.hline)
        ymax = std::max(ymax, tr(c.hline->first));
    if (ymax <= 0)
        ymax = 1;
    if (c.log_y) {
        ymax = std::ceil(ymax);
    } else {
        const double st = nice_step(ymax, 5);
        ymax = std::ceil(ymax / st) * st;
    }
    auto px = [&](double x) { return ml + (x - xmin) / (xmax - xmin) * pw; };
    auto py = [&](double y) { return mt + ph - tr(y) / ymax * ph; };

    std::string o;
    o += fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"{}\" class=\"plot\" viewBox=\"0 0 {} {}\" "
        "width=\"{}\" height=\"{}\" role=\"img\" font-family=\"sans-serif\" font-size=\"12\">\n",
        c.id, w, h, w, h);
    o += fmt::format("<title>{}</title>\n", html_escape(c.title));
    o += fmt::format("<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"#ffffff\"/>\n", w, h);
    o += fmt::format("<text x=\"{}\" y=\"22\" font-size=\"15\" font-weight=\"bold\">{}</text>\n",
                     ml, html_escape(c.title));
    // Y grid.
    if (c.log_y) {
        for (int e = 0; e <= static_cast<int>(ymax); ++e) {
            const double v = std::pow(10.0, e) - 1;
            const double y = mt + ph - e / ymax * ph;
            o += fmt::format(
                "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#dddddd\"/>"
                "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n",
                ml, y, ml + pw, y, ml - 6, y + 4, e == 0 ? std::string{"0"} : num(v + 1));
        }
    } else {
        const double st = nice_step(ymax, 5);
        for (double v = 0; v <= ymax + st / 2; v += st) {
            const double y = py(v);
            o += fmt::format(
                "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#dddddd\"/>"
                "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n",
                ml, y, ml + pw, y, ml - 6, y + 4, num(v));
        }
    }
    // X ticks.
    const double xst = nice_step(xmax - xmin, 10);
    for (double v = std::ceil(xmin / xst) * xst; v <= xmax + 1e-9; v += xst) {
        const double x = px(v);
        o += fmt::format(
            "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#eeeeee\"/>"
            "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n",
            x, mt, x, mt + ph, x, mt + ph + 16, num(v));
    }
    o += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444444\"/>\n",
        ml, mt, pw, ph);
    o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n",
                     ml + pw / 2, mt + ph + 34, html_escape(c.x_label));
    o += fmt::format(
        "<text x=\"16\" y=\"{:.1f}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {:.1f})\">{}"
        "</text>\n",
        mt + ph / 2, mt + ph / 2, html_escape(c.y_label + (c.log_y ? " (log scale)" : "")));
    if (c.hline) {
        const double y = py(c.hline->first);
        o += fmt::format(
            "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#cc0000\" "
            "stroke-dasharray=\"6 4\"/><text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"#cc0000\" "
            "text-anchor=\"end\">{}</text>\n",
            ml, y, ml + pw, y, ml + pw - 4, y - 4, html_escape(c.hline->second));
    }
    if (c.vline && c.vline->first >= xmin && c.vline->first <= xmax) {
        const double x = px(c.vline->first);
        o += fmt::format(
            "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#555555\" "
            "stroke-dasharray=\"2 3\"/><text x=\"{:.1f}\" y=\"{:.1f}\" "
            "fill=\"#555555\">{}</text>\n",
            x, mt, x, mt + ph, x + 3, mt + 12, html_escape(c.vline->second));
    }
    for (const auto& s : c.lines) {
        std::string pts;
        const std::size_t n = std::min(s.y.size(), c.x.size());
        pts.reserve(n * 16);
        for (std::size_t i = 0; i < n; ++i) {
            pts += fmt::format("{:.1f},{:.1f} ", px(c.x[i]), py(s.y[i]));
        }
        o += fmt::format(
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.6\"{} points=\"{}\"/>\n",
            s.color, s.dashed ? " stroke-dasharray=\"5 3\"" : "", pts);
    }
    // Legend below the x label.
    double lx = ml;
    const double ly = h - 14;
    for (const auto& s : c.lines) {
        o += fmt::format(
            "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
            "stroke-width=\"3\"/><text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n",
            lx, ly - 4, lx + 18, ly - 4, s.color, lx + 22, ly, html_escape(s.name));
        lx += 30 + 7.0 * static_cast<double>(s.name.size());
    }
    o += "</svg>\n";
    return o;
}

// The days worth showing: around the storm if there is one, else the whole horizon.
std::pair<std::size_t, std::size_t> day_range(const sim_result& r) {
    const std::size_t n = r.daily.size();
    if (n == 0)
        return {0, 0};
    if (!r.first_get_next_ca_cert_at)
        return {0, n};
    const auto first = static_cast<std::size_t>(
        std::max(0.0, std::floor(timers::to_days(*r.first_get_next_ca_cert_at - r.start)) - 20));
    const auto ca_end = static_cast<std::size_t>(timers::to_days(r.ca.not_after - r.start));
    std::size_t last = std::min(n, ca_end + 31);
    if (last <= first)
        last = n;
    return {std::min(first, n - 1), last};
}

const std::pair<const char*, std::uint64_t day_counters::*> count_columns[] = {
    {"get_next_ca_cert_requests", &day_counters::get_next_ca_cert_requests},
    {"responses_404", &day_counters::responses_404},
    {"responses_200", &day_counters::responses_200},
    {"enrollment_attempts", &day_counters::enrollment_attempts},
    {"enrollments_ok", &day_counters::enrollments_ok},
    {"enrollments_failed", &day_counters::enrollments_failed},
    {"connections_accepted", &day_counters::connections_accepted},
    {"connections_dropped_max_connections", &day_counters::connections_dropped_max_connections},
    {"connections_ignored_deaf", &day_counters::connections_ignored_deaf},
    {"clients_entered_shadow_loop", &day_counters::clients_entered_shadow_loop},
    {"clients_first_404", &day_counters::clients_first_404},
    {"clients_got_next_ca", &day_counters::clients_got_next_ca},
    {"clients_outage", &day_counters::clients_outage},
    {"peak_clients_in_shadow_loop", &day_counters::peak_clients_in_shadow_loop},
    {"peak_attempts_per_minute", &day_counters::peak_attempts_per_minute},
};

std::string recommendation(const scenario& sc, const sim_result& r) {
    if (r.change_set) {
        // The change set, verified by a re-run of the fleet (sim/change_set.hpp), replaces the
        // one-change heuristic below.
        return r.change_set->verified
                   ? fmt::format(
                         "the change set below ({}), verified by a re-run over {} CA "
                         "generations",
                         fmt::join(r.change_set->settings, ", "), r.change_set->rerun_generations)
                   : std::string{"no verified change set (see below)"};
    }
    std::vector<std::string> parts;
    double rec = 0;
    double min_safe = 0;
    for (const auto& t : r.closed_form.trustpoints) {
        rec = std::max(rec, t.recommended_overlap_days);
        min_safe = std::max(min_safe, t.min_safe_overlap_days);
    }
    const double overlap =
        sc.ca.server.auto_rollover ? timers::to_days(*sc.ca.server.auto_rollover) : 0;
    if (r.clients_hit_404 > 0 || r.clients_outage > 0) {
        if (!sc.ca.server.auto_rollover || overlap <= min_safe) {
            parts.push_back(fmt::format(
                "on the CA, `auto-rollover {}` (clients ask for the next CA up to {} days "
                "before it expires; the overlap must be longer)",
                num(std::ceil(rec)), num(min_safe)));
        }
        if (r.ra_shadow_at && r.shadow_generated_at &&
            *r.ra_shadow_at > *r.shadow_generated_at + timers::days{1}) {
            parts.push_back(fmt::format(
                "roll the RA over (`crypto pki server {} rollover`) as soon as the CA has its "
                "shadow: the RA learned of it {} days later",
                sc.ra ? sc.ra->server.name : std::string{"RA"},
                num(std::round(days_before(*r.ra_shadow_at, *r.shadow_generated_at) * 10) / 10)));
        } else if (sc.ra && !r.ra_shadow_at && r.shadow_generated_at) {
            parts.push_back(fmt::format(
                "roll the RA over (`crypto pki server {} rollover`): it never fetched the "
                "shadow CA",
                sc.ra->server.name));
        }
    }
    if (r.clients_outage > 0) {
        for (const auto& g : sc.groups) {
            if (!g.trustpoint.auto_enroll) {
                parts.push_back(fmt::format(
                    "`auto-enroll 70` on trustpoint {} (without auto-enroll nothing renews the "
                    "certificate or fetches the next CA)",
                    g.trustpoint.name));
            } else if (g.trustpoint.auto_enroll_percent >= 100) {
                parts.push_back(fmt::format(
                    "`auto-enroll 70` instead of {} % on trustpoint {} (a certificate cut to the "
                    "CA's end asks for the next CA only when the CA expires: too late)",
                    g.trustpoint.auto_enroll_percent, g.trustpoint.name));
            }
        }
    }
    if ((r.totals.deaf_ms > 0 || r.totals.connections_dropped_max_connections > 0) &&
        sc.front().http.max_connections < 16)
        parts.push_back("`ip http max-connections 16` on the server the clients talk to");
    if (parts.empty())
        return "no change needed";
    std::string out;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        out += (i == 0 ? "" : "; ") + parts[i];
    }
    return out;
}

ordered_json generations_json(const sim_result& r) {
    ordered_json out = ordered_json::array();
    for (const auto& g : r.generations) {
        ordered_json j;
        j["generation"] = g.number;
        j["verdict"] = std::string{to_string(g.outcome)};
        j["complete"] = g.complete;
        j["ca_not_before"] = timers::to_iso8601(g.ca.not_before);
        j["ca_not_after"] = timers::to_iso8601(g.ca.not_after);
        j["shadow_generated_at"] = time_or_null(g.shadow_generated_at);
        j["ra_shadow_at"] = time_or_null(g.ra_shadow_at);
        j["first_get_next_ca_cert_at"] = time_or_null(g.first_get_next_ca_cert_at);
        j["last_loop_entry_at"] = time_or_null(g.last_loop_entry_at);
        j["loop_entry_spread_seconds"] =
            g.first_get_next_ca_cert_at && g.last_loop_entry_at
                ? ordered_json(seconds_of(*g.last_loop_entry_at - *g.first_get_next_ca_cert_at))
                : ordered_json(nullptr);
        j["first_404_at"] = time_or_null(g.first_404_at);
        j["first_404_days_before_ca_expiry"] =
            g.first_404_at ? ordered_json(days_before(g.ca.not_after, *g.first_404_at))
                           : ordered_json(nullptr);
        j["last_404_at"] = time_or_null(g.last_404_at);
        j["clients_entered_loop"] = g.clients_entered_loop;
        j["clients_hit_404"] = g.clients_hit_404;
        j["max_404_window_days"] = g.max_404_window_days;
        j["mean_404_window_days"] = g.mean_404_window_days;
        j["get_next_ca_cert_requests"] = g.get_next_ca_cert_requests;
        j["responses_404"] = g.responses_404;
        j["peak_attempts_per_minute"] = g.peak_attempts_per_minute;
        j["peak_minute_at"] = time_or_null(g.peak_minute_at);
        j["deaf_seconds"] = static_cast<double>(g.deaf_ms) / 1000.0;
        j["enrollments_failed"] = g.enrollments_failed;
        j["clients_outage"] = g.clients_outage;
        out.push_back(j);
    }
    return out;
}

}  // namespace

std::string generations_text(const sim_result& r) {
    std::string o;
    if (r.generations.size() <= 1)
        return o;
    o += fmt::format("  Per CA generation ({} in the horizon; the verdict covers all):\n",
                     r.generations.size());
    for (const auto& g : r.generations) {
        o += fmt::format("    Generation {} ({} .. {}){}: {}", g.number,
                         timers::to_iso8601(g.ca.not_before).substr(0, 10),
                         timers::to_iso8601(g.ca.not_after).substr(0, 10),
                         g.complete ? "" : " (the horizon ends before its expiry)",
                         to_string(g.outcome));
        if (g.shadow_generated_at)
            o += fmt::format(", next CA generated {}", timers::to_iso8601(*g.shadow_generated_at));
        o += ".\n";
        if (g.first_get_next_ca_cert_at && g.last_loop_entry_at) {
            const double spread = seconds_of(*g.last_loop_entry_at - *g.first_get_next_ca_cert_at);
            o += fmt::format(
                "      {} clients asked for the next CA from {} ({:.1f} days before expiry){}.\n",
                with_commas(g.clients_entered_loop),
                timers::to_iso8601(*g.first_get_next_ca_cert_at),
                days_before(g.ca.not_after, *g.first_get_next_ca_cert_at),
                spread < 3600 ? fmt::format(", all within {:.0f} s (phase-locked)", spread)
                : spread < 86400
                    ? fmt::format(", all within {:.1f} hours (phase-locked)", spread / 3600.0)
                    : fmt::format(" to {} ({:.1f} days later)",
                                  timers::to_iso8601(*g.last_loop_entry_at), spread / 86400.0));
        }
        if (g.first_404_at)
            o += fmt::format(
                "      404: {} clients, {} .. {}, window mean {:.1f} days, longest {:.1f} days.\n",
                with_commas(g.clients_hit_404), timers::to_iso8601(*g.first_404_at),
                g.last_404_at ? timers::to_iso8601(*g.last_404_at) : std::string{"-"},
                g.mean_404_window_days, g.max_404_window_days);
        o += fmt::format(
            "      Peak {} attempts/minute{}, deaf {:.1f} hours, {} failed enrollment attempts, {} "
            "clients in outage.\n",
            with_commas(g.peak_attempts_per_minute),
            g.peak_minute_at ? fmt::format(" ({})", timers::to_iso8601(*g.peak_minute_at))
                             : std::string{},
            static_cast<double>(g.deaf_ms) / 3.6e6, with_commas(g.enrollments_failed),
            with_commas(g.clients_outage));
    }
    return o;
}

std::string summary_json(const scenario& sc, const sim_result& r, const report_options& o) {
    ordered_json j;
    j["verdict"] = std::string{to_string(r.outcome)};
    j["scenario"] = sc.name.empty() ? sc.path : sc.name;
    if (!sc.run_label.empty())
        j["run"] = sc.run_label;
    if (sc.sweep_point)
        j["sweep_point"] = {{"key", sc.sweep_point->first}, {"value", sc.sweep_point->second}};
    j["engine"] = std::string{to_string(r.engine)};
    j["seed"] = sc.seed;
    j["time_step_ms"] = sc.time_step.count();
    j["start"] = timers::to_iso8601(r.start);
    j["end"] = timers::to_iso8601(r.end);
    j["ca_not_after"] = timers::to_iso8601(r.ca.not_after);
    j["shadow_generated_at"] = time_or_null(r.shadow_generated_at);
    j["ra_shadow_at"] = time_or_null(r.ra_shadow_at);
    j["first_get_next_ca_cert_at"] = time_or_null(r.first_get_next_ca_cert_at);
    j["first_404_at"] = time_or_null(r.first_404_at);
    j["first_404_days_before_ca_expiry"] = r.first_404_days_before_ca_expiry
                                               ? ordered_json(*r.first_404_days_before_ca_expiry)
                                               : ordered_json(nullptr);
    j["last_404_at"] = time_or_null(r.last_404_at);
    j["clients"] = r.clients;
    j["clients_hit_404"] = r.clients_hit_404;
    j["windows_404"] = r.windows_404;
    j["max_404_window_days"] = r.max_404_window_days;
    j["mean_404_window_days"] = r.mean_404_window_days;
    j["get_next_ca_cert_requests"] = r.totals.get_next_ca_cert_requests;
    j["responses_404"] = r.totals.responses_404;
    j["connections_accepted"] = r.totals.connections_accepted;
    j["connections_dropped_max_connections"] = r.totals.connections_dropped_max_connections;
    j["connections_ignored_deaf"] = r.totals.connections_ignored_deaf;
    j["deaf_seconds"] = static_cast<double>(r.totals.deaf_ms) / 1000.0;
    j["peak_attempts_per_minute"] = r.peak_attempts_per_minute;
    j["peak_minute_at"] = time_or_null(r.peak_minute_at);
    j["throttle_per_minute"] = 80;
    j["max_connections"] = sc.front().http.max_connections;
    j["enrollment_attempts"] = r.totals.enrollment_attempts;
    j["enrollments_ok"] = r.totals.enrollments_ok;
    j["enrollments_failed"] = r.totals.enrollments_failed;
    j["clients_outage"] = r.clients_outage;
    j["peak_clients_in_shadow_loop"] = r.totals.peak_clients_in_shadow_loop;
    j["events"] = r.events;
    j["peak_cohorts"] = r.peak_cohorts;
    j["engine_memory_bytes"] = r.memory_bytes;
    {
        ordered_json cf;
        cf["verdict"] = std::string{timers::to_string(r.closed_form.verdict)};
        double first_days = 0;
        double max_window = 0;
        double min_safe = 0;
        double rec = 0;
        for (const auto& t : r.closed_form.trustpoints) {
            first_days = std::max(first_days, t.first_get_next_ca_cert_days_before_ca_expiry);
            max_window = std::max(max_window, t.max_404_window_days);
            min_safe = std::max(min_safe, t.min_safe_overlap_days);
            rec = std::max(rec, t.recommended_overlap_days);
        }
        cf["first_get_next_ca_cert_days_before_ca_expiry"] = first_days;
        cf["max_404_window_days"] = max_window;
        cf["min_safe_overlap_days"] = min_safe;
        cf["recommended_overlap_days"] = rec;
        j["closed_form"] = cf;
    }
    j["generations"] = generations_json(r);
    if (r.change_set) {
        ordered_json c;
        c["settings"] = r.change_set->settings;
        c["verified_safe"] = r.change_set->verified;
        c["rerun_verdict"] =
            r.change_set->rerun_outcome
                ? ordered_json(std::string{to_string(*r.change_set->rerun_outcome)})
                : ordered_json(nullptr);
        c["rerun_generations"] = r.change_set->rerun_generations;
        c["cannot_fix"] = r.change_set->cannot_fix;
        c["text"] = r.change_set->text;
        j["change_set"] = c;
    }
    j["recommendation"] = recommendation(sc, r);
    j["wall_seconds"] = o.deterministic ? 0.0 : o.wall_seconds;
    return j.dump(2) + "\n";
}

std::string daily_csv(const sim_result& r) {
    std::string out = "day,date";
    for (const auto& [name, _] : count_columns)
        out += fmt::format(",{}", name);
    out += ",deaf_seconds\n";
    for (std::size_t d = 0; d < r.daily.size(); ++d) {
        const auto& row = r.daily[d];
        const auto date =
            timers::to_iso8601(r.start + timers::days{static_cast<int>(d)}).substr(0, 10);
        out += fmt::format("{},{}", d, date);
        for (const auto& [_, member] : count_columns)
            out += fmt::format(",{}", row.*member);
        out += fmt::format(",{}\n", num(static_cast<double>(row.deaf_ms) / 1000.0));
    }
    return out;
}

std::string sweep_csv(const sweep_result& s) {
    std::string out = fmt::format(
        "{},verdict,clients,clients_hit_404,mean_404_window_days,max_404_window_days,"
        "first_404_days_before_ca_expiry,peak_attempts_per_minute,deaf_seconds,"
        "enrollments_failed,clients_outage\n",
        s.key);
    for (const auto& p : s.points) {
        const auto& r = p.result;
        out += fmt::format(
            "{},{},{},{},{:.2f},{:.2f},{},{},{},{},{}\n", p.value, to_string(r.outcome), r.clients,
            r.clients_hit_404, r.mean_404_window_days, r.max_404_window_days,
            r.first_404_days_before_ca_expiry
                ? fmt::format("{:.2f}", *r.first_404_days_before_ca_expiry)
                : std::string{},
            r.peak_attempts_per_minute, num(static_cast<double>(r.totals.deaf_ms) / 1000.0),
            r.totals.enrollments_failed, r.clients_outage);
    }
    return out;
}

std::string plot_daily_svg(const sim_result& r) {
    const auto [a, b] = day_range(r);
    chart c;
    c.id = "plot-daily";
    c.title = "Requests and outcomes per day";
    c.x_label = "day since the CA was created";
    c.y_label = "per day";
    c.log_y = true;
    series req{"GetNextCACert attempts", "#1f77b4", {}};
    series nf{"404 Not Found", "#d62728", {}};
    series ok{"200 (next CA)", "#2ca02c", {}};
    series deaf{"ignored while deaf", "#ff7f0e", {}, true};
    series ef{"enrollments failed", "#9467bd", {}};
    for (std::size_t d = a; d < b; ++d) {
        const auto& row = r.daily[d];
        c.x.push_back(static_cast<double>(d));
        req.y.push_back(static_cast<double>(row.get_next_ca_cert_requests));
        nf.y.push_back(static_cast<double>(row.responses_404));
        ok.y.push_back(static_cast<double>(row.responses_200));
        deaf.y.push_back(static_cast<double>(row.connections_ignored_deaf));
        ef.y.push_back(static_cast<double>(row.enrollments_failed));
    }
    c.lines = {req, nf, ok, deaf, ef};
    if (r.shadow_generated_at)
        c.vline =
            std::pair{timers::to_days(*r.shadow_generated_at - r.start), std::string{"shadow CA"}};
    return render(c);
}

std::string plot_loop_svg(const sim_result& r) {
    const auto [a, b] = day_range(r);
    chart c;
    c.id = "plot-loop";
    c.title = "Clients in the GetNextCACert loop (GET_NEW_CA_CERT)";
    c.x_label = "day since the CA was created";
    c.y_label = "clients";
    series loop{"clients looping (peak of the day)", "#d62728", {}};
    series outage{"clients without a valid certificate (cumulative)", "#000000", {}, true};
    std::uint64_t cum = 0;
    for (std::size_t d = 0; d < b; ++d) {
        cum += r.daily[d].clients_outage;
        if (d < a)
            continue;
        c.x.push_back(static_cast<double>(d));
        loop.y.push_back(static_cast<double>(r.daily[d].peak_clients_in_shadow_loop));
        outage.y.push_back(static_cast<double>(cum));
    }
    c.lines = {loop, outage};
    c.vline = std::pair{timers::to_days(r.ca.not_after - r.start), std::string{"CA expires"}};
    return render(c);
}

std::string plot_worst_day_svg(const scenario& sc, const sim_result& r) {
    chart c;
    c.id = "plot-worst-day";
    c.title =
        r.worst_day >= 0
            ? fmt::format("Connection attempts per minute on the busiest day ({}, day {})",
                          timers::to_iso8601(r.start + timers::days{r.worst_day}).substr(0, 10),
                          r.worst_day)
            : std::string{"Connection attempts per minute (no traffic)"};
    c.x_label = "minute of the day (UTC)";
    c.y_label = "connections per minute";
    series att{"attempts", "#1f77b4", {}};
    series acc{"accepted", "#2ca02c", {}};
    double peak = 0;
    for (std::size_t m = 0; m < r.worst_day_attempts_per_minute.size(); ++m) {
        c.x.push_back(static_cast<double>(m));
        att.y.push_back(r.worst_day_attempts_per_minute[m]);
        acc.y.push_back(r.worst_day_accepted_per_minute[m]);
        peak = std::max(peak, att.y.back());
    }
    c.lines = {att, acc};
    if (sc.throttle && sc.limiter_enabled)
        c.hline = std::pair{80.0, std::string{"throttle: 80 connections/minute"}};
    c.log_y = peak > 800;
    return render(c);
}

std::string plot_sweep_svg(const sweep_result& s) {
    chart c;
    c.id = "plot-sweep";
    c.title = fmt::format("Sweep of {}: share of clients hitting 404 and in outage", s.key);
    c.x_label = s.key;
    c.y_label = "% of clients";
    series hit{"clients that got 404 (%)", "#d62728", {}};
    series out{"clients in outage (%)", "#000000", {}, true};
    std::vector<std::pair<double, std::size_t>> order;
    for (std::size_t i = 0; i < s.points.size(); ++i) {
        double v = static_cast<double>(i);
        try {
            v = std::stod(s.points[i].value);
        } catch (...) {
        }
        order.emplace_back(v, i);
    }
    std::sort(order.begin(), order.end());
    for (const auto& [v, i] : order) {
        const auto& r = s.points[i].result;
        const double n = std::max<double>(1, static_cast<double>(r.clients));
        c.x.push_back(v);
        hit.y.push_back(100.0 * static_cast<double>(r.clients_hit_404) / n);
        out.y.push_back(100.0 * static_cast<double>(r.clients_outage) / n);
    }
    c.lines = {hit, out};
    if (s.analysis.recommended)
        c.vline = std::pair{order.empty() ? 0.0 : [&] {
            try {
                return std::stod(s.points[*s.analysis.recommended].value);
            } catch (...) {
                return 0.0;
            }
        }(), fmt::format("recommended {}", s.points[*s.analysis.recommended].value)};
    return render(c);
}

std::string verdict_text(const scenario& sc, const sim_result& r, const std::string& out_dir) {
    std::string o;
    const auto pct = [&](std::uint64_t n) {
        return r.clients == 0 ? 0.0
                              : 100.0 * static_cast<double>(n) / static_cast<double>(r.clients);
    };
    switch (r.outcome) {
        case verdict::safe:
            o += fmt::format(
                "Verdict: SAFE. None of the {} clients asked for the next CA "
                "certificate before the server had it.\n",
                with_commas(r.clients));
            break;
        case verdict::storm:
            o += fmt::format(
                "Verdict: STORM. {} of {} clients ({:.1f} %) got GetNextCACert "
                "404 Not Found.\n",
                with_commas(r.clients_hit_404), with_commas(r.clients), pct(r.clients_hit_404));
            break;
        case verdict::outage:
            o += fmt::format(
                "Verdict: OUTAGE. {} of {} clients ({:.1f} %) ended without a valid "
                "certificate; {} got GetNextCACert 404 Not Found.\n",
                with_commas(r.clients_outage), with_commas(r.clients), pct(r.clients_outage),
                with_commas(r.clients_hit_404));
            break;
    }
    o += fmt::format("  CA certificate: {} .. {}", timers::to_iso8601(r.ca.not_before),
                     timers::to_iso8601(r.ca.not_after));
    if (r.shadow_generated_at) {
        o += fmt::format(
            "; shadow CA generated {} ({} days before expiry)",
            timers::to_iso8601(*r.shadow_generated_at),
            num(std::round(days_before(r.ca.not_after, *r.shadow_generated_at) * 10) / 10));
    } else {
        o += "; no shadow CA (no auto-rollover)";
    }
    o += ".\n";
    if (sc.ra) {
        o +=
            r.ra_shadow_at
                ? fmt::format("  The RA had the shadow CA from {} (it first asked the CA on {}).\n",
                              timers::to_iso8601(*r.ra_shadow_at),
                              r.ra_first_get_next_ca_cert_at
                                  ? timers::to_iso8601(*r.ra_first_get_next_ca_cert_at)
                                  : std::string{"-"})
                : std::string{"  The RA never got the shadow CA.\n"};
    }
    if (r.first_404_at) {
        o += fmt::format("  First 404: {}, {:.1f} days before the CA expires; last 404: {}.\n",
                         timers::to_iso8601(*r.first_404_at),
                         r.first_404_days_before_ca_expiry.value_or(0),
                         r.last_404_at ? timers::to_iso8601(*r.last_404_at) : std::string{"-"});
        o += fmt::format(
            "  404 window per client: mean {:.1f} days, longest {:.1f} days; {} "
            "GetNextCACert attempts, {} answered 404.\n",
            r.mean_404_window_days, r.max_404_window_days,
            with_commas(r.totals.get_next_ca_cert_requests), with_commas(r.totals.responses_404));
    }
    const std::string peak_at = r.peak_minute_at
                                    ? fmt::format(" ({})", timers::to_iso8601(*r.peak_minute_at))
                                    : std::string{};
    if (!sc.limiter_enabled) {
        // [limiter] enabled = false: no throttle, no max-connections to speak of (issue 9).
        o += fmt::format(
            "  Peak load: {} connection attempts in one minute{}; no HTTP limits modelled "
            "([limiter] enabled = false).\n",
            with_commas(r.peak_attempts_per_minute), peak_at);
    } else {
        o += fmt::format(
            "  Peak load: {} connection attempts in one minute{}{}; the server was deaf for "
            "{:.1f} hours in total ({} connections ignored, {} dropped at max-connections "
            "{}).\n",
            with_commas(r.peak_attempts_per_minute), peak_at,
            sc.throttle ? " against the 80/minute throttle" : " (throttle off)",
            static_cast<double>(r.totals.deaf_ms) / 3.6e6,
            with_commas(r.totals.connections_ignored_deaf),
            with_commas(r.totals.connections_dropped_max_connections),
            sc.front().http.max_connections);
    }
    o += fmt::format(
        "  Enrollments: {} succeeded, {} attempts failed because the server did not "
        "answer or refused.\n",
        with_commas(r.totals.enrollments_ok), with_commas(r.totals.enrollments_failed));
    o += fmt::format("  Clients with an invalid certificate (outage): {}.\n",
                     with_commas(r.clients_outage));
    o += fmt::format("  Recommended: {}.\n", recommendation(sc, r));
    o += fmt::format("  Engine: {} ({} events). Report: {}\n", to_string(r.engine),
                     with_commas(r.events),
                     (std::filesystem::path{out_dir} / "report.html").lexically_normal().string());
    return o;
}

std::string sweep_table(const sweep_result& s) {
    const auto& a = s.analysis;
    std::string o =
        fmt::format("{:>14}  {:>7}  {:>14}  {:>10}  {:>10}  {:>12}  {:>10}\n", s.key, "verdict",
                    "clients 404", "mean days", "max days", "peak/minute", "outage");
    for (std::size_t i = 0; i < s.points.size(); ++i) {
        const auto& r = s.points[i].result;
        std::string mark;
        if (a.recommended && *a.recommended == i)
            mark = "  <- recommended";
        else if (a.boundary && *a.boundary == i)
            mark = "  <- least change that is safe";
        o += fmt::format("{:>14}  {:>7}  {:>14}  {:>10.1f}  {:>10.1f}  {:>12}  {:>10}{}\n",
                         s.points[i].value, to_string(r.outcome), with_commas(r.clients_hit_404),
                         r.mean_404_window_days, r.max_404_window_days,
                         with_commas(r.peak_attempts_per_minute), with_commas(r.clients_outage),
                         mark);
    }
    o += describe(a, s);
    if (!a.recommended) {
        // Model §1 rule 8: behind an RA, clients get the shadow only once the RA has fetched it.
        const auto ra_late = std::any_of(s.points.begin(), s.points.end(), [](const auto& p) {
            const auto& r = p.result;
            return r.ra_shadow_at && r.shadow_generated_at &&
                   *r.ra_shadow_at > *r.shadow_generated_at;
        });
        if (ra_late) {
            o += "The RA fetches the shadow CA only on its own SHADOW timer, after the CA made it: "
                 "add a manual `rollover` of the RA when the CA's shadow exists (the seed's fix, "
                 "see seed002-fix.toml).\n";
        }
    }
    return o;
}

std::string report_html(const scenario& sc, const sim_result& r,
                        const std::optional<sweep_result>& sweep, const report_options& o) {
    std::string h;
    h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
    h += fmt::format("<title>pkisim simulate: {}</title>\n",
                     html_escape(sc.name.empty() ? sc.path : sc.name));
    h += "<style>body{font-family:sans-serif;max-width:960px;margin:1em auto;padding:0 1em;"
         "color:#222}h1{font-size:1.5em}pre{background:#f5f5f5;padding:.6em;overflow:auto;"
         "font-size:.85em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:"
         "2px 8px;text-align:left}.verdict{font-size:1.1em;padding:.6em;border-left:6px solid "
         "#888}.storm{border-color:#d62728}.outage{border-color:#000}.safe{border-color:#2ca02c}"
         ".verdict "
         "pre{white-space:pre-wrap}svg{max-width:100%;height:auto}</style>\n</head>\n<body>\n";
    h += fmt::format("<h1>pkisim simulate: {}</h1>\n",
                     html_escape(sc.name.empty() ? sc.path : sc.name));
    if (!sc.description.empty())
        h += fmt::format("<p>{}</p>\n", html_escape(sc.description));
    if (!sc.run_label.empty())
        h += fmt::format(
            "<p id=\"run-label\"><strong>Verdict and plots of the run with {}.</strong></p>\n",
            html_escape(sc.run_label));
    h += fmt::format("<div id=\"verdict\" class=\"verdict {}\"><pre>{}</pre></div>\n",
                     to_string(r.outcome),
                     html_escape(verdict_text(sc, r, ".") + generations_text(r)));
    h += sc.run_label.empty() ? std::string{"<h2>Plots</h2>\n"}
                              : fmt::format("<h2>Plots ({})</h2>\n", html_escape(sc.run_label));
    h += plot_daily_svg(r);
    h += plot_loop_svg(r);
    h += plot_worst_day_svg(sc, r);
    if (sweep) {
        h += "<h2>Sweep</h2>\n";
        h += plot_sweep_svg(*sweep);
        h += fmt::format("<pre>{}</pre>\n", html_escape(sweep_table(*sweep)));
    }
    h += "<h2>Summary</h2>\n<pre>" + html_escape(summary_json(sc, r, report_options{true, 0})) +
         "</pre>\n";
    h += "<h2>Closed form (pkisim check)</h2>\n<ul>\n";
    for (const auto& f : r.closed_form.findings)
        h += "<li>" + html_escape(f) + "</li>\n";
    for (const auto& t : r.closed_form.trustpoints)
        for (const auto& f : t.findings)
            h += "<li>" + html_escape(t.name) + ": " + html_escape(f) + "</li>\n";
    h += "</ul>\n<h2>Configuration</h2>\n";
    h += fmt::format(
        "<p>Scenario <code>{}</code>: start {}, horizon {}, seed {}, time step {}, latency {}, "
        "shadow retry {}, connect timeout {}, retry jitter {}, clock skew ±{}, service "
        "GetNextCACert {}, enrollment {}, throttle window {}.</p>\n",
        html_escape(sc.path), timers::to_iso8601(sc.start), format_duration(sc.effective_horizon()),
        sc.seed, format_duration(sc.time_step), format_duration(sc.latency),
        format_duration(sc.client.shadow_retry_interval),
        format_duration(sc.client.connect_timeout), format_duration(sc.retry_jitter),
        format_duration(sc.clock_skew), format_duration(sc.service_get_next_ca_cert),
        format_duration(sc.service_enrollment), timers::to_string(sc.throttle_window));
    h += "<table><tr><th>group</th><th>clients</th><th>pattern</th><th>server</th>"
         "<th>trustpoint</th></tr>\n";
    for (const auto& g : sc.groups) {
        h += fmt::format(
            "<tr><td>{}</td><td>{}</td><td>{} at {} window {}</td><td>{}</td><td>{} auto-enroll "
            "{}</td></tr>\n",
            html_escape(g.name), g.count, to_string(g.pattern), format_duration(g.at),
            format_duration(g.window), g.via_ra ? "RA" : "CA", html_escape(g.trustpoint.name),
            g.trustpoint.auto_enroll ? fmt::format("{} %", g.trustpoint.auto_enroll_percent)
                                     : std::string{"off"});
    }
    h += "</table>\n";
    h += fmt::format("<h3>CA: {}</h3>\n<pre>{}</pre>\n", html_escape(sc.ca.config_path),
                     html_escape(sc.ca.config_text));
    if (sc.ra)
        h += fmt::format("<h3>RA: {}</h3>\n<pre>{}</pre>\n", html_escape(sc.ra->config_path),
                         html_escape(sc.ra->config_text));
    std::vector<std::string> shown;
    for (const auto& g : sc.groups) {
        if (std::find(shown.begin(), shown.end(), g.config_path) != shown.end())
            continue;
        shown.push_back(g.config_path);
        h += fmt::format("<h3>Clients: {}</h3>\n<pre>{}</pre>\n", html_escape(g.config_path),
                         html_escape(g.config_text));
    }
    h += fmt::format(
        "<p>Data: <a href=\"summary.json\">summary.json</a>, <a "
        "href=\"daily.csv\">daily.csv</a>. Engine {}, {} events{}.</p>\n",
        to_string(r.engine), r.events,
        o.deterministic ? std::string{} : fmt::format(", {:.2f} s", o.wall_seconds));
    h += "</body>\n</html>\n";
    return h;
}

tl::expected<void, std::string> write_report(const std::string& dir, const scenario& sc,
                                             const sim_result& r,
                                             const std::optional<sweep_result>& sweep,
                                             const report_options& o) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
        return tl::make_unexpected(fmt::format("{}: cannot create: {}", dir, ec.message()));
    auto write = [&](const std::string& name,
                     const std::string& content) -> tl::expected<void, std::string> {
        const auto path = (std::filesystem::path{dir} / name).string();
        std::ofstream out{path, std::ios::binary};
        out << content;
        if (!out)
            return tl::make_unexpected(fmt::format("{}: cannot write", path));
        return {};
    };
    // report.html shows no wall time unless asked, so that it stays byte-identical.
    const report_options page{true, 0};
    const std::pair<std::string, std::string> files[] = {
        {"summary.json", summary_json(sc, r, o)},
        {"daily.csv", daily_csv(r)},
        {"daily.svg", plot_daily_svg(r)},
        {"loop.svg", plot_loop_svg(r)},
        {"worst-day.svg", plot_worst_day_svg(sc, r)},
        {"report.html", report_html(sc, r, sweep, page)},
    };
    for (const auto& [name, content] : files)
        if (auto w = write(name, content); !w)
            return w;
    if (sweep) {
        if (auto w = write("sweep.svg", plot_sweep_svg(*sweep)); !w)
            return w;
        if (auto w = write("sweep.csv", sweep_csv(*sweep)); !w)
            return w;
    }
    return {};
}

}  // namespace pkisim::sim
