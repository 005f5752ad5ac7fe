// The --set registry (settings.hpp): one meaning per key, values and ranges once, errors that
// quote what the user typed.
#include "pkisim/timers/settings.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace pkisim::timers;

TEST(settings, aliases_resolve_to_one_key_and_errors_quote_what_was_typed) {
    const auto a = parse_setting("overlap=365", "--set overlap=365");
    const auto b = parse_setting("ca.auto-rollover=365", "--set ca.auto-rollover=365");
    const auto c = parse_setting("server.auto_rollover=365", "x");
    ASSERT_TRUE(a && b && c);
    EXPECT_EQ(a->key, b->key);
    EXPECT_EQ(b->key, c->key);
    EXPECT_EQ(a->command, "auto-rollover 365");
    const auto bad = parse_setting("overlap", "abc", "--sweep overlap=abc");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().rfind("--sweep overlap=abc: ", 0), 0u) << bad.error();
    EXPECT_EQ(bad.error().find("ca.auto-rollover"), std::string::npos);
    const auto neg = parse_setting("clients", "-5", "--clients -5");
    ASSERT_FALSE(neg);
    EXPECT_EQ(neg.error().rfind("--clients -5: ", 0), 0u) << neg.error();
    EXPECT_FALSE(parse_setting("clients", "0", "--clients 0"));
    const auto unknown = parse_setting("overlp=3", "--set overlp=3");
    ASSERT_FALSE(unknown);
    EXPECT_NE(unknown.error().find("did you mean `overlap`"), std::string::npos);
}

TEST(settings, ra_keys_mean_the_same_in_every_command) {
    // ra.X is the RA's own trustpoint; ra.server.X its server section; one value per key.
    server_config ca;
    server_config ra;
    trustpoint_config ra_tp;
    settings_target t;
    t.ca = &ca;
    t.ra = &ra;
    t.ra_trustpoint = &ra_tp;
    auto s = parse_setting("ra.auto-enroll=95 regenerate", "--set ra.auto-enroll=95 regenerate");
    ASSERT_TRUE(s) << s.error();
    ASSERT_TRUE(apply_setting(*s, t));
    EXPECT_TRUE(ra_tp.auto_enroll);
    EXPECT_EQ(ra_tp.auto_enroll_percent, 95);
    EXPECT_TRUE(ra_tp.regenerate);
    auto g = parse_setting("ra.server.grant=none", "--set ra.server.grant=none");
    ASSERT_TRUE(g);
    ASSERT_TRUE(apply_setting(*g, t));
    EXPECT_EQ(ra.grant, grant_mode::none);
    EXPECT_EQ(ca.grant, grant_mode::manual);
    // An RA key without an RA is an error naming it, never silently ignored.
    settings_target no_ra;
    no_ra.ca = &ca;
    const auto r = apply_setting(*s, no_ra);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find("no RA"), std::string::npos);
}

TEST(settings, manual_rollover_is_an_offset_or_a_date_from_the_cas_creation) {
    std::optional<duration> manual;
    server_config ra;
    trustpoint_config ra_tp;
    settings_target t;
    t.ra = &ra;
    t.ra_trustpoint = &ra_tp;
    t.ra_manual_rollover = &manual;
    t.ca_created_at = default_ca_start();
    for (auto [text, want] :
         {std::pair{"1460d", duration{days{1460}}},
          std::pair{"1459d 12h", duration{days{1459} + hours{12}}},
          std::pair{"2025-01-11", duration{days{10}}},
          std::pair{"2025-01-01T06:30:00Z", duration{hours{6} + minutes{30}}}}) {
        auto s = parse_setting("ra.manual_rollover", text, std::string{"--ra-rollover "} + text);
        ASSERT_TRUE(s) << text;
        ASSERT_TRUE(apply_setting(*s, t)) << text;
        EXPECT_EQ(manual, want) << text;
    }
    auto before = parse_setting("ra.manual_rollover", "2024-12-31", "--ra-rollover 2024-12-31");
    ASSERT_TRUE(before);
    EXPECT_FALSE(apply_setting(*before, t));
    EXPECT_FALSE(parse_setting("ra.manual_rollover", "soon", "--ra-rollover soon"));
}

