// Parsers of what IOS prints (ios_show.hpp). Hand-written scanners, no regex: 10,000 routers'
// captures must parse in well under a second (bench/timers).
#include "pkisim/timers/ios_show.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

#include <fmt/format.h>

namespace pkisim::timers {

namespace {

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && is_space(s.back()))
        s.remove_suffix(1);
    return s;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) !=
            std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// IOS accepts any unambiguous abbreviation of a keyword; `min` letters are enough here.
bool abbrev_of(std::string_view word, std::string_view keyword, std::size_t min) {
    return word.size() >= min && word.size() <= keyword.size() &&
           iequals(word, keyword.substr(0, word.size()));
}

std::vector<std::string_view> split_words(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && is_space(s[i]))
            ++i;
        std::size_t j = i;
        while (j < s.size() && !is_space(s[j]))
            ++j;
        if (j > i)
            out.push_back(s.substr(i, j - i));
        i = j;
    }
    return out;
}

std::optional<int> to_int(std::string_view s) {
    int v = 0;
    if (!s.empty() && s.front() == '+')
        s.remove_prefix(1);
    const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (r.ec != std::errc{} || r.ptr != s.data() + s.size())
        return std::nullopt;
    return v;
}

// The value after "key:" (trimmed), if the trimmed line starts with the key.
std::optional<std::string_view> value_after(std::string_view line, std::string_view key) {
    if (!istarts_with(line, key))
        return std::nullopt;
    return trim(line.substr(key.size()));
}

// "start date:", "end   date:", "renew date:" with any spacing.
std::optional<std::string_view> date_value(std::string_view line, std::string_view first) {
    if (!istarts_with(line, first))
        return std::nullopt;
    std::string_view rest = line.substr(first.size());
    if (rest.empty() || !is_space(rest.front()))
        return std::nullopt;
    rest = trim(rest);
    if (!istarts_with(rest, "date:"))
        return std::nullopt;
    return trim(rest.substr(5));
}

constexpr std::array<std::string_view, 12> month_names{"jan", "feb", "mar", "apr", "may", "jun",
                                                       "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<std::string_view, 7> weekday_names{"mon", "tue", "wed", "thu",
                                                        "fri", "sat", "sun"};

std::optional<unsigned> month_of(std::string_view w) {
    if (w.size() < 3)
        return std::nullopt;
    for (std::size_t i = 0; i < month_names.size(); ++i)
        if (iequals(w.substr(0, 3), month_names[i]))
            return static_cast<unsigned>(i + 1);
    return std::nullopt;
}

bool is_weekday(std::string_view w) {
    return w.size() == 3 && std::any_of(weekday_names.begin(), weekday_names.end(),
                                        [&](std::string_view d) { return iequals(w, d); });
}

struct builtin_zone {
    std::string_view name;
    int minutes;
};
// Abbreviations with one meaning in IOS captures. Deliberately absent: IST (India, Ireland,
// Israel), BST (British / Bangladesh), AST (Atlantic / Arabia) and other clashes: those need
// the router's `clock timezone` / `clock summer-time` line.
constexpr builtin_zone builtin_zones[] = {
    {"UTC", 0},    {"GMT", 0},    {"UCT", 0},    {"Z", 0},       {"WET", 0},     {"WEST", 60},
    {"CET", 60},   {"CEST", 120}, {"MET", 60},   {"MEST", 120},  {"EET", 120},   {"EEST", 180},
    {"MSK", 180},  {"EST", -300}, {"EDT", -240}, {"CST", -360},  {"CDT", -300},  {"MST", -420},
    {"MDT", -360}, {"PST", -480}, {"PDT", -420}, {"AKST", -540}, {"AKDT", -480}, {"HST", -600},
    {"JST", 540},  {"KST", 540},  {"SGT", 480},  {"HKT", 480},   {"AEST", 600},  {"AEDT", 660},
    {"ACST", 570}, {"ACDT", 630}, {"AWST", 480}, {"NZST", 720},  {"NZDT", 780},
};

}  // namespace

std::string capture_problem::to_string() const {
    return fmt::format("{}: {}", where.to_string(), message);
}

zone_offsets zone_offsets_from_config(std::string_view text) {
    zone_offsets out;
    std::optional<int> standard;
    std::string summer_name;
    int summer_offset = 60;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        const std::size_t nl = text.find('\n', pos);
        const std::string_view line =
            text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
        if (line.empty() || line.front() != 'c')
            continue;
        const auto w = split_words(line);
        if (w.size() < 3 || w[0] != "clock")
            continue;
        if (w[1] == "timezone" && w.size() >= 4) {
            // IOS: clock timezone ZONE HOURS [MINUTES]; the minutes take the sign of the hours.
            auto h = to_int(w[3]);
            if (!h)
                continue;
            int m = 0;
            if (w.size() >= 5)
                m = to_int(w[4]).value_or(0);
            const bool negative = !w[3].empty() && w[3].front() == '-';
            const int off = *h * 60 + (negative ? -m : m);
            out[std::string{w[2]}] = off;
            standard = off;
        } else if (w[1] == "summer-time") {
            // IOS: clock summer-time ZONE {recurring|date} ... [OFFSET]; OFFSET minutes, 60.
            summer_name = std::string{w[2]};
            summer_offset = 60;
            if (w.size() > 4) {
                if (auto o = to_int(w.back());
                    o && w.back().find(':') == std::string_view::npos && *o >= 1 && *o <= 1440)
                    summer_offset = *o;
            }
        }
    }
    if (!summer_name.empty())
        out[summer_name] = standard.value_or(0) + summer_offset;
    return out;
}

