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
#include "pkisim/scep/enrollment_engine.hpp"
#include "pkisim/scep/openssl.hpp"
#include "pkisim/scep/policy.hpp"
#include "pkisim/scep/service.hpp"
#include "pkisim/scep/store.hpp"
#include "pkisim/timers/client_model.hpp"
#include "pkisim/timers/clock.hpp"
#include "pkisim/timers/config.hpp"
#include "pkisim/timers/timeline.hpp"

namespace pkisim::scep {

namespace detail {
class ra_identity;
struct fulfilment;
}  // namespace detail
class ra_forwarder;

// IOS convention for RA certificate subjects (ios-pki-research.md §5, S7 golden output).
inline constexpr std::string_view ra_subject_marker = "OU=ioscs RA";

// The subject the RA requests: the trustpoint's `subject-name`, with OU=ioscs RA appended when
// missing (`added` tells), or "CN=<server name>,OU=ioscs RA".
std::string ra_request_subject(std::string_view server_name, std::string_view subject_name,
                               bool* added = nullptr);

class ra_engine final : public enrollment_engine {
  public:
    // Opens DIR/pkisim.db; on first start generates (or takes) the RA key and enrolls the RA
    // certificate upstream (a PENDING answer is polled on tick()). Throws startup_error
    // (configuration, wrong passphrase, foreign data folder, store failure). An unreachable
    // CA is not a start-up error: the RA answers 503 and retries on tick().
    ra_engine(engine_options options, const timers::clock& clock);
    ~ra_engine() override;

    // Operator commands (admin()): grant all|ID, reject all|ID, password generate [MINUTES]
    // (the core's), and the RA's show server|requests|certificates|timers, rollover.
    // RA enrollment polls (every `enrollment retry period`), forwards that failed to reach the
    // CA, request expiry.
    time_point tick() override;

    X509* ca_certificate() const override;  // the upstream CA's (nullptr before GetCACert)

    // Facts for tests and the CLI.
    bool ra_ready() const;
    X509* ra_certificate() const;
    // One line: "RA certificate pending at the CA http://... (request ...)", "RA certificate
    // CN=..., issued by CN=...", ...
    std::string status_text() const;
    // Notes for the start-up output (e.g. "OU=ioscs RA added to the subject").
    const std::vector<std::string>& notes() const { return notes_; }
    std::string upstream_url() const;
    // RA rollover (model rule 8): the RA's own SHADOW state machine (timers::shadow_step).
    timers::shadow_state shadow_state() const;
    bool has_shadow() const;

  private:
    friend class ra_forwarder;

    std::optional<http_answer> unavailable() const override;
    std::vector<X509*> ca_cert_chain() const override;
    std::string ca_caps() const override;
    std::optional<next_ca> next_ca_certs() const override;
    std::string no_next_ca_text() const override;

    // Forwards request `r` upstream (PKCSReq signed by the RA) or, when already forwarded,
    // polls the CA once. Updates the store. PENDING with a text starting "CA unreachable" when
    // the CA could not be asked (retried on tick()).
    detail::fulfilment forward(request_record& r, time_point now);
    detail::fulfilment record_reply(request_record& r, client_result<enroll_result> res);
    // What the CA's CRL says about a renewal signer (policy item 1 in RA mode).
    revocation_knowledge upstream_revocation(X509* signer, time_point now);
    // The upstream certificates a request goes to: the shadow CA for rollover requests.
    const ca_certs& upstream_for(const request_record& r) const;

    void add_commands();  // the RA's own operator commands (show, revoke, rollover)
    std::string show_server();
    std::string show_requests();
    std::string show_certificates();
    std::string show_timers(time_point now);
    std::string show_pkisim();

    timers::trustpoint_config tp_;
    std::string subject_;  // what the RA certificate request asks for
    std::vector<std::string> notes_;
    // The RA's own certificate lifecycle, the enrollment core and this mode's signer strategy.
    std::unique_ptr<detail::ra_identity> identity_;
    std::unique_ptr<ra_forwarder> forwarder_;
    x509_crl_ptr upstream_crl_;  // the CA's CRL as last fetched (renewal checks)
};

}  // namespace pkisim::scep
