// The RA's own identity (`mode ra`, ios-pki-model.md §1 rule 8, ios-pki-research.md §5): its
// key and RA certificate, the upstream CA's certificates and capabilities, and the lifecycle of
// that certificate, driven by tick(): enrollment at first start (polled every `enrollment retry
// period` while PENDING), the RENEW timer (same key, signed with the current RA certificate),
// the SHADOW timer (GetNextCACert upstream, then a rollover RA certificate for a new key from the
// shadow CA) and the switchover at the CA's notAfter. Client requests are not its business
// (ra_engine + enrollment_core do those).
//
//   ra_identity id{options, trustpoint, subject, db, clock};
//   id.load();                            // key, RA certificate, shadow from DIR/pkisim.db
//   if (!id.ready()) id.try_enroll(now);  // first start
//   time_point next = id.tick(now);       // RENEW, SHADOW, switchover; when it next wants to run
//
// State lives in the store's meta table (keys below in ra_identity.cpp); everything survives a
// restart. Not thread-safe (the engine thread). Upstream calls block, each bounded by
// engine_options::upstream_timeout. Internal to pkisim::scep.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine_text.hpp"
#include "pkisim/scep/client.hpp"
#include "pkisim/scep/openssl.hpp"
#include "pkisim/scep/service.hpp"
#include "pkisim/scep/store.hpp"
#include "pkisim/timers/client_model.hpp"
#include "pkisim/timers/clock.hpp"
#include "pkisim/timers/config.hpp"
#include "pkisim/timers/timeline.hpp"

namespace pkisim::scep::detail {

// Upstream calls from the engine thread: one request, no client-side polling loop and no
// sleeping (the RA polls on its own tick, every `enrollment retry period`).
poll_options one_exchange();

class ra_identity {
  public:
    ra_identity(const engine_options& options, timers::trustpoint_config tp, std::string subject,
                store& db, const timers::clock& clock);

    // Loads (or generates and stores) the RA key, the RA certificate, the upstream CA and the
    // rollover state. Throws startup_error.
    void load();
    // One attempt to get the RA certificate (GetCACaps + GetCACert first when needed).
    void try_enroll(time_point now);
    // Enrollment polls, RENEW, SHADOW, switchover when due. Returns when it next wants to run
    // (never later than `next`).
    time_point tick(time_point now, time_point next);
    // Operator `rollover` on the RA: ask the CA for its shadow now (the seed's fix).
    admin_result rollover(time_point now);

    bool ready() const { return ra_cert_ != nullptr && upstream_ca_.has_value(); }
    X509* cert() const { return ra_cert_.get(); }
    EVP_PKEY* key() const { return ra_key_.get(); }
    const std::optional<ca_certs>& upstream() const { return upstream_ca_; }
    const std::optional<ca_caps>& upstream_caps() const { return upstream_caps_; }
    bool has_shadow() const { return shadow_ca_ && shadow_ra_cert_; }
    X509* shadow_ca() const { return shadow_ca_.get(); }
    X509* shadow_cert() const { return shadow_ra_cert_.get(); }
    EVP_PKEY* shadow_key() const { return shadow_ra_key_.get(); }
    const std::optional<ca_certs>& shadow_upstream() const { return shadow_upstream_; }
    timers::shadow_state shadow_state() const { return shadow_state_; }
    const std::string& shadow_text() const { return shadow_text_; }
    const std::string& renew_text() const { return renew_text_; }
    const std::string& subject() const { return subject_; }

    std::string upstream_url() const;
    // "RA certificate pending at the CA http://... (request ...)", "RA certificate CN=...".
    std::string status_text() const;
    // The RA's own lines of `show timers` (POLL / CERT EXPIRE / RENEW / SHADOW).
    std::vector<timer_entry> timers() const;

    // A client towards the upstream CA as an IOS trustpoint talks (HTTP/1.0, GET, %0A).
    scep_client make_client() const;
    // A CertPoll signed with the current RA certificate (the reply is encrypted to it).
    pending_enrollment upstream_pending(std::string tx, const X509_NAME* subject,
                                        EVP_PKEY* key) const;

  private:
    void load_or_create_key();
    void load_state();
    void load_shadow();
    bool fetch_ca();  // GetCACaps + GetCACert upstream; false when unreachable
    void store_ra_cert(x509_ptr cert);
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
    // One step of the RA's shadow state machine: GetNextCACert upstream, then its rollover RA
    // certificate (new key, signed with the current RA certificate, encrypted to the shadow
    // CA). Returns a line for the operator.
    std::string shadow_attempt(time_point now);
    void switchover(time_point now);

    const engine_options& options_;
    timers::trustpoint_config tp_;
    std::string subject_;  // what the RA certificate request asks for
    store* store_;
    const timers::clock& clock_;

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
};

}  // namespace pkisim::scep::detail