std::optional<int> zone_offset_minutes(std::string_view abbreviation, const zone_offsets& own) {
    if (auto it = own.find(abbreviation); it != own.end())
        return it->second;
    for (const auto& z : builtin_zones)
        if (iequals(z.name, abbreviation))
            return z.minutes;
    return std::nullopt;
}

tl::expected<time_point, std::string> parse_ios_datetime(std::string_view text,
                                                         const zone_offsets& own) {
    auto w = split_words(text);
    auto bad = [&](std::string_view what) {
        return tl::make_unexpected(fmt::format(
            "'{}': {}; expected a time such as \"02:19:00 UTC Jul 4 2029\"", trim(text), what));
    };
    if (w.size() < 4)
        return bad("too short");
    std::string_view clock = w[0];
    if (!clock.empty() && (clock.front() == '*' || clock.front() == '.'))
        clock.remove_prefix(1);
    // HH:MM:SS[.fff]
    int hh = 0, mm = 0, ss = 0, ms = 0;
    {
        const auto c1 = clock.find(':');
        const auto c2 = clock.find(':', c1 == std::string_view::npos ? 0 : c1 + 1);
        if (c1 == std::string_view::npos || c2 == std::string_view::npos)
            return bad("no HH:MM:SS");
        auto h = to_int(clock.substr(0, c1));
        auto m = to_int(clock.substr(c1 + 1, c2 - c1 - 1));
        std::string_view sec = clock.substr(c2 + 1);
        std::string_view frac;
        if (auto dot = sec.find('.'); dot != std::string_view::npos) {
            frac = sec.substr(dot + 1);
            sec = sec.substr(0, dot);
        }
        auto s = to_int(sec);
        if (!h || !m || !s || *h > 23 || *m > 59 || *s > 59 || *h < 0 || *m < 0 || *s < 0)
            return bad("bad HH:MM:SS");
        hh = *h;
        mm = *m;
        ss = *s;
        for (std::size_t i = 0; i < 3; ++i) {
            ms *= 10;
            if (i < frac.size() && std::isdigit(static_cast<unsigned char>(frac[i])))
                ms += frac[i] - '0';
        }
    }
    std::size_t i = 1;
    const std::string_view zone = w[i++];
    const auto offset = zone_offset_minutes(zone, own);
    if (!offset)
        return tl::make_unexpected(fmt::format(
            "time zone '{}' is not known (it has several meanings or none); include the "
            "router's `clock timezone` / `clock summer-time` lines (show running-config)",
            zone));
    if (i < w.size() && is_weekday(w[i]))
        ++i;
    if (i + 3 > w.size())
        return bad("no 'Mon D YYYY'");
    const auto mon = month_of(w[i]);
    const auto day = to_int(w[i + 1]);
    const auto year = to_int(w[i + 2]);
    if (!mon || !day || !year || *year < 1970 || *year > 9999)
        return bad("no 'Mon D YYYY'");
    const date::year_month_day ymd{date::year{*year}, date::month{*mon},
                                   date::day{static_cast<unsigned>(*day)}};
    if (!ymd.ok())
        return bad("no such day");
    if (i + 3 != w.size())
        return bad("unexpected text after the year");
    const time_point local =
        time_point{date::sys_days{ymd}} + hours{hh} + minutes{mm} + seconds{ss} + duration{ms};
    return local - minutes{*offset};
}

std::optional<duration> parse_ios_countdown(std::string_view text) {
    text = trim(text);
    long long days_part = 0;
    if (auto d = text.find('d'); d != std::string_view::npos) {
        auto v = to_int(text.substr(0, d));
        if (!v || *v < 0)
            return std::nullopt;
        days_part = *v;
        text = trim(text.substr(d + 1));
    }
    // [[H:]M:]S.mmm, leading fields dropped.
    std::string_view frac;
    if (auto dot = text.rfind('.'); dot != std::string_view::npos) {
        frac = text.substr(dot + 1);
        text = text.substr(0, dot);
    }
    long long fields[3] = {0, 0, 0};
    int n = 0;
    std::size_t pos = 0;
    std::vector<std::string_view> parts;
    while (true) {
        const auto c = text.find(':', pos);
        parts.push_back(
            text.substr(pos, c == std::string_view::npos ? std::string_view::npos : c - pos));
        if (c == std::string_view::npos)
            break;
        pos = c + 1;
    }
    if (parts.empty() || parts.size() > 3)
        return std::nullopt;
    for (const auto p : parts) {
        auto v = to_int(trim(p));
        if (!v || *v < 0)
            return std::nullopt;
        fields[n++] = *v;
    }
    long long h = 0, m = 0, s = 0;
    if (n == 3) {
        h = fields[0];
        m = fields[1];
        s = fields[2];
    } else if (n == 2) {
        m = fields[0];
        s = fields[1];
    } else {
        s = fields[0];
    }
    long long ms = 0;
    for (std::size_t k = 0; k < 3; ++k) {
        ms *= 10;
        if (k < frac.size()) {
            if (!std::isdigit(static_cast<unsigned char>(frac[k])))
                return std::nullopt;
            ms += frac[k] - '0';
        }
    }
    return duration{((days_part * 24 + h) * 60 + m) * 60'000 + s * 1000 + ms};
}

namespace {

// One cleaned line of the file.
struct text_line {
    std::string_view text;  // trimmed, --More-- removed
    std::string owned;      // storage when cleaning changed the line
    bool cleaned = false;
    bool indented = false;
    int number = 0;  // 1-based in the file
};

// Removes the pager prompt and what the terminal used to erase it: " --More-- " followed by
// backspaces or spaces (IOS prints it at the start of the next page's first line).
void clean(text_line& l, std::string_view raw) {
    bool dirty = raw.find('\b') != std::string_view::npos ||
                 raw.find("--More--") != std::string_view::npos ||
                 raw.find('\r') != std::string_view::npos;
    if (!dirty) {
        l.indented = !raw.empty() && is_space(raw.front());
        l.text = trim(raw);
        return;
    }
    std::string s;
    s.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw.compare(i, 8, "--More--") == 0) {
            i += 7;
            // Erasure: backspaces and the blanks written over the prompt.
            while (i + 1 < raw.size() && (raw[i + 1] == '\b' || raw[i + 1] == ' '))
                ++i;
            continue;
        }
        if (raw[i] == '\b') {
            if (!s.empty())
                s.pop_back();
            continue;
        }
        if (raw[i] == '\r')
            continue;
        s.push_back(raw[i]);
    }
    l.owned = std::move(s);
    l.cleaned = true;
    l.indented = !l.owned.empty() && is_space(l.owned.front());
    l.text = trim(l.owned);
}