TEST(settings, value_ranges_live_here_once) {
    for (int n : {1, 5, 16}) {
        EXPECT_EQ(parse_max_connections(std::to_string(n)), n);
    }
    for (auto bad : {"0", "17", "-1", "abc", "", "5x"}) {
        EXPECT_FALSE(parse_max_connections(bad)) << bad;
    }
    EXPECT_EQ(parse_throttle_window("fixed_minute"), throttle_window::fixed_minute);
    EXPECT_EQ(parse_throttle_window("fixed-minute"), throttle_window::fixed_minute);
    EXPECT_EQ(parse_throttle_window("reset_after_deaf"), throttle_window::reset_after_deaf);
    EXPECT_EQ(parse_throttle_window("Sliding"), throttle_window::sliding);
    EXPECT_FALSE(parse_throttle_window("minute"));
    EXPECT_EQ(parse_duration_text("1d 12h"), duration{hours{36}});
    EXPECT_EQ(parse_duration_text("36ms"), duration{36});
    EXPECT_FALSE(parse_duration_text("12 parsecs"));
    EXPECT_EQ(format_duration(hours{36}), "1d 12h");
    // IOS command values are checked by the parser's own ranges at parse time.
    EXPECT_FALSE(parse_setting("overlap=9000", "x"));
    EXPECT_FALSE(parse_setting("auto-enroll=101", "x"));
    EXPECT_TRUE(parse_setting("overlap=30 12 30", "x"));
    EXPECT_FALSE(parse_setting("max-connections=17", "x"));
    EXPECT_FALSE(parse_setting("limiter=maybe", "x"));
}

TEST(settings, help_lists_the_keys_of_each_command) {
    const std::string check = settings_help(setting_command::check);
    const std::string sim = settings_help(setting_command::simulate);
    for (auto k : {"ca.auto-rollover", "ra.manual_rollover", "max-connections", "ra.COMMAND",
                   "ra.server.COMMAND"}) {
        EXPECT_NE(check.find(k), std::string::npos) << k;
        EXPECT_NE(sim.find(k), std::string::npos) << k;
    }
    EXPECT_EQ(check.find("latency"), std::string::npos);
    EXPECT_NE(sim.find("latency"), std::string::npos);
}

TEST(settings, nearest_word_suggests_typos_only) {
    const std::vector<std::string_view> words{"server", "trustpoint", "trustpool"};
    EXPECT_EQ(nearest_word("trustpiont", words), "trustpoint");
    EXPECT_EQ(nearest_word("sever", words), "server");
    EXPECT_EQ(nearest_word("certificate", words), "");
}

// The unbounded definition nearest_word had before its DP was bounded (full matrix, every
// candidate): the bounded one must give the same answer.
std::size_t reference_distance(std::string_view a, std::string_view b) {
    // As the registry compares keys: case-insensitive, '_' and '-' the same.
    auto lower = [](char c) {
        return c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    };
    const std::size_t n = a.size();
    const std::size_t m = b.size();
    // The full (n + 1) x (m + 1) matrix, in one buffer reused across calls (cheap under ASan).
    static std::vector<std::size_t> buf;
    buf.assign((n + 1) * (m + 1), 0);
    auto d = [&](std::size_t i, std::size_t j) -> std::size_t& { return buf[i * (m + 1) + j]; };
    for (std::size_t i = 0; i <= n; ++i) {
        d(i, 0) = i;
    }
    for (std::size_t j = 0; j <= m; ++j) {
        d(0, j) = j;
    }
    for (std::size_t i = 1; i <= n; ++i) {
        for (std::size_t j = 1; j <= m; ++j) {
            const std::size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
            d(i, j) = std::min({d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + cost});
            if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
                lower(a[i - 2]) == lower(b[j - 1])) {
                d(i, j) = std::min(d(i, j), d(i - 2, j - 2) + 1);
            }
        }
    }
    return d(n, m);
}

std::string reference_nearest(std::string_view typed, const std::vector<std::string_view>& words) {
    std::string best;
    std::size_t best_d = std::numeric_limits<std::size_t>::max();
    for (auto c : words) {
        const std::size_t d = reference_distance(typed, c);
        if (d < best_d) {
            best_d = d;
            best = std::string{c};
        }
    }
    const std::size_t allowed = std::max<std::size_t>(1, (typed.size() + 2) / 3);
    return best_d <= allowed ? best : std::string{};
}

// What `--set` suggests from: every key name and alias of the registry.
std::vector<std::string_view> registry_words() {
    std::vector<std::string_view> out;
    for (const auto& k : setting_keys()) {
        out.push_back(k.name);
        std::string_view a = k.aliases;
        while (!a.empty()) {
            const auto sp = a.find(' ');
            if (sp != 0) {
                out.push_back(a.substr(0, sp));
            }
            a = sp == std::string_view::npos ? std::string_view{} : a.substr(sp + 1);
        }
    }
    return out;
}

