// Report writers: JSON (nlohmann, ordered keys), CSV, hand-written SVG, and one self-contained
// HTML page with the verdict, the lines to change and interactive dygraphs plots.
#include "pkisim/sim/report.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "pkisim/sim/clients_csv.hpp"
#include "pkisim/timers/timeline.hpp"

namespace pkisim::sim {

// dygraphs 2.2.1 (Debian libjs-dygraphs), embedded at build time by sim/CMakeLists.txt.
namespace embedded {
extern const unsigned char dygraph_js[];
extern const std::size_t dygraph_js_size;
extern const unsigned char dygraph_css[];
extern const std::size_t dygraph_css_size;
}  // namespace embedded

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

// SI-style axis numbers: 950, 1.2 k, 12 k, 1.2 M (issue 15: "0000000000" at 1 M clients).
std::string si(double v) {
    const double a = std::fabs(v);
    const auto trim = [](std::string s) {
        if (s.size() > 2 && s.ends_with(".0"))
            s.resize(s.size() - 2);
        return s;
    };
    if (a >= 1e9)
        return trim(fmt::format("{:.1f}", v / 1e9)) + " G";
    if (a >= 1e6)
        return trim(fmt::format("{:.1f}", v / 1e6)) + " M";
    if (a >= 1e3)
        return trim(fmt::format("{:.1f}", v / 1e3)) + " k";
    if (a > 0 && a < 10 && std::fabs(v - std::round(v)) > 1e-9)
        return trim(fmt::format("{:.1f}", v));
    return num(std::round(v));
}

std::string date_of(time_point t) { return timers::to_iso8601(t).substr(0, 10); }
// "2029-11-11 22:58 UTC"
std::string minute_of(time_point t) {
    const auto s = timers::to_iso8601(t);
    return s.substr(0, 10) + " " + s.substr(11, 5) + " UTC";
}
// One decimal with thousands separators: 3,423.8.
std::string days1(double d) {
    const double r = std::round(d * 10) / 10;
    const auto whole = static_cast<std::uint64_t>(std::fabs(std::trunc(r)));
    const int tenth = static_cast<int>(std::llround(std::fabs(r - std::trunc(r)) * 10)) % 10;
    std::string digits = fmt::format("{}", whole);
    std::string out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0)
            out += ',';
        out += digits[i];
    }
    return (r < 0 ? "-" : "") + out + "." + std::to_string(tenth);
}
std::string pct_of(std::uint64_t n, std::uint64_t of) {
    return of == 0 ? std::string{"0 %"}
                   : fmt::format("{:.1f} %", 100.0 * static_cast<double>(n) /
                                                 static_cast<double>(of));
}
double hours_of_ms(std::int64_t ms) { return static_cast<double>(ms) / 3.6e6; }
std::int64_t epoch_ms(time_point t) { return t.time_since_epoch().count(); }

std::string verdict_word(verdict v) {
    switch (v) {
        case verdict::safe:
            return "SAFE";
        case verdict::storm:
            return "STORM";
        case verdict::outage:
            return "OUTAGE";
    }
    return "?";
}

// ---- The run's story: events and shaded spans ------------------------------------------------

struct event_mark {
    time_point at;
    std::string id;  // DOM id suffix: ca-created, first-shadow-point, first-404, ...
    std::string label;
    std::string color;
};

struct span_mark {
    time_point from;
    time_point to;
    std::string id;
    std::string label;
    std::string color;  // rgba
};

struct run_story {
    std::vector<event_mark> events;  // in time order
    std::vector<span_mark> spans;
};

// The CA generations after the first one, by the same rules as the simulator (timers/).
std::vector<timers::validity> later_generations(const scenario* sc, const sim_result& r) {
    if (sc == nullptr)
        return {};
    std::vector<timers::validity> out;
    timers::validity cur = r.ca;
    for (int i = 0; i < 8; ++i) {
        const auto s = timers::shadow_generation_time(cur.not_after, sc->ca.server.auto_rollover);
        if (!s || *s >= cur.not_after)
            break;
        auto next = timers::shadow_ca_validity(cur.not_after, sc->ca.server.ca_lifetime);
        if (next.not_before > r.end)
            break;
        out.push_back(next);
        cur = next;
    }
    return out;
}

// `sc` may be null (the plot functions that take only the result): no later generations then.
run_story story_of(const scenario* sc, const sim_result& r) {
    run_story s;
    s.events.push_back({r.ca.not_before, "ca-created", "CA created", "#555555"});
    if (r.first_get_next_ca_cert_at)
        s.events.push_back({*r.first_get_next_ca_cert_at, "first-shadow-point",
                            "first client SHADOW point", "#1f77b4"});
    if (r.first_404_at)
        s.events.push_back({*r.first_404_at, "first-404", "first 404", "#d62728"});
    if (r.ra_first_get_next_ca_cert_at)
        s.events.push_back(
            {*r.ra_first_get_next_ca_cert_at, "ra-asks", "RA asks for the shadow", "#8c564b"});
    if (r.shadow_generated_at)
        s.events.push_back(
            {*r.shadow_generated_at, "shadow-generated", "shadow CA generated", "#2ca02c"});
    if (r.ra_shadow_at)
        s.events.push_back({*r.ra_shadow_at, "ra-learns", "RA has the shadow", "#17becf"});
    s.events.push_back({r.ca.not_after, "ca-expiry",
                        r.shadow_generated_at ? "switchover (CA expiry)" : "CA expiry",
                        "#000000"});
    int gen = 2;
    for (const auto& g : later_generations(sc, r)) {
        const auto shadow =
            timers::shadow_generation_time(g.not_after, sc->ca.server.auto_rollover);
        if (g.not_before > r.ca.not_after && g.not_before <= r.end)
            s.events.push_back({g.not_before, fmt::format("generation-{}", gen),
                                fmt::format("generation {} active", gen), "#7f7f7f"});
        if (shadow && *shadow <= r.end)
            s.events.push_back({*shadow, fmt::format("shadow-{}", gen + 1),
                                fmt::format("shadow of generation {}", gen + 1), "#7f7f7f"});
        ++gen;
    }
    std::stable_sort(s.events.begin(), s.events.end(),
                     [](const auto& a, const auto& b) { return a.at < b.at; });
    if (r.first_404_at)
        s.spans.push_back({*r.first_404_at, r.last_404_at ? *r.last_404_at : r.end, "window-404",
                           "404 window", "rgba(214,39,40,0.10)"});
    // Deaf periods, by day (daily.csv's resolution): consecutive days with deaf time merged.
    for (std::size_t d = 0; d < r.daily.size();) {
        if (r.daily[d].deaf_ms <= 0) {
            ++d;
            continue;
        }
        std::size_t e = d;
        while (e < r.daily.size() && r.daily[e].deaf_ms > 0)
            ++e;
        s.spans.push_back({r.start + timers::days{static_cast<int>(d)},
                           r.start + timers::days{static_cast<int>(e)},
                           fmt::format("deaf-{}", d), "server deaf", "rgba(255,127,14,0.22)"});
        d = e;
    }
    return s;
}

// The days worth showing: from 20 days before the first event after the CA's creation (so a
// safe run shows its shadow) to a month after CA expiry.
std::pair<std::size_t, std::size_t> day_range(const sim_result& r) {
    const std::size_t n = r.daily.size();
    if (n == 0)
        return {0, 0};
    std::optional<time_point> first;
    for (const auto& t : {r.first_get_next_ca_cert_at, r.first_404_at, r.shadow_generated_at,
                          r.ra_first_get_next_ca_cert_at, r.ra_shadow_at})
        if (t && (!first || *t < *first))
            first = t;
    if (!first)
        return {0, n};
    const auto from = static_cast<std::size_t>(
        std::max(0.0, std::floor(timers::to_days(*first - r.start)) - 20));
    const auto ca_end = static_cast<std::size_t>(
        std::max(0.0, timers::to_days(r.ca.not_after - r.start)));
    std::size_t last = std::min(n, ca_end + 31);
    if (last <= from)
        last = n;
    return {std::min(from, n - 1), last};
}

// ---- Charts: one description, drawn twice (static SVG and interactive dygraphs) -------------

struct series {
    std::string name;
    std::string color;
    std::vector<double> y;
    bool dashed = false;
};

enum class x_kind { day, hours, number };

