// Parameter sweeps: parsing, a small std::thread pool, the analysis of the results (safe
// direction, safe range, recommended value), and the split form (jobs file + merge).
#include "pkisim/sim/sweep.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

namespace pkisim::sim {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t max_sweep_values = 200;

// A whole-string number ("30", "0.5", "-2"); nothing else.
std::optional<double> strict_number(std::string_view s) {
    while (!s.empty() && s.front() == ' ')
        s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ')
        s.remove_suffix(1);
    if (s.empty())
        return std::nullopt;
    try {
        std::size_t used = 0;
        const std::string str{s};
        const double v = std::stod(str, &used);
        if (used != str.size() || !std::isfinite(v))
            return std::nullopt;
        return v;
    } catch (...) {
        return std::nullopt;
    }
}

std::string format_value(double v) {
    const double r = std::round(v * 1e6) / 1e6;
    if (std::fabs(r - std::round(r)) < 1e-9)
        return fmt::format("{}", std::llround(r));
    return fmt::format("{}", r);
}

// The default step of FROM..TO: 1 up to a width of 20, else the smallest round step that gives
// at most 12 intervals.
double default_step(double width) {
    if (width <= 20)
        return 1;
    static constexpr double round_steps[] = {2,   5,   10,  15,   20,   25,   30,   50,
                                             60,  90,  100, 120,  150,  200,  250,  300,
                                             500, 600, 900, 1000, 1500, 2000, 2500, 5000};
    for (const double s : round_steps)
        if (width / s <= 12)
            return s;
    return std::ceil(width / 12);
}

}  // namespace

std::string_view to_string(safe_direction d) {
    switch (d) {
        case safe_direction::none:
            return "none";
        case safe_direction::all:
            return "all";
        case safe_direction::higher:
            return "higher";
        case safe_direction::lower:
            return "lower";
        case safe_direction::between:
            return "between";
        case safe_direction::mixed:
            return "mixed";
        case safe_direction::unordered:
            return "unordered";
    }
    return "?";
}

tl::expected<sweep_spec, std::string> parse_sweep(std::string_view text) {
    const auto eq = text.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == text.size())
        return tl::make_unexpected(fmt::format(
            "--sweep {}: expected KEY=V1,V2,... or KEY=FROM..TO[:STEP] (e.g. overlap=30,60,90)",
            text));
    sweep_spec spec;
    spec.text = std::string{text};
    spec.key = std::string{text.substr(0, eq)};
    const std::string_view rhs = text.substr(eq + 1);
    if (const auto dots = rhs.find(".."); dots != std::string_view::npos) {
        const auto colon = rhs.find(':', dots);
        const auto from = strict_number(rhs.substr(0, dots));
        const auto to = strict_number(rhs.substr(
            dots + 2, colon == std::string_view::npos ? std::string_view::npos : colon - dots - 2));
        std::optional<double> step;
        if (colon != std::string_view::npos) {
            step = strict_number(rhs.substr(colon + 1));
            if (!step)
                return tl::make_unexpected(fmt::format(
                    "--sweep {}: the step `{}` is not a number; expected FROM..TO[:STEP]", text,
                    rhs.substr(colon + 1)));
        }
        if (!from || !to)
            return tl::make_unexpected(
                fmt::format("--sweep {}: expected numbers in FROM..TO[:STEP] (e.g. {}=30..365)",
                            text, spec.key));
        if (*to < *from)
            return tl::make_unexpected(fmt::format("--sweep {}: FROM ({}) is larger than TO ({})",
                                                   text, format_value(*from), format_value(*to)));
        if (step && *step <= 0)
            return tl::make_unexpected(
                fmt::format("--sweep {}: the step must be more than 0", text));
        spec.default_step = !step;
        spec.step = step ? *step : default_step(*to - *from);
        const double width = *to - *from;
        const double n = std::floor(width / *spec.step + 1e-9);
        if (n + 2 > static_cast<double>(max_sweep_values))
            return tl::make_unexpected(fmt::format(
                "--sweep {}: {} values; at most {} (give a larger step, or split the sweep with "
                "--emit-jobs)",
                text, static_cast<long long>(n) + 1, max_sweep_values));
        for (long long i = 0; i <= static_cast<long long>(n); ++i) {
            const double v = *from + static_cast<double>(i) * *spec.step;
            if (v > *to - 1e-9 * std::max(1.0, std::fabs(*to)))
                break;
            spec.values.push_back(format_value(v));
        }
        spec.values.push_back(format_value(*to));  // both ends are always run
    } else {
        std::size_t i = 0;
        while (i <= rhs.size()) {
            auto j = rhs.find(',', i);
            if (j == std::string_view::npos)
                j = rhs.size();
            auto v = rhs.substr(i, j - i);
            if (v.empty())
                return tl::make_unexpected(fmt::format("--sweep {}: empty value", text));
            spec.values.emplace_back(v);
            i = j + 1;
        }
        if (spec.values.size() > max_sweep_values)
            return tl::make_unexpected(
                fmt::format("--sweep {}: at most {} values", text, max_sweep_values));
    }
    return spec;
}

