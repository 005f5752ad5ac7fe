// The --set registry (settings.hpp): every key once, value syntaxes and ranges once.
#include "pkisim/timers/settings.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace pkisim::timers {

namespace {

using sc = setting_scope;
using vk = value_kind;

// Exact keys first; then the prefix keys ("ca." + command), longest prefix first.
constexpr std::array<setting_key, 28> keys = {{
    {"ca.auto-rollover", "overlap server.auto-rollover", sc::ca_server, vk::ios_command,
     "auto-rollover", false, true, true, "overlap=365",
     "the CA's rollover overlap, `auto-rollover D [H [M]]` (days 0..7305)"},
    {"ca.lifetime-certificate", "lifetime server.lifetime-certificate", sc::ca_server,
     vk::ios_command, "lifetime certificate", false, true, true, "lifetime=600",
     "issued certificates' validity, `lifetime certificate D [H [M]]`"},
    {"ca.lifetime-ca-certificate", "server.lifetime-ca-certificate", sc::ca_server, vk::ios_command,
     "lifetime ca-certificate", false, true, true, "ca.lifetime-ca-certificate=1825",
     "the CA certificate's validity"},
    {"ca.manual_rollover", "ca.manual-rollover", sc::ca_manual_rollover, vk::offset, "", false,
     true, true, "ca.manual_rollover=1460d",
     "operator `crypto pki server CA rollover` at WHEN (from the CA's creation, or a date)"},
    {"ra.manual_rollover", "ra.manual-rollover ra-rollover", sc::ra_manual_rollover, vk::offset, "",
     false, true, true, "ra.manual_rollover=1460d",
     "operator `crypto pki server RA rollover` at WHEN (from the CA's creation, or a date); the "
     "scenario's [ra] manual_rollover, check's --ra-rollover"},
    {"clients.auto-enroll", "auto-enroll trustpoint.auto-enroll", sc::client_trustpoints,
     vk::ios_command, "auto-enroll", false, true, true, "auto-enroll=80",
     "the clients' `auto-enroll [P] [regenerate]`"},
    {"max-connections", "http.max-connections", sc::front_http, vk::max_connections, "", false,
     true, true, "max-connections=16",
     "`ip http max-connections` (1..16) of the server the clients reach (the RA if any)"},
    {"clients", "count clients.count", sc::fleet_size, vk::count, "", false, true, true,
     "clients=3000",
     "number of clients (simulate: split across the groups by their share; "
     "check: the size of the generation-2 herd)"},
    {"shadow_retry_interval", "", sc::client_behaviour, vk::time_length, "", false, true, true,
     "shadow_retry_interval=20s", "GetNextCACert retry after a 404 (seed 002: 20 s)"},
    {"connect_timeout", "", sc::client_behaviour, vk::time_length, "", false, true, true,
     "connect_timeout=10s", "what an unanswered connection costs a client (10 s)"},
    {"syn_retransmit", "", sc::client_behaviour, vk::time_length, "", false, true, true,
     "syn_retransmit=1s",
     "first SYN retransmission of a connect begun while deaf (Linux: 1 s, doubling); 0 = none"},
    {"throttle_window", "limiter.window", sc::limiter, vk::window_mode, "", false, true, true,
     "throttle_window=sliding",
     "how 80 connections/minute are counted: sliding, fixed-minute or reset-after-deaf"},
    {"throttle", "limiter.throttle", sc::limiter, vk::boolean, "", false, true, true,
     "throttle=off", "the 80/minute throttle with its 15 s deaf period (on/off)"},
    {"limiter", "limiter.enabled", sc::limiter, vk::boolean, "", false, true, true, "limiter=off",
     "every HTTP limit: max-connections and the throttle (on/off)"},
    {"seed", "", sc::simulation, vk::integer, "", false, false, true, "seed=7", "random seed"},
    {"horizon", "", sc::simulation, vk::time_length, "", false, false, true, "horizon=3710d",
     "how long to simulate from the start"},
    {"generations", "", sc::simulation, vk::integer, "", false, false, true, "generations=2",
     "simulate N CA generations, 1..20 (replaces the horizon)"},
    {"time_step", "", sc::simulation, vk::time_length, "", false, false, true, "time_step=1s",
     "the clients' time grid, 1ms..60s"},
    {"latency", "", sc::simulation, vk::time_length, "", false, false, true, "latency=5ms",
     "one-way network latency"},
    {"retry_jitter", "", sc::simulation, vk::time_length, "", false, false, true, "retry_jitter=2s",
     "uniform extra delay per retry"},
    {"clock_skew", "", sc::simulation, vk::time_length, "", false, false, true, "clock_skew=30s",
     "per-client clock skew, uniform in [-skew, +skew]"},
    {"service_get_next_ca_cert", "", sc::simulation, vk::time_length, "", false, false, true,
     "service_get_next_ca_cert=36ms", "server time to answer a GetNextCACert"},
    {"service_enrollment", "", sc::simulation, vk::time_length, "", false, false, true,
     "service_enrollment=250ms", "server time for an enrollment round"},
    // Prefix keys: any command of the section.
    {"ra.server.", "", sc::ra_server, vk::ios_command, "", true, true, true, "ra.server.grant=auto",
     "any command of the RA's `crypto pki server` section"},
    {"ca.", "server.", sc::ca_server, vk::ios_command, "", true, true, true,
     "ca.lifetime=certificate 600", "any command of the CA's `crypto pki server` section"},
    {"ra.", "", sc::ra_trustpoint, vk::ios_command, "", true, true, true, "ra.auto-enroll=95",
     "any command of the RA's own `crypto pki trustpoint` (its RA certificate)"},
    {"clients.", "", sc::client_trustpoints, vk::ios_command, "", true, true, true,
     "clients.enrollment=retry period 5", "any command of every client `crypto pki trustpoint`"},
    {"trustpoint.", "", sc::client_trustpoints, vk::ios_command, "", true, true, true,
     "trustpoint.GETVPN.auto-enroll=60 regenerate",
     "any command of the client trustpoint NAME (trustpoint.NAME.COMMAND) or of all"},
}};

// Keys compare with '_' and '-' equal and case-insensitively.
char norm(char c) {
    return c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}
bool same_key(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [](char x, char y) { return norm(x) == norm(y); });
}
bool key_prefix(std::string_view prefix, std::string_view s) {
    return s.size() >= prefix.size() && same_key(prefix, s.substr(0, prefix.size()));
}