struct chart {
    std::string id;
    std::string title;
    std::string x_label;
    std::string y_label;
    x_kind xk = x_kind::day;
    std::vector<double> x;  // day index since r.start (day), hours of the day, or a value
    std::vector<series> lines;
    std::optional<std::pair<double, std::string>> hline;  // value, label
    std::vector<std::pair<double, event_mark>> events;    // x, what
    std::vector<std::tuple<double, double, span_mark>> spans;
    bool log_y = false;
    bool points = false;  // a marker on every value (sparse series, sweep points)
    // day charts: the x origin and CA expiry (for dates and the days-before-expiry scale)
    time_point origin{};
    double expiry_day = 0;
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

double stroke_width(std::size_t series_index) {
    return std::max(1.2, 4.2 - 0.6 * static_cast<double>(series_index));
}

void add_story(chart& c, const run_story& s) {
    for (const auto& e : s.events)
        c.events.emplace_back(timers::to_days(e.at - c.origin), e);
    for (const auto& sp : s.spans)
        c.spans.emplace_back(timers::to_days(sp.from - c.origin), timers::to_days(sp.to - c.origin),
                             sp);
}

std::string render(const chart& c) {
    const double w = 900;
    const double h = 420;
    const double ml = 70;
    const double mr = 20;
    const double mt = c.xk == x_kind::day ? 64 : 40;
    const double mb = 84;
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
    o += fmt::format("<text x=\"{}\" y=\"20\" font-size=\"15\" font-weight=\"bold\">{}</text>\n",
                     ml, html_escape(c.title));
    // Shaded spans under everything else.
    for (const auto& [a, b, sp] : c.spans) {
        const double x0 = std::clamp(px(a), ml, ml + pw);
        const double x1 = std::clamp(px(b), ml, ml + pw);
        if (x1 <= x0 + 0.1 && !(b > a && x0 < ml + pw && x1 > ml))
            continue;
        // Deaf periods are a strip along the bottom, so that they do not hide the 404 window.
        const bool strip = sp.id.starts_with("deaf");
        const double sh = strip ? std::min(14.0, ph * 0.06) : ph;
        o += fmt::format(
            "<rect class=\"span {}\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" "
            "fill=\"{}\"><title>{}</title></rect>\n",
            strip ? "deaf" : sp.id, x0, mt + ph - sh, std::max(1.0, x1 - x0), sh,
            strip ? "rgba(255,127,14,0.85)" : sp.color, html_escape(sp.label));
    }
    // Y grid.
    if (c.log_y) {
        for (int e = 0; e <= static_cast<int>(ymax); ++e) {
            const double v = std::pow(10.0, e) - 1;
            const double y = mt + ph - e / ymax * ph;
            o += fmt::format(
                "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#dddddd\"/>"
                "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n",
                ml, y, ml + pw, y, ml - 6, y + 4, e == 0 ? std::string{"0"} : si(v + 1));
        }
    } else {
        const double st = nice_step(ymax, 5);
        for (double v = 0; v <= ymax + st / 2; v += st) {
            const double y = py(v);
            o += fmt::format(
                "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#dddddd\"/>"
                "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n",
                ml, y, ml + pw, y, ml - 6, y + 4, si(v));
        }
    }
    // X ticks: dates below and days before CA expiry above (day charts), else numbers.
    const double xst = c.xk == x_kind::hours ? 2 : nice_step(xmax - xmin, 8);
    for (double v = std::ceil(xmin / xst) * xst; v <= xmax + 1e-9; v += xst) {
        const double x = px(v);
        std::string label;
        if (c.xk == x_kind::day)
            label = date_of(c.origin + timers::from_days(v));
        else if (c.xk == x_kind::hours)
            label = fmt::format("{:02}:00", static_cast<int>(v));
        else
            label = num(v);
        o += fmt::format(
            "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#eeeeee\"/>"
            "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n",
            x, mt, x, mt + ph, x, mt + ph + 16, label);
    }
    if (c.xk == x_kind::day) {
        // Second scale: days before CA expiry, ticks on multiples of the step from expiry.
        const double st = nice_step(xmax - xmin, 8);
        const double first = c.expiry_day - std::floor((c.expiry_day - xmin) / st) * st;
        for (double v = first; v <= xmax + 1e-9; v += st) {
            const double x = px(v);
            const double before = std::round(c.expiry_day - v);
            o += fmt::format(
                "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#444\"/>"
                "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"#444\">{}</text>\n",
                x, mt - 4, x, mt, x, mt - 7,
                before == 0 ? std::string{"expiry"}
                            : before > 0 ? num(before) : "+" + num(-before));
        }
        o += fmt::format(
            "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" fill=\"#444\" font-size=\"11\">"
            "days before CA expiry</text>\n",
            ml + pw, mt - 22);
    }
    o += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444444\"/>\n",
        ml, mt, pw, ph);
    o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n",
                     ml + pw / 2, mt + ph + 34, html_escape(c.x_label));
    o += fmt::format(
        "<text x=\"14\" y=\"{:.1f}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {:.1f})\">{}"
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
    // Events: a dashed line and a label; a label goes to the first of six rows where it does
    // not overlap the labels already there.
    std::vector<std::pair<double, double>> taken;  // row -> occupied [from, to] ranges, flat
    std::vector<int> taken_row;
    for (const auto& [ex, e] : c.events) {
        if (ex < xmin || ex > xmax)
            continue;
        const double x = px(ex);
        const bool right_half = x > ml + pw * 0.7;
        const double tw = 6.2 * static_cast<double>(e.label.size()) + 6;
        const double a = right_half ? x - tw : x;
        const double b = right_half ? x : x + tw;
        int row = 0;
        for (; row < 6; ++row) {
            bool clash = false;
            for (std::size_t k = 0; k < taken.size(); ++k)
                if (taken_row[k] == row && a < taken[k].second && b > taken[k].first)
                    clash = true;
            if (!clash)
                break;
        }
        row = std::min(row, 5);
        taken.emplace_back(a, b);
        taken_row.push_back(row);
        const double ty = mt + 13 + 13 * row;
        o += fmt::format(
            "<g class=\"event ev-{}\"><line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" "
            "y2=\"{:.1f}\" stroke=\"{}\" stroke-width=\"1.2\" stroke-dasharray=\"4 3\"/>"
            "<text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"{}\" font-size=\"11\" text-anchor=\"{}\" "
            "paint-order=\"stroke\" stroke=\"#ffffff\" stroke-width=\"3\">{}</text></g>\n",
            e.id, x, mt, x, mt + ph, e.color, right_half ? x - 3 : x + 3, ty, e.color,
            right_half ? "end" : "start", html_escape(e.label));
    }
    // The series, the sparse ones last so that they stay visible.
    std::vector<std::size_t> order(c.lines.size());
    for (std::size_t i = 0; i < order.size(); ++i)
        order[i] = i;
    auto nonzero = [&](const series& s) {
        return std::count_if(s.y.begin(), s.y.end(), [](double v) { return v > 0; });
    };
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return nonzero(c.lines[a]) > nonzero(c.lines[b]);
    });
    for (const std::size_t li : order) {
        const auto& s = c.lines[li];
        std::string pts;
        const std::size_t n = std::min(s.y.size(), c.x.size());
        pts.reserve(n * 16);
        for (std::size_t i = 0; i < n; ++i)
            pts += fmt::format("{:.1f},{:.1f} ", px(c.x[i]), py(s.y[i]));
        // Earlier series are drawn wider, so that equal series (attempts = 200 = enrollments in a
        // safe run) show as layered lines instead of the last one hiding the others.
        o += fmt::format(
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"{:.1f}\"{} points=\"{}\"/>\n",
            s.color, stroke_width(li), s.dashed ? " stroke-dasharray=\"5 3\"" : "", pts);
        // A series with few non-zero values is drawn with a marker on each, so that a handful
        // of days (the 200s at 3,000 clients) cannot hide under the other lines.
        const auto nz = nonzero(s);
        if (c.points || (nz > 0 && nz <= 60)) {
            for (std::size_t i = 0; i < n; ++i)
                if (s.y[i] > 0 || c.points)
                    o += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{}\" fill=\"{}\"/>",
                                     px(c.x[i]), py(s.y[i]), c.points ? 4 : 2.5, s.color);
            o += "\n";
        }
    }
    // Legend below the x label.
    double lx = ml;
    double ly = h - 26;
    for (const auto& s : c.lines) {
        const double wd = 30 + 6.6 * static_cast<double>(s.name.size());
        if (lx + wd > w - mr) {
            lx = ml;
            ly += 16;
        }
        o += fmt::format(
            "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
            "stroke-width=\"3\"{}/><text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n",
            lx, ly - 4, lx + 18, ly - 4, s.color, s.dashed ? " stroke-dasharray=\"5 3\"" : "",
            lx + 22, ly, html_escape(s.name));
        lx += wd;
    }
    o += "</svg>\n";
    return o;
}

// The same chart for dygraphs: labels, colours, rows [x, y1, y2, ...], events and spans.
ordered_json chart_json(const chart& c) {
    ordered_json j;
    j["id"] = c.id;
    j["title"] = c.title;
    j["xlabel"] = c.xk == x_kind::day
                      ? std::string{"date (UTC), and below it days before CA expiry (+: after)"}
                      : c.x_label;
    j["ylabel"] = c.y_label + (c.log_y ? " (log scale)" : "");
    j["x"] = c.xk == x_kind::day ? "date" : c.xk == x_kind::hours ? "hours" : "number";
    j["log"] = c.log_y;
    j["points"] = c.points;
    const auto xval = [&](double x) -> ordered_json {
        if (c.xk == x_kind::day)
            return epoch_ms(c.origin) + static_cast<std::int64_t>(std::llround(x * ms_per_day));
        return x;
    };
    ordered_json labels = ordered_json::array({c.x_label});
    ordered_json colors = ordered_json::array();
    ordered_json sparse = ordered_json::array();
    ordered_json widths = ordered_json::array();
    for (std::size_t i = 0; i < c.lines.size(); ++i) {
        const auto& s = c.lines[i];
        labels.push_back(s.name);
        colors.push_back(s.color);
        widths.push_back(stroke_width(i));
        const auto nz = std::count_if(s.y.begin(), s.y.end(), [](double v) { return v > 0; });
        sparse.push_back(nz > 0 && nz <= 60);
    }
    j["labels"] = labels;
    j["colors"] = colors;
    j["sparse"] = sparse;
    j["widths"] = widths;
    ordered_json rows = ordered_json::array();
    for (std::size_t i = 0; i < c.x.size(); ++i) {
        ordered_json row = ordered_json::array({xval(c.x[i])});
        for (const auto& s : c.lines) {
            const double v = i < s.y.size() ? s.y[i] : 0;
            // A log axis cannot show 0: leave a gap there.
            if (c.log_y && v <= 0)
                row.push_back(nullptr);
            else
                row.push_back(std::round(v * 1000) / 1000);
        }
        rows.push_back(std::move(row));
    }
    j["data"] = std::move(rows);
    if (c.hline)
        j["hline"] = {{"value", c.hline->first}, {"label", c.hline->second}};
    ordered_json ev = ordered_json::array();
    for (const auto& [x, e] : c.events)
        ev.push_back({{"x", xval(x)}, {"id", e.id}, {"label", e.label}, {"color", e.color},
                      {"when", minute_of(e.at)}});
    j["events"] = std::move(ev);
    ordered_json sp = ordered_json::array();
    for (const auto& [a, b, s] : c.spans)
        sp.push_back({{"from", xval(a)}, {"to", xval(b)}, {"label", s.label}, {"color", s.color}});
    j["spans"] = std::move(sp);
    if (c.xk == x_kind::day)
        j["expiry"] = xval(c.expiry_day);
    return j;
}

