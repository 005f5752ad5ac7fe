// Scenario loader: TOML (toml++) → scenario. IOS text is parsed by pkisim::timers; this file
// only reads what IOS has no command for.
#include "pkisim/sim/scenario.hpp"

#include "pkisim/timers/timeline.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "pkisim/timers/settings.hpp"

namespace pkisim::sim {

namespace fs = std::filesystem;

std::string_view to_string(enrollment_pattern p) {
    switch (p) {
        case enrollment_pattern::instant:
            return "instant";
        case enrollment_pattern::uniform:
            return "uniform";
        case enrollment_pattern::spread:
            return "spread";
        case enrollment_pattern::batches:
            return "batches";
        case enrollment_pattern::csv:
            return "csv";
        case enrollment_pattern::state:
            return "state";
    }
    return "?";
}

std::uint64_t scenario::clients() const {
    std::uint64_t n = 0;
    for (const auto& g : groups)
        n += g.count;
    return n;
}

duration scenario::effective_horizon() const {
    if (horizon)
        return *horizon;
    // N CA generations: to the notAfter of the N-th (each successor starts at its
    // predecessor's notAfter, model §1 rule 3), plus 60 days to see the switchover through
    // (a quarter of the CA lifetime for CAs shorter than 240 days, so that a scaled-down test CA
    // does not run into the next generations). The first CA is the captured one when the
    // scenario comes from an inventory (the start is then the capture time).
    auto end = ca_certificate().not_after;
    for (unsigned g = 1; g < generations.value_or(default_generations); ++g)
        end = timers::shadow_ca_validity(end, ca.server.ca_lifetime).not_after;
    const duration margin = std::min<duration>(timers::days{60}, ca.server.ca_lifetime / 4);
    return std::max(duration{0}, (end - start) + margin);
}

timers::validity scenario::ca_certificate() const {
    if (ca.certificate)
        return *ca.certificate;
    return timers::ca_validity(ca.server, start);
}

std::optional<duration> parse_duration_text(std::string_view text) {
    return timers::parse_duration_text(text);
}

std::string format_duration(duration d) {
    return timers::format_duration(d);
}

namespace {

struct loader {
    std::string file;      // for messages
    std::string base_dir;  // IOS paths are relative to the scenario file

    std::string where(const toml::node& n) const {
        return fmt::format("{}:{}", file, n.source().begin.line);
    }
    std::string where(const toml::table& t, std::string_view key) const {
        if (const auto* n = t.get(key))
            return where(*n);
        return fmt::format("{}:{}", file, t.source().begin.line);
    }

    tl::expected<std::string, std::string> string_at(const toml::table& t, std::string_view key,
                                                     bool required) const {
        const auto* n = t.get(key);
        if (n == nullptr) {
            if (required)
                return tl::make_unexpected(fmt::format(
                    "{}: expected a key `{}` (a string) in this table", where(t, key), key));
            return std::string{};
        }
        if (const auto* s = n->as_string())
            return s->get();
        return tl::make_unexpected(fmt::format("{}: `{}`: expected a string", where(*n), key));
    }

    tl::expected<std::optional<duration>, std::string> duration_at(const toml::table& t,
                                                                   std::string_view key) const {
        const auto* n = t.get(key);
        if (n == nullptr)
            return std::optional<duration>{};
        if (const auto* s = n->as_string()) {
            if (auto d = parse_duration_text(s->get()))
                return std::optional<duration>{*d};
        } else if (const auto* i = n->as_integer()) {
            if (i->get() >= 0)
                return std::optional<duration>{timers::seconds{i->get()}};
        } else if (const auto* f = n->as_floating_point()) {
            if (f->get() >= 0)
                return std::optional<duration>{
                    duration{static_cast<duration::rep>(std::llround(f->get() * 1000))}};
        }
        return tl::make_unexpected(fmt::format(
            "{}: `{}`: expected a duration such as \"20s\", \"36ms\", \"420d\" or \"1d 12h\"",
            where(*n), key));
    }

    tl::expected<std::optional<std::int64_t>, std::string> int_at(const toml::table& t,
                                                                  std::string_view key,
                                                                  std::int64_t lo,
                                                                  std::int64_t hi) const {
        const auto* n = t.get(key);
        if (n == nullptr)
            return std::optional<std::int64_t>{};
        if (const auto* i = n->as_integer()) {
            if (i->get() >= lo && i->get() <= hi)
                return std::optional<std::int64_t>{i->get()};
        }
        return tl::make_unexpected(
            fmt::format("{}: `{}`: expected an integer in {}..{}", where(*n), key, lo, hi));
    }

