// The half of the SCEP codec that the server and the client share: the SCEP attribute OIDs,
// building and opening SignedData / EnvelopedData, reading attributes (codec_internal.hpp).
#include "codec_internal.hpp"

#include <algorithm>
#include <array>
#include <climits>
#include <stdexcept>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

namespace pkisim::scep::codec_detail {

// ---------------------------------------------------------------------------------------------
// SCEP attribute OIDs (RFC 8894 §3.2.1, scep-wire §1.4). OpenSSL does not know them: register
// once per process.

static int nid_for_oid(const char* oid, const char* name) {
    ASN1_OBJECT* obj = OBJ_txt2obj(oid, 1);
    int nid = obj != nullptr ? OBJ_obj2nid(obj) : NID_undef;
    ASN1_OBJECT_free(obj);
    if (nid == NID_undef) {
        nid = OBJ_create(oid, name, name);
    }
    if (nid == NID_undef) {
        throw std::runtime_error(fmt::format("cannot register OID {} ({})", oid, name));
    }
    ERR_clear_error();
    return nid;
}

const scep_nids& nids() {
    static const scep_nids ids = [] {
        scep_nids n;
        n.message_type = nid_for_oid("2.16.840.1.113733.1.9.2", "messageType");
        n.pki_status = nid_for_oid("2.16.840.1.113733.1.9.3", "pkiStatus");
        n.fail_info = nid_for_oid("2.16.840.1.113733.1.9.4", "failInfo");
        n.sender_nonce = nid_for_oid("2.16.840.1.113733.1.9.5", "senderNonce");
        n.recipient_nonce = nid_for_oid("2.16.840.1.113733.1.9.6", "recipientNonce");
        n.transaction_id = nid_for_oid("2.16.840.1.113733.1.9.7", "transactionID");
        // RFC 8894 §3.2.1.4: id-scep-failInfoText (id-pkix 24 1).
        n.fail_info_text = nid_for_oid("1.3.6.1.5.5.7.24.1", "failInfoText");
        return n;
    }();
    return ids;
}

[[noreturn]] void throw_openssl(std::string_view what) {
    throw std::runtime_error(fmt::format("{}: {}", what, drain_openssl_errors()));
}

tl::unexpected<std::error_code> fail(error e) {
    ERR_clear_error();
    return tl::unexpected(make_error_code(e));
}

bio_ptr mem_bio() {
    bio_ptr bio{BIO_new(BIO_s_mem())};
    if (!bio) {
        throw_openssl("BIO_new");
    }
    return bio;
}

bytes bio_bytes(BIO* bio) {
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio, &data);
    if (len <= 0) {
        return {};
    }
    const auto* p = reinterpret_cast<const std::uint8_t*>(data);
    return bytes(p, p + len);
}

bio_ptr read_bio(byte_view data) {
    // BIO_new_mem_buf with length 0 would treat the pointer as a C string.
    static constexpr std::uint8_t empty = 0;
    const void* p = data.empty() ? &empty : static_cast<const void*>(data.data());
    bio_ptr bio{BIO_new_mem_buf(p, static_cast<int>(data.size()))};
    if (!bio) {
        throw_openssl("BIO_new_mem_buf");
    }
    return bio;
}

// A string-typed attribute value (lenient: PrintableString is the RFC type; UTF8String,
// IA5String, T61String, VisibleString and OCTET STRING are seen or harmless).
bool is_string_type(int type) {
    switch (type) {
        case V_ASN1_PRINTABLESTRING:
        case V_ASN1_UTF8STRING:
        case V_ASN1_IA5STRING:
        case V_ASN1_T61STRING:
        case V_ASN1_VISIBLESTRING:
        case V_ASN1_OCTET_STRING:
        case V_ASN1_GENERALSTRING:
            return true;
        default:
            return false;
    }
}

ASN1_TYPE* signed_attribute(CMS_SignerInfo* si, int nid) {
    const int idx = CMS_signed_get_attr_by_NID(si, nid, -1);
    X509_ATTRIBUTE* attr = idx >= 0 ? CMS_signed_get_attr(si, idx) : nullptr;
    return attr != nullptr ? X509_ATTRIBUTE_get0_type(attr, 0) : nullptr;
}

