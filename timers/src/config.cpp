// IOS configuration parser for `crypto pki server`, `crypto pki trustpoint` and
// `ip http max-connections` (ios-pki-model.md §1–§3, ranges from ios-pki-research.md §1.1).
//
// IOS rules followed here: keywords are case-insensitive and may be abbreviated to any unique
// prefix (an exact match wins over longer keywords); `no CMD` and `default CMD` restore the
// default; a section is the indented block under its header, as `show running-config` prints it.
#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <iostream>
#include <iterator>
#include <span>
#include <sstream>

#include <fmt/format.h>

#include "pkisim/timers/config.hpp"
#include "pkisim/timers/settings.hpp"

namespace pkisim::timers {

std::string source_location::to_string() const {
    if (line <= 0) {
        return file.empty() ? std::string{"<command line>"} : file;
    }
    return fmt::format("{}:{}:{}", file, line, column > 0 ? column : 1);
}

std::string parse_error::to_string() const {
    return fmt::format("{}: {}", where.to_string(), message);
}

std::string parse_warning::to_string() const {
    return fmt::format("{}: warning: {}", where.to_string(), message);
}

const server_config* ios_config::find_server(std::string_view name) const {
    for (const auto& s : servers) {
        if (s.name == name) {
            return &s;
        }
    }
    return nullptr;
}

const trustpoint_config* ios_config::find_trustpoint(std::string_view name) const {
    for (const auto& t : trustpoints) {
        if (t.name == name) {
            return &t;
        }
    }
    return nullptr;
}

std::string_view to_string(grant_mode g) {
    switch (g) {
        case grant_mode::manual:
            return "manual";
        case grant_mode::auto_grant:
            return "auto";
        case grant_mode::none:
            return "none";
        case grant_mode::ra_auto:
            return "ra-auto";
    }
    return "unknown";
}

std::string_view to_string(hash_algorithm h) {
    switch (h) {
        case hash_algorithm::md5:
            return "md5";
        case hash_algorithm::sha1:
            return "sha1";
        case hash_algorithm::sha256:
            return "sha256";
        case hash_algorithm::sha384:
            return "sha384";
        case hash_algorithm::sha512:
            return "sha512";
    }
    return "unknown";
}

std::string_view to_string(database_level d) {
    switch (d) {
        case database_level::minimum:
            return "minimum";
        case database_level::names:
            return "names";
        case database_level::complete:
            return "complete";
    }
    return "unknown";
}

namespace {

using keyword_list = std::span<const std::string_view>;

struct token {
    std::string_view text;
    int column = 1;  // 1-based
};

bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

std::vector<token> tokenize(std::string_view line, int first_column) {
    std::vector<token> out;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && is_blank(line[i])) {
            ++i;
        }
        if (i >= line.size()) {
            break;
        }
        const std::size_t start = i;
        while (i < line.size() && !is_blank(line[i])) {
            ++i;
        }
        out.push_back({line.substr(start, i - start), first_column + static_cast<int>(start)});
    }
    return out;
}

// Messages quote user text: keep them printable ASCII and short, whatever the input bytes.
std::string printable(std::string_view s) {
    std::string out;
    const std::size_t limit = 40;
    for (std::size_t i = 0; i < s.size() && i < limit; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            out += fmt::format("\\x{:02x}", c);
        }
    }
    if (s.size() > limit) {
        out += "...";
    }
    return out;
}

char lower(char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

bool iequal(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [](char x, char y) { return lower(x) == lower(y); });
}

bool iprefix(std::string_view prefix, std::string_view word) {
    return prefix.size() <= word.size() && iequal(prefix, word.substr(0, prefix.size()));
}

std::string join_alternatives(const std::vector<std::string_view>& words) {
    std::string out;
    for (std::size_t i = 0; i < words.size(); ++i) {
        if (i > 0) {
            out += (i + 1 == words.size()) ? " or " : ", ";
        }
        out += words[i];
    }
    return out;
}

struct resolution {
    int index = -1;                         // >= 0: the keyword
    std::vector<std::string_view> matches;  // > 1: ambiguous
};

// IOS: a keyword may be abbreviated to any unique prefix; an exact match always wins.
resolution resolve(std::string_view tok, keyword_list keywords) {
    resolution r;
    if (tok.empty()) {
        return r;
    }
    for (std::size_t i = 0; i < keywords.size(); ++i) {
        if (iequal(tok, keywords[i])) {
            r.index = static_cast<int>(i);
            r.matches.clear();
            return r;
        }
        if (iprefix(tok, keywords[i])) {
            r.matches.push_back(keywords[i]);
            r.index = static_cast<int>(i);
        }
    }
    if (r.matches.size() != 1) {
        r.index = -1;
    }
    return r;
}

// Walks the tokens of one command, remembering the canonical words read so far for messages
// ("lifetime certificate 9000: days must be 0..7305" even when typed `lifetime cert 9000`).
class command_reader {
  public:
    command_reader(std::span<const token> toks, std::string_view raw_line, source_location where)
        : toks_(toks), raw_(raw_line), where_(std::move(where)) {}