    tl::expected<bool, std::string> check_keys(const toml::table& t,
                                               std::initializer_list<std::string_view> known,
                                               std::string_view table_name) const {
        for (const auto& [k, v] : t) {
            if (std::find(known.begin(), known.end(), k.str()) == known.end()) {
                std::string list;
                for (auto kk : known)
                    list += fmt::format("{}{}", list.empty() ? "" : ", ", kk);
                return tl::make_unexpected(
                    fmt::format("{}: unknown key `{}` in {}; expected one of: {}", where(v),
                                k.str(), table_name, list));
            }
        }
        return true;
    }

    std::string resolve(const std::string& p) const {
        fs::path path{p};
        if (path.is_relative())
            path = fs::path{base_dir} / path;
        return path.lexically_normal().string();
    }

    tl::expected<std::pair<std::string, timers::ios_config>, std::string> read_ios(
        const toml::table& t, std::string_view key) const {
        if (t.get(key) == nullptr && t.get("ios") != nullptr) {
            // IOS text inline (`ios = '''...'''`, as `pkisim inventory` writes it): errors point
            // into the scenario file (a multi-line string starts on the line after its key).
            auto text = string_at(t, "ios", true);
            if (!text)
                return tl::make_unexpected(text.error());
            auto cfg = timers::parse_ios_config(*text, file);
            const int shift = static_cast<int>(t.get("ios")->source().begin.line);
            if (!cfg) {
                auto e = cfg.error();
                e.where.line += shift;
                return tl::make_unexpected(e.to_string());
            }
            return std::make_pair(std::move(*text), std::move(*cfg));
        }
        auto rel = string_at(t, key, true);
        if (!rel)
            return tl::make_unexpected(rel.error());
        const std::string path = resolve(*rel);
        std::ifstream in{path, std::ios::binary};
        if (!in)
            return tl::make_unexpected(
                fmt::format("{}: `{}`: cannot read IOS file {}", where(t, key), key, path));
        std::stringstream ss;
        ss << in.rdbuf();
        std::string text = ss.str();
        auto cfg = timers::parse_ios_config(text, path);
        if (!cfg)
            return tl::make_unexpected(cfg.error().to_string());
        return std::make_pair(std::move(text), std::move(*cfg));
    }
    // What the report names the IOS text: the file, or "scenario.toml:12 (inline)".
    std::string ios_name(const toml::table& t, std::string_view key) const {
        if (t.get(key) == nullptr && t.get("ios") != nullptr)
            return fmt::format("{}:{} (inline)", file, t.get("ios")->source().begin.line);
        return resolve(*string_at(t, key, true));
    }

    // An ISO-8601 UTC time.
    tl::expected<std::optional<time_point>, std::string> time_at(const toml::table& t,
                                                                 std::string_view key) const {
        const auto* n = t.get(key);
        if (n == nullptr)
            return std::optional<time_point>{};
        if (const auto* s = n->as_string())
            if (auto tp = timers::parse_iso8601(s->get()))
                return std::optional<time_point>{*tp};
        return tl::make_unexpected(fmt::format(
            "{}: `{}`: expected a UTC time such as \"2029-03-02T10:15:30Z\"", where(*n), key));
    }
    // A validity from two keys; both or neither.
    tl::expected<std::optional<timers::validity>, std::string> validity_at(
        const toml::table& t, std::string_view nb_key, std::string_view na_key) const {
        auto nb = time_at(t, nb_key);
        if (!nb)
            return tl::make_unexpected(nb.error());
        auto na = time_at(t, na_key);
        if (!na)
            return tl::make_unexpected(na.error());
        if (!*nb && !*na)
            return std::optional<timers::validity>{};
        if (!*nb || !*na || **na <= **nb)
            return tl::make_unexpected(
                fmt::format("{}: expected both `{}` and `{}`, the second after the first",
                            where(t, nb_key), nb_key, na_key));
        return std::optional<timers::validity>{timers::validity{**nb, **na}};
    }

