// CA-side certificate work: keys, the (shadow) CA certificate, issuing, CRLs, key storage, DNs.
// The *when* and *how long* come from timers/ (ios-pki-model.md §1); this file only builds the
// objects those rules describe.
//
//   using namespace pkisim::scep;
//   evp_pkey_ptr key = generate_rsa_key(2048);
//   auto v = timers::ca_validity(server, now);                               // rule 1
//   x509_ptr ca = make_self_signed_ca(key.get(), "CN=ca-server,O=lab", v, 1,
//                                     timers::hash_algorithm::sha256).value();
//   issue_options o{.validity = timers::issued_validity(life, now, not_after(ca.get())),
//                   .serial = 2, .hash = timers::hash_algorithm::sha256};
//   x509_ptr id = issue_certificate(csr, ca.get(), key.get(), o).value();    // rule 2
//
// Certificates: X.509 v3, SKI = SHA-1 of the public key (RFC 5280 §4.2.1.2 method 1), AKI =
// issuer's SKI. All functions take keys already loaded (no per-request key loading).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pkisim/scep/openssl.hpp"
#include "pkisim/timers/config.hpp"
#include "pkisim/timers/timeline.hpp"

namespace pkisim::scep {

// EVP_MD for a `hash` config value (md5 only exists for the legacy switch).
const EVP_MD* digest_for(timers::hash_algorithm h) noexcept;
int digest_nid_for(timers::hash_algorithm h) noexcept;

// RSA key (65537). Throws std::runtime_error on failure (resource error).
evp_pkey_ptr generate_rsa_key(unsigned bits = 2048);
// EC key on `curve` ("P-256", "P-384"; OpenSSL group names). Throws std::runtime_error.
evp_pkey_ptr generate_ec_key(std::string_view curve);

// ---------------------------------------------------------------------------------------------
// Distinguished names.
// Parses "CN=ca-server,O=lab", and IOS `issuer-name` forms such as
// "cn=ra, ou=ioscs RA, o=cisco C=pki" (attribute names case-insensitive; a new attribute starts
// at a known `NAME=` preceded by a comma or blank, so values may contain blanks; `\,` escapes a
// comma). Entries keep the written order. Strings are UTF8String except C (PrintableString;
// any length, since IOS's own example is "C=pki").
// Error: error::bad_dn (empty, unknown attribute name, empty value, C not printable).
tl::expected<x509_name_ptr, std::error_code> parse_dn(std::string_view text);

// IOS convention for RA certificates: the subject carries `ou=ioscs RA` (e.g. "cn=ra, ou=ioscs
// RA, o=cisco C=pki", ios-pki-research.md §5). True when an OU of `name` equals "ioscs RA",
// ignoring case. The CA side of RA mode keys on it (RA certificate requests, `grant ra-auto`).
bool is_ra_subject(const X509_NAME* name);

// ---------------------------------------------------------------------------------------------
// CA certificates (ios-pki-model.md §1 rule 1 and 3).
// Self-signed, serial as given, keyUsage critical keyCertSign, cRLSign, digitalSignature,
// keyEncipherment (scep-wire §0.5: clients sign-check CertReps and encrypt to it; an EC key:
// no keyEncipherment, RFC 5480),
// basicConstraints critical CA:TRUE, SKI, AKI (keyid).
tl::expected<x509_ptr, std::error_code> make_self_signed_ca(EVP_PKEY* key,
                                                            std::string_view subject_dn,
                                                            const timers::validity& validity,
                                                            std::uint64_t serial,
                                                            timers::hash_algorithm hash);
tl::expected<x509_ptr, std::error_code> make_self_signed_ca(EVP_PKEY* key, const X509_NAME* subject,
                                                            const timers::validity& validity,
                                                            std::uint64_t serial,
                                                            timers::hash_algorithm hash);
// Rule 3: the shadow CA: same subject as `current`, a NEW key, validity from
// timers::shadow_ca_validity() (notBefore = current notAfter). Self-signed like the first one.
tl::expected<x509_ptr, std::error_code> make_shadow_ca(EVP_PKEY* new_key, const X509* current,
                                                       const timers::validity& validity,
                                                       std::uint64_t serial,
                                                       timers::hash_algorithm hash);

// ---------------------------------------------------------------------------------------------
// Issuing (rule 2).
enum class cert_profile {
    // Router / client identity: basicConstraints CA:FALSE, keyUsage critical digitalSignature +
    // keyEncipherment (EC keys: digitalSignature only, RFC 5480); subjectAltName copied from the
    // CSR (copy_san), other requested
    // extensions per copy_requested_extensions.
    end_entity,
    // RA certificate (model rule 8): CA:FALSE, keyUsage critical digitalSignature +
    // keyEncipherment (it signs CertReps and clients encrypt to it, scep-wire §0.5);
    // requested extensions are not copied.
    registration_authority,
};

struct issue_options {
    // From timers::issued_validity / rollover_id_validity. notAfter is clamped again to the
    // issuer's notAfter (a certificate never outlives its issuer) as a guard.
    timers::validity validity;
    std::uint64_t serial = 0;  // must be > 0 and never reused (the store's job)
    timers::hash_algorithm hash = timers::hash_algorithm::sha256;
    cert_profile profile = cert_profile::end_entity;
    // `cdp-url`: written as a CRL distribution point (URI) when not empty.
    std::string cdp_url;
    // Issue 11 §2.9: authorityInfoAccess (RFC 5280 §4.2.2.1) with id-ad-ocsp and/or
    // id-ad-caIssuers URIs, when not empty (end_entity and RA certificates).
    std::string aia_ocsp_url;
    std::string aia_ca_issuers_url;
    // Copy subjectAltName from the CSR's extensionRequest (end_entity only).
    bool copy_san = true;
    // Also copy extendedKeyUsage from the CSR (end_entity only). keyUsage, basicConstraints,
    // SKI/AKI and CDP are always ours.
    bool copy_requested_extensions = false;
    // The server's `eku` names (IOS: client-auth, server-auth, ipsec-end-system, ...): the
    // extendedKeyUsage of end-entity certificates; when set, a requested one is not copied.
    std::vector<std::string> eku;
    // Subject override (nullptr = the CSR subject).
    const X509_NAME* subject = nullptr;
    // false: the certificate's SubjectPublicKeyInfo is the CSR's, copied as parsed, and the
    // returned X509 has no EVP_PKEY attached (X509_get0_pubkey is null; i2d and signing work).
    // The CA engine's enrollment path only signs, encodes and stores the certificate: this
    // saves OpenSSL 3.0's encoder + decoder of X509_set_pubkey (issue 12 §3; bench/README.md).
    // true: X509_set_pubkey, for callers that use the certificate's key in memory.
    bool attach_key = true;
};
// Issues a certificate for `csr`'s public key. Does NOT check the CSR signature or challenge
// (decode_pki_message did the first, the CA engine does the second).
// Errors: bad_message_data (CSR without key / bad extensions), bad_key, internal.
tl::expected<x509_ptr, std::error_code> issue_certificate(const X509_REQ* csr, X509* ca_cert,
                                                          EVP_PKEY* ca_key,
                                                          const issue_options& options);

// ---------------------------------------------------------------------------------------------
// CRL (`lifetime crl`, `revoke SERIAL`). v2 CRL with cRLNumber and AKI; entries sorted by
// serial. next_update = this_update + lifetime crl (the caller's arithmetic).
struct revoked_entry {
    std::uint64_t serial = 0;
    time_point revoked_at;
    std::optional<int> reason;  // RFC 5280 §5.3.1 CRLReason; written as the entry's reasonCode
};
// RFC 5280 §5.3.1 CRLReason names as `revoke SERIAL REASON` takes them (keyCompromise,
// cACompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold,
// privilegeWithdrawn, aACompromise; case-insensitive; unspecified and removeFromCRL are not
// offered) -> the code; nullopt when unknown. The list, for messages.
std::optional<int> crl_reason_from_name(std::string_view name);
std::string_view crl_reason_names();
std::string_view crl_reason_name(int code);
tl::expected<x509_crl_ptr, std::error_code> make_crl(X509* ca_cert, EVP_PKEY* ca_key,
                                                     std::span<const revoked_entry> revoked,
                                                     time_point this_update, time_point next_update,
                                                     std::uint64_t crl_number,
                                                     timers::hash_algorithm hash);
// Whether `crl` lists `serial` (for tests and `show`).
bool crl_lists(const X509_CRL* crl, std::uint64_t serial);

// ---------------------------------------------------------------------------------------------
// The CA key on disk: PKCS#8 EncryptedPrivateKeyInfo, AES-256-CBC, PBKDF2
// ("-----BEGIN ENCRYPTED PRIVATE KEY-----"). Throws on resource errors only.
std::string encrypt_private_key_pem(const EVP_PKEY* key, std::string_view passphrase);
// error::wrong_passphrase when the passphrase does not decrypt it; error::bad_key when the text
// is not a private key at all.
tl::expected<evp_pkey_ptr, std::error_code> decrypt_private_key_pem(std::string_view pem,
                                                                    std::string_view passphrase);

// ---------------------------------------------------------------------------------------------
// The requester's objects (SCEP clients, the RA's own requests, tests).
// Self-signed signer certificate for PKCSReq (like micromdm "O=scep-client, CN=SCEP SIGNER"),
// v3, serial 1, keyUsage digitalSignature+keyEncipherment.
x509_ptr make_self_signed_signer(EVP_PKEY* key, std::string_view subject_dn,
                                 const timers::validity& validity, int digest_nid = NID_sha256);
struct csr_options {
    std::optional<std::string> challenge_password;
    bool challenge_utf8 = false;            // UTF8String instead of PrintableString
    std::vector<std::string> dns_names;     // subjectAltName dNSName entries
    std::vector<std::string> ip_addresses;  // subjectAltName iPAddress entries ("192.0.2.1")
    // extendedKeyUsage to request, OpenSSL names ("clientAuth", "serverAuth"); empty = none.
    std::vector<std::string> extended_key_usages;
    int digest_nid = NID_sha256;
};
// PKCS#10 for `subject_dn` (parse_dn syntax). Throws std::invalid_argument on a bad DN.
x509_req_ptr make_csr(EVP_PKEY* key, std::string_view subject_dn, const csr_options& options = {});

}  // namespace pkisim::scep