enum class block_kind { none, running_config, certificates, timers, server, clock, other };

// The command after a prompt: `show running-config`, `sh cry pki cert verbose`, `show crypto
// ca timers`, `sh clock detail`, pipes ignored.
block_kind classify_command(std::string_view cmd) {
    if (auto bar = cmd.find('|'); bar != std::string_view::npos)
        cmd = cmd.substr(0, bar);
    const auto w = split_words(cmd);
    if (w.empty())
        return block_kind::none;
    if (abbrev_of(w[0], "more", 3) && w.size() >= 2 &&
        (istarts_with(w[1], "system:running") || istarts_with(w[1], "nvram:startup")))
        return block_kind::running_config;
    if (!abbrev_of(w[0], "show", 2) || w.size() < 2)
        return block_kind::other;
    if (abbrev_of(w[1], "running-config", 3) || abbrev_of(w[1], "startup-config", 3))
        return block_kind::running_config;
    if (abbrev_of(w[1], "clock", 3))
        return block_kind::clock;
    if (abbrev_of(w[1], "crypto", 3) && w.size() >= 4 &&
        (abbrev_of(w[2], "pki", 2) || iequals(w[2], "ca"))) {
        if (abbrev_of(w[3], "certificates", 4))
            return block_kind::certificates;
        if (abbrev_of(w[3], "timers", 3))
            return block_kind::timers;
        if (abbrev_of(w[3], "server", 3)) {
            // `show crypto pki server NAME requests|certificates|crl` print other tables.
            if (w.size() >= 6)
                return block_kind::other;
            return block_kind::server;
        }
    }
    return block_kind::other;
}

// Prompt: a hostname (no blanks) then `#` or `>` at the start of the line.
std::optional<std::pair<std::string_view, std::string_view>> prompt_of(std::string_view raw) {
    if (raw.empty() || is_space(raw.front()))
        return std::nullopt;
    std::size_t i = 0;
    while (i < raw.size() && (std::isalnum(static_cast<unsigned char>(raw[i])) || raw[i] == '-' ||
                              raw[i] == '_' || raw[i] == '.'))
        ++i;
    if (i == 0 || i >= raw.size() || (raw[i] != '#' && raw[i] != '>'))
        return std::nullopt;
    // Configuration-mode prompts (`R1(config)#`) are not captures of show commands.
    return std::make_pair(raw.substr(0, i), trim(raw.substr(i + 1)));
}

bool is_cert_heading(std::string_view t) {
    return t == "Certificate" || t == "CA Certificate" || t == "Router Self-Signed Certificate" ||
           (istarts_with(t, "Certificate (") && t.back() == ')') ||
           (istarts_with(t, "CA Certificate (") && t.back() == ')');
}

bool is_timer_section(std::string_view t) {
    return t == "PKI Timers" || t == "Expiry Alert Timers" || t == "CRL Timers" ||
           t == "Trustpool Timers" || t == "CS Timers" || t == "Session Timers";
}

bool looks_like_clock(std::string_view t) {
    // "*10:15:30.123 UTC Tue Mar 3 2026"
    if (t.empty())
        return false;
    if (t.front() == '*' || t.front() == '.')
        t.remove_prefix(1);
    if (t.size() < 8 || !std::isdigit(static_cast<unsigned char>(t[0])))
        return false;
    const auto c = t.find(':');
    if (c == std::string_view::npos || c > 2)
        return false;
    const auto w = split_words(t);
    return (w.size() == 5 || w.size() == 6) && month_of(w[w.size() - 3]).has_value();
}

// Block start when there are no prompts.
block_kind sniff(std::string_view t) {
    if (istarts_with(t, "Building configuration") || istarts_with(t, "Current configuration"))
        return block_kind::running_config;
    if (is_cert_heading(t))
        return block_kind::certificates;
    if (is_timer_section(t))
        return block_kind::timers;
    if (istarts_with(t, "Certificate Server ") && t.back() == ':')
        return block_kind::server;
    if (looks_like_clock(t))
        return block_kind::clock;
    return block_kind::none;
}

struct block {
    block_kind kind = block_kind::none;
    std::size_t begin = 0, end = 0;  // line indices [begin, end)
};

struct router_text {
    std::string hostname;
    std::vector<block> blocks;
    int first_line = 0;
};