std::string describe(const sweep_spec& spec) {
    std::string o = fmt::format("Sweep {}", spec.text.empty() ? spec.key : spec.text);
    if (spec.step)
        o += fmt::format(": step {}{}", format_value(*spec.step),
                         spec.default_step ? " (the default; add :STEP to choose)" : "");
    o += fmt::format(", {} value{}: ", spec.values.size(), spec.values.size() == 1 ? "" : "s");
    for (std::size_t i = 0; i < spec.values.size(); ++i)
        o += (i ? ", " : "") + spec.values[i];
    return o + "\n";
}

sweep_analysis analyze_sweep(const std::vector<sweep_point>& points) {
    sweep_analysis a;
    const auto safe = [&](std::size_t i) { return points[i].result.outcome == verdict::safe; };
    std::vector<double> num(points.size());
    bool numeric = true;
    for (std::size_t i = 0; i < points.size(); ++i) {
        const auto v = strict_number(points[i].value);
        numeric = numeric && v.has_value();
        num[i] = v.value_or(0);
    }
    if (!numeric) {
        a.direction = safe_direction::unordered;
        for (std::size_t i = 0; i < points.size(); ++i) {
            if (safe(i)) {
                a.recommended = i;
                a.boundary = i;
                break;
            }
        }
        return a;
    }
    std::vector<std::size_t> order(points.size());
    for (std::size_t i = 0; i < order.size(); ++i)
        order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t x, std::size_t y) { return num[x] < num[y]; });
    // Runs of consecutive safe values in numeric order: [begin, end) positions in `order`.
    std::vector<std::pair<std::size_t, std::size_t>> runs;
    for (std::size_t k = 0; k < order.size();) {
        if (!safe(order[k])) {
            ++k;
            continue;
        }
        std::size_t e = k;
        while (e < order.size() && safe(order[e]))
            ++e;
        runs.emplace_back(k, e);
        k = e;
    }
    if (runs.empty()) {
        a.direction = safe_direction::none;
        return a;
    }
    const std::size_t n = order.size();
    auto run = runs.front();
    if (runs.size() == 1) {
        a.direction = run.first == 0 && run.second == n ? safe_direction::all
                      : run.first == 0                  ? safe_direction::lower
                      : run.second == n                 ? safe_direction::higher
                                                        : safe_direction::between;
    } else {
        a.direction = safe_direction::mixed;
        for (const auto& r : runs) {
            const double w = num[order[r.second - 1]] - num[order[r.first]];
            const double best = num[order[run.second - 1]] - num[order[run.first]];
            if (r.second - r.first > run.second - run.first ||
                (r.second - r.first == run.second - run.first && w > best))
                run = r;
        }
    }
    a.safe_from = order[run.first];
    a.safe_to = order[run.second - 1];
    if (a.direction == safe_direction::higher)
        a.boundary = order[run.first];
    if (a.direction == safe_direction::lower)
        a.boundary = order[run.second - 1];
    // Recommended: the safe value of the run farthest from the nearest unsafe value tested.
    std::optional<double> best;
    for (std::size_t k = run.first; k < run.second; ++k) {
        double d = std::numeric_limits<double>::infinity();
        if (run.first > 0)
            d = std::min(d, num[order[k]] - num[order[run.first - 1]]);
        if (run.second < n)
            d = std::min(d, num[order[run.second]] - num[order[k]]);
        if (std::isinf(d)) {
            // Every value is safe: the middle of the tested range.
            const double mid = (num[order.front()] + num[order.back()]) / 2;
            d = -std::fabs(num[order[k]] - mid);
        }
        if (!best || d > *best) {
            best = d;
            a.recommended = order[k];
        }
    }
    return a;
}

