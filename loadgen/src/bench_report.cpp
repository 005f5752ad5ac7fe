// Reports of `pkisim bench`: terminal summary, JSON, per-second CSV and a self-contained HTML
// page (hand-written SVG, no scripts, like the simulator's report).
#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench_plan.hpp"
#include "pkisim/sim/report.hpp"

namespace pkisim::loadgen {

namespace {

std::string fmt_ns(std::uint64_t ns) {
    const double v = static_cast<double>(ns);
    if (ns < 1'000) {
        return fmt::format("{} ns", ns);
    }
    if (ns < 1'000'000) {
        return fmt::format("{:.1f} us", v / 1e3);
    }
    if (ns < 1'000'000'000) {
        return fmt::format("{:.2f} ms", v / 1e6);
    }
    return fmt::format("{:.2f} s", v / 1e9);
}

std::string loop_text(const bench_options& o) {
    if (o.rate) {
        return fmt::format(
            "open loop at {:g}/s (latency from the intended send time), at most {} "
            "in flight",
            *o.rate, o.concurrency);
    }
    return fmt::format("closed loop, {} concurrent", o.concurrency);
}

double seconds(std::chrono::nanoseconds d) {
    return std::chrono::duration<double>(d).count();
}

struct percentile_row {
    const char* name;
    double p;
};
constexpr percentile_row percentiles[] = {{"p50", 50}, {"p90", 90}, {"p99", 99}, {"p99.9", 99.9}};

using sim::html_escape;

struct series {
    std::string name;
    std::string color;
    std::vector<double> values;
};

// A line chart of per-second values: x = seconds since the window opened.
std::string svg_chart(std::string_view id, std::string_view title, std::string_view y_label,
                      const std::vector<series>& lines, bool log_y) {
    constexpr double w = 940, h = 280, left = 90, right = 180, top = 30, bottom = 40;
    const double pw = w - left - right, ph = h - top - bottom;
    std::size_t n = 0;
    double ymax = 0, ymin_pos = 0;
    for (const auto& s : lines) {
        n = std::max(n, s.values.size());
        for (double v : s.values) {
            ymax = std::max(ymax, v);
            if (v > 0 && (ymin_pos == 0 || v < ymin_pos)) {
                ymin_pos = v;
            }
        }
    }
    if (ymax <= 0) {
        ymax = 1;
    }
    double lo = 0, hi = ymax * 1.05;
    if (log_y) {
        lo = std::floor(std::log10(ymin_pos > 0 ? ymin_pos : 1));
        hi = std::ceil(std::log10(ymax));
        if (hi <= lo) {
            hi = lo + 1;
        }
    }
    auto ypos = [&](double v) {
        double t;
        if (log_y) {
            t = v > 0 ? (std::log10(v) - lo) / (hi - lo) : 0;
        } else {
            t = v / hi;
        }
        return top + ph * (1 - std::clamp(t, 0.0, 1.0));
    };
    const double xs = n > 1 ? pw / static_cast<double>(n - 1) : pw;
    std::string svg = fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"{}\" width=\"{}\" height=\"{}\" "
        "font-family=\"sans-serif\" font-size=\"12\">\n<text x=\"{}\" y=\"18\" "
        "font-weight=\"bold\">{}</text>\n<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" "
        "fill=\"none\" stroke=\"#999\"/>\n",
        id, w, h, left, html_escape(title), left, top, pw, ph);
    // y ticks
    if (log_y) {
        for (double e = lo; e <= hi + 1e-9; e += 1) {
            const double v = std::pow(10.0, e);
            const double y = ypos(v);
            svg += fmt::format(
                "<line x1=\"{}\" x2=\"{}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#eee\"/><text "
                "x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n",
                left, left + pw, y, y, left - 4, y + 4, fmt_ns(static_cast<std::uint64_t>(v)));
        }
    } else {
        for (int i = 0; i <= 4; ++i) {
            const double v = hi * i / 4;
            const double y = ypos(v);
            svg += fmt::format(
                "<line x1=\"{}\" x2=\"{}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#eee\"/><text "
                "x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{:.0f}</text>\n",
                left, left + pw, y, y, left - 4, y + 4, v);
        }
    }
    // x ticks: about 10
    const std::size_t step = std::max<std::size_t>(1, n / 10);
    for (std::size_t i = 0; i < n; i += step) {
        const double x = left + xs * static_cast<double>(i);
        svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", x,
                           top + ph + 16, i);
    }
    svg += fmt::format(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">seconds since warm-up "
        "ended</text>\n<text x=\"12\" y=\"{}\" transform=\"rotate(-90 12 {})\" "
        "text-anchor=\"middle\">{}</text>\n",
        left + pw / 2, h - 6, top + ph / 2, top + ph / 2, html_escape(y_label));
    int legend = 0;
    for (const auto& s : lines) {
        std::string points;
        for (std::size_t i = 0; i < s.values.size(); ++i) {
            if (log_y && s.values[i] <= 0) {
                continue;
            }
            points += fmt::format("{:.1f},{:.1f} ", left + xs * static_cast<double>(i),
                                  ypos(s.values[i]));
        }
        svg += fmt::format(
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>\n", s.color,
            points);
        const double ly = top + 14.0 + 16.0 * legend++;
        svg += fmt::format(
            "<line x1=\"{}\" x2=\"{}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
            "stroke-width=\"3\"/><text x=\"{}\" y=\"{:.1f}\">{}</text>\n",
            left + pw + 10, left + pw + 30, ly, ly, s.color, left + pw + 35, ly + 4,
            html_escape(s.name));
    }
    svg += "</svg>\n";
    return svg;
}