std::vector<std::string_view> split_words(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && s[i] == ' ') {
            ++i;
        }
        const std::size_t b = i;
        while (i < s.size() && s[i] != ' ') {
            ++i;
        }
        if (i > b) {
            out.push_back(s.substr(b, i - b));
        }
    }
    return out;
}

std::string trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) {
        s.remove_prefix(1);
    }
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) {
        s.remove_suffix(1);
    }
    return std::string{s};
}

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) {
        out += (out.empty() ? "" : ", ") + s;
    }
    return out;
}

// Damerau-Levenshtein (optimal string alignment) distance, case-insensitive, computed only
// up to `limit`: returns limit + 1 if the distance is larger. Bounded so that a long or random
// unknown key (a fuzz input, a pasted line) costs O(limit x length), not O(length^2) per
// candidate: cells with |i - j| > limit are skipped (the distance is at least the length
// difference, so they are all > limit) and the DP stops at the first row whose cells are all
// over the limit: every later row is then over it too (a cell comes from the row above, the
// cell to its left, or by a transposition from two rows above plus one, and a row's minimum is
// at most one more than the previous row's, so the row before was at least at the limit).
std::size_t edit_distance_within(std::string_view a, std::string_view b, std::size_t limit,
                                 std::size_t& cells) {
    const std::size_t n = a.size();
    const std::size_t m = b.size();
    const std::size_t over = limit + 1;
    if ((n > m ? n - m : m - n) > limit) {
        return over;
    }
    // Three rolling rows (i - 2, i - 1, i), values capped at `over`.
    std::vector<std::size_t> rows(3 * (m + 1), over);
    auto row = [&](std::size_t i) { return rows.data() + (i % 3) * (m + 1); };
    for (std::size_t j = 0; j <= std::min(m, limit); ++j) {
        row(0)[j] = j;
    }
    for (std::size_t i = 1; i <= n; ++i) {
        std::size_t* cur = row(i);
        const std::size_t* up = row(i - 1);
        const std::size_t* up2 = row(i + 1);  // (i - 2) mod 3; unused when i == 1
        std::fill(cur, cur + m + 1, over);
        const std::size_t lo = i > limit ? i - limit : 1;
        const std::size_t hi = std::min(m, i + limit);
        if (i <= limit) {
            cur[0] = i;
        }
        std::size_t row_min = cur[0];
        for (std::size_t j = lo; j <= hi; ++j) {
            ++cells;
            const std::size_t cost = norm(a[i - 1]) == norm(b[j - 1]) ? 0 : 1;
            std::size_t v = std::min({up[j] + 1, cur[j - 1] + 1, up[j - 1] + cost});
            if (i > 1 && j > 1 && norm(a[i - 1]) == norm(b[j - 2]) &&
                norm(a[i - 2]) == norm(b[j - 1])) {
                v = std::min(v, up2[j - 2] + 1);
            }
            cur[j] = std::min(v, over);
            row_min = std::min(row_min, cur[j]);
        }
        if (row_min > limit) {
            return over;
        }
    }
    return row(n)[m];
}

}  // namespace

