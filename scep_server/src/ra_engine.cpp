#include "pkisim/scep/ra_engine.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <charconv>

#include <date/date.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "engine_text.hpp"
#include "enrollment_core.hpp"
#include "pkisim/scep/ca_engine.hpp"  // ios_countdown (show timers layout)
#include "pkisim/scep/crypto.hpp"
#include "pkisim/timers/timeline.hpp"
#include "ra_identity.hpp"

namespace pkisim::scep {
using namespace detail;  // engine_text.hpp, enrollment_core.hpp, ra_identity.hpp

namespace {

// What the RA itself can decode and answer (scep-wire §1.7), in the order sent.
constexpr std::array<std::string_view, 9> ra_caps = {"AES",     "DES3",    "POSTPKIOperation",
                                                     "Renewal", "SHA-1",   "SHA-256",
                                                     "SHA-384", "SHA-512", "SCEPStandard"};

std::string lower(std::string_view s) {
    std::string out{s};
    for (auto& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string digest_hex(const bytes& data, const EVP_MD* md) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
    unsigned int n = 0;
    EVP_Digest(data.data(), data.size(), out.data(), &n, md, nullptr);
    return to_hex(byte_view{out.data(), n});
}

// A CRL's nextUpdate (none: the epoch, shown as such).
time_point crl_next_update(const X509_CRL* crl) {
    const ASN1_TIME* t = X509_CRL_get0_nextUpdate(crl);
    auto tp = t ? from_asn1_time(t) : tl::unexpected(make_error_code(error::internal));
    return tp ? *tp : time_point{};
}

}  // namespace

std::string ra_request_subject(std::string_view server_name, std::string_view subject_name,
                               bool* added) {
    if (added)
        *added = false;
    if (subject_name.empty())
        return fmt::format("CN={},{}", server_name, ra_subject_marker);
    // IOS convention: the CA's `grant ra-auto` recognises RA requests by OU=ioscs RA
    // (ios-pki-research.md §5); keep the operator's subject and add the marker when missing.
    std::string compact;
    for (char c : lower(subject_name)) {
        if (c != ' ')
            compact += c;
    }
    if (compact.find("ou=ioscsra") != std::string::npos)
        return std::string{subject_name};
    if (added)
        *added = true;
    return fmt::format("{},{}", subject_name, ra_subject_marker);
}

// ---------------------------------------------------------------------------------------------
// The signer strategy of RA mode (enrollment_core.hpp): re-sign the client's CSR with the RA
// key and forward it to the issuing CA; relay what it answers.

class ra_forwarder final : public signer_strategy {
  public:
    explicit ra_forwarder(ra_engine& ra) : ra_(ra) {}

    std::string_view role() const override { return "RA"; }

    std::vector<decryption_key> decryption_keys() const override {
        // Rule 6 via rule 8: a request encrypted to the shadow RA (index 1) is a rollover request.
        const auto& id = *ra_.identity_;
        std::vector<decryption_key> keys{{id.cert(), id.key()}};
        if (id.has_shadow())
            keys.push_back({id.shadow_cert(), id.shadow_key()});
        return keys;
    }

    reply_signer signer_for(std::size_t recipient_index) const override {
        // The rollover RA signs when the request was encrypted to it (as the CA's shadow answers
        // rollover requests, rule 6), else the current RA; the CA above goes along.
        const auto& id = *ra_.identity_;
        if (recipient_index == 1 && id.has_shadow())
            return {id.shadow_cert(), id.shadow_key(), id.shadow_ca(), 1, true};
        return {id.cert(), id.key(), id.upstream()->ca.get(), 0, false};
    }

    std::vector<X509*> renewal_anchors() const override {
        // scep-wire §0.12: a renewal is a request signed by a certificate of our CA.
        return {ra_.identity_->upstream()->ca.get()};
    }

    bool claims_our_issuer(X509* /*signer*/) const override {
        // The RA cannot tell a certificate of its CA that fails the chain check from a foreign
        // one: a PKCSReq signed by it is an initial enrollment (the CA decides).
        return false;
    }