chart day_chart(const sim_result& r, std::string id, std::string title, std::string y_label) {
    chart c;
    c.id = std::move(id);
    c.title = std::move(title);
    c.x_label = "date (UTC)";
    c.y_label = std::move(y_label);
    c.origin = r.start;
    c.expiry_day = timers::to_days(r.ca.not_after - r.start);
    return c;
}

chart timeline_chart(const sim_result& r, const run_story& st) {
    chart c = day_chart(r, "plot-timeline", "Timeline of the run", "clients");
    series loop{"clients in the GetNextCACert loop (peak of the day)", "#d62728", {}};
    series first{"clients with their first 404 that day", "#ff7f0e", {}, true};
    series got{"clients that got the next CA that day", "#2ca02c", {}};
    for (std::size_t d = 0; d < r.daily.size(); ++d) {
        c.x.push_back(static_cast<double>(d));
        loop.y.push_back(static_cast<double>(r.daily[d].peak_clients_in_shadow_loop));
        first.y.push_back(static_cast<double>(r.daily[d].clients_first_404));
        got.y.push_back(static_cast<double>(r.daily[d].clients_got_next_ca));
    }
    c.lines = {loop, first, got};
    add_story(c, st);
    return c;
}

chart daily_chart(const sim_result& r, const run_story& st) {
    const auto [a, b] = day_range(r);
    chart c = day_chart(r, "plot-daily", "Requests and outcomes per day", "per day");
    c.log_y = true;
    series req{"GetNextCACert attempts", "#1f77b4", {}};
    series nf{"404 Not Found", "#d62728", {}};
    series ok{"200 (next CA)", "#2ca02c", {}};
    series deaf{"ignored while deaf", "#ff7f0e", {}, true};
    series drop{"dropped at max-connections", "#8c564b", {}, true};
    series eok{"enrollments ok", "#17becf", {}};
    series ef{"enrollments failed", "#9467bd", {}};
    for (std::size_t d = a; d < b; ++d) {
        const auto& row = r.daily[d];
        c.x.push_back(static_cast<double>(d));
        req.y.push_back(static_cast<double>(row.get_next_ca_cert_requests));
        nf.y.push_back(static_cast<double>(row.responses_404));
        ok.y.push_back(static_cast<double>(row.responses_200));
        deaf.y.push_back(static_cast<double>(row.connections_ignored_deaf));
        drop.y.push_back(static_cast<double>(row.connections_dropped_max_connections));
        eok.y.push_back(static_cast<double>(row.enrollments_ok));
        ef.y.push_back(static_cast<double>(row.enrollments_failed));
    }
    c.lines = {req, nf, ok, deaf, drop, eok, ef};
    add_story(c, st);
    return c;
}

chart loop_chart(const sim_result& r, const run_story& st) {
    const auto [a, b] = day_range(r);
    chart c = day_chart(r, "plot-loop", "Clients in the GetNextCACert loop (GET_NEW_CA_CERT)",
                        "clients");
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
    add_story(c, st);
    return c;
}

chart deaf_chart(const sim_result& r, const run_story& st) {
    const auto [a, b] = day_range(r);
    chart c = day_chart(r, "plot-deaf", "Hours the server was deaf (throttle tripped), per day",
                        "hours per day");
    series deaf{"deaf hours (deaf periods that started that day)", "#ff7f0e", {}};
    for (std::size_t d = a; d < b; ++d) {
        c.x.push_back(static_cast<double>(d));
        deaf.y.push_back(hours_of_ms(r.daily[d].deaf_ms));
    }
    c.lines = {deaf};
    add_story(c, st);
    return c;
}

chart worst_day_chart(const scenario& sc, const sim_result& r) {
    chart c;
    c.id = "plot-worst-day";
    c.xk = x_kind::hours;
    const auto day_start = r.start + timers::days{std::max(0, r.worst_day)};
    c.title = r.worst_day >= 0 && r.peak_minute_at
                  ? fmt::format("Connection attempts per minute on {}, the day of the peak minute "
                                "({}: {} attempts)",
                                date_of(day_start), minute_of(*r.peak_minute_at).substr(11),
                                with_commas(r.peak_attempts_per_minute))
                  : std::string{"Connection attempts per minute (no traffic)"};
    c.x_label = "hour of the day (UTC)";
    c.y_label = "connections per minute";
    series att{"attempts", "#1f77b4", {}};
    series acc{"accepted", "#2ca02c", {}};
    double peak = 0;
    for (std::size_t m = 0; m < r.worst_day_attempts_per_minute.size(); ++m) {
        c.x.push_back(static_cast<double>(m) / 60.0);
        att.y.push_back(r.worst_day_attempts_per_minute[m]);
        acc.y.push_back(r.worst_day_accepted_per_minute[m]);
        peak = std::max(peak, att.y.back());
    }
    c.lines = {att, acc};
    if (sc.throttle && sc.limiter_enabled)
        c.hline = std::pair{80.0, std::string{"throttle: 80 connections/minute"}};
    if (r.peak_minute_at) {
        c.events.emplace_back(timers::to_days(*r.peak_minute_at - day_start) * 24,
                              event_mark{*r.peak_minute_at, "peak-minute",
                                         "peak minute " + minute_of(*r.peak_minute_at).substr(11),
                                         "#d62728"});
    }
    c.log_y = peak > 800;
    return c;
}

// Units of the --sweep keys (scenario.cpp apply_setting).
std::string sweep_unit(const std::string& key) {
    if (key == "overlap" || key.ends_with("auto-rollover") || key == "lifetime" ||
        key.ends_with("lifetime"))
        return "days";
    if (key.ends_with("auto-enroll"))
        return "%";
    if (key.ends_with("max-connections"))
        return "connections";
    if (key == "clients" || key.ends_with("count"))
        return "clients";
    if (key == "shadow_retry_interval" || key == "connect_timeout" || key == "latency" ||
        key == "retry_jitter" || key == "clock_skew" || key.starts_with("service_"))
        return "duration";
    return "";
}

double sweep_x(const sweep_point& p, std::size_t i) {
    try {
        return std::stod(p.value);
    } catch (...) {
        return static_cast<double>(i);
    }
}

chart sweep_chart(const sweep_result& s) {
    chart c;
    c.id = "plot-sweep";
    c.xk = x_kind::number;
    c.points = true;
    const auto unit = sweep_unit(s.key);
    c.title = fmt::format("Sweep of {}: share of clients hitting 404 and in outage", s.key);
    c.x_label = unit.empty() ? s.key : fmt::format("{} ({})", s.key, unit);
    c.y_label = "% of clients";
    series hit{"clients that got 404 (%)", "#d62728", {}};
    series out{"clients in outage (%)", "#000000", {}, true};
    std::vector<std::pair<double, std::size_t>> order;
    for (std::size_t i = 0; i < s.points.size(); ++i)
        order.emplace_back(sweep_x(s.points[i], i), i);
    std::stable_sort(order.begin(), order.end());
    for (const auto& [v, i] : order) {
        const auto& r = s.points[i].result;
        const double n = std::max<double>(1, static_cast<double>(r.clients));
        c.x.push_back(v);
        hit.y.push_back(100.0 * static_cast<double>(r.clients_hit_404) / n);
        out.y.push_back(100.0 * static_cast<double>(r.clients_outage) / n);
    }
    c.lines = {hit, out};
    // The safe region: each run of consecutive safe points, reaching halfway to its neighbours.
    for (std::size_t k = 0; k < order.size();) {
        if (s.points[order[k].second].result.outcome != verdict::safe) {
            ++k;
            continue;
        }
        std::size_t e = k;
        while (e + 1 < order.size() && s.points[order[e + 1].second].result.outcome == verdict::safe)
            ++e;
        const double lo = k == 0 ? order[k].first : (order[k - 1].first + order[k].first) / 2;
        const double hi =
            e + 1 >= order.size() ? order[e].first : (order[e].first + order[e + 1].first) / 2;
        c.spans.emplace_back(lo, hi == lo ? lo + 0.5 : hi,
                             span_mark{{}, {}, "safe", "safe", "rgba(44,160,44,0.18)"});
        k = e + 1;
    }
    if (const auto rec = s.analysis.recommended)
        c.events.emplace_back(sweep_x(s.points[*rec], *rec),
                              event_mark{{}, "recommended", "recommended: " + s.points[*rec].value,
                                         "#2ca02c"});
    return c;
}

