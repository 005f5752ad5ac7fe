// The ONE registry of `--set KEY=VALUE` keys, shared by `pkisim check`, `pkisim simulate`,
// `--sweep KEY=...` and the change set (verdict.hpp): what each key means, which IOS section or
// model parameter it changes, how its value is written and which range it has. A key means the
// same thing in every command (`ra.auto-enroll` is always the RA's own trustpoint, `ra.server.X`
// always the RA's `crypto pki server` section). IOS commands are applied through
// apply_server_command / apply_trustpoint_command, so their ranges are the parser's.
//
//   auto s = parse_setting("overlap=365", "--set overlap=365");   // key ca.auto-rollover
//   if (!s) { std::cerr << s.error() << '\n'; return 2; }         // names what the user typed
//   settings_target t;
//   t.ca = &ca; t.ra_trustpoint = &ra_tp; t.clients = {&getvpn}; t.max_connections = &n;
//   auto applied = apply_setting(*s, t);       // true: applied; false: the caller's (simulation)
//   std::cout << settings_help(setting_command::check);             // the --help listing
//
// Errors read "--set overlap=abc: auto-rollover abc: expected days 0..7305" with the text the
// user typed first (`--sweep overlap=abc`, `--clients -5`), never an alias the code resolved.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "pkisim/timers/client_model.hpp"
#include "pkisim/timers/config.hpp"
#include "pkisim/timers/limiter.hpp"
#include "pkisim/timers/time.hpp"

