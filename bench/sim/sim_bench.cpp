// Performance of the simulator (issue 5 §5).
//
//   pkisim_sim_bench                    # everything: hold model vs SimPy, seed 002 scale runs,
//                                       # then the Google Benchmark micro benchmarks
//   pkisim_sim_bench --no-simpy         # skip the (slow) Python side
//   pkisim_sim_bench --scale N ENGINE   # one seed-002 run (used internally, one process per run
//                                       # so that VmHWM is that run's peak)
//
// The hold model: P pending events; repeatedly pop the earliest and push it back at now + an
// exponential delay (mean 10,000 ticks = 10 s of 1 ms ticks). Increments come from a table of
// 2^20 precomputed exponential samples, so the figure is the queue, not the RNG.
#include <sys/resource.h>

#include <unistd.h>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <queue>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "pkisim/sim/event_queue.hpp"
#include "pkisim/sim/scenario.hpp"
#include "pkisim/sim/simulation.hpp"

using namespace pkisim::sim;

namespace {

constexpr double hold_mean = 10'000;

const std::vector<std::int64_t>& exp_table() {
    static const std::vector<std::int64_t> table = [] {
        std::vector<std::int64_t> t(1u << 20);
        std::mt19937_64 rng{7};
        std::exponential_distribution<double> d{1.0 / hold_mean};
        for (auto& v : t)
            v = static_cast<std::int64_t>(d(rng));
        return t;
    }();
    return table;
}

// Fills a queue with `pending` events; returns it ready for the hold loop.
std::unique_ptr<event_queue> hold_queue(std::size_t pending) {
    auto q = std::make_unique<event_queue>(0, 16);
    const auto& t = exp_table();
    for (std::size_t i = 0; i < pending; ++i)
        q->push(t[i & (t.size() - 1)], i);
    return q;
}

std::uint64_t hold_loop(event_queue& q, std::uint64_t events, std::size_t& k) {
    const auto& t = exp_table();
    const std::size_t mask = t.size() - 1;
    std::uint64_t sum = 0;
    for (std::uint64_t i = 0; i < events; ++i) {
        const auto e = q.pop();
        sum += e.payload;
        q.push(e.time + t[k++ & mask], e.payload);
    }
    return sum;
}

double hold_rate(std::size_t pending, std::uint64_t events) {
    auto q = hold_queue(pending);
    std::size_t k = pending;
    hold_loop(*q, pending, k);  // warm up: every slot vector has its capacity
    const auto t0 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(hold_loop(*q, events, k));
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return static_cast<double>(events) / s;
}

void BM_event_queue_hold(benchmark::State& state) {
    const auto pending = static_cast<std::size_t>(state.range(0));
    auto q = hold_queue(pending);
    std::size_t k = pending;
    hold_loop(*q, pending, k);
    for (auto _ : state)
        benchmark::DoNotOptimize(hold_loop(*q, 1'000'000, k));
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 1'000'000);
}
BENCHMARK(BM_event_queue_hold)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

// The same model on std::priority_queue of (time, seq, payload), for comparison.
void BM_binary_heap_hold(benchmark::State& state) {
    using item = std::tuple<std::int64_t, std::uint64_t, std::uint64_t>;
    std::priority_queue<item, std::vector<item>, std::greater<>> q;
    const auto& t = exp_table();
    const auto pending = static_cast<std::size_t>(state.range(0));
    std::uint64_t seq = 0;
    for (std::size_t i = 0; i < pending; ++i)
        q.emplace(t[i & (t.size() - 1)], seq++, i);
    std::size_t k = pending;
    for (auto _ : state) {
        for (int i = 0; i < 1'000'000; ++i) {
            auto [time, s, p] = q.top();
            q.pop();
            q.emplace(time + t[k++ & (t.size() - 1)], seq++, p);
        }
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 1'000'000);
}
BENCHMARK(BM_binary_heap_hold)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