std::span<const setting_key> setting_keys() {
    return keys;
}

std::string nearest_word(std::string_view typed, std::span<const std::string_view> candidates,
                         nearest_word_stats* stats) {
    // Close enough to be a typo: at most a third of the word, and at least one edit allowed.
    const std::size_t allowed = std::max<std::size_t>(1, (typed.size() + 2) / 3);
    // The first candidate at the smallest distance within `allowed`; a later one must be
    // strictly closer, so each is only computed up to one less than the best so far.
    std::string_view best;
    std::size_t limit = allowed;
    bool found = false;
    std::size_t cells = 0;
    for (auto c : candidates) {
        const std::size_t d = edit_distance_within(typed, c, limit, cells);
        if (d <= limit) {
            best = c;
            found = true;
            if (d == 0) {
                break;
            }
            limit = d - 1;
        }
    }
    if (stats != nullptr) {
        stats->cells = cells;
    }
    return found ? std::string{best} : std::string{};
}

std::string settings_help(setting_command command) {
    std::string out = "--set KEY=VALUE keys (one value per --set; '_' and '-' are the same):\n";
    for (const auto& k : keys) {
        if ((command == setting_command::check && !k.in_check) ||
            (command == setting_command::simulate && !k.in_simulate)) {
            continue;
        }
        std::string name{k.name};
        if (k.prefix) {
            name += (k.name == "trustpoint.") ? "[NAME.]COMMAND" : "COMMAND";
        }
        const auto al = split_words(k.aliases);
        std::string aliases;
        for (auto a : al) {
            if (a == "ra-rollover") {
                continue;  // spelled as check's own option --ra-rollover
            }
            aliases +=
                fmt::format("{}{}{}", aliases.empty() ? "" : ", ", a, k.prefix ? "COMMAND" : "");
        }
        out += fmt::format("  {:<28} {}{}; e.g. {}\n", name, k.help,
                           aliases.empty() ? "" : fmt::format(" (also {})", aliases), k.example);
    }
    return out;
}

std::optional<duration> setting::offset_from(time_point ca_created_at) const {
    if (duration_value) {
        return duration_value;
    }
    if (date_value && *date_value >= ca_created_at) {
        return *date_value - ca_created_at;
    }
    return std::nullopt;
}

tl::expected<setting, std::string> parse_setting(std::string_view spec, std::string_view typed) {
    const auto eq = spec.find('=');
    if (eq == std::string_view::npos) {
        return tl::make_unexpected(fmt::format(
            "{}: expected KEY=VALUE, e.g. overlap=365 (see --help for the keys)", typed));
    }
    return parse_setting(spec.substr(0, eq), spec.substr(eq + 1), typed);
}

