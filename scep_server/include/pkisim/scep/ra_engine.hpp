// The RA engine of the lab server (`mode ra`, ios-pki-model.md §1 rule 8, ios-pki-research.md
// §5): a registration authority in front of an issuing CA reached over SCEP (this project's CA
// or any SCEP CA). It enrolls its own RA certificate upstream at first start, then serves
// clients: GetCACert answers CA + RA, clients encrypt to the RA, the RA checks the challenge and
// its grant mode, re-signs the client's CSR with its RA key, forwards it to the CA and relays
// the answer (SUCCESS / PENDING / FAILURE, and later CertPolls).
//
//   engine_options o;                      // o.server.mode_ra, o.ra_trustpoint (enrollment url)
//   ra_engine ra{o, clock};                // loads DIR/pkisim.db or enrolls the RA certificate
//   if (!ra.ra_ready()) std::cout << ra.status_text();   // "RA certificate pending at the CA"
//   http_answer a = ra.pki_operation(der); // CertRep signed by the RA key
//
// State in DIR/pkisim.db (scep::store): meta holds the RA key (encrypted with the passphrase),
// the RA certificate and the upstream answers; the CA certificate is a CA generation without a
// key; client requests are store requests (pending = waiting for the RA operator, granted =
// forwarded and pending at the CA, issued = relayed SUCCESS, rejected = refused by the RA or the
// CA). Everything survives a restart.
//
// Not thread-safe: the server runs it on its single engine thread. Upstream calls block that
// thread, each bounded by engine_options::upstream_timeout (connect) and twice that (answer).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pkisim/scep/client.hpp"
#include "pkisim/scep/codec.hpp"
#include "pkisim/scep/openssl.hpp"
#include "pkisim/scep/service.hpp"
#include "pkisim/scep/store.hpp"
#include "pkisim/timers/client_model.hpp"
#include "pkisim/timers/clock.hpp"
#include "pkisim/timers/config.hpp"
#include "pkisim/timers/timeline.hpp"

namespace pkisim::scep {

// IOS convention for RA certificate subjects (ios-pki-research.md §5, S7 golden output).
inline constexpr std::string_view ra_subject_marker = "OU=ioscs RA";

// The subject the RA requests: the trustpoint's `subject-name`, with OU=ioscs RA appended when
// missing (`added` tells), or "CN=<server name>,OU=ioscs RA".
std::string ra_request_subject(std::string_view server_name, std::string_view subject_name,
                               bool* added = nullptr);

class ra_engine final : public scep_service {
  public:
    // Opens DIR/pkisim.db; on first start generates (or takes) the RA key and enrolls the RA
    // certificate upstream (a PENDING answer is polled on tick()). Throws startup_error
    // (configuration, wrong passphrase, foreign data folder, store failure). An unreachable
    // CA is not a start-up error: the RA answers 503 and retries on tick().
    ra_engine(engine_options options, const timers::clock& clock);
    ~ra_engine() override;
    ra_engine(const ra_engine&) = delete;
    ra_engine& operator=(const ra_engine&) = delete;

    http_answer get_ca_cert() override;
    http_answer get_ca_caps() override;
    http_answer get_next_ca_cert() override;
    http_answer pki_operation(byte_view der) override;
    // grant all|ID, reject all|ID, password generate [MINUTES], show server|requests|
    // certificates|timers.
    admin_result admin(std::string_view line) override;
    // RA enrollment polls (every `enrollment retry period`), forwards that failed to reach the
    // CA, request expiry.
    time_point tick() override;

    X509* ca_certificate() const override;  // the upstream CA's (nullptr before GetCACert)
    const engine_options& options() const override { return options_; }

    // Facts for tests and the CLI.
    bool ra_ready() const { return ra_cert_ != nullptr; }
    X509* ra_certificate() const { return ra_cert_.get(); }
    // One line: "RA certificate pending at the CA http://... (request ...)", "RA certificate
    // CN=..., issued by CN=...", ...
    std::string status_text() const;
    // Notes for the start-up output (e.g. "OU=ioscs RA added to the subject").
    const std::vector<std::string>& notes() const { return notes_; }
    std::string upstream_url() const;
    store& database() { return *store_; }
    // RA rollover (model rule 8): the RA's own SHADOW state machine (timers::shadow_step).
    timers::shadow_state shadow_state() const { return shadow_state_; }
    bool has_shadow() const { return shadow_ca_ && shadow_ra_cert_; }