namespace pkisim::timers {

// What a key changes.
enum class setting_scope {
    ca_server,           // a `crypto pki server` command on the issuing CA
    ra_server,           // a `crypto pki server` command on the RA (`mode ra`)
    ra_trustpoint,       // a `crypto pki trustpoint` command on the RA's own trustpoint
    client_trustpoints,  // a `crypto pki trustpoint` command on the clients (all, or one named)
    front_http,          // `ip http max-connections` on the server the clients reach
    ca_manual_rollover,  // operator `crypto pki server CA rollover` at WHEN
    ra_manual_rollover,  // operator `crypto pki server RA rollover` at WHEN
    fleet_size,          // number of clients
    client_behaviour,    // IOS client behaviour without a command (shadow retry, connect timeout)
    limiter,             // the HTTP throttle model (window semantics, on/off)
    simulation,          // simulator-only parameters (seed, horizon, latency, ...)
};

// How the value is written.
enum class value_kind {
    ios_command,      // the rest of an IOS command: "365", "certificate 600", "70 regenerate"
    count,            // an integer 1..100000000 (clients)
    integer,          // an unsigned integer (seed)
    time_length,      // "20s", "36ms", "420d", "1d 12h" (parse_duration_text)
    offset,           // a time from the CA's creation ("1460d") or a date not before it
    max_connections,  // 1..16 (parse_max_connections)
    window_mode,      // sliding | fixed-minute | reset-after-deaf (parse_throttle_window)
    boolean,          // on/off, true/false, yes/no, 1/0
};

enum class setting_command { check, simulate };

struct setting_key {
    std::string_view name;     // canonical: "ca.auto-rollover", "ra.manual-rollover"
    std::string_view aliases;  // space separated, also accepted: "overlap server.auto-rollover"
    setting_scope scope;
    value_kind kind;
    // ios_command keys: the IOS command the value completes ("auto-rollover"); empty for the
    // prefix keys ("ca.<command>") where the key names the command.
    std::string_view command;
    bool prefix = false;  // "ca." + any command of the section
    bool in_check = true;
    bool in_simulate = true;
    std::string_view example;  // "overlap=365"
    std::string_view help;
};

// Every key, in --help order.
std::span<const setting_key> setting_keys();
// The --help text listing the keys valid for `command` (one per line, aliases and example).
std::string settings_help(setting_command command);

// One parsed `--set`: the key found in the registry and the value parsed by its kind.
struct setting {
    const setting_key* key = nullptr;
    std::string typed;       // what the user typed, for messages: "--set overlap=abc"
    std::string value;       // the raw value
    std::string command;     // ios_command: the IOS line to apply, "auto-rollover 365"
    std::string trustpoint;  // client_trustpoints: one trustpoint by name; empty = every client
    std::optional<duration> duration_value;      // duration; offset given as a duration
    std::optional<time_point> date_value;        // offset given as a date
    std::optional<std::uint64_t> integer_value;  // count, integer
    std::optional<int> max_connections_value;
    std::optional<throttle_window> window_value;
    std::optional<bool> bool_value;
    // An offset resolved against the CA's creation (a date minus `ca_created_at`); nullopt if
    // the date is before it.
    std::optional<duration> offset_from(time_point ca_created_at) const;
};

// "KEY=VALUE" (one value: the whole text after the first '='). `typed` is what the user
// typed, quoted first in every error ("--set overlap=abc", "--sweep overlap=abc").
tl::expected<setting, std::string> parse_setting(std::string_view spec, std::string_view typed);
tl::expected<setting, std::string> parse_setting(std::string_view key, std::string_view value,
                                                 std::string_view typed);
// Suggests the nearest known key or word ("overlp" -> "overlap"); empty if nothing is close
// (more than a third of the typed length, and at least one edit, away). Case-insensitive
// optimal-string-alignment distance; ties go to the first candidate. The work is bounded by
// that threshold (candidates whose length differs by more are skipped, the DP is banded), so a
// long unknown key costs O(candidates x length x threshold) at worst and usually much less;
// `stats` (optional) reports how many DP cells were computed.
struct nearest_word_stats {
    std::size_t cells = 0;
};
std::string nearest_word(std::string_view typed, std::span<const std::string_view> candidates,
                         nearest_word_stats* stats = nullptr);

// What a setting can change; null members are not present in this command's context (check
// has no seed; a scenario without [ra] has no RA).
struct settings_target {
    server_config* ca = nullptr;
    server_config* ra = nullptr;
    trustpoint_config* ra_trustpoint = nullptr;
    std::vector<trustpoint_config*> clients;
    int* max_connections = nullptr;
    std::optional<duration>* ca_manual_rollover = nullptr;
    std::optional<duration>* ra_manual_rollover = nullptr;
    time_point ca_created_at{};  // turns a date into an offset
    std::optional<std::uint64_t>* fleet_size = nullptr;
    client_model* client = nullptr;
    throttle_window* window = nullptr;
    bool* throttle = nullptr;
    bool* limiter_enabled = nullptr;
};
// Applies one setting. Returns true when applied, false when the setting belongs to the caller
// (scope simulation, or fleet_size without a target: simulate splits clients across groups);
// an error when the target is absent ("the files have no `mode ra` server").
tl::expected<bool, std::string> apply_setting(const setting& s, settings_target& t);

// Value parsers (the one place each syntax and range lives).
// "20s", "36ms", "420d", "1d 12h 30m", "1.5d"; a bare number is seconds.
std::optional<duration> parse_duration_text(std::string_view text);
// The inverse: "1d 12h", "36ms", "0s".
std::string format_duration(duration d);
// A time given as an offset from `start` ("1460d") or an ISO date not before `start`.
std::optional<duration> parse_offset(std::string_view text, time_point start);
// `ip http max-connections N`: 1..16 (classic IOS, ios-pki-research.md §6).
inline constexpr int max_connections_min = 1;
inline constexpr int max_connections_max = 16;
tl::expected<int, std::string> parse_max_connections(std::string_view text);
// sliding | fixed-minute | reset-after-deaf (underscores accepted: fixed_minute).
std::optional<throttle_window> parse_throttle_window(std::string_view text);
std::optional<bool> parse_bool(std::string_view text);

// When a run's CA is created unless told otherwise (`check --ca-start`, a scenario's `start`):
// one default so that check and simulate print the same dates.
time_point default_ca_start();

}  // namespace pkisim::timers