// ---- The verdict in words, shared by the terminal and the page ------------------------------

struct words {
    std::string headline;  // "Verdict: STORM. ..."
    std::vector<std::string> what;
    std::vector<std::pair<std::string, std::string>> when;
    std::vector<std::pair<std::string, std::string>> how_bad;
    std::vector<std::string> arithmetic;
    std::vector<device_change> changes;
};

// Days to the expiry of the CA generation whose life contains `t` (the first CA before it, the
// last generation after the horizon), named when the run covers more than one generation.
std::string before_expiry(const sim_result& r, time_point t) {
    timers::validity ca = r.ca;
    unsigned number = 1;
    for (const auto& g : r.generations) {
        ca = g.ca;
        number = g.number;
        if (t < g.ca.not_after)
            break;
    }
    const double d = days_before(ca.not_after, t);
    const std::string which =
        r.generations.size() > 1 ? fmt::format(", generation {}", number) : std::string{};
    return d >= 0 ? fmt::format("{} days before CA expiry{}", days1(d), which)
                  : fmt::format("{} days after CA expiry{}", days1(-d), which);
}

words words_of(const scenario& sc, const sim_result& r) {
    words w;
    const auto& srv = sc.ca.server;
    const double overlap = srv.auto_rollover ? timers::to_days(*srv.auto_rollover) : 0;
    switch (r.outcome) {
        case verdict::safe:
            w.headline = fmt::format(
                "Verdict: SAFE. None of the {} clients asked for the next CA certificate before "
                "the server had it.",
                with_commas(r.clients));
            break;
        case verdict::storm:
            w.headline = fmt::format(
                "Verdict: STORM. {} of {} clients ({}) got GetNextCACert 404 Not Found: they "
                "asked for the next CA certificate before the server had it.",
                with_commas(r.clients_hit_404), with_commas(r.clients),
                pct_of(r.clients_hit_404, r.clients));
            break;
        case verdict::outage:
            w.headline = fmt::format(
                "Verdict: OUTAGE. {} of {} clients ({}) ended without a valid certificate; {} "
                "got GetNextCACert 404 Not Found.",
                with_commas(r.clients_outage), with_commas(r.clients),
                pct_of(r.clients_outage, r.clients), with_commas(r.clients_hit_404));
            break;
    }
    // What happens.
    if (r.shadow_generated_at)
        w.what.push_back(fmt::format("The CA makes its shadow (next) CA certificate on {}, {}.",
                                     date_of(*r.shadow_generated_at),
                                     before_expiry(r, *r.shadow_generated_at)));
    else
        w.what.push_back("The CA never makes a shadow CA certificate (no auto-rollover).");
    if (r.first_get_next_ca_cert_at)
        w.what.push_back(fmt::format(
            "The first client reaches its SHADOW point and asks for the next CA on {}, {}.",
            date_of(*r.first_get_next_ca_cert_at), before_expiry(r, *r.first_get_next_ca_cert_at)));
    if (sc.ra) {
        if (r.ra_shadow_at && r.first_get_next_ca_cert_at &&
            *r.ra_shadow_at <= *r.first_get_next_ca_cert_at)
            w.what.push_back(fmt::format(
                "The RA has the shadow from {}, before the first client asks.",
                date_of(*r.ra_shadow_at)));
        else if (r.ra_shadow_at)
            w.what.push_back(fmt::format(
                "The RA answers 404 until it has the shadow itself: it asks the CA on {} and has "
                "the shadow from {}.",
                r.ra_first_get_next_ca_cert_at ? date_of(*r.ra_first_get_next_ca_cert_at)
                                               : std::string{"-"},
                date_of(*r.ra_shadow_at)));
        else
            w.what.push_back("The RA never gets the shadow CA: its clients get 404 to the end.");
    }
    // Later generations: the lines above are generation 1's; say what changes after the first
    // rollover when a later generation is worse (rule 6: a phase-locked fleet).
    for (const auto& g : r.generations) {
        if (g.number < 2 || g.outcome == verdict::safe || !g.first_get_next_ca_cert_at)
            continue;
        const double spread =
            g.last_loop_entry_at ? seconds_of(*g.last_loop_entry_at - *g.first_get_next_ca_cert_at)
                                 : 0.0;
        std::string line = fmt::format(
            "Generation {} (CA {} to {}) is {}: {} clients ask for the next CA from {}{}",
            g.number, date_of(g.ca.not_before), date_of(g.ca.not_after), to_string(g.outcome),
            with_commas(g.clients_entered_loop), minute_of(*g.first_get_next_ca_cert_at),
            spread < 86400 ? fmt::format(", all within {} (every rollover certificate starts at "
                                         "the old CA's notAfter, so the fleet is phase-locked)",
                                         spread < 3600 ? fmt::format("{:.0f} s", spread)
                                                       : fmt::format("{:.1f} hours", spread / 3600))
                           : std::string{});
        if (sc.ra && g.ra_shadow_at)
            line += fmt::format("; the RA has the shadow from {}", minute_of(*g.ra_shadow_at));
        else if (g.shadow_generated_at)
            line += fmt::format("; the CA made the shadow on {}", date_of(*g.shadow_generated_at));
        if (g.clients_hit_404 > 0)
            line += fmt::format("; {} get 404", with_commas(g.clients_hit_404));
        w.what.push_back(line + ".");
    }
    if (r.first_404_at && !(sc.limiter_enabled && sc.throttle))
        w.what.push_back(fmt::format(
            "Clients that ask too early get 404 and retry every {} (no HTTP throttle modelled).",
            format_duration(sc.client.shadow_retry_interval)));
    else if (r.first_404_at)
        w.what.push_back(fmt::format(
            "Clients that ask too early get 404 and retry every {}; {} looping clients or more "
            "exceed the 80 connections/minute throttle and the server goes deaf for 15 s at a "
            "time.",
            format_duration(sc.client.shadow_retry_interval),
            r.closed_form.trustpoints.empty()
                ? std::string{"27"}
                : fmt::format("{}", r.closed_form.trustpoints.front().clients_to_reach_throttle)));
    if (r.clients_outage > 0)
        w.what.push_back(fmt::format("{} clients end with an invalid certificate (outage).",
                                     with_commas(r.clients_outage)));
    // When.
    w.when.emplace_back("CA valid", fmt::format("{} to {}", date_of(r.ca.not_before),
                                                date_of(r.ca.not_after)));
    if (r.shadow_generated_at)
        w.when.emplace_back("shadow CA generated",
                            fmt::format("{} ({})", date_of(*r.shadow_generated_at),
                                        before_expiry(r, *r.shadow_generated_at)));
    if (r.first_get_next_ca_cert_at)
        w.when.emplace_back("first SHADOW point",
                            fmt::format("{} ({})", date_of(*r.first_get_next_ca_cert_at),
                                        before_expiry(r, *r.first_get_next_ca_cert_at)));
    if (r.first_404_at)
        w.when.emplace_back("first 404", fmt::format("{} ({})", minute_of(*r.first_404_at),
                                                     before_expiry(r, *r.first_404_at)));
    if (r.last_404_at)
        w.when.emplace_back("last 404", fmt::format("{} ({})", minute_of(*r.last_404_at),
                                                    before_expiry(r, *r.last_404_at)));
    if (sc.ra && r.ra_shadow_at)
        w.when.emplace_back("RA has the shadow", fmt::format("{} ({})", date_of(*r.ra_shadow_at),
                                                             before_expiry(r, *r.ra_shadow_at)));
    if (r.peak_minute_at)
        w.when.emplace_back("peak minute", minute_of(*r.peak_minute_at));
    // How bad.
    w.how_bad.emplace_back("clients hit by 404", fmt::format("{} of {} ({})",
                                                             with_commas(r.clients_hit_404),
                                                             with_commas(r.clients),
                                                             pct_of(r.clients_hit_404, r.clients)));
    if (r.clients_hit_404 > 0)
        w.how_bad.emplace_back("404 window per client",
                               fmt::format("mean {} days, longest {} days",
                                           days1(r.mean_404_window_days),
                                           days1(r.max_404_window_days)));
    if (!sc.limiter_enabled) {
        // [limiter] enabled = false: no throttle, no max-connections to speak of (issue 9).
        w.how_bad.emplace_back(
            "peak load", fmt::format("{} connection attempts in one minute (no HTTP limits "
                                     "modelled: [limiter] enabled = false)",
                                     with_commas(r.peak_attempts_per_minute)));
    } else {
    w.how_bad.emplace_back(
        "peak load",
        sc.throttle ? fmt::format("{} connection attempts in one minute (throttle: 80){}",
                                  with_commas(r.peak_attempts_per_minute),
                                  r.peak_attempts_per_minute > 80 ? ", over the throttle" : "")
                    : fmt::format("{} connection attempts in one minute (throttle off)",
                                  with_commas(r.peak_attempts_per_minute)));
    w.how_bad.emplace_back("server deaf",
                           fmt::format("{} hours in total ({} connections ignored, {} dropped at "
                                       "max-connections {})",
                                       days1(hours_of_ms(r.totals.deaf_ms)),
                                       with_commas(r.totals.connections_ignored_deaf),
                                       with_commas(r.totals.connections_dropped_max_connections),
                                       sc.front().http.max_connections));
    }
    w.how_bad.emplace_back("enrollments",
                           fmt::format("{} succeeded, {} attempts failed (no answer or refused)",
                                       with_commas(r.totals.enrollments_ok),
                                       with_commas(r.totals.enrollments_failed)));
    w.how_bad.emplace_back("outages", fmt::format("{} clients left with an invalid certificate",
                                                  with_commas(r.clients_outage)));
    // The arithmetic with the user's numbers (ios-pki-model.md §4).
    const double ca_life = timers::to_days(srv.ca_lifetime);
    const double cert_life = timers::to_days(srv.cert_lifetime);
    std::set<std::string> seen;
    for (const auto& g : sc.groups) {
        const auto& tp = g.trustpoint;
        if (!seen.insert(tp.name).second)
            continue;
        const timers::trustpoint_storm* t = nullptr;
        for (const auto& x : r.closed_form.trustpoints)
            if (x.name == tp.name)
                t = &x;
        if (!tp.auto_enroll) {
            w.arithmetic.push_back(fmt::format(
                "trustpoint {}: no auto-enroll, so nothing renews the certificate or fetches the "
                "next CA; every certificate runs out, at CA expiry at the latest.",
                tp.name));
            continue;
        }
        const double l = std::min(cert_life, ca_life);
        const double first = (1.0 - tp.auto_enroll_percent / 100.0) * l;
        w.arithmetic.push_back(fmt::format(
            "trustpoint {}: SHADOW point = (1 − {} %) × min(lifetime certificate {} d, lifetime "
            "ca-certificate {} d) = {} days before CA expiry (the last certificate is cut at the "
            "CA's end).",
            tp.name, tp.auto_enroll_percent, num(cert_life), num(ca_life), days1(first)));
        if (first <= 0)
            w.arithmetic.push_back(fmt::format(
                "auto-enroll {} %: the certificate that ends with the CA asks for the next CA "
                "only at the CA's expiry, when its certificate and trust have already expired: "
                "an outage whatever the overlap.",
                tp.auto_enroll_percent));
        else if (srv.auto_rollover)
            w.arithmetic.push_back(
                first > overlap
                    ? fmt::format("auto-rollover {} d: the shadow exists {} days before expiry, so "
                                  "the earliest clients get 404 for {} − {} = {} days.",
                                  num(overlap), num(overlap), days1(first), num(overlap),
                                  days1(first - overlap))
                    : fmt::format("auto-rollover {} d ≥ {} d: the shadow exists before the first "
                                  "client asks.",
                                  num(overlap), days1(first)));
        else
            w.arithmetic.push_back("no auto-rollover: no shadow CA is ever made.");
        if (t) {
            w.arithmetic.push_back(fmt::format(
                "one looping client: 60 s / {} = {} GetNextCACert a minute; {} looping clients "
                "exceed the 80/minute throttle (fleet: {} clients).",
                format_duration(sc.client.shadow_retry_interval),
                num(t->requests_per_minute_per_client), t->clients_to_reach_throttle,
                with_commas(g.count)));
            w.arithmetic.push_back(fmt::format(
                "minimum safe overlap {} days; recommended {} days (max(2 × minimum, minimum + 30 "
                "d), rounded up to 5 d).",
                days1(t->min_safe_overlap_days), num(t->recommended_overlap_days)));
        }
    }
    if (sc.ra && r.shadow_generated_at) {
        if (r.ra_shadow_at && *r.ra_shadow_at > *r.shadow_generated_at + timers::days{1})
            w.arithmetic.push_back(fmt::format(
                "RA {}: it learns of the shadow only at its own SHADOW point (model §1 rule 8): "
                "{} − {} = {} days in which the CA has the shadow but the RA answers 404.",
                sc.ra->server.name, date_of(*r.ra_shadow_at), date_of(*r.shadow_generated_at),
                days1(days_before(*r.ra_shadow_at, *r.shadow_generated_at))));
    }
    if (r.totals.deaf_ms > 0 || r.totals.connections_dropped_max_connections > 0)
        w.arithmetic.push_back(fmt::format(
            "the clients' server accepts {} connections at a time (ip http max-connections); "
            "IOS allows up to 16.",
            sc.front().http.max_connections));
    w.changes = change_set(sc, r);
    return w;
}

}  // namespace

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