class capture_parser {
  public:
    capture_parser(const std::vector<text_line>& lines, router_capture& out,
                   const zone_offsets& zones)
        : lines_(lines), out_(out), zones_(zones) {}

    void problem(int line, std::string msg) {
        out_.problems.push_back({{out_.file, line, 1}, std::move(msg)});
    }

    // A date value, joined with the next line when the terminal wrapped it.
    std::optional<time_point> date_at(std::size_t& i, std::string_view value) {
        auto t = parse_ios_datetime(value, zones_);
        if (!t && i + 1 < lines_.size()) {
            const auto& next = lines_[i + 1].text;
            if (!next.empty() && next.find(':') == std::string_view::npos) {
                std::string joined = fmt::format("{} {}", value, next);
                if (auto t2 = parse_ios_datetime(joined, zones_)) {
                    ++i;
                    return *t2;
                }
            }
        }
        if (!t) {
            problem(lines_[i].number, t.error());
            return std::nullopt;
        }
        return *t;
    }

    void certificates(std::size_t b, std::size_t e) {
        out_.has_certificates = true;
        shown_certificate* cur = nullptr;
        enum { none, issuer, subject, validity, trustpoints } sub = none;
        for (std::size_t i = b; i < e; ++i) {
            const std::string_view t = lines_[i].text;
            if (t.empty())
                continue;
            if (is_cert_heading(t)) {
                shown_certificate c;
                c.line = lines_[i].number;
                c.rollover = t.find("Rollover") != std::string_view::npos;
                if (istarts_with(t, "CA Certificate"))
                    c.kind = shown_cert_kind::ca;
                else if (t.find("subordinate") != std::string_view::npos)
                    c.kind = shown_cert_kind::subordinate_ca;
                else if (t.find("RA mode") != std::string_view::npos)
                    c.kind = shown_cert_kind::ra_mode_cs;
                else if (istarts_with(t, "Router Self-Signed"))
                    c.kind = shown_cert_kind::self_signed;
                out_.certificates.push_back(std::move(c));
                cur = &out_.certificates.back();
                sub = none;
                continue;
            }
            if (cur == nullptr)
                continue;  // text before the first heading (a banner, an echo)
            if (auto v = value_after(t, "Status:")) {
                cur->status = std::string{*v};
                sub = none;
            } else if (auto v2 = value_after(t, "Certificate Serial Number (hex):")) {
                cur->serial = std::string{*v2};
            } else if (auto v3 = value_after(t, "Certificate Serial Number:")) {
                cur->serial = std::string{*v3};
            } else if (istarts_with(t, "Issuer")) {
                sub = issuer;
            } else if (istarts_with(t, "Subject Name") || t == "Subject:" ||
                       istarts_with(t, "Subject: ") || t == "Subject") {
                sub = subject;
            } else if (istarts_with(t, "Validity Date")) {
                sub = validity;
            } else if (auto s = date_value(t, "start")) {
                cur->start = date_at(i, *s);
            } else if (auto en = date_value(t, "end")) {
                cur->end = date_at(i, *en);
            } else if (auto r = date_value(t, "renew")) {
                cur->renew = date_at(i, *r);
            } else if (auto tp = value_after(t, "Associated Trustpoints:")) {
                for (auto w : split_words(*tp))
                    cur->trustpoints.emplace_back(w);
                sub = trustpoints;
            } else if (auto tp1 = value_after(t, "Associated Trustpoint:")) {
                for (auto w : split_words(*tp1))
                    cur->trustpoints.emplace_back(w);
                sub = trustpoints;
            } else if (sub == subject && cur->subject.empty()) {
                if (auto n = value_after(t, "Name:"))
                    cur->subject = std::string{*n};
                else if (auto cn = value_after(t, "cn="))
                    cur->subject = std::string{*cn};
            } else if (sub == trustpoints && lines_[i].indented &&
                       t.find(':') == std::string_view::npos &&
                       t.find('=') == std::string_view::npos) {
                // A trustpoint list wrapped by the terminal.
                for (auto w : split_words(t))
                    cur->trustpoints.emplace_back(w);
            } else {
                if (sub == trustpoints)
                    sub = none;
            }
        }
        for (const auto& c : out_.certificates) {
            if (istarts_with(c.status, "Available") && (!c.start || !c.end))
                problem(c.line, "certificate without a readable `Validity Date` (start/end date)");
        }
    }