attr_state string_attr(CMS_SignerInfo* si, int nid, std::string* out) {
    ASN1_TYPE* t = signed_attribute(si, nid);
    if (t == nullptr) {
        return attr_state::absent;
    }
    if (!is_string_type(t->type) || t->value.asn1_string == nullptr) {
        return attr_state::bad;
    }
    const ASN1_STRING* s = t->value.asn1_string;
    const auto* data = reinterpret_cast<const char*>(ASN1_STRING_get0_data(s));
    out->assign(data, static_cast<std::size_t>(ASN1_STRING_length(s)));
    return attr_state::ok;
}

attr_state bytes_attr(CMS_SignerInfo* si, int nid, bytes* out) {
    std::string s;
    const attr_state st = string_attr(si, nid, &s);
    if (st == attr_state::ok) {
        out->assign(s.begin(), s.end());
    }
    return st;
}

std::optional<int> parse_small_int(std::string_view s) {
    // "19", tolerate surrounding blanks; no sign, at most 3 digits.
    while (!s.empty() && s.front() == ' ') {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) {
        s.remove_suffix(1);
    }
    if (s.empty() || s.size() > 3) {
        return std::nullopt;
    }
    int v = 0;
    for (const char c : s) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        v = v * 10 + (c - '0');
    }
    return v;
}

bool is_printable(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u >= 0x20 && u < 0x7f;
    });
}

// DER length + tag helpers for the two small SCEP structures.
void append_header(bytes& out, std::uint8_t tag, std::size_t len) {
    out.push_back(tag);
    if (len < 0x80) {
        out.push_back(static_cast<std::uint8_t>(len));
        return;
    }
    std::array<std::uint8_t, sizeof(std::size_t)> buf{};
    std::size_t n = 0;
    for (std::size_t v = len; v != 0; v >>= 8) {
        buf[n++] = static_cast<std::uint8_t>(v & 0xff);
    }
    out.push_back(static_cast<std::uint8_t>(0x80 | n));
    for (std::size_t i = n; i > 0; --i) {
        out.push_back(buf[i - 1]);
    }
}

// The body of a SEQUENCE (definite or BER indefinite length) covering the whole input.
std::optional<byte_view> sequence_body(byte_view der) {
    if (der.empty() || der.size() > static_cast<std::size_t>(LONG_MAX)) {
        return std::nullopt;
    }
    const unsigned char* p = der.data();
    long len = 0;
    int tag = 0;
    int cls = 0;
    const int r = ASN1_get_object(&p, &len, &tag, &cls, static_cast<long>(der.size()));
    ERR_clear_error();
    if ((r & 0x80) != 0 || tag != V_ASN1_SEQUENCE || cls != V_ASN1_UNIVERSAL ||
        (r & V_ASN1_CONSTRUCTED) == 0) {
        return std::nullopt;
    }
    const auto header = static_cast<std::size_t>(p - der.data());
    if ((r & 1) != 0) {  // indefinite length: ends with end-of-contents 00 00
        if (der.size() < header + 2 || der[der.size() - 1] != 0 || der[der.size() - 2] != 0) {
            return std::nullopt;
        }
        return der.subspan(header, der.size() - header - 2);
    }
    if (static_cast<std::size_t>(len) != der.size() - header) {
        return std::nullopt;
    }
    return der.subspan(header);
}

// ---------------------------------------------------------------------------------------------
// Building SignedData (requests, CertReps, GetNextCACert).

bool add_string_attr(PKCS7_SIGNER_INFO* si, int nid, int type, std::string_view value) {
    ASN1_STRING* s = ASN1_STRING_type_new(type);
    if (s == nullptr || ASN1_STRING_set(s, value.data(), static_cast<int>(value.size())) != 1 ||
        PKCS7_add_signed_attribute(si, nid, type, s) != 1) {
        ASN1_STRING_free(s);
        return false;
    }
    return true;
}

