#include "pkisim/scep/codec.hpp"

#include <algorithm>
#include <array>
#include <climits>
#include <mutex>
#include <stdexcept>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "pkisim/scep/crypto.hpp"

namespace pkisim::scep {

namespace {

// ---------------------------------------------------------------------------------------------
// SCEP attribute OIDs (RFC 8894 §3.2.1, scep-wire §1.4). OpenSSL does not know them: register
// once per process.
struct scep_nids {
    int message_type = NID_undef;
    int pki_status = NID_undef;
    int fail_info = NID_undef;
    int sender_nonce = NID_undef;
    int recipient_nonce = NID_undef;
    int transaction_id = NID_undef;
    int fail_info_text = NID_undef;
};

int nid_for_oid(const char* oid, const char* name) {
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

enum class attr_state { absent, bad, ok };

attr_state string_attr(PKCS7_SIGNER_INFO* si, int nid, std::string* out) {
    ASN1_TYPE* t = PKCS7_get_signed_attribute(si, nid);
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

attr_state bytes_attr(PKCS7_SIGNER_INFO* si, int nid, bytes* out) {
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
                                                  const scep_attributes& attrs, byte_view content) {
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
        EVP_PKEY_CTX* pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);
        if (pctx == nullptr || EVP_PKEY_CTX_set_rsa_padding(
                                   pctx, oaep ? RSA_PKCS1_OAEP_PADDING : RSA_PKCS1_PADDING) <= 0) {
            return fail(error::internal);
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
struct verified_signed {
    pkcs7_ptr p7;
    PKCS7_SIGNER_INFO* si = nullptr;  // owned by p7
    x509_ptr signer;
    int digest_nid = NID_undef;
};

// Parses a SignedData with exactly one SignerInfo whose certificate is inside.
tl::expected<verified_signed, std::error_code> open_signed(byte_view der, std::size_t max_size) {
    if (der.size() > max_size) {
        return fail(error::message_too_large);
    }
    auto p7 = pkcs7_from_der(der);
    if (!p7) {
        return tl::unexpected(p7.error());
    }
    if (PKCS7_type_is_signed(p7->get()) == 0 || (*p7)->d.sign == nullptr) {
        return fail(error::not_signed_data);
    }
    STACK_OF(PKCS7_SIGNER_INFO)* infos = PKCS7_get_signer_info(p7->get());
    if (infos == nullptr || sk_PKCS7_SIGNER_INFO_num(infos) != 1) {
        return fail(error::no_signer);
    }
    verified_signed out;
    out.si = sk_PKCS7_SIGNER_INFO_value(infos, 0);
    X509_ALGOR* dig = nullptr;
    PKCS7_SIGNER_INFO_get0_algs(out.si, nullptr, &dig, nullptr);
    out.digest_nid = dig != nullptr ? OBJ_obj2nid(dig->algorithm) : NID_undef;
    // The signer must be in `certificates` (RFC 8894 Appendix A).
    STACK_OF(X509)* signers = PKCS7_get0_signers(p7->get(), nullptr, 0);
    if (signers == nullptr || sk_X509_num(signers) != 1) {
        sk_X509_free(signers);
        return fail(error::no_signer_certificate);
    }
    out.signer = share(sk_X509_value(signers, 0));
    sk_X509_free(signers);
    out.p7 = std::move(*p7);
    return out;
}

// Checks the signature over signedAttrs and messageDigest over the content (PKCS7_NOVERIFY: no
// chain, no purpose; scep-wire §0.6) and returns the content.
tl::expected<bytes, std::error_code> verify_signature(PKCS7* p7) {
    if (PKCS7_get_octet_string(p7->d.sign->contents) == nullptr) {
        return fail(error::bad_message_data);  // detached: nothing SCEP sends
    }
    bio_ptr out = mem_bio();
    if (PKCS7_verify(p7, nullptr, nullptr, nullptr, out.get(), PKCS7_NOVERIFY | PKCS7_BINARY) !=
        1) {
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

struct opened_envelope {
    bytes content;
    std::size_t key_index = 0;
    bool oaep = false;
};

// Decrypts with the first of `keys` that a KeyTransRecipientInfo names (issuer+serial or SKI).
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
            if (CMS_RecipientInfo_type(ri) != CMS_RECIPINFO_TRANS ||
                CMS_RecipientInfo_ktri_cert_cmp(ri, keys[k].cert) != 0) {
                continue;
            }
            opened_envelope out;
            out.key_index = k;
            X509_ALGOR* alg = nullptr;
            CMS_RecipientInfo_ktri_get0_algs(ri, nullptr, nullptr, &alg);
            out.oaep = alg != nullptr && OBJ_obj2nid(alg->algorithm) == NID_rsaesOaep;
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

std::optional<std::string> challenge_of(X509_REQ* req) {
    const int idx = X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword, -1);
    if (idx < 0) {
        return std::nullopt;
    }
    X509_ATTRIBUTE* attr = X509_REQ_get_attr(req, idx);
    ASN1_TYPE* t = attr != nullptr ? X509_ATTRIBUTE_get0_type(attr, 0) : nullptr;
    if (t == nullptr || t->type == V_ASN1_BOOLEAN || t->type == V_ASN1_OBJECT ||
        t->type == V_ASN1_NULL || t->type == V_ASN1_SEQUENCE || t->type == V_ASN1_SET) {
        return std::string{};  // present but unreadable: a wrong challenge, not a crash
    }
    unsigned char* utf8 = nullptr;
    // DirectoryString: PrintableString, UTF8String (certmonger with non-ASCII), BMPString...
    const int len = ASN1_STRING_to_UTF8(&utf8, t->value.asn1_string);
    if (len < 0) {
        ERR_clear_error();
        return std::string{};
    }
    std::string out(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(len));
    OPENSSL_free(utf8);
    return out;
}

tl::expected<message_data, std::error_code> parse_message_data(message_type type, byte_view der) {
    switch (type) {
        case message_type::pkcs_req:
        case message_type::renewal_req: {
            auto req = x509_req_from_der(der);
            if (!req) {
                return fail(error::bad_message_data);
            }
            EVP_PKEY* pub = X509_REQ_get0_pubkey(req->get());
            if (pub == nullptr) {
                return fail(error::bad_message_data);
            }
            // RFC 8894 §2.3 / scep-wire §1.5 step 4: proof of possession.
            if (X509_REQ_verify(req->get(), pub) != 1) {
                return fail(error::bad_csr_signature);
            }
            csr_request csr;
            csr.der.assign(der.begin(), der.end());
            csr.challenge_password = challenge_of(req->get());
            csr.subject = name_to_string(X509_REQ_get_subject_name(req->get()));
            csr.public_key = pub;
            csr.csr = std::move(*req);
            return message_data{std::move(csr)};
        }
        case message_type::cert_poll: {
            const auto body = sequence_body(der);
            if (!body) {
                return fail(error::bad_message_data);
            }
            const unsigned char* p = body->data();
            const unsigned char* end = body->data() + body->size();
            issuer_and_subject ias;
            ias.issuer.reset(d2i_X509_NAME(nullptr, &p, end - p));
            if (ias.issuer) {
                ias.subject.reset(d2i_X509_NAME(nullptr, &p, end - p));
            }
            if (!ias.issuer || !ias.subject || p != end) {
                return fail(error::bad_message_data);
            }
            return message_data{std::move(ias)};
        }
        case message_type::get_cert:
        case message_type::get_crl: {
            const unsigned char* p = der.data();
            std::unique_ptr<PKCS7_ISSUER_AND_SERIAL,
                            openssl_deleter<PKCS7_ISSUER_AND_SERIAL, PKCS7_ISSUER_AND_SERIAL_free>>
                ias{der.empty()
                        ? nullptr
                        : d2i_PKCS7_ISSUER_AND_SERIAL(nullptr, &p, static_cast<long>(der.size()))};
            if (!ias || p != der.data() + der.size() || ias->issuer == nullptr ||
                ias->serial == nullptr) {
                return fail(error::bad_message_data);
            }
            issuer_and_serial out;
            out.issuer = copy(ias->issuer);
            out.serial.reset(ASN1_INTEGER_dup(ias->serial));
            out.serial_hex = serial_hex(ias->serial);
            out.serial_u64 = serial_u64(ias->serial);
            return message_data{std::move(out)};
        }
        case message_type::cert_rep:
            break;
    }
    return fail(error::unknown_message_type);
}

}  // namespace

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

// ---------------------------------------------------------------------------------------------
tl::expected<pki_request, decode_failure> decode_pki_message(byte_view der,
                                                             std::span<const decryption_key> keys,
                                                             const decode_options& options) {
    const scep_nids& n = nids();
    std::optional<reply_context> context;
    const auto failure = [&](error e, std::string text,
                             std::optional<fail_info> info = std::nullopt) {
        ERR_clear_error();
        const std::error_code ec = make_error_code(e);
        decode_failure f;
        f.info = info.value_or(fail_info_for(ec));
        f.code = ec;
        f.text = text.empty() ? ec.message() : std::move(text);
        if (context) {
            f.context = context->clone();
        }
        return tl::unexpected(std::move(f));
    };

    auto opened = open_signed(der, options.max_message_size);
    if (!opened) {
        return failure(static_cast<error>(opened.error().value()), {});
    }
    PKCS7_SIGNER_INFO* si = opened->si;

    // Attributes needed for any reply (scep-wire §0.14).
    std::string transaction_id;
    bytes sender_nonce;
    const attr_state tid_state = string_attr(si, n.transaction_id, &transaction_id);
    const attr_state nonce_state = bytes_attr(si, n.sender_nonce, &sender_nonce);
    if (tid_state != attr_state::ok || nonce_state != attr_state::ok) {
        const bool absent = tid_state == attr_state::absent || nonce_state == attr_state::absent;
        return failure(absent ? error::missing_attribute : error::bad_attribute,
                       absent ? "transactionID or senderNonce missing"
                              : "transactionID or senderNonce has a wrong type");
    }
    // Nonce: RFC says 16 bytes; tolerate other sizes, but cap (Dogtag caps at 16).
    if (transaction_id.empty() || transaction_id.size() > options.max_transaction_id_size ||
        !is_printable(transaction_id)) {
        return failure(error::bad_attribute, "transactionID empty, too long or not printable");
    }
    if (sender_nonce.empty() || sender_nonce.size() > options.max_nonce_size) {
        return failure(error::bad_attribute,
                       fmt::format("senderNonce of {} bytes", sender_nonce.size()));
    }
    const bool digest_known = digest_by_nid(opened->digest_nid) != nullptr;
    const bool digest_legacy = is_legacy_algorithm(opened->digest_nid);
    context.emplace();
    context->transaction_id = transaction_id;
    context->sender_nonce = sender_nonce;
    context->signer = share(opened->signer.get());
    // The reply is signed with the client's digest (scep-wire §0.3), unless it is one we refuse.
    context->digest_nid =
        digest_known && (!digest_legacy || options.allow_legacy) ? opened->digest_nid : NID_sha256;

    if (!digest_known) {
        return failure(error::unsupported_algorithm,
                       fmt::format("unsupported digest {}", algorithm_name(opened->digest_nid)));
    }
    if (digest_legacy && !options.allow_legacy) {
        return failure(error::legacy_algorithm_disabled,
                       "MD5 is refused (RFC 8894 §2.9); start the server with --legacy-crypto "
                       "to accept it");
    }

    auto content = verify_signature(opened->p7.get());
    if (!content) {
        return failure(static_cast<error>(content.error().value()),
                       "pkiMessage signature or messageDigest does not verify");
    }

    std::string type_text;
    if (string_attr(si, n.message_type, &type_text) != attr_state::ok) {
        return failure(error::missing_attribute, "messageType missing or of a wrong type");
    }
    const std::optional<int> type_value = parse_small_int(type_text);
    message_type type{};
    switch (type_value.value_or(-1)) {
        case 17:
            type = message_type::renewal_req;
            break;
        case 19:
            type = message_type::pkcs_req;
            break;
        case 20:
            type = message_type::cert_poll;
            break;
        case 21:
            type = message_type::get_cert;
            break;
        case 22:
            type = message_type::get_crl;
            break;
        default:
            // 18 (UpdateReq) is unassigned in RFC 8894; 3 is a reply.
            return failure(error::unknown_message_type,
                           fmt::format("messageType \"{}\" is not a request this CA serves",
                                       is_printable(type_text) ? type_text : "?"));
    }

    pki_request req;
    req.type = type;
    req.transaction_id = std::move(transaction_id);
    req.sender_nonce = std::move(sender_nonce);
    req.signer = std::move(opened->signer);
    req.signer_is_self_signed = is_self_signed(req.signer.get());
    req.digest_nid = opened->digest_nid;
    for (x509_ptr& c : copy_certs(opened->p7->d.sign->cert)) {
        if (X509_cmp(c.get(), req.signer.get()) != 0) {
            req.extra_certs.push_back(std::move(c));
        }
    }
    if (ASN1_TYPE* st = PKCS7_get_signed_attribute(si, NID_pkcs9_signingTime)) {
        if (st->type == V_ASN1_UTCTIME || st->type == V_ASN1_GENERALIZEDTIME) {
            if (auto t = from_asn1_time(st->value.utctime)) {
                req.signing_time = *t;
            }
        }
    }

    // The pkcsPKIEnvelope (RFC 8894 §3.2.2).
    const int cipher_nid = envelope_cipher_nid(*content);
    if (cipher_nid != NID_undef) {
        context->cipher_nid = cipher_nid;
        if (cipher_by_nid(cipher_nid) == nullptr) {
            return failure(
                error::unsupported_algorithm,
                fmt::format("unsupported content cipher {}", algorithm_name(cipher_nid)));
        }
        if (is_legacy_algorithm(cipher_nid) && !options.allow_legacy) {
            return failure(error::legacy_algorithm_disabled,
                           "single DES is refused (RFC 8894 §2.9); start the server with "
                           "--legacy-crypto to accept it");
        }
    }
    auto envelope = open_envelope(*content, keys);
    if (!envelope) {
        const auto e = static_cast<error>(envelope.error().value());
        if (e == error::decrypt_failed && cipher_nid == NID_des_cbc && !legacy_provider_loaded()) {
            return failure(error::legacy_algorithm_disabled,
                           "single DES needs the OpenSSL legacy provider (--legacy-crypto)");
        }
        return failure(e, e == error::not_for_us
                              ? "the envelope is not encrypted to any certificate of this CA/RA"
                              : std::string{});
    }
    req.cipher_nid = cipher_nid != NID_undef ? cipher_nid : 0;
    req.recipient_index = envelope->key_index;
    req.oaep = envelope->oaep;

    auto data = parse_message_data(type, envelope->content);
    if (!data) {
        return failure(static_cast<error>(data.error().value()),
                       fmt::format("{} messageData: {}", to_string(type), data.error().message()));
    }
    req.data = std::move(*data);
    return req;
}

tl::expected<void, std::error_code> verify_signer_chain(X509* signer,
                                                        std::span<X509* const> trusted,
                                                        time_point at) {
    x509_store_ptr store{X509_STORE_new()};
    x509_store_ctx_ptr ctx{X509_STORE_CTX_new()};
    if (!store || !ctx || signer == nullptr) {
        return fail(error::internal);
    }
    for (X509* c : trusted) {
        if (c != nullptr && X509_STORE_add_cert(store.get(), c) != 1) {
            return fail(error::internal);
        }
    }
    if (X509_STORE_CTX_init(ctx.get(), store.get(), signer, nullptr) != 1) {
        return fail(error::internal);
    }
    X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
    // scep-wire §0.6: purpose ANY, or a clientAuth-only EKU fails "unsuitable certificate purpose".
    X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_ANY);
    X509_VERIFY_PARAM_set_time(
        param, static_cast<time_t>(
                   std::chrono::floor<std::chrono::seconds>(at).time_since_epoch().count()));
    // An intermediate (RA-mode upstream) may be a trust anchor on its own.
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
    if (X509_verify_cert(ctx.get()) == 1) {
        return {};
    }
    const int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    if (err == X509_V_ERR_CERT_HAS_EXPIRED || err == X509_V_ERR_CERT_NOT_YET_VALID) {
        return fail(error::signer_expired);
    }
    return fail(error::signer_not_trusted);
}

// ---------------------------------------------------------------------------------------------
tl::expected<bytes, std::error_code> encode_cert_rep(const cert_rep_params& p) {
    scep_attributes attrs;
    attrs.type = message_type::cert_rep;
    attrs.transaction_id = p.transaction_id;
    attrs.sender_nonce = p.sender_nonce.empty() ? fresh_nonce() : p.sender_nonce;
    attrs.recipient_nonce = p.recipient_nonce;
    attrs.status = p.status;
    attrs.signing_time = p.signing_time;
    if (p.status == pki_status::failure) {
        attrs.failure = p.failure;
        attrs.fail_info_text = p.fail_info_text;
    }
    std::vector<X509*> outer;
    if (p.status == pki_status::success && p.issued_in_outer_certs && !p.issued.empty()) {
        outer.push_back(p.issued.front());
    }
    outer.insert(outer.end(), p.extra_certs.begin(), p.extra_certs.end());
    bytes content;
    if (p.status == pki_status::success) {
        if (p.recipient == nullptr || (p.issued.empty() && p.crls.empty())) {
            return fail(error::internal);
        }
        const bytes inner = degenerate_certs_only(p.issued, p.crls);
        X509* recipient = p.recipient;
        auto env = build_envelope(std::span<X509* const>{&recipient, 1},
                                  p.cipher_nid != 0 ? p.cipher_nid : NID_aes_128_cbc, false, inner);
        if (!env) {
            return tl::unexpected(env.error());
        }
        content = std::move(*env);
    }
    return build_signed(p.signer_cert, p.signer_key, p.digest_nid != 0 ? p.digest_nid : NID_sha256,
                        outer, attrs, content);
}

namespace {
cert_rep_params base_params(const reply_context& ctx, X509* signer_cert, EVP_PKEY* signer_key,
                            time_point signing_time) {
    cert_rep_params p;
    p.transaction_id = ctx.transaction_id;
    p.recipient_nonce = ctx.sender_nonce;
    p.recipient = ctx.signer.get();
    p.digest_nid = ctx.digest_nid != 0 ? ctx.digest_nid : NID_sha256;
    p.cipher_nid = ctx.cipher_nid != 0 ? ctx.cipher_nid : NID_aes_128_cbc;
    p.signer_cert = signer_cert;
    p.signer_key = signer_key;
    p.signing_time = signing_time;
    return p;
}
}  // namespace

cert_rep_params success_for(const reply_context& ctx, X509* signer_cert, EVP_PKEY* signer_key,
                            std::vector<X509*> issued, time_point signing_time) {
    cert_rep_params p = base_params(ctx, signer_cert, signer_key, signing_time);
    p.status = pki_status::success;
    p.issued = std::move(issued);
    return p;
}

cert_rep_params pending_for(const reply_context& ctx, X509* signer_cert, EVP_PKEY* signer_key,
                            time_point signing_time) {
    cert_rep_params p = base_params(ctx, signer_cert, signer_key, signing_time);
    p.status = pki_status::pending;
    return p;
}

cert_rep_params failure_for(const reply_context& ctx, X509* signer_cert, EVP_PKEY* signer_key,
                            fail_info info, std::string text, time_point signing_time) {
    cert_rep_params p = base_params(ctx, signer_cert, signer_key, signing_time);
    p.status = pki_status::failure;
    p.failure = info;
    p.fail_info_text = std::move(text);
    return p;
}

bytes degenerate_certs_only(std::span<X509* const> certs, std::span<X509_CRL* const> crls) {
    pkcs7_ptr p7{PKCS7_new()};
    if (!p7 || PKCS7_set_type(p7.get(), NID_pkcs7_signed) != 1) {
        throw_openssl("PKCS7_set_type");
    }
    // RFC 8894 §3.4: contentInfo of type data with the content omitted (`crl2pkcs7`).
    PKCS7* contents = p7->d.sign->contents;
    ASN1_OBJECT_free(contents->type);
    contents->type = OBJ_nid2obj(NID_pkcs7_data);
    for (X509* c : certs) {
        if (c != nullptr && PKCS7_add_certificate(p7.get(), c) != 1) {
            throw_openssl("PKCS7_add_certificate");
        }
    }
    for (X509_CRL* c : crls) {
        if (c != nullptr && PKCS7_add_crl(p7.get(), c) != 1) {
            throw_openssl("PKCS7_add_crl");
        }
    }
    return to_der(p7.get());
}

tl::expected<bytes, std::error_code> encode_get_next_ca_cert(std::span<X509* const> new_certs,
                                                             X509* signer_cert,
                                                             EVP_PKEY* signer_key, int digest_nid,
                                                             time_point signing_time) {
    if (new_certs.empty()) {
        return fail(error::internal);
    }
    const bytes inner = degenerate_certs_only(new_certs);
    scep_attributes attrs;
    attrs.signing_time = signing_time;
    // scep-wire §1.8: content per RFC 8894 §4.7.1 AND the outer certificates (sscep, jscep).
    return build_signed(signer_cert, signer_key, digest_nid, new_certs, attrs, inner);
}

std::string get_ca_caps_body(bool next_ca_available) {
    // scep-wire §1.7: individual keywords as well as SCEPStandard (jscep), SHA-384 and DES3 for
    // clients that index the list; GetNextCACert only while a shadow CA exists.
    std::string body = "AES\nDES3\n";
    if (next_ca_available) {
        body += "GetNextCACert\n";
    }
    body += "POSTPKIOperation\nRenewal\nSHA-1\nSHA-256\nSHA-384\nSHA-512\nSCEPStandard\n";
    return body;
}

// ---------------------------------------------------------------------------------------------
fail_info fail_info_for(std::error_code ec) noexcept {
    if (ec.category() != scep_category()) {
        return fail_info::bad_request;
    }
    switch (static_cast<error>(ec.value())) {
        case error::bad_signature:
            return fail_info::bad_message_check;
        case error::unsupported_algorithm:
        case error::legacy_algorithm_disabled:
            return fail_info::bad_alg;
        case error::bad_time:
            return fail_info::bad_time;
        case error::unknown_certificate:
            return fail_info::bad_cert_id;
        default:
            return fail_info::bad_request;
    }
}

wire_answer to_wire(std::error_code ec, bool have_reply_context) {
    wire_answer w;
    if (!ec) {
        return w;
    }
    const bool internal =
        ec.category() != scep_category() || static_cast<error>(ec.value()) == error::internal;
    if (have_reply_context) {
        // RFC 8894 / micromdm layering: a SCEP problem is a CertRep FAILURE, never an HTTP 500.
        w.failure = fail_info_for(ec);
        return w;
    }
    if (ec.category() == scep_category() &&
        static_cast<error>(ec.value()) == error::message_too_large) {
        w.http_status = 413;
        return w;
    }
    w.http_status = internal ? 500 : 400;
    return w;
}

// ---------------------------------------------------------------------------------------------
// Client side.
tl::expected<bytes, std::error_code> encode_pki_request(const request_params& p) {
    if (p.transaction_id.empty()) {
        return fail(error::missing_attribute);
    }
    auto env = build_envelope(p.recipients, p.cipher_nid, p.oaep, p.message_data);
    if (!env) {
        return tl::unexpected(env.error());
    }
    scep_attributes attrs;
    attrs.type = p.type;
    attrs.transaction_id = p.transaction_id;
    attrs.sender_nonce = p.sender_nonce.empty() ? fresh_nonce() : p.sender_nonce;
    attrs.signing_time = p.signing_time;
    return build_signed(p.signer_cert, p.signer_key, p.digest_nid, {}, attrs, *env);
}

bytes encode_issuer_and_subject(const X509_NAME* issuer, const X509_NAME* subject) {
    const bytes a = to_der(issuer);
    const bytes b = to_der(subject);
    bytes out;
    out.reserve(a.size() + b.size() + 8);
    append_header(out, 0x30, a.size() + b.size());
    out.insert(out.end(), a.begin(), a.end());
    out.insert(out.end(), b.begin(), b.end());
    return out;
}

bytes encode_issuer_and_serial(const X509_NAME* issuer, const ASN1_INTEGER* serial) {
    const bytes a = to_der(issuer);
    const int len = i2d_ASN1_INTEGER(serial, nullptr);
    if (len <= 0) {
        throw_openssl("i2d_ASN1_INTEGER");
    }
    bytes s(static_cast<std::size_t>(len));
    unsigned char* p = s.data();
    i2d_ASN1_INTEGER(serial, &p);
    bytes out;
    append_header(out, 0x30, a.size() + s.size());
    out.insert(out.end(), a.begin(), a.end());
    out.insert(out.end(), s.begin(), s.end());
    return out;
}

bytes encode_issuer_and_serial(const X509* cert) {
    return encode_issuer_and_serial(X509_get_issuer_name(cert), X509_get0_serialNumber(cert));
}

std::string transaction_id_for(const EVP_PKEY* key) {
    unsigned char* der = nullptr;
    const int len = i2d_PUBKEY(key, &der);
    if (len <= 0) {
        throw_openssl("i2d_PUBKEY");
    }
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int md_len = 0;
    const int ok =
        EVP_Digest(der, static_cast<std::size_t>(len), md.data(), &md_len, EVP_sha1(), nullptr);
    OPENSSL_free(der);
    if (ok != 1) {
        throw_openssl("EVP_Digest");
    }
    std::string hex = to_hex(byte_view{md.data(), md_len});
    std::transform(hex.begin(), hex.end(), hex.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return hex;
}

x509_ptr make_self_signed_signer(EVP_PKEY* key, std::string_view subject_dn,
                                 const timers::validity& validity, int digest_nid) {
    auto name = parse_dn(subject_dn);
    if (!name) {
        throw std::invalid_argument(fmt::format("bad DN \"{}\"", subject_dn));
    }
    const EVP_MD* md = digest_by_nid(digest_nid);
    x509_ptr cert{X509_new()};
    asn1_integer_ptr serial{ASN1_INTEGER_new()};
    const asn1_time_ptr nb = to_asn1_time(validity.not_before);
    const asn1_time_ptr na = to_asn1_time(validity.not_after);
    if (md == nullptr || !cert || !serial || ASN1_INTEGER_set(serial.get(), 1) != 1 ||
        X509_set_version(cert.get(), 2) != 1 ||
        X509_set_serialNumber(cert.get(), serial.get()) != 1 ||
        X509_set_subject_name(cert.get(), name->get()) != 1 ||
        X509_set_issuer_name(cert.get(), name->get()) != 1 ||
        X509_set1_notBefore(cert.get(), nb.get()) != 1 ||
        X509_set1_notAfter(cert.get(), na.get()) != 1 || X509_set_pubkey(cert.get(), key) != 1) {
        throw_openssl("make_self_signed_signer");
    }
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
    x509_extension_ptr ku{X509V3_EXT_conf_nid(nullptr, &ctx, NID_key_usage,
                                              "critical,digitalSignature,keyEncipherment")};
    if (!ku || X509_add_ext(cert.get(), ku.get(), -1) != 1 || X509_sign(cert.get(), key, md) <= 0) {
        throw_openssl("make_self_signed_signer");
    }
    return cert;
}

x509_req_ptr make_csr(EVP_PKEY* key, std::string_view subject_dn, const csr_options& options) {
    auto name = parse_dn(subject_dn);
    if (!name) {
        throw std::invalid_argument(fmt::format("bad DN \"{}\"", subject_dn));
    }
    const EVP_MD* md = digest_by_nid(options.digest_nid);
    x509_req_ptr req{X509_REQ_new()};
    if (md == nullptr || !req || X509_REQ_set_version(req.get(), 0) != 1 ||
        X509_REQ_set_subject_name(req.get(), name->get()) != 1 ||
        X509_REQ_set_pubkey(req.get(), key) != 1) {
        throw_openssl("make_csr");
    }
    if (options.challenge_password) {
        const std::string& c = *options.challenge_password;
        const int type = options.challenge_utf8 ? V_ASN1_UTF8STRING : V_ASN1_PRINTABLESTRING;
        if (X509_REQ_add1_attr_by_NID(req.get(), NID_pkcs9_challengePassword, type,
                                      reinterpret_cast<const unsigned char*>(c.data()),
                                      static_cast<int>(c.size())) != 1) {
            throw_openssl("challengePassword");
        }
    }
    if (!options.dns_names.empty() || !options.ip_addresses.empty()) {
        std::string san;
        for (const std::string& d : options.dns_names) {
            san.append(san.empty() ? "" : ",").append("DNS:").append(d);
        }
        for (const std::string& ip : options.ip_addresses) {
            san.append(san.empty() ? "" : ",").append("IP:").append(ip);
        }
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, nullptr, nullptr, req.get(), nullptr, 0);
        x509_extension_ptr ext{
            X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str())};
        STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
        const bool ok = ext && exts != nullptr && sk_X509_EXTENSION_push(exts, ext.get()) > 0 &&
                        X509_REQ_add_extensions(req.get(), exts) == 1;
        sk_X509_EXTENSION_free(exts);  // the extension itself is owned by `ext`
        if (!ok) {
            throw_openssl("subjectAltName");
        }
    }
    if (X509_REQ_sign(req.get(), key, md) <= 0) {
        throw_openssl("X509_REQ_sign");
    }
    return req;
}

tl::expected<cert_rep, std::error_code> decode_cert_rep(byte_view der, X509* recipient_cert,
                                                        EVP_PKEY* recipient_key,
                                                        std::span<X509* const> trusted_signers,
                                                        const decode_options& options) {
    const scep_nids& n = nids();
    auto opened = open_signed(der, options.max_message_size);
    if (!opened) {
        return tl::unexpected(opened.error());
    }
    if (!trusted_signers.empty() && !is_one_of(opened->signer.get(), trusted_signers)) {
        return fail(error::signer_not_trusted);
    }
    auto content = verify_signature(opened->p7.get());
    if (!content) {
        return tl::unexpected(content.error());
    }
    PKCS7_SIGNER_INFO* si = opened->si;
    cert_rep rep;
    rep.digest_nid = opened->digest_nid;
    std::string text;
    if (string_attr(si, n.message_type, &text) != attr_state::ok ||
        parse_small_int(text) != static_cast<int>(message_type::cert_rep)) {
        return fail(error::unknown_message_type);
    }
    if (string_attr(si, n.pki_status, &text) != attr_state::ok) {
        return fail(error::missing_attribute);
    }
    switch (parse_small_int(text).value_or(-1)) {
        case 0:
            rep.status = pki_status::success;
            break;
        case 2:
            rep.status = pki_status::failure;
            break;
        case 3:
            rep.status = pki_status::pending;
            break;
        default:
            return fail(error::bad_attribute);
    }
    if (string_attr(si, n.transaction_id, &rep.transaction_id) != attr_state::ok ||
        bytes_attr(si, n.sender_nonce, &rep.sender_nonce) != attr_state::ok ||
        bytes_attr(si, n.recipient_nonce, &rep.recipient_nonce) != attr_state::ok) {
        return fail(error::missing_attribute);
    }
    if (rep.status == pki_status::failure) {
        if (string_attr(si, n.fail_info, &text) != attr_state::ok) {
            return fail(error::missing_attribute);
        }
        const int f = parse_small_int(text).value_or(-1);
        if (f < 0 || f > 4) {
            return fail(error::bad_attribute);
        }
        rep.failure = static_cast<fail_info>(f);
        string_attr(si, n.fail_info_text, &rep.fail_info_text);
    }
    rep.signer = std::move(opened->signer);
    rep.outer_certs = copy_certs(opened->p7->d.sign->cert);
    if (rep.status == pki_status::success && !options.status_only) {
        rep.cipher_nid = envelope_cipher_nid(*content);
        const decryption_key key{recipient_cert, recipient_key};
        auto env = open_envelope(*content, std::span<const decryption_key>{&key, 1});
        if (!env) {
            return tl::unexpected(env.error());
        }
        auto bundle = read_degenerate(env->content);
        if (!bundle) {
            return fail(error::bad_message_data);
        }
        rep.certs = std::move(bundle->certs);
        rep.crls = std::move(bundle->crls);
    }
    return rep;
}

tl::expected<certs_bundle, std::error_code> parse_certs_only(byte_view der) {
    auto bundle = read_degenerate(der);
    if (bundle) {
        return bundle;
    }
    auto cert = x509_from_der(der);
    if (!cert) {
        return tl::unexpected(bundle.error());
    }
    certs_bundle out;
    out.certs.push_back(std::move(*cert));
    return out;
}

tl::expected<next_ca_response, std::error_code> parse_get_next_ca_cert(
    byte_view der, std::span<X509* const> trusted_signers) {
    auto opened = open_signed(der, 1024 * 1024);
    if (!opened) {
        return tl::unexpected(opened.error());
    }
    if (!trusted_signers.empty() && !is_one_of(opened->signer.get(), trusted_signers)) {
        return fail(error::signer_not_trusted);
    }
    auto content = verify_signature(opened->p7.get());
    if (!content) {
        return tl::unexpected(content.error());
    }
    next_ca_response out;
    if (!content->empty()) {
        auto bundle = read_degenerate(*content);
        if (!bundle) {
            return fail(error::bad_message_data);
        }
        out.content_certs = std::move(bundle->certs);
    }
    for (x509_ptr& c : copy_certs(opened->p7->d.sign->cert)) {
        if (X509_cmp(c.get(), opened->signer.get()) != 0) {
            out.outer_certs.push_back(std::move(c));
        }
    }
    out.signer = std::move(opened->signer);
    return out;
}

}  // namespace pkisim::scep
