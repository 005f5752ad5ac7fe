// What IOS routers print, read back: `show crypto pki certificates [verbose]`,
// `show crypto pki timers`, `show crypto pki server`, `show clock` and the trustpoint part of
// `show running-config`, for one router or many in one file (separated by their prompts,
// `spoke-114#show crypto pki certificates`). Layouts: ios-pki-research.md §1.4, §3.2 and the
// public captures listed in tests/data/timers/README.md.
//
//   auto routers = pkisim::timers::parse_captures(text, "captures/spokes.txt");
//   for (const auto& r : routers) {
//       auto st = pkisim::timers::derive_router_state(r, "");       // trustpoint: auto
//       if (st.phase == router_phase::unknown) std::cerr << st.problems.front() << '\n';
//       for (const auto& d : printed_timer_disagreements(st, minutes{10})) std::cout << d << '\n';
//   }
//
// Pure: text in, values out. `--More--` prompts, CR, backspaces and lines wrapped by the
// terminal are tolerated; every value that cannot be read is a problem with `file:line`.
// Times are printed in the router's zone: `clock timezone` / `clock summer-time` in its
// running-config give the offset, else a table of unambiguous abbreviations; an abbreviation
// neither knows (IST is three zones) is a problem, never a guess.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "pkisim/timers/config.hpp"
#include "pkisim/timers/time.hpp"
#include "pkisim/timers/timeline.hpp"

namespace pkisim::timers {

// Zone abbreviation -> offset from UTC in minutes, from `clock timezone NAME H [M]` and
// `clock summer-time NAME ... [OFFSET]` (IOS: summer offset default 60 minutes).
using zone_offsets = std::map<std::string, int, std::less<>>;
zone_offsets zone_offsets_from_config(std::string_view running_config);
// The offset of an abbreviation: the router's own lines first, then the built-in table.
std::optional<int> zone_offset_minutes(std::string_view abbreviation, const zone_offsets& own);

// "02:19:00 UTC Jul 4 2029", "*10:15:30.123 CEST Tue Mar 3 2026" (show clock; `*` = clock not
// authoritative, `.` = not synchronised), "00:49:29 PDT Jun 20 2011".
tl::expected<time_point, std::string> parse_ios_datetime(std::string_view text,
                                                         const zone_offsets& own);
// A `show crypto pki timers` countdown: "48.241", "4:33.164", "291d23:54:53.214", "1094d
// 5:21:45.573".
std::optional<duration> parse_ios_countdown(std::string_view text);

struct capture_problem {
    source_location where;
    std::string message;
    std::string to_string() const;
};

// One block of `show crypto pki certificates`. Headings (genieparser's list, S7): Certificate,
// CA Certificate, Certificate (Rollover), CA Certificate (Rollover), Certificate (subordinate
// CA certificate[, Rollover]), Certificate (RA mode CS certificate[, Rollover]), Router
// Self-Signed Certificate.
enum class shown_cert_kind { id, ca, subordinate_ca, ra_mode_cs, self_signed };
struct shown_certificate {
    shown_cert_kind kind = shown_cert_kind::id;
    bool rollover = false;
    std::string status;   // Available, Pending, ...
    std::string serial;   // hex as printed
    std::string subject;  // "Name:" or the first cn= of Subject
    std::optional<time_point> start, end, renew;
    std::vector<std::string> trustpoints;
    int line = 0;  // the heading
};

// One line of `show crypto pki timers`: "RENEW client", "SHADOW client", "POLL client",
// "CS SHADOW CERT GENERATION", "ID(client)" ...
struct shown_timer {
    std::string section;  // PKI Timers, CS Timers, ...
    std::string name;     // the whole name text
    time_point at{};      // the ISO time, or capture time + countdown on images without it
    int line = 0;
};

// `show crypto pki server` (§1.4).
struct shown_server {
    std::string name;
    std::string status;
    bool ra_mode = false;
    std::string granting;
    std::optional<time_point> ca_expiration;  // CA certificate expiration timer
    std::optional<duration> overlap;          // Auto-Rollover configured, overlap period N days
    std::optional<time_point> autorollover_timer;
    std::string rollover_status;  // "pending", "available for rollover", ... (empty: absent)
    std::optional<time_point> rollover_ca_expiration;
    int line = 0;
};

// Everything one router printed.
struct router_capture {
    std::string hostname;  // from the prompt, else `hostname` in its config, else the file stem
    std::string file;
    int first_line = 0;
    std::optional<time_point> clock;  // show clock (or an exec timestamp "Time source is ...")
    bool clock_authoritative = true;
    int clock_line = 0;
    bool has_running_config = false;
    std::string running_config;   // the text of `show running-config`
    int running_config_line = 0;  // its first line in the file
    bool has_certificates = false, has_timers = false, has_server = false;
    std::vector<shown_certificate> certificates;
    std::vector<shown_timer> timers;
    std::vector<shown_server> servers;
    std::vector<capture_problem> problems;
};

// Splits `text` into routers (prompts `NAME#` / `NAME>` at the start of a line; without any
// prompt the whole text is one router and each block is recognised by its first line) and
// parses every block it knows. Unknown commands are skipped.
std::vector<router_capture> parse_captures(std::string_view text, std::string_view file_name);
// Captures of the same router spread over several files or several places of one file (one
// file per command, or a second round of `show` commands) become one: the first running-config
// and clock are kept, certificates, timers, servers and problems are joined. Order kept.
std::vector<router_capture> merge_same_router(std::vector<router_capture> captures);
// The running-config of a capture through the one IOS config parser, with file line numbers.
tl::expected<ios_config, parse_error> capture_config(const router_capture& r);

// What the router is doing, as far as its captures tell.
enum class router_phase {
    current,         // an ID certificate; its RENEW/SHADOW timer runs
    pending,         // an enrollment (initial or renewal) is waiting at the CA
    rollover,        // CA Certificate (Rollover) + Certificate (Rollover) installed
    rollover_ca,     // the rollover CA is installed, the rollover ID certificate not yet
    no_certificate,  // a trustpoint without a certificate: it enrolls now
    unknown,         // cannot be determined: see problems
};
std::string_view to_string(router_phase p);
std::optional<router_phase> parse_router_phase(std::string_view text);

struct router_state {
    std::string hostname;
    source_location where;
    std::optional<time_point> captured_at;
    trustpoint_config trustpoint;  // from its running-config
    std::optional<validity> id;    // Certificate with Associated Trustpoints = tp
    std::optional<validity> ca;    // CA Certificate of tp
    std::optional<validity> rollover_id, rollover_ca;
    std::string ca_serial;
    router_phase phase = router_phase::unknown;
    std::optional<time_point> next_poll;  // POLL tp
    std::optional<time_point> printed_renew_date, printed_renew_timer, printed_shadow_timer;
    int renew_date_line = 0, renew_timer_line = 0, shadow_timer_line = 0;
    std::vector<std::string> problems;  // "file:line: ..." why unknown, and other doubts
    std::vector<std::string> notes;     // choices made (which trustpoint)
};
// `trustpoint` empty: the trustpoint with an `enrollment url` (and a certificate, if several).
router_state derive_router_state(const router_capture& r, std::string_view trustpoint);

// The consistency check: where the printed `renew date`, RENEW or SHADOW timer disagrees with
// what client_renewal() computes from the certificate, its CA and `auto-enroll` (by more than
// `tolerance`), one sentence each. Either the model or the capture is wrong.
std::vector<std::string> printed_timer_disagreements(const router_state& st, duration tolerance);

}  // namespace pkisim::timers