    bool at_end() const { return pos_ >= toks_.size(); }
    const token& peek() const { return toks_[pos_]; }
    std::size_t position() const { return pos_; }

    void consume(std::string_view canonical) {
        append(canonical);
        ++pos_;
    }
    void consume_raw() { consume(printable(toks_[pos_].text)); }

    // Text of the line from the current token on (DNs and URLs may contain spaces).
    std::string_view rest() const {
        if (at_end()) {
            return {};
        }
        const token& t = toks_[pos_];
        const auto offset = static_cast<std::size_t>(t.text.data() - raw_.data());
        std::string_view r = raw_.substr(offset);
        while (!r.empty() && is_blank(r.back())) {
            r.remove_suffix(1);
        }
        return r;
    }
    void consume_rest() {
        append(printable(rest()));
        pos_ = toks_.size();
    }

    // Error at the current token (or just after the last one when it is missing).
    parse_error error(const std::string& what) const {
        parse_error e;
        e.where = where_;
        e.where.column = column_here();
        if (at_end()) {
            e.message = fmt::format("{}: {}", path_, what);
        } else if (path_.empty()) {
            e.message = fmt::format("{}: {}", printable(toks_[pos_].text), what);
        } else {
            e.message = fmt::format("{} {}: {}", path_, printable(toks_[pos_].text), what);
        }
        return e;
    }
    // "lifetime c: ambiguous keyword, could be ca-certificate, certificate or crl"
    parse_error ambiguous(const resolution& r) const {
        return error("ambiguous keyword, could be " + join_alternatives(r.matches));
    }
    parse_error expected_one_of(keyword_list words, std::string_view what = {}) const {
        std::vector<std::string_view> v(words.begin(), words.end());
        return error(fmt::format("expected {}{}", what.empty() ? "" : std::string{what} + " ",
                                 join_alternatives(v)));
    }

    // Reads a keyword from `words`; errors for missing, unknown or ambiguous.
    tl::expected<int, parse_error> keyword(keyword_list words, keyword_list shown = {}) {
        if (shown.empty()) {
            shown = words;
        }
        if (at_end()) {
            return tl::unexpected(expected_one_of(shown));
        }
        const resolution r = resolve(peek().text, words);
        if (r.matches.size() > 1) {
            return tl::unexpected(ambiguous(r));
        }
        if (r.index < 0) {
            return tl::unexpected(expected_one_of(shown));
        }
        consume(words[static_cast<std::size_t>(r.index)]);
        return r.index;
    }

    // An unsigned decimal in [lo, hi]; `unit` names it in messages ("days", "hours").
    tl::expected<long long, parse_error> number(std::string_view unit, long long lo, long long hi) {
        const std::string range = fmt::format("{} {}..{}", unit, lo, hi);
        if (at_end()) {
            return tl::unexpected(error("expected " + range));
        }
        const std::string_view t = peek().text;
        if (t.empty() ||
            !std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            return tl::unexpected(error("expected " + range));
        }
        std::string_view digits = t;
        while (digits.size() > 1 && digits.front() == '0') {
            digits.remove_prefix(1);
        }
        long long v = 0;
        if (digits.size() > 12) {
            v = hi + 1;  // any such number is out of every range used here
        } else {
            for (char c : digits) {
                v = v * 10 + (c - '0');
            }
        }
        if (v < lo || v > hi) {
            return tl::unexpected(error(fmt::format("{} must be {}..{}", unit, lo, hi)));
        }
        consume(t);
        return v;
    }

    tl::expected<void, parse_error> end() const {
        if (!at_end()) {
            return tl::unexpected(error("unexpected extra word at the end of the command"));
        }
        return {};
    }

    const source_location& where() const { return where_; }
    const std::string& path() const { return path_; }

  private:
    void append(std::string_view w) {
        if (!path_.empty()) {
            path_ += ' ';
        }
        path_ += w;
    }
    int column_here() const {
        if (!at_end()) {
            return toks_[pos_].column;
        }
        if (toks_.empty()) {
            return where_.column > 0 ? where_.column : 1;
        }
        const token& last = toks_.back();
        return last.column + static_cast<int>(last.text.size()) + 1;
    }

    std::span<const token> toks_;
    std::string_view raw_;
    source_location where_;
    std::size_t pos_ = 0;
    std::string path_;
};

using result = tl::expected<bool, parse_error>;  // false = not a command of this section

// `H [M]` (hours 0..max_hours, minutes 0..59).
tl::expected<duration, parse_error> read_hours_minutes(command_reader& r, long long max_hours) {
    auto h = r.number("hours", 0, max_hours);
    if (!h) {
        return tl::unexpected(h.error());
    }
    duration total = hours{*h};
    if (!r.at_end()) {
        auto m = r.number("minutes", 0, 59);
        if (!m) {
            return tl::unexpected(m.error());
        }
        total += minutes{*m};
    }
    return total;
}