    // A time: an offset from the start ("1460d") or an ISO date ("2029-12-01").
    tl::expected<std::optional<duration>, std::string> offset_at(const toml::table& t,
                                                                 std::string_view key,
                                                                 time_point start) const {
        const auto* n = t.get(key);
        if (n == nullptr)
            return std::optional<duration>{};
        if (const auto* s = n->as_string()) {
            if (auto d = parse_duration_text(s->get()))
                return std::optional<duration>{*d};
            if (auto tp = timers::parse_iso8601(s->get()); tp && *tp >= start)
                return std::optional<duration>{*tp - start};
        }
        return duration_at(t, key).and_then(
            [&](std::optional<duration> d) -> tl::expected<std::optional<duration>, std::string> {
                if (d)
                    return d;
                return tl::make_unexpected(fmt::format(
                    "{}: `{}`: expected an offset from the start (\"1460d\") or a date not "
                    "before the start",
                    where(*n), key));
            });
    }

    tl::expected<server_side, std::string> read_server(const toml::table& t,
                                                       std::string_view table_name,
                                                       time_point start, bool want_ra) const {
        if (auto ok = check_keys(t,
                                 {"config", "ios", "server", "manual_rollover", "trustpoint",
                                  "not_before", "not_after", "cert_not_before", "cert_not_after"},
                                 table_name);
            !ok)
            return tl::make_unexpected(ok.error());
        auto ios = read_ios(t, "config");
        if (!ios)
            return tl::make_unexpected(ios.error());
        server_side side;
        side.config_path = ios_name(t, "config");
        auto cert = want_ra ? validity_at(t, "cert_not_before", "cert_not_after")
                            : validity_at(t, "not_before", "not_after");
        if (!cert)
            return tl::make_unexpected(cert.error());
        side.certificate = *cert;
        side.config_text = std::move(ios->first);
        const auto& cfg = ios->second;
        auto name = string_at(t, "server", false);
        if (!name)
            return tl::make_unexpected(name.error());
        const timers::server_config* s = nullptr;
        if (!name->empty()) {
            s = cfg.find_server(*name);
            if (s == nullptr)
                return tl::make_unexpected(
                    fmt::format("{}: `server`: no `crypto pki server {}` in {}", where(t, "server"),
                                *name, side.config_path));
        } else {
            for (const auto& sv : cfg.servers) {
                if (sv.mode_ra == want_ra) {
                    s = &sv;
                    break;
                }
            }
            if (s == nullptr && !cfg.servers.empty())
                s = &cfg.servers.front();
            if (s == nullptr)
                return tl::make_unexpected(
                    fmt::format("{}: `config`: expected a `crypto pki server` section in {}",
                                where(t, "config"), side.config_path));
        }
        side.server = *s;
        side.http = cfg.http;
        auto mr = offset_at(t, "manual_rollover", start);
        if (!mr)
            return tl::make_unexpected(mr.error());
        side.manual_rollover = *mr;
        return side;
    }

