// The SCEP codec (RFC 8894, plus what real clients send: scep-wire.md §0): decode pkiMessages,
// build CertReps and the GetCACert / GetNextCACert / GetCACaps bodies; and the client side
// (build requests, read CertReps) for tests, RA forwarding upstream and IOS-style test clients.
//
// Server use (keys passed in, never loaded per request):
//   decryption_key keys[] = {{ca_cert, ca_key}, {shadow_cert, shadow_key}};
//   auto req = decode_pki_message(body, keys, {.allow_legacy = legacy});
//   if (!req) {                                   // decode_failure
//       auto w = to_wire(req.error());            // FAILURE CertRep (if context) or HTTP 400
//       ...
//   }
//   // (CA engine: renewal check with verify_signer_chain, challenge, grant, issue_certificate)
//   cert_rep_params p = success_for(req->context(), ca_cert, ca_key, {issued.get()}, now);
//   bytes reply = encode_cert_rep(p).value();     // application/x-pki-message
// A failure with context: encode_cert_rep(failure_for(*f.context, ca_cert, ca_key, w.failure,..)).
// Thread-safe: no shared mutable state besides OpenSSL's (load_providers once before serving).
//
// PKCS#7 (OpenSSL's PKCS7 API) for signing and parsing; CMS for decryption (it alone accepts
// RSAES-OAEP key transport, scep-wire §1.5).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>
#include <vector>

#include "pkisim/scep/crypto.hpp"
#include "pkisim/scep/openssl.hpp"
#include "pkisim/timers/timeline.hpp"

namespace pkisim::scep {

// RFC 8894 §3.2.1.2 (values are the decimal PrintableString on the wire).
enum class message_type : int {
    cert_rep = 3,
    renewal_req = 17,
    pkcs_req = 19,
    cert_poll = 20,  // GetCertInitial in draft-nourse (IOS)
    get_cert = 21,
    get_crl = 22,
};
// RFC 8894 §3.2.1.3.
enum class pki_status : int { success = 0, failure = 2, pending = 3 };
// RFC 8894 §3.2.1.4. bad_request is the catch-all.
enum class fail_info : int {
    bad_alg = 0,
    bad_message_check = 1,
    bad_request = 2,
    bad_time = 3,
    bad_cert_id = 4,
};
std::string_view to_string(message_type t) noexcept;  // "PKCSReq", "CertPoll", ...
std::string_view to_string(pki_status s) noexcept;    // "SUCCESS", "FAILURE", "PENDING"
std::string_view to_string(fail_info f) noexcept;     // "badAlg", ...

// A certificate + key we can decrypt with (non-owning; the CA engine owns them).
struct decryption_key {
    X509* cert = nullptr;
    EVP_PKEY* key = nullptr;
};

struct decode_options {
    // --legacy-crypto: accept single DES-CBC and MD5 (scep-wire §0.1). Decrypting DES also
    // needs load_providers(true).
    bool allow_legacy = false;
    // Dogtag caps nonces at 16 bytes; we tolerate other sizes (1..max_nonce_size).
    std::size_t max_nonce_size = 64;
    std::size_t max_transaction_id_size = 128;
    std::size_t max_message_size = 256 * 1024;
    // decode_cert_rep: read the signed attributes (status, failInfo) and verify the signature,
    // but leave a SUCCESS envelope closed (`certs` empty): a load generator's view of the reply
    // without the client's RSA decryption.
    bool status_only = false;
};

// messageData of PKCSReq / RenewalReq (inside the envelope).
struct csr_request {
    x509_req_ptr csr;  // self-signature already verified (proof of possession)
    bytes der;
    // PKCS#9 challengePassword: PrintableString, UTF8String, IA5String, T61String or BMPString
    // (converted to UTF-8). nullopt when absent.
    std::optional<std::string> challenge_password;
    std::string subject;                   // name_to_string(CSR subject)
    const EVP_PKEY* public_key = nullptr;  // owned by csr
};
// messageData of CertPoll (RFC 8894 §3.3.3). Do not trust `issuer` (scep-wire §0.13).
struct issuer_and_subject {
    x509_name_ptr issuer;
    x509_name_ptr subject;
};
// messageData of GetCert / GetCRL.
struct issuer_and_serial {
    x509_name_ptr issuer;
    asn1_integer_ptr serial;
    std::string serial_hex;                   // upper-case hex, as serial_hex()
    std::optional<std::uint64_t> serial_u64;  // when it fits
};
using message_data =
    std::variant<std::monostate, csr_request, issuer_and_subject, issuer_and_serial>;

// What a reply needs: enough to send a signed CertRep back (scep-wire §0.14).
struct reply_context {
    std::string transaction_id;
    bytes sender_nonce;  // the request's; becomes our recipientNonce
    x509_ptr signer;     // the requester's signing certificate: we encrypt SUCCESS to it
    int digest_nid = 0;  // the request's digest: we sign with it (§0.3)
    int cipher_nid = 0;  // the request's content cipher: we encrypt with it (§0.2); 0 if unknown
    reply_context clone() const;  // shares the certificate
};

struct pki_request {
    message_type type = message_type::pkcs_req;
    std::string transaction_id;
    bytes sender_nonce;
    x509_ptr signer;  // from SignedData certificates; the signature over signedAttrs verified
    bool signer_is_self_signed = false;
    // Other certificates the client put in `certificates` (chain), excluding the signer.
    std::vector<x509_ptr> extra_certs;
    int digest_nid = 0;  // NID_sha256, NID_sha1, NID_md5, ...
    int cipher_nid = 0;  // NID_aes_128_cbc, NID_aes_256_cbc, NID_des_ede3_cbc, NID_des_cbc
    // Index into the `keys` passed to decode_pki_message: which certificate the envelope was
    // encrypted to (1 = shadow CA in {{ca},{shadow}} means a rollover request, model rule 6).
    std::size_t recipient_index = 0;
    bool oaep = false;  // key transport was RSAES-OAEP (accepted, reply uses PKCS#1 v1.5)
    std::optional<time_point> signing_time;  // the signingTime attribute when present
    message_data data;