TEST(settings, nearest_word_is_unchanged_by_its_bound_on_realistic_misspellings) {
    const auto words = registry_words();
    ASSERT_GT(words.size(), 20U);
    // Every single edit of every key (drop, swap, double, substitute a letter or by '_'),
    // some double drops and upper-case letters, and seeded random words: ~6,000 cases, all must
    // agree.
    std::vector<std::string> typed;
    for (auto w : words) {
        const std::string s{w};
        for (std::size_t i = 0; i < s.size(); ++i) {
            typed.push_back(s.substr(0, i) + s.substr(i + 1));
            typed.push_back(s.substr(0, i) + s[i] + s.substr(i));
            typed.push_back(s.substr(0, i) + 'x' + s.substr(i + 1));
            typed.push_back(s.substr(0, i) + '_' + s.substr(i + 1));
            if (i % 4 == 0) {
                std::string up = s;
                up[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(up[i])));
                typed.push_back(up);
            }
            if (i + 1 < s.size()) {
                std::string sw = s;
                std::swap(sw[i], sw[i + 1]);
                typed.push_back(sw);
            }
            for (std::size_t j = i + 2; i % 3 == 0 && j < s.size(); j += 5) {
                typed.push_back(s.substr(0, i) + s.substr(i + 1, j - i - 1) + s.substr(j + 1));
            }
        }
        typed.push_back(s + s);
        typed.push_back(s.substr(0, s.size() / 2));
    }
    std::mt19937 rng{20261201};
    const std::string alphabet = "abcdeilmnoprstuvwy.-_";
    for (int n = 0; n < 800; ++n) {
        std::string r(rng() % 24, ' ');
        for (auto& c : r) {
            c = alphabet[rng() % alphabet.size()];
        }
        typed.push_back(r);
    }
    std::size_t suggested = 0;
    ASSERT_GT(typed.size(), 4000U);
    for (const auto& t : typed) {
        const std::string want = reference_nearest(t, words);
        ASSERT_EQ(nearest_word(t, words), want) << "typed `" << t << "`";
        suggested += want.empty() ? 0 : 1;
    }
    // The cases are realistic: most single edits get a suggestion.
    EXPECT_GT(suggested, typed.size() / 2);
    // The threshold itself: a third of the typed length (rounded up), at least one edit.
    const std::vector<std::string_view> one{"abcdefghi"};
    EXPECT_EQ(nearest_word("abcXYZghi", one), "abcdefghi");  // 3 edits, 9 letters: allowed 3
    EXPECT_EQ(nearest_word("abcXYZWhi", one), "");           // 4 edits
    EXPECT_EQ(nearest_word("bacdefghi", one), "abcdefghi");  // one transposition
    EXPECT_EQ(nearest_word("", one), "");
    // Ties go to the first candidate, an exact match wins.
    const std::vector<std::string_view> tie{"cat", "car", "cut"};
    EXPECT_EQ(nearest_word("cxt", tie), "cat");
    EXPECT_EQ(nearest_word("CUT", tie), "cut");
}

TEST(settings, nearest_word_work_is_bounded_for_long_inputs) {
    const auto words = registry_words();
    std::size_t longest = 0;
    for (auto w : words) {
        longest = std::max(longest, w.size());
    }
    // A long unknown key: every candidate differs in length by more than the threshold, so no
    // DP cell is computed (before the bound: length x candidate length per candidate).
    const std::string huge(100000, 'a');
    nearest_word_stats stats;
    EXPECT_EQ(nearest_word(huge, words, &stats), "");
    EXPECT_EQ(stats.cells, 0U);
    // Long words of similar length: the band keeps the work at most length x (2 x threshold
    // + 1) per candidate, and the early stop ends it well before that for unrelated words.
    const std::string a(600, 'a');
    std::string b = a;
    b[300] = 'b';
    const std::string c(600, 'c');
    const std::vector<std::string_view> long_words{c, b};
    EXPECT_EQ(nearest_word(a, long_words, &stats), b);
    const std::size_t allowed = (600 + 2) / 3;
    EXPECT_LE(stats.cells, 2 * 600 * (2 * allowed + 1));
    EXPECT_LT(stats.cells, 600U * 600U);
    // Once a candidate at distance 1 is found, later ones are only computed up to distance 0.
    const std::vector<std::string_view> after{b, c, c, c};
    EXPECT_EQ(nearest_word(a, after, &stats), b);
    EXPECT_LE(stats.cells, 600 * (2 * allowed + 1) + 3 * 2 * 1);
    // A realistic typo costs a few hundred cells over the whole registry, at most.
    EXPECT_EQ(nearest_word("overlp", words, &stats), "overlap");
    EXPECT_LE(stats.cells, words.size() * 6 * 5);
    EXPECT_GT(longest, 0U);
}

}  // namespace