    tl::expected<scenario, std::string> load(const toml::table& root) const {
        scenario sc;
        if (auto ok = check_keys(root,
                                 {"name", "description", "start", "horizon", "generations", "seed",
                                  "time_step", "ca", "ra", "network", "limiter", "clients"},
                                 "the scenario");
            !ok)
            return tl::make_unexpected(ok.error());
        if (auto v = string_at(root, "name", false); v) {
            sc.name = *v;
        } else {
            return tl::make_unexpected(v.error());
        }
        if (auto v = string_at(root, "description", false); v) {
            sc.description = *v;
        } else {
            return tl::make_unexpected(v.error());
        }
        if (const auto* n = root.get("start")) {
            std::optional<time_point> tp;
            if (const auto* s = n->as_string())
                tp = timers::parse_iso8601(s->get());
            if (const auto* d = n->as_date_time()) {
                const auto& dt = d->get();
                tp = time_point{date::sys_days{date::year{dt.date.year} / dt.date.month /
                                               dt.date.day}} +
                     timers::hours{dt.time.hour} + timers::minutes{dt.time.minute} +
                     timers::seconds{dt.time.second};
            }
            if (const auto* d = n->as_date()) {
                const auto& dd = d->get();
                tp = time_point{date::sys_days{date::year{dd.year} / dd.month / dd.day}};
            }
            if (!tp)
                return tl::make_unexpected(
                    fmt::format("{}: `start`: expected a UTC date such as \"2025-01-01T00:00:00Z\"",
                                where(*n)));
            sc.start = *tp;
        } else {
            sc.start = *timers::parse_iso8601("2025-01-01T00:00:00Z");
        }
        if (auto v = duration_at(root, "horizon"); v) {
            sc.horizon = *v;
        } else {
            return tl::make_unexpected(v.error());
        }
        if (auto v = int_at(root, "generations", 1, max_generations); v) {
            if (*v) {
                if (sc.horizon)
                    return tl::make_unexpected(fmt::format(
                        "{}: `generations`: give either `horizon` or `generations`, not both",
                        where(*root.get("generations"))));
                sc.generations = static_cast<unsigned>(**v);
            }
        } else {
            return tl::make_unexpected(v.error());
        }
        if (auto v = int_at(root, "seed", 0, std::numeric_limits<std::int64_t>::max()); v) {
            if (*v)
                sc.seed = static_cast<std::uint64_t>(**v);
        } else {
            return tl::make_unexpected(v.error());
        }
        if (auto v = duration_at(root, "time_step"); v) {
            if (*v) {
                if (**v <= duration{0} || **v > timers::seconds{60})
                    return tl::make_unexpected(fmt::format("{}: `time_step`: expected 1ms..60s",
                                                           where(root, "time_step")));
                sc.time_step = **v;
            }
        } else {
            return tl::make_unexpected(v.error());
        }

        const auto* ca = root.get_as<toml::table>("ca");
        if (ca == nullptr)
            return tl::make_unexpected(
                fmt::format("{}:1: expected a [ca] table with `config = \"ca.ios\"`", file));
        auto ca_side = read_server(*ca, "[ca]", sc.start, false);
        if (!ca_side)
            return tl::make_unexpected(ca_side.error());
        sc.ca = std::move(*ca_side);
        if (sc.ca.server.mode_ra)
            return tl::make_unexpected(fmt::format(
                "{}: [ca]: the server section has `mode ra`; put the RA under [ra]", where(*ca)));

        if (const auto* ra = root.get_as<toml::table>("ra")) {
            auto ra_side = read_server(*ra, "[ra]", sc.start, true);
            if (!ra_side)
                return tl::make_unexpected(ra_side.error());
            // The RA's own certificate comes from a trustpoint in the same file.
            auto ios = read_ios(*ra, "config");
            auto tpname = string_at(*ra, "trustpoint", false);
            if (!tpname)
                return tl::make_unexpected(tpname.error());
            const timers::trustpoint_config* tp = nullptr;
            if (!tpname->empty()) {
                tp = ios->second.find_trustpoint(*tpname);
                if (tp == nullptr)
                    return tl::make_unexpected(
                        fmt::format("{}: `trustpoint`: no `crypto pki trustpoint {}` in {}",
                                    where(*ra, "trustpoint"), *tpname, ra_side->config_path));
            } else if (!ios->second.trustpoints.empty()) {
                tp = &ios->second.trustpoints.front();
            }
            if (tp == nullptr)
                return tl::make_unexpected(fmt::format(
                    "{}: [ra]: expected a `crypto pki trustpoint` for the RA's own certificate "
                    "in {}",
                    where(*ra), ra_side->config_path));
            sc.ra_trustpoint = *tp;
            sc.ra = std::move(*ra_side);
        }

        if (const auto* net = root.get_as<toml::table>("network")) {
            if (auto ok = check_keys(
                    *net,
                    {"latency", "connect_timeout", "shadow_retry_interval", "retry_jitter",
                     "clock_skew", "service_get_next_ca_cert", "service_enrollment",
                     "syn_retransmit"},
                    "[network]");
                !ok)
                return tl::make_unexpected(ok.error());
            struct field {
                std::string_view key;
                duration* target;
            };
            const field fields[] = {{"latency", &sc.latency},
                                    {"connect_timeout", &sc.client.connect_timeout},
                                    {"shadow_retry_interval", &sc.client.shadow_retry_interval},
                                    {"retry_jitter", &sc.retry_jitter},
                                    {"clock_skew", &sc.clock_skew},
                                    {"service_get_next_ca_cert", &sc.service_get_next_ca_cert},
                                    {"service_enrollment", &sc.service_enrollment},
                                    {"syn_retransmit", &sc.client.syn_retransmit}};
            for (const auto& f : fields) {
                auto v = duration_at(*net, f.key);
                if (!v)
                    return tl::make_unexpected(v.error());
                if (*v)
                    *f.target = **v;
            }
            if (sc.client.shadow_retry_interval <= duration{0})
                return tl::make_unexpected(
                    fmt::format("{}: `shadow_retry_interval`: expected more than 0",
                                where(*net, "shadow_retry_interval")));
        }
        if (const auto* lim = root.get_as<toml::table>("limiter")) {
            if (auto ok = check_keys(*lim, {"window", "throttle", "enabled"}, "[limiter]"); !ok)
                return tl::make_unexpected(ok.error());
            auto w = string_at(*lim, "window", false);
            if (!w)
                return tl::make_unexpected(w.error());
            if (!w->empty()) {
                if (auto tw = timers::parse_throttle_window(*w)) {
                    sc.throttle_window = *tw;
                } else {
                    return tl::make_unexpected(
                        fmt::format("{}: `window`: expected \"sliding\", \"fixed-minute\" or "
                                    "\"reset-after-deaf\"",
                                    where(*lim, "window")));
                }
            }
            for (auto [key, target] :
                 {std::pair{std::string_view{"throttle"}, &sc.throttle},
                  std::pair{std::string_view{"enabled"}, &sc.limiter_enabled}}) {
                if (const auto* n = lim->get(key)) {
                    if (const auto* b = n->as_boolean()) {
                        *target = b->get();
                    } else {
                        return tl::make_unexpected(
                            fmt::format("{}: `{}`: expected true or false", where(*n), key));
                    }
                }
            }
        }

        const auto* clients = root.get_as<toml::array>("clients");
        if (clients == nullptr || clients->empty())
            return tl::make_unexpected(fmt::format(
                "{}:1: expected at least one [[clients]] group (config, count, pattern)", file));
        for (const auto& node : *clients) {
            const auto* g = node.as_table();
            if (g == nullptr)
                return tl::make_unexpected(
                    fmt::format("{}: [[clients]]: expected a table", where(node)));
            auto group = read_group(*g, sc);
            if (!group)
                return tl::make_unexpected(group.error());
            sc.groups.push_back(std::move(*group));
        }
        return sc;
    }