tl::expected<setting, std::string> parse_setting(std::string_view key_text,
                                                 std::string_view value_text,
                                                 std::string_view typed) {
    const std::string key = trim(key_text);
    const std::string value = trim(value_text);
    auto err = [&](const std::string& what) {
        return tl::make_unexpected(fmt::format("{}: {}", typed, what));
    };
    setting s;
    s.typed = std::string{typed};
    s.value = value;
    std::string rest;  // prefix keys: the command named by the key
    for (const auto& k : keys) {
        if (k.prefix) {
            continue;
        }
        bool hit = same_key(k.name, key);
        for (auto a : split_words(k.aliases)) {
            hit = hit || same_key(a, key);
        }
        if (hit) {
            s.key = &k;
            break;
        }
    }
    if (s.key == nullptr) {
        for (const auto& k : keys) {
            if (!k.prefix) {
                continue;
            }
            std::vector<std::string_view> prefixes{k.name};
            for (auto a : split_words(k.aliases)) {
                prefixes.push_back(a);
            }
            for (auto p : prefixes) {
                if (key.size() > p.size() && key_prefix(p, key)) {
                    s.key = &k;
                    rest = key.substr(p.size());
                    break;
                }
            }
            if (s.key != nullptr) {
                break;
            }
        }
    }
    if (s.key == nullptr) {
        std::vector<std::string_view> names;
        for (const auto& k : keys) {
            if (!k.prefix) {
                names.push_back(k.name);
                for (auto a : split_words(k.aliases)) {
                    names.push_back(a);
                }
            }
        }
        const std::string near = nearest_word(key, names);
        return err(fmt::format("unknown key `{}`{}; `--help` lists the keys", key,
                               near.empty() ? "" : fmt::format(" (did you mean `{}`?)", near)));
    }
    const setting_key& k = *s.key;
    switch (k.kind) {
        case vk::ios_command: {
            std::string cmd{k.command};
            if (k.prefix) {
                if (k.scope == sc::client_trustpoints && k.name == "trustpoint.") {
                    if (const auto d = rest.find('.'); d != std::string::npos) {
                        s.trustpoint = rest.substr(0, d);
                        rest = rest.substr(d + 1);
                    }
                }
                std::replace(rest.begin(), rest.end(), '_', '-');
                // "ca.lifetime-certificate" style is handled by the exact keys; a dotted
                // command is a mistake ("ca.lifetime.certificate").
                std::replace(rest.begin(), rest.end(), '.', ' ');
                cmd = rest;
            }
            s.command = value.empty() ? cmd : cmd + " " + value;
            // Validate now with the parser's own ranges (a sweep checks every value up front).
            const source_location where{std::string{typed}, 0, 0};
            const bool server_side = k.scope == sc::ca_server || k.scope == sc::ra_server;
            if (server_side) {
                server_config scratch;
                if (auto r = apply_server_command(scratch, s.command, where); !r) {
                    return err(r.error().message);
                }
            } else {
                trustpoint_config scratch;
                if (auto r = apply_trustpoint_command(scratch, s.command, where); !r) {
                    return err(r.error().message);
                }
            }
            return s;
        }
        case vk::count:
        case vk::integer: {
            const bool digits =
                !value.empty() && std::all_of(value.begin(), value.end(),
                                              [](char c) { return c >= '0' && c <= '9'; });
            const std::uint64_t hi =
                k.kind == vk::count ? 100'000'000ULL : std::numeric_limits<std::uint64_t>::max();
            std::uint64_t v = 0;
            bool overflow = false;
            for (char c : value) {
                if (!digits) {
                    break;
                }
                const auto d = static_cast<std::uint64_t>(c - '0');
                if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) {
                    overflow = true;
                    break;
                }
                v = v * 10 + d;
            }
            const std::uint64_t lo = k.kind == vk::count ? 1 : 0;
            if (!digits || overflow || v < lo || v > hi) {
                return err(k.kind == vk::count
                               ? fmt::format("expected a number of clients, 1..{}", hi)
                               : std::string{"expected a whole number (0 or more)"});
            }
            s.integer_value = v;
            return s;
        }
        case vk::time_length: {
            auto d = parse_duration_text(value);
            if (!d) {
                return err("expected a duration such as 20s, 36ms, 420d or \"1d 12h\"");
            }
            if (k.name == "shadow_retry_interval" && d->count() <= 0) {
                return err("expected more than 0");
            }
            if (k.name == "time_step" && (d->count() <= 0 || *d > seconds{60})) {
                return err("expected 1ms..60s");
            }
            s.duration_value = d;
            return s;
        }
        case vk::offset: {
            if (auto d = parse_duration_text(value)) {
                s.duration_value = d;
                return s;
            }
            if (auto t = parse_iso8601(value)) {
                s.date_value = t;
                return s;
            }
            return err(
                "expected a time from the CA's creation such as 1460d, or a date such as "
                "2029-12-31");
        }
        case vk::max_connections: {
            auto n = parse_max_connections(value);
            if (!n) {
                return err(n.error());
            }
            s.max_connections_value = *n;
            return s;
        }
        case vk::window_mode: {
            auto w = parse_throttle_window(value);
            if (!w) {
                return err("expected sliding, fixed-minute or reset-after-deaf");
            }
            s.window_value = w;
            return s;
        }
        case vk::boolean: {
            auto b = parse_bool(value);
            if (!b) {
                return err("expected on or off");
            }
            s.bool_value = b;
            return s;
        }
    }
    return err("unsupported key");
}

