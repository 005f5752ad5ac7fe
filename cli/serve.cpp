// `pkisim serve CONFIG.ios --data DIR ...`: the lab SCEP CA (issue 3), and
// `pkisim ca --data DIR COMMAND...`: operator commands sent to it over DIR/admin.sock.
// Exit codes: 0 success, 1 command failed, 2 usage or configuration error, 3 cannot listen (port
// in use) or no server on DIR, 4 wrong passphrase, 5 the data folder belongs to another CA,
// 6 store failure, 7 the clock is earlier than the data folder has seen (issue 11 §2.7)
// (scep_server/include/pkisim/scep/service.hpp exit_status).
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "commands.hpp"
#include "pkisim/scep/crypto.hpp"
#include "pkisim/scep/key_protection.hpp"
#include "pkisim/scep/ra_engine.hpp"
#include "pkisim/scep/server.hpp"
#include "pkisim/timers/clock.hpp"
#include "pkisim/timers/config.hpp"
#include "pkisim/timers/settings.hpp"

namespace pkisim::cli {

namespace {

struct serve_options {
    std::vector<std::string> configs;
    std::string data;
    std::string listen = "127.0.0.1:8080";
    std::string clock_start;
    double clock_rate = 1.0;
    bool legacy_crypto = false;
    std::string ios_limits = "on";
    unsigned key_bits = 2048;
    std::string passphrase_file;
    std::string challenge_file;
    std::string access_log;
    std::string server_name;
    int read_timeout_ms = 10'000;
    int backlog = 64;
    bool include_ca = false;
    // RA mode (`mode ra`, issue 4 §2): how the RA reaches its issuing CA.
    std::string upstream_url;
    bool upstream_exact_path = false;
    std::string upstream_challenge_file;
    bool upstream_legacy_crypto = false;
    int upstream_timeout_ms = 5000;
    // IOS HTTP limiter (ios-pki-model.md §3); unset = the configuration or the model default.
    std::optional<int> max_connections;
    std::string throttle = "on";
    int throttle_limit = 80;
    double throttle_window_s = 60;
    double deaf_period_s = 15;
    std::string throttle_window_mode = "sliding";
    std::string metrics_listen;
    // --- certificate policy (issue 11 §2)
    bool renewal_identity_change = false;
    unsigned min_rsa_bits = 2048;
    std::string key_type = "rsa";
    std::string ec_curve = "P-256";
    // --- end certificate policy
    // --- issue 13 (reliability and security)
    bool allow_shared_secret_files = false;
    std::size_t max_open = 0;  // 0 = from the descriptor limit
    std::size_t max_body_memory_mib = 64;
    // --- end issue 13
    // --- issue 11 §2.9 (OCSP) and §2.7 (clock)
    std::string ocsp_listen;
    bool ocsp_responder_cert = false;
    std::string aia_ocsp_url;
    std::string aia_ca_issuers_url;
    bool allow_clock_backwards = false;
    // --- end issue 11 §2.9/§2.7
};

// The limiter flags, checked with messages that say what to fix. nullopt = error printed.
std::optional<timers::limiter_config> limiter_from_flags(const serve_options& o,
                                                         int config_max_connections) {
    timers::limiter_config l;
    const auto fail = [](const std::string& text) {
        std::cerr << "pkisim serve: " << text << '\n';
        return std::nullopt;
    };
    if (o.ios_limits != "on" && o.ios_limits != "off")
        return fail("--ios-limits must be on or off (off: no IOS limits, for throughput tests)");
    if (o.throttle != "on" && o.throttle != "off")
        return fail("--throttle must be on or off");
    l.enabled = o.ios_limits == "on";
    l.throttle = o.throttle == "on";
    l.max_connections = o.max_connections.value_or(config_max_connections);
    // The range lives once in timers/ (parse_max_connections, the --set registry).
    if (auto n = timers::parse_max_connections(std::to_string(l.max_connections)); !n) {
        return fail(fmt::format(
            "--max-connections {}: IOS accepts {}..{} (`ip http "
            "max-connections`, default 5)",
            l.max_connections, timers::max_connections_min, timers::max_connections_max));
    }
    if (o.throttle_limit < 1)
        return fail(
            fmt::format("--throttle-limit {}: give at least 1 connection per window "
                        "(IOS: 80), or --throttle off",
                        o.throttle_limit));
    l.throttle_limit = o.throttle_limit;
    const auto as_ms = [](double s) {
        return timers::duration{static_cast<timers::duration::rep>(s * 1000.0 + 0.5)};
    };
    if (!(o.throttle_window_s >= 0.001) || o.throttle_window_s > 86400)
        return fail(fmt::format("--throttle-window {}: give seconds in (0, 86400] (IOS: 60)",
                                o.throttle_window_s));
    if (!(o.deaf_period_s >= 0) || o.deaf_period_s > 86400)
        return fail(
            fmt::format("--deaf-period {}: give seconds in [0, 86400] (IOS: 15)", o.deaf_period_s));
    l.throttle_window_length = as_ms(o.throttle_window_s);
    l.deaf_period = as_ms(o.deaf_period_s);
    // One parser for the window names (timers/settings.hpp): sliding, fixed-minute, ...
    if (auto w = timers::parse_throttle_window(o.throttle_window_mode)) {
        l.window = *w;
    } else {
        return fail(
            fmt::format("--throttle-window-mode {}: use sliding (default), fixed-minute or "
                        "reset-after-deaf",
                        o.throttle_window_mode));
    }
    return l;
}

// Passphrase and challenge files: refused when group or others may read them (issue 13 §4).
std::string first_line_of_file(const serve_options& o, const std::string& path) {
    std::string warning;
    auto line = scep::read_secret_file(path, o.allow_shared_secret_files, &warning);
    if (!warning.empty())
        std::cerr << "pkisim serve: warning: " << warning << '\n';
    return line;
}

// IOS asks for the passphrase at `no shutdown`; never on the command line (it would show in ps).
std::string read_passphrase(const serve_options& o) {
    if (!o.passphrase_file.empty())
        return first_line_of_file(o, o.passphrase_file);
    if (const char* env = std::getenv("PKISIM_CA_PASSPHRASE"))
        return env;
    if (!::isatty(STDIN_FILENO)) {
        throw scep::startup_error(scep::exit_status::config,
                                  "no CA passphrase: use --passphrase-file FILE or "
                                  "PKISIM_CA_PASSPHRASE (stdin is not a terminal)");
    }
    std::cerr << "% Please enter a passphrase to protect the private key: " << std::flush;
    termios old{};
    ::tcgetattr(STDIN_FILENO, &old);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    std::string line;
    std::getline(std::cin, line);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::cerr << '\n';
    return line;
}

int run_serve(const serve_options& o) {
    auto cfg = timers::load_ios_config_files(o.configs);
    if (!cfg) {
        std::cerr << "pkisim serve: " << cfg.error().to_string() << '\n';
        return 2;
    }
    for (const auto& w : cfg->warnings)
        std::cerr << "pkisim serve: warning: " << w.to_string() << '\n';
    const timers::server_config* srv = nullptr;
    if (!o.server_name.empty()) {
        srv = cfg->find_server(o.server_name);
    } else if (!cfg->servers.empty()) {
        srv = &cfg->servers.front();
    }
    if (!srv) {
        std::cerr << "pkisim serve: no `crypto pki server " << o.server_name
                  << "` section in the configuration\n";
        return 2;
    }
    if (srv->shutdown) {
        std::cerr << "pkisim serve: warning: server " << srv->name
                  << " is `shutdown` in the configuration; serving anyway\n";
    }
    scep::http_options http;
    const auto colon = o.listen.rfind(':');
    if (colon == std::string::npos) {
        std::cerr << "pkisim serve: --listen expects ADDRESS:PORT, e.g. 127.0.0.1:8080\n";
        return 2;
    }
    http.listen_address = o.listen.substr(0, colon);
    try {
        const int port = std::stoi(o.listen.substr(colon + 1));
        if (port < 0 || port > 65535)
            throw std::out_of_range("port");
        http.port = static_cast<unsigned short>(port);
    } catch (const std::exception&) {
        std::cerr << "pkisim serve: --listen " << o.listen << ": bad port\n";
        return 2;
    }
    // `ip http max-connections` of the device that runs this server, unless a flag overrides.
    const auto limiter = limiter_from_flags(o, srv->http_max_connections);
    if (!limiter)
        return 2;
    http.limiter = *limiter;
    http.metrics_listen = o.metrics_listen;
    http.read_timeout = std::chrono::milliseconds{o.read_timeout_ms};
    http.backlog = o.backlog;
    // `off` (nginx's `access_log off`): no access log at all, and no line formatted for it.
    if (o.access_log == "off") {
        http.quiet = true;
    } else {
        http.access_log = o.access_log;
    }
    // --- issue 13: resource bounds and `ip http timeout-policy`
    http.max_open = o.max_open;
    http.body_memory_limit = o.max_body_memory_mib * 1024 * 1024;
    http.timeout_policy = cfg->http.timeouts;
    // --- end issue 13
    // --- issue 11 §2.9: OCSP responder (CA mode only)
    if (!o.ocsp_listen.empty() && srv->mode_ra) {
        std::cerr << "pkisim serve: --ocsp-listen: the OCSP responder is the CA's (the RA knows "
                     "no revocations); run it on the issuing CA\n";
        return 2;
    }
    http.ocsp_listen = o.ocsp_listen;
    // --- end issue 11 §2.9

    std::unique_ptr<timers::clock> base = std::make_unique<timers::system_clock>();
    std::unique_ptr<timers::clock> warped;
    if (!o.clock_start.empty() || o.clock_rate != 1.0) {
        auto start = o.clock_start.empty() ? std::optional{base->now()}
                                           : timers::parse_iso8601(o.clock_start);
        if (!start || o.clock_rate <= 0) {
            std::cerr << "pkisim serve: --clock-start must be ISO 8601 (2030-01-01T00:00:00Z) "
                         "and --clock-rate > 0\n";
            return 2;
        }
        warped = std::make_unique<timers::warped_clock>(*base, *start, o.clock_rate);
    }
    const timers::clock& clock = warped ? *warped : *base;

    try {
        scep::load_providers(o.legacy_crypto);
        scep::engine_options e;
        e.server = *srv;
        e.data_dir = std::filesystem::absolute(o.data);
        e.key_bits = o.key_bits;
        e.legacy_crypto = o.legacy_crypto;
        e.include_ca_in_success = o.include_ca;
        // --- certificate policy (issue 11 §2)
        e.renewal_identity_change = o.renewal_identity_change;
        e.min_rsa_bits = o.min_rsa_bits;
        e.key_type = o.key_type;
        e.ec_curve = o.ec_curve;
        // --- end certificate policy
        // --- issue 11 §2.9 (OCSP, AIA) and §2.7 (clock)
        e.aia_ocsp_url = o.aia_ocsp_url;
        e.aia_ca_issuers_url = o.aia_ca_issuers_url;
        e.ocsp_delegated_responder = o.ocsp_responder_cert;
        e.allow_clock_backwards = o.allow_clock_backwards;
        // --- end issue 11 §2.9/§2.7
        if (!o.challenge_file.empty()) {
            e.challenge = first_line_of_file(o, o.challenge_file);
        } else if (const char* env = std::getenv("PKISIM_CHALLENGE")) {
            e.challenge = std::string{env};
        }
        e.passphrase = read_passphrase(o);
        // --- RA mode (issue 4 §2): the trustpoint of the same NAME names the issuing CA
        // (ios-pki-research.md §5).
        if (srv->mode_ra) {
            if (const auto* tp = cfg->find_trustpoint(srv->name))
                e.ra_trustpoint = *tp;
            e.upstream_url = o.upstream_url;
            e.upstream_exact_path = o.upstream_exact_path;
            e.upstream_legacy_crypto = o.upstream_legacy_crypto;
            e.upstream_timeout = std::chrono::milliseconds{o.upstream_timeout_ms};
            if (o.upstream_legacy_crypto)
                scep::load_providers(true);
            if (!o.upstream_challenge_file.empty()) {
                e.upstream_challenge = first_line_of_file(o, o.upstream_challenge_file);
            } else if (const char* env = std::getenv("PKISIM_UPSTREAM_CHALLENGE")) {
                e.upstream_challenge = std::string{env};
            }
        }
        scep::server s{std::move(e), std::move(http), clock};
        if (auto* ra = dynamic_cast<scep::ra_engine*>(&s.engine())) {
            for (const auto& n : ra->notes())
                std::cout << "pkisim serve: note: " << n << '\n';
            std::cout << fmt::format(
                             "pkisim serve: RA {} for CA {} listening on "
                             "http://{}/cgi-bin/pkiclient.exe (admin {}); {}",
                             srv->name, ra->upstream_url(), s.local_address(),
                             s.admin_socket_path().string(), ra->status_text())
                      << std::endl;
            s.run_until_signal();
            std::cout << "pkisim serve: stopped" << std::endl;
            return 0;
        }
        // --- end RA mode
        std::cout << fmt::format(
                         "pkisim serve: CA {} ({}) listening on http://{}/cgi-bin/pkiclient.exe"
                         " (admin {})",
                         srv->name, scep::subject_string(s.engine().ca_certificate()),
                         s.local_address(), s.admin_socket_path().string())
                  << std::endl;
        if (!s.ocsp_address().empty()) {
            std::cout << fmt::format("pkisim serve: OCSP responder on http://{}/ ({})",
                                     s.ocsp_address(),
                                     o.ocsp_responder_cert ? "signed by a delegated responder"
                                                           : "signed by the CA")
                      << std::endl;
        }
        if (!s.metrics_address().empty()) {
            std::cout << fmt::format("pkisim serve: metrics on http://{}/metrics",
                                     s.metrics_address())
                      << std::endl;
        }
        s.run_until_signal();
        std::cout << "pkisim serve: stopped" << std::endl;
        return 0;
    } catch (const scep::startup_error& e) {
        std::cerr << "pkisim serve: " << e.what() << '\n';
        return e.exit_code();
    } catch (const std::exception& e) {
        std::cerr << "pkisim serve: " << e.what() << '\n';
        return 1;
    }
}

int run_ca(const std::string& data, const std::vector<std::string>& words) {
    std::string line;
    for (const auto& w : words)
        line += (line.empty() ? "" : " ") + w;
    try {
        const auto r = scep::admin_call(data, line);
        std::cout << r.text;
        return r.ok ? 0 : 1;
    } catch (const std::exception& e) {
        std::cerr << "pkisim ca: " << e.what() << '\n';
        return 3;
    }
}

}  // namespace

void add_serve_commands(CLI::App& app, int& exit_code) {
    auto o = std::make_shared<serve_options>();
    auto* serve = app.add_subcommand(
        "serve", "Run the lab SCEP certificate server (IOS CA mode, or RA mode with `mode ra`)");
    serve->add_option("config", o->configs, "IOS configuration file(s) with `crypto pki server`")
        ->required()
        ->check(CLI::ExistingFile);
    serve->add_option("--data", o->data, "Data folder (CA key, database, CRL, admin socket)")
        ->required();
    serve->add_option("--listen", o->listen, "ADDRESS:PORT to listen on (port 0 = any)")
        ->capture_default_str();
    serve->add_option("--clock-start", o->clock_start,
                      "Warped clock: start instant (ISO 8601, UTC)");
    serve->add_option("--clock-rate", o->clock_rate, "Warped clock: lab seconds per real second")
        ->capture_default_str();
    serve->add_flag(
        "--legacy-crypto", o->legacy_crypto,
        "Accept single DES and MD5 (micromdm scepclient, old IOS); RFC 8894 forbids them");
    // IOS HTTP limiter (ios-pki-model.md §3). Validated in limiter_from_flags (messages that
    // say what to fix).
    serve
        ->add_option("--ios-limits", o->ios_limits,
                     "on|off: the IOS HTTP limiter (max-connections, throttle) on the listener; "
                     "off for throughput benchmarks")
        ->capture_default_str()
        ->group("IOS HTTP limiter");
    serve
        ->add_option("--max-connections", o->max_connections,
                     "Concurrent connections, 1..16; overrides `ip http max-connections` of the "
                     "configuration (IOS default 5); more are reset at once")
        ->group("IOS HTTP limiter");
    serve
        ->add_option("--throttle", o->throttle,
                     "on|off: the connection-rate throttle (seed 002: 80 connections per minute, "
                     "then deaf)")
        ->capture_default_str()
        ->group("IOS HTTP limiter");
    serve
        ->add_option("--throttle-limit", o->throttle_limit,
                     "Accepted connections per window that make the listener deaf")
        ->capture_default_str()
        ->group("IOS HTTP limiter");
    serve
        ->add_option("--throttle-window", o->throttle_window_s,
                     "Window length in seconds of the server's (possibly warped) clock")
        ->capture_default_str()
        ->group("IOS HTTP limiter");
    serve
        ->add_option("--deaf-period", o->deaf_period_s,
                     "Seconds the listener stays deaf: SYNs get no answer, clients' connects "
                     "time out")
        ->capture_default_str()
        ->group("IOS HTTP limiter");
    serve
        ->add_option("--throttle-window-mode", o->throttle_window_mode,
                     "sliding (last N s), fixed-minute (clock-aligned buckets) or "
                     "reset-after-deaf (count restarts after each deaf period)")
        ->capture_default_str()
        ->group("IOS HTTP limiter");
    serve
        ->add_option("--metrics-listen", o->metrics_listen,
                     "ADDRESS:PORT of a Prometheus endpoint serving only GET /metrics (also "
                     "served over DATA/admin.sock); not the SCEP port")
        ->group("IOS HTTP limiter");
    serve->add_option("--key-bits", o->key_bits, "RSA size of a new CA key")->capture_default_str();
    serve->add_option("--passphrase-file", o->passphrase_file,
                      "File whose first line is the CA key passphrase (else PKISIM_CA_PASSPHRASE, "
                      "else a prompt)");
    serve->add_option(
        "--challenge-file", o->challenge_file,
        "File whose first line is the static challenge password (else PKISIM_CHALLENGE)");
    serve->add_option("--access-log", o->access_log,
                      "Append the access log to this file instead of stderr; `off`: no access log (as "
                      "nginx's `access_log off`; benchmarks)");
    serve->add_option("--server", o->server_name,
                      "Which `crypto pki server NAME` (default: the first)");
    serve->add_option("--read-timeout-ms", o->read_timeout_ms, "HTTP read timeout")
        ->capture_default_str();
    serve->add_flag(
        "--include-ca", o->include_ca,
        "Put the CA certificate next to the issued one in SUCCESS replies (Cisco VPN client)");
    serve
        ->add_option("--backlog", o->backlog,
                     "Listen backlog of the SCEP socket (handshakes waiting for accept)")
        ->check(CLI::Range(1, 65535))
        ->capture_default_str();
    // --- RA mode options (issue 4 §2).
    serve->add_option("--upstream-url", o->upstream_url,
                      "RA mode: issuing CA URL (default: the trustpoint's `enrollment url`)");
    serve->add_flag("--upstream-exact-path", o->upstream_exact_path,
                    "RA mode: use the upstream URL's path as is (micromdm scepserver: /scep)");
    serve->add_option("--upstream-challenge-file", o->upstream_challenge_file,
                      "RA mode: file whose first line is the challenge for the RA's own "
                      "certificate request (else PKISIM_UPSTREAM_CHALLENGE)");
    serve->add_flag("--upstream-legacy-crypto", o->upstream_legacy_crypto,
                    "RA mode: accept single DES / MD5 answers from the CA (micromdm scepserver)");
    serve
        ->add_option("--upstream-timeout-ms", o->upstream_timeout_ms,
                     "RA mode: connect timeout of each upstream call (the answer gets twice it)")
        ->check(CLI::Range(100, 120'000))
        ->capture_default_str();
    // --- end RA mode options
    // --- certificate policy (issue 11 §2; README "Certificate policy")
    serve->add_flag("--renewal-identity-change", o->renewal_identity_change,
                    "Let a renewal without a challenge change the subject and subjectAltName");
    serve
        ->add_option("--min-rsa-bits", o->min_rsa_bits,
                     "Smallest RSA key a request may carry (legacy labs: 1024)")
        ->check(CLI::Range(512, 16384))
        ->capture_default_str();
    serve
        ->add_option("--key-type", o->key_type,
                     "Key type of a new CA: rsa (--key-bits) or ec (--ec-curve); SCEP clients "
                     "that only encrypt with RSA need an RA in front of an EC CA")
        ->check(CLI::IsMember({"rsa", "ec"}))
        ->capture_default_str();
    serve->add_option("--ec-curve", o->ec_curve, "Curve of a new EC CA key")
        ->check(CLI::IsMember({"P-256", "P-384"}))
        ->capture_default_str();
    // --- end certificate policy
    // --- issue 13: reliability and security options
    serve->add_flag("--allow-shared-secret-files", o->allow_shared_secret_files,
                    "Use passphrase/challenge files that group or others can read (refused by "
                    "default, like ssh with a private key; chmod 600 them instead)");
    serve
        ->add_option("--max-open", o->max_open,
                     "Most SCEP connections open at once, with or without the IOS limits (0 = "
                     "the descriptor limit minus 32); more are reset")
        ->capture_default_str();
    serve
        ->add_option("--max-body-memory", o->max_body_memory_mib,
                     "MiB that request bodies being received may take in total; beyond it 503")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))
        ->capture_default_str();
    // --- end issue 13 options
    // --- issue 11 §2.9 (OCSP, AIA) and §2.7 (clock); README "OCSP responder"
    serve
        ->add_option("--ocsp-listen", o->ocsp_listen,
                     "ADDRESS:PORT of an OCSP responder (RFC 6960: POST application/"
                     "ocsp-request, GET /BASE64) for every CA generation; CA mode only")
        ->group("OCSP");
    serve
        ->add_flag("--ocsp-responder-cert", o->ocsp_responder_cert,
                   "Sign OCSP answers with a delegated responder certificate (id-kp-OCSPSigning, "
                   "issued by each CA generation, kept in DATA) instead of the CA key")
        ->group("OCSP");
    serve
        ->add_option("--aia-ocsp-url", o->aia_ocsp_url,
                     "Write authorityInfoAccess OCSP URI into issued certificates, e.g. "
                     "http://ca.lab:8081/")
        ->group("OCSP");
    serve
        ->add_option("--aia-ca-issuers-url", o->aia_ca_issuers_url,
                     "Also write an authorityInfoAccess caIssuers URI (where the CA certificate "
                     "is), e.g. http://ca.lab:8080/cgi-bin/pkiclient.exe?operation=GetCACert")
        ->group("OCSP");
    serve->add_flag(
        "--allow-clock-backwards", o->allow_clock_backwards,
        "Start although the clock is earlier than the latest time the data folder has seen "
        "(else exit 7); certificates are then dated no earlier than their CA's notBefore");
    // --- end issue 11 §2.9/§2.7
    serve->footer(
        "Exit codes: 0 stopped by SIGINT/SIGTERM, 2 bad configuration, 3 port in use or another "
        "server on this data folder, 4 wrong passphrase, 5 data folder of another CA, 6 store "
        "error, 7 the clock is earlier than the latest time the data folder has seen (a restart "
        "with an earlier --clock-start after a warped run; --allow-clock-backwards overrides).");
    serve->callback([o, &exit_code] { exit_code = run_serve(*o); });

    auto data = std::make_shared<std::string>();
    auto words = std::make_shared<std::vector<std::string>>();
    auto* ca = app.add_subcommand(
        "ca", "Operator commands for a running `pkisim serve` (over DATA/admin.sock)");
    ca->add_option("--data", *data, "Data folder of the running server")->required();
    ca->add_option("command", *words,
                   "grant all|ID, reject all|ID, revoke SERIAL [REASON], password generate "
                   "[MINUTES], rollover [cancel], show server|requests|certificates|timers|"
                   "pkisim|http|"
                   "metrics")
        ->required();
    ca->footer(
        "Exit codes: 0 done, 1 the server refused the command, 3 no server answers on "
        "DATA/admin.sock.");
    ca->callback([data, words, &exit_code] { exit_code = run_ca(*data, *words); });
}

}  // namespace pkisim::cli
