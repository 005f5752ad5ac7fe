// Thin RAII layer over OpenSSL 3 for the SCEP server: owning pointers, DER/PEM conversions,
// time conversion, fingerprints, provider loading, and the error codes of the SCEP layer.
//
//   using namespace pkisim::scep;
//   load_providers(/*legacy=*/options.legacy_crypto);          // once, at start-up
//   x509_ptr ca = x509_from_pem(read_file("ca.pem")).value();
//   bytes der = to_der(ca.get());
//   std::string fp = ios_fingerprint(ca.get(), EVP_md5());      // "CF2C23D1 560F25DB 22E9D10F
//   E595A6D6" time_point end = not_after(ca.get());
//
// Everything that parses bytes from the network returns tl::expected<T, std::error_code> with
// a pkisim::scep::error; nothing here throws on untrusted input. Functions that can fail only on
// programming or resource errors (encoding our own objects) throw std::runtime_error with the
// OpenSSL error queue text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <tl/expected.hpp>

#include "pkisim/timers/time.hpp"

namespace pkisim::scep {

using bytes = std::vector<std::uint8_t>;
using byte_view = std::span<const std::uint8_t>;
using timers::time_point;

// ---------------------------------------------------------------------------------------------
// Errors of the SCEP layer (codec, crypto; the CA engine may reuse the policy ones).
// to_wire() in codec.hpp is the ONE place that turns these into failInfo / HTTP status.
enum class error {
    ok = 0,
    // Parsing (untrusted input).
    malformed_der = 1,      // not DER/BER, truncated, trailing garbage
    not_signed_data,        // outer ContentInfo is not SignedData
    not_enveloped_data,     // pkcsPKIEnvelope is not EnvelopedData
    no_signer,              // no SignerInfo, or several
    no_signer_certificate,  // the signer certificate is not in `certificates`
    missing_attribute,      // messageType / transactionID / senderNonce absent
    bad_attribute,          // wrong ASN.1 type, bad value, nonce too large, ...
    unknown_message_type,   // messageType not one of 3,17,19,20,21,22
    bad_message_data,       // CSR / IssuerAndSubject / IssuerAndSerialNumber unparsable
    message_too_large,      // input over the configured cap
    // Cryptography.
    bad_signature,              // CMS signature or messageDigest mismatch -> badMessageCheck
    unsupported_algorithm,      // unknown digest / cipher / key transport -> badAlg
    legacy_algorithm_disabled,  // single DES or MD5 without --legacy-crypto -> badAlg
    not_for_us,                 // no RecipientInfo matches any of our certificates
    decrypt_failed,             // RecipientInfo matched but the key/cipher failed
    bad_csr_signature,          // PKCS#10 self-signature (proof of possession) fails
    signer_not_trusted,         // renewal signer does not chain (verify_signer_chain)
    signer_expired,             // renewal signer outside its validity at the given time
    wrong_passphrase,           // encrypted private key: wrong passphrase
    bad_key,                    // unusable key (not RSA, too small, corrupt PEM)
    bad_dn,                     // a DN string that cannot be parsed
    // Policy (for the CA engine; codec never produces these).
    bad_challenge,        // challengePassword wrong / missing / already used
    request_rejected,     // operator reject or `grant none`
    unknown_transaction,  // CertPoll with no matching request
    unknown_certificate,  // GetCert / GetCRL for something we never issued -> badCertId
    bad_time,             // signingTime too far off -> badTime
    // Internal.
    internal,  // an OpenSSL call failed on our own data
};

const std::error_category& scep_category() noexcept;
std::error_code make_error_code(error e) noexcept;

// ---------------------------------------------------------------------------------------------
// Owning pointers. Deleters are stateless; `ptr.get()` is what OpenSSL calls take.
template <typename T, void (*Free)(T*)>
struct openssl_deleter {
    void operator()(T* p) const noexcept { Free(p); }
};
namespace detail {
void free_x509_stack(STACK_OF(X509) * s) noexcept;  // sk_X509_pop_free(s, X509_free)
void free_crl_stack(STACK_OF(X509_CRL) * s) noexcept;
void free_openssl_string(char* s) noexcept;  // OPENSSL_free
}  // namespace detail

using x509_ptr = std::unique_ptr<X509, openssl_deleter<X509, X509_free>>;
using x509_req_ptr = std::unique_ptr<X509_REQ, openssl_deleter<X509_REQ, X509_REQ_free>>;
using x509_crl_ptr = std::unique_ptr<X509_CRL, openssl_deleter<X509_CRL, X509_CRL_free>>;
using x509_name_ptr = std::unique_ptr<X509_NAME, openssl_deleter<X509_NAME, X509_NAME_free>>;
using x509_store_ptr = std::unique_ptr<X509_STORE, openssl_deleter<X509_STORE, X509_STORE_free>>;
using x509_store_ctx_ptr =
    std::unique_ptr<X509_STORE_CTX, openssl_deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using x509_extension_ptr =
    std::unique_ptr<X509_EXTENSION, openssl_deleter<X509_EXTENSION, X509_EXTENSION_free>>;
using evp_pkey_ptr = std::unique_ptr<EVP_PKEY, openssl_deleter<EVP_PKEY, EVP_PKEY_free>>;
using evp_pkey_ctx_ptr =
    std::unique_ptr<EVP_PKEY_CTX, openssl_deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using evp_md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, openssl_deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using ocsp_request_ptr =
    std::unique_ptr<OCSP_REQUEST, openssl_deleter<OCSP_REQUEST, OCSP_REQUEST_free>>;
using ocsp_response_ptr =
    std::unique_ptr<OCSP_RESPONSE, openssl_deleter<OCSP_RESPONSE, OCSP_RESPONSE_free>>;
using ocsp_basicresp_ptr =
    std::unique_ptr<OCSP_BASICRESP, openssl_deleter<OCSP_BASICRESP, OCSP_BASICRESP_free>>;
using ocsp_certid_ptr =
    std::unique_ptr<OCSP_CERTID, openssl_deleter<OCSP_CERTID, OCSP_CERTID_free>>;
using pkcs7_ptr = std::unique_ptr<PKCS7, openssl_deleter<PKCS7, PKCS7_free>>;
using cms_ptr =
    std::unique_ptr<CMS_ContentInfo, openssl_deleter<CMS_ContentInfo, CMS_ContentInfo_free>>;
using bio_ptr = std::unique_ptr<BIO, openssl_deleter<BIO, BIO_free_all>>;
using bignum_ptr = std::unique_ptr<BIGNUM, openssl_deleter<BIGNUM, BN_free>>;
using asn1_time_ptr = std::unique_ptr<ASN1_TIME, openssl_deleter<ASN1_TIME, ASN1_TIME_free>>;
using asn1_integer_ptr =
    std::unique_ptr<ASN1_INTEGER, openssl_deleter<ASN1_INTEGER, ASN1_INTEGER_free>>;
using asn1_octet_string_ptr =
    std::unique_ptr<ASN1_OCTET_STRING, openssl_deleter<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>>;
// Owns the stack AND its certificates.
using x509_stack_ptr =
    std::unique_ptr<STACK_OF(X509), openssl_deleter<STACK_OF(X509), detail::free_x509_stack>>;
using openssl_string_ptr =
    std::unique_ptr<char, openssl_deleter<char, detail::free_openssl_string>>;

// A new owning reference to an existing object (X509_up_ref / EVP_PKEY_up_ref): lets a struct
// keep a certificate that the caller also keeps, without copying it.
x509_ptr share(X509* cert);
evp_pkey_ptr share(EVP_PKEY* key);
x509_crl_ptr share(X509_CRL* crl);
// A deep copy (X509_dup etc.).
x509_name_ptr copy(const X509_NAME* name);

// Builds an owning STACK_OF(X509) holding new references to `certs` (for OpenSSL calls).
x509_stack_ptr make_x509_stack(std::span<X509* const> certs);

// ---------------------------------------------------------------------------------------------
// Providers (scep-wire.md §0.1). Loads "default", plus "legacy" when `legacy` is true (single
// DES for micromdm scepclient 2.1.0 and old IOS). Idempotent; calling it again with legacy=true
// adds the legacy provider. Throws std::runtime_error if a provider cannot be loaded (start-up
// error: the lead maps it to an exit code).
void load_providers(bool legacy);
// True once load_providers(true) succeeded in this process.
bool legacy_provider_loaded() noexcept;

// The OpenSSL error queue as one line ("error:...:reason; error:..."), and clears it.
std::string drain_openssl_errors();

// ---------------------------------------------------------------------------------------------
// DER / PEM. Parsers take untrusted bytes; they reject trailing garbage.
bytes to_der(const X509* cert);
bytes to_der(const X509_REQ* csr);
bytes to_der(const X509_CRL* crl);
bytes to_der(const PKCS7* p7);
bytes to_der(const X509_NAME* name);
std::string to_pem(const X509* cert);
std::string to_pem(const X509_REQ* csr);
std::string to_pem(const X509_CRL* crl);
// Unencrypted private key, PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"). For tests and the CLI;
// the CA key on disk uses encrypt_private_key_pem() in crypto.hpp.
std::string private_key_to_pem(const EVP_PKEY* key);
std::string public_key_to_pem(const EVP_PKEY* key);

tl::expected<x509_ptr, std::error_code> x509_from_der(byte_view der);
tl::expected<x509_ptr, std::error_code> x509_from_pem(std::string_view pem);
// Every certificate in a PEM text (a chain file), in order. Error if none.
tl::expected<std::vector<x509_ptr>, std::error_code> x509_chain_from_pem(std::string_view pem);
tl::expected<x509_req_ptr, std::error_code> x509_req_from_der(byte_view der);
tl::expected<x509_req_ptr, std::error_code> x509_req_from_pem(std::string_view pem);
tl::expected<x509_crl_ptr, std::error_code> x509_crl_from_der(byte_view der);
tl::expected<x509_crl_ptr, std::error_code> x509_crl_from_pem(std::string_view pem);
tl::expected<pkcs7_ptr, std::error_code> pkcs7_from_der(byte_view der);
// Unencrypted PEM private key (PKCS#8 or traditional RSA).
tl::expected<evp_pkey_ptr, std::error_code> private_key_from_pem(std::string_view pem);

// ---------------------------------------------------------------------------------------------
// Time. ASN1_TIME has second resolution: milliseconds are truncated. UTCTime before 2050,
// GeneralizedTime from 2050 on (RFC 5280 §4.1.2.5), which ASN1_TIME_set does.
asn1_time_ptr to_asn1_time(time_point t);
tl::expected<time_point, std::error_code> from_asn1_time(const ASN1_TIME* t);
time_point not_before(const X509* cert);  // certificates we hold are well-formed: no expected
time_point not_after(const X509* cert);

// ---------------------------------------------------------------------------------------------
// Certificate facts.
// IOS layout: upper-case hex in groups of 8 separated by one space:
// md5 -> "CF2C23D1 560F25DB 22E9D10F E595A6D6" (what `show crypto pki server` and the
// `crypto pki authenticate` prompt print); sha1 -> 5 groups.
std::string ios_fingerprint(const X509* cert, const EVP_MD* md);
inline std::string md5_fingerprint(const X509* cert) {
    return ios_fingerprint(cert, EVP_md5());
}
// Lower-case hex without separators (file names, logs, JSON).
std::string hex_fingerprint(const X509* cert, const EVP_MD* md);
inline std::string sha1_fingerprint(const X509* cert) {
    return hex_fingerprint(cert, EVP_sha1());
}
inline std::string sha256_fingerprint(const X509* cert) {
    return hex_fingerprint(cert, EVP_sha256());
}
// Lower-case hex of arbitrary bytes ("" for empty).
std::string to_hex(byte_view data);

// Subject / issuer in the order stored, "CN=ca-server,O=lab" (short names, no escaping beyond
// `\,`). Not RFC 2253 (which reverses): this is the form IOS and the config use.
std::string name_to_string(const X509_NAME* name);
// One RDN attribute: its short name ("CN"; the dotted OID when OpenSSL has no name for it) and
// its value as UTF-8 ("" when it cannot be converted).
std::string name_entry_key(const X509_NAME_ENTRY* entry);
std::string name_entry_value(const X509_NAME_ENTRY* entry);
std::string subject_string(const X509* cert);
std::string issuer_string(const X509* cert);
// Serial number as upper-case hex without leading zeros ("1", "1A2B"); IOS `show` prints hex.
std::string serial_hex(const ASN1_INTEGER* serial);
std::string serial_hex(const X509* cert);
// The serial as uint64 when it fits and is non-negative.
std::optional<std::uint64_t> serial_u64(const ASN1_INTEGER* serial);
std::optional<std::uint64_t> serial_u64(const X509* cert);
// Subject == issuer and the signature verifies with its own key.
bool is_self_signed(X509* cert);
// Same public key (EVP_PKEY_eq == 1).
bool same_public_key(const EVP_PKEY* a, const EVP_PKEY* b);

// Digest by NID (NID_sha256, NID_md5, ...). nullptr when unknown.
const EVP_MD* digest_by_nid(int nid) noexcept;
// Cipher by NID (NID_aes_128_cbc, NID_des_ede3_cbc, NID_des_cbc, ...). nullptr when unknown.
const EVP_CIPHER* cipher_by_nid(int nid) noexcept;
// Short name for logs ("SHA256", "AES-256-CBC", "DES-CBC").
std::string algorithm_name(int nid);
// RFC 8894 §2.9: single DES and MD5 MUST NOT be used; we allow them only with --legacy-crypto.
bool is_legacy_algorithm(int nid) noexcept;

}  // namespace pkisim::scep

namespace std {
template <>
struct is_error_code_enum<pkisim::scep::error> : true_type {};
}  // namespace std