tl::expected<bool, std::string> apply_setting(const setting& s, settings_target& t) {
    if (s.key == nullptr) {
        return tl::make_unexpected(fmt::format("{}: not parsed", s.typed));
    }
    auto err = [&](const std::string& what) {
        return tl::make_unexpected(fmt::format("{}: {}", s.typed, what));
    };
    const source_location where{s.typed, 0, 0};
    const setting_key& k = *s.key;
    switch (k.scope) {
        case sc::ca_server:
        case sc::ra_server: {
            server_config* srv = k.scope == sc::ca_server ? t.ca : t.ra;
            if (srv == nullptr) {
                return err(k.scope == sc::ca_server
                               ? "there is no issuing CA to apply it to"
                               : "there is no RA (`crypto pki server` with `mode ra`) to apply "
                                 "it to");
            }
            if (auto r = apply_server_command(*srv, s.command, where); !r) {
                return err(r.error().message);
            }
            return true;
        }
        case sc::ra_trustpoint:
            if (t.ra_trustpoint == nullptr) {
                return err("there is no RA (and so no RA trustpoint) to apply it to");
            }
            if (auto r = apply_trustpoint_command(*t.ra_trustpoint, s.command, where); !r) {
                return err(r.error().message);
            }
            return true;
        case sc::client_trustpoints: {
            bool any = false;
            std::vector<std::string> names;
            for (auto* tp : t.clients) {
                names.push_back(tp->name);
                if (!s.trustpoint.empty() && tp->name != s.trustpoint) {
                    continue;
                }
                any = true;
                if (auto r = apply_trustpoint_command(*tp, s.command, where); !r) {
                    return err(r.error().message);
                }
            }
            if (!any) {
                return err(s.trustpoint.empty()
                               ? std::string{"there is no client trustpoint to apply it to"}
                               : fmt::format("no client trustpoint {}; the clients are: {}",
                                             s.trustpoint, names.empty() ? "none" : join(names)));
            }
            return true;
        }
        case sc::front_http:
            if (t.max_connections == nullptr) {
                return err("there is no HTTP server to apply it to");
            }
            *t.max_connections = *s.max_connections_value;
            return true;
        case sc::ca_manual_rollover:
        case sc::ra_manual_rollover: {
            auto* target =
                k.scope == sc::ca_manual_rollover ? t.ca_manual_rollover : t.ra_manual_rollover;
            if (target == nullptr) {
                return err(k.scope == sc::ca_manual_rollover
                               ? "there is no issuing CA to roll over"
                               : "there is no RA (`crypto pki server` with `mode ra`) to roll "
                                 "over");
            }
            const auto off = s.offset_from(t.ca_created_at);
            if (!off) {
                return err(fmt::format("{} is before the CA's creation ({})", s.value,
                                       to_iso8601(t.ca_created_at)));
            }
            *target = off;
            return true;
        }
        case sc::fleet_size:
            if (t.fleet_size == nullptr) {
                return false;
            }
            *t.fleet_size = s.integer_value;
            return true;
        case sc::client_behaviour:
            if (t.client == nullptr) {
                return false;
            }
            if (k.name == "shadow_retry_interval") {
                t.client->shadow_retry_interval = *s.duration_value;
            } else if (k.name == "syn_retransmit") {
                t.client->syn_retransmit = *s.duration_value;
            } else {
                t.client->connect_timeout = *s.duration_value;
            }
            return true;
        case sc::limiter:
            if (k.name == "throttle_window") {
                if (t.window == nullptr) {
                    return false;
                }
                *t.window = *s.window_value;
            } else if (k.name == "throttle") {
                if (t.throttle == nullptr) {
                    return false;
                }
                *t.throttle = *s.bool_value;
            } else {
                if (t.limiter_enabled == nullptr) {
                    return false;
                }
                *t.limiter_enabled = *s.bool_value;
            }
            return true;
        case sc::simulation:
            return false;
    }
    return false;
}