// `D [H [M]]` (days 0..max_days, then an optional `H [M]` with hours 0..23).
tl::expected<duration, parse_error> read_days_hours_minutes(command_reader& r, long long max_days) {
    auto d = r.number("days", 0, max_days);
    if (!d) {
        return tl::unexpected(d.error());
    }
    duration total = days{*d};
    if (!r.at_end()) {
        auto hm = read_hours_minutes(r, 23);
        if (!hm) {
            return tl::unexpected(hm.error());
        }
        total += *hm;
    }
    return total;
}

// IOS cs-server mode keywords. Only some are modelled; the others are real IOS commands that
// do not change any timer, so they are accepted without a warning.
constexpr std::array<std::string_view, 15> server_keywords = {
    "auto-rollover", "cdp-url",     "database", "default", "exit", "grant",
    "hash",          "issuer-name", "lifetime", "mode",    "no",   "redundancy",
    "serial-number", "shutdown",    "eku"};
constexpr std::array<std::string_view, 4> lifetime_keywords = {"ca-certificate", "certificate",
                                                               "crl", "enrollment-request"};
constexpr std::array<std::string_view, 3> grant_keywords = {"auto", "none", "ra-auto"};
constexpr std::array<std::string_view, 2> mode_keywords = {"ra", "sub-cs"};
constexpr std::array<std::string_view, 5> hash_keywords = {"md5", "sha1", "sha256", "sha384",
                                                           "sha512"};
constexpr std::array<std::string_view, 4> database_keywords = {"level", "url", "archive",
                                                               "username"};
constexpr std::array<std::string_view, 3> level_keywords = {"minimum", "names", "complete"};

// IOS ca-trustpoint mode keywords (modelled: auto-enroll, enrollment, subject-name, rsakeypair).
constexpr std::array<std::string_view, 29> trustpoint_keywords = {"auto-enroll",
                                                                  "auto-trigger",
                                                                  "chain-validation",
                                                                  "crl",
                                                                  "default",
                                                                  "eckeypair",
                                                                  "eku",
                                                                  "enrollment",
                                                                  "exit",
                                                                  "fingerprint",
                                                                  "fqdn",
                                                                  "hash",
                                                                  "ip-address",
                                                                  "match",
                                                                  "no",
                                                                  "ocsp",
                                                                  "password",
                                                                  "primary",
                                                                  "revocation-check",
                                                                  "rsakeypair",
                                                                  "serial-number",
                                                                  "source",
                                                                  "storage",
                                                                  "subject-alt-name",
                                                                  "subject-name",
                                                                  "usage",
                                                                  "validation-usage",
                                                                  "vrf",
                                                                  "root"};
constexpr std::array<std::string_view, 9> enrollment_keywords = {
    "url",        "mode",       "retry",      "terminal", "profile",
    "selfsigned", "http-proxy", "credential", "pkcs12"};
constexpr std::array<std::string_view, 2> retry_keywords = {"period", "count"};