    tl::expected<client_group, std::string> read_group(const toml::table& g,
                                                       const scenario& sc) const {
        if (auto ok = check_keys(g,
                                 {"name", "config", "ios", "trustpoint", "count", "pattern", "at",
                                  "window", "batches", "csv", "server", "routers"},
                                 "[[clients]]");
            !ok)
            return tl::make_unexpected(ok.error());
        client_group out;
        auto name = string_at(g, "name", false);
        if (!name)
            return tl::make_unexpected(name.error());
        out.name = name->empty() ? fmt::format("group{}", sc.groups.size() + 1) : *name;
        auto ios = read_ios(g, "config");
        if (!ios)
            return tl::make_unexpected(ios.error());
        out.config_path = ios_name(g, "config");
        out.config_text = std::move(ios->first);
        auto tpname = string_at(g, "trustpoint", false);
        if (!tpname)
            return tl::make_unexpected(tpname.error());
        const timers::trustpoint_config* tp = nullptr;
        if (!tpname->empty()) {
            tp = ios->second.find_trustpoint(*tpname);
        } else if (!ios->second.trustpoints.empty()) {
            tp = &ios->second.trustpoints.front();
        }
        if (tp == nullptr)
            return tl::make_unexpected(
                fmt::format("{}: expected a `crypto pki trustpoint{}` in {}", where(g, "config"),
                            tpname->empty() ? "" : " " + *tpname, out.config_path));
        out.trustpoint = *tp;
        // A group of 0 clients analyses nothing: an error, not a safe verdict.
        auto count = int_at(g, "count", 1, 100'000'000);
        if (!count)
            return tl::make_unexpected(count.error());
        auto server = string_at(g, "server", false);
        if (!server)
            return tl::make_unexpected(server.error());
        if (server->empty()) {
            out.via_ra = sc.ra.has_value();
        } else if (*server == "ra") {
            if (!sc.ra)
                return tl::make_unexpected(fmt::format(
                    "{}: `server = \"ra\"` but the scenario has no [ra]", where(g, "server")));
            out.via_ra = true;
        } else if (*server == "ca") {
            out.via_ra = false;
        } else {
            return tl::make_unexpected(
                fmt::format("{}: `server`: expected \"ca\" or \"ra\"", where(g, "server")));
        }
        auto pattern = string_at(g, "pattern", false);
        if (!pattern)
            return tl::make_unexpected(pattern.error());
        const std::string p = pattern->empty() ? "spread" : *pattern;
        if (p == "instant") {
            out.pattern = enrollment_pattern::instant;
        } else if (p == "uniform") {
            out.pattern = enrollment_pattern::uniform;
        } else if (p == "spread") {
            out.pattern = enrollment_pattern::spread;
        } else if (p == "batches") {
            out.pattern = enrollment_pattern::batches;
        } else if (p == "csv") {
            out.pattern = enrollment_pattern::csv;
        } else if (p == "state") {
            out.pattern = enrollment_pattern::state;
        } else {
            return tl::make_unexpected(fmt::format(
                "{}: `pattern`: expected \"instant\", \"uniform\", \"spread\", \"batches\", "
                "\"csv\" or \"state\"",
                where(g, "pattern")));
        }
        auto at = offset_at(g, "at", sc.start);
        if (!at)
            return tl::make_unexpected(at.error());
        if (*at)
            out.at = **at;
        auto window = duration_at(g, "window");
        if (!window)
            return tl::make_unexpected(window.error());
        if (*window)
            out.window = **window;
        if ((out.pattern == enrollment_pattern::uniform ||
             out.pattern == enrollment_pattern::spread) &&
            out.window <= duration{0})
            return tl::make_unexpected(fmt::format(
                "{}: pattern \"{}\" needs `window`, e.g. \"420d\" (the first renewal period)",
                where(g, "pattern"), p));
        if (out.pattern == enrollment_pattern::batches) {
            const auto* arr = g.get_as<toml::array>("batches");
            if (arr == nullptr || arr->empty())
                return tl::make_unexpected(fmt::format(
                    "{}: pattern \"batches\" needs `batches = [{{ at = \"0d\", count = 100 }}, "
                    "...]`",
                    where(g, "pattern")));
            std::uint64_t total = 0;
            for (const auto& b : *arr) {
                const auto* bt = b.as_table();
                if (bt == nullptr)
                    return tl::make_unexpected(fmt::format(
                        "{}: `batches`: expected {{ at = \"0d\", count = 100 }}", where(b)));
                auto bat = offset_at(*bt, "at", sc.start);
                if (!bat)
                    return tl::make_unexpected(bat.error());
                auto bc = int_at(*bt, "count", 0, 100'000'000);
                if (!bc)
                    return tl::make_unexpected(bc.error());
                if (!*bat || !*bc)
                    return tl::make_unexpected(fmt::format(
                        "{}: `batches`: expected {{ at = \"0d\", count = 100 }}", where(b)));
                out.batches.push_back({**bat, static_cast<std::uint64_t>(**bc)});
                total += static_cast<std::uint64_t>(**bc);
            }
            out.count = total;
            if (total == 0)
                return tl::make_unexpected(fmt::format(
                    "{}: `batches`: the batches add up to 0 clients; expected at least 1",
                    where(g, "batches")));
            if (*count && static_cast<std::uint64_t>(**count) != total)
                return tl::make_unexpected(
                    fmt::format("{}: `count` = {} but the batches add up to {}", where(g, "count"),
                                **count, total));
        } else if (out.pattern == enrollment_pattern::state) {
            auto r = read_routers(g, sc);
            if (!r)
                return tl::make_unexpected(r.error());
            out.routers = std::move(*r);
            out.count = out.routers.size();
        } else if (out.pattern == enrollment_pattern::csv) {
            auto rel = string_at(g, "csv", true);
            if (!rel)
                return tl::make_unexpected(rel.error());
            const std::string path = resolve(*rel);
            std::ifstream in{path};
            if (!in)
                return tl::make_unexpected(
                    fmt::format("{}: `csv`: cannot read {}", where(g, "csv"), path));
            std::string line;
            int lineno = 0;
            while (std::getline(in, line)) {
                ++lineno;
                auto first = line.substr(0, line.find(','));
                while (!first.empty() && std::isspace(static_cast<unsigned char>(first.back())))
                    first.pop_back();
                if (first.empty() || first[0] == '#')
                    continue;
                std::optional<duration> d = parse_duration_text(first);
                if (!d) {
                    if (auto when = timers::parse_iso8601(first); when && *when >= sc.start)
                        d = *when - sc.start;
                }
                if (!d) {
                    if (lineno == 1)
                        continue;  // a header line
                    return tl::make_unexpected(fmt::format(
                        "{}:{}: expected an offset (\"12d 3h\") or a date not before the start",
                        path, lineno));
                }
                out.times.push_back(*d);
            }
            out.count = out.times.size();
            if (out.count == 0)
                return tl::make_unexpected(
                    fmt::format("{}: `csv`: {} has no enrollment times; expected at least 1",
                                where(g, "csv"), path));
        } else {
            if (!*count)
                return tl::make_unexpected(
                    fmt::format("{}: [[clients]]: expected `count` (number of clients)", where(g)));
            out.count = static_cast<std::uint64_t>(**count);
        }
        return out;
    }