bool add_scep_attributes(PKCS7_SIGNER_INFO* si, const scep_attributes& a) {
    const scep_nids& n = nids();
    if (PKCS7_add_attrib_content_type(si, nullptr) != 1) {
        return false;
    }
    if (a.signing_time) {
        // Our own signingTime first: PKCS7_dataFinal would otherwise add the wall clock.
        asn1_time_ptr t = to_asn1_time(*a.signing_time);
        if (PKCS7_add0_attrib_signing_time(si, t.get()) != 1) {
            return false;
        }
        static_cast<void>(t.release());
    }
    if (a.type && !add_string_attr(si, n.message_type, V_ASN1_PRINTABLESTRING,
                                   std::to_string(static_cast<int>(*a.type)))) {
        return false;
    }
    if (a.status && !add_string_attr(si, n.pki_status, V_ASN1_PRINTABLESTRING,
                                     std::to_string(static_cast<int>(*a.status)))) {
        return false;
    }
    if (a.failure && !add_string_attr(si, n.fail_info, V_ASN1_PRINTABLESTRING,
                                      std::to_string(static_cast<int>(*a.failure)))) {
        return false;
    }
    if (!a.fail_info_text.empty() &&
        !add_string_attr(si, n.fail_info_text, V_ASN1_UTF8STRING, a.fail_info_text)) {
        return false;
    }
    if (a.type &&
        !add_string_attr(si, n.transaction_id, V_ASN1_PRINTABLESTRING, a.transaction_id)) {
        return false;
    }
    const auto as_view = [](const bytes& b) {
        return std::string_view{reinterpret_cast<const char*>(b.data()), b.size()};
    };
    if (a.sender_nonce &&
        !add_string_attr(si, n.sender_nonce, V_ASN1_OCTET_STRING, as_view(*a.sender_nonce))) {
        return false;
    }
    if (a.recipient_nonce &&
        !add_string_attr(si, n.recipient_nonce, V_ASN1_OCTET_STRING, as_view(*a.recipient_nonce))) {
        return false;
    }
    return true;
}

// SignedData{eContentType data, eContent = content (attached, possibly EMPTY but present),
// certificates = signer + outer, one SignerInfo with the attributes}. scep-wire §1.11 "CertRep".
tl::expected<bytes, std::error_code> build_signed(X509* signer, EVP_PKEY* key, int digest_nid,
                                                  std::span<X509* const> outer,
                                                  const scep_attributes& attrs, byte_view content,
                                                  signature_padding padding) {
    static_cast<void>(padding);
    const EVP_MD* md = digest_by_nid(digest_nid);
    if (md == nullptr) {
        return fail(error::unsupported_algorithm);
    }
    if (signer == nullptr || key == nullptr) {
        return fail(error::bad_key);
    }
    pkcs7_ptr p7{PKCS7_new()};
    if (!p7 || PKCS7_set_type(p7.get(), NID_pkcs7_signed) != 1) {
        return fail(error::internal);
    }
    // PKCS7_add_signature writes rsaEncryption as the signature algorithm (scep-wire §0.4).
    PKCS7_SIGNER_INFO* si = PKCS7_add_signature(p7.get(), signer, key, md);
    if (si == nullptr || PKCS7_add_certificate(p7.get(), signer) != 1) {
        return fail(error::internal);
    }
    for (X509* c : outer) {
        if (c != nullptr && X509_cmp(c, signer) != 0 && PKCS7_add_certificate(p7.get(), c) != 1) {
            return fail(error::internal);
        }
    }
    if (PKCS7_content_new(p7.get(), NID_pkcs7_data) != 1 || !add_scep_attributes(si, attrs)) {
        return fail(error::internal);
    }
    bio_ptr bio{PKCS7_dataInit(p7.get(), nullptr)};
    if (!bio) {
        return fail(error::internal);
    }
    if (!content.empty() &&
        BIO_write(bio.get(), content.data(), static_cast<int>(content.size())) !=
            static_cast<int>(content.size())) {
        return fail(error::internal);
    }
    static_cast<void>(BIO_flush(bio.get()));
    if (PKCS7_dataFinal(p7.get(), bio.get()) != 1) {
        return fail(error::internal);
    }
    // RFC 8894 says FAILURE/PENDING "lack any signed content"; scep-wire §0.14: keep eContent as
    // an empty OCTET STRING so PKCS7_verify without indata works (certmonger).
    ASN1_OCTET_STRING* os = PKCS7_get_octet_string(p7->d.sign->contents);
    if (os == nullptr) {
        return fail(error::internal);
    }
    return to_der(p7.get());
}

