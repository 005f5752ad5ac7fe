// 10,000 routers' captures (`show clock`, `show running-config`, `show crypto pki certificates`,
// `show crypto pki timers`), many routers per file as an engineer's collection script leaves
// them: how long timers::parse_captures and derive_router_state take, against a baseline of
// the same bytes in the same run (splitting them into lines: the least any reader does).
// Target (issue 14): well under a second for 10,000 routers.
#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include <benchmark/benchmark.h>

#include "pkisim/timers/ios_show.hpp"

namespace {

using namespace pkisim::timers;

constexpr int routers = 10'000;

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream buf;
    buf << in.rdbuf();
    return buf.str();
}

// The six composed routers of tests/data/inventory/fleet/spokes.txt, renamed and repeated
// (c0-114 ... c1666-119): 10,002 routers, ~16 MB.
const std::string& fleet_text() {
    static const std::string text = [] {
        const std::string base =
            read_file(std::string{PKISIM_SOURCE_DIR} + "/tests/data/inventory/fleet/spokes.txt");
        std::string out;
        out.reserve(base.size() * (routers / 6 + 1));
        const std::string_view from{"spoke-1"};
        for (int copy = 0; copy * 6 < routers; ++copy) {
            std::string name{"c"};
            name += std::to_string(copy);
            name += "-1";
            std::size_t done = 0;
            for (std::size_t p = base.find(from); p != std::string::npos;
                 p = base.find(from, done)) {
                out.append(base, done, p - done);
                out += name;
                done = p + from.size();
            }
            out.append(base, done, std::string::npos);
        }
        return out;
    }();
    return text;
}

void split_lines_baseline(benchmark::State& state) {
    const std::string& text = fleet_text();
    for (auto _ : state) {
        std::size_t lines = 0;
        std::string_view rest{text};
        while (!rest.empty()) {
            const auto nl = rest.find('\n');
            benchmark::DoNotOptimize(rest.substr(0, nl));
            ++lines;
            rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
        }
        benchmark::DoNotOptimize(lines);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
}
BENCHMARK(split_lines_baseline)->Unit(benchmark::kMillisecond);

void parse_captures_10000_routers(benchmark::State& state) {
    const std::string& text = fleet_text();
    std::size_t n = 0;
    for (auto _ : state) {
        auto rs = parse_captures(text, "fleet.txt");
        n = rs.size();
        benchmark::DoNotOptimize(rs);
    }
    state.counters["routers"] = static_cast<double>(n);
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
}
BENCHMARK(parse_captures_10000_routers)->Unit(benchmark::kMillisecond);

// Parsing plus each router's running-config through the IOS config parser, its state and the
// printed-timer check: everything `pkisim inventory` does per router before the scenario.
void parse_and_derive_10000_routers(benchmark::State& state) {
    const std::string& text = fleet_text();
    std::size_t known = 0;
    for (auto _ : state) {
        known = 0;
        for (const auto& r : parse_captures(text, "fleet.txt")) {
            const auto st = derive_router_state(r, "");
            known += st.phase != router_phase::unknown;
            benchmark::DoNotOptimize(printed_timer_disagreements(st, minutes{10}));
        }
    }
    state.counters["routers_known"] = static_cast<double>(known);
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
}
BENCHMARK(parse_and_derive_10000_routers)->Unit(benchmark::kMillisecond);

}  // namespace