tl::expected<void, parse_error> apply_server_words(server_config& s, command_reader& r, bool negate,
                                                   int kw) {
    const std::string_view k = server_keywords[static_cast<std::size_t>(kw)];
    if (k == "auto-rollover") {
        if (negate) {
            s.auto_rollover.reset();
            return {};
        }
        if (r.at_end()) {
            s.auto_rollover = days{30};  // IOS: bare auto-rollover = 30 days (tech note 116094)
            return {};
        }
        auto d = read_days_hours_minutes(r, 7305);
        if (!d) {
            return tl::unexpected(d.error());
        }
        s.auto_rollover = *d;
        return r.end();
    }
    if (k == "lifetime") {
        auto which = r.keyword(lifetime_keywords);
        if (!which) {
            return tl::unexpected(which.error());
        }
        const std::string_view w = lifetime_keywords[static_cast<std::size_t>(*which)];
        if (negate) {
            const server_config def;
            if (w == "ca-certificate")
                s.ca_lifetime = def.ca_lifetime;
            if (w == "certificate")
                s.cert_lifetime = def.cert_lifetime;
            if (w == "crl")
                s.crl_lifetime = def.crl_lifetime;
            if (w == "enrollment-request")
                s.enrollment_request_lifetime = def.enrollment_request_lifetime;
            return {};
        }
        if (w == "crl" || w == "enrollment-request") {
            auto v = read_hours_minutes(r, w == "crl" ? 336 : 1000);
            if (!v) {
                return tl::unexpected(v.error());
            }
            (w == "crl" ? s.crl_lifetime : s.enrollment_request_lifetime) = *v;
            return r.end();
        }
        auto v = read_days_hours_minutes(r, 7305);
        if (!v) {
            return tl::unexpected(v.error());
        }
        if (auto e = r.end(); !e) {
            return e;
        }
        if (v->count() == 0) {
            return tl::unexpected(
                r.error("a lifetime of 0 is not usable; expected at least 1 minute"));
        }
        (w == "ca-certificate" ? s.ca_lifetime : s.cert_lifetime) = *v;
        return {};
    }
    if (k == "grant") {
        if (negate) {
            s.grant = grant_mode::manual;
            return {};
        }
        auto g = r.keyword(grant_keywords);
        if (!g) {
            return tl::unexpected(g.error());
        }
        static constexpr std::array<grant_mode, 3> modes = {grant_mode::auto_grant,
                                                            grant_mode::none, grant_mode::ra_auto};
        s.grant = modes[static_cast<std::size_t>(*g)];
        // `grant auto rollover ca-cert|ra-cert` and `grant auto trustpoint TP` narrow what is
        // granted; not modelled, the words are accepted.
        return {};
    }
    if (k == "mode") {
        if (negate) {
            s.mode_ra = false;
            return {};
        }
        auto m = r.keyword(mode_keywords);
        if (!m) {
            return tl::unexpected(m.error());
        }
        s.mode_ra = (*m == 0);
        if (s.mode_ra && !r.at_end() && iprefix(r.peek().text, "transparent")) {
            r.consume("transparent");
        }
        return r.end();
    }
    if (k == "issuer-name") {
        if (negate) {
            s.issuer_name = "CN=" + s.name;
            return {};
        }
        if (r.at_end()) {
            return tl::unexpected(r.error("expected a distinguished name, e.g. CN=ca.example.com"));
        }
        s.issuer_name = std::string{r.rest()};
        r.consume_rest();
        return {};
    }
    if (k == "hash") {
        if (negate) {
            s.hash = hash_algorithm::sha256;
            return {};
        }
        auto h = r.keyword(hash_keywords);
        if (!h) {
            return tl::unexpected(h.error());
        }
        static constexpr std::array<hash_algorithm, 5> algs = {
            hash_algorithm::md5, hash_algorithm::sha1, hash_algorithm::sha256,
            hash_algorithm::sha384, hash_algorithm::sha512};
        s.hash = algs[static_cast<std::size_t>(*h)];
        return r.end();
    }
    if (k == "database") {
        auto d = r.keyword(database_keywords);
        if (!d) {
            return tl::unexpected(d.error());
        }
        if (*d != 0) {
            return {};  // url / archive / username: storage details, no timer
        }
        if (negate) {
            s.db_level = database_level::minimum;
            return {};
        }
        auto l = r.keyword(level_keywords);
        if (!l) {
            return tl::unexpected(l.error());
        }
        static constexpr std::array<database_level, 3> levels = {
            database_level::minimum, database_level::names, database_level::complete};
        s.db_level = levels[static_cast<std::size_t>(*l)];
        return r.end();
    }
    if (k == "cdp-url") {
        if (negate) {
            s.cdp_url.clear();
            return {};
        }
        if (r.at_end()) {
            return tl::unexpected(r.error("expected a URL, e.g. http://10.0.0.1/ca.crl"));
        }
        s.cdp_url = std::string{r.rest()};
        r.consume_rest();
        return {};
    }
    if (k == "shutdown") {
        s.shutdown = !negate;
        return negate ? tl::expected<void, parse_error>{} : r.end();
    }
    if (k == "eku") {
        // IOS `eku [request] NAME...` under `crypto pki server` (issue 11 §2.4).
        s.eku.clear();
        if (negate)
            return {};
        static constexpr std::array<std::string_view, 9> names = {
            "client-auth",  "code-signing",     "email-protection",
            "ipsec-end-system", "ipsec-tunnel", "ipsec-user",
            "ocsp-signing", "server-auth",      "time-stamping"};
        if (!r.at_end() && iprefix(r.peek().text, "request"))
            r.consume("request");
        if (r.at_end()) {
            return tl::unexpected(r.error(
                "expected extended key usage names, e.g. eku client-auth server-auth"));
        }
        while (!r.at_end()) {
            const std::string_view w = r.peek().text;
            const auto* n = std::find(names.begin(), names.end(), w);
            if (n == names.end()) {
                return tl::unexpected(r.error(
                    "expected client-auth, code-signing, email-protection, ipsec-end-system, "
                    "ipsec-tunnel, ipsec-user, ocsp-signing, server-auth or time-stamping"));
            }
            s.eku.emplace_back(*n);
            r.consume(*n);
        }
        return {};
    }
    // serial-number, redundancy: real commands without a timer; accepted as written.
    return {};
}