    void timers(std::size_t b, std::size_t e) {
        out_.has_timers = true;
        std::string section;
        for (std::size_t i = b; i < e; ++i) {
            std::string_view t = lines_[i].text;
            if (t.empty())
                continue;
            if (is_timer_section(t)) {
                section = std::string{t};
                continue;
            }
            if (t.front() != '|')
                continue;
            t = trim(t.substr(1));
            // <countdown>  (<ISO>) NAME, or <countdown>  NAME on images without the ISO time.
            const auto open = t.find('(');
            const auto close = t.find(')', open == std::string_view::npos ? 0 : open);
            std::string_view countdown, name;
            std::optional<time_point> at;
            if (open != std::string_view::npos && close != std::string_view::npos &&
                t.substr(open + 1, 4).find_first_not_of("0123456789") == std::string_view::npos) {
                countdown = trim(t.substr(0, open));
                at = parse_iso8601(t.substr(open + 1, close - open - 1));
                if (!at) {
                    problem(lines_[i].number, fmt::format("'{}': expected an ISO time such as "
                                                          "(2024-09-26T20:48:17Z)",
                                                          t.substr(open, close - open + 1)));
                    continue;
                }
                name = trim(t.substr(close + 1));
            } else {
                // "291d23:54:53.214  RENEW client": countdown is the first one or two words
                // (days may be followed by a space-padded hour).
                auto w = split_words(t);
                if (w.empty())
                    continue;
                std::size_t used = 1;
                if (w[0].back() == 'd' && w.size() > 1)
                    used = 2;
                const auto cd_end = w[used - 1].data() + w[used - 1].size() - t.data();
                countdown = t.substr(0, static_cast<std::size_t>(cd_end));
                name = trim(t.substr(static_cast<std::size_t>(cd_end)));
                const auto cd = parse_ios_countdown(countdown);
                if (!cd) {
                    problem(lines_[i].number,
                            fmt::format("'{}': expected a countdown such as 291d23:54:53.214",
                                        countdown));
                    continue;
                }
                if (!name.empty()) {
                    if (!out_.clock) {
                        problem(lines_[i].number,
                                fmt::format("timer '{}' has no absolute time and there is no "
                                            "`show clock` before it to count from",
                                            name));
                        continue;
                    }
                    at = *out_.clock + *cd;
                }
            }
            if (name.empty()) {
                // The section's soonest-timer line, or a name wrapped onto the next line.
                if (i + 1 < e && !lines_[i + 1].text.empty() && lines_[i + 1].text.front() != '|' &&
                    !is_timer_section(lines_[i + 1].text) &&
                    sniff(lines_[i + 1].text) == block_kind::none) {
                    name = lines_[i + 1].text;
                    ++i;
                } else {
                    continue;
                }
            }
            if (!at)
                continue;
            out_.timers.push_back({section, std::string{name}, *at, lines_[i].number});
        }
    }

    void server(std::size_t b, std::size_t e) {
        out_.has_server = true;
        shown_server* cur = nullptr;
        for (std::size_t i = b; i < e; ++i) {
            const std::string_view t = lines_[i].text;
            if (t.empty())
                continue;
            if (istarts_with(t, "Certificate Server ") && t.back() == ':') {
                shown_server s;
                s.name = std::string{trim(t.substr(19, t.size() - 20))};
                s.line = lines_[i].number;
                out_.servers.push_back(std::move(s));
                cur = &out_.servers.back();
                continue;
            }
            if (cur == nullptr)
                continue;
            if (auto v = value_after(t, "Status:")) {
                cur->status = std::string{*v};
            } else if (istarts_with(t, "Server configured in RA mode")) {
                cur->ra_mode = true;
            } else if (auto g = value_after(t, "Granting mode is:")) {
                cur->granting = std::string{*g};
            } else if (auto x = value_after(t, "CA certificate expiration timer:")) {
                cur->ca_expiration = date_at(i, *x);
            } else if (auto a = value_after(t, "Autorollover timer:")) {
                cur->autorollover_timer = date_at(i, *a);
            } else if (auto o = value_after(t, "Auto-Rollover configured, overlap period")) {
                // "30 days" (IOS prints days; D H M overlaps add "H hours M minutes").
                const auto w = split_words(*o);
                duration d{0};
                bool ok = !w.empty();
                for (std::size_t k = 0; k + 1 < w.size(); k += 2) {
                    auto n = to_int(w[k]);
                    if (!n) {
                        ok = false;
                        break;
                    }
                    if (istarts_with(w[k + 1], "day"))
                        d += days{*n};
                    else if (istarts_with(w[k + 1], "hour"))
                        d += hours{*n};
                    else if (istarts_with(w[k + 1], "min"))
                        d += minutes{*n};
                    else
                        ok = false;
                }
                if (ok && w.size() % 2 == 0)
                    cur->overlap = d;
                else
                    problem(lines_[i].number,
                            fmt::format("'{}': expected 'overlap period N days'", t));
            } else if (auto rs = value_after(t, "Rollover status:")) {
                cur->rollover_status = std::string{*rs};
            } else if (auto re = value_after(t, "Rollover CA cert expiration time:")) {
                cur->rollover_ca_expiration = date_at(i, *re);
            }
        }
    }

    void clock(std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i) {
            std::string_view t = lines_[i].text;
            if (t.empty())
                continue;
            if (auto ts = value_after(t, "Time source is")) {
                // Exec timestamp: "Time source is NTP, 10:15:30.123 UTC Tue Mar 3 2026".
                const auto comma = ts->find(',');
                if (comma == std::string_view::npos)
                    continue;
                t = trim(ts->substr(comma + 1));
            } else if (!looks_like_clock(t)) {
                continue;
            }
            const bool not_authoritative = t.front() == '*';
            auto c = parse_ios_datetime(t, zones_);
            if (!c) {
                problem(lines_[i].number, c.error());
                return;
            }
            if (!out_.clock) {
                out_.clock = *c;
                out_.clock_authoritative = !not_authoritative;
                out_.clock_line = lines_[i].number;
            }
            return;
        }
    }

  private:
    const std::vector<text_line>& lines_;
    router_capture& out_;
    const zone_offsets& zones_;
};

std::string stem_of(std::string_view file) {
    auto slash = file.find_last_of('/');
    std::string_view s = slash == std::string_view::npos ? file : file.substr(slash + 1);
    if (auto dot = s.find('.'); dot != std::string_view::npos && dot > 0)
        s = s.substr(0, dot);
    return std::string{s};
}

}  // namespace

