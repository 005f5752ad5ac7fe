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
#include "pkisim/scep/ca_engine.hpp"  // ios_countdown (show timers layout)
#include "pkisim/scep/crypto.hpp"
#include "pkisim/timers/timeline.hpp"

namespace pkisim::scep {

using namespace detail;  // engine_text.hpp: what the CA and RA engines share

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

// Meta keys of the RA's state in the store.
constexpr std::string_view meta_mode = "mode";
constexpr std::string_view meta_name = "server_name";
constexpr std::string_view meta_ra_key = "ra_key";
constexpr std::string_view meta_ra_cert = "ra_cert";
constexpr std::string_view meta_ra_pending_tx = "ra_pending_tx";
constexpr std::string_view meta_upstream_certs = "upstream_ca_certs";
constexpr std::string_view meta_upstream_caps = "upstream_caps";
constexpr std::string_view meta_renew_pending_tx = "ra_renew_pending_tx";
constexpr std::string_view meta_shadow_ca = "shadow_ca";
constexpr std::string_view meta_shadow_ra_key = "shadow_ra_key";
constexpr std::string_view meta_shadow_ra_cert = "shadow_ra_cert";
constexpr std::string_view meta_shadow_ra_pending_tx = "shadow_ra_pending_tx";
// Upstream calls from the engine thread: one request, no client-side polling loop and no
// sleeping (the RA polls on its own tick, every `enrollment retry period`).
poll_options one_exchange() {
    poll_options once;
    once.max_polls = 0;
    once.sleep = [](std::chrono::milliseconds) {};
    return once;
}

std::string req_meta(std::int64_t id, std::string_view what) {
    return fmt::format("req:{}:{}", id, what);
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

ra_engine::ra_engine(engine_options options, const timers::clock& clock)
    : options_(std::move(options)), clock_(clock) {
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
    std::error_code ec;
    std::filesystem::create_directories(options_.data_dir, ec);
    if (ec) {
        throw startup_error(exit_status::store,
                            fmt::format("cannot create data folder {}: {}",
                                        options_.data_dir.string(), ec.message()));
    }
    ::chmod(options_.data_dir.c_str(), 0700);
    try {
        store_ = std::make_unique<store>(options_.data_dir / "pkisim.db");
        load_or_create_key();
        load_state();
        load_shadow();
        if (!ra_cert_)
            try_enroll_ra(clock_.now());
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
    return upstream_ca_ ? upstream_ca_->ca.get() : nullptr;
}

void ra_engine::load_or_create_key() {
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
    if (auto pem = store_->meta(meta_ra_key)) {
        auto key = decrypt_private_key_pem(*pem, options_.passphrase);
        if (!key) {
            if (key.error() == make_error_code(error::wrong_passphrase)) {
                throw startup_error(
                    exit_status::wrong_passphrase,
                    "wrong passphrase for the RA key in " + options_.data_dir.string());
            }
            throw startup_error(exit_status::store,
                                "the stored RA key is unusable: " + key.error().message());
        }
        ra_key_ = std::move(*key);
        return;
    }
    if (options_.passphrase.empty())
        throw startup_error(exit_status::config, "an empty passphrase cannot protect the RA key");
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

void ra_engine::load_state() {
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

scep_client ra_engine::make_client() const {
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

bool ra_engine::fetch_ca() {
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

void ra_engine::try_enroll_ra(time_point now) {
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

void ra_engine::store_ra_cert(x509_ptr cert) {
    if (!cert || !same_public_key(X509_get0_pubkey(cert.get()), ra_key_.get())) {
        ra_state_text_ = "the CA answered with a certificate for another key";
        return;
    }
    store_->set_meta(meta_ra_cert, to_pem(cert.get()));
    store_->set_meta(meta_ra_pending_tx, "");
    ra_cert_ = std::move(cert);
    ra_state_text_ = "enrolled";
}

std::string ra_engine::status_text() const {
    if (ra_cert_) {
        return fmt::format("RA certificate {} (serial {}), issued by {}, valid until {}",
                           subject_string(ra_cert_.get()), serial_hex(ra_cert_.get()),
                           issuer_string(ra_cert_.get()),
                           timers::to_ios_time(not_after(ra_cert_.get())));
    }
    return ra_state_text_.empty() ? "RA certificate not enrolled yet" : ra_state_text_;
}

time_point ra_engine::tick() {
    const time_point now = clock_.now();
    auto next = now + timers::minutes{1};
    try {
        store_->expire_requests(now);
        if (!ra_cert_) {
            if (now >= next_ra_attempt_)
                try_enroll_ra(now);
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
        // this round; each call is bounded by upstream_timeout).
        for (auto& r : store_->requests()) {
            if (r.state != request_state::granted || store_->meta(req_meta(r.id, "tx")))
                continue;
            if (forward(r, now).unreachable)
                break;
        }
    } catch (const std::exception&) {
        // Store trouble: try again at the next tick; SCEP answers report it as 500.
    }
    return next;
}

// ---------------------------------------------------------------------------------------------
// SCEP operations.

http_answer ra_engine::not_ready() const {
    // Clients retry on 503; the text says why (the RA certificate is pending at the CA).
    return {503, "text/plain", fmt::format("RA not ready: {}\n", status_text()), false,
            "RA not ready"};
}

http_answer ra_engine::get_ca_cert() {
    if (!ra_cert_ || !upstream_ca_)
        return not_ready();
    // scep-wire §1.6: CA + RA as a degenerate SignedData; clients pick the RA by keyUsage.
    std::vector<X509*> certs{upstream_ca_->ca.get(), ra_cert_.get()};
    const bytes der = degenerate_certs_only(certs);
    return {200, "application/x-x509-ca-ra-cert", std::string{der.begin(), der.end()}, false, ""};
}

http_answer ra_engine::get_ca_caps() {
    // What the upstream supports that the RA supports: the client's cipher and digest travel
    // only to the RA, but clients expect an RA to reflect its CA's algorithms. When the CA
    // lists nothing we know (old NDES: no GetCACaps), the RA's own list.
    std::string body;
    std::string fallback;
    // Model rule 5 via rule 8: GetNextCACert once the RA itself has the shadow CA and its
    // rollover RA certificate.
    if (has_shadow())
        body += "GetNextCACert\n";
    for (auto k : ra_caps) {
        fallback += std::string{k} + "\n";
        bool upstream = true;
        if (upstream_caps_ && !upstream_caps_->keywords.empty()) {
            const bool standard = upstream_caps_->has("SCEPStandard");
            upstream = upstream_caps_->has(k) ||
                       (standard && (k == "AES" || k == "POSTPKIOperation" || k == "SHA-256"));
        }
        if (upstream)
            body += std::string{k} + "\n";
    }
    if (body.empty() || body == "GetNextCACert\n")
        body += fallback;
    return {200, "text/plain", body, false, ""};
}

http_answer ra_engine::get_next_ca_cert() {
    if (ra_cert_ && has_shadow()) {
        // Rule 4: signed by the CURRENT RA key, shadow CA + shadow RA in content and outer set.
        std::vector<X509*> next{shadow_ca_.get(), shadow_ra_cert_.get()};
        auto der =
            encode_get_next_ca_cert(next, ra_cert_.get(), ra_key_.get(), NID_sha256, clock_.now());
        if (!der) {
            return {500, "text/plain", "internal error\n", false,
                    "encode GetNextCACert: " + der.error().message()};
        }
        return {200, "application/x-x509-next-ca-cert", std::string{der->begin(), der->end()},
                false, "shadow CA + shadow RA"};
    }
    // Model rule 8: until the RA has fetched the CA's shadow (and its own rollover RA
    // certificate), clients get the IOS-exact 404 even when the CA has a shadow.
    return ios_not_found("RA has no rollover CA certificate");
}

http_answer ra_engine::reply(cert_rep_params params, std::string detail) {
    return cert_rep_answer(std::move(params), std::move(detail));
}

http_answer ra_engine::fail(const reply_context& ctx, fail_info info, std::string text) {
    auto detail = fmt::format("FAILURE {}: {}", to_string(info), text);
    auto p = failure_for(ctx, reply_cert_, reply_key_, info, std::move(text), clock_.now());
    if (reply_ca_)
        p.extra_certs.push_back(reply_ca_);
    return reply(std::move(p), std::move(detail));
}

http_answer ra_engine::pki_operation(byte_view der) {
    if (!ra_cert_ || !upstream_ca_)
        return not_ready();
    const time_point now = clock_.now();
    // Rule 6 via rule 8: a request encrypted to the shadow RA (index 1) is a rollover request.
    std::vector<decryption_key> keys{{ra_cert_.get(), ra_key_.get()}};
    if (has_shadow())
        keys.push_back({shadow_ra_cert_.get(), shadow_ra_key_.get()});
    decode_options opts;
    opts.allow_legacy = options_.legacy_crypto;
    auto req = decode_pki_message(der, keys, opts);
    // Who signs the reply: the rollover RA when the request was encrypted to it (as the CA's
    // shadow answers rollover requests, rule 6), else the current RA.
    reply_cert_ = ra_cert_.get();
    reply_key_ = ra_key_.get();
    reply_ca_ = upstream_ca_->ca.get();
    if (req && req->recipient_index == 1 && has_shadow()) {
        reply_cert_ = shadow_ra_cert_.get();
        reply_key_ = shadow_ra_key_.get();
        reply_ca_ = shadow_ca_.get();
    }
    if (!req) {
        const auto& f = req.error();
        const auto w = to_wire(f);
        if (w.failure && f.context)
            return fail(*f.context, *w.failure, f.text);
        const unsigned status = w.http_status == 200 ? 400 : w.http_status;
        return {status, "text/plain", f.text + "\n", false, "malformed: " + f.text};
    }
    try {
        switch (req->type) {
            case message_type::pkcs_req:
            case message_type::renewal_req:
                return enroll(*req, now);
            case message_type::cert_poll:
                return poll(*req, now);
            case message_type::get_cert:
            case message_type::get_crl:
                // The RA issues nothing and holds no CRL: clients fetch those from the CA
                // (its CDP). IOS RAs answer these from the CA's data; we do not relay them.
                return fail(
                    req->context(), fail_info::bad_request,
                    fmt::format("{} is not relayed by this RA; ask the CA", to_string(req->type)));
            case message_type::cert_rep:
                break;
        }
        return fail(req->context(), fail_info::bad_request, "unexpected messageType");
    } catch (const std::exception& e) {
        return {500, "text/plain", "internal error\n", false, std::string{"internal: "} + e.what()};
    }
}

http_answer ra_engine::enroll(const pki_request& req, time_point now) {
    const auto ctx = req.context();
    const csr_request* csr = req.csr();
    if (!csr)
        return fail(ctx, fail_info::bad_request, "no CSR");

    // scep-wire §0.12: a renewal is a request signed by a certificate of our CA.
    bool renewal = false;
    if (!req.signer_is_self_signed) {
        std::array<X509*, 1> trusted{upstream_ca_->ca.get()};
        auto chain = verify_signer_chain(req.signer.get(), trusted, now);
        if (chain) {
            renewal = true;
        } else if (req.type == message_type::renewal_req) {
            return fail(ctx, fail_info_for(chain.error()),
                        fmt::format("renewal signer rejected: {}", chain.error().message()));
        }
    } else if (req.type == message_type::renewal_req) {
        return fail(ctx, fail_info::bad_request, "RenewalReq signed by a self-signed certificate");
    }

    const std::string signer_key = key_hash(req.signer.get());
    // scep-wire §0.11/§0.13: the same (transactionID, key, CSR) again is a poll (micromdm
    // re-sends its PKCSReq); another CSR under a pending transactionID is refused.
    for (auto& r : store_->requests_by_transaction(req.transaction_id)) {
        if (r.signer_key_hash != signer_key)
            continue;
        if (r.csr_der == csr->der && r.renewal == renewal)
            return answer(req, std::move(r), now);
        if (r.state == request_state::pending && now < r.expires) {
            return fail(ctx, fail_info::bad_request,
                        fmt::format("transactionID already used by pending request {} with "
                                    "another CSR",
                                    r.id));
        }
    }

    bool one_time_password = false;
    if (!renewal) {
        if (csr->challenge_password) {
            const auto& pw = *csr->challenge_password;
            if (options_.challenge && pw == *options_.challenge) {
                // static password
            } else if (store_->consume_password(pw, now)) {
                one_time_password = true;
            } else {
                return fail(ctx, fail_info::bad_request, "wrong or expired challenge password");
            }
        } else if (options_.challenge) {
            return fail(ctx, fail_info::bad_request, "challenge password required");
        }
    }
    const auto mode = options_.server.grant;
    if (mode == timers::grant_mode::none && !one_time_password)
        return fail(ctx, fail_info::bad_request, "request rejected by the RA (grant none)");

    request_record r;
    r.transaction_id = req.transaction_id;
    r.signer_key_hash = signer_key;
    r.signer_cert_hash = sha256_fingerprint(req.signer.get());
    r.state = request_state::pending;
    r.csr_der = csr->der;
    r.subject = csr->subject;
    r.fingerprint = md5_upper_hex(csr->der);
    r.renewal = renewal;
    r.created = now;
    r.expires = now + options_.server.enrollment_request_lifetime;
    r.id = store_->add_request(r);
    if (req.recipient_index == 1)
        store_->set_meta(req_meta(r.id, "rollover"), "1");
    // `grant auto` (or a one-time password) forwards at once; otherwise the RA operator
    // decides (`pkisim ca --data RA_DIR grant ID|all`). `grant ra-auto` is a CA setting: on an
    // RA it holds requests like manual.
    if (mode == timers::grant_mode::auto_grant || one_time_password) {
        store_->set_request_state(r.id, request_state::granted);
        r.state = request_state::granted;
    }
    return answer(req, std::move(r), now);
}

http_answer ra_engine::poll(const pki_request& req, time_point now) {
    auto rows = store_->requests_by_transaction(req.transaction_id);
    if (rows.empty())
        return fail(req.context(), fail_info::bad_request, "CertPoll for an unknown transactionID");
    const std::string signer_key = key_hash(req.signer.get());
    for (auto& r : rows) {
        if (r.signer_key_hash == signer_key)
            return answer(req, std::move(r), now);
    }
    return answer(req, std::move(rows.front()), now);
}

http_answer ra_engine::answer(const pki_request& req, request_record r, time_point now) {
    const auto ctx = req.context();
    const std::string type_name{to_string(req.type)};
    auto pending = [&](std::string why) {
        auto p = pending_for(ctx, reply_cert_, reply_key_, now);
        p.extra_certs.push_back(reply_ca_);
        return reply(std::move(p),
                     fmt::format("{} PENDING request {} ({})", type_name, r.id, std::move(why)));
    };
    auto success = [&](X509* cert) {
        auto p = success_for(ctx, reply_cert_, reply_key_, {cert}, now);
        p.extra_certs.push_back(reply_ca_);
        if (options_.include_ca_in_success)
            p.issued.push_back(reply_ca_);
        return reply(std::move(p), fmt::format("{} SUCCESS serial {} (request {}, from the CA)",
                                               type_name, serial_hex(cert), r.id));
    };
    if (r.state == request_state::pending && now >= r.expires) {
        store_->set_request_state(r.id, request_state::expired);
        r.state = request_state::expired;
    }
    switch (r.state) {
        case request_state::pending:
            return pending("waiting for the RA operator");
        case request_state::granted: {
            auto u = forward(r, now);
            if (u.status == pki_status::success && u.cert)
                return success(u.cert.get());
            if (u.status == pki_status::failure && !u.unreachable)
                return fail(ctx, u.failure, u.text);
            return pending(u.unreachable ? "CA unreachable: " + u.text : "pending at the CA");
        }
        case request_state::issued: {
            auto pem = store_->meta(req_meta(r.id, "cert"));
            auto cert =
                pem ? x509_from_pem(*pem) : tl::unexpected(make_error_code(error::internal));
            if (!cert)
                return fail(ctx, fail_info::bad_request, "relayed certificate missing");
            return success(cert->get());
        }
        case request_state::rejected: {
            // "<failInfo>\n<text>" as the CA (or the RA operator) answered.
            const auto f = store_->meta(req_meta(r.id, "fail")).value_or("2\nrejected by the RA");
            const auto nl = f.find('\n');
            const auto code = parse_u64(f.substr(0, nl)).value_or(2);
            const auto info = code <= 4 ? static_cast<fail_info>(code) : fail_info::bad_request;
            return fail(ctx, info,
                        nl == std::string::npos ? std::string{"rejected"} : f.substr(nl + 1));
        }
        case request_state::expired:
            return fail(ctx, fail_info::bad_request, fmt::format("request {} expired", r.id));
    }
    return fail(ctx, fail_info::bad_request, "unknown request state");
}

ra_engine::upstream_reply ra_engine::forward(request_record& r, time_point /*now*/) {
    auto csr = x509_req_from_der(r.csr_der);
    if (!csr) {
        upstream_reply u;
        u.text = "stored CSR unreadable";
        return u;
    }
    const auto c = make_client();
    poll_options once = one_exchange();
    const auto tx = store_->meta(req_meta(r.id, "tx"));
    if (!tx) {
        // A new upstream transactionID per RA request: a client's own transactionID may repeat
        // (scep-wire §0.11), and a re-sent identical PKCSReq after a crash is answered by the
        // CA as a poll (same ID, same CSR).
        bytes seed = r.csr_der;
        const auto id = std::to_string(r.id);
        seed.insert(seed.end(), id.begin(), id.end());
        enroll_request e;
        e.forward_csr = csr->get();
        e.ra_cert = ra_cert_.get();
        e.ra_key = ra_key_.get();
        e.transaction_id = digest_hex(seed, EVP_sha1());
        return record_reply(r, c.enroll(e, *upstream_caps_, upstream_for(r), once));
    }
    auto p = upstream_pending(*tx, X509_REQ_get_subject_name(csr->get()),
                              X509_REQ_get0_pubkey(csr->get()));
    once.max_polls = 1;
    return record_reply(r, c.poll(p, *upstream_caps_, upstream_for(r), once));
}

const ca_certs& ra_engine::upstream_for(const request_record& r) const {
    // A client's rollover request goes to the shadow CA, encrypted to it (model rule 6); after
    // the switchover the shadow is the current CA.
    if (shadow_upstream_ && store_->meta(req_meta(r.id, "rollover")))
        return *shadow_upstream_;
    return *upstream_ca_;
}

ra_engine::upstream_reply ra_engine::record_reply(request_record& r,
                                                  client_result<enroll_result> res) {
    upstream_reply u;
    if (!res) {
        const auto& f = res.error();
        u.text = f.message();
        if (f.code == client_error::scep_failure) {
            u.status = pki_status::failure;
            u.failure = f.failure.value_or(fail_info::bad_request);
            u.text = fmt::format("the CA refused the request: {}", f.text);
            store_->set_meta(req_meta(r.id, "fail"),
                             fmt::format("{}\n{}", static_cast<int>(u.failure), u.text));
            store_->set_request_state(r.id, request_state::rejected);
            r.state = request_state::rejected;
        } else {
            u.unreachable = true;
        }
        return u;
    }
    store_->set_meta(req_meta(r.id, "tx"), res->transaction_id);
    if (res->status == pki_status::pending) {
        u.status = pki_status::pending;
        return u;
    }
    store_->set_meta(req_meta(r.id, "cert"), to_pem(res->cert.get()));
    store_->set_request_state(r.id, request_state::issued);
    r.state = request_state::issued;
    u.status = pki_status::success;
    u.cert = std::move(res->cert);
    return u;
}

// ---------------------------------------------------------------------------------------------
// RA rollover (model rule 8; ios-pki-research.md §5): the RA learns of the CA's shadow only by
// asking (GetNextCACert) on its own SHADOW timer or on `rollover`, then enrolls its rollover RA
// certificate with the shadow CA before it answers clients' GetNextCACert.

void ra_engine::load_shadow() {
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

std::optional<time_point> ra_engine::own_timer(timers::renewal_kind kind) const {
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

std::optional<time_point> ra_engine::shadow_timer() const {
    return own_timer(timers::renewal_kind::shadow);
}

std::string ra_engine::shadow_attempt(time_point now) {
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

std::optional<time_point> ra_engine::renew_timer() const {
    return own_timer(timers::renewal_kind::renew);
}

void ra_engine::renew_ra(time_point now) {
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

client_result<enroll_result> ra_engine::request_signed_by_ra(std::string_view pending_meta,
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

pending_enrollment ra_engine::upstream_pending(std::string tx, const X509_NAME* subject,
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

void ra_engine::switchover(time_point /*now*/) {
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

// ---------------------------------------------------------------------------------------------
// Operator commands.

admin_result ra_engine::admin(std::string_view line) {
    const time_point now = clock_.now();
    const auto w = words(line);
    if (w.empty())
        return {false, "% empty command\n"};
    try {
        store_->expire_requests(now);
        if (w[0] == "grant" && w.size() == 2)
            return {true, grant(w[1], now)};
        if (w[0] == "reject" && w.size() == 2)
            return {true, reject(w[1])};
        if (w[0] == "password" && w.size() >= 2 && w[1] == "generate")
            return generate_password(*store_, std::span{w}.subspan(2), now);
        if (w[0] == "show" && w.size() == 2) {
            if (w[1] == "server")
                return {true, show_server()};
            if (w[1] == "requests")
                return {true, show_requests()};
            if (w[1] == "certificates")
                return {true, show_certificates()};
            if (w[1] == "timers")
                return {true, show_timers(now)};
        }
        if (w[0] == "revoke")
            return {false, "% An RA cannot revoke: run `revoke` on the issuing CA\n"};
        if (w[0] == "rollover" && w.size() == 1) {
            // Operator `rollover` on the RA: ask the CA for its shadow now (the seed's fix).
            if (!ra_cert_)
                return {false, fmt::format("% No RA certificate yet: {}\n", status_text())};
            if (has_shadow())
                return {true, "% The RA already has the rollover CA and RA certificates\n"};
            shadow_state_ = timers::shadow_state::get_new_ca_cert;
            return {true, shadow_attempt(now)};
        }
    } catch (const std::exception& e) {
        return {false, fmt::format("% internal error: {}\n", e.what())};
    }
    return {false, fmt::format("% Invalid command: {}\n", line)};
}

std::string ra_engine::grant(std::string_view what, time_point now) {
    if (!ra_cert_)
        return fmt::format("% Cannot forward requests: {}\n", status_text());
    std::vector<request_record> targets;
    if (what == "all") {
        for (auto& r : store_->requests()) {
            if (r.state == request_state::pending)
                targets.push_back(std::move(r));
        }
    } else {
        auto id = parse_u64(what);
        auto r = id ? store_->request(static_cast<std::int64_t>(*id)) : std::nullopt;
        if (!r || r->state != request_state::pending)
            return fmt::format("% Request {} is not pending\n", what);
        targets.push_back(std::move(*r));
    }
    if (targets.empty())
        return "% No pending requests\n";
    std::string out;
    for (auto& r : targets) {
        store_->set_request_state(r.id, request_state::granted);
        r.state = request_state::granted;
        const auto u = forward(r, now);
        if (u.status == pki_status::success && u.cert) {
            out += fmt::format("% Granted request {}: forwarded, the CA issued serial {}\n", r.id,
                               serial_hex(u.cert.get()));
        } else if (u.unreachable) {
            out += fmt::format("% Granted request {}: the CA is unreachable ({}); will retry\n",
                               r.id, u.text);
        } else if (u.status == pki_status::pending) {
            out += fmt::format("% Granted request {}: forwarded, pending at the CA\n", r.id);
        } else {
            out += fmt::format("% Granted request {}: {}\n", r.id, u.text);
        }
    }
    return out;
}

std::string ra_engine::reject(std::string_view what) {
    std::vector<request_record> targets;
    if (what == "all") {
        for (auto& r : store_->requests()) {
            if (r.state == request_state::pending)
                targets.push_back(std::move(r));
        }
        if (targets.empty())
            return "% No pending requests\n";
    } else {
        auto id = parse_u64(what);
        auto r = id ? store_->request(static_cast<std::int64_t>(*id)) : std::nullopt;
        if (!r || r->state != request_state::pending)
            return fmt::format("% Request {} is not pending\n", what);
        targets.push_back(std::move(*r));
    }
    std::string out;
    for (const auto& r : targets) {
        store_->set_meta(req_meta(r.id, "fail"), "2\nrejected by the RA operator");
        store_->set_request_state(r.id, request_state::rejected);
        out += fmt::format("% Rejected request {}\n", r.id);
    }
    return out;
}

std::string ra_engine::show_server() {
    // ios-pki-research.md §1.4, RA-mode layout (S7 golden output), plus the upstream lines IOS
    // does not print.
    const auto& s = options_.server;
    std::string out = fmt::format("Certificate Server {}:\n", s.name);
    out += "    Status: enabled\n";
    out += fmt::format("    State: {}\n",
                       ra_cert_ ? "enabled" : "enrolling (RA certificate pending at the CA)");
    out += "    Server's configuration is locked  (enter \"shut\" to unlock it)\n";
    out +=
        fmt::format("    Issuer name: {}\n", ra_cert_ ? subject_string(ra_cert_.get()) : subject_);
    if (upstream_ca_) {
        out +=
            fmt::format("    CA cert fingerprint: {}\n", md5_fingerprint(upstream_ca_->ca.get()));
    }
    out += "    Server configured in RA mode\n";
    if (ra_cert_)
        out += fmt::format("    RA cert fingerprint: {}\n", md5_fingerprint(ra_cert_.get()));
    out += fmt::format("    Granting mode is: {}\n", grant_text(s.grant));
    out += fmt::format("    Current primary storage dir: {}\n", options_.data_dir.string());
    out += fmt::format("    Database Level: {}\n", db_level_text(s.db_level));
    if (has_shadow()) {
        out += "    Rollover status: available for rollover\n";
        out += fmt::format("    Rollover CA cert fingerprint: {}\n",
                           md5_fingerprint(shadow_ca_.get()));
        out += fmt::format("    Rollover RA cert fingerprint: {}\n",
                           md5_fingerprint(shadow_ra_cert_.get()));
        out += fmt::format("    Rollover CA cert expiration time: {}\n",
                           timers::to_ios_time(not_after(shadow_ca_.get())));
    } else if (shadow_state_ != timers::shadow_state::idle) {
        out += fmt::format("    Rollover status: {} ({})\n", timers::to_string(shadow_state_),
                           shadow_text_);
    }
    out += fmt::format("    Issuing CA: {}\n", upstream_url());
    out += fmt::format("    RA status: {}\n", status_text());
    if (!renew_text_.empty())
        out += fmt::format("    RA renewal: {}\n", renew_text_);
    return out;
}

std::string ra_engine::show_requests() {
    // ios-pki-research.md §1.3 layout. granted = forwarded to the CA and pending there.
    std::string rows;
    for (const auto& r : store_->requests())
        rows += request_row(r);
    return "Enrollment Request Database:\n\n" +
           request_section("Router certificates requests", rows);
}

std::string ra_engine::show_certificates() {
    std::string out{certificate_header};
    auto line = [&](X509* c, std::string_view what) {
        out += certificate_row(serial_hex(c), not_before(c), not_after(c), subject_string(c),
                               fmt::format(" ({})", what));
    };
    if (upstream_ca_)
        line(upstream_ca_->ca.get(), "issuing CA");
    if (ra_cert_)
        line(ra_cert_.get(), "RA certificate");
    for (const auto& r : store_->requests()) {
        if (r.state != request_state::issued)
            continue;
        if (auto pem = store_->meta(req_meta(r.id, "cert"))) {
            if (auto c = x509_from_pem(*pem))
                line(c->get(), fmt::format("request {}", r.id));
        }
    }
    return out;
}

std::string ra_engine::show_timers(time_point now) {
    // ios-pki-research.md §3.2 grammar (as ca_engine::show_timers).
    std::vector<timer_entry> pki;
    for (const auto& r : store_->requests()) {
        if (r.state == request_state::pending)
            pki.push_back({r.expires, fmt::format("ER EXPIRE {}", r.id)});
    }
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
    std::vector<timer_entry> cs;
    if (upstream_ca_)
        cs.push_back({not_after(upstream_ca_->ca.get()), "CS CERT EXPIRE"});
    return timer_section("PKI Timers", std::move(pki), now) +
           timer_section("CS Timers", std::move(cs), now);
}

}  // namespace pkisim::scep