// ---- The change set (one function; timers/ will own the rule once i9a's API lands) -----------

std::vector<device_change> change_set(const scenario& sc, const sim_result& r) {
    std::vector<device_change> out;
    double rec = 0;
    double min_safe = 0;
    for (const auto& t : r.closed_form.trustpoints) {
        rec = std::max(rec, t.recommended_overlap_days);
        min_safe = std::max(min_safe, t.min_safe_overlap_days);
    }
    const auto& srv = sc.ca.server;
    const double overlap = srv.auto_rollover ? timers::to_days(*srv.auto_rollover) : 0;
    const bool trouble = r.clients_hit_404 > 0 || r.clients_outage > 0;
    const bool deaf = r.totals.deaf_ms > 0 || r.totals.connections_dropped_max_connections > 0;
    device_change ca{fmt::format("CA ({})", sc.ca.config_path), {}, {}};
    if (trouble && (!srv.auto_rollover || overlap <= min_safe) && rec > 0) {
        ca.why = fmt::format(
            "clients ask for the next CA up to {} days before the CA expires; the overlap must "
            "be longer",
            num(std::ceil(min_safe)));
        ca.lines = {fmt::format("crypto pki server {}", srv.name),
                    fmt::format(" auto-rollover {}", num(std::ceil(rec)))};
    }
    if (deaf && !sc.ra && sc.ca.http.max_connections < 16) {
        ca.lines.push_back("ip http max-connections 16");
        if (ca.why.empty())
            ca.why = "the retry flood trips the throttle; accept more connections at a time";
    }
    if (!ca.lines.empty())
        out.push_back(ca);
    if (sc.ra) {
        device_change ra{fmt::format("RA ({})", sc.ra->config_path), {}, {}};
        // Model §1 rule 8: the RA asks the CA only from its own SHADOW point; clients that ask
        // the RA before that, or before it has fetched the shadow, get 404 whatever the overlap.
        const bool ra_late_fetch =
            r.ra_shadow_at && r.shadow_generated_at &&
            *r.ra_shadow_at > *r.shadow_generated_at + timers::days{1};
        const bool ra_asks_late = r.ra_first_get_next_ca_cert_at && r.first_get_next_ca_cert_at &&
                                  *r.ra_first_get_next_ca_cert_at > *r.first_get_next_ca_cert_at;
        if (trouble && r.shadow_generated_at && (!r.ra_shadow_at || ra_late_fetch || ra_asks_late)) {
            if (!r.ra_shadow_at)
                ra.why = "the RA never fetched the shadow CA; roll it over once the CA has its "
                         "shadow";
            else if (ra_late_fetch)
                ra.why = fmt::format("the RA learned of the CA's shadow {} days after the CA made "
                                     "it; roll it over as soon as the CA has its shadow",
                                     days1(days_before(*r.ra_shadow_at, *r.shadow_generated_at)));
            else
                ra.why = fmt::format(
                    "the RA asks for the shadow only from its own SHADOW point ({}), {} days "
                    "after the first client; roll it over by hand once the CA has its shadow",
                    date_of(*r.ra_first_get_next_ca_cert_at),
                    days1(days_before(*r.ra_first_get_next_ca_cert_at,
                                      *r.first_get_next_ca_cert_at)));
            ra.lines = {"! exec mode, once `show crypto pki server` on the CA says the rollover "
                        "CA exists:",
                        fmt::format("crypto pki server {} rollover", sc.ra->server.name)};
        }
        if (deaf && sc.ra->http.max_connections < 16) {
            ra.lines.push_back("ip http max-connections 16");
            if (ra.why.empty())
                ra.why = "the retry flood trips the throttle; accept more connections at a time";
        }
        if (!ra.lines.empty())
            out.push_back(ra);
    }
    if (r.clients_outage > 0) {
        std::set<std::string> seen;
        for (const auto& g : sc.groups) {
            const auto& tp = g.trustpoint;
            if (!seen.insert(tp.name).second)
                continue;
            if (tp.auto_enroll && tp.auto_enroll_percent < 100)
                continue;
            out.push_back(
                {fmt::format("clients ({}, trustpoint {})", g.config_path, tp.name),
                 tp.auto_enroll
                     ? fmt::format("a certificate cut to the CA's end at {} % asks for the next "
                                   "CA only when the CA expires: too late",
                                   tp.auto_enroll_percent)
                     : std::string{"without auto-enroll nothing renews the certificate or "
                                   "fetches the next CA"},
                 {fmt::format("crypto pki trustpoint {}", tp.name), " auto-enroll 70"}});
        }
    }
    return out;
}

std::string change_block(const std::vector<device_change>& changes) {
    if (changes.empty())
        return "! no change needed\n";
    std::string o;
    for (const auto& c : changes) {
        o += fmt::format("! {}: {}\n", c.device, c.why);
        for (const auto& l : c.lines)
            o += l + "\n";
    }
    return o;
}

