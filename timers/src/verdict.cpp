// The fleet verdict over CA generations, the RA's own timer and the verified change set
// (verdict.hpp; ios-pki-model.md §1 rules 3, 6, 8 and §2 timers 1–2).
#include "pkisim/timers/verdict.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "pkisim/timers/settings.hpp"

namespace pkisim::timers {

namespace {

storm_verdict worst(storm_verdict a, storm_verdict b) {
    return static_cast<int>(a) >= static_cast<int>(b) ? a : b;
}

std::string days_text(double d) {
    const double r = std::round(d);
    if (std::fabs(d - r) < 1e-6) {
        return fmt::format("{}", static_cast<long long>(r));
    }
    return fmt::format("{:.2f}", d);
}

std::string date_text(time_point t) {
    return to_iso8601(t);
}

// The certificate chain of one holder (client or RA) inside one CA generation: first issued
// at t0 for `lifetime`, renewed at every RENEW point while the certificate fits in the CA
// (each renewal is again `lifetime` long, so RENEW comes every R), until the certificate
// that ends with the CA, whose timer is SHADOW (§2 timers 1–2). Closed form, no walk.
struct chain_end {
    validity last;
    renewal_point point;
};
chain_end certificate_chain(time_point t0, duration lifetime, int percent, bool auto_enroll,
                            time_point ca_not_after) {
    validity cert = issued_validity(lifetime, t0, ca_not_after);
    if (auto_enroll && !is_truncated(cert, ca_not_after)) {
        const duration every =
            client_renewal(percent, true, validity{time_point{}, time_point{} + lifetime},
                           time_point::max())
                .at.time_since_epoch();
        if (every.count() > 0) {
            // Smallest k with t0 + k·R + L ≥ C: the k-th renewal is the first one cut.
            const auto need = (ca_not_after - lifetime - t0).count();
            const auto k = (need + every.count() - 1) / every.count();
            cert = issued_validity(lifetime, t0 + every * k, ca_not_after);
        }
    }
    return {cert, client_renewal(percent, auto_enroll, cert, ca_not_after)};
}

// First poll at or after `from` of a loop that starts at `start` and repeats every `retry`.
time_point first_poll_at_or_after(time_point start, time_point from, duration retry) {
    if (from <= start || retry.count() <= 0) {
        return std::max(start, from);
    }
    const auto n = ((from - start).count() + retry.count() - 1) / retry.count();
    return start + retry * n;
}

std::string percent_text(int p) {
    return fmt::format("{:.2f}", p / 100.0);
}

}  // namespace

ra_timer ra_shadow_timer(const validity& ca, duration cert_lifetime,
                         const trustpoint_config& ra_trustpoint, time_point enrolled_at,
                         std::optional<time_point> manual_rollover,
                         std::optional<time_point> ca_shadow_at, const client_model& client) {
    ra_timer r;
    r.enrolled_at = enrolled_at;
    const time_point c = ca.not_after;
    const auto chain = certificate_chain(enrolled_at, cert_lifetime,
                                         std::clamp(ra_trustpoint.auto_enroll_percent, 0, 100),
                                         ra_trustpoint.auto_enroll, c);
    r.last_certificate = chain.last;
    r.own = chain.point;
    if (r.own.kind == renewal_kind::none && chain.last.not_after < c) {
        r.lapses_at = chain.last.not_after;  // no auto-enroll: the RA certificate simply ends
    }
    if (manual_rollover && *manual_rollover >= enrolled_at && *manual_rollover < c &&
        (!r.lapses_at || *manual_rollover < *r.lapses_at)) {
        r.manual = manual_rollover;
    }
    std::optional<time_point> asks;
    if (r.own.kind == renewal_kind::shadow) {
        asks = r.own.at;
    }
    if (r.manual && (!asks || *r.manual < *asks)) {
        asks = r.manual;
    }
    if (!asks || *asks >= c) {
        return r;  // the RA never asks while the CA is valid (§2.3: expired)
    }
    r.asks_ca_at = asks;
    if (ca_shadow_at) {
        const time_point k =
            first_poll_at_or_after(*asks, *ca_shadow_at, client.shadow_retry_interval);
        if (k < c && (!r.lapses_at || k < *r.lapses_at)) {
            r.knows_shadow_at = k;
        }
    }
    return r;
}

std::string min_overlap_arithmetic(const server_config& ca, const trustpoint_config& tp) {
    const int p = tp.auto_enroll ? std::clamp(tp.auto_enroll_percent, 0, 100) : 100;
    const duration l = std::min(ca.cert_lifetime, ca.ca_lifetime);
    const double need = to_days(l) * (100 - p) / 100.0;
    return fmt::format("(1 − {}) × min({}, {}) = {} days", percent_text(p),
                       days_text(to_days(ca.cert_lifetime)), days_text(to_days(ca.ca_lifetime)),
                       days_text(need));
}

namespace {

// One generation's RA timer and front-server time.
struct front_info {
    std::optional<ra_timer> ra;
    std::optional<time_point> front;
    std::optional<storm_options::front_server> front_server;
};

std::string ra_why(const ra_timer& r, const ra_input& ra, const validity& ca) {
    if (r.lapses_at) {
        return fmt::format(
            "the RA trustpoint {} has no auto-enroll, so its RA certificate ends at {}, before "
            "the CA",
            ra.trustpoint.name, date_text(*r.lapses_at));
    }
    std::string own;
    if (r.own.kind == renewal_kind::shadow) {
        own = fmt::format(
            "its own SHADOW timer at {} ({} days before CA expiry: auto-enroll {} of its {}-day "
            "certificate from {})",
            date_text(r.own.at), days_text(to_days(ca.not_after - r.own.at)),
            ra.trustpoint.auto_enroll_percent, days_text(to_days(r.last_certificate.length())),
            date_text(r.last_certificate.not_before));
    } else {
        own = fmt::format("no SHADOW timer of its own (trustpoint {} has no auto-enroll)",
                          ra.trustpoint.name);
    }
    if (r.manual && r.asks_ca_at && *r.asks_ca_at == *r.manual) {
        return fmt::format("the manual `crypto pki server {} rollover` at {}; {}", ra.server.name,
                           date_text(*r.manual), own);
    }
    if (!r.asks_ca_at) {
        return fmt::format("the RA never asks the CA: {}", own);
    }
    return "the RA asks the CA at " + own;
}

front_info front_of(const fleet_input& in, const validity& ca, int generation,
                    std::optional<time_point> ca_shadow) {
    front_info f;
    f.front = ca_shadow;
    if (!in.ra) {
        return f;
    }
    const auto& ra = *in.ra;
    // Generation 1: first issued enrolled_after the CA's creation; later generations: the RA's
    // rollover certificate starts at the generation's notBefore (rule 6).
    const time_point enrolled = generation == 1 ? ca.not_before + ra.enrolled_after : ca.not_before;
    std::optional<time_point> manual;
    if (ra.manual_rollover) {
        manual = in.ca_created_at + *ra.manual_rollover;
    }
    f.ra = ra_shadow_timer(ca, in.ca.cert_lifetime, ra.trustpoint, enrolled, manual, ca_shadow,
                           in.client);
    f.front = f.ra->knows_shadow_at;
    storm_options::front_server fs;
    fs.name = fmt::format("the RA (crypto pki server {})", ra.server.name);
    fs.knows_shadow_at = f.front;
    fs.inclusive = true;
    fs.why = ra_why(*f.ra, ra, ca);
    f.front_server = fs;
    return f;
}

fleet_verdict analyze(const fleet_input& in, bool with_change_set);

// Generation 2 (and every later one): phase-locked herd at the chain's SHADOW point from the
// generation's notBefore.
generation_verdict second_generation(const fleet_input& in, const validity& ca2) {
    generation_verdict g;
    g.number = 2;
    g.ca = ca2;
    // The operator rollover of the CA happens once (the simulator: generation 1 only).
    g.ca_shadow_at = shadow_time_of_generation(ca2, in.ca.auto_rollover);
    if (in.ca_manual_rollover) {
        const time_point m = in.ca_created_at + *in.ca_manual_rollover;
        if (m >= ca2.not_before && m < ca2.not_after && (!g.ca_shadow_at || m < *g.ca_shadow_at)) {
            g.ca_shadow_at = m;
        }
    }
    const front_info f = front_of(in, ca2, 2, g.ca_shadow_at);
    g.ra = f.ra;
    g.front_shadow_at = f.front;
    const bool inclusive = in.ra.has_value();
    const auto answers_200 = [&](time_point t) {
        if (!g.front_shadow_at) {
            return false;
        }
        return inclusive ? t > *g.front_shadow_at : t >= *g.front_shadow_at;
    };
    const time_point c2 = ca2.not_after;
    const bool throttle_on = in.limiter.enabled && in.limiter.throttle;
    for (const auto& tp : in.clients) {
        trustpoint_generation t;
        t.name = tp.name;
        t.phase_locked = true;
        const std::string tpn = fmt::format("trustpoint {}", tp.name);
        if (!tp.auto_enroll) {
            t.verdict = storm_verdict::outage;
            t.findings.push_back(fmt::format(
                "generation 2: {} has no auto-enroll (an outage already in generation 1)", tpn));
            g.verdict = worst(g.verdict, t.verdict);
            g.trustpoints.push_back(std::move(t));
            continue;
        }
        const int p = std::clamp(tp.auto_enroll_percent, 0, 100);
        // Rule 6: every rollover certificate starts at the old CA's notAfter.
        const auto chain = certificate_chain(ca2.not_before, in.ca.cert_lifetime, p, true, c2);
        t.earliest_request = chain.point.at;
        t.latest_request = chain.point.at;
        const time_point h = chain.point.at;
        if (in.fleet_size && throttle_on && in.limiter.throttle_limit > 0) {
            // GetNextCACert + PKCSReq per client; the throttle admits at most `limit` per window.
            const double conns = 2.0 * static_cast<double>(*in.fleet_size);
            t.herd_minutes = std::ceil(conns / in.limiter.throttle_limit) *
                             to_days(in.limiter.throttle_window_length) * 1440.0;
        }
        const std::string herd = in.fleet_size ? fmt::format("all {} clients", *in.fleet_size)
                                               : std::string{"every client of the trustpoint"};
        const std::string when = fmt::format(
            "generation 2 ({} .. {}): every rollover certificate starts at {} (rule 6), so {} "
            "renew{} on the same schedule and ask{} for the next CA at the same instant, {} ({} days "
            "before that CA's expiry)",
            date_text(ca2.not_before), date_text(c2), date_text(ca2.not_before), herd,
            in.fleet_size ? "" : "s", in.fleet_size ? "" : "s", date_text(h),
            days_text(to_days(c2 - h)));
        if (shadow_step(shadow_state::get_new_ca_cert, http_outcome::not_found, h, c2, in.client)
                .state == shadow_state::expired) {
            t.verdict = storm_verdict::outage;
            t.findings.push_back(fmt::format(
                "{}: {}: at the CA's expiry, too late (auto-enroll {}): an outage.", tpn, when, p));
        } else if (!g.front_shadow_at) {
            t.verdict = storm_verdict::outage;
            t.max_404_days = to_days(c2 - h);
            t.share_hit = 1;
            t.findings.push_back(fmt::format(
                "{}: {}; the server they reach never has the next CA before {}: {} days of 404, "
                "then an outage.",
                tpn, when, date_text(c2), days_text(t.max_404_days)));
        } else if (!answers_200(h)) {
            t.verdict = storm_verdict::storm;
            t.share_hit = 1;
            const time_point done =
                first_poll_at_or_after(h, *g.front_shadow_at, in.client.shadow_retry_interval);
            const time_point end =
                answers_200(done) ? done : done + in.client.shadow_retry_interval;
            t.max_404_days = to_days(end - h);
            t.findings.push_back(fmt::format(
                "{}: {}; the server they reach answers 200 only from {} ({} days before expiry): "
                "the whole herd loops on 404 for {}, {} requests per client per minute.",
                tpn, when, date_text(*g.front_shadow_at),
                days_text(to_days(c2 - *g.front_shadow_at)),
                t.max_404_days < 1 ? format_duration(from_days(t.max_404_days))
                                   : days_text(t.max_404_days) + " days",
                days_text(60.0 / (in.client.shadow_retry_interval.count() / 1000.0))));
        } else {
            t.verdict = storm_verdict::safe;
            std::string load;
            if (t.herd_minutes) {
                load = fmt::format(
                    " The herd still arrives at once: {} connections (GetNextCACert + PKCSReq) "
                    "through an {}-per-{} s throttle take at least ⌈2 × {} / {}⌉ = {} minutes, "
                    "with the listener deaf {} s after every {}",
                    2 * *in.fleet_size, in.limiter.throttle_limit,
                    in.limiter.throttle_window_length.count() / 1000, *in.fleet_size,
                    in.limiter.throttle_limit, days_text(*t.herd_minutes),
                    in.limiter.deaf_period.count() / 1000, in.limiter.throttle_limit);
                if (*t.herd_minutes >= to_days(c2 - h) * 1440.0) {
                    t.verdict = storm_verdict::outage;
                    load += ": longer than the time left before the CA expires (an outage)";
                }
                load += ".";
            } else if (throttle_on) {
                load = fmt::format(
                    " The herd arrives at once: the throttle lets {} connections in per {} s, "
                    "two per client (GetNextCACert + PKCSReq); pass --clients N for the minutes "
                    "the whole fleet needs.",
                    in.limiter.throttle_limit, in.limiter.throttle_window_length.count() / 1000);
            }
            t.findings.push_back(fmt::format(
                "{}: {}; the server they reach answers 200 from {} ({} days before): covered, no "
                "404.{}",
                tpn, when, date_text(*g.front_shadow_at),
                days_text(to_days(c2 - *g.front_shadow_at)), load));
        }
        g.verdict = worst(g.verdict, t.verdict);
        g.trustpoints.push_back(std::move(t));
    }
    if (!g.ca_shadow_at) {
        g.verdict = worst(g.verdict, storm_verdict::outage);
    }
    if (g.ra && !g.ra->knows_shadow_at && g.ca_shadow_at) {
        g.findings.push_back(
            fmt::format("generation 2: the RA never learns of the next CA before {}: {}.",
                        date_text(ca2.not_after), ra_why(*g.ra, *in.ra, ca2)));
        g.verdict = worst(g.verdict, storm_verdict::outage);
    }
    return g;
}

std::string setting_value(duration d) {
    return format_duration(d);
}

// Earliest generation-1 first request over the trustpoints with auto-enroll.
std::optional<time_point> earliest_request(const storm_analysis& a) {
    std::optional<time_point> e;
    for (const auto& t : a.trustpoints) {
        if (t.first_get_next_ca_cert && (!e || *t.first_get_next_ca_cert < *e)) {
            e = t.first_get_next_ca_cert;
        }
    }
    return e;
}

change_set build_change_set(const fleet_input& in, const fleet_verdict& v) {
    change_set cs;
    fleet_input next = in;
    const validity ca1 = ca_validity(in.ca, in.ca_created_at);
    const double ca_life_days = to_days(ca1.length());
    device_change ca_dev;
    ca_dev.device = fmt::format("the CA (crypto pki server {})", in.ca.name);
    device_change ra_dev;
    if (in.ra) {
        ra_dev.device = fmt::format("the RA (crypto pki server {})", in.ra->server.name);
    }
    device_change cl_dev;
    cl_dev.device = "the clients (every router with the trustpoint)";

    // 1. Clients: auto-enroll that leaves room before the CA's end (70 %, the seed's value).
    for (auto& tp : next.clients) {
        if (!tp.auto_enroll || tp.auto_enroll_percent >= 100) {
            const std::string old = tp.auto_enroll
                                        ? fmt::format("auto-enroll {}", tp.auto_enroll_percent)
                                        : std::string{"no auto-enroll"};
            const bool had = tp.auto_enroll;
            tp.auto_enroll = true;
            tp.auto_enroll_percent = 70;
            const std::string value = tp.regenerate ? "70 regenerate" : "70";
            cs.settings.push_back(fmt::format("trustpoint.{}.auto-enroll={}", tp.name, value));
            cl_dev.config.push_back(fmt::format("crypto pki trustpoint {}", tp.name));
            cl_dev.config.push_back(fmt::format(" auto-enroll {}", value));
            cl_dev.why.push_back(fmt::format(
                "trustpoint {}: {} means the certificate is renewed {}; at 70 % the last "
                "certificate before the CA's end asks for the next CA {} before expiry.",
                tp.name, old, had ? "only when it has expired" : "never",
                min_overlap_arithmetic(in.ca, tp)));
        }
    }
    // 2. The CA's overlap: at least (1 − P) × min(L, CA) for every trustpoint.
    double need = 0;
    double rec = 0;
    std::string arithmetic;
    for (const auto& tp : next.clients) {
        const int p = std::clamp(tp.auto_enroll_percent, 0, 100);
        const double l = to_days(std::min(in.ca.cert_lifetime, in.ca.ca_lifetime));
        const double n = l * (100 - p) / 100.0;
        if (n >= need) {
            need = n;
            arithmetic = min_overlap_arithmetic(in.ca, tp);
        }
    }
    {
        storm_options o = in.storm;
        const auto a = analyze_storm(next.ca, in.ca_created_at, next.clients, o);
        for (const auto& t : a.trustpoints) {
            rec = std::max(rec, t.recommended_overlap_days);
        }
    }
    const double have = in.ca.auto_rollover ? to_days(*in.ca.auto_rollover) : -1;
    const bool overlap_ok = in.ca.auto_rollover && have >= need && in.ca.auto_rollover->count() > 0;
    if (!overlap_ok && !next.clients.empty()) {
        const duration o = from_days(rec);
        next.ca.auto_rollover = o;
        const std::string value = fmt::format("{}", static_cast<long long>(std::llround(rec)));
        cs.settings.push_back("ca.auto-rollover=" + value);
        ca_dev.config.push_back(fmt::format("crypto pki server {}", in.ca.name));
        ca_dev.config.push_back(fmt::format(" auto-rollover {}", value));
        ca_dev.why.push_back(fmt::format(
            "{} {} {}: the first client asks for the next CA {} days before the CA's "
            "expiry; `auto-rollover {}` (at least twice that, or that + 30 days, rounded up to 5 "
            "days, below the CA lifetime of {} days) makes the shadow exist from {} days before.",
            arithmetic, have < 0 ? ">" : (have < need ? ">" : "≤"),
            have < 0 ? std::string{"no auto-rollover"} : fmt::format("overlap {}", days_text(have)),
            days_text(need), value, days_text(ca_life_days), value));
    }
    // 3. The RA: it must answer 200 before the first client asks, in every generation.
    if (in.ra) {
        const auto a1 = analyze_storm(next.ca, in.ca_created_at, next.clients, next.storm);
        const auto first_req = earliest_request(a1);
        const auto shadow1 = shadow_time_of_generation(ca1, next.ca.auto_rollover);
        auto ra_ok = [&](const fleet_input& x, int gen, std::optional<time_point> before) {
            validity ca = ca1;
            if (gen == 2) {
                ca = shadow_ca_validity(ca1.not_after, x.ca.ca_lifetime);
            }
            const auto sh = gen == 1 ? shadow1 : shadow_time_of_generation(ca, x.ca.auto_rollover);
            const auto f = front_of(x, ca, gen, sh);
            return f.front && (!before || *f.front < *before);
        };
        // Generation 1: the manual rollover on the day the CA makes its shadow (the seed's fix).
        if (shadow1 && !ra_ok(next, 1, first_req)) {
            const duration off = *shadow1 - in.ca_created_at;
            next.ra->manual_rollover = off;
            cs.settings.push_back("ra.manual_rollover=" + setting_value(off));
            ra_dev.exec.push_back(fmt::format(
                "crypto pki server {} rollover    ! on {} = CA notAfter − {} days, the day "
                "the CA generates its shadow ({} after the CA's creation)",
                in.ra->server.name, date_text(*shadow1),
                days_text(to_days(ca1.not_after - *shadow1)), format_duration(off)));
            const front_info before = front_of(in, ca1, 1, shadow1);
            ra_dev.why.push_back(fmt::format(
                "without it the RA {}, after the first client's GetNextCACert at {} ({} days "
                "before CA expiry): {}.",
                before.front ? "answers 200 only from " + date_text(*before.front)
                             : std::string{"never answers 200 before the CA expires"},
                first_req ? date_text(*first_req) : std::string{"-"},
                first_req ? days_text(to_days(ca1.not_after - *first_req)) : std::string{"-"},
                before.front_server ? before.front_server->why : std::string{}));
        }
        // Generation 2 and later: no operator; the RA's own timer must come before the herd.
        const validity ca2 = shadow_ca_validity(ca1.not_after, next.ca.ca_lifetime);
        std::optional<time_point> herd;
        for (const auto& tp : next.clients) {
            const auto ch =
                certificate_chain(ca2.not_before, next.ca.cert_lifetime, tp.auto_enroll_percent,
                                  tp.auto_enroll, ca2.not_after);
            if (ch.point.kind != renewal_kind::none && (!herd || ch.point.at < *herd)) {
                herd = ch.point.at;
            }
        }
        if (shadow1 && !ra_ok(next, 2, herd)) {
            const int old =
                next.ra->trustpoint.auto_enroll ? next.ra->trustpoint.auto_enroll_percent : 0;
            std::optional<int> found;
            for (int p = 99; p >= 1; --p) {
                fleet_input x = next;
                x.ra->trustpoint.auto_enroll = true;
                x.ra->trustpoint.auto_enroll_percent = p;
                if (ra_ok(x, 2, herd) && ra_ok(x, 1, first_req)) {
                    found = p;
                    break;
                }
            }
            if (found) {
                next.ra->trustpoint.auto_enroll = true;
                next.ra->trustpoint.auto_enroll_percent = *found;
                const std::string value = next.ra->trustpoint.regenerate
                                              ? fmt::format("{} regenerate", *found)
                                              : fmt::format("{}", *found);
                cs.settings.push_back("ra.auto-enroll=" + value);
                ra_dev.config.push_back(
                    fmt::format("crypto pki trustpoint {}", next.ra->trustpoint.name));
                ra_dev.config.push_back(fmt::format(" auto-enroll {}", value));
                const front_info g2 =
                    front_of(next, ca2, 2, shadow_time_of_generation(ca2, next.ca.auto_rollover));
                ra_dev.why.push_back(fmt::format(
                    "the manual rollover happens once; in the next generation the RA asks on its "
                    "own timer ({}), which must come before the clients' herd at {}: at "
                    "auto-enroll {} it answers 200 from {}.",
                    old > 0 ? fmt::format("auto-enroll {}", old) : std::string{"no auto-enroll"},
                    herd ? date_text(*herd) : std::string{"-"}, *found,
                    g2.front ? date_text(*g2.front) : std::string{"never"}));
            } else {
                cs.cannot_fix.push_back(fmt::format(
                    "no RA auto-enroll percent makes the RA ask the CA before the clients' "
                    "herd of generation 2 ({}); repeat `crypto pki server {} rollover` on the day "
                    "of each CA's shadow.",
                    herd ? date_text(*herd) : std::string{"-"}, in.ra->server.name));
            }
        }
    }
    // 4. The HTTP server the clients reach: the IOS maximum (seed 002's fix).
    if (in.limiter.enabled && in.limiter.max_connections < max_connections_max &&
        !next.clients.empty()) {
        next.limiter.max_connections = max_connections_max;
        cs.settings.push_back(fmt::format("max-connections={}", max_connections_max));
        device_change& d = in.ra ? ra_dev : ca_dev;
        d.config.push_back(fmt::format("ip http max-connections {}", max_connections_max));
        d.why.push_back(fmt::format(
            "max-connections {} on the server the clients reach: simultaneous requests beyond "
            "it are dropped, and the generation-2 herd arrives at once; {} is the IOS maximum "
            "(seed 002's fix).",
            in.limiter.max_connections, max_connections_max));
    }
    for (auto* d : {&ca_dev, &ra_dev, &cl_dev}) {
        if (!d->config.empty() || !d->exec.empty()) {
            cs.devices.push_back(std::move(*d));
        }
    }
    // Verify with the same closed form, through the registry (what simulate will apply).
    auto applied = apply_change_set(in, cs);
    if (!applied) {
        cs.cannot_fix.push_back(applied.error());
        return cs;
    }
    const fleet_verdict after = analyze(*applied, false);
    cs.verified_safe = after.verdict == storm_verdict::safe;
    if (!cs.verified_safe) {
        for (const auto& g : after.generations) {
            for (const auto& t : g.trustpoints) {
                if (t.verdict != storm_verdict::safe && !t.findings.empty()) {
                    cs.cannot_fix.push_back(t.findings.back());
                }
            }
            for (const auto& f : g.findings) {
                cs.cannot_fix.push_back(f);
            }
        }
        for (const auto& f : after.first.findings) {
            cs.cannot_fix.push_back(f);
        }
    }
    (void)v;
    return cs;
}

fleet_verdict analyze(const fleet_input& in, bool with_change_set) {
    fleet_verdict v;
    const validity ca1 = ca_validity(in.ca, in.ca_created_at);
    generation_verdict g1;
    g1.number = 1;
    g1.ca = ca1;
    g1.ca_shadow_at = shadow_time_of_generation(ca1, in.ca.auto_rollover);
    if (in.ca_manual_rollover) {
        const time_point m = in.ca_created_at + *in.ca_manual_rollover;
        if (m < ca1.not_after && (!g1.ca_shadow_at || m < *g1.ca_shadow_at)) {
            g1.ca_shadow_at = m;
        }
    }
    const front_info f1 = front_of(in, ca1, 1, g1.ca_shadow_at);
    g1.ra = f1.ra;
    g1.front_shadow_at = f1.front;

    storm_options o = in.storm;
    o.client = in.client;
    o.limiter = in.limiter;
    o.front = f1.front_server;
    if (in.ca_manual_rollover && !in.ra && g1.ca_shadow_at) {
        storm_options::front_server fs;
        fs.name = fmt::format("the CA (crypto pki server {})", in.ca.name);
        fs.knows_shadow_at = g1.ca_shadow_at;
        fs.inclusive = false;
        fs.why = "the manual CA rollover";
        o.front = fs;
    }
    v.first = analyze_storm(in.ca, in.ca_created_at, in.clients, o);
    g1.verdict = v.first.verdict;
    for (const auto& t : v.first.trustpoints) {
        trustpoint_generation tg;
        tg.name = t.name;
        tg.verdict = t.verdict;
        tg.earliest_request = t.first_get_next_ca_cert;
        tg.latest_request = t.last_first_get_next_ca_cert;
        tg.max_404_days = t.max_404_window_days;
        tg.share_hit = t.share_hit;
        tg.findings = t.findings;
        g1.trustpoints.push_back(std::move(tg));
    }
    if (g1.ra && g1.ra->lapses_at) {
        g1.findings.push_back(fmt::format(
            "the RA's own certificate (trustpoint {}) ends at {}, before the CA, and is never "
            "renewed (no auto-enroll): from then on the RA can neither forward enrollments nor "
            "learn of the shadow. Add `auto-enroll 70` to trustpoint {}.",
            in.ra->trustpoint.name, date_text(*g1.ra->lapses_at), in.ra->trustpoint.name));
        g1.verdict = worst(g1.verdict, storm_verdict::outage);
    }
    v.verdict = g1.verdict;
    v.generations.push_back(std::move(g1));
    // Generation 2 exists when generation 1 had a shadow in time.
    if (v.generations[0].ca_shadow_at && !in.clients.empty()) {
        const validity ca2 = shadow_ca_validity(ca1.not_after, in.ca.ca_lifetime);
        generation_verdict g2 = second_generation(in, ca2);
        v.verdict = worst(v.verdict, g2.verdict);
        v.generations.push_back(std::move(g2));
    }
    if (with_change_set && v.verdict != storm_verdict::safe && !in.clients.empty()) {
        v.change = build_change_set(in, v);
    }
    return v;
}

}  // namespace

fleet_verdict analyze_fleet(const fleet_input& in) {
    return analyze(in, true);
}

settings_target settings_target_of(fleet_input& in) {
    settings_target t;
    t.ca = &in.ca;
    if (in.ra) {
        t.ra = &in.ra->server;
        t.ra_trustpoint = &in.ra->trustpoint;
        t.ra_manual_rollover = &in.ra->manual_rollover;
    }
    for (auto& tp : in.clients) {
        t.clients.push_back(&tp);
    }
    t.max_connections = &in.limiter.max_connections;
    t.ca_manual_rollover = &in.ca_manual_rollover;
    t.ca_created_at = in.ca_created_at;
    t.fleet_size = &in.fleet_size;
    t.client = &in.client;
    t.window = &in.limiter.window;
    t.throttle = &in.limiter.throttle;
    t.limiter_enabled = &in.limiter.enabled;
    return t;
}

tl::expected<fleet_input, std::string> apply_change_set(fleet_input in, const change_set& c) {
    settings_target t = settings_target_of(in);
    for (const auto& s : c.settings) {
        auto p = parse_setting(s, "change set: " + s);
        if (!p) {
            return tl::make_unexpected(p.error());
        }
        if (auto r = apply_setting(*p, t); !r) {
            return tl::make_unexpected(r.error());
        }
    }
    return in;
}

}  // namespace pkisim::timers