std::vector<router_capture> parse_captures(std::string_view text, std::string_view file_name) {
    std::vector<text_line> lines;
    lines.reserve(static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1);
    std::vector<router_text> routers;
    bool any_prompt = false;
    {
        std::size_t pos = 0;
        int number = 0;
        while (pos < text.size()) {
            const std::size_t nl = text.find('\n', pos);
            const std::string_view raw =
                text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
            pos = nl == std::string_view::npos ? text.size() : nl + 1;
            text_line l;
            l.number = ++number;
            clean(l, raw);
            lines.push_back(std::move(l));
        }
        // text_line::text may point into `owned`: fix the views after the vector settled.
        for (auto& l : lines)
            if (l.cleaned)
                l.text = trim(std::string_view{l.owned});
    }

    // Pass 1: routers and blocks.
    router_text* cur = nullptr;
    block* open = nullptr;
    auto close_block = [&](std::size_t at) {
        if (open != nullptr) {
            open->end = at;
            open = nullptr;
        }
    };
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const auto& l = lines[i];
        if (!l.indented) {
            if (auto p = prompt_of(l.text)) {
                any_prompt = true;
                close_block(i);
                if (cur == nullptr || cur->hostname != p->first) {
                    routers.push_back({std::string{p->first}, {}, l.number});
                    cur = &routers.back();
                }
                const block_kind k = classify_command(p->second);
                if (k != block_kind::none && k != block_kind::other) {
                    cur->blocks.push_back({k, i + 1, lines.size()});
                    open = &cur->blocks.back();
                }
                continue;
            }
        }
        if (any_prompt)
            continue;
        // No prompt seen yet: recognise blocks by their first line.
        if (cur == nullptr) {
            routers.push_back({"", {}, 1});
            cur = &routers.back();
        }
        if (open != nullptr && open->kind == block_kind::running_config) {
            if (l.text == "end" && !l.indented) {
                open->end = i + 1;
                open = nullptr;
            }
            continue;
        }
        const block_kind k = l.indented ? block_kind::none : sniff(l.text);
        if (k != block_kind::none &&
            (open == nullptr || open->kind != k || k == block_kind::clock)) {
            close_block(i);
            cur->blocks.push_back({k, i, lines.size()});
            open = &cur->blocks.back();
        }
    }
    close_block(lines.size());
    if (any_prompt && !routers.empty() && routers.front().blocks.empty() &&
        routers.front().hostname.empty())
        routers.erase(routers.begin());

    // Pass 2: parse the blocks, running-config first (it gives the time zones).
    std::vector<router_capture> out;
    out.reserve(routers.size());
    for (auto& rt : routers) {
        router_capture rc;
        rc.hostname = rt.hostname;
        rc.file = std::string{file_name};
        rc.first_line = rt.first_line;
        for (const auto& b : rt.blocks) {
            if (b.kind != block_kind::running_config)
                continue;
            rc.has_running_config = true;
            if (rc.running_config_line == 0)
                rc.running_config_line = b.begin < lines.size() ? lines[b.begin].number : 0;
            for (std::size_t i = b.begin; i < b.end; ++i) {
                // Keep the indentation the config parser needs.
                if (lines[i].indented)
                    rc.running_config += ' ';
                rc.running_config.append(lines[i].text);
                rc.running_config += '\n';
            }
        }
        const zone_offsets zones = zone_offsets_from_config(rc.running_config);
        if (rc.hostname.empty()) {
            std::size_t pos = rc.running_config.find("\nhostname ");
            if (rc.running_config.starts_with("hostname "))
                pos = 0;
            else if (pos != std::string::npos)
                ++pos;
            if (pos != std::string::npos) {
                const auto endl = rc.running_config.find('\n', pos);
                rc.hostname = std::string{trim(std::string_view{rc.running_config}.substr(
                    pos + 9, endl == std::string::npos ? std::string::npos : endl - pos - 9))};
            } else {
                rc.hostname = stem_of(file_name);
            }
        }
        capture_parser p{lines, rc, zones};
        // The clock first: countdown-only timers count from it.
        for (const auto& b : rt.blocks)
            if (b.kind == block_kind::clock)
                p.clock(b.begin, b.end);
        for (const auto& b : rt.blocks) {
            switch (b.kind) {
                case block_kind::certificates:
                    p.certificates(b.begin, b.end);
                    break;
                case block_kind::timers:
                    p.timers(b.begin, b.end);
                    break;
                case block_kind::server:
                    p.server(b.begin, b.end);
                    break;
                default:
                    break;
            }
        }
        out.push_back(std::move(rc));
    }
    return out;
}

std::vector<router_capture> merge_same_router(std::vector<router_capture> captures) {
    std::vector<router_capture> out;
    std::map<std::string, std::size_t, std::less<>> seen;
    for (auto& c : captures) {
        auto it = seen.find(c.hostname);
        if (it == seen.end()) {
            seen.emplace(c.hostname, out.size());
            out.push_back(std::move(c));
            continue;
        }
        auto& m = out[it->second];
        if (!m.has_running_config && c.has_running_config) {
            m.has_running_config = true;
            m.running_config = std::move(c.running_config);
            m.running_config_line = c.running_config_line;
            if (m.file != c.file)
                m.file = c.file;  // capture_config() reports against the config's file
        }
        if (!m.clock && c.clock) {
            m.clock = c.clock;
            m.clock_authoritative = c.clock_authoritative;
            m.clock_line = c.clock_line;
        }
        m.has_certificates |= c.has_certificates;
        m.has_timers |= c.has_timers;
        m.has_server |= c.has_server;
        for (auto& x : c.certificates)
            m.certificates.push_back(std::move(x));
        for (auto& x : c.timers)
            m.timers.push_back(std::move(x));
        for (auto& x : c.servers)
            m.servers.push_back(std::move(x));
        for (auto& x : c.problems)
            m.problems.push_back(std::move(x));
    }
    return out;
}

