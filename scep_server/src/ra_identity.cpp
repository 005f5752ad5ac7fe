#include "ra_identity.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "pkisim/scep/crypto.hpp"
#include "pkisim/scep/key_protection.hpp"

namespace pkisim::scep::detail {

namespace {

// Meta keys of the RA's state in the store (the two keys' names are in key_protection.hpp:
// migrate_key_encryption re-encrypts them).
constexpr std::string_view meta_mode = "mode";
constexpr std::string_view meta_name = "server_name";
constexpr std::string_view meta_ra_key = ra_key_meta;
constexpr std::string_view meta_ra_cert = "ra_cert";
constexpr std::string_view meta_ra_pending_tx = "ra_pending_tx";
constexpr std::string_view meta_upstream_certs = "upstream_ca_certs";
constexpr std::string_view meta_upstream_caps = "upstream_caps";
constexpr std::string_view meta_renew_pending_tx = "ra_renew_pending_tx";
constexpr std::string_view meta_shadow_ca = "shadow_ca";
constexpr std::string_view meta_shadow_ra_key = ra_shadow_key_meta;
constexpr std::string_view meta_shadow_ra_cert = "shadow_ra_cert";
constexpr std::string_view meta_shadow_ra_pending_tx = "shadow_ra_pending_tx";

}  // namespace

poll_options one_exchange() {
    poll_options once;
    once.max_polls = 0;
    once.sleep = [](std::chrono::milliseconds) {};
    return once;
}

ra_identity::ra_identity(const engine_options& options, timers::trustpoint_config tp,
                         std::string subject, store& db, const timers::clock& clock)
    : options_(options),
      tp_(std::move(tp)),
      subject_(std::move(subject)),
      store_(&db),
      clock_(clock) {}

void ra_identity::load() {
    load_or_create_key();
    load_state();
    load_shadow();
}

std::string ra_identity::upstream_url() const {
    return options_.upstream_url.empty() ? tp_.enrollment_url : options_.upstream_url;
}

void ra_identity::load_or_create_key() {
    const auto mode = store_->meta(meta_mode);
    const auto name = store_->meta(meta_name);
    if (mode && (*mode != "ra" || name.value_or("") != options_.server.name)) {
        throw startup_error(exit_status::foreign_data,
                            fmt::format("data folder {} belongs to {} '{}', not RA '{}'",
                                        options_.data_dir.string(), *mode == "ra" ? "RA" : "CA",
                                        name.value_or(""), options_.server.name));
    }
    if (!mode && !store_->ca_generations().empty()) {
        throw startup_error(exit_status::foreign_data,
                            fmt::format("data folder {} holds a CA, not RA '{}'",
                                        options_.data_dir.string(), options_.server.name));
    }
    // Issue 13 §4: RA keys written with OpenSSL's 2,048 PBKDF2 iterations are re-encrypted at
    // the current work factor, as the CA's are (same function). The empty passphrase was
    // refused before the store was opened (enrollment_engine::open_store).
    migrate_key_encryption(*store_, options_.passphrase, ra_meta_keys);
    if (auto pem = store_->meta(meta_ra_key)) {
        ra_key_ = load_stored_key(*pem, options_, "RA");
        return;
    }
    if (!options_.existing_key_pem.empty()) {
        auto existing = private_key_from_pem(options_.existing_key_pem);
        if (!existing)
            throw startup_error(exit_status::config, "the given RA key is not a private key");
        ra_key_ = std::move(*existing);
    } else {
        ra_key_ = generate_rsa_key(options_.key_bits);
    }
    // The key is stored before the first upstream request, so a restart while the CA holds the
    // RA request pending polls with the same key.
    store_->set_meta(meta_ra_key, encrypt_private_key_pem(ra_key_.get(), options_.passphrase));
    store_->set_meta(meta_mode, "ra");
    store_->set_meta(meta_name, options_.server.name);
}

void ra_identity::load_state() {
    if (auto chain = store_->meta(meta_upstream_certs)) {
        auto certs = x509_chain_from_pem(*chain);
        if (!certs)
            throw startup_error(exit_status::store, "the stored CA certificates are corrupt");
        auto classified = classify_ca_certs(std::move(*certs), "application/x-x509-ca-ra-cert");
        if (!classified)
            throw startup_error(exit_status::store, "the stored CA certificates are unusable");
        upstream_ca_ = std::move(*classified);
    }
    if (auto caps = store_->meta(meta_upstream_caps)) {
        ca_caps c;
        std::size_t start = 0;
        while (start < caps->size()) {
            auto end = caps->find('\n', start);
            if (end == std::string::npos)
                end = caps->size();
            if (end > start)
                c.keywords.push_back(caps->substr(start, end - start));
            start = end + 1;
        }
        upstream_caps_ = std::move(c);
    }
    if (auto pem = store_->meta(meta_ra_cert); pem && !pem->empty()) {
        auto cert = x509_from_pem(*pem);
        if (!cert)
            throw startup_error(exit_status::store, "the stored RA certificate is corrupt");
        ra_cert_ = std::move(*cert);
        ra_state_text_ = "enrolled";
    }
}

scep_client ra_identity::make_client() const {
    // The RA talks to its CA as an IOS trustpoint does (ios-pki-model.md §2): HTTP/1.0, the
    // IOS User-Agent, GET with %0A line breaks, message=<trustpoint>.
    client_options o = ios_client_options(upstream_url(), tp_.name);
    o.exact_path = options_.upstream_exact_path;
    o.legacy_crypto = options_.upstream_legacy_crypto;
    o.connect_timeout = options_.upstream_timeout;
    o.read_timeout = options_.upstream_timeout * 2;
    const timers::clock* c = &clock_;
    o.now = [c] { return c->now(); };
    return scep_client{std::move(o)};
}

bool ra_identity::fetch_ca() {
    const auto c = make_client();
    auto caps = c.get_ca_caps();
    if (!caps) {
        ra_state_text_ =
            fmt::format("CA unreachable at {}: {}", upstream_url(), caps.error().message());
        return false;
    }
    auto certs = c.get_ca_cert();
    if (!certs) {
        ra_state_text_ =
            fmt::format("GetCACert at {} failed: {}", upstream_url(), certs.error().message());
        return false;
    }
    std::string chain;
    for (X509* x : certs->all())
        chain += to_pem(x);
    std::string kw;
    for (const auto& k : caps->keywords)
        kw += k + "\n";
    store_->set_meta(meta_upstream_certs, chain);
    store_->set_meta(meta_upstream_caps, kw);
    // The issuing CA as a keyless CA generation: `show` and a later rollover see its history.
    const bytes der = to_der(certs->ca.get());
    const auto gens = store_->ca_generations();
    if (std::none_of(gens.begin(), gens.end(),
                     [&](const ca_generation_record& g) { return g.cert_der == der; })) {
        for (const auto& g : gens) {
            if (g.state == ca_state::active)
                store_->set_ca_state(g.id, ca_state::archived);
        }
        store_->add_ca_generation(der, "", ca_state::active);
    }
    upstream_ca_ = std::move(*certs);
    upstream_caps_ = std::move(*caps);
    return true;
}

void ra_identity::try_enroll(time_point now) {
    next_ra_attempt_ = now + tp_.retry_period;  // `enrollment retry period`
    if (!upstream_ca_ && !fetch_ca())
        return;
    const auto c = make_client();
    poll_options once = one_exchange();
    client_result<enroll_result> res;
    const auto pending_tx = store_->meta(meta_ra_pending_tx).value_or("");
    if (!pending_tx.empty()) {
        auto p = c.resume(ra_key_.get(), subject_, *upstream_caps_, pending_tx);
        if (!p) {
            ra_state_text_ = "cannot poll for the RA certificate: " + p.error().message();
            return;
        }
        once.max_polls = 1;
        res = c.poll(*p, *upstream_caps_, *upstream_ca_, once);
    } else {
        enroll_request r;
        r.key = ra_key_.get();
        r.subject = subject_;
        r.challenge = options_.upstream_challenge;
        res = c.enroll(r, *upstream_caps_, *upstream_ca_, once);
    }
    if (!res) {
        const auto& f = res.error();
        if (f.code == client_error::scep_failure) {
            store_->set_meta(meta_ra_pending_tx, "");
            ra_state_text_ = fmt::format("RA certificate request rejected by the CA at {}: {}",
                                         upstream_url(), f.message());
        } else {
            ra_state_text_ =
                fmt::format("RA certificate request to {} failed: {}", upstream_url(), f.message());
        }
        return;
    }
    if (res->status == pki_status::pending) {
        store_->set_meta(meta_ra_pending_tx, res->transaction_id);
        ra_state_text_ =
            fmt::format("RA certificate pending at the CA {} (transaction {}); polling every {} s",
                        upstream_url(), res->transaction_id,
                        std::chrono::duration_cast<std::chrono::seconds>(tp_.retry_period).count());
        return;
    }
    store_ra_cert(std::move(res->cert));
}

void ra_identity::store_ra_cert(x509_ptr cert) {
    if (!cert || !same_public_key(X509_get0_pubkey(cert.get()), ra_key_.get())) {
        ra_state_text_ = "the CA answered with a certificate for another key";
        return;
    }
    store_->set_meta(meta_ra_cert, to_pem(cert.get()));
    store_->set_meta(meta_ra_pending_tx, "");
    ra_cert_ = std::move(cert);
    ra_state_text_ = "enrolled";
}

std::string ra_identity::status_text() const {
    if (ra_cert_) {
        return fmt::format("RA certificate {} (serial {}), issued by {}, valid until {}",
                           subject_string(ra_cert_.get()), serial_hex(ra_cert_.get()),
                           issuer_string(ra_cert_.get()),
                           timers::to_ios_time(not_after(ra_cert_.get())));
    }
    return ra_state_text_.empty() ? "RA certificate not enrolled yet" : ra_state_text_;
}

time_point ra_identity::tick(time_point now, time_point next) {
    if (!ra_cert_) {
        if (now >= next_ra_attempt_)
            try_enroll(now);
        if (!ra_cert_)
            return std::min(next, next_ra_attempt_);
    }
    // RENEW timer of the RA certificate (it ends before the CA: §2 timer 1).
    if (auto t = renew_timer()) {
        if (now >= *t && now >= next_renew_attempt_)
            renew_ra(now);
        if (auto again = renew_timer())
            next = std::min(next, std::max(*again, next_renew_attempt_));
    }
    // Switchover (rule 7): at the CA's notAfter the RA moves to the shadow CA + RA.
    if (has_shadow() && now >= not_after(upstream_ca_->ca.get()))
        switchover(now);
    // The RA's own SHADOW timer (model rule 8): from its RA certificate, per timers/.
    if (shadow_state_ == timers::shadow_state::idle && !has_shadow()) {
        if (auto t = shadow_timer(); t && now >= *t) {
            shadow_state_ = timers::shadow_state::get_new_ca_cert;
            next_shadow_attempt_ = now;
        }
    }
    const bool shadow_busy =
        shadow_state_ == timers::shadow_state::get_new_ca_cert ||
        shadow_state_ == timers::shadow_state::get_new_ca_cert_wait_for_retry ||
        shadow_state_ == timers::shadow_state::get_new_router_cert;
    if (shadow_busy && now >= next_shadow_attempt_)
        shadow_attempt(now);
    if (shadow_state_ != timers::shadow_state::idle && !has_shadow() &&
        shadow_state_ != timers::shadow_state::expired)
        next = std::min(next, next_shadow_attempt_);
    if (auto t = shadow_timer(); t && shadow_state_ == timers::shadow_state::idle && *t > now)
        next = std::min(next, *t);
    if (has_shadow())
        next = std::min(next, std::max(now, not_after(upstream_ca_->ca.get())));
    // Requests granted while the CA was unreachable: forward them now (one failure stops
    return next;
}

admin_result ra_identity::rollover(time_point now) {
    if (!ra_cert_)
        return {false, fmt::format("% No RA certificate yet: {}\n", status_text())};
    if (has_shadow())
        return {true, "% The RA already has the rollover CA and RA certificates\n"};
    shadow_state_ = timers::shadow_state::get_new_ca_cert;
    return {true, shadow_attempt(now)};
}

std::vector<timer_entry> ra_identity::timers() const {
    std::vector<timer_entry> pki;
    if (!ra_cert_)
        pki.push_back({next_ra_attempt_, fmt::format("POLL {}", tp_.name)});
    else
        pki.push_back({not_after(ra_cert_.get()), fmt::format("CERT EXPIRE {}", tp_.name)});
    if (auto t = renew_timer())
        pki.push_back({std::max(*t, next_renew_attempt_), fmt::format("RENEW {}", tp_.name)});
    if (!has_shadow()) {
        if (shadow_state_ == timers::shadow_state::idle) {
            if (auto t = shadow_timer())
                pki.push_back({*t, fmt::format("SHADOW {}", tp_.name)});
        } else if (shadow_state_ != timers::shadow_state::expired) {
            pki.push_back({next_shadow_attempt_, fmt::format("SHADOW {}", tp_.name)});
        }
    }
    return pki;
}

// asking (GetNextCACert) on its own SHADOW timer or on `rollover`, then enrolls its rollover RA
// certificate with the shadow CA before it answers clients' GetNextCACert.

void ra_identity::load_shadow() {
    if (auto pem = store_->meta(meta_shadow_ca); pem && !pem->empty()) {
        auto cert = x509_from_pem(*pem);
        if (!cert)
            throw startup_error(exit_status::store, "the stored shadow CA certificate is corrupt");
        shadow_ca_ = std::move(*cert);
        std::vector<x509_ptr> v;
        v.push_back(share(shadow_ca_.get()));
        shadow_upstream_ = classify_ca_certs(std::move(v), "application/x-x509-ca-cert").value();
        shadow_state_ = timers::shadow_state::get_new_router_cert;
    }
    if (auto pem = store_->meta(meta_shadow_ra_key); pem && !pem->empty()) {
        auto key = decrypt_private_key_pem(*pem, options_.passphrase);
        if (!key)
            throw startup_error(exit_status::store, "the stored rollover RA key is unusable");
        shadow_ra_key_ = std::move(*key);
    }
    if (auto pem = store_->meta(meta_shadow_ra_cert); pem && !pem->empty()) {
        auto cert = x509_from_pem(*pem);
        if (!cert)
            throw startup_error(exit_status::store,
                                "the stored rollover RA certificate is corrupt");
        shadow_ra_cert_ = std::move(*cert);
        shadow_state_ = timers::shadow_state::shadow_ready;
    }
}

std::optional<time_point> ra_identity::own_timer(timers::renewal_kind kind) const {
    if (!ra_cert_ || !upstream_ca_)
        return std::nullopt;
    // Model §2 timers 1–2 on the RA's own certificate: RENEW at auto-enroll % of its life, or
    // SHADOW at the same instant when it ends with the CA.
    const timers::validity id{not_before(ra_cert_.get()), not_after(ra_cert_.get())};
    const auto rp = timers::client_renewal(tp_, id, not_after(upstream_ca_->ca.get()));
    if (rp.kind != kind)
        return std::nullopt;
    return rp.at;
}

std::optional<time_point> ra_identity::shadow_timer() const {
    return own_timer(timers::renewal_kind::shadow);
}

std::string ra_identity::shadow_attempt(time_point now) {
    const time_point ca_end = not_after(upstream_ca_->ca.get());
    const auto c = make_client();
    if (!shadow_ca_) {
        auto next = c.get_next_ca_cert(*upstream_ca_);
        timers::http_outcome outcome = timers::http_outcome::not_found;
        if (!next) {
            if (next.error().code == client_error::connect_timeout ||
                next.error().code == client_error::read_timeout)
                outcome = timers::http_outcome::timed_out;
            else if (next.error().code == client_error::connect_refused ||
                     next.error().code == client_error::network)
                outcome = timers::http_outcome::refused;
        } else if (next->available) {
            outcome = timers::http_outcome::ok;
        }
        const auto step = timers::shadow_step(shadow_state_, outcome, now, ca_end, model_);
        shadow_state_ = step.state;
        next_shadow_attempt_ = step.at;
        if (outcome != timers::http_outcome::ok) {
            shadow_text_ = fmt::format(
                "GetNextCACert at the CA: {}; next try {}",
                next ? fmt::format("HTTP {}", next->http_status) : next.error().message(),
                timers::to_ios_time(step.at));
            return "% " + shadow_text_ + "\n";
        }
        X509* found = nullptr;
        for (auto& x : next->certs) {
            if (X509_check_ca(x.get()) > 0 && (found == nullptr || is_self_signed(x.get())))
                found = x.get();
        }
        if (found == nullptr) {
            shadow_state_ = timers::shadow_state::get_new_ca_cert_wait_for_retry;
            next_shadow_attempt_ = now + model_.shadow_retry_interval;
            shadow_text_ = "GetNextCACert answer has no CA certificate";
            return "% " + shadow_text_ + "\n";
        }
        shadow_ca_ = share(found);
        store_->set_meta(meta_shadow_ca, to_pem(shadow_ca_.get()));
        std::vector<x509_ptr> v;
        v.push_back(share(shadow_ca_.get()));
        shadow_upstream_ = classify_ca_certs(std::move(v), "application/x-x509-ca-cert").value();
    }
    // The rollover RA certificate: a new key, the request signed with the current RA
    // certificate and encrypted to the shadow CA (the CA's `grant ra-auto` grants it).
    shadow_state_ = timers::shadow_state::get_new_router_cert;
    if (!shadow_ra_key_) {
        if (!options_.rollover_key_pem.empty()) {
            auto k = private_key_from_pem(options_.rollover_key_pem);
            if (k)
                shadow_ra_key_ = std::move(*k);
        }
        if (!shadow_ra_key_)
            shadow_ra_key_ = generate_rsa_key(options_.key_bits);
        store_->set_meta(meta_shadow_ra_key,
                         encrypt_private_key_pem(shadow_ra_key_.get(), options_.passphrase));
    }
    auto res =
        request_signed_by_ra(meta_shadow_ra_pending_tx, shadow_ra_key_.get(), *shadow_upstream_);
    next_shadow_attempt_ = now + tp_.retry_period;
    if (!res) {
        shadow_text_ = "rollover RA certificate request failed: " + res.error().message();
        return "% " + shadow_text_ + "\n";
    }
    if (res->status == pki_status::pending) {
        shadow_text_ = fmt::format("rollover RA certificate pending at the CA (transaction {})",
                                   res->transaction_id);
        return fmt::format("% Got the rollover CA certificate; {}\n", shadow_text_);
    }
    if (!same_public_key(X509_get0_pubkey(res->cert.get()), shadow_ra_key_.get())) {
        shadow_text_ = "the CA answered the rollover RA request with another key";
        return "% " + shadow_text_ + "\n";
    }
    shadow_ra_cert_ = std::move(res->cert);
    store_->set_meta(meta_shadow_ra_cert, to_pem(shadow_ra_cert_.get()));
    shadow_state_ = timers::shadow_state::shadow_ready;
    shadow_text_ = "available for rollover";
    return fmt::format(
        "% Got the rollover CA certificate ({}) and the rollover RA certificate "
        "(serial {})\n",
        md5_fingerprint(shadow_ca_.get()), serial_hex(shadow_ra_cert_.get()));
}

std::optional<time_point> ra_identity::renew_timer() const {
    return own_timer(timers::renewal_kind::renew);
}

void ra_identity::renew_ra(time_point now) {
    next_renew_attempt_ = now + tp_.retry_period;
    // Same key (IOS without `regenerate`); research §5: the CA's ra-auto grants it.
    auto res = request_signed_by_ra(meta_renew_pending_tx, ra_key_.get(), *upstream_ca_);
    if (!res) {
        renew_text_ = "RA certificate renewal failed: " + res.error().message();
        return;
    }
    if (res->status == pki_status::pending) {
        renew_text_ = "RA certificate renewal pending at the CA";
        return;
    }
    store_ra_cert(std::move(res->cert));
    renew_text_ = "RA certificate renewed";
}

client_result<enroll_result> ra_identity::request_signed_by_ra(std::string_view pending_meta,
                                                               EVP_PKEY* key, const ca_certs& to) {
    const auto c = make_client();
    poll_options once = one_exchange();
    client_result<enroll_result> res;
    const auto tx = store_->meta(pending_meta).value_or("");
    if (!tx.empty()) {
        auto name = parse_dn(subject_);
        if (!name)
            return tl::unexpected(client_failure{client_error::bad_request, 0, {}, "bad subject"});
        once.max_polls = 1;
        res = c.poll(upstream_pending(tx, name->get(), key), *upstream_caps_, to, once);
    } else {
        enroll_request e;
        e.key = key;
        e.subject = subject_;
        e.renew_cert = ra_cert_.get();
        e.renew_key = ra_key_.get();
        e.renewal_as_pkcs_req = true;
        res = c.enroll(e, *upstream_caps_, to, once);
    }
    if (res && res->status == pki_status::pending)
        store_->set_meta(pending_meta, res->transaction_id);
    else if (res || res.error().code == client_error::scep_failure)
        store_->set_meta(pending_meta, "");
    return res;
}

pending_enrollment ra_identity::upstream_pending(std::string tx, const X509_NAME* subject,
                                                 EVP_PKEY* key) const {
    // A CertPoll signed with the current RA certificate (the reply is encrypted to it).
    pending_enrollment p;
    p.transaction_id = std::move(tx);
    p.signer_cert = share(ra_cert_.get());
    p.signer_key = share(ra_key_.get());
    p.subject = copy(subject);
    p.key = share(key);
    p.cipher_nid = upstream_caps_->cipher_nid(options_.upstream_legacy_crypto);
    p.digest_nid = upstream_caps_->digest_nid(options_.upstream_legacy_crypto);
    return p;
}

void ra_identity::switchover(time_point /*now*/) {
    // Rule 7 for the RA: the shadow CA and the rollover RA certificate become current; the old
    // CA stays in the store as an archived generation.
    const bytes der = to_der(shadow_ca_.get());
    for (const auto& g : store_->ca_generations()) {
        if (g.state == ca_state::active)
            store_->set_ca_state(g.id, ca_state::archived);
    }
    store_->add_ca_generation(der, "", ca_state::active);
    store_->set_meta(meta_ra_key,
                     encrypt_private_key_pem(shadow_ra_key_.get(), options_.passphrase));
    store_->set_meta(meta_ra_cert, to_pem(shadow_ra_cert_.get()));
    store_->set_meta(meta_upstream_certs, to_pem(shadow_ca_.get()));
    for (auto k :
         {meta_shadow_ca, meta_shadow_ra_key, meta_shadow_ra_cert, meta_shadow_ra_pending_tx})
        store_->set_meta(k, "");
    upstream_ca_ = std::move(shadow_upstream_);
    shadow_upstream_.reset();
    ra_cert_ = std::move(shadow_ra_cert_);
    ra_key_ = std::move(shadow_ra_key_);
    shadow_ca_.reset();
    shadow_state_ = timers::shadow_state::idle;
    shadow_text_.clear();
}

}  // namespace pkisim::scep::detail