std::string outcome_color(outcome o) {
    switch (o) {
        case outcome::http_2xx:
        case outcome::scep_success:
            return "#2a9d3a";
        case outcome::scep_pending:
            return "#7fb3d5";
        case outcome::http_3xx:
            return "#999999";
        case outcome::http_4xx:
            return "#e69f00";
        case outcome::http_5xx:
            return "#d55e00";
        case outcome::refused:
            return "#cc79a7";
        case outcome::reset:
            return "#8e44ad";
        case outcome::connect_timeout:
            return "#c0392b";
        case outcome::read_timeout:
            return "#34495e";
        case outcome::bad_response:
            return "#000000";
        default:
            return "#f1c40f";
    }
}

}  // namespace

std::string bench_text(const bench_options& o, const bench_plan& plan, const bench_result& r) {
    std::string t = fmt::format("pkisim bench: {}\n", plan.description);
    t += fmt::format("  {}, {} thread{}; {:.2f} s measured after {:.1f} s warm-up (stopped: {})\n",
                     loop_text(o), o.threads, o.threads == 1 ? "" : "s", seconds(r.elapsed),
                     seconds(o.warmup), r.stop_reason.empty() ? "-" : r.stop_reason);
    const double el = seconds(r.elapsed);
    t += fmt::format("  requests    {} = {:.1f} /s; successes {} = {:.1f} /s; {} new connections\n",
                     r.completed, r.throughput(), r.successes(),
                     el > 0 ? static_cast<double>(r.successes()) / el : 0.0, r.connections);
    t += fmt::format("  latency     mean {}", fmt_ns(static_cast<std::uint64_t>(r.latency.mean())));
    for (const auto& p : percentiles) {
        t += fmt::format("  {} {}", p.name, fmt_ns(r.latency.value_at_percentile(p.p)));
    }
    t += fmt::format("  max {}\n", fmt_ns(r.latency.max()));
    t += "  outcomes   ";
    bool any = false;
    for (std::size_t i = 0; i < outcome_count; ++i) {
        if (r.outcomes[i]) {
            t += fmt::format(" {} {}", to_string(static_cast<outcome>(i)), r.outcomes[i]);
            any = true;
        }
    }
    t += any ? "\n" : " none\n";
    if (r.polls) {
        t += fmt::format("  polls       {} CertPoll\n", r.polls);
    }
    if (r.unfinished) {
        t += fmt::format("  unfinished  {} in flight at the end (not counted)\n", r.unfinished);
    }
    return t;
}

std::string bench_json(const bench_options& o, const bench_plan& plan, const bench_result& r) {
    using nlohmann::json;
    json j;
    j["tool"] = "pkisim bench";
    j["version"] = PKISIM_VERSION;
    j["target"] = o.url;
    j["description"] = plan.description;
    j["mode"] = std::string{to_string(o.mode)};
    j["concurrency"] = o.concurrency;
    j["threads"] = o.threads;
    j["rate_per_s"] = o.rate ? json(*o.rate) : json(nullptr);
    j["warmup_s"] = seconds(o.warmup);
    j["elapsed_s"] = seconds(r.elapsed);
    j["stop_reason"] = r.stop_reason;
    j["completed"] = r.completed;
    j["sent"] = r.sent;
    j["unfinished"] = r.unfinished;
    j["warmup_completed"] = r.warmup_completed;
    j["connections"] = r.connections;
    j["polls"] = r.polls;
    j["throughput_per_s"] = r.throughput();
    j["successes"] = r.successes();
    const double el = seconds(r.elapsed);
    j["success_per_s"] = el > 0 ? static_cast<double>(r.successes()) / el : 0.0;
    auto lat = [](const histogram& h) {
        json l;
        l["count"] = h.count();
        l["min"] = h.min();
        l["mean"] = h.mean();
        for (const auto& p : percentiles) {
            l[p.name] = h.value_at_percentile(p.p);
        }
        l["max"] = h.max();
        return l;
    };
    j["latency_ns"] = lat(r.latency);
    j["success_latency_ns"] = lat(r.success_latency);
    json oc = json::object();
    for (std::size_t i = 0; i < outcome_count; ++i) {
        oc[std::string{to_string(static_cast<outcome>(i))}] = r.outcomes[i];
    }
    j["outcomes"] = oc;
    json secs = json::array();
    for (std::size_t s = 0; s < r.seconds.size(); ++s) {
        const auto& st = r.seconds[s];
        json e;
        e["second"] = s;
        e["completed"] = st.completed;
        e["p50_ns"] = st.p50_ns;
        e["p99_ns"] = st.p99_ns;
        e["max_ns"] = st.max_ns;
        json so = json::object();
        for (std::size_t i = 0; i < outcome_count; ++i) {
            if (st.outcomes[i]) {
                so[std::string{to_string(static_cast<outcome>(i))}] = st.outcomes[i];
            }
        }
        e["outcomes"] = so;
        secs.push_back(std::move(e));
    }
    j["seconds"] = std::move(secs);
    return j.dump(2) + "\n";
}