std::string describe(const sweep_analysis& a, const sweep_result& s) {
    const auto& key = s.key;
    const auto v = [&](const std::optional<std::size_t>& i) {
        return i ? s.points[*i].value : std::string{"-"};
    };
    // The nearest unsafe value on a side of the safe run (numeric order).
    const auto nearest_unsafe = [&](bool below) -> std::optional<std::string> {
        if (!a.safe_from || !a.safe_to)
            return std::nullopt;
        const double edge = std::stod(s.points[below ? *a.safe_from : *a.safe_to].value);
        std::optional<double> bestv;
        std::string best;
        for (const auto& p : s.points) {
            if (p.result.outcome == verdict::safe)
                continue;
            const double x = std::stod(p.value);
            if (below ? (x < edge && (!bestv || x > *bestv))
                      : (x > edge && (!bestv || x < *bestv))) {
                bestv = x;
                best = p.value;
            }
        }
        if (!bestv)
            return std::nullopt;
        return best;
    };
    std::string o;
    switch (a.direction) {
        case safe_direction::none:
            return fmt::format("No value of {} in this sweep is safe.\n", key);
        case safe_direction::unordered:
            return a.recommended ? fmt::format(
                                       "Values of {} are not numbers: no direction. The first safe "
                                       "one in the order given: {}.\n",
                                       key, v(a.recommended))
                                 : fmt::format("No value of {} in this sweep is safe.\n", key);
        case safe_direction::all:
            o += fmt::format(
                "Every value of {} tested is safe ({} .. {}): the sweep shows no safer "
                "direction.\n",
                key, v(a.safe_from), v(a.safe_to));
            break;
        case safe_direction::higher:
            o += fmt::format(
                "Higher {} is safer: safe from {} up (to {}, the largest tested); {} and below "
                "are not. The smallest safe value lies in ({}, {}].\n",
                key, v(a.safe_from), v(a.safe_to), nearest_unsafe(true).value_or("-"),
                nearest_unsafe(true).value_or("-"), v(a.safe_from));
            break;
        case safe_direction::lower:
            o += fmt::format(
                "Lower {} is safer: safe up to {} (from {}, the smallest tested); {} and above "
                "are not. The largest safe value lies in [{}, {}).\n",
                key, v(a.safe_to), v(a.safe_from), nearest_unsafe(false).value_or("-"),
                v(a.safe_to), nearest_unsafe(false).value_or("-"));
            break;
        case safe_direction::between:
            if (*a.safe_from == *a.safe_to) {
                o += fmt::format(
                    "{} is safe only at {}: {} below it fails, and so does {} above it (neither "
                    "direction alone is safer).\n",
                    key, v(a.safe_from), nearest_unsafe(true).value_or("-"),
                    nearest_unsafe(false).value_or("-"));
                break;
            }
            o += fmt::format(
                "{} is safe only between {} and {}: {} and below fail, and so do {} and above "
                "(neither direction alone is safer).\n",
                key, v(a.safe_from), v(a.safe_to), nearest_unsafe(true).value_or("-"),
                nearest_unsafe(false).value_or("-"));
            break;
        case safe_direction::mixed: {
            std::string list;
            for (const auto& p : s.points)
                if (p.result.outcome == verdict::safe)
                    list += (list.empty() ? "" : ", ") + p.value;
            o += fmt::format(
                "Safe and unsafe values of {} alternate (safe: {}): not monotone at this "
                "resolution. The widest safe run is {} .. {}.\n",
                key, list, v(a.safe_from), v(a.safe_to));
            break;
        }
    }
    if (a.recommended) {
        o += fmt::format("Recommended {}: {} (the safe value farthest from the unsafe ones tested)",
                         key, v(a.recommended));
        if (a.boundary && *a.boundary != *a.recommended)
            o += fmt::format("; the least change that is safe: {}", v(a.boundary));
        o += ".\n";
    }
    return o;
}