    revocation_knowledge revocation(X509* signer, time_point now) override {
        return ra_.upstream_revocation(signer, now);
    }

    void before_grant(request_record& r) override {
        ra_.store_->set_request_state(r.id, request_state::granted);
        r.state = request_state::granted;
    }

    fulfilment grant(request_record& r, time_point now) override { return ra_.forward(r, now); }

    fulfilment retrieve(request_record& r, time_point now) override {
        if (r.state == request_state::granted)
            return ra_.forward(r, now);
        fulfilment f;
        auto pem = ra_.store_->meta(request_meta(r.id, "cert"));
        auto cert = pem ? x509_from_pem(*pem) : tl::unexpected(make_error_code(error::internal));
        if (!cert) {
            f.status = pki_status::failure;
            f.text = "relayed certificate missing";
            return f;
        }
        f.status = pki_status::success;
        f.cert = std::move(*cert);
        return f;
    }

    http_answer get_cert(const pki_request& req, const reply_signer& s, time_point now) override {
        return not_relayed(req, s, now);
    }
    http_answer get_crl(const pki_request& req, const reply_signer& s, time_point now) override {
        return not_relayed(req, s, now);
    }

    std::string granted_line(const request_record& r, const fulfilment& f) const override {
        if (f.status == pki_status::success && f.cert) {
            return fmt::format("% Granted request {}: forwarded, the CA issued serial {}\n", r.id,
                               serial_hex(f.cert.get()));
        }
        if (f.status == pki_status::pending && f.text.rfind("CA unreachable", 0) == 0)
            return fmt::format("% Granted request {}: the {}; will retry\n", r.id, f.text);
        if (f.status == pki_status::pending)
            return fmt::format("% Granted request {}: forwarded, pending at the CA\n", r.id);
        return fmt::format("% Granted request {}: {}\n", r.id, f.text);
    }

  private:
    http_answer not_relayed(const pki_request& req, const reply_signer& s, time_point now) {
        // The RA issues nothing and holds no CRL: clients fetch those from the CA (its CDP).
        // IOS RAs answer these from the CA's data; we do not relay them.
        return ra_.core_->fail(
            req.context(), s, fail_info::bad_request,
            fmt::format("{} is not relayed by this RA; ask the CA", to_string(req.type)), now);
    }