// EnvelopedData to `recipients` with `cipher_nid` (issuerAndSerialNumber RecipientInfos).
tl::expected<bytes, std::error_code> build_envelope(std::span<X509* const> recipients,
                                                    int cipher_nid, bool oaep, byte_view content) {
    const EVP_CIPHER* cipher = cipher_by_nid(cipher_nid);
    if (cipher == nullptr) {
        return fail(error::unsupported_algorithm);
    }
    if (recipients.empty()) {
        return fail(error::internal);
    }
    bio_ptr in = read_bio(content);
    cms_ptr cms{CMS_encrypt(nullptr, in.get(), cipher, CMS_BINARY | CMS_PARTIAL)};
    if (!cms) {
        return fail(error::internal);
    }
    for (X509* r : recipients) {
        CMS_RecipientInfo* ri = CMS_add1_recipient_cert(cms.get(), r, CMS_KEY_PARAM);
        if (ri == nullptr) {
            return fail(error::internal);
        }
        // RSA keys get key transport with the padding asked for; an EC key (issue 11 §2.3:
        // clients with P-256 / P-384 keys) gets ECDH key agreement, which has no padding.
        if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_TRANS) {
            EVP_PKEY_CTX* pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);
            if (pctx == nullptr ||
                EVP_PKEY_CTX_set_rsa_padding(
                    pctx, oaep ? RSA_PKCS1_OAEP_PADDING : RSA_PKCS1_PADDING) <= 0) {
                return fail(error::internal);
            }
        }
    }
    if (CMS_final(cms.get(), in.get(), nullptr, CMS_BINARY) != 1) {
        // DES without the legacy provider ends here.
        return fail(cipher_nid == NID_des_cbc ? error::legacy_algorithm_disabled : error::internal);
    }
    const int len = i2d_CMS_ContentInfo(cms.get(), nullptr);
    if (len <= 0) {
        return fail(error::internal);
    }
    bytes out(static_cast<std::size_t>(len));
    unsigned char* p = out.data();
    i2d_CMS_ContentInfo(cms.get(), &p);
    return out;
}

bytes fresh_nonce() {
    bytes nonce(16);
    if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1) {
        throw_openssl("RAND_bytes");
    }
    return nonce;
}

// ---------------------------------------------------------------------------------------------
// Reading SignedData.

// Parses a SignedData with exactly one SignerInfo whose certificate is inside.
tl::expected<verified_signed, std::error_code> open_signed(byte_view der, std::size_t max_size) {
    if (der.size() > max_size) {
        return fail(error::message_too_large);
    }
    if (der.empty() || der.size() > static_cast<std::size_t>(LONG_MAX)) {
        return fail(error::malformed_der);
    }
    const unsigned char* p = der.data();
    cms_ptr cms{d2i_CMS_ContentInfo(nullptr, &p, static_cast<long>(der.size()))};
    if (!cms || p != der.data() + der.size()) {
        return fail(error::malformed_der);
    }
    if (OBJ_obj2nid(CMS_get0_type(cms.get())) != NID_pkcs7_signed) {
        return fail(error::not_signed_data);
    }
    STACK_OF(CMS_SignerInfo)* infos = CMS_get0_SignerInfos(cms.get());
    if (infos == nullptr || sk_CMS_SignerInfo_num(infos) != 1) {
        return fail(error::no_signer);
    }
    verified_signed out;
    out.si = sk_CMS_SignerInfo_value(infos, 0);
    X509_ALGOR* dig = nullptr;
    X509_ALGOR* sig = nullptr;
    CMS_SignerInfo_get0_algs(out.si, nullptr, nullptr, &dig, &sig);
    out.digest_nid = dig != nullptr ? OBJ_obj2nid(dig->algorithm) : NID_undef;
    out.pss = sig != nullptr && OBJ_obj2nid(sig->algorithm) == NID_rsassaPss;
    STACK_OF(X509)* certs = CMS_get1_certs(cms.get());
    out.certs = copy_certs(certs);
    sk_X509_pop_free(certs, X509_free);
    // The signer must be in `certificates` (RFC 8894 Appendix A), named by issuer and serial
    // number as a PKCS#7 SignerInfo names it (a subjectKeyIdentifier is not what SCEP sends).
    ASN1_OCTET_STRING* key_id = nullptr;
    X509_NAME* issuer = nullptr;
    ASN1_INTEGER* serial = nullptr;
    if (CMS_SignerInfo_get0_signer_id(out.si, &key_id, &issuer, &serial) != 1 ||
        issuer == nullptr || serial == nullptr) {
        return fail(error::no_signer_certificate);
    }
    for (const x509_ptr& c : out.certs) {
        if (CMS_SignerInfo_cert_cmp(out.si, c.get()) == 0) {
            out.signer = share(c.get());
            break;
        }
    }
    if (!out.signer) {
        return fail(error::no_signer_certificate);
    }
    out.cms = std::move(cms);
    return out;
}