namespace {
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

namespace {

// The page's own script: draws every chart described in #pkisim-data with dygraphs. Events are
// dashed vertical lines with labels (and dygraphs annotations, in the DOM, on the first series),
// spans are shaded, the throttle is a red line; date charts show the date and the days before CA
// expiry on the axis and on hover; zooming one date chart (drag; double-click resets) zooms all.
constexpr const char* page_script = R"js(
(function () {
  'use strict';
  var P = JSON.parse(document.getElementById('pkisim-data').textContent);
  function si(v) {
    if (v === null || v === undefined || isNaN(v)) return '-';
    var a = Math.abs(v), t = function (x) { return x.toFixed(1).replace(/\.0$/, ''); };
    if (a >= 1e9) return t(v / 1e9) + ' G';
    if (a >= 1e6) return t(v / 1e6) + ' M';
    if (a >= 1e3) return t(v / 1e3) + ' k';
    return String(Math.round(v * 10) / 10);
  }
  function ms(d) { return typeof d === 'number' ? d : d.getTime(); }
  function iso(d) { return new Date(ms(d)).toISOString().slice(0, 10); }
  function hhmm(h) {
    var m = Math.round(h * 60);
    return ('0' + Math.floor(m / 60)).slice(-2) + ':' + ('0' + (m % 60)).slice(-2) + ' UTC';
  }
  var dateCharts = [], syncing = false, drawn = 0;
  P.charts.forEach(function (c) {
    var el = document.getElementById(c.id + '-live');
    if (!el) return;
    function before(d) {
      var n = Math.round((c.expiry - ms(d)) / 864e5);
      return n === 0 ? 'CA expiry' : (n > 0 ? n + ' d before CA expiry' : -n + ' d after CA expiry');
    }
    function beforeShort(d) {
      var n = Math.round((c.expiry - ms(d)) / 864e5);
      return n === 0 ? 'expiry' : (n > 0 ? n + ' d' : '+' + -n + ' d');
    }
    var data = c.data.map(function (row) {
      var r = row.slice();
      if (c.x === 'date') r[0] = new Date(r[0]);
      return r;
    });
    var series = {};
    c.labels.slice(1).forEach(function (name, i) {
      series[name] = { drawPoints: c.points || c.sparse[i], pointSize: c.points ? 4 : 2.5,
                       strokeWidth: c.widths[i] };
    });
    var xaxis = { axisLabelWidth: 90 };
    if (c.x === 'date') {
      xaxis.valueFormatter = function (d) { return iso(d) + ' (' + before(d) + ')'; };
      xaxis.axisLabelFormatter = function (d) {
        return iso(d) + '<br><span class="tminus">' + beforeShort(d) + '</span>';
      };
      xaxis.pixelsPerLabel = 110;
    } else if (c.x === 'hours') {
      xaxis.valueFormatter = hhmm;
      xaxis.axisLabelFormatter = function (h) { return hhmm(h).slice(0, 5); };
    }
    function underlay(ctx, area, g) {
      c.spans.forEach(function (s) {
        var x0 = Math.max(area.x, g.toDomXCoord(s.from)), x1 = Math.min(area.x + area.w, g.toDomXCoord(s.to));
        if (x1 < x0) return;
        // Deaf days: a strip along the bottom, so that the 404 window stays visible.
        var strip = s.label === 'server deaf', h = strip ? Math.min(14, area.h * 0.06) : area.h;
        ctx.fillStyle = strip ? 'rgba(255,127,14,0.85)' : s.color;
        ctx.fillRect(x0, area.y + area.h - h, Math.max(1, x1 - x0), h);
      });
      if (c.hline) {
        var y = g.toDomYCoord(c.hline.value);
        ctx.save(); ctx.strokeStyle = '#cc0000'; ctx.setLineDash([6, 4]);
        ctx.beginPath(); ctx.moveTo(area.x, y); ctx.lineTo(area.x + area.w, y); ctx.stroke();
        ctx.fillStyle = '#cc0000'; ctx.font = '12px sans-serif'; ctx.textAlign = 'right';
        ctx.fillText(c.hline.label, area.x + area.w - 4, y - 4); ctx.restore();
      }
      var taken = [];
      c.events.forEach(function (e) {
        var x = g.toDomXCoord(e.x);
        if (x < area.x || x > area.x + area.w) return;
        ctx.font = '11px sans-serif';
        var tw = ctx.measureText(e.label).width + 6, rightSide = x > area.x + area.w * 0.7;
        var a = rightSide ? x - tw : x, b = rightSide ? x : x + tw, row = 0;
        for (; row < 6; row++) {
          if (!taken.some(function (t) { return t[2] === row && a < t[1] && b > t[0]; })) break;
        }
        row = Math.min(row, 5);
        taken.push([a, b, row]);
        ctx.save(); ctx.strokeStyle = e.color; ctx.setLineDash([4, 3]);
        ctx.beginPath(); ctx.moveTo(x, area.y); ctx.lineTo(x, area.y + area.h); ctx.stroke();
        ctx.font = '11px sans-serif'; ctx.fillStyle = e.color;
        var right = x > area.x + area.w * 0.7;
        ctx.textAlign = right ? 'right' : 'left';
        var ty = area.y + 12 + 13 * row;
        ctx.lineWidth = 3; ctx.strokeStyle = '#fff'; ctx.setLineDash([]);
        ctx.strokeText(e.label, right ? x - 3 : x + 3, ty);
        ctx.fillText(e.label, right ? x - 3 : x + 3, ty);
        ctx.restore();
      });
    }
    var opts = {
      labels: c.labels, colors: c.colors, title: c.title, ylabel: c.ylabel, xlabel: c.xlabel,
      logscale: c.log, labelsUTC: true, legend: 'always', labelsDiv: c.id + '-legend',
      labelsSeparateLines: false, strokeWidth: 1.5, series: series, underlayCallback: underlay,
      xAxisHeight: c.x === 'date' ? 36 : undefined, includeZero: !c.log,
      axes: { y: { valueFormatter: si, axisLabelFormatter: si, axisLabelWidth: 56 }, x: xaxis },
      drawCallback: function (g, first) { if (first) { drawn++; document.body.setAttribute('data-charts-drawn', drawn); } },
      zoomCallback: function (lo, hi) {
        if (c.x !== 'date' || syncing) return;
        syncing = true;
        dateCharts.forEach(function (o) { if (o !== g) o.updateOptions({ dateWindow: [lo, hi] }); });
        syncing = false;
      }
    };
    var g = new Dygraph(el, data, opts);
    if (c.x === 'date') dateCharts.push(g);
    // Annotations in the DOM (div.dygraph-annotation): one per event, on the nearest data row.
    g.ready(function () {
      if (!c.events.length || !data.length) return;
      var xs = c.data.map(function (r) { return r[0]; });
      var notes = [], byRow = {};
      c.events.forEach(function (e, i) {
        if (e.x < xs[0] || e.x > xs[xs.length - 1]) return;
        var best = 0;
        for (var k = 1; k < xs.length; k++) if (Math.abs(xs[k] - e.x) < Math.abs(xs[best] - e.x)) best = k;
        // dygraphs shows one annotation per point: events on the same row share it.
        var n = byRow[best];
        if (n) {
          n.shortText += ',' + (i + 1); n.width += 12;
          n.text += '; ' + e.label + ' - ' + e.when; n.cssClass += ' ev-' + e.id;
          return;
        }
        n = byRow[best] = { series: c.labels[1], x: xs[best], shortText: String(i + 1), width: 18,
                            text: e.label + ' - ' + e.when, cssClass: 'ev-' + e.id, attachAtBottom: true };
        notes.push(n);
      });
      g.setAnnotations(notes);
    });
  });
  document.body.setAttribute('data-charts', String(P.charts.length));
})();
)js";

std::string strip_source_map(std::string s) {
    // The page must not reference files that are not in it (the .map next to the library).
    for (const char* marker : {"//# sourceMappingURL=", "/*# sourceMappingURL="}) {
        const auto at = s.find(marker);
        if (at != std::string::npos) {
            const auto end = s.find('\n', at);
            s.erase(at, end == std::string::npos ? std::string::npos : end - at);
        }
    }
    return s;
}

// JSON inside <script type="application/json">: "</" must not appear.
std::string script_safe(std::string s) {
    for (std::size_t at = 0; (at = s.find("</", at)) != std::string::npos; at += 3)
        s.replace(at, 2, "<\\/");
    return s;
}

std::string table_rows(const std::vector<std::pair<std::string, std::string>>& rows) {
    std::string o;
    for (const auto& [k, v] : rows)
        o += fmt::format("<tr><th>{}</th><td>{}</td></tr>\n", html_escape(k), html_escape(v));
    return o;
}

std::string figure(const chart& c) {
    return fmt::format(
        "<figure class=\"chart\" id=\"{0}-figure\">\n<div class=\"live\" id=\"{0}-live\"></div>\n"
        "<div class=\"legend\" id=\"{0}-legend\"></div>\n"
        "<details><summary>static SVG ({0})</summary>\n{1}</details>\n</figure>\n",
        c.id, render(c));
}

}  // namespace

std::string plot_timeline_svg(const scenario& sc, const sim_result& r) {
    return render(timeline_chart(r, story_of(&sc, r)));
}
std::string plot_daily_svg(const sim_result& r) { return render(daily_chart(r, story_of(nullptr, r))); }
std::string plot_loop_svg(const sim_result& r) { return render(loop_chart(r, story_of(nullptr, r))); }
std::string plot_deaf_svg(const sim_result& r) { return render(deaf_chart(r, story_of(nullptr, r))); }
std::string plot_worst_day_svg(const scenario& sc, const sim_result& r) {
    return render(worst_day_chart(sc, r));
}
std::string plot_sweep_svg(const sweep_result& s) { return render(sweep_chart(s)); }