tl::expected<sweep_result, std::string> run_sweep(const scenario& base, const sweep_spec& spec,
                                                  const run_options& options, unsigned threads) {
    sweep_result out;
    out.key = spec.key;
    out.spec = spec;
    std::vector<scenario> scenarios;
    for (const auto& v : spec.values) {
        scenario sc = base;
        if (auto r = apply_setting(sc, spec.key, v, fmt::format("--sweep {}={}", spec.key, v)); !r)
            return tl::make_unexpected(r.error());
        scenarios.push_back(std::move(sc));
        out.points.push_back(sweep_point{v, {}, {}});
    }
    run_options quiet = options;
    quiet.on_progress = nullptr;  // several runs at once: the caller reports per point
    std::atomic<std::size_t> next{0};
    auto worker = [&] {
        for (std::size_t i = next++; i < scenarios.size(); i = next++) {
            out.points[i].result = run_simulation(scenarios[i], quiet);
        }
    };
    std::vector<std::thread> pool;
    const unsigned n =
        std::max(1u, std::min<unsigned>(threads, static_cast<unsigned>(scenarios.size())));
    for (unsigned t = 1; t < n; ++t)
        pool.emplace_back(worker);
    worker();
    for (auto& t : pool)
        t.join();
    out.analysis = analyze_sweep(out.points);
    return out;
}

std::string shell_quote(std::string_view word) {
    const bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) ||
               std::string_view{"/._-=:,+@%"}.find(c) != std::string_view::npos;
    });
    if (plain)
        return std::string{word};
    std::string o = "'";
    for (const char c : word) {
        if (c == '\'')
            o += "'\\''";
        else
            o += c;
    }
    return o + "'";
}

tl::expected<std::string, std::string> emit_jobs(const std::string& dir, const sweep_spec& spec,
                                                 const std::string& command_prefix) {
    std::error_code ec;
    fs::create_directories(fs::path{dir} / "points", ec);
    if (ec)
        return tl::make_unexpected(
            fmt::format("--emit-jobs {}: cannot create: {}", dir, ec.message()));
    const fs::path abs = fs::absolute(dir).lexically_normal();
    nlohmann::ordered_json manifest;
    manifest["sweep"] = spec.text;
    manifest["key"] = spec.key;
    manifest["values"] = spec.values;
    manifest["step"] = spec.step ? nlohmann::ordered_json(*spec.step) : nullptr;
    manifest["default_step"] = spec.default_step;
    manifest["points"] = nlohmann::ordered_json::array();
    std::string jobs;
    const int width = spec.values.size() > 100 ? 3 : 2;
    for (std::size_t i = 0; i < spec.values.size(); ++i) {
        const std::string rel = fmt::format("points/{:0{}}", i, width);
        manifest["points"].push_back(rel);
        jobs += fmt::format("{} --sweep-point {} --out {}\n", command_prefix,
                            shell_quote(spec.key + "=" + spec.values[i]),
                            shell_quote((abs / rel).string()));
    }
    const auto write = [&](const fs::path& p,
                           const std::string& text) -> tl::expected<void, std::string> {
        std::ofstream out{p, std::ios::binary};
        out << text;
        if (!out)
            return tl::make_unexpected(fmt::format("{}: cannot write", p.string()));
        return {};
    };
    if (auto w = write(abs / "jobs.txt", jobs); !w)
        return tl::make_unexpected(w.error());
    if (auto w = write(abs / "sweep.json", manifest.dump(2) + "\n"); !w)
        return tl::make_unexpected(w.error());
    return (abs / "jobs.txt").string();
}

