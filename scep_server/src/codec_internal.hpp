// What the server half (codec_server.cpp) and the client half (codec_client.cpp) of the SCEP
// codec share: the SCEP attribute OIDs, SignedData / EnvelopedData building and opening, and the
// small attribute readers. Internal to pkisim::scep (not installed with the public headers).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pkisim/scep/codec.hpp"
#include "pkisim/scep/openssl.hpp"

namespace pkisim::scep::codec_detail {

// SCEP attribute OIDs (RFC 8894 §3.2.1, scep-wire §1.4), registered once per process.
struct scep_nids {
    int message_type = 0;
    int pki_status = 0;
    int fail_info = 0;
    int sender_nonce = 0;
    int recipient_nonce = 0;
    int transaction_id = 0;
    int fail_info_text = 0;
};
const scep_nids& nids();

[[noreturn]] void throw_openssl(std::string_view what);
tl::unexpected<std::error_code> fail(error e);

bio_ptr mem_bio();
bytes bio_bytes(BIO* bio);
bio_ptr read_bio(byte_view data);

enum class attr_state { absent, bad, ok };
// The first value of the signed attribute `nid` (what PKCS7_get_signed_attribute returns).
ASN1_TYPE* signed_attribute(CMS_SignerInfo* si, int nid);
attr_state string_attr(CMS_SignerInfo* si, int nid, std::string* out);
attr_state bytes_attr(CMS_SignerInfo* si, int nid, bytes* out);
std::optional<int> parse_small_int(std::string_view s);
bool is_printable(std::string_view s);

// DER helpers for the two small SCEP structures.
void append_header(bytes& out, std::uint8_t tag, std::size_t len);
std::optional<byte_view> sequence_body(byte_view der);

struct scep_attributes {
    std::optional<message_type> type;
    std::string transaction_id;
    std::optional<bytes> sender_nonce;
    std::optional<bytes> recipient_nonce;
    std::optional<pki_status> status;
    std::optional<fail_info> failure;
    std::string fail_info_text;
    std::optional<time_point> signing_time;
};
// How a SignerInfo is signed: PKCS#1 v1.5 (rsaEncryption, scep-wire §0.4), RSA-PSS (when the
// client signed with it), or ECDSA for EC keys (the key decides).
enum class signature_padding { pkcs1, pss };

// SignedData{eContentType data, eContent = content (attached, possibly EMPTY but present),
// certificates = signer + outer, one SignerInfo with the attributes}.
tl::expected<bytes, std::error_code> build_signed(X509* signer, EVP_PKEY* key, int digest_nid,
                                                  std::span<X509* const> outer,
                                                  const scep_attributes& attrs, byte_view content,
                                                  signature_padding padding = {});
// EnvelopedData to `recipients` with `cipher_nid` (issuerAndSerialNumber RecipientInfos; RSA
// keys get key transport, EC keys ECDH key agreement).
tl::expected<bytes, std::error_code> build_envelope(std::span<X509* const> recipients,
                                                    int cipher_nid, bool oaep, byte_view content);
bytes fresh_nonce();

// A SignedData parsed once, as CMS (issue 12 §3: parsing it a second time for CMS_verify parsed
// every certificate inside again, and OpenSSL 3.0 runs a decoder context per public key).
struct verified_signed {
    cms_ptr cms;
    CMS_SignerInfo* si = nullptr;  // owned by cms
    x509_ptr signer;
    std::vector<x509_ptr> certs;  // the SignedData's certificates, signer included, in order
    int digest_nid = 0;
    bool pss = false;  // the SignerInfo's signatureAlgorithm is RSASSA-PSS
};
// Parses a SignedData with exactly one SignerInfo, naming its certificate by issuer and serial
// number (RFC 8894 Appendix A), and that certificate inside.
tl::expected<verified_signed, std::error_code> open_signed(byte_view der, std::size_t max_size);
// Checks the signature over signedAttrs and messageDigest over the content (no chain, no
// purpose; scep-wire §0.6) and returns the content.
tl::expected<bytes, std::error_code> verify_signature(verified_signed& s);

std::vector<x509_ptr> copy_certs(const STACK_OF(X509) * certs);
std::vector<x509_crl_ptr> copy_crls(const STACK_OF(X509_CRL) * crls);
bool is_one_of(X509* cert, std::span<X509* const> set);
int envelope_cipher_nid(byte_view der);

struct opened_envelope {
    bytes content;
    std::size_t key_index = 0;
    bool oaep = false;
};
tl::expected<opened_envelope, std::error_code> open_envelope(byte_view der,
                                                             std::span<const decryption_key> keys);
tl::expected<certs_bundle, std::error_code> read_degenerate(byte_view der);

}  // namespace pkisim::scep::codec_detail
