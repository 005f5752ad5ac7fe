// Closed-form GetNextCACert storm analysis (ios-pki-model.md §4, seeds-digest.md §002.3).
//
// With CA notAfter C, client lifetime L = min(lifetime certificate, lifetime ca-certificate) and
// auto-enroll P %, the earliest shadow request of any client is from a certificate issued at
// exactly C − L: it asks at C − (1 − P)·L. The shadow CA exists from C − overlap. A client whose
// certificate was last renewed untruncated (every P·L) holds a last pre-rollover certificate of
// length ℓ in (L − P·L, L], so the fleet's first requests fall in [C − (1−P)L, C − (1−P)(L − P·L)).
#include "pkisim/timers/storm.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "pkisim/timers/settings.hpp"
#include "pkisim/timers/timeline.hpp"

namespace pkisim::timers {

std::string_view to_string(storm_verdict v) {
    switch (v) {
        case storm_verdict::safe:
            return "safe";
        case storm_verdict::storm:
            return "storm";
        case storm_verdict::outage:
            return "outage";
    }
    return "unknown";
}

namespace {

storm_verdict worst(storm_verdict a, storm_verdict b) {
    return static_cast<int>(a) >= static_cast<int>(b) ? a : b;
}

// "180" for whole days, "12.5" otherwise (a report, not an API).
std::string days_text(double d) {
    const double r = std::round(d);
    if (std::fabs(d - r) < 1e-6) {
        return fmt::format("{}", static_cast<long long>(r));
    }
    return fmt::format("{:.2f}", d);
}

// A 404 window: whole days as "150", otherwise exact ("150d 20s", "10d 12h 20s").
std::string window_text(double d) {
    const double r = std::round(d);
    if (std::fabs(d - r) < 1e-9) {
        return fmt::format("{} days", static_cast<long long>(r));
    }
    return format_duration(from_days(d));
}

std::string seconds_text(duration d) {
    const double s = static_cast<double>(d.count()) / 1000.0;
    return days_text(s);
}

std::string date_text(time_point t) {
    return to_iso8601(t).substr(0, 10);
}

// Recommended overlap (documented in storm.hpp): max(factor × minimum, minimum + margin),
// rounded up to a multiple of 5 days, kept strictly below the CA lifetime.
double recommend_overlap(double min_safe_days, double ca_life_days, const storm_options& o) {
    const double raw = std::max(o.recommendation_factor * min_safe_days,
                                min_safe_days + to_days(o.recommendation_margin));
    double rec = std::ceil(raw / 5.0 - 1e-9) * 5.0;
    const double upper = std::floor((ca_life_days - 1.0) / 5.0) * 5.0;  // below the CA lifetime
    if (rec > upper) {
        rec = std::max(upper, std::ceil(min_safe_days - 1e-9));
    }
    if (rec >= ca_life_days) {
        rec = min_safe_days;  // tiny CA lifetimes: nothing rounder fits
    }
    return std::max(rec, 0.0);
}

}  // namespace

storm_analysis analyze_storm(const server_config& server, time_point ca_created_at,
                             std::span<const trustpoint_config> trustpoints,
                             const storm_options& options) {
    storm_analysis a;
    a.ca = ca_validity(server, ca_created_at);
    const time_point c = a.ca.not_after;
    const duration ca_life = a.ca.length();
    const double ca_life_days = to_days(ca_life);
    const std::string srv = fmt::format("crypto pki server {}", server.name);

    bool overlap_unusable = false;
    if (server.auto_rollover) {
        a.shadow_generated_at = shadow_time_of_generation(a.ca, server.auto_rollover);
        a.overlap_days = to_days(*server.auto_rollover);
        if (*server.auto_rollover >= ca_life) {
            // Rule 3: the timer notAfter − overlap is already past when the CA is created, so
            // the shadow is generated at once (as for an overlap raised on a live server): the
            // simulator and the lab server do the same (shadow_time_of_generation).
            a.findings.push_back(fmt::format(
                "`auto-rollover {}` on {} is not shorter than the CA lifetime ({} days): the "
                "rollover timer (CA notAfter − overlap) is already past when each CA is created, "
                "so the shadow CA is generated at once, at the CA's creation ({}), and every CA "
                "generation's successor exists for its whole life. No client sees a 404, but the "
                "next CA's key exists {} days before it is used; an overlap below the CA lifetime "
                "gives the same safety with a shorter-lived spare key.",
                days_text(*a.overlap_days), srv, days_text(ca_life_days),
                to_iso8601(*a.shadow_generated_at), days_text(ca_life_days)));
        } else if (server.auto_rollover->count() == 0) {
            // Our reading of `auto-rollover 0`: the shadow timer is the CA's notAfter itself,
            // the very instant every client must already hold the next CA: no usable overlap.
            overlap_unusable = true;
            a.verdict = storm_verdict::outage;
            a.findings.push_back(fmt::format(
                "`auto-rollover 0` on {} sets an overlap of 0: the shadow CA would be generated "
                "at the instant the CA expires ({}), so no client can fetch the next CA before "
                "its certificate ends with the CA and every client fails at that instant (an "
                "outage). Configure a real overlap.",
                srv, to_iso8601(c)));
        }
    } else {
        a.verdict = storm_verdict::outage;
        a.findings.push_back(fmt::format(
            "No `auto-rollover` on {}: no shadow CA is ever generated automatically, so every "
            "client reaches the CA expiry ({}) without the next CA certificate and all their "
            "certificates end at that instant: an outage. Configure `auto-rollover` (see the "
            "recommendation per trustpoint) or run `crypto pki server {} rollover` in time.",
            srv, to_iso8601(c), server.name));
    }
    if (overlap_unusable) {
        a.front_shadow_at.reset();
    } else if (options.front) {
        a.front_shadow_at = options.front->knows_shadow_at;
    } else {
        a.front_shadow_at = a.shadow_generated_at;
    }
    // A client asking at t gets 200 from the server it reaches.
    const auto answers_200 = [&](time_point t) {
        if (!a.front_shadow_at) {
            return false;
        }
        const bool inclusive = options.front && options.front->inclusive;
        return inclusive ? t > *a.front_shadow_at : t >= *a.front_shadow_at;
    };
    const std::string front_name =
        options.front ? options.front->name : fmt::format("the CA ({})", srv);
    const bool throttle_on = options.limiter.enabled && options.limiter.throttle;

    for (const auto& tp : trustpoints) {
        trustpoint_storm t;
        t.name = tp.name;
        const double retry_s =
            static_cast<double>(options.client.shadow_retry_interval.count()) / 1000.0;
        if (retry_s > 0) {
            t.requests_per_minute_per_client = 60.0 / retry_s;
            const double window_s =
                static_cast<double>(options.limiter.throttle_window_length.count()) / 1000.0;
            const double per_window = window_s / retry_s;
            // Smallest N with N × per_window > limit: the (limit+1)-th attempt starts a deaf
            // period. 0 when the throttle is off (nothing to reach).
            t.clients_to_reach_throttle =
                (per_window > 0 && throttle_on)
                    ? static_cast<int>(
                          std::floor(options.limiter.throttle_limit / per_window + 1e-9)) +
                          1
                    : 0;
        }
        const std::string tpn = fmt::format("trustpoint {}", tp.name);

        if (!tp.auto_enroll) {
            t.verdict = storm_verdict::outage;
            t.findings.push_back(fmt::format(
                "{} has no `auto-enroll`: its certificate is never renewed automatically, so it "
                "fails at its own expiry and at the CA expiry ({}) at the latest, and it never "
                "fetches the next CA. Add `auto-enroll 70` (or your renewal percent).",
                tpn, to_iso8601(c)));
            a.verdict = worst(a.verdict, t.verdict);
            a.trustpoints.push_back(std::move(t));
            continue;
        }

        const duration l = std::min(server.cert_lifetime, ca_life);
        const int p = std::clamp(tp.auto_enroll_percent, 0, 100);
        // The certificate issued exactly L before C ends with the CA: its timer is SHADOW.
        const renewal_point first = client_renewal(p, true, validity{c - l, c}, c);
        t.first_get_next_ca_cert = first.at;
        const duration min_safe = c - first.at;
        t.first_get_next_ca_cert_days_before_ca_expiry = to_days(min_safe);
        t.min_safe_overlap_days = to_days(min_safe);
        t.recommended_overlap_days =
            recommend_overlap(t.min_safe_overlap_days, ca_life_days, options);

        // Latest first request in steady state: shortest last certificate, length L − P·L
        // when certificates renew untruncated every P·L. When every certificate is truncated
        // (client lifetime ≥ CA lifetime) a client first enrolled at e asks at
        // e + P·(C − e): the requests run from `first` (e = CA creation) up to C.
        const double span_days = to_days(l) * (1.0 - p / 100.0);
        if (server.cert_lifetime < ca_life && p < 100) {
            const duration renew_every =
                client_renewal(p, true, validity{time_point{}, time_point{} + l}, time_point::max())
                    .at.time_since_epoch();
            const duration shortest = l - renew_every;
            t.last_first_get_next_ca_cert =
                client_renewal(p, true, validity{c - shortest, c}, c).at;
        } else if (p < 100) {
            t.requests_follow_enrollment = true;
            t.last_first_get_next_ca_cert = c;
        } else {
            t.last_first_get_next_ca_cert = first.at;
        }
        // Share of the fleet whose first request gets a 404: requests are uniform over
        // [first, last] for uniformly spread phases (or enrollments over the CA's life).
        if (a.front_shadow_at && !overlap_unusable) {
            const double lo = to_days(first.at - a.ca.not_before);
            const double hi = to_days(*t.last_first_get_next_ca_cert - a.ca.not_before);
            const double f = to_days(*a.front_shadow_at - a.ca.not_before);
            t.share_hit = hi > lo ? std::clamp((f - lo) / (hi - lo), 0.0, 1.0)
                                  : (answers_200(first.at) ? 0.0 : 1.0);
        } else {
            t.share_hit = 1.0;
        }

        const auto days_before = [&](time_point x) { return to_days(c - x); };
        const std::string range =
            t.requests_follow_enrollment
                ? fmt::format(
                      "every certificate is cut at the CA's end, so a client first enrolled e "
                      "days after the CA's creation asks (1 − {:.2f}) × ({} − e) days before "
                      "expiry: from {} days (e = 0) down to 0 (a client enrolled just before "
                      "expiry)",
                      p / 100.0, days_text(ca_life_days),
                      days_text(t.first_get_next_ca_cert_days_before_ca_expiry))
                : fmt::format(
                      "in steady state the fleet's first requests fall between {} and {} "
                      "days before",
                      days_text(t.first_get_next_ca_cert_days_before_ca_expiry),
                      days_text(days_before(*t.last_first_get_next_ca_cert)));
        (void)span_days;
        const std::string schedule = fmt::format(
            "{}: certificates of {} days (lifetime certificate {} d, CA {} d), auto-enroll {} %: "
            "RENEW every {} days while the certificate fits in the CA; the certificate that ends "
            "with the CA arms SHADOW instead, first GetNextCACert {} days before CA expiry ({}); "
            "{}.",
            tpn, days_text(to_days(l)), days_text(to_days(server.cert_lifetime)),
            days_text(ca_life_days), p, days_text(to_days(l) * p / 100.0),
            days_text(t.first_get_next_ca_cert_days_before_ca_expiry), date_text(first.at), range);
        t.findings.push_back(schedule);

        const std::string rate =
            throttle_on
                ? fmt::format(
                      "one request per client every {} s; {} such clients already exceed the {} "
                      "connections/{} s throttle, after which the server is deaf for {} s at a "
                      "time and legitimate enrollments fail too",
                      seconds_text(options.client.shadow_retry_interval),
                      t.clients_to_reach_throttle, options.limiter.throttle_limit,
                      seconds_text(options.limiter.throttle_window_length),
                      seconds_text(options.limiter.deaf_period))
                : fmt::format("one request per client every {} s{}",
                              seconds_text(options.client.shadow_retry_interval),
                              options.limiter.enabled ? " (the throttle is off)"
                                                      : " (no HTTP limits modelled)");
        const std::string fix = fmt::format(
            "minimum safe overlap {} days; recommended `auto-rollover {}` on {}",
            days_text(t.min_safe_overlap_days), days_text(t.recommended_overlap_days), srv);

        if (!a.front_shadow_at) {
            t.verdict = storm_verdict::outage;
            t.max_404_window_days = std::max(0.0, to_days(c - first.at));
            const std::string why =
                options.front && !overlap_unusable && a.shadow_generated_at
                    ? fmt::format("{} never learns of the shadow CA before the CA expires ({})",
                                  front_name, options.front->why)
                    : std::string{"no usable shadow CA before the CA expires"};
            if (t.max_404_window_days > 0) {
                t.findings.push_back(fmt::format(
                    "{}: first GetNextCACert {} days before CA expiry and {}: up to {} days of "
                    "404 at {}, then an outage at {}; {}.",
                    tpn, days_text(t.first_get_next_ca_cert_days_before_ca_expiry), why,
                    days_text(t.max_404_window_days), rate, to_iso8601(c), fix));
            } else {
                t.findings.push_back(fmt::format(
                    "{}: renews at expiry (auto-enroll 100) and {}: an outage at {}; {}.", tpn, why,
                    to_iso8601(c), fix));
            }
        } else if (shadow_step(shadow_state::get_new_ca_cert, http_outcome::not_found, first.at, c,
                               options.client)
                       .state == shadow_state::expired) {
            // The same rule the simulator's clients follow (client_model.hpp): a client whose
            // SHADOW point is the CA's notAfter (auto-enroll 100) asks when its certificate and
            // its CA have already expired, so it never gets the next CA in time.
            t.verdict = storm_verdict::outage;
            t.max_404_window_days = 0;
            t.findings.push_back(fmt::format(
                "{}: auto-enroll {} arms SHADOW at the instant the certificate and the CA expire "
                "({}): the client asks for the next CA when its certificate and trust are already "
                "invalid, although the shadow exists {} days before. Use `auto-enroll 70`..`80` "
                "with `auto-rollover {}` or more.",
                tpn, p, to_iso8601(c), days_text(to_days(c - *a.front_shadow_at)),
                days_text(recommend_overlap(to_days(l) * 0.3, ca_life_days, options))));
        } else if (!answers_200(first.at)) {
            t.verdict = storm_verdict::storm;
            // The first retry at or after the front server answers 200 ends the window.
            const duration retry = options.client.shadow_retry_interval;
            duration wait = *a.front_shadow_at - first.at;
            if (retry.count() > 0) {
                auto n = (wait.count() + retry.count() - 1) / retry.count();
                if (!answers_200(first.at + retry * n)) {
                    ++n;
                }
                wait = retry * n;
            }
            t.max_404_window_days = to_days(wait);
            const bool all_loop = !answers_200(*t.last_first_get_next_ca_cert);
            const std::string who =
                options.front
                    ? fmt::format("{} answers 200 only from {} ({} days before CA expiry; {})",
                                  front_name, to_iso8601(*a.front_shadow_at),
                                  days_text(to_days(c - *a.front_shadow_at)), options.front->why)
                    : fmt::format("the shadow CA exists only {} days before ({})",
                                  days_text(*a.overlap_days), date_text(*a.shadow_generated_at));
            t.findings.push_back(fmt::format(
                "{}: first GetNextCACert {} days before CA expiry; {}: up to {} of 404 at "
                "{}; {} of the fleet's first requests ({:.1f} %) come before that; {}.",
                tpn, days_text(t.first_get_next_ca_cert_days_before_ca_expiry), who,
                window_text(t.max_404_window_days), rate, all_loop ? "all" : "some",
                100.0 * t.share_hit, fix));
        } else {
            t.verdict = storm_verdict::safe;
            t.max_404_window_days = 0;
            t.share_hit = 0;
            const double front_days = to_days(c - *a.front_shadow_at);
            t.findings.push_back(fmt::format(
                "{}: safe: {} answers 200 from {} days before CA expiry ({}), {} days before "
                "the first GetNextCACert ({} days before); no 404. {}.",
                tpn, front_name, days_text(front_days), date_text(*a.front_shadow_at),
                days_text(front_days - t.first_get_next_ca_cert_days_before_ca_expiry),
                days_text(t.first_get_next_ca_cert_days_before_ca_expiry),
                a.overlap_days && *a.overlap_days < t.recommended_overlap_days
                    ? fmt::format("The overlap is below the recommended `auto-rollover {}`",
                                  days_text(t.recommended_overlap_days))
                    : std::string{"The overlap meets the recommendation"}));
        }
        if (server.cert_lifetime > ca_life) {
            t.findings.push_back(fmt::format(
                "{}: lifetime certificate ({} d) is longer than lifetime ca-certificate ({} d): "
                "every certificate is cut at the CA's end, so every renewal is a shadow request.",
                tpn, days_text(to_days(server.cert_lifetime)), days_text(ca_life_days)));
        }
        a.verdict = worst(a.verdict, t.verdict);
        a.trustpoints.push_back(std::move(t));
    }
    return a;
}

}  // namespace pkisim::timers
