// The certificate policy of the lab server, written once and called by the CA and the RA
// through the enrollment core (scep_server/src/enrollment_core.hpp): the challenge (static or
// one-time), the grant mode, the renewal rules, the CSR rules and the extension rules.
//
//   auto c = check_challenge(csr.challenge_password, options.challenge, grant, false, db, now);
//   if (!c) return fail(c.error().info, c.error().text);
//   switch (decide_grant(grant, *c, false)) { ... }
//
// Pure functions of their arguments, except that one-time passwords live in the store.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "pkisim/scep/codec.hpp"
#include "pkisim/scep/openssl.hpp"
#include "pkisim/scep/service.hpp"
#include "pkisim/scep/store.hpp"
#include "pkisim/timers/config.hpp"

namespace pkisim::scep {

// Why the policy refuses a request: a CertRep FAILURE with this failInfo and text.
struct policy_refusal {
    fail_info info = fail_info::bad_request;
    std::string text;
};

// ---------------------------------------------------------------------------------------------
// Challenge (RFC 8894 §2.3; IOS `password generate`, `grant auto`).
enum class challenge_outcome {
    not_asked,          // renewal signed by an issued certificate, or forwarded by our RA
    none_needed,        // no challenge configured and none sent
    static_password,    // the configured challenge
    one_time_password,  // a `password generate` password, consumed now (grants at once)
    ignored,            // `grant auto` without a configured challenge: whatever was typed
};
// `exempt`: renewals and RA-forwarded requests are not asked (RFC 8894 §2.3: optional for
// renewals; the RA checked before forwarding, model rule 8); a matching static challenge is
// still reported (it authorises an identity change on renewal).
// IOS: a router always sends what was typed at the enrollment prompt, and `grant auto` with no
// challenge configured grants everything, so there any challenge is accepted (issue 11 §2.6).
// A one-time password is still consumed when it matches.
tl::expected<challenge_outcome, policy_refusal> check_challenge(
    const std::optional<std::string>& presented, const std::optional<std::string>& configured,
    timers::grant_mode mode, bool exempt, store& db, time_point now);

// The static challenge compared in constant time (CRYPTO_memcmp over equal-length digests, so
// neither the content nor the length leaks through timing).
bool challenge_matches(std::string_view presented, std::string_view configured);
// How one-time passwords are kept in the store: hex SHA-256 of "pkisim-otp:" + password (a
// stolen database holds no usable password).
std::string one_time_password_digest(std::string_view password);
// `password generate [MINUTES]` (IOS: one hour by default, 1..1440 minutes): stores the digest
// of a fresh one-time challenge and returns IOS's message. `args`: the words after `generate`.
admin_result generate_password(store& db, std::span<const std::string_view> args, time_point now);

// ---------------------------------------------------------------------------------------------
// Grant mode (IOS `grant auto|none|ra-auto`, manual by default).
enum class grant_decision { issue_now, hold, refuse };
// A one-time password grants at once whatever the mode; `grant none` refuses the rest;
// `grant ra-auto` issues what `ra_request` says came from (or is the renewal of) our RA, and
// holds the rest as manual does (ios-pki-research.md §1.1, §5).
grant_decision decide_grant(timers::grant_mode mode, challenge_outcome challenge, bool ra_request);

// ---------------------------------------------------------------------------------------------
// Renewal (issue 11 §2.1). A renewal signed by a revoked certificate is refused, and so is one
// whose signer's revocation cannot be learnt (an RA whose CA answers no GetCRL): an RA that
// forwarded it would hide the revocation from the CA, which only sees the RA's signature. A
// renewal that was not authorised by a challenge keeps the signer's subject and subjectAltName
// unless `allow_identity_change`.
struct revocation_knowledge {
    enum class state { good, revoked, unknown };
    state status = state::good;
    // Where it was learnt ("the CA's database", "the CA's CRL number 7 (GetCRL)"), or why it
    // is unknown; part of the refusal text the server logs.
    std::string source;
};
// The signer's entry in its CA's CRL. The CRL must be issued and signed by `ca`; a CRL past its
// nextUpdate still proves a revocation but no longer that the signer is good.
revocation_knowledge revocation_from_crl(X509* signer, X509_CRL* crl, X509* ca, time_point now);
tl::expected<void, policy_refusal> check_renewal(X509* signer, const revocation_knowledge& rev,
                                                 const csr_request& csr, challenge_outcome c,
                                                 bool allow_identity_change);

// ---------------------------------------------------------------------------------------------
// CSR rules (issue 11 §2.3, §2.5): RSA keys of at least `min_rsa_bits`; EC keys on P-256 or
// P-384 (RFC 5480; what SCEP clients and IOS use); other key types are refused.
tl::expected<void, policy_refusal> check_csr_key(const EVP_PKEY* key, unsigned min_rsa_bits);

}  // namespace pkisim::scep