    // `routers = [ { hostname = "spoke-114", state = "current", not_before = "...",
    // not_after = "..." }, ... ]`
    tl::expected<std::vector<client_state>, std::string> read_routers(const toml::table& g,
                                                                      const scenario& sc) const {
        const auto* arr = g.get_as<toml::array>("routers");
        if (arr == nullptr || arr->empty())
            return tl::make_unexpected(
                fmt::format("{}: pattern \"state\" needs `routers = [{{ hostname = \"r1\", state = "
                            "\"current\", not_before = \"...\", not_after = \"...\" }}, ...]`",
                            where(g, "pattern")));
        std::vector<client_state> out;
        out.reserve(arr->size());
        for (const auto& node : *arr) {
            const auto* t = node.as_table();
            if (t == nullptr)
                return tl::make_unexpected(fmt::format(
                    "{}: `routers`: expected {{ hostname = ..., state = ... }}", where(node)));
            if (auto ok = check_keys(*t, {"hostname", "state", "not_before", "not_after", "at"},
                                     "a router");
                !ok)
                return tl::make_unexpected(ok.error());
            client_state cs;
            auto host = string_at(*t, "hostname", true);
            if (!host)
                return tl::make_unexpected(host.error());
            cs.hostname = *host;
            auto state = string_at(*t, "state", false);
            if (!state)
                return tl::make_unexpected(state.error());
            const auto phase = timers::parse_router_phase(state->empty() ? "current" : *state);
            if (!phase || *phase == timers::router_phase::unknown)
                return tl::make_unexpected(
                    fmt::format("{}: `state`: expected \"current\", \"pending\", \"rollover\", "
                                "\"rollover-ca\" or \"none\"",
                                where(*t, "state")));
            cs.phase = *phase;
            auto cert = validity_at(*t, "not_before", "not_after");
            if (!cert)
                return tl::make_unexpected(cert.error());
            cs.certificate = *cert;
            if (!cs.certificate && (cs.phase == timers::router_phase::current ||
                                    cs.phase == timers::router_phase::rollover ||
                                    cs.phase == timers::router_phase::rollover_ca))
                return tl::make_unexpected(fmt::format(
                    "{}: state \"{}\" needs the certificate's `not_before` and `not_after`",
                    where(*t), timers::to_string(cs.phase)));
            auto when = time_at(*t, "at");
            if (!when)
                return tl::make_unexpected(when.error());
            if (*when)
                cs.at = std::max(duration{0}, **when - sc.start);
            out.push_back(std::move(cs));
        }
        return out;
    }
};

}  // namespace

tl::expected<scenario, std::string> parse_scenario(std::string_view text,
                                                   const std::string& display_name,
                                                   const std::string& base_dir) {
    toml::table root;
    try {
        root = toml::parse(text, display_name);
    } catch (const toml::parse_error& e) {
        // "seed002.toml:12:11: TOML syntax error: ..." plus the line and a caret under the
        // column, so the user sees what to fix (toml++'s own text names the parser's state).
        const auto line = static_cast<std::size_t>(e.source().begin.line);
        const auto col = static_cast<std::size_t>(e.source().begin.column);
        std::string text_line;
        {
            std::size_t pos = 0;
            for (std::size_t n = 1; n < line && pos != std::string_view::npos; ++n) {
                pos = text.find('\n', pos);
                if (pos != std::string_view::npos)
                    ++pos;
            }
            if (pos != std::string_view::npos && pos <= text.size()) {
                const auto end = text.find('\n', pos);
                text_line = std::string{text.substr(
                    pos, end == std::string_view::npos ? std::string_view::npos : end - pos)};
            }
        }
        std::string hint;
        const std::string_view d = e.description();
        if (d.find("boolean") != std::string_view::npos)
            hint = " (true and false are written without quotes; text needs \"quotes\")";
        else if (d.find("bare") != std::string_view::npos ||
                 d.find("value") != std::string_view::npos)
            hint = " (text values need \"quotes\", durations too: \"20s\")";
        return tl::make_unexpected(fmt::format("{}:{}:{}: TOML syntax error: {}{}\n  {}\n  {}^",
                                               display_name, line, col, d, hint, text_line,
                                               std::string(col > 0 ? col - 1 : 0, ' ')));
    }
    loader l{display_name, base_dir};
    auto sc = l.load(root);
    if (sc)
        sc->path = display_name;
    return sc;
}

tl::expected<scenario, std::string> load_scenario(const std::string& path) {
    std::ifstream in{path, std::ios::binary};
    if (!in)
        return tl::make_unexpected(fmt::format("{}: cannot read the scenario file", path));
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string base = fs::path{path}.parent_path().string();
    return parse_scenario(ss.str(), path, base.empty() ? "." : base);
}

tl::expected<void, std::string> apply_setting(scenario& sc, std::string_view key,
                                              std::string_view value, std::string_view typed) {
    // One registry of keys, values and ranges for check and simulate (timers/settings.hpp).
    const std::string shown =
        typed.empty() ? fmt::format("--set {}={}", key, value) : std::string{typed};
    auto parsed = timers::parse_setting(key, value, shown);
    if (!parsed)
        return tl::make_unexpected(parsed.error());
    const timers::setting& s = *parsed;
    if (!s.key->in_simulate)
        return tl::make_unexpected(fmt::format("{}: not a simulate setting", shown));
    auto err = [&](std::string_view what) {
        return tl::make_unexpected(fmt::format("{}: {}", shown, what));
    };
    timers::settings_target t;
    t.ca = &sc.ca.server;
    if (sc.ra) {
        t.ra = &sc.ra->server;
        t.ra_trustpoint = &sc.ra_trustpoint;
        t.ra_manual_rollover = &sc.ra->manual_rollover;
    }
    for (auto& g : sc.groups)
        t.clients.push_back(&g.trustpoint);
    t.max_connections = &(sc.ra ? sc.ra->http : sc.ca.http).max_connections;
    t.ca_manual_rollover = &sc.ca.manual_rollover;
    t.ca_created_at = sc.start;
    t.client = &sc.client;
    t.window = &sc.throttle_window;
    t.throttle = &sc.throttle;
    t.limiter_enabled = &sc.limiter_enabled;
    auto applied = timers::apply_setting(s, t);
    if (!applied)
        return tl::make_unexpected(applied.error());
    if (*applied)
        return {};
    const std::string_view k = s.key->name;
    if (s.key->scope == timers::setting_scope::fleet_size) {
        const std::uint64_t n = *s.integer_value;
        const std::uint64_t old = sc.clients();
        std::uint64_t given = 0;
        for (std::size_t i = 0; i < sc.groups.size(); ++i) {
            auto& g = sc.groups[i];
            const std::uint64_t share =
                i + 1 == sc.groups.size()
                    ? n - given
                    : (old == 0 ? n / sc.groups.size()
                                : static_cast<std::uint64_t>(static_cast<double>(n) *
                                                             static_cast<double>(g.count) /
                                                             static_cast<double>(old)));
            given += share;
            if (g.pattern == enrollment_pattern::batches) {
                // Scale each batch, the remainder into the last one.
                std::uint64_t bgiven = 0;
                for (std::size_t b = 0; b < g.batches.size(); ++b) {
                    auto& bt = g.batches[b];
                    bt.count = b + 1 == g.batches.size()
                                   ? share - bgiven
                                   : static_cast<std::uint64_t>(static_cast<double>(share) *
                                                                static_cast<double>(bt.count) /
                                                                static_cast<double>(g.count));
                    bgiven += bt.count;
                }
            } else if (g.pattern == enrollment_pattern::csv) {
                return err("a group reads its times from a CSV file; edit the file instead");
            } else if (g.pattern == enrollment_pattern::state) {
                return err(
                    "a group lists its routers one by one (pattern \"state\"); edit them "
                    "instead");
            }
            g.count = share;
        }
        return {};
    }
    if (k == "seed") {
        sc.seed = *s.integer_value;
    } else if (k == "horizon") {
        sc.horizon = *s.duration_value;
        sc.generations.reset();
    } else if (k == "generations") {
        if (*s.integer_value < 1 || *s.integer_value > max_generations)
            return err(fmt::format("expected 1..{} CA generations", max_generations));
        sc.generations = static_cast<unsigned>(*s.integer_value);
        sc.horizon.reset();
    } else if (k == "time_step") {
        sc.time_step = *s.duration_value;
    } else if (k == "latency") {
        sc.latency = *s.duration_value;
    } else if (k == "retry_jitter") {
        sc.retry_jitter = *s.duration_value;
    } else if (k == "clock_skew") {
        sc.clock_skew = *s.duration_value;
    } else if (k == "service_get_next_ca_cert") {
        sc.service_get_next_ca_cert = *s.duration_value;
    } else if (k == "service_enrollment") {
        sc.service_enrollment = *s.duration_value;
    } else {
        return err("not applicable to a scenario");
    }
    return {};
}

}  // namespace pkisim::sim