tl::expected<void, parse_error> apply_trustpoint_words(trustpoint_config& t, command_reader& r,
                                                       bool negate, int kw) {
    const std::string_view k = trustpoint_keywords[static_cast<std::size_t>(kw)];
    if (k == "auto-enroll") {
        if (negate) {
            const trustpoint_config def;
            t.auto_enroll = false;
            t.auto_enroll_percent = def.auto_enroll_percent;
            t.regenerate = false;
            return {};
        }
        t.auto_enroll = true;
        t.auto_enroll_percent = 100;  // IOS: bare auto-enroll renews at expiry
        t.regenerate = false;
        if (!r.at_end() && !iprefix(r.peek().text, "regenerate")) {
            auto p = r.number("percent", 1, 100);
            if (!p) {
                return tl::unexpected(p.error());
            }
            t.auto_enroll_percent = static_cast<int>(*p);
        }
        if (!r.at_end()) {
            if (!iprefix(r.peek().text, "regenerate")) {
                return tl::unexpected(r.error("expected regenerate"));
            }
            r.consume("regenerate");
            t.regenerate = true;
        }
        return r.end();
    }
    if (k == "enrollment") {
        auto e = r.keyword(enrollment_keywords);
        if (!e) {
            return tl::unexpected(e.error());
        }
        const std::string_view w = enrollment_keywords[static_cast<std::size_t>(*e)];
        if (w == "url") {
            if (negate) {
                t.enrollment_url.clear();
                return {};
            }
            if (r.at_end()) {
                return tl::unexpected(r.error("expected a URL, e.g. http://10.0.0.1:80"));
            }
            t.enrollment_url = std::string{r.peek().text};
            r.consume_raw();
            // `enrollment url URL vrf NAME` is valid IOS; the VRF does not matter here.
            return {};
        }
        if (w == "mode") {
            if (negate) {
                t.enrollment_mode_ra = false;
                return {};
            }
            static constexpr std::array<std::string_view, 1> ra = {"ra"};
            auto m = r.keyword(ra);
            if (!m) {
                return tl::unexpected(m.error());
            }
            t.enrollment_mode_ra = true;
            return r.end();
        }
        if (w == "retry") {
            auto which = r.keyword(retry_keywords);
            if (!which) {
                return tl::unexpected(which.error());
            }
            const trustpoint_config def;
            if (*which == 0) {
                if (negate) {
                    t.retry_period = def.retry_period;
                    return {};
                }
                auto m = r.number("minutes", 1, 60);
                if (!m) {
                    return tl::unexpected(m.error());
                }
                t.retry_period = minutes{*m};
                return r.end();
            }
            if (negate) {
                t.retry_count = def.retry_count;
                return {};
            }
            auto c = r.number("count", 0, 100);
            if (!c) {
                return tl::unexpected(c.error());
            }
            t.retry_count = static_cast<int>(*c);
            return r.end();
        }
        return {};  // terminal, profile, selfsigned ...: enrollment by hand, no SCEP timer
    }
    if (k == "subject-name") {
        t.subject_name = negate ? std::string{} : std::string{r.rest()};
        r.consume_rest();
        return {};
    }
    if (k == "rsakeypair") {
        if (negate) {
            t.rsakeypair.clear();
            return {};
        }
        if (r.at_end()) {
            return tl::unexpected(r.error("expected a key pair label"));
        }
        t.rsakeypair = std::string{r.peek().text};
        r.consume_raw();
        return {};  // optional key sizes follow
    }
    return {};  // other real trustpoint commands: no timer
}

// Applies one section line. Returns false (no error) when the first word is not a command of
// the section, so the file parser can warn; `--set` turns that into an error.
template <class Config, std::size_t N, class Apply>
result apply_section_line(Config& cfg, std::span<const token> toks, std::string_view raw,
                          const source_location& where,
                          const std::array<std::string_view, N>& keywords, Apply apply) {
    command_reader r{toks, raw, where};
    if (r.at_end()) {
        return true;
    }
    const resolution first = resolve(r.peek().text, keywords);
    if (first.matches.size() > 1) {
        return tl::unexpected(r.ambiguous(first));
    }
    if (first.index < 0) {
        return false;
    }
    const std::string_view kw = keywords[static_cast<std::size_t>(first.index)];
    r.consume(kw);
    bool negate = false;
    int index = first.index;
    if (kw == "no" || kw == "default") {
        negate = true;
        if (r.at_end()) {
            return tl::unexpected(r.error("expected a command to negate"));
        }
        const resolution second = resolve(r.peek().text, keywords);
        if (second.matches.size() > 1) {
            return tl::unexpected(r.ambiguous(second));
        }
        const std::string_view k2 = second.index >= 0
                                        ? keywords[static_cast<std::size_t>(second.index)]
                                        : std::string_view{};
        if (second.index < 0 || k2 == "no" || k2 == "default" || k2 == "exit") {
            return false;
        }
        r.consume(k2);
        index = second.index;
    }
    auto applied = apply(cfg, r, negate, index);
    if (!applied) {
        return tl::unexpected(applied.error());
    }
    return true;
}

result server_line(server_config& s, std::span<const token> toks, std::string_view raw,
                   const source_location& where) {
    return apply_section_line(s, toks, raw, where, server_keywords, apply_server_words);
}

result trustpoint_line(trustpoint_config& t, std::span<const token> toks, std::string_view raw,
                       const source_location& where) {
    return apply_section_line(t, toks, raw, where, trustpoint_keywords, apply_trustpoint_words);
}

std::string keyword_summary(keyword_list words) {
    std::vector<std::string_view> v;
    for (auto w : words) {
        if (w != "exit") {
            v.push_back(w);
        }
    }
    return join_alternatives(v);
}