    ra_engine& ra_;
};

ra_engine::ra_engine(engine_options options, const timers::clock& clock)
    : enrollment_engine(std::move(options), clock) {
    if (!options_.ra_trustpoint) {
        throw startup_error(
            exit_status::config,
            fmt::format("`mode ra` needs `crypto pki trustpoint {}` with `enrollment url` "
                        "pointing at the issuing CA (same NAME as the server)",
                        options_.server.name));
    }
    tp_ = *options_.ra_trustpoint;
    if (upstream_url().empty()) {
        throw startup_error(
            exit_status::config,
            fmt::format("trustpoint {} has no `enrollment url` (the issuing CA)", tp_.name));
    }
    bool added = false;
    subject_ = ra_request_subject(options_.server.name, tp_.subject_name, &added);
    if (added) {
        notes_.push_back(fmt::format("subject-name {} has no {}: requesting {}", tp_.subject_name,
                                     ra_subject_marker, subject_));
    }
    if (options_.server.issuer_name.empty())
        options_.server.issuer_name = subject_;
    open_store();
    try {
        identity_ = std::make_unique<ra_identity>(options_, tp_, subject_, *store_, clock_);
        identity_->load();
        check_clock();  // issue 11 §2.7, after the key checks
        forwarder_ = std::make_unique<ra_forwarder>(*this);
        core_ = std::make_unique<enrollment_core>(*forwarder_, *store_, options_, clock_);
        add_commands();
        if (!identity_->cert())
            identity_->try_enroll(clock_.now());
    } catch (const store_error& e) {
        throw startup_error(exit_status::store, fmt::format("data folder {}: {}",
                                                            options_.data_dir.string(), e.what()));
    }
}

ra_engine::~ra_engine() = default;

std::string ra_engine::upstream_url() const {
    return options_.upstream_url.empty() ? tp_.enrollment_url : options_.upstream_url;
}

X509* ra_engine::ca_certificate() const {
    return identity_->upstream() ? identity_->upstream()->ca.get() : nullptr;
}
bool ra_engine::ra_ready() const {
    return identity_->cert() != nullptr;
}
X509* ra_engine::ra_certificate() const {
    return identity_->cert();
}
std::string ra_engine::status_text() const {
    return identity_->status_text();
}
timers::shadow_state ra_engine::shadow_state() const {
    return identity_->shadow_state();
}
bool ra_engine::has_shadow() const {
    return identity_->has_shadow();
}

time_point ra_engine::tick() {
    const time_point now = clock_.now();
    auto next = now + timers::minutes{1};
    try {
        store_->expire_requests(now);
        next = identity_->tick(now, next);
        if (!identity_->ready())
            return next;
        // Requests granted while the CA was unreachable: forward them now (one failure stops
        // this round; each call is bounded by upstream_timeout).
        for (auto& r : store_->requests()) {
            if (r.state != request_state::granted || store_->meta(request_meta(r.id, "tx")))
                continue;
            if (forward(r, now).text.rfind("CA unreachable", 0) == 0)
                break;
        }
    } catch (const std::exception&) {
        // Store trouble: try again at the next tick; SCEP answers report it as 500.
    }
    return next;
}

// ---------------------------------------------------------------------------------------------
// SCEP operations.

std::optional<http_answer> ra_engine::unavailable() const {
    if (identity_->ready())
        return std::nullopt;
    // Clients retry on 503; the text says why (the RA certificate is pending at the CA).
    return http_answer{503, "text/plain", fmt::format("RA not ready: {}\n", status_text()), false,
                       "RA not ready"};
}

std::vector<X509*> ra_engine::ca_cert_chain() const {
    // scep-wire §1.6: CA + RA; clients pick the RA by keyUsage.
    return {identity_->upstream()->ca.get(), identity_->cert()};
}

std::string ra_engine::ca_caps() const {
    // What the upstream supports that the RA supports: the client's cipher and digest travel
    // only to the RA, but clients expect an RA to reflect its CA's algorithms. When the CA
    // lists nothing we know (old NDES: no GetCACaps), the RA's own list.
    const auto& upstream_caps = identity_->upstream_caps();
    std::string body;
    std::string fallback;
    // Model rule 5 via rule 8: GetNextCACert once the RA itself has the shadow CA and its
    // rollover RA certificate.
    if (identity_->has_shadow())
        body += "GetNextCACert\n";
    for (auto k : ra_caps) {
        fallback += std::string{k} + "\n";
        bool upstream = true;
        if (upstream_caps && !upstream_caps->keywords.empty()) {
            const bool standard = upstream_caps->has("SCEPStandard");
            upstream = upstream_caps->has(k) ||
                       (standard && (k == "AES" || k == "POSTPKIOperation" || k == "SHA-256"));
        }
        if (upstream)
            body += std::string{k} + "\n";
    }
    if (body.empty() || body == "GetNextCACert\n")
        body += fallback;
    return body;
}

std::optional<enrollment_engine::next_ca> ra_engine::next_ca_certs() const {
    const auto& id = *identity_;
    if (!id.cert() || !id.has_shadow())
        return std::nullopt;
    // Rule 4: signed by the CURRENT RA key, shadow CA + shadow RA in content and outer set.
    return next_ca{{id.shadow_ca(), id.shadow_cert()},
                   id.cert(),
                   id.key(),
                   NID_sha256,
                   "shadow CA + shadow RA"};
}

std::string ra_engine::no_next_ca_text() const {
    // Model rule 8: until the RA has fetched the CA's shadow (and its own rollover RA
    // certificate), clients get the IOS-exact 404 even when the CA has a shadow.
    return "RA has no rollover CA certificate";
}

revocation_knowledge ra_engine::upstream_revocation(X509* signer, time_point now) {
    // Issue 11 §2.1 in RA mode: the CA only sees the RA's signature on what the RA forwards, so
    // the RA has to know the signer's revocation. It asks the CA for its current CRL (SCEP
    // GetCRL, RFC 8894 §3.3.4, signed by the RA) on every renewal: renewals are rare, and a
    // revocation made at the CA a moment ago counts. When the CA cannot be asked, the last CRL
    // fetched still proves a revocation (and, until its nextUpdate, that the signer is good).
    const auto& id = *identity_;
    std::string why;
    if (id.cert() && id.upstream() && id.upstream_caps()) {
        auto crl = id.make_client().get_crl({id.cert(), id.key()}, signer, *id.upstream_caps(),
                                            *id.upstream());
        if (crl && *crl) {
            auto k = revocation_from_crl(signer, crl->get(), id.upstream()->ca.get(), now);
            if (k.status != revocation_knowledge::state::unknown) {
                upstream_crl_ = std::move(*crl);
                k.source += " (GetCRL)";
                return k;
            }
            why = "GetCRL: " + k.source;
        } else {
            why = "GetCRL: " + (crl ? std::string{"no CRL in the answer"} : crl.error().message());
        }
    } else {
        why = "the RA has no certificate yet";
    }
    if (upstream_crl_) {
        auto k = revocation_from_crl(signer, upstream_crl_.get(), id.upstream()->ca.get(), now);
        k.source += fmt::format(", fetched earlier; {}", why);
        return k;
    }
    return {revocation_knowledge::state::unknown, why};
}

fulfilment ra_engine::forward(request_record& r, time_point /*now*/) {
    auto csr = x509_req_from_der(r.csr_der);
    if (!csr) {
        fulfilment f;
        f.status = pki_status::failure;
        f.text = "stored CSR unreadable";
        return f;
    }
    const auto& id = *identity_;
    const auto c = id.make_client();
    poll_options once = one_exchange();
    const auto tx = store_->meta(request_meta(r.id, "tx"));
    if (!tx) {
        // A new upstream transactionID per RA request: a client's own transactionID may repeat
        // (scep-wire §0.11), and a re-sent identical PKCSReq after a crash is answered by the
        // CA as a poll (same ID, same CSR).
        bytes seed = r.csr_der;
        const auto rid = std::to_string(r.id);
        seed.insert(seed.end(), rid.begin(), rid.end());
        enroll_request e;
        e.forward_csr = csr->get();
        e.ra_cert = id.cert();
        e.ra_key = id.key();
        e.transaction_id = digest_hex(seed, EVP_sha1());
        return record_reply(r, c.enroll(e, *id.upstream_caps(), upstream_for(r), once));
    }
    auto p = id.upstream_pending(*tx, X509_REQ_get_subject_name(csr->get()),
                                 X509_REQ_get0_pubkey(csr->get()));
    once.max_polls = 1;
    return record_reply(r, c.poll(p, *id.upstream_caps(), upstream_for(r), once));
}

const ca_certs& ra_engine::upstream_for(const request_record& r) const {
    // A client's rollover request goes to the shadow CA, encrypted to it (model rule 6); after
    // the switchover the shadow is the current CA.
    const auto& shadow = identity_->shadow_upstream();
    if (shadow && store_->meta(request_meta(r.id, "rollover")))
        return *shadow;
    return *identity_->upstream();
}

fulfilment ra_engine::record_reply(request_record& r, client_result<enroll_result> res) {
    fulfilment f;
    if (!res) {
        const auto& e = res.error();
        if (e.code == client_error::scep_failure) {
            f.status = pki_status::failure;
            f.failure = e.failure.value_or(fail_info::bad_request);
            f.text = fmt::format("the CA refused the request: {}", e.text);
            store_->set_meta(request_meta(r.id, "fail"),
                             fmt::format("{}\n{}", static_cast<int>(f.failure), f.text));
            store_->set_request_state(r.id, request_state::rejected);
            r.state = request_state::rejected;
        } else {
            // Network / HTTP / unreadable answer: PENDING to the client, retried on tick().
            f.status = pki_status::pending;
            f.text = "CA unreachable: " + e.message();
        }
        return f;
    }
    store_->set_meta(request_meta(r.id, "tx"), res->transaction_id);
    if (res->status == pki_status::pending) {
        f.status = pki_status::pending;
        f.text = "pending at the CA";
        return f;
    }
    store_->set_meta(request_meta(r.id, "cert"), to_pem(res->cert.get()));
    store_->set_request_state(r.id, request_state::issued);
    r.state = request_state::issued;
    f.status = pki_status::success;
    f.cert = std::move(res->cert);
    return f;
}

// ---------------------------------------------------------------------------------------------
// Operator commands: grant, reject and password are the core's; these are the RA's.

void ra_engine::add_commands() {
    core_->add_command("show", [this](std::span<const std::string_view> a, time_point now) {
        if (a.size() == 1) {
            if (a[0] == "server")
                return admin_result{true, show_server()};
            if (a[0] == "requests")
                return admin_result{true, show_requests()};
            if (a[0] == "certificates")
                return admin_result{true, show_certificates()};
            if (a[0] == "timers")
                return admin_result{true, show_timers(now)};
            if (a[0] == "pkisim")
                return admin_result{true, show_pkisim()};
        }
        return admin_result{false, "% Usage: show server|requests|certificates|timers|pkisim\n"};
    });
    core_->add_command("revoke", [](std::span<const std::string_view>, time_point) {
        return admin_result{false, "% An RA cannot revoke: run `revoke` on the issuing CA\n"};
    });
    core_->add_command("rollover", [this](std::span<const std::string_view> a, time_point now) {
        if (!a.empty())
            return admin_result{false, "% Usage: rollover\n"};
        return identity_->rollover(now);
    });
}

std::string ra_engine::show_server() {
    // ios-pki-research.md §1.4, RA-mode layout (S7 golden output). What IOS does not print (the
    // issuing CA's URL, the RA's own enrollment and renewal) is in `show pkisim`.
    const auto& s = options_.server;
    const auto& id = *identity_;
    X509* ra_cert = id.cert();
    const auto& upstream = id.upstream();
    std::string out = fmt::format("Certificate Server {}:\n", s.name);
    out += "    Status: enabled\n";
    out += fmt::format("    State: {}\n", ra_cert ? "enabled" : "enrolling");
    out += "    Server's configuration is locked  (enter \"shut\" to unlock it)\n";
    out += fmt::format("    Issuer name: {}\n", ra_cert ? subject_string(ra_cert) : subject_);
    if (upstream) {
        out += fmt::format("    CA cert fingerprint: {}\n", md5_fingerprint(upstream->ca.get()));
    }
    out += "    Server configured in RA mode\n";
    if (ra_cert)
        out += fmt::format("    RA cert fingerprint: {}\n", md5_fingerprint(ra_cert));
    out += fmt::format("    Granting mode is: {}\n", grant_text(s.grant));
    // IOS prints the `database url` (default nvram:); the host folder is in `show pkisim`.
    out += "    Current primary storage dir: nvram:\n";
    out += fmt::format("    Database Level: {}\n", db_level_text(s.db_level));
    if (id.has_shadow()) {
        out += "    Rollover status: available for rollover\n";
        out +=
            fmt::format("    Rollover CA cert fingerprint: {}\n", md5_fingerprint(id.shadow_ca()));
        out += fmt::format("    Rollover RA cert fingerprint: {}\n",
                           md5_fingerprint(id.shadow_cert()));
        out += fmt::format("    Rollover CA cert expiration time: {}\n",
                           timers::to_ios_time(not_after(id.shadow_ca())));
    } else if (id.shadow_state() != timers::shadow_state::idle) {
        out += fmt::format("    Rollover status: {}\n", timers::to_string(id.shadow_state()));
    }
    return out;
}

std::string ra_engine::show_pkisim() {
    // What IOS does not print, kept out of the IOS layouts.
    const auto& id = *identity_;
    std::string out = pkisim_section_title(options_.server.name);
    out += fmt::format("    Data folder: {}\n", options_.data_dir.string());
    out += fmt::format("    Issuing CA: {}\n", upstream_url());
    out += fmt::format("    RA status: {}\n", status_text());
    if (!id.renew_text().empty())
        out += fmt::format("    RA renewal: {}\n", id.renew_text());
    if (id.shadow_state() != timers::shadow_state::idle && !id.shadow_text().empty())
        out += fmt::format("    RA rollover: {}\n", id.shadow_text());
    auto cert_line = [&](std::string_view what, X509* c) {
        out += fmt::format("    {}: serial {} {} valid {} to {}\n", what, serial_hex(c),
                           subject_string(c), timers::to_ios_time(not_before(c)),
                           timers::to_ios_time(not_after(c)));
    };
    if (id.upstream())
        cert_line("Issuing CA certificate", id.upstream()->ca.get());
    if (id.cert())
        cert_line("RA certificate", id.cert());
    if (upstream_crl_) {
        out += fmt::format("    CA's CRL (renewal checks): next update {}\n",
                           timers::to_ios_time(crl_next_update(upstream_crl_.get())));
    }
    return out;
}

std::string ra_engine::show_requests() {
    // ios-pki-research.md §1.3 layout, newest first. `granted` = forwarded to the CA, whether it
    // issued already or still holds it.
    std::string rows;
    auto requests = store_->requests();
    std::sort(requests.begin(), requests.end(),
              [](const request_record& a, const request_record& b) { return a.id > b.id; });
    for (const auto& r : requests)
        rows += request_row(r);
    return "Enrollment Request Database:\n\n" +
           request_section("Router certificates requests", rows);
}

std::string ra_engine::show_certificates() {
    // ios-pki-research.md §1.3 layout: the certificates the RA relayed (the CA and RA
    // certificates are in `show pkisim`).
    std::string out{certificate_header};
    for (const auto& r : store_->requests()) {
        if (r.state != request_state::issued)
            continue;
        if (auto pem = store_->meta(request_meta(r.id, "cert"))) {
            if (auto c = x509_from_pem(*pem)) {
                X509* x = c->get();
                out += certificate_row(serial_hex(x), not_before(x), not_after(x),
                                       ios_name(X509_get_subject_name(x), ' '));
            }
        }
    }
    return out;
}

std::string ra_engine::show_timers(time_point now) {
    // ios-pki-research.md §3.2 grammar (as ca_engine::show_timers).
    const auto& id = *identity_;
    std::vector<timer_entry> pki;
    for (const auto& r : store_->requests()) {
        if (r.state == request_state::pending)
            pki.push_back({r.expires, fmt::format("ER EXPIRE {}", r.id)});
    }
    for (auto& e : id.timers())
        pki.push_back(std::move(e));
    // ID(tp) / CA(tp) expiry alerts of the RA's trustpoint; they stop once the rollover
    // certificates are installed (research §2, S6).
    std::vector<timer_entry> alerts;
    if (!id.has_shadow()) {
        if (id.cert()) {
            if (auto t = timers::next_expiry_alert(not_after(id.cert()), now))
                alerts.push_back({*t, fmt::format("ID({})", tp_.name)});
        }
        if (id.upstream()) {
            if (auto t = timers::next_expiry_alert(not_after(id.upstream()->ca.get()), now))
                alerts.push_back({*t, fmt::format("CA({})", tp_.name)});
        }
    }
    std::vector<timer_entry> crl;
    if (upstream_crl_) {
        crl.push_back({crl_next_update(upstream_crl_.get()),
                       fmt::format("CRL EXPIRE {}",
                                   ios_name(X509_CRL_get_issuer(upstream_crl_.get()), ','))});
    }
    std::vector<timer_entry> cs;
    if (id.upstream())
        cs.push_back({not_after(id.upstream()->ca.get()), "CS CERT EXPIRE"});
    return timer_section("PKI Timers", std::move(pki), now) +
           timer_section("Expiry Alert Timers", std::move(alerts), now) +
           timer_section("CRL Timers", std::move(crl), now) +
           timer_section("CS Timers", std::move(cs), now);
}

}  // namespace pkisim::scep
