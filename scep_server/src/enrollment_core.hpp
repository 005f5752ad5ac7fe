// The one enrollment core of the lab server, shared by the CA (`ca_engine`) and the RA
// (`ra_engine`), in the shape micromdm/scep uses (architecture.md, last section): the
// PKIOperation service (decode, dispatch, enroll / poll / re-send, CertRep building), the
// operator command table (`grant`, `reject`, `password`, ... with the `all|ID` selection) and the
// calls into the written-once policy (policy.hpp). What differs between the modes is a signer
// strategy: `ca_issuer` (this CA issues the certificate) or `ra_forwarder` (the RA re-signs the
// CSR and forwards it upstream). The reply signer is a value chosen per request, never state.
//
//   ca_issuer issuer{*this};                                 // the strategy (engine internals)
//   enrollment_core core{issuer, db, options, clock};
//   core.add_command("revoke", [&](auto args, auto now) { ... });
//   http_answer a = core.pki_operation(der, now);           // CertRep SUCCESS/PENDING/FAILURE
//   admin_result r = core.admin("grant all", now);
//
// Not thread-safe: the server runs it on its single engine thread. Internal to pkisim::scep.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pkisim/scep/codec.hpp"
#include "pkisim/scep/openssl.hpp"
#include "pkisim/scep/policy.hpp"
#include "pkisim/scep/service.hpp"
#include "pkisim/scep/store.hpp"
#include "pkisim/timers/clock.hpp"

namespace pkisim::scep::detail {

// Who signs the reply to one request, chosen from the key the request was encrypted to.
struct reply_signer {
    X509* cert = nullptr;
    EVP_PKEY* key = nullptr;
    // The certificate above the signer, sent in every reply's certificates and, with
    // include_ca_in_success, in SUCCESS content (the RA's CA). nullptr: the signer is the CA.
    X509* above = nullptr;
    // Which CA generation the request is addressed to (model rule 6); requests match re-sends
    // and polls only within one generation.
    int generation = 0;
    bool rollover = false;  // encrypted to the shadow CA / the rollover RA certificate
};

// The outcome of granting (issuing or forwarding) or of looking up a granted request.
struct fulfilment {
    pki_status status = pki_status::pending;
    x509_ptr cert;  // SUCCESS
    fail_info failure = fail_info::bad_request;
    std::string text;  // FAILURE text, or why PENDING
};

// What the CA and the RA do differently.
class signer_strategy {
  public:
    virtual ~signer_strategy() = default;
    // "CA" or "RA" (texts).
    virtual std::string_view role() const = 0;
    // The keys requests may be encrypted to: index 0 the current one, 1 the rollover one.
    virtual std::vector<decryption_key> decryption_keys() const = 0;
    virtual reply_signer signer_for(std::size_t recipient_index) const = 0;
    // The CA certificates whose issued certificates may sign renewals (scep-wire §0.12).
    virtual std::vector<X509*> renewal_anchors() const = 0;
    // The certificate claims to be issued by our CA (its issuer name), whether it verifies or
    // not: a PKCSReq signed by it that does not verify is a refused renewal, not an enrollment.
    virtual bool claims_our_issuer(X509* signer) const = 0;
    // Revocation of a renewal signer the anchors vouch for (policy item 1): the CA reads its
    // database; an RA asks its CA for the CRL (GetCRL), since the CA only sees the RA's
    // signature on what the RA forwards.
    virtual revocation_knowledge revocation(X509* signer, time_point now) = 0;
    // Only the CA: whether a certificate is an RA certificate we issued (research §5).
    virtual bool is_ra_certificate(X509* /*signer*/) const { return false; }
    // Grant `r` now: issue it (CA) or forward it (RA). Updates the store.
    virtual fulfilment grant(request_record& r, time_point now) = 0;
    // A granted or issued request asked again (poll, re-send): its certificate, or (RA) one
    // more upstream poll.
    virtual fulfilment retrieve(request_record& r, time_point now) = 0;
    // GetCert / GetCRL (RFC 8894 §3.3.4-5).
    virtual http_answer get_cert(const pki_request& req, const reply_signer& s, time_point now) = 0;
    virtual http_answer get_crl(const pki_request& req, const reply_signer& s, time_point now) = 0;
    // One line of `grant` output for a granted request.
    virtual std::string granted_line(const request_record& r, const fulfilment& f) const = 0;
    // The store's request as the `grant` / tick code wants it marked before grant(); the RA
    // marks it `granted` (forwarded), the CA leaves it pending until issued.
    virtual void before_grant(request_record& /*r*/) {}
    // Whether grant() issues here, with no network I/O (the CA): the core then commits the
    // request row and its certificate in one transaction (issue 13 §2).
    virtual bool issues_locally() const { return false; }
};

// Issue 12 §3: a CertRep decided on the engine thread and signed (and encrypted) later, on a
// worker, once the batch that decided it has committed (enrollment_engine::pki_process). It
// holds its own references to every certificate and key the CertRep needs, so a rollover or a
// switchover on the engine thread meanwhile cannot free them. `ready` is an answer that needs
// no signing (HTTP 400/500, or one already encoded: GetCert, GetCRL).
struct deferred_reply {
    std::optional<http_answer> ready;
    cert_rep_params params;
    std::string detail;
    std::vector<x509_ptr> held_certs;
    std::vector<evp_pkey_ptr> held_keys;
    std::vector<x509_crl_ptr> held_crls;

