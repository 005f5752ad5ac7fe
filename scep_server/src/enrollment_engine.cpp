#include "pkisim/scep/enrollment_engine.hpp"

#include <sys/stat.h>

#include <fmt/format.h>

#include "engine_text.hpp"
#include "enrollment_core.hpp"
#include "pkisim/scep/crypto.hpp"

namespace pkisim::scep {

namespace {

// A clock step back smaller than this (NTP) is not refused; the issuance floor (a certificate
// never starts before its CA's notBefore) covers it anyway.
constexpr timers::duration clock_backwards_tolerance = std::chrono::seconds{2};

// Issue 11 §2.7: the latest instant this data folder has seen: the recorded high-water mark,
// and the active CA generation's notBefore (a switchover happens at or after it, and may come
// less than a tick before a kill).
std::optional<time_point> latest_time_seen(store& db) {
    auto seen = db.clock_high_water();
    for (const auto& g : db.ca_generations()) {
        if (g.state != ca_state::active)
            continue;
        if (auto cert = x509_from_der(g.cert_der)) {
            const auto nb = not_before(cert->get());
            if (!seen || nb > *seen)
                seen = nb;
        }
    }
    return seen;
}

}  // namespace

enrollment_engine::enrollment_engine(engine_options options, const timers::clock& clock)
    : options_(std::move(options)), clock_(clock) {}

enrollment_engine::~enrollment_engine() = default;

void enrollment_engine::open_store() {
    // Before anything is created (issue 13 §4): no data folder, no pkisim.db. Both engines open
    // their store here first.
    if (options_.passphrase.empty()) {
        throw startup_error(exit_status::config,
                            fmt::format("an empty passphrase cannot protect the {} key",
                                        options_.server.mode_ra ? "RA" : "CA"));
    }
    std::error_code ec;
    std::filesystem::create_directories(options_.data_dir, ec);
    if (ec) {
        throw startup_error(exit_status::store,
                            fmt::format("cannot create data folder {}: {}",
                                        options_.data_dir.string(), ec.message()));
    }
    // The data folder holds the CA or RA key (issue 3 §1).
    ::chmod(options_.data_dir.c_str(), 0700);
    try {
        store_ = std::make_unique<store>(options_.data_dir / "pkisim.db");
    } catch (const store_error& e) {
        throw startup_error(exit_status::store, fmt::format("data folder {}: {}",
                                                            options_.data_dir.string(), e.what()));
    }
}

void enrollment_engine::check_clock() {
    const time_point now = clock_.now();
    const auto seen = latest_time_seen(*store_);
    if (seen && now + clock_backwards_tolerance < *seen) {
        const auto behind = std::chrono::duration_cast<std::chrono::seconds>(*seen - now);
        if (!options_.allow_clock_backwards) {
            throw startup_error(
                exit_status::clock_backwards,
                fmt::format("the clock says {} but data folder {} has already seen {} ({} s "
                            "later; a run on a warped clock?): certificates issued now would "
                            "be dated before earlier ones or before their CA's notBefore. "
                            "Start with --clock-start {} or later, or pass "
                            "--allow-clock-backwards (certificates then start no earlier than "
                            "their CA's notBefore)",
                            timers::to_iso8601(now), options_.data_dir.string(),
                            timers::to_iso8601(*seen), behind.count(), timers::to_iso8601(*seen)));
        }
        if (options_.event_log) {
            options_.event_log(fmt::format(
                "%PKISIM-4-CLOCK_BACKWARDS: the clock ({}) is {} s earlier than this data folder "
                "has seen ({}); started with --allow-clock-backwards: certificates are dated no "
                "earlier than their issuing CA's notBefore",
                timers::to_iso8601(now), behind.count(), timers::to_iso8601(*seen)));
        }
    }
    store_->raise_clock_high_water(now);
    clock_recorded_ = now;
}

void enrollment_engine::record_clock(time_point now) {
    // At most one durable write per minute of server time (the tick runs every real second; a
    // real-clock server would otherwise fsync once a second for this alone). The mark may lag by
    // that minute: a step back within it passes the start-up check, and the issuance floor (a
    // certificate never starts before its CA's notBefore) still holds.
    if (clock_recorded_ && now < *clock_recorded_ + std::chrono::minutes{1})
        return;
    store_->raise_clock_high_water(now);
    clock_recorded_ = now;
}

http_answer enrollment_engine::get_ca_cert() {
    before(clock_.now());
    if (auto busy = unavailable())
        return *busy;
    const auto certs = ca_cert_chain();
    if (certs.size() == 1) {
        // scep-wire §1.6: one CA certificate, no RA -> raw DER, application/x-x509-ca-cert.
        return {200, "application/x-x509-ca-cert", detail::as_string(to_der(certs.front())), false,
                ""};
    }
    // CA + RA as a degenerate SignedData; clients pick the RA by keyUsage.
    return {200, "application/x-x509-ca-ra-cert", detail::as_string(degenerate_certs_only(certs)),
            false, ""};
}

http_answer enrollment_engine::get_ca_caps() {
    before(clock_.now());
    return {200, "text/plain", ca_caps(), false, ""};
}

http_answer enrollment_engine::get_next_ca_cert() {
    const time_point now = clock_.now();
    before(now);
    return next_ca_answer(now);
}

http_answer enrollment_engine::next_ca_answer(time_point now) {
    auto next = next_ca_certs();
    if (!next) {
        // Model rule 4: no rollover certificate -> IOS-exact 404.
        return detail::ios_not_found(no_next_ca_text());
    }
    // Rule 4 / scep-wire §0.15: signed by the CURRENT key; the new certificates both as the
    // content (degenerate SignedData, RFC 8894 §4.7.1) and in the outer certificates (sscep,
    // jscep).
    auto der = encode_get_next_ca_cert(next->certs, next->signer, next->key, next->digest_nid, now);
    if (!der) {
        return internal_error_answer("encode GetNextCACert: " + der.error().message());
    }
    return {200, "application/x-x509-next-ca-cert", detail::as_string(*der), false, next->detail};
}

std::shared_ptr<const static_answers> enrollment_engine::prepared_static(time_point now) {
    before(now);
    if (unavailable()) {
        // The RA's 503 names its progress: asked every time.
        prepared_.reset();
        prepared_next_key_.clear();
        return nullptr;
    }
    auto ca_cert = get_ca_cert();
    http_answer ca_caps_answer{200, "text/plain", ca_caps(), false, ""};
    // What GetNextCACert is made of: the next certificates and the current signer. The signed
    // answer is remade only when they change (its signingTime is the time it was made).
    std::string next_key;
    if (auto next = next_ca_certs()) {
        for (X509* c : next->certs)
            next_key += detail::as_string(to_der(c));
        next_key += detail::as_string(to_der(next->signer));
        next_key += std::to_string(next->digest_nid);
    }
    const auto until = static_until(now);
    if (prepared_ && next_key == prepared_next_key_ && prepared_->until == until &&
        prepared_->ca_cert.body == ca_cert.body &&
        prepared_->ca_cert.content_type == ca_cert.content_type &&
        prepared_->ca_caps.body == ca_caps_answer.body) {
        return prepared_;
    }
    auto made = std::make_shared<static_answers>();
    made->ca_cert = std::move(ca_cert);
    made->ca_caps = std::move(ca_caps_answer);
    if (prepared_ && next_key == prepared_next_key_) {
        made->next_ca_cert = prepared_->next_ca_cert;
    } else {
        made->next_ca_cert = next_ca_answer(now);
    }
    made->until = until;
    if (made->next_ca_cert.status >= 500)
        return prepared_ = nullptr;  // an encoding failure is reported per request
    prepared_next_key_ = std::move(next_key);
    prepared_ = std::move(made);
    return prepared_;
}

http_answer enrollment_engine::pki_operation(byte_view der) {
    const time_point now = clock_.now();
    before(now);
    if (auto busy = unavailable())
        return *busy;
    auto a = core_->pki_operation(der, now);
    commit_files();
    return a;
}

void enrollment_engine::commit_files() {
    // The certificates are durable in the store by then; a file that cannot be written is
    // rewritten by the next start (store::repair_certificate_files), the answers stand.
    try {
        after_commit();
    } catch (const std::exception& e) {
        if (options_.event_log) {
            options_.event_log(
                fmt::format("%PKISIM-3-CERT_FILE: {} (rewritten at the next start)", e.what()));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Issue 12 §3: PKIOperation in stages (service.hpp).

struct enrollment_engine::key_snapshot {
    std::vector<x509_ptr> certs;
    std::vector<evp_pkey_ptr> keys;
    std::vector<decryption_key> view;  // into certs/keys
    decode_options options;

    // The engine's keys are these very objects (the snapshot holds references, so an address
    // cannot be re-used by another object while it exists).
    bool same(std::span<const decryption_key> now) const {
        return now.size() == view.size() &&
               std::equal(now.begin(), now.end(), view.begin(), [](const auto& a, const auto& b) {
                   return a.cert == b.cert && a.key == b.key;
               });
    }
};

namespace {
struct enrollment_job final : pki_job {
    bytes der;
    // What the worker decoded with, and got; empty when there was no snapshot yet.
    std::shared_ptr<const void> keys;
    std::optional<tl::expected<pki_request, decode_failure>> decoded;
    detail::deferred_reply reply;
};
}  // namespace

std::shared_ptr<const enrollment_engine::key_snapshot> enrollment_engine::current_keys() {
    const auto now = core_->decode_keys();
    std::lock_guard lock{keys_mutex_};
    if (published_keys_ && published_keys_->same(now))
        return published_keys_;
    auto snap = std::make_shared<key_snapshot>();
    for (const auto& k : now) {
        snap->certs.push_back(share(k.cert));
        snap->keys.push_back(share(k.key));
        snap->view.push_back({snap->certs.back().get(), snap->keys.back().get()});
    }
    snap->options = core_->decode_opts();
    published_keys_ = std::move(snap);
    return published_keys_;
}

std::unique_ptr<pki_job> enrollment_engine::pki_prepare(bytes der) {
    auto job = std::make_unique<enrollment_job>();
    job->der = std::move(der);
    std::shared_ptr<const key_snapshot> keys;
    {
        std::lock_guard lock{keys_mutex_};
        keys = published_keys_;
    }
    if (keys) {
        // The private-key operation (decrypting the envelope) and both signature checks, on
        // the calling worker: nothing here touches the engine's state.
        job->decoded = decode_pki_message(job->der, keys->view, keys->options);
        job->keys = std::move(keys);
    }
    return job;
}

void enrollment_engine::pki_process(std::span<const std::unique_ptr<pki_job>> jobs) {
    const time_point now = clock_.now();
    const auto all = [&](const http_answer& a) {
        for (const auto& j : jobs)
            static_cast<enrollment_job&>(*j).reply = a;
    };
    try {
        before(now);
    } catch (const std::exception& e) {
        return all(internal_error_answer(std::string{"internal: "} + e.what()));
    }
    if (auto busy = unavailable())
        return all(*busy);
    const auto keys = current_keys();
    const auto run = [&] {
        for (const auto& j : jobs) {
            auto& job = static_cast<enrollment_job&>(*j);
            // Decoded with keys that are no longer the engine's (a shadow made or a switchover
            // since): decode again here, as a single call would.
            if (!job.decoded || job.keys != keys)
                job.decoded = decode_pki_message(job.der, keys->view, keys->options);
            job.reply = core_->operate(std::move(*job.decoded), now);
            job.decoded.reset();
        }
    };
    const auto files = [this] { commit_files(); };
    if (!core_->issues_locally()) {
        // The RA forwards upstream (network I/O): no transaction held across it.
        run();
        files();
        return;
    }
    // Group commit: the whole batch in ONE transaction, so one fsync commits every certificate
    // in it; each enrollment's own transaction becomes a savepoint (store::transact), so one
    // that fails rolls back alone. No CertRep of the batch exists before this commit.
    try {
        store_->transact(run);
    } catch (const std::exception& e) {
        // Nothing of the batch committed: no reply may claim otherwise.
        all(internal_error_answer(std::string{"internal: commit: "} + e.what()));
    }
    files();
}

http_answer enrollment_engine::pki_finish(pki_job& job) {
    return std::move(static_cast<enrollment_job&>(job).reply).finish();
}

admin_result enrollment_engine::admin(std::string_view line) {
    const time_point now = clock_.now();
    try {
        before(now);
    } catch (const std::exception& e) {
        return {false, fmt::format("% internal error: {}\n", e.what())};
    }
    return core_->admin(line, now);
}

}  // namespace pkisim::scep