  private:
    struct upstream_reply {
        pki_status status = pki_status::failure;
        x509_ptr cert;
        fail_info failure = fail_info::bad_request;
        std::string text;
        bool unreachable = false;  // network / HTTP / unreadable answer: try again later
    };

    void load_or_create_key();
    void load_state();
    bool fetch_ca();  // GetCACaps + GetCACert upstream; false when unreachable
    void try_enroll_ra(time_point now);
    void store_ra_cert(x509_ptr cert);
    scep_client make_client() const;

    http_answer not_ready() const;
    http_answer reply(cert_rep_params params, std::string detail);
    http_answer fail(const reply_context& ctx, fail_info info, std::string text);
    http_answer enroll(const pki_request& req, time_point now);
    http_answer poll(const pki_request& req, time_point now);
    http_answer answer(const pki_request& req, request_record r, time_point now);
    // Forwards request `r` upstream (PKCSReq signed by the RA) or, when already forwarded,
    // polls the CA once. Updates the store.
    upstream_reply forward(request_record& r, time_point now);
    upstream_reply record_reply(request_record& r, client_result<enroll_result> res);

    // RA rollover (model rule 8, ios-pki-research.md §5).
    void load_shadow();
    std::optional<time_point> own_timer(timers::renewal_kind kind) const;
    std::optional<time_point> shadow_timer() const;  // the RA's SHADOW point (timers/)
    // §2 timer 1 for the RA certificate itself (it ends before the CA): RENEW point.
    std::optional<time_point> renew_timer() const;
    // Renews the RA certificate with the current CA (same key, IOS without `regenerate`;
    // signed with the current RA certificate).
    void renew_ra(time_point now);
    // One upstream step of a request for an RA certificate for `key`, signed with the current
    // RA certificate, sent to `to`: a PKCSReq, or one CertPoll while meta `pending_meta` holds
    // its transactionID (kept there while PENDING, cleared on SUCCESS / FAILURE).
    client_result<enroll_result> request_signed_by_ra(std::string_view pending_meta, EVP_PKEY* key,
                                                      const ca_certs& to);
    pending_enrollment upstream_pending(std::string tx, const X509_NAME* subject,
                                        EVP_PKEY* key) const;
    // One step of the RA's shadow state machine: GetNextCACert upstream, then its rollover RA
    // certificate (new key, signed with the current RA certificate, encrypted to the shadow
    // CA). Returns a line for the operator.
    std::string shadow_attempt(time_point now);
    void switchover(time_point now);
    // The upstream certificates a request goes to: the shadow CA for rollover requests.
    const ca_certs& upstream_for(const request_record& r) const;

    std::string grant(std::string_view what, time_point now);
    std::string reject(std::string_view what);
    std::string show_server();
    std::string show_requests();
    std::string show_certificates();
    std::string show_timers(time_point now);

    engine_options options_;
    const timers::clock& clock_;
    std::unique_ptr<store> store_;
    timers::trustpoint_config tp_;
    std::string subject_;  // what the RA certificate request asks for
    std::vector<std::string> notes_;

    evp_pkey_ptr ra_key_;
    x509_ptr ra_cert_;
    std::optional<ca_certs> upstream_ca_;  // GetCACert upstream (CA [+ its RA])
    std::optional<ca_caps> upstream_caps_;
    // RA enrollment: last attempt's outcome and when to try/poll again.
    std::string ra_state_text_;
    time_point next_ra_attempt_{};

    timers::client_model model_;  // the 20 s retry on 404 (ios-pki-model.md §2.3)
    timers::shadow_state shadow_state_ = timers::shadow_state::idle;
    time_point next_shadow_attempt_{};
    time_point next_renew_attempt_{};
    std::string renew_text_;
    std::string shadow_text_;
    x509_ptr shadow_ca_;
    std::optional<ca_certs> shadow_upstream_;  // {shadow CA}: rollover requests go there
    evp_pkey_ptr shadow_ra_key_;
    x509_ptr shadow_ra_cert_;
    // The signer of the reply being built (set by pki_operation; non-owning).
    X509* reply_cert_ = nullptr;
    EVP_PKEY* reply_key_ = nullptr;
    X509* reply_ca_ = nullptr;
};

}  // namespace pkisim::scep