std::string verdict_text(const scenario& sc, const sim_result& r, const std::string& out_dir) {
    const words w = words_of(sc, r);
    std::string o = w.headline + "\n";
    const auto section = [&](const char* title) { o += fmt::format("\n{}\n", title); };
    const auto pairs = [&](const std::vector<std::pair<std::string, std::string>>& rows) {
        std::size_t width = 0;
        for (const auto& [k, _] : rows)
            width = std::max(width, k.size());
        for (const auto& [k, v] : rows)
            o += fmt::format("  {:<{}}  {}\n", k, width, v);
    };
    section("What happens");
    for (const auto& s : w.what)
        o += "  " + s + "\n";
    section("When");
    pairs(w.when);
    section("How bad");
    pairs(w.how_bad);
    section("Why (the arithmetic)");
    for (const auto& s : w.arithmetic)
        o += "  " + s + "\n";
    section("What to change");
    if (r.change_set) {
        // The change set from timers/, verified by re-running the fleet (issue 9 §4).
        std::string line;
        for (const char ch : r.change_set->text) {
            line += ch;
            if (ch == '\n') {
                o += "  " + line;
                line.clear();
            }
        }
        if (!line.empty())
            o += "  " + line + "\n";
    } else if (w.changes.empty() && r.outcome == verdict::safe) {
        o += "  nothing\n";
    } else if (w.changes.empty()) {
        // A sweep or --no-change-set: no verified change set was computed for this run.
        o += "  no change set computed for this run (a sweep or --no-change-set): run it "
             "without them for the verified change set\n";
    } else {
        o += "  (not verified by a re-run: --no-change-set, or a sweep)\n";
        for (const auto& c : w.changes) {
            o += fmt::format("  ! {}: {}\n", c.device, c.why);
            for (const auto& l : c.lines)
                o += "    " + l + "\n";
        }
    }
    o += fmt::format("\nEngine {} ({} events). Report: {}\n", to_string(r.engine),
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
        // Late only after the first rollover: some value is clean in generation 1 (the RA's
        // manual rollover, or its own timer) and still storms in a later generation.
        const bool late_later_only =
            std::any_of(s.points.begin(), s.points.end(), [](const auto& p) {
                const auto& g = p.result.generations;
                return g.size() > 1 && g.front().clients_hit_404 == 0;
            });
        if (ra_late && late_later_only) {
            o += "The RA fetches the shadow CA only on its own SHADOW timer, after the CA made it; "
                 "its manual `rollover` happens once, so a later generation relies on that "
                 "timer: lower the RA trustpoint's `auto-enroll` (a run without --sweep prints "
                 "the verified change set).\n";
        } else if (ra_late) {
            o += "The RA fetches the shadow CA only on its own SHADOW timer, after the CA made it: "
                 "add a manual `rollover` of the RA when the CA's shadow exists (the seed's fix, "
                 "see seed002-fix.toml).\n";
        }
    }
    return o;
}