// The CMS API verifies what PKCS7_verify cannot (RSASSA-PSS SignerInfos: strongSwan
// `pki --scep --rsa-padding pss`, issue 11 §2.2) and is what `openssl cms -verify` runs.
// CMS_NO_SIGNER_CERT_VERIFY: no chain and no purpose (scep-wire §0.6); the signer certificate
// is the one inside (open_signed checked it is there).
tl::expected<bytes, std::error_code> verify_signature(verified_signed& s) {
    ASN1_OCTET_STRING** content = CMS_get0_content(s.cms.get());
    if (content == nullptr || *content == nullptr) {
        return fail(error::bad_message_data);  // detached: nothing SCEP sends
    }
    bio_ptr out = mem_bio();
    if (CMS_verify(s.cms.get(), nullptr, nullptr, nullptr, out.get(),
                   CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY) != 1) {
        return fail(error::bad_signature);
    }
    return bio_bytes(out.get());
}

std::vector<x509_ptr> copy_certs(const STACK_OF(X509) * certs) {
    std::vector<x509_ptr> out;
    const int n = certs != nullptr ? sk_X509_num(certs) : 0;
    out.reserve(static_cast<std::size_t>(std::max(n, 0)));
    for (int i = 0; i < n; ++i) {
        out.push_back(share(sk_X509_value(certs, i)));
    }
    return out;
}

std::vector<x509_crl_ptr> copy_crls(const STACK_OF(X509_CRL) * crls) {
    std::vector<x509_crl_ptr> out;
    const int n = crls != nullptr ? sk_X509_CRL_num(crls) : 0;
    for (int i = 0; i < n; ++i) {
        out.push_back(share(sk_X509_CRL_value(crls, i)));
    }
    return out;
}

bool is_one_of(X509* cert, std::span<X509* const> set) {
    return std::any_of(set.begin(), set.end(),
                       [cert](X509* c) { return c != nullptr && X509_cmp(c, cert) == 0; });
}

// The content-encryption algorithm of an EnvelopedData (CMS has no getter in 3.0, PKCS7 has the
// field). NID_undef when PKCS7 cannot parse it (e.g. a subjectKeyIdentifier RecipientInfo).
int envelope_cipher_nid(byte_view der) {
    auto p7 = pkcs7_from_der(der);
    if (!p7 || PKCS7_type_is_enveloped(p7->get()) == 0 || (*p7)->d.enveloped == nullptr ||
        (*p7)->d.enveloped->enc_data == nullptr ||
        (*p7)->d.enveloped->enc_data->algorithm == nullptr) {
        ERR_clear_error();
        return NID_undef;
    }
    return OBJ_obj2nid((*p7)->d.enveloped->enc_data->algorithm->algorithm);
}

// Decrypts with the first of `keys` that a KeyTransRecipientInfo names (issuer+serial or SKI).
// A KeyAgreeRecipientInfo (ECDH, EC recipients) with an encrypted key for `cert`.
static bool agreement_names(CMS_RecipientInfo* ri, X509* cert) {
    STACK_OF(CMS_RecipientEncryptedKey)* reks = CMS_RecipientInfo_kari_get0_reks(ri);
    for (int i = 0; i < sk_CMS_RecipientEncryptedKey_num(reks); ++i) {
        if (CMS_RecipientEncryptedKey_cert_cmp(sk_CMS_RecipientEncryptedKey_value(reks, i), cert) ==
            0)
            return true;
    }
    return false;
}

