// `pkisim bench URL`: connection and enrollment throughput of any SCEP server (issue 12 §1;
// the engine is loadgen/include/pkisim/loadgen/bench.hpp).
// Exit codes: 0 every measured request succeeded (2xx, SCEP SUCCESS, or PENDING without
// --poll), 1 the run finished but some did not (or none completed), 2 usage, 3 the target
// could not be prepared (host not found, GetCACert/GetCACaps or the first enrollment failed).
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <fmt/format.h>

#include "commands.hpp"
#include "pkisim/loadgen/bench.hpp"

namespace pkisim::cli {

namespace {

using namespace pkisim::loadgen;

struct bench_cli_options {
    std::string url;
    std::string mode = "connect";
    std::string op = "GetCACert";
    std::string path;
    std::string mix;
    bool exact_path = false;
    std::string trustpoint = "pkisim";
    unsigned concurrency = 64;
    double rate = 0;
    unsigned threads = 1;
    double duration = 10;
    std::uint64_t requests = 0;
    double warmup = -1;  // -1: 1 s, or 0 for enroll
    double connect_timeout = 2;
    double read_timeout = 10;
    std::string challenge_file;
    bool renew = false;
    bool poll = false;
    double poll_interval = 1;
    unsigned max_polls = 10;
    unsigned keys = 8;
    unsigned key_bits = 2048;
    std::uint64_t pool = 0;
    std::string method = "auto";
    bool legacy_crypto = false;
    bool decrypt = false;
    std::string json;
    std::string csv;
    std::string html;
    bool quiet = false;
    bool allow_remote = false;
};

std::chrono::nanoseconds to_ns(double s) {
    return std::chrono::nanoseconds{static_cast<std::int64_t>(s * 1e9)};
}

bool write_out(const std::string& path, const std::string& text) {
    if (path == "-") {
        std::cout << text;
        return true;
    }
    std::ofstream f{path, std::ios::binary | std::ios::trunc};
    f << text;
    if (!f) {
        std::cerr << "pkisim bench: cannot write " << path << "\n";
        return false;
    }
    return true;
}

int run_bench_cli(const bench_cli_options& c) {
    bench_options o;
    o.url = c.url;
    o.exact_path = c.exact_path;
    o.ca_identifier = c.trustpoint;
    if (c.mode == "connect") {
        o.mode = bench_mode::connect;
    } else if (c.mode == "keepalive") {
        o.mode = bench_mode::keepalive;
    } else if (c.mode == "enroll") {
        o.mode = bench_mode::enroll;
    } else if (c.mode == "mix") {
        o.mode = bench_mode::mix;
    } else {
        std::cerr << "pkisim bench: --mode must be connect, keepalive, enroll or mix\n";
        return 2;
    }
    auto op = parse_operation(c.op);
    if (!op) {
        std::cerr << "pkisim bench: --op: " << op.error() << "\n";
        return 2;
    }
    o.op = *op;
    o.path = c.path;
    if (!c.path.empty() && c.op == "GetCACert" && o.mode != bench_mode::mix) {
        o.op = operation::path;  // --path alone means "GET this path"
    }
    if (o.mode == bench_mode::mix || !c.mix.empty()) {
        auto m = parse_mix(c.mix);
        if (!m) {
            std::cerr << "pkisim bench: " << m.error() << "\n";
            return 2;
        }
        o.mix = *m;
        o.mode = bench_mode::mix;
    }
    o.concurrency = c.concurrency;
    if (c.rate > 0) {
        o.rate = c.rate;
    } else if (c.rate < 0) {
        std::cerr << "pkisim bench: --rate must be positive\n";
        return 2;
    }
    o.threads = c.threads;
    if (c.duration < 0 || c.warmup < -1 || c.connect_timeout <= 0 || c.read_timeout <= 0 ||
        c.poll_interval < 0) {
        std::cerr << "pkisim bench: durations and timeouts must be positive\n";
        return 2;
    }
    o.duration = to_ns(c.duration);
    o.requests = c.requests;
    o.warmup = to_ns(c.warmup >= 0 ? c.warmup : (o.mode == bench_mode::enroll ? 0.0 : 1.0));
    o.connect_timeout = to_ns(c.connect_timeout);
    o.read_timeout = to_ns(c.read_timeout);
    if (!c.challenge_file.empty()) {
        std::ifstream f{c.challenge_file};
        if (!f) {
            std::cerr << "pkisim bench: cannot read --challenge-file " << c.challenge_file << "\n";
            return 2;
        }
        std::string line;
        std::getline(f, line);
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) {
            line.pop_back();
        }
        o.challenge = line;
    }
    o.renew = c.renew;
    o.poll = c.poll;
    o.poll_interval = to_ns(c.poll_interval);
    o.max_polls = c.max_polls;
    o.keys = c.keys;
    o.key_bits = c.key_bits;
    o.pool = c.pool;
    o.method = c.method;
    o.legacy_crypto = c.legacy_crypto;
    o.decrypt = c.decrypt;
    o.allow_remote = c.allow_remote;
    const bool tty = ::isatty(STDERR_FILENO) != 0;
    if (!c.quiet && tty) {
        o.progress = [](std::string_view line) {
            std::cerr << "\r" << line << "   " << std::flush;
        };
    }