std::optional<duration> parse_duration_text(std::string_view text) {
    std::size_t i = 0;
    double total_ms = 0;
    bool any = false;
    auto skip_ws = [&] {
        while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) {
            ++i;
        }
    };
    skip_ws();
    while (i < text.size()) {
        std::size_t j = i;
        while (j < text.size() &&
               (std::isdigit(static_cast<unsigned char>(text[j])) || text[j] == '.')) {
            ++j;
        }
        if (j == i) {
            return std::nullopt;
        }
        double v = 0;
        try {
            v = std::stod(std::string(text.substr(i, j - i)));
        } catch (...) {
            return std::nullopt;
        }
        std::size_t k = j;
        while (k < text.size() && std::isalpha(static_cast<unsigned char>(text[k]))) {
            ++k;
        }
        const std::string_view unit = text.substr(j, k - j);
        double scale = 0;
        if (unit.empty() || unit == "s") {
            scale = 1000;
        } else if (unit == "ms") {
            scale = 1;
        } else if (unit == "m" || unit == "min") {
            scale = 60'000;
        } else if (unit == "h") {
            scale = 3'600'000;
        } else if (unit == "d") {
            scale = 86'400'000;
        } else {
            return std::nullopt;
        }
        total_ms += v * scale;
        any = true;
        i = k;
        skip_ws();
    }
    if (!any || total_ms < 0 || total_ms > 1e15) {
        return std::nullopt;
    }
    return duration{static_cast<duration::rep>(std::llround(total_ms))};
}

std::string format_duration(duration d) {
    auto ms = d.count();
    if (ms == 0) {
        return "0s";
    }
    std::string out;
    const std::pair<long long, const char*> units[] = {
        {86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}, {1, "ms"}};
    for (const auto& [scale, name] : units) {
        if (ms >= scale) {
            if (!out.empty()) {
                out += ' ';
            }
            out += fmt::format("{}{}", ms / scale, name);
            ms %= scale;
        }
    }
    return out;
}

std::optional<duration> parse_offset(std::string_view text, time_point start) {
    if (auto d = parse_duration_text(text)) {
        return d;
    }
    if (auto t = parse_iso8601(text); t && *t >= start) {
        return *t - start;
    }
    return std::nullopt;
}

tl::expected<int, std::string> parse_max_connections(std::string_view text) {
    const std::string v = trim(text);
    const bool digits = !v.empty() && v.size() <= 6 && std::all_of(v.begin(), v.end(), [](char c) {
        return c >= '0' && c <= '9';
    });
    const int n = digits ? std::stoi(v) : -1;
    if (n < max_connections_min || n > max_connections_max) {
        return tl::make_unexpected(fmt::format("expected {}..{} (IOS `ip http max-connections`)",
                                               max_connections_min, max_connections_max));
    }
    return n;
}

std::optional<throttle_window> parse_throttle_window(std::string_view text) {
    for (auto w : {throttle_window::sliding, throttle_window::fixed_minute,
                   throttle_window::reset_after_deaf}) {
        if (same_key(to_string(w), text)) {
            return w;
        }
    }
    return std::nullopt;
}

std::optional<bool> parse_bool(std::string_view text) {
    for (auto t : {"on", "true", "yes", "1", "enabled"}) {
        if (same_key(t, text)) {
            return true;
        }
    }
    for (auto f : {"off", "false", "no", "0", "disabled"}) {
        if (same_key(f, text)) {
            return false;
        }
    }
    return std::nullopt;
}

time_point default_ca_start() {
    // The scenarios' default `start` (configs/README.md): 2025-01-01T00:00:00Z.
    return time_point{date::sys_days{date::year{2025} / 1 / 1}};
}

}  // namespace pkisim::timers
