// What the HTTP listener and the admin socket need from whatever answers SCEP: the CA engine
// (ca_engine.hpp) or, with `mode ra`, the RA engine (ra_engine.hpp). Also the types they share:
// engine options, the HTTP answer, operator command results and start-up errors.
//
//   auto svc = make_service(options, clock);   // ca_engine, or ra_engine when
//   options.server.mode_ra http_answer a = svc->get_ca_cert();
//
// Not thread-safe: the server calls every member from its single engine thread, except
// pki_prepare and pki_finish (any thread, see there).
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "pkisim/scep/openssl.hpp"
#include "pkisim/timers/clock.hpp"
#include "pkisim/timers/config.hpp"

namespace pkisim::scep {

// Exit codes of `pkisim serve` (the CLI maps startup_error::exit_code to the process status).
enum class exit_status : int {
    ok = 0,
    failure = 1,           // other runtime failure
    config = 2,            // bad configuration or usage
    listen = 3,            // address in use / cannot listen
    wrong_passphrase = 4,  // the CA key does not decrypt with this passphrase
    foreign_data = 5,      // DIR holds another CA (different issuer-name or server name)
    store = 6,             // the database cannot be opened or is corrupt
    // Issue 11 §2.7: the clock is earlier than the latest time this data folder has seen (a
    // restart with an earlier --clock-start after a warped run); --allow-clock-backwards.
    clock_backwards = 7,
};

class startup_error : public std::runtime_error {
  public:
    startup_error(exit_status s, const std::string& what) : std::runtime_error(what), status_(s) {}
    exit_status status() const noexcept { return status_; }
    int exit_code() const noexcept { return static_cast<int>(status_); }

  private:
    exit_status status_;
};

struct engine_options {
    timers::server_config server;
    std::filesystem::path data_dir;
    // Protects the CA key on disk (IOS asks for one at `no shutdown`).
    std::string passphrase;
    // A static challenge password (--challenge-file / PKISIM_CHALLENGE). When set, initial
    // enrollments must carry it or a valid one-time password.
    std::optional<std::string> challenge;
    unsigned key_bits = 2048;
    // --key-type rsa|ec, --ec-curve: the key of a new CA (and of its shadows). An EC CA cannot be
    // encrypted to by key transport: SCEP clients that only do RSA need an RA in front of it.
    std::string key_type = "rsa";
    std::string ec_curve = "P-256";
    // IOS: "if a key with that label exists it is used; otherwise one is generated at first
    // `no shutdown`" (ios-pki-research.md §1.1). An unencrypted PEM private key to use for a
    // new CA instead of generating one (tests use fixture keys to stay fast).
    std::string existing_key_pem;
    // Unencrypted PEM private keys for the next shadow (rollover) CAs, used in order instead of
    // generating `key_bits` keys (tests stay fast; model rule 3). Empty: generate.
    std::vector<std::string> shadow_key_pems;
    // Certificate policy (policy.hpp, issue 11 §2). --renewal-identity-change: a renewal
    // without a challenge may change the subject and subjectAltName.
    bool renewal_identity_change = false;
    // --min-rsa-bits: the smallest RSA key a CSR may carry.
    unsigned min_rsa_bits = 2048;
    // --legacy-crypto: accept single DES and MD5 (scep-wire §0.1).
    bool legacy_crypto = false;
    // scep-wire §1.5: the issued certificate only, by default; Cisco VPN clients want the CA too.
    bool include_ca_in_success = false;
    // Issue 11 §2.7 (--allow-clock-backwards): start although the clock is earlier than the
    // latest time the store has seen (exit_status::clock_backwards otherwise). Certificates are
    // then dated no earlier than their issuing CA's notBefore.
    bool allow_clock_backwards = false;
    // Issue 11 §2.9: the authorityInfoAccess of issued certificates (--aia-ocsp-url,
    // --aia-ca-issuers-url); empty = not written.
    std::string aia_ocsp_url;
    std::string aia_ca_issuers_url;
    // --ocsp-responder-cert: OCSP answers are signed by a delegated responder certificate
    // (id-kp-OCSPSigning, issued by each CA generation) instead of the CA key itself.
    bool ocsp_delegated_responder = false;
    // Where the engine reports events worth a log line (shadow CA generated, switchover), as
    // IOS syslog does. Called on the engine thread. Empty = not reported.
    std::function<void(const std::string&)> event_log;