tl::expected<ios_config, parse_error> capture_config(const router_capture& r) {
    auto cfg = parse_ios_config(r.running_config, r.file);
    const int shift = std::max(0, r.running_config_line - 1);
    if (!cfg) {
        auto e = cfg.error();
        if (e.where.line > 0)
            e.where.line += shift;
        return tl::make_unexpected(std::move(e));
    }
    for (auto& w : cfg->warnings)
        if (w.where.line > 0)
            w.where.line += shift;
    for (auto& t : cfg->trustpoints)
        if (t.where.line > 0)
            t.where.line += shift;
    for (auto& s : cfg->servers)
        if (s.where.line > 0)
            s.where.line += shift;
    return cfg;
}

std::string_view to_string(router_phase p) {
    switch (p) {
        case router_phase::current:
            return "current";
        case router_phase::pending:
            return "pending";
        case router_phase::rollover:
            return "rollover";
        case router_phase::rollover_ca:
            return "rollover-ca";
        case router_phase::no_certificate:
            return "none";
        case router_phase::unknown:
            return "unknown";
    }
    return "unknown";
}

std::optional<router_phase> parse_router_phase(std::string_view text) {
    for (auto p : {router_phase::current, router_phase::pending, router_phase::rollover,
                   router_phase::rollover_ca, router_phase::no_certificate, router_phase::unknown})
        if (text == to_string(p))
            return p;
    return std::nullopt;
}

namespace {

bool has_tp(const shown_certificate& c, std::string_view tp) {
    return std::any_of(c.trustpoints.begin(), c.trustpoints.end(),
                       [&](const std::string& t) { return iequals(t, tp); });
}

bool timer_for(const shown_timer& t, std::string_view kind, std::string_view tp) {
    // "RENEW client": the kind, one blank, the trustpoint label.
    return istarts_with(t.name, kind) && t.name.size() > kind.size() &&
           is_space(t.name[kind.size()]) && iequals(trim(t.name.substr(kind.size())), tp);
}

}  // namespace

router_state derive_router_state(const router_capture& r, std::string_view trustpoint) {
    router_state st;
    st.hostname = r.hostname;
    st.where = {r.file, r.first_line, 1};
    st.captured_at = r.clock;
    auto doubt = [&](int line, std::string msg) {
        st.problems.push_back(source_location{r.file, line, 1}.to_string() + ": " + msg);
    };
    for (const auto& p : r.problems)
        st.problems.push_back(p.to_string());
    if (!r.clock)
        doubt(r.first_line, "no `show clock`: the capture time is unknown");
    else if (!r.clock_authoritative)
        doubt(r.clock_line,
              "`show clock` starts with '*': the router's clock is not authoritative (IOS does "
              "not run PKI timers then); its capture time may be wrong");
    if (!r.has_running_config) {
        doubt(r.first_line,
              "no `show running-config`: the trustpoint's auto-enroll is unknown, so the "
              "router's timers cannot be computed");
        return st;
    }
    auto cfg = capture_config(r);
    if (!cfg) {
        st.problems.push_back(cfg.error().to_string());
        return st;
    }
    // Which trustpoint.
    const trustpoint_config* tp = nullptr;
    if (!trustpoint.empty()) {
        tp = cfg->find_trustpoint(trustpoint);
        if (tp == nullptr) {
            // Accept any trustpoint whose name matches case-insensitively.
            for (const auto& t : cfg->trustpoints)
                if (iequals(t.name, trustpoint))
                    tp = &t;
        }
    } else {
        std::vector<const trustpoint_config*> scep;
        for (const auto& t : cfg->trustpoints)
            if (!t.enrollment_url.empty())
                scep.push_back(&t);
        if (scep.size() > 1) {
            std::vector<const trustpoint_config*> with_cert;
            for (const auto* t : scep)
                for (const auto& c : r.certificates)
                    if (c.kind == shown_cert_kind::id && has_tp(c, t->name)) {
                        with_cert.push_back(t);
                        break;
                    }
            if (!with_cert.empty())
                scep = with_cert;
            if (scep.size() > 1)
                st.notes.push_back(fmt::format(
                    "{} SCEP trustpoints; using the first, {} (choose with --trustpoint)",
                    scep.size(), scep.front()->name));
        }
        if (!scep.empty())
            tp = scep.front();
    }
    if (tp == nullptr) {
        doubt(r.running_config_line,
              trustpoint.empty()
                  ? std::string{"no `crypto pki trustpoint` with an `enrollment url` in the "
                                "running-config"}
                  : fmt::format("no `crypto pki trustpoint {}` in the running-config", trustpoint));
        return st;
    }
    st.trustpoint = *tp;
    if (!r.has_certificates) {
        doubt(r.first_line, fmt::format("no `show crypto pki certificates`: the certificate of "
                                        "trustpoint {} is unknown",
                                        tp->name));
        return st;
    }
    const shown_certificate *id = nullptr, *ca = nullptr, *rid = nullptr, *rca = nullptr,
                            *pending = nullptr;
    for (const auto& c : r.certificates) {
        if (!has_tp(c, tp->name))
            continue;
        const bool available = istarts_with(c.status, "Available") || c.status.empty();
        const bool is_pending = istarts_with(c.status, "Pending");
        if (c.kind == shown_cert_kind::ca) {
            if (available && c.start && c.end)
                (c.rollover ? rca : ca) = &c;
        } else if (c.kind == shown_cert_kind::id || c.kind == shown_cert_kind::ra_mode_cs ||
                   c.kind == shown_cert_kind::subordinate_ca) {
            if (is_pending) {
                pending = &c;
            } else if (available && c.start && c.end) {
                (c.rollover ? rid : id) = &c;
            } else if (!available) {
                doubt(c.line, fmt::format("certificate of trustpoint {} has status '{}'", tp->name,
                                          c.status));
            }
        }
    }
    if (id != nullptr) {
        st.id = validity{*id->start, *id->end};
        st.printed_renew_date = id->renew;
        st.renew_date_line = id->line;
    }
    if (ca != nullptr) {
        st.ca = validity{*ca->start, *ca->end};
        st.ca_serial = ca->serial;
    }
    if (rid != nullptr)
        st.rollover_id = validity{*rid->start, *rid->end};
    if (rca != nullptr)
        st.rollover_ca = validity{*rca->start, *rca->end};
    for (const auto& t : r.timers) {
        if (timer_for(t, "RENEW", tp->name)) {
            st.printed_renew_timer = t.at;
            st.renew_timer_line = t.line;
        } else if (timer_for(t, "SHADOW", tp->name)) {
            st.printed_shadow_timer = t.at;
            st.shadow_timer_line = t.line;
        } else if (timer_for(t, "POLL", tp->name)) {
            st.next_poll = t.at;
        }
    }
    if (st.ca == std::nullopt) {
        doubt(r.first_line,
              fmt::format("no available `CA Certificate` for trustpoint {}: its CA's expiry "
                          "(which decides RENEW or SHADOW) is unknown",
                          tp->name));
        return st;
    }
    if (!r.clock) {
        return st;  // phase unknown without a capture time
    }
    if (st.rollover_ca && st.rollover_id) {
        st.phase = router_phase::rollover;
    } else if (st.rollover_ca) {
        st.phase = router_phase::rollover_ca;
    } else if (pending != nullptr) {
        st.phase = router_phase::pending;
    } else if (st.id) {
        st.phase = router_phase::current;
        if (st.id->not_after <= *r.clock)
            doubt(id->line, fmt::format("the certificate of trustpoint {} expired on {}", tp->name,
                                        to_iso8601(st.id->not_after)));
    } else {
        st.phase = router_phase::no_certificate;
    }
    if (st.rollover_id && !st.rollover_ca)
        doubt(rid->line, "a `Certificate (Rollover)` without a `CA Certificate (Rollover)`");
    return st;
}