scenario seed002(std::uint64_t clients) {
    auto sc = load_scenario(std::string{PKISIM_SOURCE_DIR} + "/configs/seed002.toml");
    if (!sc) {
        std::fprintf(stderr, "%s\n", sc.error().c_str());
        std::exit(2);
    }
    if (auto r = apply_setting(*sc, "clients", std::to_string(clients)); !r)
        std::exit(2);
    return *sc;
}

void BM_seed002_cohort(benchmark::State& state) {
    const auto sc = seed002(static_cast<std::uint64_t>(state.range(0)));
    run_options o;
    o.engine = engine_kind::cohort;
    std::uint64_t events = 0;
    for (auto _ : state)
        events = run_simulation(sc, o).events;
    state.counters["events"] = static_cast<double>(events);
}
BENCHMARK(BM_seed002_cohort)->Arg(1'000)->Arg(10'000)->Unit(benchmark::kMillisecond)->Iterations(1);

long vm_hwm_kb() {
    std::ifstream in{"/proc/self/status"};
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmHWM:", 0) == 0)
            return std::stol(line.substr(6));
    return -1;
}
long vm_rss_kb() {
    std::ifstream in{"/proc/self/status"};
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0)
            return std::stol(line.substr(6));
    return -1;
}

// `settings`: KEY=VALUE pairs, as `pkisim simulate --set` (generations=1, retry_jitter=2s, ...).
int scale_run(std::uint64_t clients, const std::string& engine,
              const std::vector<std::string>& settings) {
    auto sc = seed002(clients);
    for (const auto& kv : settings) {
        const auto eq = kv.find('=');
        if (eq == std::string::npos) {
            std::fprintf(stderr, "expected KEY=VALUE, got '%s'\n", kv.c_str());
            return 2;
        }
        if (auto r = apply_setting(sc, kv.substr(0, eq), kv.substr(eq + 1)); !r) {
            std::fprintf(stderr, "%s: %s\n", kv.c_str(), r.error().c_str());
            return 2;
        }
    }
    const long base_kb = vm_rss_kb();
    run_options o;
    o.engine = *parse_engine_kind(engine);
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = run_simulation(sc, o);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const long hwm = vm_hwm_kb();
    // The first nine fields are what scale_table reads; the rest identify the result (a faster
    // engine must give the same ones).
    const auto u = [](auto v) { return static_cast<unsigned long long>(v); };
    std::printf(
        "%llu %s %.3f %llu %ld %ld %llu %llu %.3f windows=%llu gnc=%llu deaf_ms=%lld "
        "enroll_failed=%llu outcome=%s\n",
        u(clients), std::string{to_string(r.engine)}.c_str(), s, u(r.events), hwm, base_kb,
        u(r.memory_bytes), u(r.clients_hit_404), r.mean_404_window_days, u(r.windows_404),
        u(r.totals.get_next_ca_cert_requests), static_cast<long long>(r.totals.deaf_ms),
        u(r.totals.enrollments_failed), std::string{to_string(r.outcome)}.c_str());
    return 0;
}