template <class Config, class LineFn>
tl::expected<void, parse_error> apply_single(Config& cfg, std::string_view line,
                                             const source_location& where, LineFn fn,
                                             keyword_list words, std::string_view section) {
    const int col = where.column > 0 ? where.column : 1;
    const auto toks = tokenize(line, col);
    if (toks.empty()) {
        parse_error e{where, fmt::format("expected a {} command", section)};
        return tl::unexpected(e);
    }
    auto r = fn(cfg, toks, line, where);
    if (!r) {
        return tl::unexpected(r.error());
    }
    if (!*r) {
        parse_error e{where,
                      fmt::format("{}: not a {} command; expected {}", printable(toks.front().text),
                                  section, keyword_summary(words))};
        e.where.column = toks.front().column;
        return tl::unexpected(e);
    }
    return {};
}

// Top level of a running-config. Only these words matter; everything else is skipped.
constexpr std::array<std::string_view, 19> crypto_words = {
    "ca",    "call",  "ctcp",         "dynamic-map", "engine",  "gdoi",    "identity",
    "ikev2", "ipsec", "isakmp",       "key",         "keyring", "logging", "map",
    "mib",   "pki",   "provisioning", "vpn",         "wui"};
constexpr std::array<std::string_view, 9> pki_words = {"certificate", "crl",       "http",
                                                       "profile",     "server",    "token",
                                                       "trustpoint",  "trustpool", "notification"};
constexpr std::array<std::string_view, 19> ip_http_words = {"access-class",
                                                            "active-session-modules",
                                                            "authentication",
                                                            "client",
                                                            "digest",
                                                            "help-path",
                                                            "max-connections",
                                                            "path",
                                                            "port",
                                                            "secure-active-session-modules",
                                                            "secure-ciphersuite",
                                                            "secure-client-auth",
                                                            "secure-port",
                                                            "secure-server",
                                                            "secure-trustpoint",
                                                            "server",
                                                            "session-module-list",
                                                            "timeout-policy",
                                                            "tls-version"};

enum class section_kind { none, server, trustpoint };

}  // namespace

tl::expected<void, parse_error> apply_server_command(server_config& server, std::string_view line,
                                                     const source_location& where) {
    return apply_single(server, line, where, server_line, server_keywords, "crypto pki server");
}

tl::expected<void, parse_error> apply_trustpoint_command(trustpoint_config& tp,
                                                         std::string_view line,
                                                         const source_location& where) {
    return apply_single(tp, line, where, trustpoint_line, trustpoint_keywords,
                        "crypto pki trustpoint");
}