    // RA mode (`mode ra`, issue 4 §2; ios-pki-research.md §5): the trustpoint of the same NAME
    // whose `enrollment url` points at the issuing CA (subject-name, enrollment retry period,
    // auto-enroll). Ignored in CA mode.
    std::optional<timers::trustpoint_config> ra_trustpoint;
    // Overrides the trustpoint's `enrollment url` when not empty.
    std::string upstream_url;
    // Use the upstream URL's path as is (micromdm scepserver serves exactly /scep).
    bool upstream_exact_path = false;
    // The challenge the RA puts in its own RA-certificate request (IOS: trustpoint `password`).
    std::optional<std::string> upstream_challenge;
    // Single DES / MD5 towards the upstream CA (micromdm scepserver answers in DES).
    bool upstream_legacy_crypto = false;
    // Every upstream call is bounded: connect within this, the whole answer within twice this
    // (the engine thread must never block forever).
    std::chrono::milliseconds upstream_timeout{5000};
    // RA rollover: an unencrypted PEM key for the RA's rollover RA certificate instead of a new
    // one (tests use fixture keys to stay fast).
    std::string rollover_key_pem;
};

// What the HTTP layer sends. `ios_404` = the byte-exact IOS 404 (model §1 rule 4).
struct http_answer {
    unsigned status = 200;
    std::string content_type;  // empty = no Content-Type header
    std::string body;
    bool ios_404 = false;
    // For the access log: "PKCSReq SUCCESS", "CertPoll PENDING", "badRequest: ...".
    std::string detail;
};

// A failure on our side (store, OpenSSL, an exception): HTTP 500, so that the client retries;
// `detail` says what for the access log.
inline http_answer internal_error_answer(std::string detail) {
    return {500, "text/plain", "internal error\n", false, std::move(detail)};
}

// Issue 12 §3: GetCACert, GetCACaps and GetNextCACert depend only on the CA's state (its
// certificates, whether a shadow exists, what the RA has learnt from its CA), so the server
// prepares their whole HTTP responses once per change and answers them on its network thread.
// `until` (server clock): the first instant at which the engine would change that state by itself
// (the shadow due, the switchover); from then on the server asks the engine again until it has
// prepared answers for the new state. nullopt = only an engine call changes it.
struct static_answers {
    http_answer ca_cert;
    http_answer ca_caps;
    http_answer next_ca_cert;
    std::optional<time_point> until;
};

// An operator command's outcome (`pkisim ca ...`): ok = exit 0, text = what IOS would print.
struct admin_result {
    bool ok = true;
    std::string text;
};

// One PKIOperation in flight through the staged interface below (the mode's own type).
class pki_job {
  public:
    virtual ~pki_job() = default;
};

class scep_service {
  public:
    virtual ~scep_service() = default;

    // Issue 12 §3: PKIOperation in three stages, so that the server runs the RSA work on a
    // worker pool and commits several enrollments in one transaction (group commit):
    //   pki_prepare  any thread, concurrently: verify the signature, decrypt, parse the CSR;
    //   pki_process  the engine thread, a batch at a time: policy, serials, certificates, the
    //                store (one transaction and one fsync for the batch when the mode issues
    //                locally); when it returns, everything the batch issued is committed;
    //   pki_finish   any thread, concurrently, after pki_process: sign and encrypt the CertRep.
    // pki_operation(der) is the same three in one call. The defaults run pki_operation in
    // pki_process (a mode without stages stays correct).
    virtual std::unique_ptr<pki_job> pki_prepare(bytes der);
    virtual void pki_process(std::span<const std::unique_ptr<pki_job>> jobs);
    virtual http_answer pki_finish(pki_job& job);

    virtual http_answer get_ca_cert() = 0;
    virtual http_answer get_ca_caps() = 0;
    virtual http_answer get_next_ca_cert() = 0;
    virtual http_answer pki_operation(byte_view der) = 0;
    // One operator command line ("grant all", "show server", "rollover", ...).
    virtual admin_result admin(std::string_view line) = 0;
    // Periodic work on the (possibly warped) clock. Returns when it next wants to run.
    virtual time_point tick() = 0;

    // Plain HTTP resources beside SCEP (issue 11 §2.8): the CA's CRL at the path (and query)
    // its `cdp-url` names, at /crl/NAME.crl and as GET ...pkiclient.exe?operation=GetCRL.
    // is_resource only reads the configuration (callable from the network thread);
    // resource runs on the engine thread like every other operation.
    virtual bool is_resource(std::string_view /*target*/) const { return false; }
    virtual http_answer resource(std::string_view /*target*/) {
        return {404, "text/plain", "not found\n", false, "no such resource"};
    }

    // Issue 11 §2.9: one DER OCSPRequest (RFC 6960) in, an OCSPResponse out (the CA; the RA
    // answers 404). Runs on the engine thread.
    virtual http_answer ocsp(byte_view /*der*/) {
        return {404, "text/plain", "no OCSP responder here (CA mode only)\n", false, "no OCSP"};
    }
    // Issue 11 §2.7: the server's tick reports the clock; the store keeps the latest time seen
    // (durable), which a later start must not be earlier than.
    virtual void record_clock(time_point /*now*/) {}

    // Issue 12 §3 (static_answers): run on the engine thread after every engine call; returns
    // the same pointer while the answers stay the same, a new one when they change. Null: do not
    // answer them from prepared bytes now (the default; the RA without its RA certificate).
    virtual std::shared_ptr<const static_answers> prepared_static(time_point /*now*/) {
        return nullptr;
    }

    // The issuing CA certificate as this service knows it (the RA: the upstream CA's).
    virtual X509* ca_certificate() const = 0;
    virtual const engine_options& options() const = 0;
};

// A ca_engine, or the RA engine when options.server.mode_ra. Throws startup_error.
std::unique_ptr<scep_service> make_service(engine_options options, const timers::clock& clock);

}  // namespace pkisim::scep
