// Parameter sweeps on a small std::thread pool.
#include "pkisim/sim/sweep.hpp"

#include <atomic>
#include <cmath>
#include <thread>

#include <fmt/format.h>

namespace pkisim::sim {

tl::expected<sweep_spec, std::string> parse_sweep(std::string_view text) {
    const auto eq = text.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == text.size())
        return tl::make_unexpected(fmt::format(
            "--sweep {}: expected KEY=V1,V2,... or KEY=FROM..TO[:STEP] (e.g. overlap=30,60,90)",
            text));
    sweep_spec spec;
    spec.key = std::string{text.substr(0, eq)};
    const std::string_view rhs = text.substr(eq + 1);
    if (const auto dots = rhs.find(".."); dots != std::string_view::npos) {
        const auto colon = rhs.find(':', dots);
        double from = 0;
        double to = 0;
        double step = 0;
        try {
            from = std::stod(std::string{rhs.substr(0, dots)});
            to = std::stod(std::string{rhs.substr(dots + 2, colon == std::string_view::npos
                                                                ? std::string_view::npos
                                                                : colon - dots - 2)});
            if (colon != std::string_view::npos)
                step = std::stod(std::string{rhs.substr(colon + 1)});
        } catch (...) {
            return tl::make_unexpected(
                fmt::format("--sweep {}: expected numbers in FROM..TO[:STEP]", text));
        }
        if (step == 0)
            step = spec.key == "overlap" ? 30 : 5;
        if (to < from || step <= 0 || (to - from) / step > 200)
            return tl::make_unexpected(
                fmt::format("--sweep {}: expected FROM <= TO and at most 200 values", text));
        for (double v = from; v <= to + 1e-9; v += step) {
            spec.values.push_back(std::fabs(v - std::round(v)) < 1e-9
                                      ? fmt::format("{}", std::llround(v))
                                      : fmt::format("{}", v));
        }
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
    }
    if (spec.values.empty())
        return tl::make_unexpected(fmt::format("--sweep {}: no values", text));
    return spec;
}

tl::expected<sweep_result, std::string> run_sweep(const scenario& base, const sweep_spec& spec,
                                                  const run_options& options, unsigned threads) {
    sweep_result out;
    out.key = spec.key;
    std::vector<scenario> scenarios;
    for (const auto& v : spec.values) {
        scenario sc = base;
        if (auto r = apply_setting(sc, spec.key, v, fmt::format("--sweep {}={}", spec.key, v)); !r)
            return tl::make_unexpected(r.error());
        scenarios.push_back(std::move(sc));
        out.points.push_back(sweep_point{v, {}});
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
    for (unsigned t = 0; t < n; ++t)
        pool.emplace_back(worker);
    for (auto& t : pool)
        t.join();

    for (std::size_t i = 0; i < out.points.size(); ++i) {
        if (out.points[i].result.outcome != verdict::safe)
            continue;
        if (!out.smallest_safe) {
            out.smallest_safe = i;
            continue;
        }
        double a = 0;
        double b = 0;
        try {
            a = std::stod(out.points[i].value);
            b = std::stod(out.points[*out.smallest_safe].value);
        } catch (...) {
            continue;  // not numeric: the first safe one in the given order
        }
        if (a < b)
            out.smallest_safe = i;
    }
    return out;
}

}  // namespace pkisim::sim