tl::expected<ios_config, parse_error> parse_ios_config(std::string_view text,
                                                       std::string_view file_name) {
    ios_config cfg;
    section_kind in = section_kind::none;
    std::size_t current = 0;  // index into servers_ / trustpoints_
    const std::string file{file_name};

    int line_no = 0;
    std::size_t pos = 0;
    // Devices pasted one after the other (a `hostname` line each) and their ip http values.
    int device = 0;
    bool hostname_seen = false;
    source_location hostname_where;
    bool http_seen = false;
    int http_value = 0;
    int http_device = 0;
    std::vector<int> device_http;    // per device, -1 = not set
    std::vector<int> server_device;  // per server
    while (pos <= text.size()) {
        // Lines end at \n, \r\n or a lone \r.
        std::size_t end = pos;
        while (end < text.size() && text[end] != '\n' && text[end] != '\r') {
            ++end;
        }
        const std::string_view raw = text.substr(pos, end - pos);
        ++line_no;
        if (end < text.size() && text[end] == '\r' && end + 1 < text.size() &&
            text[end + 1] == '\n') {
            ++end;
        }
        const bool last = end >= text.size();
        pos = end + 1;

        const auto toks = tokenize(raw, 1);
        if (!toks.empty()) {
            const source_location where{file, line_no, toks.front().column};
            const bool indented = toks.front().column > 1;
            const std::string_view first = toks.front().text;
            const bool comment = first.front() == '!' || first.front() == '#';

            if (in != section_kind::none && indented) {
                if (!comment) {
                    if (iequal(first, "exit") && toks.size() == 1) {
                        in = section_kind::none;
                    } else {
                        result r =
                            in == section_kind::server
                                ? server_line(cfg.servers[current], toks, raw, where)
                                : trustpoint_line(cfg.trustpoints[current], toks, raw, where);
                        if (!r) {
                            return tl::unexpected(r.error());
                        }
                        if (!*r) {
                            cfg.warnings.push_back(
                                {where,
                                 fmt::format("{}: unknown command in crypto pki {} {}; ignored",
                                             // `no X` / `default X`: name both words.
                                             (iequal(first, "no") || iequal(first, "default")) &&
                                                     toks.size() > 1
                                                 ? printable(first) + " " + printable(toks[1].text)
                                                 : printable(first),
                                             in == section_kind::server ? "server" : "trustpoint",
                                             in == section_kind::server
                                                 ? cfg.servers[current].name
                                                 : cfg.trustpoints[current].name)});
                        }
                    }
                }
            } else if (!indented) {
                in = section_kind::none;
                command_reader r{toks, raw, where};
                const bool is_no = iequal(first, "no");
                if (is_no) {
                    r.consume("no");
                }
                if (!r.at_end() && r.peek().text.size() >= 2 && iprefix(r.peek().text, "crypto")) {
                    r.consume("crypto");
                    const resolution w =
                        r.at_end() ? resolution{} : resolve(r.peek().text, crypto_words);
                    if (w.index >= 0 && crypto_words[static_cast<std::size_t>(w.index)] == "pki") {
                        r.consume("pki");
                        if (r.at_end()) {
                            // `crypto pki` alone is not a configuration line; skip.
                        } else {
                            const resolution p = resolve(r.peek().text, pki_words);
                            if (p.matches.size() > 1) {
                                return tl::unexpected(r.ambiguous(p));
                            }
                            const std::string_view pw =
                                p.index >= 0 ? pki_words[static_cast<std::size_t>(p.index)]
                                             : std::string_view{};
                            if (p.index < 0 && p.matches.empty()) {
                                // A typo here silently drops a whole section (and can turn
                                // the verdict into "safe"): say so, with the nearest keyword.
                                const std::string near = nearest_word(r.peek().text, pki_words);
                                parse_warning typo;
                                typo.where = where;
                                typo.where.column = r.peek().column;
                                typo.message = fmt::format(
                                    "crypto pki {}: unknown keyword{}; the section it starts is "
                                    "ignored",
                                    printable(r.peek().text),
                                    near.empty()
                                        ? std::string{}
                                        : fmt::format(" (did you mean `crypto pki {}`?)", near));
                                cfg.warnings.push_back(std::move(typo));
                            }
                            if (pw == "server" || pw == "trustpoint") {
                                r.consume(pw);
                                if (r.at_end()) {
                                    return tl::unexpected(
                                        r.error(fmt::format("expected a {} name", pw)));
                                }
                                const std::string name{r.peek().text};
                                r.consume_raw();
                                if (is_no) {
                                    cfg.warnings.push_back(
                                        {where,
                                         fmt::format(
                                             "{}: removing a section is not modelled; ignored",
                                             r.path())});
                                } else if (!r.at_end()) {
                                    // e.g. the exec command `crypto pki server NAME rollover`.
                                    cfg.warnings.push_back(
                                        {where,
                                         fmt::format("{} {}: not a configuration command; skipped",
                                                     r.path(), printable(r.rest()))});
                                } else if (pw == "server") {
                                    auto it =
                                        std::find_if(cfg.servers.begin(), cfg.servers.end(),
                                                     [&](const auto& s) { return s.name == name; });
                                    if (it == cfg.servers.end()) {
                                        server_config s;
                                        s.name = name;
                                        s.where = where;
                                        s.issuer_name = "CN=" + name;  // IOS default issuer
                                        cfg.servers.push_back(std::move(s));
                                        it = std::prev(cfg.servers.end());
                                    }
                                    current = static_cast<std::size_t>(it - cfg.servers.begin());
                                    server_device.resize(cfg.servers.size(), 0);
                                    server_device[current] = device;
                                    in = section_kind::server;
                                } else {
                                    auto it =
                                        std::find_if(cfg.trustpoints.begin(), cfg.trustpoints.end(),
                                                     [&](const auto& t) { return t.name == name; });
                                    if (it == cfg.trustpoints.end()) {
                                        trustpoint_config t;
                                        t.name = name;
                                        t.where = where;
                                        cfg.trustpoints.push_back(std::move(t));
                                        it = std::prev(cfg.trustpoints.end());
                                    }
                                    current =
                                        static_cast<std::size_t>(it - cfg.trustpoints.begin());
                                    in = section_kind::trustpoint;
                                }
                            }
                        }
                    }
                } else if (!is_no && iequal(first, "hostname")) {
                    // A second `hostname` starts another device's configuration.
                    if (hostname_seen) {
                        ++device;
                    }
                    hostname_seen = true;
                    hostname_where = where;
                } else if (!r.at_end() && iequal(r.peek().text, "ip") &&
                           toks.size() >= 2 + (is_no ? 1 : 0)) {
                    r.consume("ip");
                    if (r.peek().text.size() >= 2 && iprefix(r.peek().text, "http")) {
                        r.consume("http");
                        if (!r.at_end()) {
                            const resolution h = resolve(r.peek().text, ip_http_words);
                            if (h.index >= 0 && ip_http_words[static_cast<std::size_t>(h.index)] ==
                                                    "max-connections") {
                                r.consume("max-connections");
                                if (is_no) {
                                    cfg.http.max_connections = http_config{}.max_connections;
                                } else {
                                    auto n = r.number("connections", max_connections_min,
                                                      max_connections_max);
                                    if (!n) {
                                        return tl::unexpected(n.error());
                                    }
                                    if (auto e = r.end(); !e) {
                                        return tl::unexpected(e.error());
                                    }
                                    cfg.http.max_connections = static_cast<int>(*n);
                                }
                                if (http_seen && http_value != cfg.http.max_connections) {
                                    // Two devices pasted into one file, or a repeated line:
                                    // the later one wins silently on IOS; say which.
                                    cfg.warnings.push_back(
                                        {where,
                                         fmt::format(
                                             "ip http max-connections {} replaces {} set at {}{}",
                                             cfg.http.max_connections, http_value,
                                             cfg.http.where.to_string(),
                                             device > http_device
                                                 ? fmt::format(
                                                       " for another device (hostname at {}); "
                                                       "each server keeps its own device's "
                                                       "value; split the file per device",
                                                       hostname_where.to_string())
                                                 : "; the later line applies")});
                                }
                                http_seen = true;
                                http_value = cfg.http.max_connections;
                                http_device = device;
                                device_http.resize(static_cast<std::size_t>(device) + 1, -1);
                                device_http[static_cast<std::size_t>(device)] =
                                    cfg.http.max_connections;
                                cfg.http.where = where;
                            } else if (h.index >= 0 &&
                                       ip_http_words[static_cast<std::size_t>(h.index)] ==
                                           "timeout-policy") {
                                // Issue 13 §3: `ip http timeout-policy idle S life S requests N`.
                                r.consume("timeout-policy");
                                if (is_no) {
                                    cfg.http.timeouts.reset();
                                } else {
                                    http_config::timeout_policy tp;
                                    tp.where = where;
                                    static constexpr std::array<std::string_view, 3> parts = {
                                        "idle", "life", "requests"};
                                    for (std::size_t i = 0; i < parts.size(); ++i) {
                                        auto k = r.keyword(keyword_list{&parts[i], 1});
                                        if (!k) {
                                            return tl::unexpected(k.error());
                                        }
                                        auto n =
                                            r.number(i == 2 ? "requests" : "seconds", 1, 86400);
                                        if (!n) {
                                            return tl::unexpected(n.error());
                                        }
                                        (i == 0   ? tp.idle_s
                                         : i == 1 ? tp.life_s
                                                  : tp.requests) = static_cast<int>(*n);
                                    }
                                    if (auto e = r.end(); !e) {
                                        return tl::unexpected(e.error());
                                    }
                                    cfg.http.timeouts = tp;
                                }
                            }
                        }
                    }
                }
                // Every other top-level line (hostname, interface, `!`, `end` ...) is skipped.
            }
            // Indented lines outside a pki section belong to other sections: skipped.
        }
        if (last) {
            break;
        }
    }
    for (std::size_t i = 0; i < cfg.servers.size(); ++i) {
        // The `ip http max-connections` of the server's own device (IOS default 5 if that
        // device has none); one device per file: the file's value.
        int v = cfg.http.max_connections;
        if (device > 0) {
            const auto d = static_cast<std::size_t>(server_device[i]);
            v = d < device_http.size() && device_http[d] >= 0 ? device_http[d]
                                                              : http_config{}.max_connections;
        }
        cfg.servers[i].http_max_connections = v;
    }
    return cfg;
}