tl::expected<opened_envelope, std::error_code> open_envelope(byte_view der,
                                                             std::span<const decryption_key> keys) {
    const unsigned char* p = der.data();
    if (der.empty() || der.size() > static_cast<std::size_t>(LONG_MAX)) {
        return fail(error::not_enveloped_data);
    }
    cms_ptr cms{d2i_CMS_ContentInfo(nullptr, &p, static_cast<long>(der.size()))};
    if (!cms || p != der.data() + der.size() ||
        OBJ_obj2nid(CMS_get0_type(cms.get())) != NID_pkcs7_enveloped) {
        return fail(error::not_enveloped_data);
    }
    STACK_OF(CMS_RecipientInfo)* infos = CMS_get0_RecipientInfos(cms.get());
    const int n = infos != nullptr ? sk_CMS_RecipientInfo_num(infos) : 0;
    for (std::size_t k = 0; k < keys.size(); ++k) {
        if (keys[k].cert == nullptr || keys[k].key == nullptr) {
            continue;
        }
        for (int i = 0; i < n; ++i) {
            CMS_RecipientInfo* ri = sk_CMS_RecipientInfo_value(infos, i);
            opened_envelope out;
            out.key_index = k;
            if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_TRANS) {
                if (CMS_RecipientInfo_ktri_cert_cmp(ri, keys[k].cert) != 0)
                    continue;
                X509_ALGOR* alg = nullptr;
                CMS_RecipientInfo_ktri_get0_algs(ri, nullptr, nullptr, &alg);
                out.oaep = alg != nullptr && OBJ_obj2nid(alg->algorithm) == NID_rsaesOaep;
            } else if (CMS_RecipientInfo_type(ri) != CMS_RECIPINFO_AGREE ||
                       !agreement_names(ri, keys[k].cert)) {
                continue;
            }
            bio_ptr plain = mem_bio();
            // With the certificate given, CMS_decrypt only tries the matching RecipientInfo
            // and reports failure instead of returning random data (MMA defence).
            if (CMS_decrypt(cms.get(), keys[k].key, keys[k].cert, nullptr, plain.get(),
                            CMS_BINARY) != 1) {
                return fail(error::decrypt_failed);
            }
            out.content = bio_bytes(plain.get());
            return out;
        }
    }
    return fail(error::not_for_us);
}

tl::expected<certs_bundle, std::error_code> read_degenerate(byte_view der) {
    auto p7 = pkcs7_from_der(der);
    if (!p7) {
        return tl::unexpected(p7.error());
    }
    if (PKCS7_type_is_signed(p7->get()) == 0 || (*p7)->d.sign == nullptr) {
        return fail(error::not_signed_data);
    }
    certs_bundle out;
    out.certs = copy_certs((*p7)->d.sign->cert);
    out.crls = copy_crls((*p7)->d.sign->crl);
    return out;
}

}  // namespace pkisim::scep::codec_detail

namespace pkisim::scep {

// ---------------------------------------------------------------------------------------------
std::string_view to_string(message_type t) noexcept {
    switch (t) {
        case message_type::cert_rep:
            return "CertRep";
        case message_type::renewal_req:
            return "RenewalReq";
        case message_type::pkcs_req:
            return "PKCSReq";
        case message_type::cert_poll:
            return "CertPoll";
        case message_type::get_cert:
            return "GetCert";
        case message_type::get_crl:
            return "GetCRL";
    }
    return "unknown";
}

std::string_view to_string(pki_status s) noexcept {
    switch (s) {
        case pki_status::success:
            return "SUCCESS";
        case pki_status::failure:
            return "FAILURE";
        case pki_status::pending:
            return "PENDING";
    }
    return "unknown";
}

std::string_view to_string(fail_info f) noexcept {
    switch (f) {
        case fail_info::bad_alg:
            return "badAlg";
        case fail_info::bad_message_check:
            return "badMessageCheck";
        case fail_info::bad_request:
            return "badRequest";
        case fail_info::bad_time:
            return "badTime";
        case fail_info::bad_cert_id:
            return "badCertId";
    }
    return "unknown";
}

reply_context reply_context::clone() const {
    reply_context c;
    c.transaction_id = transaction_id;
    c.sender_nonce = sender_nonce;
    c.signer = share(signer.get());
    c.digest_nid = digest_nid;
    c.cipher_nid = cipher_nid;
    return c;
}

reply_context pki_request::context() const {
    reply_context c;
    c.transaction_id = transaction_id;
    c.sender_nonce = sender_nonce;
    c.signer = share(signer.get());
    c.digest_nid = digest_nid;
    c.cipher_nid = cipher_nid;
    return c;
}

}  // namespace pkisim::scep