    // One descriptor per client: raise the soft limit to the hard one (often 1024 vs 1M).
    if (rlimit rl{}; ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &rl);
    }
    auto plan = prepare_bench(o);
    if (!plan) {
        const bool usage_error = plan.error().rfind("usage: ", 0) == 0;
        std::cerr << "pkisim bench: " << (usage_error ? plan.error().substr(7) : plan.error())
                  << "\n";
        return usage_error ? 2 : 3;
    }
    const bench_result r = run_bench(**plan, o);
    if (!c.quiet && tty) {
        std::cerr << "\n";
    }
    const bool json_stdout = c.json == "-";
    if (!json_stdout) {
        std::cout << bench_text(o, **plan, r);
    }
    bool ok = true;
    if (!c.json.empty()) {
        ok &= write_out(c.json, bench_json(o, **plan, r));
    }
    if (!c.csv.empty()) {
        ok &= write_out(c.csv, bench_csv(r));
    }
    if (!c.html.empty()) {
        ok &= write_out(c.html, bench_html(o, **plan, r));
    }
    if (!ok) {
        return 2;
    }
    return r.completed > 0 && r.successes() == r.completed ? 0 : 1;
}

}  // namespace

void add_bench_command(CLI::App& app, int& exit_code) {
    auto c = std::make_shared<bench_cli_options>();
    auto* b = app.add_subcommand(
        "bench",
        "Load-test a SCEP server on this machine: new connections, keep-alive, enrollments");
    b->footer(
        "Closed loop by default (--concurrency clients, each sends when answered); --rate makes "
        "it an open loop whose latency counts from the intended send time (no coordinated "
        "omission). Bounded by --duration and/or --requests; the --warmup is not counted.\n"
        "Outcome classes: http_2xx/3xx/4xx/5xx, scep_success, scep_pending, "
        "scep_failure_<failInfo>, bad_response, refused, reset, connect_timeout, read_timeout, "
        "other.\n"
        "Exit codes: 0 every measured request succeeded, 1 some did not (or none completed), 2 "
        "usage, 3 the target could not be prepared (unreachable, GetCACert failed, ...).");
    b->add_option("url", c->url,
                  "http://HOST[:PORT][/PATH] (/pkiclient.exe is appended as IOS does, unless "
                  "--exact-path); loopback only unless --allow-remote")
        ->required();
    b->add_option("--mode", c->mode,
                  "connect: new TCP connection per request (HTTP/1.0 as IOS); keepalive: "
                  "persistent HTTP/1.1; enroll: PKCSReq per request; mix: --mix weights")
        ->capture_default_str();
    b->add_option("--op", c->op,
                  "Operation of connect/keepalive: GetCACert, GetCACaps, GetNextCACert, path")
        ->capture_default_str();
    b->add_option("--path", c->path, "GET this path instead of a SCEP operation (e.g. /ca.der)");
    b->add_option("--mix", c->mix,
                  "Weights, e.g. GetCACert:8,GetCACaps:1,enroll:1 (implies --mode mix)");
    b->add_flag("--exact-path", c->exact_path,
                "Use the URL path as is (micromdm scepserver: http://127.0.0.1:8080/scep)");
    b->add_option("--trustpoint", c->trustpoint, "message= of GetCACert/GetCACaps (IOS: the label)")
        ->capture_default_str();
    b->add_option("-c,--concurrency", c->concurrency, "Clients (connections) in flight")
        ->capture_default_str();
    b->add_option("--rate", c->rate, "Open loop: requests per second (all threads)");
    b->add_option("-t,--threads", c->threads, "Event-loop threads")->capture_default_str();
    b->add_option("-d,--duration", c->duration,
                  "Measured seconds after the warm-up (0 = until --requests)")
        ->capture_default_str();
    b->add_option("-n,--requests", c->requests, "Stop after this many measured requests");
    b->add_option("--warmup", c->warmup,
                  "Seconds not counted at the start (default 1, 0 in enroll mode)");
    b->add_option("--connect-timeout", c->connect_timeout, "Seconds to wait for a connection")
        ->capture_default_str();
    b->add_option("--timeout", c->read_timeout, "Seconds from connected to the complete answer")
        ->capture_default_str();
    b->add_option("--challenge-file", c->challenge_file,
                  "Enroll: file whose first line is the challenge password");
    b->add_flag("--renew", c->renew,
                "Enroll: RenewalReq signed by a certificate enrolled before the clock starts");
    b->add_flag("--poll", c->poll, "Enroll: follow PENDING with CertPoll (--poll-interval)");
    b->add_option("--poll-interval", c->poll_interval, "Seconds between CertPolls")
        ->capture_default_str();
    b->add_option("--max-polls", c->max_polls, "CertPolls per enrollment")->capture_default_str();
    b->add_option("--keys", c->keys, "Enroll: RSA keys generated before the run, reused")
        ->capture_default_str();
    b->add_option("--key-bits", c->key_bits, "Enroll: RSA key size")->capture_default_str();
    b->add_option("--pool", c->pool,
                  "Enroll: requests pre-built before the run (default --requests, else 2000); "
                  "the run stops when they are used up");
    b->add_option("--method", c->method,
                  "Enroll: auto (POST when GetCACaps offers it), get or post")
        ->capture_default_str();
    b->add_flag("--legacy-crypto", c->legacy_crypto,
                "Accept single DES/MD5 answers (micromdm scepserver)");
    b->add_flag("--decrypt", c->decrypt,
                "Open every SUCCESS envelope (client RSA work per answer; default: status only, "
                "signature verified)");
    b->add_option("--json", c->json,
                  "Write the full result (with the per-second series) as JSON; - = stdout");
    b->add_option("--csv", c->csv, "Write the per-second series as CSV");
    b->add_option("--html", c->html,
                  "Write one HTML page: throughput, latency and outcomes over time");
    b->add_flag("-q,--quiet", c->quiet, "No progress line");
    b->add_flag("--allow-remote", c->allow_remote,
                "Allow a target that is not a loopback address (a server you run)");
    b->callback([c, &exit_code] { exit_code = run_bench_cli(*c); });
}

}  // namespace pkisim::cli
