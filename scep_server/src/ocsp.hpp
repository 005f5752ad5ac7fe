// Issue 11 §2.9: the CA's OCSP responder (RFC 6960), on OpenSSL's OCSP API. Private to the
// server: ca_engine::ocsp() owns one and calls it on the engine thread; the HTTP side (GET with
// the base64 request in the path, POST application/ocsp-request) is server_transport.cpp's
// session on the --ocsp-listen port.
//
//   ocsp_responder r{store, options};
//   http_answer a = r.answer(request_der, clock.now());   // always an OCSPResponse (200)
//
// What it answers, for each CertID of the request:
//   - the issuer (issuerNameHash + issuerKeyHash, any hash OpenSSL knows) names one of this
//     store's CA generations (active, shadow or archived; not a cancelled shadow);
//   - the serial is a certificate in the store that this generation's key signed:
//       good, or revoked with the time and the RFC 5280 reason of `revoke SERIAL [REASON]`;
//   - anything else (a foreign issuer, a serial we never issued, a serial another generation
//     issued): unknown (RFC 6960 §2.2).
// The response is signed by the generation of the first CertID that names one (else the active
// one): by that CA's own key, or with options.ocsp_delegated_responder by a responder
// certificate that generation issued (id-kp-OCSPSigning, id-pkix-ocsp-nocheck, EC P-256,
// valid from its first use to the CA's notAfter; made once and kept in the store), while that
// CA is valid; an expired or not yet valid CA signs itself (a delegated certificate cannot
// outlive its issuer). The nonce is echoed when the request has one. thisUpdate is the
// server's clock; no nextUpdate (answers come from the store live, RFC 6960 §2.4); producedAt
// is set by OpenSSL from the real clock (OCSP_basic_sign takes no time).
// Bad input: a request that is not DER OCSPRequest (or has trailing bytes, or no CertID, or
// more than max_certids) gets the malformedRequest OCSPResponse; a signing failure
// internalError. Never throws for request bytes.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "pkisim/scep/openssl.hpp"
#include "pkisim/scep/service.hpp"
#include "pkisim/scep/store.hpp"

namespace pkisim::scep {

class ocsp_responder {
  public:
    static constexpr int max_certids = 64;

    // `loaded_key(generation)`: a CA key the engine already holds (the active and the shadow
    // generation), or nullptr; other keys are decrypted from the store at first use.
    ocsp_responder(store& db, const engine_options& options,
                   std::function<EVP_PKEY*(int generation)> loaded_key = {});
    ~ocsp_responder();
    ocsp_responder(const ocsp_responder&) = delete;
    ocsp_responder& operator=(const ocsp_responder&) = delete;

    http_answer answer(byte_view der, time_point now);

  private:
    struct generation {
        int id = 0;
        ca_state state = ca_state::active;
        x509_ptr cert;
        std::string key_pem;  // encrypted; decrypted at the first signature
        evp_pkey_ptr key;
        x509_ptr responder_cert;  // delegated responder (ocsp_delegated_responder)
        evp_pkey_ptr responder_key;
    };
    void refresh_generations();
    EVP_PKEY* ca_key(generation& g);
    // The delegated responder of `g`, made (and stored) on first use.
    void ensure_responder(generation& g, time_point now);

    store& db_;
    const engine_options& options_;
    std::function<EVP_PKEY*(int)> loaded_key_;
    std::map<int, generation> generations_;
};

// The OCSPResponse for a request we cannot parse (RFC 6960 §4.2.1 malformedRequest).
bytes ocsp_malformed_response();

}  // namespace pkisim::scep