std::vector<std::string> printed_timer_disagreements(const router_state& st, duration tolerance) {
    std::vector<std::string> out;
    if (!st.id || !st.ca || st.phase == router_phase::unknown)
        return out;
    const auto rp = client_renewal(st.trustpoint, *st.id, st.ca->not_after);
    auto far = [&](time_point a, time_point b) { return (a > b ? a - b : b - a) > tolerance; };
    auto where = [&](int line) { return source_location{st.where.file, line, 1}.to_string(); };
    const std::string rule =
        st.trustpoint.auto_enroll
            ? fmt::format("auto-enroll {} on {} .. {}", st.trustpoint.auto_enroll_percent,
                          to_iso8601(st.id->not_before), to_iso8601(st.id->not_after))
            : std::string{"no auto-enroll"};
    if (st.printed_renew_date &&
        (rp.kind == renewal_kind::none || far(*st.printed_renew_date, rp.at)))
        out.push_back(fmt::format(
            "{}: {}: printed renew date {} but {} gives {}", where(st.renew_date_line), st.hostname,
            to_iso8601(*st.printed_renew_date), rule,
            rp.kind == renewal_kind::none ? std::string{"no renewal"} : to_iso8601(rp.at)));
    if (st.printed_renew_timer) {
        if (rp.kind != renewal_kind::renew)
            out.push_back(fmt::format(
                "{}: {}: RENEW timer {} printed, but the certificate ends with its CA ({}): the "
                "model arms {}",
                where(st.renew_timer_line), st.hostname, to_iso8601(*st.printed_renew_timer),
                to_iso8601(st.ca->not_after),
                rp.kind == renewal_kind::shadow ? fmt::format("SHADOW at {}", to_iso8601(rp.at))
                                                : std::string{"nothing"}));
        else if (far(*st.printed_renew_timer, rp.at))
            out.push_back(fmt::format(
                "{}: {}: RENEW timer {} printed but {} gives {}", where(st.renew_timer_line),
                st.hostname, to_iso8601(*st.printed_renew_timer), rule, to_iso8601(rp.at)));
    }
    if (st.printed_shadow_timer) {
        if (rp.kind != renewal_kind::shadow)
            out.push_back(fmt::format(
                "{}: {}: SHADOW timer {} printed, but the certificate ends before its CA ({}): "
                "the model arms {}",
                where(st.shadow_timer_line), st.hostname, to_iso8601(*st.printed_shadow_timer),
                to_iso8601(st.ca->not_after),
                rp.kind == renewal_kind::renew ? fmt::format("RENEW at {}", to_iso8601(rp.at))
                                               : std::string{"nothing"}));
        else if (far(*st.printed_shadow_timer, rp.at))
            out.push_back(fmt::format(
                "{}: {}: SHADOW timer {} printed but {} gives {}", where(st.shadow_timer_line),
                st.hostname, to_iso8601(*st.printed_shadow_timer), rule, to_iso8601(rp.at)));
    }
    return out;
}

}  // namespace pkisim::timers