std::string bench_csv(const bench_result& r) {
    std::string c = "second,completed,p50_ms,p99_ms,max_ms";
    for (std::size_t i = 0; i < outcome_count; ++i) {
        c += fmt::format(",{}", to_string(static_cast<outcome>(i)));
    }
    c += "\n";
    for (std::size_t s = 0; s < r.seconds.size(); ++s) {
        const auto& st = r.seconds[s];
        c += fmt::format("{},{},{:.3f},{:.3f},{:.3f}", s, st.completed,
                         static_cast<double>(st.p50_ns) / 1e6, static_cast<double>(st.p99_ns) / 1e6,
                         static_cast<double>(st.max_ns) / 1e6);
        for (std::size_t i = 0; i < outcome_count; ++i) {
            c += fmt::format(",{}", st.outcomes[i]);
        }
        c += "\n";
    }
    return c;
}

std::string bench_html(const bench_options& o, const bench_plan& plan, const bench_result& r) {
    std::vector<series> thr{{"completed", "#1f77b4", {}}, {"successes", "#2a9d3a", {}}};
    std::vector<series> lat{{"p50", "#2a9d3a", {}}, {"p99", "#e69f00", {}}, {"max", "#c0392b", {}}};
    std::vector<series> out;
    std::vector<std::size_t> present;
    for (std::size_t i = 0; i < outcome_count; ++i) {
        if (r.outcomes[i]) {
            present.push_back(i);
            out.push_back({std::string{to_string(static_cast<outcome>(i))},
                           outcome_color(static_cast<outcome>(i)),
                           {}});
        }
    }
    for (const auto& st : r.seconds) {
        thr[0].values.push_back(static_cast<double>(st.completed));
        std::uint64_t ok = 0;
        for (std::size_t i = 0; i < outcome_count; ++i) {
            if (is_success(static_cast<outcome>(i))) {
                ok += st.outcomes[i];
            }
        }
        thr[1].values.push_back(static_cast<double>(ok));
        lat[0].values.push_back(static_cast<double>(st.p50_ns));
        lat[1].values.push_back(static_cast<double>(st.p99_ns));
        lat[2].values.push_back(static_cast<double>(st.max_ns));
        for (std::size_t k = 0; k < present.size(); ++k) {
            out[k].values.push_back(static_cast<double>(st.outcomes[present[k]]));
        }
    }
    std::string h =
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>pkisim bench</title>\n"
        "<style>body{font-family:sans-serif;margin:1.5em;max-width:960px}"
        "pre{background:#f6f6f6;padding:.8em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}</style></head><body>\n";
    h += fmt::format("<h1>pkisim bench</h1>\n<p>{}</p>\n<pre>{}</pre>\n",
                     html_escape(plan.description), html_escape(bench_text(o, plan, r)));
    h += "<h2>Throughput</h2>\n" + svg_chart("plot-throughput",
                                             "answers per second (by completion second)",
                                             "per second", thr, false);
    h += "<h2>Latency</h2>\n" +
         svg_chart("plot-latency",
                   o.rate ? "latency from the intended send time" : "latency from the send time",
                   "latency", lat, true);
    h += "<h2>Outcomes over time</h2>\n" +
         svg_chart("plot-outcomes", "outcomes per second", "per second", out, false);
    h += "<h2>Outcomes</h2>\n<table><tr><th>outcome</th><th>count</th><th>share</th></tr>\n";
    for (std::size_t i : present) {
        h += fmt::format(
            "<tr><td style=\"text-align:left\">{}</td><td>{}</td><td>{:.2f} %</td></tr>\n",
            to_string(static_cast<outcome>(i)), r.outcomes[i],
            r.completed
                ? 100.0 * static_cast<double>(r.outcomes[i]) / static_cast<double>(r.completed)
                : 0.0);
    }
    h += "</table>\n</body></html>\n";
    return h;
}

}  // namespace pkisim::loadgen