    const csr_request* csr() const { return std::get_if<csr_request>(&data); }
    const issuer_and_subject* poll() const { return std::get_if<issuer_and_subject>(&data); }
    const issuer_and_serial* cert_id() const { return std::get_if<issuer_and_serial>(&data); }
    reply_context context() const;
};

struct decode_failure {
    fail_info info = fail_info::bad_request;
    std::error_code code;  // a pkisim::scep::error
    std::string text;      // human readable, for logs and failInfoText
    // Present when enough was parsed and verified to answer with a signed CertRep FAILURE
    // (transactionID, senderNonce, a signer certificate and the digest). Absent -> HTTP 400.
    std::optional<reply_context> context;
};

// Decodes and checks a pkiMessage (scep-wire §1.5 "Processing a request"):
// 1. SignedData (BER accepted), exactly one SignerInfo, signer certificate in `certificates`;
// 2. the signature is checked with PKCS7_NOVERIFY (self-signed signers cannot chain; renewal
//    signers' chains are the CA engine's job: verify_signer_chain). Failure -> badMessageCheck
//    WITH context (signer and attributes were readable);
// 3. messageType, transactionID, senderNonce (lenient about string types and nonce size);
//    MD5 without allow_legacy -> badAlg;
// 4. for 17/19/20/21/22: the EnvelopedData is decrypted with the `keys` entry whose cert
//    matches a RecipientInfo by issuer+serial (several RecipientInfos are fine); DES without
//    allow_legacy -> badAlg "...use --legacy-crypto"; no match -> badRequest (not_for_us);
// 5. the messageData is parsed by type; a CSR's self-signature must verify.
// A CertRep (3) or an unknown type is a failure.
tl::expected<pki_request, decode_failure> decode_pki_message(byte_view der,
                                                             std::span<const decryption_key> keys,
                                                             const decode_options& options = {});

// Chain check for renewal signers (scep-wire §0.6): X509_PURPOSE_ANY (a clientAuth-only EKU
// passes), verification time `at` (not the wall clock), no CRL check. `trusted` = the CA
// certificates this server has used (current, previous, shadow). Errors: signer_not_trusted,
// signer_expired.
tl::expected<void, std::error_code> verify_signer_chain(X509* signer,
                                                        std::span<X509* const> trusted,
                                                        time_point at);

// ---------------------------------------------------------------------------------------------
// CertRep (server side).
struct cert_rep_params {
    pki_status status = pki_status::success;
    fail_info failure = fail_info::bad_request;  // used when status == failure
    std::string fail_info_text;                  // optional failInfoText (OID 1.3.6.1.5.5.7.24.1)
    // From the request (reply_context): transactionID copied, recipientNonce = its senderNonce,
    // digest and cipher = the client's. cipher_nid 0 -> AES-128-CBC (RFC 8894 mandatory).
    std::string transaction_id;
    bytes recipient_nonce;
    X509* recipient = nullptr;  // the requester's signer cert; needed for SUCCESS only
    int digest_nid = NID_sha256;
    int cipher_nid = NID_aes_128_cbc;
    // Who signs: the CA, or the RA in RA mode (its certificate goes in `certificates`).
    X509* signer_cert = nullptr;
    EVP_PKEY* signer_key = nullptr;
    std::vector<X509*>
        extra_certs;  // chain for the outer `certificates` (e.g. the CA above the RA)
    // SUCCESS content: degenerate certs-only SignedData with `issued` (leaf first) and `crls`
    // (GetCRL). scep-wire §1.5: issued certificate only by default.
    std::vector<X509*> issued;
    std::vector<X509_CRL*> crls;
    // micromdm puts the issued certificate first in the outer set too; harmless, optional.
    bool issued_in_outer_certs = false;
    // Fresh senderNonce; empty -> 16 bytes from RAND_bytes (tests inject).
    bytes sender_nonce;
    time_point signing_time;  // from the injected clock
};
// FAILURE/PENDING carry no envelope; their eContent is an empty OCTET STRING (attached), so
// PKCS7_verify(p7, certs, store, NULL, out, 0) works (scep-wire §0.14).
// Errors: internal (OpenSSL failed), unsupported_algorithm (digest/cipher unknown).
tl::expected<bytes, std::error_code> encode_cert_rep(const cert_rep_params& params);

// Whether a SUCCESS CertRep can be encrypted to `recipient` with `cipher_nid` (0: AES-128):
// RSA key transport or ECDH key agreement (EC keys). Checked before a certificate is
// committed, so no certificate is stored that its requester cannot receive (issue 11 §2.3).
tl::expected<void, std::error_code> check_reply_envelope(X509* recipient, int cipher_nid);

// Convenience: params pre-filled from a request / a decode failure context.
cert_rep_params success_for(const reply_context& ctx, X509* signer_cert, EVP_PKEY* signer_key,
                            std::vector<X509*> issued, time_point signing_time);
cert_rep_params pending_for(const reply_context& ctx, X509* signer_cert, EVP_PKEY* signer_key,
                            time_point signing_time);
cert_rep_params failure_for(const reply_context& ctx, X509* signer_cert, EVP_PKEY* signer_key,
                            fail_info info, std::string text, time_point signing_time);

// ---------------------------------------------------------------------------------------------
// GetCACert / GetNextCACert / GetCACaps bodies.
// Degenerate certs-only SignedData (no content, no signers: RFC 8894 §3.4), for
// application/x-x509-ca-ra-cert (CA + RA) and inside SUCCESS CertReps.
bytes degenerate_certs_only(std::span<X509* const> certs, std::span<X509_CRL* const> crls = {});
// application/x-x509-next-ca-cert (scep-wire §0.15 / §1.8): SignedData signed by the CURRENT
// CA/RA key (`signer_cert`), eContent = DER(degenerate SignedData with `new_certs`), and the
// new certificates also in the outer `certificates` (after the signer).
tl::expected<bytes, std::error_code> encode_get_next_ca_cert(std::span<X509* const> new_certs,
                                                             X509* signer_cert,
                                                             EVP_PKEY* signer_key, int digest_nid,
                                                             time_point signing_time);
// scep-wire §1.7, LF separated, exact case; GetNextCACert only while a shadow exists.
std::string get_ca_caps_body(bool next_ca_available);

// ---------------------------------------------------------------------------------------------
// Mapping errors to the wire (the ONE place).
struct wire_answer {
    // When set: answer 200 with a signed CertRep FAILURE carrying this failInfo.
    std::optional<fail_info> failure;
    // Otherwise: this HTTP status (400 for unusable input, 500 for internal errors).
    unsigned http_status = 200;
};
// bad_signature -> badMessageCheck; unsupported/legacy algorithm -> badAlg; bad_time -> badTime;
// unknown_certificate -> badCertId; everything else -> badRequest. Without a reply context a
// protocol error is HTTP 400 (malformed input) and error::internal is 500.
wire_answer to_wire(std::error_code ec, bool have_reply_context);
inline wire_answer to_wire(const decode_failure& f) {
    return to_wire(f.code, f.context.has_value());
}
fail_info fail_info_for(std::error_code ec) noexcept;

// ---------------------------------------------------------------------------------------------
// Client side (tests, RA forwarding upstream, IOS-style test requests).
struct request_params {
    message_type type = message_type::pkcs_req;
    // DER of the messageData: CSR (17/19), encode_issuer_and_subject (20),
    // encode_issuer_and_serial (21/22).
    bytes message_data;
    X509* signer_cert = nullptr;  // self-signed (make_self_signed_signer) or an issued cert
    EVP_PKEY* signer_key = nullptr;
    std::vector<X509*> recipients;  // several -> several RecipientInfos (micromdm does this)
    int cipher_nid = NID_aes_256_cbc;
    int digest_nid = NID_sha256;
    std::string transaction_id;
    bytes sender_nonce;                      // empty -> 16 random bytes
    std::optional<time_point> signing_time;  // absent -> no signingTime attribute
    bool oaep = false;  // RSAES-OAEP key transport (EJBCA accepts it; tests the server does)
};
tl::expected<bytes, std::error_code> encode_pki_request(const request_params& params);
bytes encode_issuer_and_subject(const X509_NAME* issuer, const X509_NAME* subject);
bytes encode_issuer_and_serial(const X509_NAME* issuer, const ASN1_INTEGER* serial);
bytes encode_issuer_and_serial(const X509* cert);  // the certificate's issuer + serial

// A client's transactionID as most clients compute it: hex SHA-1 of the DER public key.
std::string transaction_id_for(const EVP_PKEY* key);

// make_self_signed_signer and make_csr (the requester's objects) are in crypto.hpp.

struct cert_rep {
    message_type type = message_type::cert_rep;
    pki_status status = pki_status::failure;
    std::optional<fail_info> failure;
    std::string fail_info_text;
    std::string transaction_id;
    bytes sender_nonce;
    bytes recipient_nonce;
    int digest_nid = 0;
    int cipher_nid = 0;  // of the envelope (SUCCESS only)
    x509_ptr signer;
    std::vector<x509_ptr> certs;  // SUCCESS: certificates of the inner degenerate SignedData
    std::vector<x509_crl_ptr> crls;
    std::vector<x509_ptr> outer_certs;  // all certificates of the outer SignedData
};
// Reads a CertRep: verifies the signature (PKCS7_NOVERIFY) and, when `trusted_signers` is not
// empty, that the signer is one of them; for SUCCESS decrypts with (recipient_cert,
// recipient_key) and reads the degenerate content. Errors as error codes.
tl::expected<cert_rep, std::error_code> decode_cert_rep(byte_view der, X509* recipient_cert,
                                                        EVP_PKEY* recipient_key,
                                                        std::span<X509* const> trusted_signers,
                                                        const decode_options& options = {});

struct certs_bundle {
    std::vector<x509_ptr> certs;
    std::vector<x509_crl_ptr> crls;
};
// A degenerate certs-only SignedData (GetCACert x-x509-ca-ra-cert) or, as a convenience, a
// single DER certificate (x-x509-ca-cert).
tl::expected<certs_bundle, std::error_code> parse_certs_only(byte_view der);

struct next_ca_response {
    x509_ptr signer;                      // the certificate that signed it (verified)
    std::vector<x509_ptr> content_certs;  // from the degenerate eContent (RFC 8894 §4.7.1)
    std::vector<x509_ptr> outer_certs;    // outer certificates minus the signer (sscep, jscep)
};
// Verifies the signature (NOVERIFY) and that the signer is one of `trusted_signers` (when not
// empty), then returns both views.
tl::expected<next_ca_response, std::error_code> parse_get_next_ca_cert(
    byte_view der, std::span<X509* const> trusted_signers);

}  // namespace pkisim::scep