    deferred_reply() = default;
    deferred_reply(http_answer a) : ready(std::move(a)) {}  // NOLINT: implicit on purpose
    deferred_reply(cert_rep_params p, std::string d);       // takes references (share)
    // Signs and encodes (any thread): cert_rep_answer.
    http_answer finish() &&;
};

// One operator command: its arguments (the words after the name) -> {ok, text}.
using admin_handler =
    std::function<admin_result(std::span<const std::string_view> args, time_point now)>;

class enrollment_core {
  public:
    enrollment_core(signer_strategy& strategy, store& db, const engine_options& options,
                    const timers::clock& clock);

    // The PKIOperation service (RFC 8894 §3): decode with the strategy's keys, dispatch by
    // messageType, answer with a CertRep signed by the reply signer.
    http_answer pki_operation(byte_view der, time_point now);
    // The same in stages (issue 12 §3). decode_keys/decode_opts: what decode_pki_message needs
    // (engine thread: the keys belong to the mode). operate: everything after decoding, on the
    // engine thread, inside the caller's transaction when the mode issues locally; the CertRep
    // is signed later (deferred_reply::finish).
    std::vector<decryption_key> decode_keys() const { return strategy_.decryption_keys(); }
    decode_options decode_opts() const;
    deferred_reply operate(tl::expected<pki_request, decode_failure> req, time_point now);
    bool issues_locally() const { return strategy_.issues_locally(); }

    // The operator command table. Built in: grant all|ID, reject all|ID, password generate
    // [MINUTES]. Each mode adds its own (revoke, rollover, show ...).
    void add_command(std::string name, admin_handler handler);
    admin_result admin(std::string_view line, time_point now);

    // `all|ID`: the pending requests named, or the IOS message for none.
    struct selection {
        std::vector<request_record> requests;
        std::string error;  // "% Request 7 is not pending\n" / "% No pending requests\n"
    };
    selection select_pending(std::string_view what);

    // CertRep answers signed by `s`.
    http_answer fail(const reply_context& ctx, const reply_signer& s, fail_info info,
                     std::string text, time_point now);
    http_answer pending(const reply_context& ctx, const reply_signer& s, std::string detail,
                        time_point now);
    http_answer success(const reply_context& ctx, const reply_signer& s, X509* cert,
                        std::string detail, time_point now);

  private:
    deferred_reply enroll(const pki_request& req, const reply_signer& s, time_point now);
    deferred_reply poll(const pki_request& req, const reply_signer& s, time_point now);
    deferred_reply answer_existing(const pki_request& req, const reply_signer& s,
                                   request_record r, time_point now);
    // The deferred forms of fail / pending / success.
    deferred_reply later_fail(const reply_context& ctx, const reply_signer& s, fail_info info,
                              std::string text, time_point now);
    deferred_reply later_pending(const reply_context& ctx, const reply_signer& s,
                                 std::string detail, time_point now);
    deferred_reply later_success(const reply_context& ctx, const reply_signer& s, X509* cert,
                                 std::string detail, time_point now);
    std::string grant(std::string_view what, time_point now);
    std::string reject(std::string_view what);

    signer_strategy& strategy_;
    store& db_;
    const engine_options& options_;
    const timers::clock& clock_;
    struct command {
        std::string name;
        admin_handler run;
    };
    std::vector<command> commands_;
};

// The meta key of a per-request fact ("req:12:fail").
std::string request_meta(std::int64_t id, std::string_view what);

}  // namespace pkisim::scep::detail
