// The IOS configuration model: what `crypto pki server`, `crypto pki trustpoint` and
// `ip http max-connections` say, with IOS defaults (ios-pki-model.md §1–§3).
//
//   auto cfg = pkisim::timers::parse_ios_config(text, "ca.ios");
//   if (!cfg) { std::cerr << cfg.error().to_string() << '\n'; return 2; }
//   const auto& server = cfg->servers.front();          // server.auto_rollover == days{30}
//   for (const auto& w : cfg->warnings) std::cerr << w.to_string() << '\n';
//
// The parser accepts text pasted from `show running-config`: other sections, `!` lines and
// unknown top-level commands are skipped; unknown commands inside a pki section are warnings.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "pkisim/timers/time.hpp"

namespace pkisim::timers {

// Where something was written: "ca.ios:12:3".
struct source_location {
    std::string file;
    int line = 0;    // 1-based; 0 = not from a file (defaults, --set)
    int column = 0;  // 1-based
    std::string to_string() const;
};

// A configuration error: "ca.ios:12:24: lifetime certificate 9000: days must be 0..7305".
struct parse_error {
    source_location where;
    std::string message;
    std::string to_string() const;
};

struct parse_warning {
    source_location where;
    std::string message;
    std::string to_string() const;
};

enum class grant_mode { manual, auto_grant, none, ra_auto };
enum class hash_algorithm { md5, sha1, sha256, sha384, sha512 };
enum class database_level { minimum, names, complete };

// `crypto pki server NAME` (ios-pki-model.md §1).
struct server_config {
    std::string name;
    source_location where;
    // IOS: default 1095 days; range 0..7305 days (+ hours 0..23, minutes 0..59).
    duration ca_lifetime = days{1095};
    // IOS: default 365 days.
    duration cert_lifetime = days{365};
    // IOS: `lifetime crl H [M]`, hours 0..336. Default is a model assumption (168 h).
    duration crl_lifetime = hours{168};
    // IOS: `lifetime enrollment-request H [M]`, hours 0..1000, default 168 h.
    duration enrollment_request_lifetime = hours{168};
    // IOS: absent = no auto-rollover; bare `auto-rollover` = 30 days. `auto-rollover 0`
    // (IOS range 0..CA life) is read as "shadow generated at CA expiry": no usable overlap.
    std::optional<duration> auto_rollover;
    grant_mode grant = grant_mode::manual;
    bool mode_ra = false;
    // IOS: default "CN=<NAME>".
    std::string issuer_name;
    hash_algorithm hash = hash_algorithm::sha256;
    database_level db_level = database_level::minimum;
    std::string cdp_url;
    // `eku NAME...` (IOS names: client-auth, server-auth, ipsec-end-system, ...): the
    // extendedKeyUsage of issued certificates; empty = none configured.
    std::vector<std::string> eku;
    // `shutdown` present in the text. A pasted running-config of a running server has no
    // `shutdown` line, so absent means "serving".
    bool shutdown = false;
    // `ip http max-connections` of the device this server runs on (the same file), 1..16,
    // IOS default 5. The clients of this server meet this limit.
    int http_max_connections = 5;
};

// `crypto pki trustpoint TP` (ios-pki-model.md §2).
struct trustpoint_config {
    std::string name;
    source_location where;
    std::string enrollment_url;  // as written; empty if absent
    bool enrollment_mode_ra = false;
    // `auto-enroll [P] [regenerate]`: absent = no automatic renewal at all;
    // bare = 100 % (renew at expiry).
    bool auto_enroll = false;
    int auto_enroll_percent = 100;  // 1..100
    bool regenerate = false;
    duration retry_period = minutes{1};  // `enrollment retry period M`, 1..60 minutes
    int retry_count = 0;                 // `enrollment retry count N`, 0 = forever, 0..100
    std::string subject_name;
    std::string rsakeypair;
};

// `ip http ...` (ios-pki-model.md §3).
struct http_config {
    int max_connections = 5;  // `ip http max-connections N`, 1..16
    source_location where;
    // `ip http timeout-policy idle S life S requests N` (each 1..86400); unset = not configured
    // (pkisim then keeps its own per-read timeout and unlimited keep-alive requests).
    struct timeout_policy {
        int idle_s = 180;  // IOS defaults (Cisco HTTP server configuration guide)
        int life_s = 180;
        int requests = 1;
        source_location where;
    };
    std::optional<timeout_policy> timeouts;
};

struct ios_config {
    std::vector<server_config> servers;
    std::vector<trustpoint_config> trustpoints;
    http_config http;
    std::vector<parse_warning> warnings;

    const server_config* find_server(std::string_view name) const;
    const trustpoint_config* find_trustpoint(std::string_view name) const;
};

// Parses one file's text. `file_name` is only used in messages.
// Sections end at the next line that is not indented (`!` included) or at `exit`; a section
// named twice in one file is re-entered, as IOS configuration mode does.
tl::expected<ios_config, parse_error> parse_ios_config(std::string_view text,
                                                       std::string_view file_name);

// Parses one line of a server or trustpoint section and applies it, as `--set` and the
// simulator's sweeps do ("auto-rollover 365", "auto-enroll 60 regenerate").
tl::expected<void, parse_error> apply_server_command(server_config& server, std::string_view line,
                                                     const source_location& where);
tl::expected<void, parse_error> apply_trustpoint_command(trustpoint_config& tp,
                                                         std::string_view line,
                                                         const source_location& where);

// Reads and merges several files (servers and trustpoints may be spread across them).
// A server or trustpoint defined in two files is an error. The merged `http` is the one of
// the file that holds a `mode ra` server, else of the first file with a server, else the
// first file's. I/O lives here only as a convenience for the CLI; the parser above is pure.
tl::expected<ios_config, parse_error> load_ios_config_files(const std::vector<std::string>& paths);

std::string_view to_string(grant_mode g);
std::string_view to_string(hash_algorithm h);
std::string_view to_string(database_level d);

}  // namespace pkisim::timers