tl::expected<sweep_point, std::string> sweep_point_from_summary(std::string_view json_text,
                                                                const std::string& path,
                                                                std::string* key) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(json_text);
    } catch (const std::exception& e) {
        return tl::make_unexpected(fmt::format("{}: not JSON: {}", path, e.what()));
    }
    try {
        const auto& sp = j.at("sweep_point");
        sweep_point p;
        if (key)
            *key = sp.at("key").get<std::string>();
        p.value = sp.at("value").get<std::string>();
        auto& r = p.result;
        const auto v = j.at("verdict").get<std::string>();
        r.outcome = v == "safe"    ? verdict::safe
                    : v == "storm" ? verdict::storm
                    : v == "outage"
                        ? verdict::outage
                        : throw std::runtime_error{"verdict `" + v + "` is not safe/storm/outage"};
        const auto opt_time = [&](const char* k) -> std::optional<time_point> {
            if (!j.contains(k) || j[k].is_null())
                return std::nullopt;
            auto t = timers::parse_iso8601(j[k].get<std::string>());
            if (!t)
                throw std::runtime_error{std::string{"`"} + k + "` is not an ISO 8601 time"};
            return t;
        };
        r.start = opt_time("start").value_or(time_point{});
        r.end = opt_time("end").value_or(time_point{});
        r.ca.not_after = opt_time("ca_not_after").value_or(time_point{});
        r.shadow_generated_at = opt_time("shadow_generated_at");
        r.ra_shadow_at = opt_time("ra_shadow_at");
        r.first_get_next_ca_cert_at = opt_time("first_get_next_ca_cert_at");
        r.first_404_at = opt_time("first_404_at");
        r.last_404_at = opt_time("last_404_at");
        r.peak_minute_at = opt_time("peak_minute_at");
        if (!j.at("first_404_days_before_ca_expiry").is_null())
            r.first_404_days_before_ca_expiry = j["first_404_days_before_ca_expiry"].get<double>();
        r.clients = j.at("clients").get<std::uint64_t>();
        r.clients_hit_404 = j.at("clients_hit_404").get<std::uint64_t>();
        r.windows_404 = j.value("windows_404", r.clients_hit_404);
        r.clients_outage = j.at("clients_outage").get<std::uint64_t>();
        r.max_404_window_days = j.at("max_404_window_days").get<double>();
        r.mean_404_window_days = j.at("mean_404_window_days").get<double>();
        r.peak_attempts_per_minute = j.at("peak_attempts_per_minute").get<std::uint64_t>();
        r.totals.get_next_ca_cert_requests = j.at("get_next_ca_cert_requests").get<std::uint64_t>();
        r.totals.responses_404 = j.at("responses_404").get<std::uint64_t>();
        r.totals.deaf_ms = std::llround(j.at("deaf_seconds").get<double>() * 1000.0);
        r.totals.enrollments_failed = j.at("enrollments_failed").get<std::uint64_t>();
        r.totals.enrollments_ok = j.at("enrollments_ok").get<std::uint64_t>();
        r.totals.clients_outage = r.clients_outage;
        return p;
    } catch (const std::exception& e) {
        return tl::make_unexpected(
            fmt::format("{}: not a sweep point's summary: {}", path, e.what()));
    }
}