namespace {

parse_error file_error(const std::string& path, const char* what) {
    parse_error e;
    e.where.file = path;
    e.message = what;
    return e;
}

}  // namespace

tl::expected<ios_config, parse_error> load_ios_config_files(const std::vector<std::string>& paths) {
    ios_config merged;
    int http_rank = -1;  // 2 = file with an RA server, 1 = file with a server, 0 = any file
    for (const auto& given : paths) {
        // `-` is standard input (`show running-config | pkisim check -`).
        const bool stdin_file = given == "-";
        const std::string path = stdin_file ? std::string{"<stdin>"} : given;
        std::ostringstream buf;
        if (stdin_file) {
            buf << std::cin.rdbuf();
        } else {
            std::ifstream in(path, std::ios::binary);
            if (!in) {
                return tl::unexpected(file_error(path, "cannot open the file"));
            }
            buf << in.rdbuf();
            if (in.bad()) {
                return tl::unexpected(file_error(path, "cannot read the file"));
            }
        }
        auto cfg = parse_ios_config(buf.str(), path);
        if (!cfg) {
            return tl::unexpected(cfg.error());
        }
        for (auto& s : cfg->servers) {
            if (const auto* prev = merged.find_server(s.name)) {
                return tl::unexpected(
                    parse_error{s.where, fmt::format("crypto pki server {}: already defined at {}",
                                                     printable(s.name), prev->where.to_string())});
            }
        }
        for (auto& t : cfg->trustpoints) {
            if (const auto* prev = merged.find_trustpoint(t.name)) {
                return tl::unexpected(parse_error{
                    t.where, fmt::format("crypto pki trustpoint {}: already defined at {}",
                                         printable(t.name), prev->where.to_string())});
            }
        }
        const bool has_ra = std::any_of(cfg->servers.begin(), cfg->servers.end(),
                                        [](const auto& s) { return s.mode_ra; });
        const int rank = has_ra ? 2 : (!cfg->servers.empty() ? 1 : 0);
        if (rank > http_rank) {
            merged.http = cfg->http;
            http_rank = rank;
        }
        std::move(cfg->servers.begin(), cfg->servers.end(), std::back_inserter(merged.servers));
        std::move(cfg->trustpoints.begin(), cfg->trustpoints.end(),
                  std::back_inserter(merged.trustpoints));
        std::move(cfg->warnings.begin(), cfg->warnings.end(), std::back_inserter(merged.warnings));
    }
    return merged;
}

}  // namespace pkisim::timers
