// Figures for the timers/ hot paths. The simulator calls connection_limiter::on_attempt and
// client_renewal ~10^8 times per large run, so those must stay in the nanoseconds.
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "pkisim/timers/config.hpp"
#include "pkisim/timers/limiter.hpp"
#include "pkisim/timers/storm.hpp"
#include "pkisim/timers/timeline.hpp"

namespace {

using namespace pkisim::timers;

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream buf;
    buf << in.rdbuf();  // not istreambuf_iterator: g++ 12 -O3 warns -Wnull-dereference on it
    return buf.str();
}

const std::vector<std::string>& seed002_texts() {
    static const std::vector<std::string> texts = {
        read_file(std::string{PKISIM_CONFIGS_DIR} + "/seed002/ca.ios"),
        read_file(std::string{PKISIM_CONFIGS_DIR} + "/seed002/ra.ios"),
        read_file(std::string{PKISIM_CONFIGS_DIR} + "/seed002/client.ios")};
    return texts;
}

void parse_seed002_files(benchmark::State& state) {
    const auto& texts = seed002_texts();
    std::size_t bytes = 0;
    for (const auto& t : texts) {
        bytes += t.size();
    }
    for (auto _ : state) {
        for (const auto& t : texts) {
            auto cfg = parse_ios_config(t, "bench.ios");
            benchmark::DoNotOptimize(cfg);
        }
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}
BENCHMARK(parse_seed002_files);

void apply_server_command_line(benchmark::State& state) {
    server_config s;
    const source_location where{"--set", 0, 0};
    for (auto _ : state) {
        auto r = apply_server_command(s, "auto-rollover 365", where);
        benchmark::DoNotOptimize(r);
    }
}
BENCHMARK(apply_server_command_line);

server_config seed002_server() {
    server_config s;
    s.name = "ca-server";
    s.ca_lifetime = days{1825};
    s.cert_lifetime = days{600};
    s.auto_rollover = days{30};
    return s;
}

// One client certificate life: CA validity, issue with truncation, RENEW/SHADOW point, shadow time.
void timeline_one_certificate(benchmark::State& state) {
    const auto s = seed002_server();
    const time_point t0 = *parse_iso8601("2030-01-01");
    std::int64_t i = 0;
    for (auto _ : state) {
        const auto ca = ca_validity(s, t0);
        const auto id = issued_validity(s.cert_lifetime, t0 + minutes{i % 2'000'000}, ca.not_after);
        const auto r = client_renewal(70, true, id, ca.not_after);
        const auto shadow = shadow_generation_due(ca.not_after, s.auto_rollover, r.at);
        benchmark::DoNotOptimize(r);
        benchmark::DoNotOptimize(shadow);
        ++i;
    }
}
BENCHMARK(timeline_one_certificate);

void client_renewal_only(benchmark::State& state) {
    const time_point c = *parse_iso8601("2034-12-31");
    std::int64_t i = 0;
    for (auto _ : state) {
        const validity id{c - days{600} + minutes{i % 500'000}, c};
        benchmark::DoNotOptimize(client_renewal(70, true, id, c));
        ++i;
    }
}
BENCHMARK(client_renewal_only);

void storm_analysis_seed002(benchmark::State& state) {
    const auto s = seed002_server();
    trustpoint_config tp;
    tp.name = "GETVPN";
    tp.auto_enroll = true;
    tp.auto_enroll_percent = 70;
    const std::vector<trustpoint_config> tps{tp};
    const time_point t0 = *parse_iso8601("2030-01-01");
    for (auto _ : state) {
        auto a = analyze_storm(s, t0, tps);
        benchmark::DoNotOptimize(a);
    }
}
BENCHMARK(storm_analysis_seed002);

// A steady stream of attempts every state.range(0) ms: 100 ms is 600/min, so the limiter
// spends most decisions in the throttle and deaf paths; connections close 36 ms later.
void limiter_on_attempt(benchmark::State& state, throttle_window window, bool enabled) {
    connection_limiter lim{
        limiter_config{.max_connections = 16, .window = window, .enabled = enabled}};
    time_point t = *parse_iso8601("2030-01-01");
    const duration gap{state.range(0)};
    for (auto _ : state) {
        t += gap;
        if (lim.on_attempt(t) == admission::accepted) {
            lim.on_close(t);
        }
    }
    state.counters["accepted"] = static_cast<double>(lim.counters().accepted);
    state.counters["ignored_deaf"] = static_cast<double>(lim.counters().ignored_deaf);
}
BENCHMARK_CAPTURE(limiter_on_attempt, sliding, throttle_window::sliding, true)->Arg(100)->Arg(1000);
BENCHMARK_CAPTURE(limiter_on_attempt, fixed_minute, throttle_window::fixed_minute, true)->Arg(100);
BENCHMARK_CAPTURE(limiter_on_attempt, reset_after_deaf, throttle_window::reset_after_deaf, true)
    ->Arg(100);
BENCHMARK_CAPTURE(limiter_on_attempt, disabled, throttle_window::sliding, false)->Arg(100);

}  // namespace