void scale_table() {
    std::printf(
        "\nSeed 002 (configs/seed002.toml: RA, 30-day overlap, 600 d at 70 %%), whole CA life + 60 "
        "d\n");
    std::printf("%10s %7s %9s %14s %10s %12s %14s %10s\n", "clients", "engine", "seconds", "events",
                "VmHWM MiB", "B/client*", "engine B/cl", "mean days");
    const std::pair<std::uint64_t, const char*> runs[] = {{1'000, "exact"},
                                                          {1'000, "cohort"},
                                                          {10'000, "cohort"},
                                                          {100'000, "cohort"},
                                                          {1'000'000, "cohort"}};
    for (const auto& [n, engine] : runs) {
        const std::string cmd = fmt::format("/proc/{}/exe --scale {} {}", getpid(), n, engine);
        std::unique_ptr<FILE, int (*)(FILE*)> p{popen(cmd.c_str(), "r"), pclose};
        char buf[512] = {};
        if (!p || fgets(buf, sizeof buf, p.get()) == nullptr)
            continue;
        unsigned long long clients = 0, events = 0, engine_bytes = 0, hit = 0;
        double s = 0, mean = 0;
        long hwm = 0, base = 0;
        char eng[16] = {};
        if (std::sscanf(buf, "%llu %15s %lf %llu %ld %ld %llu %llu %lf", &clients, eng, &s, &events,
                        &hwm, &base, &engine_bytes, &hit, &mean) != 9)
            continue;
        std::printf("%10llu %7s %9.2f %14llu %10.1f %12.0f %14.1f %10.2f\n", clients, eng, s,
                    events, static_cast<double>(hwm) / 1024.0,
                    static_cast<double>(hwm - base) * 1024.0 / static_cast<double>(clients),
                    static_cast<double>(engine_bytes) / static_cast<double>(clients), mean);
    }
    std::printf(
        "* (VmHWM - VmRSS before the run) / clients: the whole run's peak growth per client.\n");
}

void simpy_table() {
    std::printf("\nHold model, events per second (this machine, same session)\n");
    const double cpp_1e5 = hold_rate(100'000, 50'000'000);
    const double cpp_1e6 = hold_rate(1'000'000, 50'000'000);
    std::printf("  pkisim event_queue, 1e5 pending: %8.1f M events/s\n", cpp_1e5 / 1e6);
    std::printf("  pkisim event_queue, 1e6 pending: %8.1f M events/s\n", cpp_1e6 / 1e6);
    const std::string cmd = std::string{"/usr/bin/python3 "} + PKISIM_SOURCE_DIR +
                            "/bench/sim/simpy_hold.py 100000 400000 10000";
    std::unique_ptr<FILE, int (*)(FILE*)> p{popen(cmd.c_str(), "r"), pclose};
    char buf[512] = {};
    if (!p || fgets(buf, sizeof buf, p.get()) == nullptr) {
        std::printf("  python3-simpy: not available (/usr/bin/python3 with SimPy)\n");
        return;
    }
    const char* eps = std::strstr(buf, "events_per_second=");
    const double simpy = eps ? std::atof(eps + 18) : 0;
    std::printf("  python3-simpy 2.3.1, 1e5 pending: %8.3f M events/s\n", simpy / 1e6);
    if (simpy > 0)
        std::printf("  ratio at 1e5 pending: %.0fx\n", cpp_1e5 / simpy);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc >= 4 && std::strcmp(argv[1], "--scale") == 0)
        return scale_run(std::stoull(argv[2]), argv[3],
                         std::vector<std::string>(argv + 4, argv + argc));
    bool simpy = true;
    bool scale = true;
    std::vector<char*> rest{argv[0]};
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
            // Help only: the full run takes minutes (issue 12 §4).
            std::printf(
                "usage: pkisim_sim_bench [--no-simpy] [--no-scale] [Google Benchmark flags]\n"
                "       pkisim_sim_bench --scale CLIENTS ENGINE [KEY=VALUE...]\n"
                "           one seed-002 run (ENGINE auto, cohort or exact; KEY=VALUE as "
                "`pkisim simulate --set`,\n"
                "           e.g. generations=1 retry_jitter=2s); prints: clients engine "
                "seconds events VmHWM_kB\n"
                "           VmRSS_before_kB engine_bytes clients_hit_404 mean_404_days\n\n"
                "Runs the hold model against python3-simpy, seed-002 runs at 10^3..10^6 clients "
                "(one process each, VmHWM per run), then the micro benchmarks.\n"
                "  --no-simpy   skip the SimPy comparison\n"
                "  --no-scale   skip the seed-002 scale runs\n"
                "  --help       this text (Google Benchmark's own flags: --benchmark_filter=REGEX, "
                "--benchmark_format=json, ...)\n");
            return 0;
        }
        if (std::strcmp(argv[i], "--no-simpy") == 0) {
            simpy = false;
        } else if (std::strcmp(argv[i], "--no-scale") == 0) {
            scale = false;
        } else {
            rest.push_back(argv[i]);
        }
    }
    if (simpy)
        simpy_table();
    if (scale)
        scale_table();
    int n = static_cast<int>(rest.size());
    benchmark::Initialize(&n, rest.data());
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