tl::expected<sweep_result, std::string> merge_sweep(const std::vector<std::string>& dirs) {
    if (dirs.empty())
        return tl::make_unexpected("sweep-merge: expected at least one folder");
    std::optional<std::string> key;
    std::vector<std::string> manifest_values;  // in manifest order, first manifest first
    std::map<std::string, std::string> expected_where;
    std::optional<sweep_spec> spec;
    std::vector<std::pair<std::string, sweep_point>> found;  // (file, point)
    const auto read = [](const fs::path& p) {
        std::ifstream in{p, std::ios::binary};
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    };
    for (const auto& d : dirs) {
        std::error_code ec;
        if (!fs::is_directory(d, ec))
            return tl::make_unexpected(fmt::format("sweep-merge: {}: not a folder", d));
        const fs::path manifest = fs::path{d} / "sweep.json";
        if (fs::exists(manifest)) {
            try {
                const auto m = nlohmann::json::parse(read(manifest));
                const auto k = m.at("key").get<std::string>();
                if (key && *key != k)
                    return tl::make_unexpected(fmt::format(
                        "sweep-merge: {} sweeps {}, the others {}", manifest.string(), k, *key));
                key = k;
                const auto values = m.at("values").get<std::vector<std::string>>();
                const auto pts = m.at("points").get<std::vector<std::string>>();
                for (std::size_t i = 0; i < values.size(); ++i) {
                    if (expected_where.count(values[i]))
                        continue;
                    manifest_values.push_back(values[i]);
                    expected_where[values[i]] =
                        (fs::path{d} / (i < pts.size() ? pts[i] : std::string{})).string();
                }
                if (!spec) {
                    sweep_spec sp;
                    sp.key = k;
                    sp.text = m.value("sweep", k);
                    sp.values = values;
                    if (m.contains("step") && !m["step"].is_null())
                        sp.step = m["step"].get<double>();
                    sp.default_step = m.value("default_step", false);
                    spec = sp;
                }
            } catch (const std::exception& e) {
                return tl::make_unexpected(fmt::format("sweep-merge: {}: not a sweep manifest: {}",
                                                       manifest.string(), e.what()));
            }
        }
        std::vector<fs::path> files;
        for (auto it = fs::recursive_directory_iterator{d, ec};
             !ec && it != fs::recursive_directory_iterator{}; it.increment(ec)) {
            if (it->is_regular_file() && it->path().filename() == "summary.json")
                files.push_back(it->path());
        }
        std::sort(files.begin(), files.end());
        for (const auto& f : files) {
            const std::string text = read(f);
            if (text.find("\"sweep_point\"") == std::string::npos)
                continue;  // a plain run's summary (e.g. the merged report itself)
            std::string k;
            auto p = sweep_point_from_summary(text, f.string(), &k);
            if (!p)
                return tl::make_unexpected("sweep-merge: " + p.error());
            if (key && *key != k)
                return tl::make_unexpected(
                    fmt::format("sweep-merge: {} is a point of a sweep of {}, the others of {}",
                                f.string(), k, *key));
            key = k;
            p->out_dir = f.parent_path().string();
            found.emplace_back(f.string(), std::move(*p));
        }
    }
    if (!key || found.empty())
        return tl::make_unexpected(fmt::format(
            "sweep-merge: no point summaries (summary.json with a sweep_point) under {}",
            fmt::join(dirs, ", ")));
    std::map<std::string, std::size_t> by_value;
    for (std::size_t i = 0; i < found.size(); ++i) {
        const auto& v = found[i].second.value;
        if (auto it = by_value.find(v); it != by_value.end())
            return tl::make_unexpected(
                fmt::format("sweep-merge: two summaries for {}={}: {} and {}", *key, v,
                            found[it->second].first, found[i].first));
        by_value[v] = i;
    }
    std::vector<std::string> missing;
    for (const auto& v : manifest_values)
        if (!by_value.count(v))
            missing.push_back(fmt::format("{}={} ({})", *key, v, expected_where[v]));
    if (!missing.empty()) {
        if (missing.size() > 8) {
            const auto n = missing.size();
            missing.resize(8);
            missing.push_back(fmt::format("and {} more", n - 8));
        }
        return tl::make_unexpected(fmt::format(
            "sweep-merge: {} point(s) have no summary.json (not run yet, or failed): {}",
            missing.size(), fmt::join(missing, ", ")));
    }
    sweep_result out;
    out.key = *key;
    std::vector<bool> used(found.size(), false);
    for (const auto& v : manifest_values) {
        const auto i = by_value[v];
        used[i] = true;
        out.points.push_back(found[i].second);
    }
    // Points no manifest lists (a manifest was not copied): numeric order after the rest.
    std::vector<std::size_t> extra;
    for (std::size_t i = 0; i < found.size(); ++i)
        if (!used[i])
            extra.push_back(i);
    std::stable_sort(extra.begin(), extra.end(), [&](std::size_t a, std::size_t b) {
        const auto x = strict_number(found[a].second.value);
        const auto y = strict_number(found[b].second.value);
        if (x && y)
            return *x < *y;
        return found[a].second.value < found[b].second.value;
    });
    for (const auto i : extra)
        out.points.push_back(found[i].second);
    if (spec && extra.empty() && spec->values.size() == out.points.size())
        out.spec = spec;
    out.analysis = analyze_sweep(out.points);
    return out;
}

}  // namespace pkisim::sim
