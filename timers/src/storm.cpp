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
        // Rule 3; an overlap of a whole CA life or more puts the shadow at the CA's birth.
        a.shadow_generated_at =
            std::max(*shadow_generation_time(c, server.auto_rollover), a.ca.not_before);
        a.overlap_days = to_days(*server.auto_rollover);
        if (*server.auto_rollover >= ca_life) {
            overlap_unusable = true;
            a.verdict = storm_verdict::outage;
            a.findings.push_back(fmt::format(
                "`auto-rollover {}` on {} is not shorter than the CA lifetime ({} days): IOS only "
                "accepts 0..CA lifetime, and at that value the shadow CA would be generated the "
                "moment each CA is created, so the rollover timer never leaves room for a normal "
                "CA life. Set an overlap below the CA lifetime.",
                days_text(*a.overlap_days), srv, days_text(ca_life_days)));
        } else if (server.auto_rollover->count() == 0) {
            // Our reading of `auto-rollover 0`: the shadow is generated at CA expiry, i.e. at
            // the very instant it must already be in every client: no usable overlap.
            overlap_unusable = true;
            a.verdict = storm_verdict::outage;
            a.findings.push_back(fmt::format(
                "`auto-rollover 0` on {} generates the shadow CA only at the instant the CA "
                "expires ({}): no client can fetch the next CA before its certificate ends with "
                "the CA, so every client fails at that instant (an outage). Configure a real "
                "overlap.",
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
            // period.
            t.clients_to_reach_throttle =
                per_window > 0 ? static_cast<int>(std::floor(
                                     options.limiter.throttle_limit / per_window + 1e-9)) +
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
        // when certificates renew untruncated every P·L; a single instant when every
        // certificate is truncated (client lifetime ≥ CA lifetime).
        if (server.cert_lifetime < ca_life && p < 100) {
            const duration renew_every =
                client_renewal(p, true, validity{time_point{}, time_point{} + l}, time_point::max())
                    .at.time_since_epoch();
            const duration shortest = l - renew_every;
            t.last_first_get_next_ca_cert =
                client_renewal(p, true, validity{c - shortest, c}, c).at;
        } else {
            t.last_first_get_next_ca_cert = first.at;
        }

        const auto days_before = [&](time_point x) { return to_days(c - x); };
        const std::string schedule = fmt::format(
            "{}: certificates of {} days (lifetime certificate {} d, CA {} d), auto-enroll {} %: "
            "RENEW every {} days while the certificate fits in the CA; the certificate that ends "
            "with the CA arms SHADOW instead, first GetNextCACert {} days before CA expiry ({}); "
            "in steady state the fleet's first requests fall between {} and {} days before.",
            tpn, days_text(to_days(l)), days_text(to_days(server.cert_lifetime)),
            days_text(ca_life_days), p, days_text(to_days(l) * p / 100.0),
            days_text(t.first_get_next_ca_cert_days_before_ca_expiry), date_text(first.at),
            days_text(t.first_get_next_ca_cert_days_before_ca_expiry),
            days_text(days_before(*t.last_first_get_next_ca_cert)));
        t.findings.push_back(schedule);

        const std::string rate = fmt::format(
            "one request per client every {} s; {} such clients already exceed the {} "
            "connections/{} s throttle, after which the server is deaf for {} s at a time and "
            "legitimate enrollments fail too",
            seconds_text(options.client.shadow_retry_interval), t.clients_to_reach_throttle,
            options.limiter.throttle_limit, seconds_text(options.limiter.throttle_window_length),
            seconds_text(options.limiter.deaf_period));
        const std::string fix = fmt::format(
            "minimum safe overlap {} days; recommended `auto-rollover {}` on {}",
            days_text(t.min_safe_overlap_days), days_text(t.recommended_overlap_days), srv);

        if (!a.shadow_generated_at || overlap_unusable) {
            t.verdict = storm_verdict::outage;
            t.max_404_window_days = std::max(0.0, to_days(c - first.at));
            if (t.max_404_window_days > 0) {
                t.findings.push_back(fmt::format(
                    "{}: first GetNextCACert {} days before CA expiry and no usable shadow CA "
                    "before the CA expires: up to {} days of 404 at {}, then an outage at {}; {}.",
                    tpn, days_text(t.first_get_next_ca_cert_days_before_ca_expiry),
                    days_text(t.max_404_window_days), rate, to_iso8601(c), fix));
            } else {
                t.findings.push_back(fmt::format(
                    "{}: renews at expiry (auto-enroll 100) and finds no usable shadow CA: an "
                    "outage at {}; {}.",
                    tpn, to_iso8601(c), fix));
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
                tpn, p, to_iso8601(c), days_text(*a.overlap_days),
                days_text(recommend_overlap(to_days(l) * 0.3, ca_life_days, options))));
        } else if (first.at < *a.shadow_generated_at) {
            t.verdict = storm_verdict::storm;
            t.max_404_window_days = to_days(*a.shadow_generated_at - first.at);
            const bool all_loop = *t.last_first_get_next_ca_cert < *a.shadow_generated_at;
            t.findings.push_back(fmt::format(
                "{}: first GetNextCACert {} days before CA expiry; the shadow CA exists only {} "
                "days before ({}): up to {} days of 404 at {}; {} of the fleet's first requests "
                "come before the shadow exists; {}.",
                tpn, days_text(t.first_get_next_ca_cert_days_before_ca_expiry),
                days_text(*a.overlap_days), date_text(*a.shadow_generated_at),
                days_text(t.max_404_window_days), rate, all_loop ? "all" : "some", fix));
        } else {
            t.verdict = storm_verdict::safe;
            t.max_404_window_days = 0;
            t.findings.push_back(fmt::format(
                "{}: safe: the shadow CA exists {} days before CA expiry ({}), {} days before "
                "the first GetNextCACert ({} days before); no 404. {}.",
                tpn, days_text(*a.overlap_days), date_text(*a.shadow_generated_at),
                days_text(*a.overlap_days - t.first_get_next_ca_cert_days_before_ca_expiry),
                days_text(t.first_get_next_ca_cert_days_before_ca_expiry),
                *a.overlap_days < t.recommended_overlap_days
                    ? fmt::format("The margin is below the recommended `auto-rollover {}`",
                                  days_text(t.recommended_overlap_days))
                    : std::string{"The margin meets the recommendation"}));
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