std::string report_html(const scenario& sc, const sim_result& r,
                        const std::optional<sweep_result>& sweep, const report_options& o) {
    const run_story st = story_of(&sc, r);
    const words w = words_of(sc, r);
    const std::string title = sc.name.empty() ? sc.path : sc.name;
    std::vector<chart> charts = {timeline_chart(r, st), daily_chart(r, st), loop_chart(r, st),
                                 deaf_chart(r, st), worst_day_chart(sc, r)};
    if (sweep)
        charts.push_back(sweep_chart(*sweep));
    std::string h;
    h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
    h += fmt::format("<title>pkisim simulate: {}</title>\n", html_escape(title));
    h += "<style>\n" +
         strip_source_map(std::string{reinterpret_cast<const char*>(embedded::dygraph_css), embedded::dygraph_css_size}) +
         "\n</style>\n";
    h += R"css(<style>
body{font-family:sans-serif;max-width:1000px;margin:1em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
pre{background:#f5f5f5;padding:.6em;overflow:auto;font-size:.85em}
table{border-collapse:collapse;margin:.4em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left;vertical-align:top}
th{background:#fafafa;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.verdict{padding:.2em 1em .8em;border-left:8px solid #888;background:#fcfcfc}
.verdict.storm{border-color:#d62728}.verdict.outage{border-color:#000}.verdict.safe{border-color:#2ca02c}
.headline{font-size:1.2em;font-weight:bold}.verdict h3{margin:.8em 0 .2em;font-size:1em}
#change-block{background:#1e1e1e;color:#e8e8e8;font-size:.95em}
figure.chart{margin:1em 0}.live{width:100%;height:360px}.legend{font-size:.8em;min-height:1.4em}
.tminus{color:#666;font-size:.9em}svg{max-width:100%;height:auto}
.dygraph-title{font-size:15px}.dygraph-annotation{font-size:10px!important}
tr.safe td{background:#eef8ee}tr.shown td{font-weight:bold}footer{margin-top:2em;font-size:.85em;color:#555}
</style>
)css";
    h += "</head>\n<body>\n";
    h += fmt::format("<h1>pkisim simulate: {}</h1>\n", html_escape(title));
    if (!sc.description.empty())
        h += fmt::format("<p>{}</p>\n", html_escape(sc.description));
    if (!sc.run_label.empty())
        h += fmt::format(
            "<p id=\"run-label\"><strong>Verdict and plots of the run with {}.</strong></p>\n",
            html_escape(sc.run_label));

    // The verdict block.
    h += fmt::format("<section id=\"verdict\" class=\"verdict {}\">\n", to_string(r.outcome));
    h += fmt::format("<p class=\"headline\">{}</p>\n", html_escape(w.headline));
    h += "<h3>What happens</h3>\n<ul>\n";
    for (const auto& s : w.what)
        h += "<li>" + html_escape(s) + "</li>\n";
    h += "</ul>\n<h3>When</h3>\n<table id=\"when\">\n" + table_rows(w.when) + "</table>\n";
    h += "<h3>How bad</h3>\n<table id=\"how-bad\">\n" + table_rows(w.how_bad) + "</table>\n";
    h += "<h3>Why (the arithmetic, with your numbers)</h3>\n<ul id=\"arithmetic\">\n";
    for (const auto& s : w.arithmetic)
        h += "<li>" + html_escape(s) + "</li>\n";
    h += "</ul>\n<h3>What to change</h3>\n";
    h += "<p>The IOS text to type, per device (<code>!</code> lines are comments); select and "
         "copy the block:</p>\n";
    h += fmt::format("<pre id=\"change-block\">{}</pre>\n",
                     html_escape(r.change_set ? r.change_set->text : change_block(w.changes)));
    if (const auto gens = generations_text(r); !gens.empty())
        h += fmt::format("<h3>Per CA generation</h3>\n<pre id=\"generations\">{}</pre>\n",
                         html_escape(gens));
    h += "</section>\n";

    // The plots.
    h += "<h2>Timeline</h2>\n<p>Drag across a plot to zoom into it (all date plots follow), "
         "double-click to zoom out; hover for values. Shaded: the 404 window (red) and days with "
         "deaf periods (orange). The top axis of the static SVGs counts days before CA "
         "expiry.</p>\n<ol id=\"events\">\n";
    for (const auto& e : st.events)
        h += fmt::format("<li id=\"ev-{}\"><span style=\"color:{}\">&#9632;</span> {}: {} ({})</li>\n",
                         e.id, e.color, html_escape(e.label), minute_of(e.at),
                         html_escape(before_expiry(r, e.at)));
    h += "</ol>\n";
    h += figure(charts[0]);
    h += sc.run_label.empty() ? std::string{"<h2>Plots</h2>\n"}
                              : fmt::format("<h2>Plots ({})</h2>\n", html_escape(sc.run_label));
    for (std::size_t i = 1; i < 5; ++i)
        h += figure(charts[i]);

    if (sweep) {
        const auto unit = sweep_unit(sweep->key);
        h += "<h2 id=\"sweep\">Sweep</h2>\n";
        h += fmt::format(
            "<p>{} values of <code>{}</code>{}; shaded: the safe values. The rest of this page "
            "shows the scenario as given (without a sweep value).</p>\n",
            sweep->points.size(), html_escape(sweep->key),
            unit.empty() ? std::string{} : fmt::format(" ({})", unit));
        h += figure(charts.back());
        h += fmt::format(
            "<table id=\"sweep-table\"><tr><th>{}{}</th><th>verdict</th><th>clients hit by "
            "404</th><th>mean 404 window (days)</th><th>longest (days)</th><th>peak attempts "
            "/ minute</th><th>deaf (hours)</th><th>failed enrollments</th><th>outage</th></tr>\n",
            html_escape(sweep->key), unit.empty() ? std::string{} : " (" + unit + ")");
        for (std::size_t i = 0; i < sweep->points.size(); ++i) {
            const auto& p = sweep->points[i];
            const auto& pr = p.result;
            h += fmt::format(
                "<tr class=\"{}\"><td class=\"n\">{}</td><td>{}{}</td><td class=\"n\">{} ({})</td>"
                "<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td "
                "class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>\n",
                to_string(pr.outcome), html_escape(p.value), to_string(pr.outcome),
                sweep->analysis.recommended && *sweep->analysis.recommended == i
                    ? " (recommended)"
                    : (sweep->analysis.boundary && *sweep->analysis.boundary == i
                           ? " (least change that is safe)"
                           : ""),
                with_commas(pr.clients_hit_404), pct_of(pr.clients_hit_404, pr.clients),
                days1(pr.mean_404_window_days), days1(pr.max_404_window_days),
                with_commas(pr.peak_attempts_per_minute), days1(hours_of_ms(pr.totals.deaf_ms)),
                with_commas(pr.totals.enrollments_failed), with_commas(pr.clients_outage));
        }
        h += "</table>\n";
        // The RA hint of the terminal's sweep table, word for word.
        const auto tab = sweep_table(*sweep);
        if (const auto at = tab.find("\nThe RA fetches"); at != std::string::npos)
            h += fmt::format("<p>{}</p>\n", html_escape(tab.substr(at + 1)));
        h += fmt::format("<p id=\"sweep-analysis\">{}</p>\n",
                         html_escape(describe(sweep->analysis, *sweep)));
    }

    // The summary as a table.
    const double deaf_h = hours_of_ms(r.totals.deaf_ms);
    std::vector<std::tuple<std::string, std::string, std::string>> rows = {
        {"verdict", verdict_word(r.outcome), ""},
        {"clients", with_commas(r.clients), "clients"},
        {"clients hit by 404", fmt::format("{} ({})", with_commas(r.clients_hit_404),
                                           pct_of(r.clients_hit_404, r.clients)),
         "clients"},
        {"first 404", r.first_404_at ? minute_of(*r.first_404_at) : "-", "UTC"},
        {"first 404 before CA expiry",
         r.first_404_at ? days1(days_before(r.ca.not_after, *r.first_404_at)) : "-", "days"},
        {"last 404", r.last_404_at ? minute_of(*r.last_404_at) : "-", "UTC"},
        {"404 window per client, mean", days1(r.mean_404_window_days), "days"},
        {"404 window per client, longest", days1(r.max_404_window_days), "days"},
        {"GetNextCACert attempts", with_commas(r.totals.get_next_ca_cert_requests), "requests"},
        {"answered 404", with_commas(r.totals.responses_404), "responses"},
        {"answered 200 (next CA)", with_commas(r.totals.responses_200), "responses"},
        {"connections accepted", with_commas(r.totals.connections_accepted), "connections"},
        {"dropped at max-connections", with_commas(r.totals.connections_dropped_max_connections),
         fmt::format("connections (limit {})", sc.front().http.max_connections)},
        {"ignored while deaf", with_commas(r.totals.connections_ignored_deaf), "connections"},
        {"server deaf", days1(deaf_h), "hours"},
        {"peak attempts in one minute", with_commas(r.peak_attempts_per_minute),
         "per minute (throttle 80)"},
        {"peak minute", r.peak_minute_at ? minute_of(*r.peak_minute_at) : "-", "UTC"},
        {"peak clients looping", with_commas(r.totals.peak_clients_in_shadow_loop), "clients"},
        {"enrollment attempts", with_commas(r.totals.enrollment_attempts), "attempts"},
        {"enrollments ok", with_commas(r.totals.enrollments_ok), "enrollments"},
        {"enrollments failed", with_commas(r.totals.enrollments_failed), "attempts"},
        {"clients in outage", with_commas(r.clients_outage), "clients"},
        {"engine", std::string{to_string(r.engine)}, ""},
        {"events", with_commas(r.events), "events"},
        {"peak cohorts", with_commas(r.peak_cohorts), "records"},
        {"engine memory", fmt::format("{:.1f}", static_cast<double>(r.memory_bytes) / 1048576.0),
         "MiB"},
    };
    h += "<h2>Summary</h2>\n<table id=\"summary\"><tr><th>quantity</th><th>value</th>"
         "<th>unit</th></tr>\n";
    for (const auto& [k, v, u] : rows)
        h += fmt::format("<tr><th>{}</th><td class=\"n\">{}</td><td>{}</td></tr>\n",
                         html_escape(k), html_escape(v), html_escape(u));
    h += "</table>\n<p>Machine-readable: <a href=\"summary.json\">summary.json</a>, <a "
         "href=\"daily.csv\">daily.csv</a> (one row per day).</p>\n";

    h += "<h2>Closed form (pkisim check)</h2>\n<ul id=\"closed-form\">\n";
    for (const auto& f : r.closed_form.findings)
        h += "<li>" + html_escape(f) + "</li>\n";
    for (const auto& t : r.closed_form.trustpoints)
        for (const auto& f : t.findings)
            h += "<li>" + html_escape(t.name) + ": " + html_escape(f) + "</li>\n";
    for (const auto& c : w.changes)
        h += "<li>" + html_escape(c.device) + ": " + html_escape(c.why) + "</li>\n";
    h += "</ul>\n";

    // The configuration: the IOS text of each device, then the scenario's own parameters.
    h += "<h2>Configuration</h2>\n";
    h += fmt::format("<h3>CA: {}</h3>\n<pre class=\"ios\">{}</pre>\n",
                     html_escape(sc.ca.config_path), html_escape(sc.ca.config_text));
    if (sc.ra)
        h += fmt::format("<h3>RA: {}</h3>\n<pre class=\"ios\">{}</pre>\n",
                         html_escape(sc.ra->config_path), html_escape(sc.ra->config_text));
    std::vector<std::string> shown;
    for (const auto& g : sc.groups) {
        if (std::find(shown.begin(), shown.end(), g.config_path) != shown.end())
            continue;
        shown.push_back(g.config_path);
        h += fmt::format("<h3>Clients: {}</h3>\n<pre class=\"ios\">{}</pre>\n",
                         html_escape(g.config_path), html_escape(g.config_text));
    }
    h += "<h3>Fleet</h3>\n<table><tr><th>group</th><th>clients</th><th>pattern</th>"
         "<th>server</th><th>trustpoint</th></tr>\n";
    for (const auto& g : sc.groups) {
        h += fmt::format(
            "<tr><td>{}</td><td class=\"n\">{}</td><td>{} at {} window {}</td><td>{}</td><td>{} "
            "auto-enroll {}</td></tr>\n",
            html_escape(g.name), with_commas(g.count), to_string(g.pattern),
            format_duration(g.at), format_duration(g.window), g.via_ra ? "RA" : "CA",
            html_escape(g.trustpoint.name),
            g.trustpoint.auto_enroll ? fmt::format("{} %", g.trustpoint.auto_enroll_percent)
                                     : std::string{"off"});
    }
    h += "</table>\n<h3>What IOS has no command for (scenario)</h3>\n<table>\n";
    h += table_rows({
        {"start (CA created)", timers::to_iso8601(sc.start)},
        {"horizon", format_duration(sc.effective_horizon())},
        {"time step", format_duration(sc.time_step)},
        {"latency (one way)", format_duration(sc.latency)},
        {"shadow retry interval", format_duration(sc.client.shadow_retry_interval)},
        {"connect timeout", format_duration(sc.client.connect_timeout)},
        {"retry jitter", format_duration(sc.retry_jitter)},
        {"clock skew", "±" + format_duration(sc.clock_skew)},
        {"service time GetNextCACert", format_duration(sc.service_get_next_ca_cert)},
        {"service time enrollment", format_duration(sc.service_enrollment)},
        {"throttle window", std::string{timers::to_string(sc.throttle_window)}},
    });
    h += "</table>\n";

    // Footer: how this page was made.
    std::vector<std::pair<std::string, std::string>> foot = {
        {"pkisim", PKISIM_VERSION},
    };
    if (!o.command_line.empty())
        foot.emplace_back("command", o.command_line);
    foot.emplace_back("scenario", sc.path);
    if (!o.scenario_sha256.empty())
        foot.emplace_back("scenario SHA-256", o.scenario_sha256);
    foot.emplace_back("seed", fmt::format("{}", sc.seed));
    foot.emplace_back("engine", fmt::format("{} ({} events)", to_string(r.engine),
                                            with_commas(r.events)));
    if (!o.deterministic) {
        if (!o.started_at.empty())
            foot.emplace_back("ran at", o.started_at);
        foot.emplace_back("took", fmt::format("{:.2f} s", o.wall_seconds));
    }
    foot.emplace_back("charts", "dygraphs 2.2.1 (Debian libjs-dygraphs), inlined");
    h += "<footer id=\"provenance\"><table>\n" + table_rows(foot) + "</table></footer>\n";

    // Data and scripts last, so that the text renders first.
    ordered_json data;
    data["charts"] = ordered_json::array();
    for (const auto& c : charts)
        data["charts"].push_back(chart_json(c));
    h += "<script type=\"application/json\" id=\"pkisim-data\">" + script_safe(data.dump()) +
         "</script>\n";
    h += "<script id=\"dygraphs-inline\">\n" +
         strip_source_map(std::string{reinterpret_cast<const char*>(embedded::dygraph_js), embedded::dygraph_js_size}) +
         "\n</script>\n";
    h += std::string{"<script>"} + page_script + "</script>\n";
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
    const std::pair<std::string, std::string> files[] = {
        {"summary.json", summary_json(sc, r, o)},
        {"daily.csv", daily_csv(r)},
        {"clients.csv", clients_csv(sc, r)},
        {"timeline.svg", plot_timeline_svg(sc, r)},
        {"daily.svg", plot_daily_svg(r)},
        {"loop.svg", plot_loop_svg(r)},
        {"deaf.svg", plot_deaf_svg(r)},
        {"worst-day.svg", plot_worst_day_svg(sc, r)},
        {"report.html", report_html(sc, r, sweep, o)},
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
